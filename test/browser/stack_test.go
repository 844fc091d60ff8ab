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
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// baseDomain is tenantgate's --base-domain: tenant acme is acme.app.test and
// the apex host, with home-realm discovery, is app.test.
const baseDomain = stack.BaseDomain

// origin is the https origin of a tenant (or of the apex, for "") as the
// browser reaches it.
func origin(tenant string) string {
	if tenant == "" {
		return "https://" + baseDomain
	}
	return "https://" + tenant + "." + baseDomain
}

// The built-in users. dana is a member of two tenants, for switching.
var (
	mia  = stack.User{Email: "mia@initech.test", Password: "mia-initech-password-1"}
	dana = stack.User{Email: "dana@initech.test", Password: "dana-two-tenants-pw-1"}
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

// harness is the suite's one running stack, with TLS on Envoy's listener,
// and the Keycloak its SSO tenants use.
type harness struct {
	*stack.Stack
	cert    *stack.Certificate // Envoy's listener certificate
	kc      *keycloak.Server
	timings []string // "what: duration", for the test log
}

// chromiumPath is $TENANTGATE_CHROMIUM or Debian's /usr/bin/chromium.
func chromiumPath(t testing.TB) string {
	p := os.Getenv("TENANTGATE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	return proc.Tool(t, "Chromium", p, "make tools (or: apt-get install -y --no-install-recommends chromium)")
}

// startHarness starts everything the browser tests reach, once; it all
// stops when t ends. tenantgate runs as in production (stack.SecureCookies)
// behind the shipped envoy.yaml with TLS added (withTLS) and the public port
// 443 (withPublicPort). Keycloak's cold start dominates, so it runs while
// tenantgate builds.
func startHarness(t *testing.T) *harness {
	t.Helper()
	proc.Envoy(t) // skip or fail before paying for Keycloak
	s := &harness{cert: stack.NewCertificate(t)}
	began := time.Now()
	mark := func(what string) {
		s.timings = append(s.timings, fmt.Sprintf("%s %s", what, time.Since(began).Round(10*time.Millisecond)))
	}

	// Keycloak boots (a minute or more on two busy cores) while tenantgate
	// builds; it is stopped when t ends, ready or not.
	waitKeycloak := keycloak.StartAsync(t, keycloak.Options{Origins: keycloak.Origins{
		Acme: origin("acme"), Globex: origin("globex"), Initech: origin("initech"),
	}})
	tenants := func() string { // called once tenantgate is built
		mark("tenantgate built")
		s.kc = waitKeycloak()
		mark(fmt.Sprintf("keycloak ready (own start %s)", s.kc.StartupDuration().Round(10*time.Millisecond)))
		return fmt.Sprintf(tenantFile, s.kc.URL())
	}
	s.Stack = stack.Start(t,
		stack.Tenants(tenants,
			stack.Membership{User: mia, Tenant: "initech", Role: "member"},
			stack.Membership{User: dana, Tenant: "initech", Role: "admin"},
			stack.Membership{User: dana, Tenant: "hooli", Role: "member"}),
		stack.LoopbackHTTPIdP(),
		stack.SecureCookies(),
		stack.Upstream(&echo.Handler{Pages: appPages}),
		stack.EnvoyConfig("envoy.yaml", withTLS(t, s.cert), withPublicPort(t, 443)))
	mark("stack ready")
	return s
}

// localPort is the value envoy.yaml's /_auth/ routes send as
// x-forwarded-port: the port the browser connected to, as Envoy sees it.
const localPort = `value: "%DOWNSTREAM_LOCAL_PORT%"`

// withPublicPort is an Envoy config edit that writes port where envoy.yaml
// sends Envoy's own port as x-forwarded-port, as its comment says to do
// behind a port mapping: the browser reaches Envoy's loopback port as https
// port 443 (through --host-resolver-rules), so the URLs tenantgate builds
// for it must carry no port. It fails the test if the config no longer
// sends that header.
func withPublicPort(t *testing.T, port int) func(config string) string {
	return func(cfg string) string {
		if !strings.Contains(cfg, localPort) {
			t.Fatalf("set the public port in envoy.yaml: no %s", localPort)
		}
		return strings.ReplaceAll(cfg, localPort, fmt.Sprintf(`value: "%d"`, port))
	}
}

// listenerChain is the start of the shipped listener's one filter chain;
// withTLS puts the transport socket before its filters.
const listenerChain = "      filter_chains:\n        - filters:\n"

// withTLS is an Envoy config edit that adds envoy/README.md's production
// TLS block (DownstreamTlsContext, h2 and http/1.1, TLS 1.2 or newer,
// serving cert) to the listener of the shipped config. It fails the test if
// the config no longer has exactly one such filter chain, so a changed
// envoy.yaml cannot silently run the tests in plain http.
func withTLS(t *testing.T, cert *stack.Certificate) func(config string) string {
	return func(cfg string) string {
		if n := strings.Count(cfg, listenerChain); n != 1 {
			t.Fatalf("add tls to envoy.yaml: %d listener filter chains of the expected shape, want 1", n)
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
`, cert.CertFile, cert.KeyFile)
		return strings.Replace(cfg, listenerChain, tls, 1)
	}
}

// linesCarryRequestIDs fails t unless tenantgate's log holds a line of
// each of msgs and every such line carries the request id Envoy gave the
// request (x-request-id, request_id): the second step and the passkey
// pages log through the request's context like the other sign-in pages.
func linesCarryRequestIDs(t *testing.T, log string, msgs ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || !slices.Contains(msgs, l.Msg) {
			continue
		}
		seen[l.Msg]++
		if l.RequestID == "" {
			t.Errorf("log line without its request id: %s", line)
		}
	}
	for _, msg := range msgs {
		if seen[msg] == 0 {
			t.Errorf("no %q line in tenantgate's log", msg)
		}
	}
}
