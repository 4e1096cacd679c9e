package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// startServe starts `oe-rt serve` as a child process and waits until it
// answers.
func startServe(t *testing.T, args ...string) (*launch.Process, string) {
	t.Helper()
	addr, err := launch.FreePort()
	require.NoError(t, err)
	p, err := launch.Start(launch.Spec{Path: oeRT, Args: append([]string{"serve", "--address", addr}, args...), Env: os.Environ()})
	require.NoError(t, err)
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil || p.Exited()
	}, 10*time.Second, 10*time.Millisecond)
	require.False(t, p.Exited(), "serve exited: %s", p.Stderr())
	return p, addr
}

func TestServeStopsGracefully(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p, addr := startServe(t)
			conn, err := client.Dial(addr, client.Options{})
			require.NoError(t, err)
			defer conn.Close()
			c := client.New(conn, nil)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_, errs[i] = c.Call(ctx, &client.Message{FunctionName: "sleep", Payload: []byte(`{"ms":500}`)})
				}()
			}
			time.Sleep(150 * time.Millisecond)
			require.NoError(t, syscall.Kill(p.Pid, sig))
			wg.Wait()
			for i, err := range errs {
				assert.NoError(t, err, "call %d in flight was lost", i)
			}
			select {
			case <-p.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not exit")
			}
			e, _ := p.ExitStatus()
			assert.Equal(t, 0, e.Code, "%s; stderr: %s", e, p.Stderr())
			assert.Contains(t, p.Stderr(), "runtime stopped")
		})
	}
}

func TestServeErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	run := func(args ...string) (int, string) {
		cmd := exec.Command(oeRT, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, errb.String()
	}
	code, msg := run("serve", "--address", l.Addr().String())
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "already in use")
	code, msg = run("serve")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, msg, "no address")
	bad := filepath.Join(t.TempDir(), "s.yml")
	require.NoError(t, os.WriteFile(bad, []byte("server:\n  adress: x\n"), 0o644))
	code, msg = run("serve", "-c", bad)
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, bad+`:2: unknown key "adress"`)
	code, msg = run("serve", "--bogus")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, "unknown flag")
	assert.NotContains(t, msg, "goroutine")
}

