package test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/tenantgate/tenantgate/internal/testca"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// mtlsFiles are the certificates of an mTLS stack: tenantgate's server
// certificate (for localhost and 127.0.0.1) from one CA, and Envoy's client
// certificate from another, which tenantgate's --grpc-client-ca-file
// holds.
type mtlsFiles struct {
	serverCA, clientCA *testca.CA
	server             *testca.Leaf
	// certFile and keyFile are tenantgate's; envoyDir holds Envoy's
	// client.crt, client.key and ca.crt (serverCA), the names
	// envoy-mtls.yaml gives them under /etc/envoy/tenantgate/.
	certFile, keyFile, envoyDir string
}

func newMTLSFiles(t *testing.T) *mtlsFiles {
	t.Helper()
	dir := t.TempDir()
	m := &mtlsFiles{
		serverCA: testca.New(t, "tenantgate CA"),
		clientCA: testca.New(t, "envoy client CA"),
		certFile: filepath.Join(dir, "tls.crt"),
		keyFile:  filepath.Join(dir, "tls.key"),
		envoyDir: t.TempDir(),
	}
	m.server = m.serverCA.Server(t)
	m.server.WriteFiles(t, m.certFile, m.keyFile)
	m.clientCA.Client(t, "envoy").WriteFiles(t, filepath.Join(m.envoyDir, "client.crt"), filepath.Join(m.envoyDir, "client.key"))
	testca.Write(t, filepath.Join(m.envoyDir, "ca.crt"), m.serverCA.PEM)
	return m
}

// serveArgs are tenantgate's mTLS flags.
func (m *mtlsFiles) serveArgs() stack.Option {
	return stack.ServeArgs("--grpc-tls-cert-file", m.certFile, "--grpc-tls-key-file", m.keyFile, "--grpc-client-ca-file", m.clientCA.File)
}

// envoyConfig edits the shipped envoy-mtls.yaml to use these files and
// tenantgate's test name, localhost; without clientCert, Envoy presents no
// client certificate (its tls_certificates are cut out).
func (m *mtlsFiles) envoyConfig(t *testing.T, clientCert bool) func(string) string {
	return func(c string) string {
		c = strings.ReplaceAll(c, "/etc/envoy/tenantgate/", m.envoyDir+"/")
		if n := strings.Count(c, "tenantgate.internal"); n != 2 {
			t.Fatalf("envoy-mtls.yaml names tenantgate.internal %d times, want 2 (sni and the SAN matcher)", n)
		}
		c = strings.ReplaceAll(c, "tenantgate.internal", "localhost")
		if !clientCert {
			certs := "            tls_certificates:\n" +
				"              - certificate_chain: {filename: " + m.envoyDir + "/client.crt}\n" +
				"                private_key: {filename: " + m.envoyDir + "/client.key}\n"
			c = replaceOnce(t, c, certs, "")
		}
		return c
	}
}

