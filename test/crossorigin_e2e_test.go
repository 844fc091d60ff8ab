package test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// crossOriginTenants: acme guards (the default) and trusts one named origin;
// globex has turned the guard off. bob is a member of both.
const crossOriginTenants = `tenants:
  - id: acme
    emailDomains: [acme.test]
    methods: [{type: password}]
    roles: {member: {permissions: ["docs:read"]}}
    trustedOrigins: [http://admin.acme.test]
  - id: globex
    emailDomains: [globex.test]
    methods: [{type: password}]
    roles: {member: {permissions: ["docs:read"]}}
    crossOriginGuard: false
`

// TestCrossOriginGuardEndToEnd proves the guard through the real Envoy
// (CONTRACT.md, Check: cross_origin): a sibling tenant's page cannot make the
// signed-in person's browser write to another tenant, and what is not a
// cross-origin browser write still passes.
func TestCrossOriginGuardEndToEnd(t *testing.T) {
	s := startHarness(t, stack.Tenants(func() string { return crossOriginTenants },
		stack.Membership{User: bob, Tenant: "acme", Role: "member"}, stack.Membership{User: bob, Tenant: "globex", Role: "member"}))
	acme, globex := "acme."+baseDomain, "globex."+baseDomain
	acmeSession := s.signIn(t, acme, bob)
	globexSession := s.signIn(t, globex, bob)

	write := func(host string, hs ...header) *response {
		t.Helper()
		return s.send(t, request{method: http.MethodPost, host: host, target: "/api/transfer",
			headers: append([]header{{"Content-Type", "application/x-www-form-urlencoded"}}, hs...), body: "amount=100"})
	}
	refused := []struct {
		name string
		hs   []header
	}{
		// What Chromium sends for a form or fetch from globex's page.
		{"sibling tenant's page (fetch metadata)", []header{cookieHeader(acmeSession), {"Sec-Fetch-Site", "same-site"}, {"Origin", "https://" + globex}}},
		// Plain http: no Sec-Fetch-Site, only Origin.
		{"sibling tenant's origin over plain http", []header{cookieHeader(acmeSession), {"Origin", "http://" + globex}}},
		{"opaque origin", []header{cookieHeader(acmeSession), {"Origin", "null"}}},
		{"another site", []header{cookieHeader(acmeSession), {"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.test"}}},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			resp := write(acme, tc.hs...)
			if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "cross_origin" {
				t.Fatalf("want 403 cross_origin, got\n%s", resp)
			}
			jsonDenial(t, resp)
			noUpstream(t, s, hits)
		})
	}
	passes := []struct {
		name, host string
		hs         []header
	}{
		{"same-origin page", acme, []header{cookieHeader(acmeSession), {"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://" + acme}}},
		{"same origin over plain http", acme, []header{cookieHeader(acmeSession), {"Origin", "http://" + acme}}},
		{"trusted origin", acme, []header{cookieHeader(acmeSession), {"Sec-Fetch-Site", "same-site"}, {"Origin", "http://admin.acme.test"}}},
		{"no browser headers (a script with the cookie)", acme, []header{cookieHeader(acmeSession)}},
		{"bearer token from anywhere", acme, []header{{"Authorization", "Bearer " + acmeSession.Value}, {"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.test"}}},
		{"tenant with the guard off", globex, []header{cookieHeader(globexSession), {"Sec-Fetch-Site", "same-site"}, {"Origin", "http://" + acme}}},
	}
	for _, tc := range passes {
		t.Run("passes: "+tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			got := upstreamSaw(t, s, write(tc.host, tc.hs...), hits)
			if got.Method != http.MethodPost || got.Values("x-user-email")[0] != bob.Email {
				t.Errorf("the app saw %s with x-user-email %q, want the POST as %s", got.Method, got.Values("x-user-email"), bob.Email)
			}
		})
	}
}

// allowWebSockets is the edit an operator makes to envoy.yaml for an app
// that serves WebSockets: the shipped config refuses every upgrade (403).
func allowWebSockets(config string) string {
	const codec = "                codec_type: AUTO\n"
	return strings.Replace(config, codec, codec+"                upgrade_configs:\n                  - upgrade_type: websocket\n", 1)
}

// TestCrossOriginWebSocket: a WebSocket handshake is a GET, but browsers
// attach the session cookie to it without any CORS check, and the channel
// both acts and reads answers. Through an Envoy that proxies WebSockets, a
// sibling tenant's page must not open one as the signed-in person
// (cross-site WebSocket hijacking); the tenant's own page still can.
func TestCrossOriginWebSocket(t *testing.T) {
	s := startHarness(t, stack.Tenants(func() string { return crossOriginTenants },
		stack.Membership{User: bob, Tenant: "acme", Role: "member"}), stack.EnvoyConfig("envoy.yaml", allowWebSockets))
	acme, globex := "acme."+baseDomain, "globex."+baseDomain
	session := s.signIn(t, acme, bob)
	handshake := func(hs ...header) *response {
		t.Helper()
		return s.send(t, request{host: acme, target: "/ws", headers: append([]header{
			cookieHeader(session), {"Upgrade", "websocket"}, {"Connection", "Upgrade"},
			{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
		}, hs...)})
	}
	refused := []struct {
		name string
		hs   []header
	}{
		{"sibling tenant's page (fetch metadata)", []header{{"Sec-Fetch-Site", "same-site"}, {"Sec-Fetch-Mode", "websocket"}, {"Origin", "https://" + globex}}},
		{"sibling tenant's origin over plain http", []header{{"Origin", "http://" + globex}}},
		{"another site", []header{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.test"}}},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			resp := handshake(tc.hs...)
			if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "cross_origin" {
				t.Fatalf("want 403 cross_origin, got\n%s", resp)
			}
			noUpstream(t, s, hits)
		})
	}
	passes := []struct {
		name string
		hs   []header
	}{
		{"the tenant's own page", []header{{"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://" + acme}}},
		{"the tenant's own page over plain http", []header{{"Origin", "http://" + acme}}},
		{"a trusted origin", []header{{"Sec-Fetch-Site", "same-site"}, {"Origin", "http://admin.acme.test"}}},
	}
	for _, tc := range passes {
		t.Run("passes: "+tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			resp := handshake(tc.hs...)
			if s.Upstream.Hits() != hits+1 {
				t.Fatalf("the handshake did not reach the app:\n%s", resp)
			}
			got := lastUpstream(t, s)
			if !slices.Equal(got.Values("upgrade"), []string{"websocket"}) || !slices.Equal(got.Values("x-user-email"), []string{bob.Email}) {
				t.Errorf("the app saw upgrade %q as %q, want a websocket handshake as %s", got.Values("upgrade"), got.Values("x-user-email"), bob.Email)
			}
		})
	}
}