func TestServeHealthAndCallFlags(t *testing.T) {
	_, addr := startServe(t)
	conn, err := client.Dial(addr, client.Options{})
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)

	code, out, _ := runMain("call", "--address", addr, "echo", "hello")
	assert.Equal(t, 0, code)
	assert.Equal(t, "hello", out)

	f := filepath.Join(t.TempDir(), "p.bin")
	require.NoError(t, os.WriteFile(f, []byte{0, 0xff, 1}, 0o644))
	code, out, _ = runMain("call", "--address", addr, "echo", "@"+f)
	assert.Equal(t, 0, code)
	assert.Equal(t, string([]byte{0, 0xff, 1}), out)

	var o bytes.Buffer
	code = Main([]string{"call", "--address", addr, "echo", "-"}, strings.NewReader("from stdin"), &o, &bytes.Buffer{})
	assert.Equal(t, 0, code)
	assert.Equal(t, "from stdin", o.String())

	code, out, _ = runMain("call", "--address", addr, "--id", "5", "--qos", "1", "--topic", "a/b", "--invoke-id", "inv-9", "-o", "json", "context", "{}")
	require.Equal(t, 0, code)
	var res struct {
		Status    struct{ Code string }
		LatencyMS float64 `json:"latency_ms"`
		Response  struct {
			ID               uint64
			QOS              uint32
			Topic            string
			FunctionInvokeID string
			Payload          string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, "OK", res.Status.Code)
	assert.Equal(t, uint64(5), res.Response.ID)
	assert.Equal(t, "inv-9", res.Response.FunctionInvokeID)
	assert.JSONEq(t, `{"messageQOS":1,"messageTopic":"a/b","functionName":"context","functionInvokeID":"inv-9"}`, res.Response.Payload)
	assert.Greater(t, res.LatencyMS, 0.0)

	// A default invoke id is fresh each time.
	ids := map[string]bool{}
	for i := 0; i < 2; i++ {
		_, out, _ = runMain("call", "--address", addr, "-o", "json", "echo")
		var r struct {
			Request struct{ FunctionInvokeID string }
		}
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		ids[r.Request.FunctionInvokeID] = true
	}
	assert.Len(t, ids, 2)

	code, _, errOut := runMain("call", "--address", addr, "--timeout", "100ms", "sleep", `{"ms":3000}`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "DEADLINE_EXCEEDED")
	code, _, errOut = runMain("call", "--address", addr, "nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "NOT_FOUND")
	code, _, errOut = runMain("call", "--address", addr, "--max-msg-size", "1k", "echo", strings.Repeat("x", 4096))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "RESOURCE_EXHAUSTED")

	code, out, _ = runMain("call", "--address", addr, "--profile", "baetyl", "--timestamp", "77", "-o", "json", "echo", "b")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, `"timestamp": 77`)

	proto := filepath.Join(t.TempDir(), "my.proto")
	require.NoError(t, os.WriteFile(proto, []byte(`syntax = "proto3";
package openedge;
service Function { rpc Call(FunctionMessage) returns (FunctionMessage) {} }
message FunctionMessage { uint64 ID = 1; uint32 QOS = 2; string Topic = 3; bytes Payload = 4; string FunctionName = 11; string FunctionInvokeID = 12; }
`), 0o644))
	code, out, _ = runMain("call", "--address", addr, "--proto", proto, "echo", "via proto")
	assert.Equal(t, 0, code)
	assert.Equal(t, "via proto", out)

	for _, args := range [][]string{
		{"call"}, {"call", "--address", addr, "echo", "@/no/such/file"}, {"call", "echo"},
		{"call", "--address", addr, "-o", "yaml", "echo"}, {"call", "--address", addr, "--max-msg-size", "huge", "echo"},
	} {
		code, _, errOut := runMain(args...)
		assert.Equal(t, 2, code, "%v: %s", args, errOut)
		assert.NotEmpty(t, errOut)
	}
}

// writeCerts makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oe-rt test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, name := range []string{"server", "client"} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kb, _ := x509.MarshalECPrivateKey(key)
		write(name+".pem", "CERTIFICATE", der)
		write(name+".key", "EC PRIVATE KEY", kb)
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, mutual := range []bool{false, true} {
		t.Run(fmt.Sprintf("mutual=%v", mutual), func(t *testing.T) {
			cfg := fmt.Sprintf("server:\n  key: %s\n  cert: %s\n", p("server.key"), p("server.pem"))
			if mutual {
				cfg += fmt.Sprintf("  ca: %s\n", p("ca.pem"))
			}
			cfgFile := filepath.Join(t.TempDir(), "s.yml")
			require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o644))
			_, addr := startServe(t, "-c", cfgFile)

			code, _, _ := runMain("call", "--address", addr, "--timeout", "2s", "echo", "x")
			assert.Equal(t, 1, code, "plaintext must be refused")
			code, out, errOut := runMain("call", "--address", addr, "--cacert", p("ca.pem"), "--cert", p("client.pem"), "--key", p("client.key"), "echo", "x")
			assert.Equal(t, 0, code, errOut)
			assert.Equal(t, "x", out)
			code, _, errOut = runMain("call", "--address", addr, "--cacert", p("ca.pem"), "--timeout", "2s", "echo", "x")
			if mutual {
				assert.Equal(t, 1, code, "mutual TLS without a client certificate must be refused")
			} else {
				assert.Equal(t, 0, code, errOut)
			}
			code, _, errOut = runMain("call", "--address", addr, "--insecure", "--cert", p("client.pem"), "--key", p("client.key"), "echo", "x")
			assert.Equal(t, 0, code, errOut)
		})
	}
}
