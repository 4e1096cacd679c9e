package bench_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/serve"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "oe-rt bench test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return cert, key
}

func TestRunTLS(t *testing.T) {
	cert, key := writeCert(t, t.TempDir())
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
	cfg.Dial.TLS = &client.TLS{CACert: cert}
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
	cert, key := writeCert(t, t.TempDir())
	cfg := launched("tls")
	cfg.Launch.Env = append(cfg.Launch.Env, "TLS_CERT="+cert, "TLS_KEY="+key)
	cfg.Dial.TLS = &client.TLS{CACert: cert}
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 200, rep.OK)

	cfg.Dial.TLS = nil
	cfg.ConnectTimeout = time.Second
	_, err = bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "within 1s of exec (the port is open, but the HTTP/2 handshake never completed")
	assert.Contains(t, err.Error(), "check --cacert")
	assertNoChildren(t)
}
