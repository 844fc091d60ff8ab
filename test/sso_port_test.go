package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// portTenantFile is a tenant whose one method is a generic OAuth2 provider
// that is never contacted: starting a sign-in only builds the redirect.
const portTenantFile = `tenants:
  - id: initech
    name: Initech
    methods:
      - type: social
        provider: generic
        clientID: tenantgate
        clientSecret: never-used
        authURL: http://127.0.0.1:9/auth
        tokenURL: http://127.0.0.1:9/token
        userinfoURL: http://127.0.0.1:9/userinfo
        idField: sub
        emailField: email
    roles:
      member: {permissions: ["docs:read"]}
`

// TestSSOCallbackKeepsTheBrowsersPort: a browser that reaches Envoy on a
// port other than the scheme's default (the demo's 8080, here a free port)
// must be sent back by the IdP to that same host and port, so the
// redirect_uri tenantgate puts in the authorization request (and likewise
// the SAML ACS and entity id) must carry it. docs/sso-keycloak.md promises
// "http://acme.app.localhost:<envoy-port>/_auth/callback".
func TestSSOCallbackKeepsTheBrowsersPort(t *testing.T) {
	s := startHarness(t, stack.Tenants(func() string { return portTenantFile }), stack.LoopbackHTTPIdP())
	_, port, _ := strings.Cut(s.EnvoyAddr, ":")
	host := "initech." + baseDomain + ":" + port

	resp := s.send(t, request{host: host, target: "/_auth/login?rd=%2F", headers: []header{{"Accept", "text/html"}}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in page of a tenant with one SSO method: want 302 to the provider, got\n%s", resp)
	}
	loc := mustParseURL(t, resp.Header.Get("Location"))
	if got, want := loc.Query().Get("redirect_uri"), "http://"+host+"/_auth/callback"; got != want {
		reached := "nothing"
		if seen := s.SignIn.Requests(); len(seen) > 0 {
			reached = "Host " + seen[len(seen)-1].Host
		}
		t.Errorf("redirect_uri = %q, want %q (the browser's host and port); tenantgate's HTTP port received %s",
			got, want, reached)
	}
}
