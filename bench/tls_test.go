package bench_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/testcert"
	"github.com/oe-rt/oe-rt/serve"
)

// writeCert writes a server certificate for 127.0.0.1 and its key, with
// the CA that signed it (internal/testcert).
func writeCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	f := testcert.Write(t, dir)
	return f.CA, f.ServerCert, f.ServerKey
}

func TestRunTLS(t *testing.T) {
	ca, cert, key := writeCert(t, t.TempDir())
	sc := serve.DefaultConfig()
	sc.Server.Cert, sc.Server.Key = cert, key
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, serve.Options{Config: sc, Address: "127.0.0.1:0", Ready: func(a net.Addr) { ready <- a.String() }})
	}()
	defer func() { cancel(); <-done }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}

	cfg := config(addr)
	cfg.Dial.TLS = &client.TLS{CACert: ca}
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 200, rep.OK)

	// Plaintext against a TLS runtime: a clear error, in bounded time.
	cfg = config(addr)
	cfg.ConnectTimeout = 500 * time.Millisecond
	_, err = bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not ready within 500ms")
	assert.Contains(t, err.Error(), "check --cacert")
}

// A RUNTIME that bench starts with TLS: with its CA, the run works;
// plaintext against it is not ready in time, with the runtimeproc's words
// (the port is open, the handshake never completed) and bench's TLS hint.
func TestRunStartedTLS(t *testing.T) {
	ca, cert, key := writeCert(t, t.TempDir())
	cfg := launched("tls")
	cfg.Launch.Env = append(cfg.Launch.Env, "TLS_CERT="+cert, "TLS_KEY="+key)
	cfg.Dial.TLS = &client.TLS{CACert: ca}
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 200, rep.OK)

	cfg.Dial.TLS = nil
	cfg.ConnectTimeout = 5 * time.Second // the runtime listens within it on a busy machine
	_, err = bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "within 5s of exec (the port is open, but the HTTP/2 handshake never completed")
	assert.Contains(t, err.Error(), "check --cacert")
	assertNoChildren(t)
}
