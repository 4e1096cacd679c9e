// Package testcert writes throw-away certificates for tests of TLS and
// mutual TLS: a CA, a server certificate for 127.0.0.1 and localhost, a
// client certificate signed by the CA, and a client certificate signed by
// another CA (which a mutual-TLS server must refuse). Keys are ECDSA P-256;
// everything is valid for an hour around now.
package testcert

import (
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
	"sync/atomic"
	"testing"
	"time"
)

// Files are the paths of the PEM files Write made.
type Files struct {
	CA                        string // the CA's certificate
	ServerCert, ServerKey     string // signed by CA, for 127.0.0.1 and localhost
	ClientCert, ClientKey     string // signed by CA
	StrangerCert, StrangerKey string // signed by another CA
	StrangerCA                string // that other CA's certificate
}

// Write creates the certificates in dir and returns their paths.
func Write(t testing.TB, dir string) Files {
	t.Helper()
	f := Files{
		CA:           filepath.Join(dir, "ca.pem"),
		ServerCert:   filepath.Join(dir, "server.pem"),
		ServerKey:    filepath.Join(dir, "server.key"),
		ClientCert:   filepath.Join(dir, "client.pem"),
		ClientKey:    filepath.Join(dir, "client.key"),
		StrangerCert: filepath.Join(dir, "stranger.pem"),
		StrangerKey:  filepath.Join(dir, "stranger.key"),
		StrangerCA:   filepath.Join(dir, "stranger-ca.pem"),
	}
	ca, caKey := newCA(t, "oe-rt test CA", f.CA)
	leaf(t, ca, caKey, "server", x509.ExtKeyUsageServerAuth, f.ServerCert, f.ServerKey)
	leaf(t, ca, caKey, "client", x509.ExtKeyUsageClientAuth, f.ClientCert, f.ClientKey)
	other, otherKey := newCA(t, "oe-rt stranger CA", f.StrangerCA)
	leaf(t, other, otherKey, "stranger", x509.ExtKeyUsageClientAuth, f.StrangerCert, f.StrangerKey)
	return f
}

var serial atomic.Int64

func template(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

func newCA(t testing.TB, cn, certPath string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := template(cn)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcert: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcert: parse CA: %v", err)
	}
	writePEM(t, certPath, "CERTIFICATE", der)
	return cert, key
}

func leaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage, certPath, keyPath string) {
	t.Helper()
	key := newKey(t)
	tmpl := template(cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testcert: create %s certificate: %v", cn, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testcert: marshal %s key: %v", cn, err)
	}
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "EC PRIVATE KEY", kb)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcert: generate key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcert: %v", err)
	}
}
