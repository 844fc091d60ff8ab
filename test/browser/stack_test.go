// Package browser proves tenantgate's sign-in flows in a real browser:
// headless Chromium (Debian's chromium package, driven with chromedp) in
// front of the real Envoy (the shipped envoy/envoy.yaml with the TLS block
// of envoy/README.md on its listener), a real `tenantgate serve` built from
// this tree and a real Keycloak for the OIDC, SAML and OAuth2 tenants.
//
// tenantgate runs as in production: https origins, no --insecure-cookies,
// so the session cookie is __Host-tenantgate (Secure, host-only) and the
// SAML attempt cookie is SameSite=None; Secure. That is not only closer to
// production, it is needed: with --insecure-cookies the SAML attempt cookie
// is SameSite=Lax, and a browser withholds it from Keycloak's cross-site
// POST to the ACS. Chromium reaches every tenant host at its default https
// port: --host-resolver-rules maps *.app.test and app.test to Envoy's
// loopback port, so origins are https://acme.app.test with no port, exactly
// as a person would see them. Chromium trusts Envoy's self-signed
// certificate by its public-key pin (--ignore-certificate-errors-spki-list),
// and nothing else.
//
// One stack and one Chromium serve the whole test binary; each test gets
// its own browser context (its own cookie jar and storage), so no test sees
// another's session. Screenshots of every step go to the test's artifact
// directory (go test -artifacts keeps them) or, when TENANTGATE_SCREENSHOTS
// is set, to <that directory>/<test name>/.
//
// A missing Chromium, Envoy or Keycloak fails the suite when CI is set and
// skips it, naming `make tools`, otherwise. Like every live Keycloak test it
// is also skipped with -short or TENANTGATE_KEYCLOAK_TESTS=0.
package browser

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/envoyconf"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// baseDomain is tenantgate's --base-domain: tenant acme is acme.app.test and
// the apex host, with home-realm discovery, is app.test.
const baseDomain = "app.test"

// origin is the https origin of a tenant (or of the apex, for "") as the
// browser reaches it.
func origin(tenant string) string {
	if tenant == "" {
		return "https://" + baseDomain
	}
	return "https://" + tenant + "." + baseDomain
}

// person is a built-in (password) user of the stack.
type person struct {
	email, password string
}

// The built-in users. dana is a member of two tenants, for switching.
var (
	mia  = person{"mia@initech.test", "mia-initech-password-1"}
	dana = person{"dana@initech.test", "dana-two-tenants-pw-1"}
)

// initechAccent is initech's branding accent colour, and how a browser's
// computed style spells it.
const (
	initechAccent    = "#0f766e"
	initechAccentRGB = "rgb(15, 118, 110)"
)

// tenantFile is the stack's tenants: initech signs in with a password or
// Keycloak's generic OAuth2 realm, hooli with a password only, acme with
// Keycloak OIDC only and globex with Keycloak SAML only (so their sign-in
// pages go straight to Keycloak). %[1]s is Keycloak's base URL.
const tenantFile = `tenants:
  - id: initech
    name: Initech
    emailDomains: [initech.test]
    branding: {accentColor: "` + initechAccent + `"}
    methods:
      - type: password
      - type: social
        provider: generic
        label: Sign in with Initech SSO
        clientID: ` + keycloak.OAuthClientID + `
        clientSecret: ` + keycloak.OAuthClientSecret + `
        authURL: %[1]s/realms/` + keycloak.RealmOAuth + `/protocol/openid-connect/auth
        tokenURL: %[1]s/realms/` + keycloak.RealmOAuth + `/protocol/openid-connect/token
        userinfoURL: %[1]s/realms/` + keycloak.RealmOAuth + `/protocol/openid-connect/userinfo
        idField: sub
        emailField: email
        emailVerifiedField: email_verified
        scopes: [openid, email, profile]
        defaultRoles: [member]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /admin/, permission: "admin:access"}
      - {path: /public/, access: anonymous}
    trustedOrigins: ["` + trustedByInitech + `"]
  - id: hooli
    name: Hooli
    emailDomains: [hooli.test]
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods:
      - type: oidc
        label: Sign in with Acme SSO
        issuer: %[1]s/realms/` + keycloak.RealmOIDC + `
        clientID: ` + keycloak.OIDCClientID + `
        clientSecret: ` + keycloak.OIDCClientSecret + `
        groupRoles: {admins: [admin]}
        defaultRoles: [member]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
  - id: globex
    name: Globex Corporation
    emailDomains: [globex.test]
    methods:
      - type: saml
        label: Sign in with Globex SAML
        idpMetadataURL: %[1]s/realms/` + keycloak.RealmSAML + `/protocol/saml/descriptor
        groupRoles: {admins: [admin]}
        defaultRoles: [member]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
`

// stack is one running Keycloak, tenantgate, echo upstream and Envoy with
// TLS on its listener.
type stack struct {
	envoyPort int
	certFile  string // the listener's certificate (PEM)
	certPin   string // base64 SHA-256 of the listener certificate's SPKI
	upstream  *echo.Handler
	kc        *keycloak.Server
	tg        *proc.Process
	envoy     *proc.Process
	timings   []string // "what: duration", for the test log
}