// TestShippedMTLSEnvoyConfigValidates checks envoy/envoy-mtls.yaml with
// Envoy itself (which needs the certificate files it names to exist).
func TestShippedMTLSEnvoyConfigValidates(t *testing.T) {
	root := proc.RepoRoot(t)
	envoyBin := proc.Envoy(t)
	m := newMTLSFiles(t)
	b, err := os.ReadFile(filepath.Join(root, "envoy", "envoy-mtls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "envoy-mtls.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/etc/envoy/tenantgate/", m.envoyDir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(envoyBin, "--mode", "validate", "-c", path, "-l", "warning").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("envoy --mode validate envoy-mtls.yaml: %v\n%s", err, out)
	}
}

// TestMTLSEndToEnd runs the shipped envoy-mtls.yaml in front of tenantgate
// serving its gRPC port with mTLS: every Check crosses mutual TLS, and the
// contract's answers come through as without it. tenantgate's certificate
// is then rotated under it: new connections get the new one.
func TestMTLSEndToEnd(t *testing.T) {
	m := newMTLSFiles(t)
	s := startHarness(t, m.serveArgs(), stack.EnvoyConfig("envoy-mtls.yaml", m.envoyConfig(t, true)))
	acme := "acme." + baseDomain

	t.Run("anonymous: a browser is sent to the login page, an API call gets 401", func(t *testing.T) {
		hits := s.Upstream.Hits()
		nav := s.send(t, request{host: acme, target: "/docs/1", headers: []header{{"Accept", "text/html"}}})
		if nav.StatusCode != http.StatusFound || mustParseURL(t, nav.Header.Get("Location")).Path != "/_auth/login" {
			t.Errorf("browser: want 302 to /_auth/login, got\n%s", nav)
		}
		api := s.send(t, request{host: acme, target: "/api/items"})
		if api.StatusCode != http.StatusUnauthorized || api.errorCode() != "unauthenticated" {
			t.Errorf("API: want 401 unauthenticated, got\n%s", api)
		}
		noUpstream(t, s, hits)
	})

	t.Run("signed in: the app gets the request with tenantgate's identity", func(t *testing.T) {
		session := s.signIn(t, acme, alice)
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: append([]header{cookieHeader(session)}, spoofHeaders...)})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", alice.Email, "member")
	})

	t.Run("tenantgate refused no handshake", func(t *testing.T) {
		if out := s.Tenantgate.Output(); strings.Contains(out, "handshake refused") {
			t.Errorf("tenantgate refused a handshake:\n%s", out)
		}
	})

	t.Run("a rotated certificate is served to new connections", func(t *testing.T) {
		grpcAddr := servingAddr(t, s.Tenantgate.Output(), "grpc")
		envoy, err := tls.LoadX509KeyPair(filepath.Join(m.envoyDir, "client.crt"), filepath.Join(m.envoyDir, "client.key"))
		if err != nil {
			t.Fatal(err)
		}
		if got := servedSerial(t, grpcAddr, m.serverCA, envoy); got.Cmp(m.server.Cert.SerialNumber) != 0 {
			t.Fatalf("before rotation tenantgate serves serial %s, want %s", got, m.server.Cert.SerialNumber)
		}
		next := m.serverCA.Server(t)
		next.WriteFiles(t, m.certFile, m.keyFile)
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := servedSerial(t, grpcAddr, m.serverCA, envoy)
			if got.Cmp(next.Cert.SerialNumber) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("10 s after rotation tenantgate still serves serial %s, want %s", got, next.Cert.SerialNumber)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(s.Tenantgate.Output(), `"msg":"tls files reloaded"`) {
			t.Error("tenantgate logged no reload")
		}
		// Envoy's connection from before the rotation goes on working.
		session := s.signIn(t, acme, alice)
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/2", headers: []header{cookieHeader(session)}})
		upstreamSaw(t, s, resp, hits)
	})
}

// TestMTLSRefusedHandshakeFailsClosed: when the mTLS handshake between
// Envoy and tenantgate fails, whichever side refuses, the Check fails and,
// with failure_mode_allow false, every request gets status_on_error (503)
// and none reaches the app, not even an anonymous path.
func TestMTLSRefusedHandshakeFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m *mtlsFiles) func(string) string
		// log is what tenantgate logs about the handshake.
		log string
	}{
		{"Envoy presents no client certificate: tenantgate refuses",
			func(m *mtlsFiles) func(string) string { return m.envoyConfig(t, false) },
			"didn't provide a certificate"},
		{"tenantgate's certificate is not for the name Envoy expects: Envoy refuses",
			func(m *mtlsFiles) func(string) string {
				edit := m.envoyConfig(t, true)
				return func(c string) string {
					return strings.ReplaceAll(edit(c), "matcher: {exact: localhost}", "matcher: {exact: tenantgate.internal}")
				}
			},
			"grpc tls handshake refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMTLSFiles(t)
			s := startHarness(t, m.serveArgs(), stack.EnvoyConfig("envoy-mtls.yaml", tc.edit(m)))
			acme := "acme." + baseDomain
			for _, req := range []request{
				{host: acme, target: "/docs/1", headers: []header{{"Accept", "text/html"}}},
				{host: acme, target: "/api/items"},
				{host: acme, target: "/public/x"},
			} {
				hits := s.Upstream.Hits()
				resp := s.send(t, req)
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("%s: want 503 (status_on_error), got\n%s", req.target, resp)
				}
				noUpstream(t, s, hits)
			}
			if out := s.Tenantgate.Output(); !strings.Contains(out, tc.log) {
				t.Errorf("tenantgate logged no line saying %q:\n%s", tc.log, out)
			}
		})
	}
}

// servingAddr is the address tenantgate's "serving" log line gives for
// what ("grpc", "http" or "admin").
func servingAddr(t *testing.T, log, what string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "serving" {
			if addr, ok := line[what].(string); ok {
				return addr
			}
		}
	}
	t.Fatalf("no serving line with %q in the log:\n%s", what, log)
	return ""
}

// servedSerial opens a new mTLS connection to tenantgate's gRPC port,
// presenting client, trusting only ca, and returns the serial number of
// the certificate tenantgate presented (after a health Check over it).
func servedSerial(t *testing.T, addr string, ca *testca.CA, client tls.Certificate) *big.Int {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatalf("health Check over mTLS: %v", err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("no TLS peer certificate: %#v", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber
}
