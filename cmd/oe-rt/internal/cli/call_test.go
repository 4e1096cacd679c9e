package cli

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/testcert"
)

// callJSON is the --format json output of oe-rt call.
type callJSON struct {
	Function  string  `json:"function"`
	Address   string  `json:"address"`
	LatencyMS float64 `json:"latency_ms"`
	Status    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	Request struct {
		ID               *uint64 `json:"id"`
		QOS              *uint32 `json:"qos"`
		Topic            *string `json:"topic"`
		FunctionInvokeID string  `json:"functionInvokeID"`
		PayloadBytes     *int    `json:"payload_bytes"`
	} `json:"request"`
	Response *struct {
		ID               uint64 `json:"id"`
		QOS              uint32 `json:"qos"`
		Topic            string `json:"topic"`
		Timestamp        int64  `json:"timestamp"`
		FunctionName     string `json:"functionName"`
		FunctionInvokeID string `json:"functionInvokeID"`
		Payload          string `json:"payload"`
		PayloadHex       string `json:"payload_hex"`
		PayloadBytes     int    `json:"payload_bytes"`
	} `json:"response"`
}

func decodeCall(t *testing.T, r oeResult) callJSON {
	t.Helper()
	var out callJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "--format json output: %s (stderr: %s)", r.stdout, r.stderr)
	return out
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestCallFlags runs `oe-rt call` as a process against `oe-rt serve` for
// every flag.
func TestCallFlags(t *testing.T) {
	_, addr := startServe(t, serveSpec{})
	dir := t.TempDir()
	binary := string([]byte{0, 0xff, 0xfe, '\n', 0, 'x'})

	t.Run("payload as an argument", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "echo", "hello world")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "hello world", r.stdout, "the raw payload, nothing added")
	})
	t.Run("no payload", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "echo")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Empty(t, r.stdout)
	})
	t.Run("payload from @file", func(t *testing.T) {
		f := writeFile(t, dir, "p.bin", binary, 0o644)
		r := oe(t, nil, nil, "call", "--address", addr, "echo", "@"+f)
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, binary, r.stdout)
	})
	t.Run("payload from standard input", func(t *testing.T) {
		r := oe(t, []byte(binary), nil, "call", "--address", addr, "echo", "-")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, binary, r.stdout)
	})
	t.Run("--id --qos --topic --invoke-id", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "--id", "18446744073709551615", "--qos", "1", "--topic", "a/b", "--invoke-id", "inv-9", "--format", "json", "context", "{}")
		require.Equal(t, 0, r.code, r.stderr)
		out := decodeCall(t, r)
		require.NotNil(t, out.Response)
		assert.Equal(t, uint64(18446744073709551615), out.Response.ID)
		assert.Equal(t, uint32(1), out.Response.QOS)
		assert.Equal(t, "a/b", out.Response.Topic)
		assert.Equal(t, "inv-9", out.Response.FunctionInvokeID)
		assert.JSONEq(t, `{"messageQOS":1,"messageTopic":"a/b","functionName":"context","functionInvokeID":"inv-9"}`, out.Response.Payload,
			"the runtime received the flags' values")
	})
	t.Run("--invoke-id defaults to a fresh random id", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			r := oe(t, nil, nil, "call", "--address", addr, "context")
			require.Equal(t, 0, r.code, r.stderr)
			var got struct{ FunctionInvokeID string }
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
			assert.Regexp(t, uuidV4, got.FunctionInvokeID)
			seen[got.FunctionInvokeID] = true
		}
		assert.Len(t, seen, 3)
	})
	t.Run("--format json", func(t *testing.T) {
		notUTF8 := "\xff\xfe\n x" // an argument cannot hold NUL
		r := oe(t, nil, nil, "call", "--address", addr, "--id", "5", "--topic", "t", "--format", "json", "echo", notUTF8)
		require.Equal(t, 0, r.code, r.stderr)
		out := decodeCall(t, r)
		assert.Equal(t, "echo", out.Function)
		assert.Equal(t, addr, out.Address)
		assert.Equal(t, "OK", out.Status.Code)
		assert.Empty(t, out.Status.Message)
		assert.Greater(t, out.LatencyMS, 0.0)
		require.NotNil(t, out.Request.ID)
		assert.Equal(t, uint64(5), *out.Request.ID)
		require.NotNil(t, out.Request.QOS)
		assert.Equal(t, uint32(0), *out.Request.QOS)
		require.NotNil(t, out.Request.Topic)
		assert.Equal(t, "t", *out.Request.Topic)
		assert.Regexp(t, uuidV4, out.Request.FunctionInvokeID)
		require.NotNil(t, out.Request.PayloadBytes)
		assert.Equal(t, len(notUTF8), *out.Request.PayloadBytes)
		require.NotNil(t, out.Response)
		assert.Equal(t, "echo", out.Response.FunctionName)
		assert.Equal(t, out.Request.FunctionInvokeID, out.Response.FunctionInvokeID)
		assert.Empty(t, out.Response.Payload, "bytes that are not UTF-8 are shown in hex")
		assert.Equal(t, hex.EncodeToString([]byte(notUTF8)), out.Response.PayloadHex)
		assert.Equal(t, len(notUTF8), out.Response.PayloadBytes)
	})
	t.Run("--format json of a failed call", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "--format", "json", "fail")
		assert.Equal(t, 1, r.code)
		out := decodeCall(t, r)
		assert.Equal(t, "UNKNOWN", out.Status.Code)
		assert.Contains(t, out.Status.Message, "conformance failure")
		assert.Nil(t, out.Response)
		assert.Contains(t, r.stderr, "UNKNOWN")
	})
	t.Run("errors: code and message on stderr, exit 1", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "nope")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, `call "nope" at `+addr+": NOT_FOUND: ")
		assert.Empty(t, r.stdout)
		r = oe(t, nil, nil, "call", "--address", addr, "fail")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "UNKNOWN: conformance failure")
	})
	t.Run("--timeout", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "--timeout", "200ms", "sleep", `{"ms": 10000}`)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "DEADLINE_EXCEEDED")
		r = oe(t, nil, nil, "call", "--address", addr, "--timeout", "20s", "sleep", `{"ms": 10}`)
		assert.Equal(t, 0, r.code, r.stderr)
	})
	t.Run("--max-msg-size", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "--max-msg-size", "1k", "echo", strings.Repeat("x", 4096))
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "RESOURCE_EXHAUSTED", "a request over the limit")
		r = oe(t, nil, nil, "call", "--address", addr, "--max-msg-size", "1k", "echo", strings.Repeat("x", 1020))
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "RESOURCE_EXHAUSTED", "a response over the limit")
		r = oe(t, nil, nil, "call", "--address", addr, "--max-msg-size", "2048", "echo", strings.Repeat("x", 1020))
		assert.Equal(t, 0, r.code, r.stderr)
		big := writeFile(t, dir, "big.bin", strings.Repeat("y", 5<<20), 0o644)
		r = oe(t, nil, nil, "call", "--address", addr, "echo", "@"+big)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "RESOURCE_EXHAUSTED", "over the convention's 4 MiB")
		r = oe(t, nil, nil, "call", "--address", addr, "--max-msg-size", "8m", "echo", "@"+big)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "RESOURCE_EXHAUSTED", "the server's own limit")
	})
	t.Run("address from the environment", func(t *testing.T) {
		r := oe(t, nil, []string{"OPENEDGE_SERVICE_ADDRESS=" + addr}, "call", "echo", "env")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "env", r.stdout)
		r = oe(t, nil, []string{"BAETYL_SERVICE_INSTANCE_ADDRESS=" + addr, "OPENEDGE_SERVICE_ADDRESS=127.0.0.1:1"}, "call", "echo", "baetyl first")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "baetyl first", r.stdout)
	})
	t.Run("unreachable runtime", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", "127.0.0.1:1", "--timeout", "500ms", "echo")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, "oe-rt: 127.0.0.1:1: nothing listens there (connection refused); start the runtime first, or give --wait 10s to wait for it\n", r.stderr)
	})
	t.Run("-o FILE", func(t *testing.T) {
		out := filepath.Join(dir, "out.bin")
		r := oe(t, nil, nil, "call", "--address", addr, "-o", out, "echo", "\xff\xfe\n x")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Empty(t, r.stdout)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, "\xff\xfe\n x", string(b))
	})
	t.Run("--profile baetyl --timestamp", func(t *testing.T) {
		r := oe(t, nil, nil, "call", "--address", addr, "--profile", "baetyl", "--timestamp", "-77", "--format", "json", "echo", "b")
		require.Equal(t, 0, r.code, r.stderr)
		out := decodeCall(t, r)
		require.NotNil(t, out.Response)
		assert.Equal(t, int64(-77), out.Response.Timestamp)
		assert.Equal(t, "b", out.Response.Payload)
	})
	t.Run("--proto", func(t *testing.T) {
		// The runtime's own .proto: the same wire format, its own names.
		proto := writeFile(t, dir, "protos/my.proto", `syntax = "proto3";
package openedge;
// A runtime's own copy, with its own message name.
service Function { rpc Call(Msg) returns (Msg) {} }
message Msg {
  uint64 ID = 1; uint32 QOS = 2; string Topic = 3; bytes Payload = 4;
  string FunctionName = 11; string FunctionInvokeID = 12;
}
`, 0o644)
		r := oe(t, nil, nil, "call", "--address", addr, "--proto", proto, "--topic", "p", "context")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, `"messageTopic":"p"`)

		two := writeFile(t, dir, "protos/two.proto", `syntax = "proto3";
package baetyl;
service Function { rpc Call(FunctionMessage) returns (FunctionMessage) {} }
service Other { rpc Call(FunctionMessage) returns (FunctionMessage) {} }
message FunctionMessage {
  uint64 ID = 1; uint32 QOS = 2; string Topic = 3; bytes Payload = 4; sint64 Timestamp = 10;
  string FunctionName = 11; string FunctionInvokeID = 12;
}
`, 0o644)
		r = oe(t, nil, nil, "call", "--address", addr, "--proto", two, "echo")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "has 2 services (baetyl.Function, baetyl.Other): choose one with --service")
		r = oe(t, nil, nil, "call", "--address", addr, "--proto", two, "--service", "baetyl.Function", "--timestamp", "5", "--format", "json", "echo", "x")
		require.Equal(t, 0, r.code, r.stderr)
		out := decodeCall(t, r)
		require.NotNil(t, out.Response)
		assert.Equal(t, int64(5), out.Response.Timestamp)

		bad := writeFile(t, dir, "protos/bad.proto", "syntax = \"proto3\";\nservice {\n", 0o644)
		r = oe(t, nil, nil, "call", "--address", addr, "--proto", bad, "echo")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "bad.proto:2")
	})
}