// chromiumPath is $TENANTGATE_CHROMIUM or Debian's /usr/bin/chromium.
func chromiumPath(t testing.TB) string {
	p := os.Getenv("TENANTGATE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	return proc.Tool(t, "Chromium", p, "make tools (or: apt-get install -y --no-install-recommends chromium)")
}

// startStack starts everything the browser tests reach, once; it all stops
// when t ends. Keycloak's cold start dominates, so it runs while tenantgate
// builds.
func startStack(t *testing.T) *stack {
	t.Helper()
	root := proc.RepoRoot(t)
	envoyBin := proc.Envoy(t)
	dir := t.TempDir()
	s := &stack{upstream: &echo.Handler{Pages: appPages}}
	began := time.Now()
	mark := func(what string) {
		s.timings = append(s.timings, fmt.Sprintf("%s %s", what, time.Since(began).Round(10*time.Millisecond)))
	}

	// Keycloak boots (a minute or more on two busy cores) while tenantgate
	// builds; it is stopped when t ends, ready or not.
	waitKeycloak := keycloak.StartAsync(t, keycloak.Options{Origins: keycloak.Origins{
		Acme: origin("acme"), Globex: origin("globex"), Initech: origin("initech"),
	}})

	tg := proc.BuildTenantgate(t, dir)
	mark("tenantgate built")

	certFile, keyFile, pin := writeCertificate(t, dir)
	s.certFile, s.certPin = certFile, pin

	s.kc = waitKeycloak()
	mark(fmt.Sprintf("keycloak ready (own start %s)", s.kc.StartupDuration().Round(10*time.Millisecond)))

	store := []string{"--db", filepath.Join(dir, "tenantgate.db"), "--master-key-file", filepath.Join(dir, "tenantgate.key")}
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, fmt.Appendf(nil, tenantFile, s.kc.URL()), 0o600); err != nil {
		t.Fatal(err)
	}
	proc.Run(t, "", tg, append([]string{"tenants", "apply", "-f", tenants, "--allow-loopback-http-idp"}, store...)...)
	addUser := func(p person, tenant, role string) {
		proc.Run(t, p.password, tg, append([]string{"users", "add", "--tenant", tenant,
			"--email", p.email, "--role", role, "--password-stdin"}, store...)...)
	}
	addUser(mia, "initech", "member")
	addUser(dana, "initech", "admin")
	addUser(dana, "hooli", "member")

	grpcPort, httpPort, adminPort := proc.FreePort(t), proc.FreePort(t), proc.FreePort(t)
	s.tg = proc.Start(t, tg, append([]string{"serve",
		"--grpc-addr", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--base-domain", baseDomain,
		"--allow-loopback-http-idp",
	}, store...)...)
	s.tg.WaitUntil(t, 20*time.Second, proc.HTTPOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort)))

	upstream := httptest.NewServer(s.upstream)
	t.Cleanup(upstream.Close)

	s.envoyPort = proc.FreePort(t)
	cfg, err := os.ReadFile(filepath.Join(root, "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = envoyconf.RewritePorts(cfg, map[int]int{
		8080: s.envoyPort,
		9001: grpcPort,
		9002: httpPort,
		8081: upstream.Listener.Addr().(*net.TCPAddr).Port,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = withTLS(cfg, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = withPublicPort(cfg, 443)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	s.envoy = proc.Start(t, envoyBin, "-c", cfgPath, "--use-dynamic-base-id", "--concurrency", "1", "-l", "warning")
	s.envoy.WaitUntil(t, 20*time.Second, proc.Listening(fmt.Sprintf("127.0.0.1:%d", s.envoyPort)))
	mark("stack ready")
	return s
}

// localPort is the value envoy.yaml's /_auth/ routes send as
// x-forwarded-port: the port the browser connected to, as Envoy sees it.
const localPort = `value: "%DOWNSTREAM_LOCAL_PORT%"`

// withPublicPort writes port where envoy.yaml sends Envoy's own port as
// x-forwarded-port, as its comment says to do behind a port mapping: the
// browser reaches Envoy's loopback port as https port 443 (through
// --host-resolver-rules), so the URLs tenantgate builds for it must carry
// no port. It fails if the config no longer sends that header.
func withPublicPort(cfg []byte, port int) ([]byte, error) {
	if !bytes.Contains(cfg, []byte(localPort)) {
		return nil, fmt.Errorf("set the public port in envoy.yaml: no %s", localPort)
	}
	return bytes.ReplaceAll(cfg, []byte(localPort), fmt.Appendf(nil, `value: "%d"`, port)), nil
}

// listenerChain is the start of the shipped listener's one filter chain;
// withTLS puts the transport socket before its filters.
const listenerChain = "      filter_chains:\n        - filters:\n"

// withTLS adds envoy/README.md's production TLS block (DownstreamTlsContext,
// h2 and http/1.1, TLS 1.2 or newer) to the listener of the shipped config.
// It fails if the config no longer has exactly one such filter chain, so a
// changed envoy.yaml cannot silently run the tests in plain http.
func withTLS(cfg []byte, certFile, keyFile string) ([]byte, error) {
	if n := bytes.Count(cfg, []byte(listenerChain)); n != 1 {
		return nil, fmt.Errorf("add tls to envoy.yaml: %d listener filter chains of the expected shape, want 1", n)
	}
	tls := fmt.Sprintf(`      filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              common_tls_context:
                alpn_protocols: [h2, http/1.1]
                tls_params:
                  tls_minimum_protocol_version: TLSv1_2
                tls_certificates:
                  - certificate_chain: {filename: %q}
                    private_key: {filename: %q}
          filters:
`, certFile, keyFile)
	return bytes.Replace(cfg, []byte(listenerChain), []byte(tls), 1), nil
}

// writeCertificate writes a self-signed certificate for app.test and
// *.app.test and its key, and returns their paths and the certificate's
// public-key pin as Chromium's --ignore-certificate-errors-spki-list takes
// it (base64 of the SHA-256 of the SubjectPublicKeyInfo).
func writeCertificate(t *testing.T, dir string) (certFile, keyFile, pin string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: baseDomain},
		DNSNames:     []string{baseDomain, "*." + baseDomain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, base64.StdEncoding.EncodeToString(sum[:])
}
