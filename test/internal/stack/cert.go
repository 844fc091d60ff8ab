package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certificate is a self-signed one-day server certificate for BaseDomain and
// every host under it, for whatever terminates TLS before tenantgate: Envoy
// itself or a front before it.
type Certificate struct {
	TLS tls.Certificate
	// Pool trusts this certificate and nothing else.
	Pool *x509.CertPool
	// Pin is the certificate's public-key pin as Chromium's
	// --ignore-certificate-errors-spki-list takes it: base64 of the
	// SHA-256 of its SubjectPublicKeyInfo.
	Pin string
	// CertFile and KeyFile hold the certificate and its key as PEM, in a
	// directory removed when the test ends.
	CertFile, KeyFile string
}

// NewCertificate makes a fresh ECDSA key and Certificate.
func NewCertificate(tb testing.TB) *Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: BaseDomain},
		DNSNames:     []string{BaseDomain, "*." + BaseDomain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Certificate{
		TLS:      tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Pool:     x509.NewCertPool(),
		CertFile: filepath.Join(tb.TempDir(), "tls.crt"),
	}
	c.Pool.AddCert(leaf)
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	c.Pin = base64.StdEncoding.EncodeToString(sum[:])
	c.KeyFile = filepath.Join(filepath.Dir(c.CertFile), "tls.key")
	if err := os.WriteFile(c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return c
}