func TestCallTLS(t *testing.T) {
	certs := testcert.Write(t, t.TempDir())
	dir := t.TempDir()
	for _, mutual := range []bool{false, true} {
		name := "TLS"
		cfg := "server:\n  key: " + certs.ServerKey + "\n  cert: " + certs.ServerCert + "\n"
		if mutual {
			name = "mutual TLS"
			cfg += "  ca: " + certs.CA + "\n"
		}
		t.Run(name, func(t *testing.T) {
			_, addr := startServe(t, serveSpec{args: []string{"-c", writeFile(t, dir, name+".yml", cfg, 0o644)}})
			clientCert := []string{"--cert", certs.ClientCert, "--key", certs.ClientKey}
			for _, tc := range []struct {
				name string
				args []string
				ok   bool // with mutual TLS, only calls with the client certificate succeed
			}{
				{"plaintext", nil, false},
				{"--cacert", []string{"--cacert", certs.CA}, !mutual},
				{"--cacert --servername", []string{"--cacert", certs.CA, "--servername", "localhost"}, !mutual},
				{"--cacert of another CA", []string{"--cacert", certs.StrangerCA}, false},
				{"--tls with the system's roots", []string{"--tls"}, false},
				{"--insecure", []string{"--insecure"}, !mutual},
				{"--cacert --cert --key", append([]string{"--cacert", certs.CA}, clientCert...), true},
				{"--insecure --cert --key", append([]string{"--insecure"}, clientCert...), true},
				// Without ca the server asks for no client certificate.
				{"--cacert with a certificate from another CA", []string{"--cacert", certs.CA, "--cert", certs.StrangerCert, "--key", certs.StrangerKey}, !mutual},
			} {
				t.Run(tc.name, func(t *testing.T) {
					args := append([]string{"call", "--address", addr, "--timeout", "5s"}, tc.args...)
					r := oe(t, nil, nil, append(args, "echo", "secret")...)
					if tc.ok {
						assert.Equal(t, 0, r.code, r.stderr)
						assert.Equal(t, "secret", r.stdout)
					} else {
						assert.Equal(t, 1, r.code, "must be refused")
						assert.Contains(t, r.stderr, "UNAVAILABLE")
						assert.NotContains(t, r.stderr, "nothing accepted a connection", "a refused handshake is not waited out like a runtime not yet listening")
						assert.Empty(t, r.stdout)
					}
				})
			}
		})
	}
	t.Run("bad TLS flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"--cert", certs.ClientCert},
			{"--key", certs.ClientKey},
			{"--cacert", "/no/such/ca.pem"},
			{"--cacert", certs.ClientKey},
			{"--cert", "/no/such.pem", "--key", certs.ClientKey},
		} {
			r := oe(t, nil, nil, append(append([]string{"call", "--address", "127.0.0.1:1"}, args...), "echo")...)
			assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
			assert.NotEmpty(t, r.stderr)
		}
	})
}

