package etcdcluster

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestIssuedCertificates checks the test PKI without starting etcd: a
// member's certificate is valid for the loopback names as server and as
// client (peers use it both ways), the client's as client only, both chain
// to the CA alone, and keys are readable by their owner only.
func TestIssuedCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := newAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	memberCert, memberKey, err := ca.issue(dir, "m0", "m0", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey, err := ca.issue(dir, "client", "tenantgate-test-client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	otherDir := t.TempDir()
	other, err := newAuthority(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.cert)

	load := func(certFile, keyFile string) *x509.Certificate {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", keyFile, fi.Mode().Perm(), err)
		}
		return pair.Leaf
	}
	member, client := load(memberCert, memberKey), load(clientCert, clientKey)

	tests := []struct {
		name   string
		cert   *x509.Certificate
		roots  *x509.CertPool
		host   string
		usage  x509.ExtKeyUsage
		wantOK bool
	}{
		{"member serves 127.0.0.1", member, roots, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{"member serves ::1", member, roots, "::1", x509.ExtKeyUsageServerAuth, true},
		{"member serves localhost", member, roots, "localhost", x509.ExtKeyUsageServerAuth, true},
		{"member is a peer client", member, roots, "", x509.ExtKeyUsageClientAuth, true},
		{"member serves no other name", member, roots, "example.com", x509.ExtKeyUsageServerAuth, false},
		{"client is a client", client, roots, "", x509.ExtKeyUsageClientAuth, true},
		{"client is no server", client, roots, "127.0.0.1", x509.ExtKeyUsageServerAuth, false},
		{"another CA trusts no member", member, otherRoots, "127.0.0.1", x509.ExtKeyUsageServerAuth, false},
		{"another CA trusts no client", client, otherRoots, "", x509.ExtKeyUsageClientAuth, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cert.Verify(x509.VerifyOptions{
				DNSName:   tc.host,
				Roots:     tc.roots,
				KeyUsages: []x509.ExtKeyUsage{tc.usage},
			})
			if (err == nil) != tc.wantOK {
				t.Errorf("Verify = %v, want ok %v", err, tc.wantOK)
			}
		})
	}
}
