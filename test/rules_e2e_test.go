package test

import (
	"net/http"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// rulesTenantFile gives acme CONTRACT.md's example roles and rules: /admin/
// lists GET and POST and needs admin:access.
const rulesTenantFile = `tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods:
      - type: password
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, methods: [GET, POST], permission: "admin:access"}
`

// TestEnvoyMethodRules drives issue 7, item 2 through the real Envoy: a rule
// that lists methods decides those methods (HEAD counting as GET) and
// refuses the others on its path to everyone, so a member without the
// permission cannot DELETE /admin/, and neither can an admin.
func TestEnvoyMethodRules(t *testing.T) {
	s := startHarness(t, stack.Tenants(func() string { return rulesTenantFile },
		stack.Membership{User: alice, Tenant: "acme", Role: "member"}, stack.Membership{User: carol, Tenant: "acme", Role: "admin"}))
	acme := "acme." + baseDomain
	member := cookieHeader(s.signIn(t, acme, alice))
	admin := cookieHeader(s.signIn(t, acme, carol))

	refused := []struct {
		name string
		req  request
		want int
		code string // "" for a HEAD, whose answer has no body
	}{
		{"member DELETE /admin/", request{method: http.MethodDelete, host: acme, target: "/admin/", headers: []header{member}}, 403, "forbidden"},
		{"member DELETE /admin/users/1", request{method: http.MethodDelete, host: acme, target: "/admin/users/1", headers: []header{member}}, 403, "forbidden"},
		{"member PUT /admin/", request{method: http.MethodPut, host: acme, target: "/admin/", headers: []header{member}, body: "{}"}, 403, "forbidden"},
		{"member PATCH /admin/", request{method: http.MethodPatch, host: acme, target: "/admin/", headers: []header{member}, body: "{}"}, 403, "forbidden"},
		{"member OPTIONS /admin/", request{method: http.MethodOptions, host: acme, target: "/admin/", headers: []header{member}}, 403, "forbidden"},
		{"member GET /admin/", request{host: acme, target: "/admin/", headers: []header{member}}, 403, "forbidden"},
		{"member HEAD /admin/", request{method: http.MethodHead, host: acme, target: "/admin/", headers: []header{member}}, 403, ""},
		{"admin DELETE /admin/", request{method: http.MethodDelete, host: acme, target: "/admin/", headers: []header{admin}}, 403, "forbidden"},
		{"no session DELETE /admin/", request{method: http.MethodDelete, host: acme, target: "/admin/"}, 401, "unauthenticated"},
		// An app that routes without regard to case (Express, ASP.NET
		// Core) serves its /admin/ at /ADMIN/ too.
		{"member GET /ADMIN/", request{host: acme, target: "/ADMIN/users", headers: []header{member}}, 403, "forbidden"},
		{"member POST /Admin", request{method: http.MethodPost, host: acme, target: "/Admin", headers: []header{member}, body: "{}"}, 403, "forbidden"},
		// Symfony and Laravel run this POST as the DELETE it names.
		{"admin POST /admin/ naming DELETE", request{method: http.MethodPost, host: acme, target: "/admin/users/1",
			headers: []header{admin, {"X-HTTP-Method-Override", "DELETE"}}, body: "{}"}, 403, "forbidden"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			resp := s.send(t, tc.req)
			if resp.StatusCode != tc.want || resp.errorCode() != tc.code {
				t.Fatalf("want %d %s, got\n%s", tc.want, tc.code, resp)
			}
			noStore(t, resp)
			noUpstream(t, s, hits)
		})
	}

	// Methods are case-sensitive: a lower-case get is not a GET. Envoy's
	// HTTP/1 codec answers 400 itself (tenantgate's own answer, 403, is in
	// extauthz's TestDecideMethodRules); either way it never reaches the
	// app.
	t.Run("admin lower-case get /admin/", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{method: "get", host: acme, target: "/admin/", headers: []header{admin}})
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("want 403 (or Envoy's 400), got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	for _, tc := range []struct {
		name string
		req  request
	}{
		{"admin GET /admin/", request{host: acme, target: "/admin/", headers: []header{admin}}},
		{"admin HEAD /admin/", request{method: http.MethodHead, host: acme, target: "/admin/", headers: []header{admin}}},
		{"admin POST /admin/users", request{method: http.MethodPost, host: acme, target: "/admin/users", headers: []header{admin}, body: "{}"}},
		{"admin POST /admin/users naming GET", request{method: http.MethodPost, host: acme, target: "/admin/users", headers: []header{admin, {"X-HTTP-Method-Override", "GET"}}, body: "{}"}},
		{"member DELETE /docs/1 (no rule lists methods there)", request{method: http.MethodDelete, host: acme, target: "/docs/1", headers: []header{member}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			upstreamSaw(t, s, s.send(t, tc.req), hits)
		})
	}
}
