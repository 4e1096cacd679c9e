package serve

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
)

// start runs a Server on 127.0.0.1:0 for the test and returns a client.
func start(t *testing.T, cfg *Config, tweak func(*Server)) *client.Client {
	return dial(t, startAddr(t, cfg, tweak), nil, client.Options{})
}

func dial(t *testing.T, addr string, schema *client.Schema, opts client.Options) *client.Client {
	t.Helper()
	conn, err := client.Dial(addr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return client.New(conn, schema)
}

func startAddr(t *testing.T, cfg *Config, tweak func(*Server)) string {
	t.Helper()
	srv, err := New(cfg, nil)
	require.NoError(t, err)
	if tweak != nil {
		tweak(srv)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	return lis.Addr().String()
}

func call(t *testing.T, c *client.Client, fn string, payload []byte) (*client.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Call(ctx, &client.Message{ID: 9, QOS: 1, Topic: "t/x", FunctionName: fn, FunctionInvokeID: "inv-1", Payload: payload})
}

func TestFixturesAndStatuses(t *testing.T) {
	c := start(t, DefaultConfig(), func(s *Server) {
		s.funcs["boom"] = func(context.Context, *Call) ([]byte, error) { panic("kaboom") }
	})
	res, err := call(t, c, "echo", []byte{0xff, 0, 1})
	require.NoError(t, err)
	assert.Equal(t, []byte{0xff, 0, 1}, res.Payload)
	assert.Equal(t, uint64(9), res.ID)
	assert.Equal(t, uint32(1), res.QOS)
	assert.Equal(t, "t/x", res.Topic)
	assert.Equal(t, "echo", res.FunctionName)
	assert.Equal(t, "inv-1", res.FunctionInvokeID)

	res, err = call(t, c, "context", nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"messageQOS":1,"messageTopic":"t/x","functionName":"context","functionInvokeID":"inv-1"}`, string(res.Payload))

	res, err = call(t, c, "none", []byte("x"))
	require.NoError(t, err)
	assert.Empty(t, res.Payload)

	_, err = call(t, c, "fail", nil)
	assert.Equal(t, codes.Unknown, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "conformance failure")

	_, err = call(t, c, "nope", nil)
	assert.Equal(t, codes.NotFound, status.Code(err))

	_, err = call(t, c, "boom", nil)
	assert.Equal(t, codes.Internal, status.Code(err))
	_, err = call(t, c, "echo", nil)
	assert.NoError(t, err, "serving goes on after a panic")

	_, err = call(t, c, "echo", make([]byte, 5<<20))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))

	_, err = call(t, c, "sleep", []byte("not json"))
	assert.Equal(t, codes.Unknown, status.Code(err))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Call(ctx, &client.Message{FunctionName: "sleep", Payload: []byte(`{"ms":5000}`)})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
}

func TestBaetylSchema(t *testing.T) {
	cc := dial(t, startAddr(t, DefaultConfig(), nil), client.Baetyl(), client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cc.Call(ctx, &client.Message{FunctionName: "echo", Timestamp: -42, Payload: []byte("b")})
	require.NoError(t, err)
	assert.Equal(t, int64(-42), res.Timestamp)
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755))
}

func TestExecHandler(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, dir, "upper.sh", "tr a-z A-Z\n")
	writeScript(t, dir, "env.sh", "echo \"$OE_RT_FUNCTION_NAME $OE_RT_MESSAGE_QOS $OE_RT_MESSAGE_TOPIC $OE_RT_FUNCTION_INVOKE_ID $OE_RT_MESSAGE_ID\"\n")
	writeScript(t, dir, "fail.sh", "echo 'something broke' >&2; exit 3\n")
	writeScript(t, dir, "hang.sh", "sleep 60 & echo $! > \"$1\"; wait\n")
	pidFile := filepath.Join(dir, "child.pid")
	cfg := DefaultConfig()
	cfg.Functions = []FunctionConfig{
		{Name: "upper", Handler: "exec:./upper.sh", CodeDir: dir},
		{Name: "env", Handler: "exec:./env.sh", CodeDir: dir},
		{Name: "fail", Handler: "exec:./fail.sh", CodeDir: dir},
		{Name: "hang", Handler: "exec:./hang.sh " + pidFile, CodeDir: dir},
		{Name: "cat", Handler: "exec:cat"},
		{Name: "e", Handler: "echo"},
	}
	c := start(t, cfg, nil)

	res, err := call(t, c, "upper", []byte("hello $(touch pwned)"))
	require.NoError(t, err)
	assert.Equal(t, "HELLO $(TOUCH PWNED)", string(res.Payload))
	assert.NoFileExists(t, filepath.Join(dir, "pwned"), "the payload must never reach a shell")

	res, err = call(t, c, "env", nil)
	require.NoError(t, err)
	assert.Equal(t, "env 1 t/x inv-1 9\n", string(res.Payload))

	_, err = call(t, c, "fail", nil)
	assert.Equal(t, codes.Unknown, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "something broke")

	res, err = call(t, c, "cat", []byte{0, 1, 0xff})
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 0xff}, res.Payload)

	_, err = call(t, c, "e", []byte("fixture under another name"))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Call(ctx, &client.Message{FunctionName: "hang"})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(strings.TrimSpace(string(b)), &pid)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	assert.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 5*time.Second, 20*time.Millisecond,
		"the deadline must kill the handler's whole process group")
}

func TestBadHandlers(t *testing.T) {
	for _, h := range []string{"nope", "exec:", "exec:./missing.sh", "exec:no-such-program-oe-rt"} {
		cfg := DefaultConfig()
		cfg.Functions = []FunctionConfig{{Name: "f", Handler: h, CodeDir: t.TempDir()}}
		_, err := New(cfg, nil)
		assert.Error(t, err, h)
	}
}

func TestAddressPrecedence(t *testing.T) {
	env := map[string]string{"OPENEDGE_SERVICE_ADDRESS": "c:1", "OPENEDGE_SERVICE_INSTANCE_ADDRESS": "b:1", "BAETYL_SERVICE_INSTANCE_ADDRESS": "grpc://a:1"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := DefaultConfig()
	cfg.Server.Address = "d:1"
	a, src, err := ResolveAddress("flag:1", cfg, lookup)
	require.NoError(t, err)
	assert.Equal(t, []string{"flag:1", "--address"}, []string{a, src})
	for _, want := range []string{"a:1", "b:1", "c:1", "d:1"} {
		a, _, err = ResolveAddress("", cfg, lookup)
		require.NoError(t, err)
		assert.Equal(t, want, a)
		for k, v := range env {
			if strings.TrimPrefix(v, "grpc://") == want {
				delete(env, k)
			}
		}
	}
	cfg.Server.Address = ""
	_, _, err = ResolveAddress("", cfg, lookup)
	assert.ErrorContains(t, err, "OPENEDGE_SERVICE_ADDRESS")
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	err = Run(context.Background(), Options{Address: l.Addr().String()})
	assert.ErrorContains(t, err, "already in use")
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":      {"server:\n  adress: x\n", `s.yml:2: unknown key "adress" in server`},
		"unknown top":      {"nmae: x\n", `s.yml:1: unknown key "nmae"`},
		"unknown in fn":    {"functions:\n  - name: a\n    handler: echo\n    codir: x\n", `s.yml:4: unknown key "codir" in functions[0]`},
		"syntax":           {"server: [\n", "s.yml:"},
		"bad size":         {"server:\n  message:\n    length:\n      max: lots\n", `s.yml:4: size "lots"`},
		"bad duration":     {"server:\n  timeout: 5\n", `s.yml:2: duration "5"`},
		"dup function":     {"functions:\n  - {name: a, handler: echo}\n  - {name: a, handler: none}\n", "configured twice"},
		"empty handler":    {"functions:\n  - {name: a}\n", "handler is empty"},
		"key without cert": {"server:\n  key: k.pem\n", "both key and cert"},
		"ca without cert":  {"server:\n  ca: ca.pem\n", "needs key and cert"},
		"bad level":        {"logger:\n  level: loud\n", "logger.level"},
		"not a number":     {"server:\n  concurrent:\n    max: many\n", "s.yml:3:"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig("s.yml", []byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	for in, want := range map[string]int64{"4m": 4 << 20, "512k": 512 << 10, "1048576": 1 << 20, "1MiB": 1 << 20} {
		c, err := ParseConfig("s.yml", []byte("server:\n  message:\n    length:\n      max: "+in+"\n"))
		require.NoError(t, err, in)
		assert.Equal(t, Size(want), c.Server.Message.Length.Max, in)
	}
	c, err := ParseConfig("empty.yml", nil)
	require.NoError(t, err)
	assert.Equal(t, Size(4<<20), c.Server.Message.Length.Max)
	assert.Equal(t, Duration(DefaultGrace), c.Server.Timeout)
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"", "name: x\n", "server:\n  message:\n    length:\n      max: 4m\n", "functions:\n  - {name: a, handler: echo}\n", "server: [\n", "logger: {level: debug}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("fuzz.yml", b)
		if err == nil && c == nil {
			t.Fatal("nil config without an error")
		}
		if err != nil && c != nil {
			t.Fatal("a config with an error")
		}
	})
}