// The README's by-hand example: a runtime started in the background and
// called at once. With --wait, call waits for the runtime to listen.
func TestCallWaitsForARuntimeStartingLate(t *testing.T) {
	addr, err := launch.FreePort()
	require.NoError(t, err)
	done := make(chan oeResult, 1)
	go func() { done <- oe(t, nil, nil, "call", "--address", addr, "--wait", "20s", "echo", "late") }()
	time.Sleep(700 * time.Millisecond) // the call is waiting by now
	select {
	case r := <-done:
		t.Fatalf("call ended before any runtime listened: %+v", r)
	default:
	}
	startServe(t, serveSpec{addr: addr})
	select {
	case r := <-done:
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "late", r.stdout)
	case <-time.After(commandTimeout):
		t.Fatal("call did not finish")
	}
}

// TestCallUsageErrors: wrong flags and arguments exit 2 with a message, and
// never with a stack trace (oe checks that).
func TestCallUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"call"}, nil, "accepts between 1 and 2 arg(s), received 0"},
		{[]string{"call", "--address", "127.0.0.1:1", "echo", "a", "b"}, nil, "accepts between 1 and 2 arg(s), received 3"},
		{[]string{"call", "echo"}, nil, "no address: pass --address or set BAETYL_SERVICE_INSTANCE_ADDRESS"},
		{[]string{"call", "--address", "127.0.0.1:1", "echo", "@" + dir + "/nope"}, nil, "read PAYLOAD: open " + dir + "/nope: no such file"},
		{[]string{"call", "--address", "127.0.0.1:1", "--format", "yaml", "echo"}, nil, `--format "yaml": want raw or json`},
		{[]string{"call", "--address", "127.0.0.1:1", "-o", "json", "echo"}, nil, `-o/--output "json" names the file to write the output to; for json output use --format json`},
		{[]string{"call", "--address", "127.0.0.1:1", "-o", dir + "/no/such/dir/out", "echo"}, nil, "-o/--output: open " + dir + "/no/such/dir/out"},
		{[]string{"call", "--address", "nonsense", "echo"}, nil, `--address "nonsense": missing port in address: want host:port`},
		{[]string{"call", "--address", "127.0.0.1:99999", "echo"}, nil, `--address "127.0.0.1:99999": port "99999": want a number from 1 to 65535`},
		{[]string{"call", "--address", "http://127.0.0.1:1", "echo"}, nil, `--address "http://127.0.0.1:1": unsupported scheme "http"`},
		{[]string{"call", "echo"}, []string{"OPENEDGE_SERVICE_ADDRESS=localhost"}, `$OPENEDGE_SERVICE_ADDRESS "localhost": missing port in address`},
		{[]string{"call", "--address", "127.0.0.1:1", "--max-msg-size", "huge", "echo"}, nil, `invalid argument "huge" for "--max-msg-size"`},
		{[]string{"call", "--address", "127.0.0.1:1", "--max-msg-size", "0", "echo"}, nil, "must be positive"},
		{[]string{"call", "--address", "127.0.0.1:1", "--qos", "-1", "echo"}, nil, `invalid argument "-1" for "--qos"`},
		{[]string{"call", "--address", "127.0.0.1:1", "--id", "x", "echo"}, nil, `invalid argument "x" for "--id"`},
		{[]string{"call", "--address", "127.0.0.1:1", "--timeout", "soon", "echo"}, nil, `invalid argument "soon" for "--timeout"`},
		{[]string{"call", "--address", "127.0.0.1:1", "--timeout", "0s", "echo"}, nil, "--timeout must be positive, got 0s"},
		{[]string{"call", "--address", "127.0.0.1:1", "--profile", "mqtt", "echo"}, nil, `--profile "mqtt": want openedge or baetyl`},
		{[]string{"call", "--address", "127.0.0.1:1", "--timestamp", "5", "echo"}, nil, "--timestamp needs a schema with Timestamp (--profile baetyl)"},
		{[]string{"call", "--address", "127.0.0.1:1", "--service", "openedge.Function", "echo"}, nil, "--service needs --proto"},
		{[]string{"call", "--address", "127.0.0.1:1", "--proto", dir + "/nope.proto", "echo"}, nil, "load proto"},
		{[]string{"call", "--address", "127.0.0.1:1", "--bogus", "echo"}, nil, "unknown flag: --bogus"},
		{[]string{"call", "--address"}, nil, "flag needs an argument: --address"},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			r := oe(t, nil, tc.env, tc.args...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.Empty(t, r.stdout)
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	r := oe(t, nil, nil, "--help")
	assert.Equal(t, 0, r.code, r.stderr)
	for _, s := range []string{"oe-rt", "serve", "call", "version", "Examples:"} {
		assert.Contains(t, r.stdout, s)
	}
	for _, cmd := range []string{"serve", "call"} {
		r = oe(t, nil, nil, cmd, "--help")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "Usage:")
		assert.Contains(t, r.stdout, "Examples:")
		assert.Contains(t, r.stdout, "oe-rt "+cmd)
	}
	r = oe(t, nil, nil, "help", "call")
	assert.Equal(t, 0, r.code, r.stderr)
	for _, flag := range []string{"--address", "--id", "--qos", "--topic", "--invoke-id", "--timeout", "--max-msg-size", "--output", "--cacert", "--cert", "--key", "--insecure", "--profile", "--proto", "--timestamp"} {
		assert.Contains(t, r.stdout, flag)
	}
	r = oe(t, nil, nil, "version")
	assert.Equal(t, 0, r.code, r.stderr)
	// The commit is there when the binary was built from a checkout with
	// VCS stamping (go build's -buildvcs).
	assert.Regexp(t, `^oe-rt \S+( \(commit [0-9a-f]+(, modified)?\))? linux/\w+ go1\.\S+\n$`, r.stdout)
	v := oe(t, nil, nil, "--version")
	assert.Equal(t, 0, v.code, v.stderr)
	assert.Contains(t, v.stdout, "oe-rt")
	r = oe(t, nil, nil, "nosuch")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown command "nosuch"`)
}
