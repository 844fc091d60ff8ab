package extauthz

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// rulesFile holds acme, whose roles and rules are CONTRACT.md's example, and
// globex, whose rules exercise the other shapes a methods list takes.
const rulesFile = `tenants:
  - id: acme
    methods: [{type: password}]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, methods: [GET, POST], permission: "admin:access"}
  - id: globex
    methods: [{type: password}]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /feed/, methods: [GET], access: anonymous}
      - {path: /reports/, methods: [GET], permission: "docs:read"}
      - {path: /reports/, methods: [DELETE], permission: "reports:delete"}
      - {path: /api/, methods: [OPTIONS], access: anonymous}
      - {path: /api/, methods: [GET, POST], permission: "docs:read"}
      - {path: /shared/, methods: [GET], permission: "admin:access"}
      - {path: /shared/}
`

// rulesAuthorizer is an Authorizer over rulesFile (parsed and validated as
// `tenants apply` would) and a function minting a bearer header for a
// member of a tenant with the given roles.
func rulesAuthorizer(t *testing.T) (*Authorizer, func(tenant string, roles ...string) string) {
	t.Helper()
	types := tenants.MethodTypes{{Name: tenants.MethodPassword, NewConfig: password.NewConfig}}
	ts, err := tenants.ParseFile([]byte(rulesFile), types)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenants.Validate(ts, tenants.ValidateOptions{Methods: types}); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, seal.MasterKeySize)
	rand.Read(key)
	sealer, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts {
		ts[i].InternalID = "i" + ts[i].ID
		k, err := session.NewSigningKey(sealer, ts[i].InternalID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ts[i].Keys = []tenants.SigningKey{k}
	}
	snap := tenants.NewSnapshot(ts, nil)
	snaps := &tenants.Current{}
	if err := snaps.Refresh(t.Context(), staticStore{snap}); err != nil {
		t.Fatal(err)
	}
	minter := &session.Minter{Sealer: sealer, TTL: time.Hour}
	// Each role set is its own member, published in the snapshot: Check
	// takes roles from the membership, not from the token.
	bearer := func(tenant string, roles ...string) string {
		tn := snap.BySlug(tenant)
		sub := "u-" + tenant + "-" + strings.Join(roles, ".")
		var c tenants.SnapshotChange
		c.PutMembership(tn.InternalID, sub, roles)
		if err := snaps.Refresh(t.Context(), staticStore{snaps.Load().With(&c)}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := minter.Mint(tn, session.Claims{Subject: sub, Email: "alice@" + tenant + ".test", Roles: roles, Method: "password"})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	a := &Authorizer{
		Snapshots:  snaps,
		Resolver:   &tenants.Resolver{BaseDomains: []string{"app.test"}, PathPrefix: "/org"},
		Verifier:   session.NewVerifier(),
		CookieName: session.CookieName(false),
	}
	return a, bearer
}

// TestDecideMethodRules is CONTRACT.md's rule semantics (issue 7, item 2):
// a rule listing methods decides only those methods (HEAD counting as GET,
// methods case-sensitive), and the other methods on its path are refused,
// never left to the tenant default. A refused request is authenticated
// first: no credential gets 401 (or the sign-in redirect), a member 403.
func TestDecideMethodRules(t *testing.T) {
	a, bearer := rulesAuthorizer(t)
	acmeMember, acmeAdmin := bearer("acme", "member"), bearer("acme", "admin")
	globexMember, globexAdmin := bearer("globex", "member"), bearer("globex", "admin")
	const html = "text/html,application/xhtml+xml"

	type want struct {
		outcome Outcome
		status  int
		code    string
	}
	var (
		allow     = want{Allow, 0, ""}
		anonymous = want{AllowAnonymous, 0, ""}
		forbidden = want{Deny, 403, CodeForbidden}
		unauth    = want{Deny, 401, CodeUnauthenticated}
		redirect  = want{Redirect, 0, CodeUnauthenticated}
	)
	cases := []struct {
		name, method, host, path string
		auth, accept             string
		want                     want
	}{
		// CONTRACT's example: {path: /admin/, methods: [GET, POST], permission: "admin:access"}.
		{"member GET on /admin/", "GET", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member POST on /admin/", "POST", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member PUT on /admin/", "PUT", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member PATCH on /admin/", "PATCH", "acme.app.test", "/admin/users/1", acmeMember, "", forbidden},
		{"member DELETE on /admin/", "DELETE", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member HEAD on /admin/ counts as GET", "HEAD", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member OPTIONS on /admin/", "OPTIONS", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member lower-case get on /admin/", "get", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member lower-case post on /admin/", "post", "acme.app.test", "/admin/", acmeMember, "", forbidden},
		{"member TRACE on /admin", "TRACE", "acme.app.test", "/admin", acmeMember, "", forbidden},
		{"member DELETE on encoded /admin/", "DELETE", "acme.app.test", "/%61dmin/x", acmeMember, "", forbidden},
		{"member DELETE on /admin/ with a query", "DELETE", "acme.app.test", "/admin/?x=1", acmeMember, "", forbidden},
		{"member DELETE on /admin/ by path tenancy", "DELETE", "app.test", "/org/acme/admin/", acmeMember, "", forbidden},
		{"member DELETE outside /admin/", "DELETE", "acme.app.test", "/administrator", acmeMember, "", allow},
		{"member lower-case get outside any methods rule", "get", "acme.app.test", "/docs/1", acmeMember, "", allow},
		{"admin GET on /admin/", "GET", "acme.app.test", "/admin/", acmeAdmin, "", allow},
		{"admin HEAD on /admin/", "HEAD", "acme.app.test", "/admin/users", acmeAdmin, "", allow},
		{"admin POST on /admin/", "POST", "acme.app.test", "/admin/users", acmeAdmin, "", allow},
		// Listing methods refuses the others to everyone, "*" included.
		{"admin DELETE on /admin/", "DELETE", "acme.app.test", "/admin/users/1", acmeAdmin, "", forbidden},
		{"admin PUT on /admin/", "PUT", "acme.app.test", "/admin/", acmeAdmin, "", forbidden},
		{"admin lower-case get on /admin/", "get", "acme.app.test", "/admin/", acmeAdmin, "", forbidden},
		{"admin OPTIONS on /admin/", "OPTIONS", "acme.app.test", "/admin/", acmeAdmin, "", forbidden},
		// Authentication comes first.
		{"no credential DELETE on /admin/", "DELETE", "acme.app.test", "/admin/", "", "", unauth},
		{"no credential CORS preflight on /admin/", "OPTIONS", "acme.app.test", "/admin/", "", "", unauth},
		{"no credential lower-case get on /admin/ is no navigation", "get", "acme.app.test", "/admin/", "", html, unauth},
		{"no credential browser HEAD on /admin/", "HEAD", "acme.app.test", "/admin/", "", html, redirect},
		{"no credential DELETE on /public/", "DELETE", "acme.app.test", "/public/x", "", "", anonymous},

		// An anonymous rule with methods: only those are anonymous.
		{"no credential GET on an anonymous GET rule", "GET", "globex.app.test", "/feed/x", "", "", anonymous},
		{"no credential HEAD on an anonymous GET rule", "HEAD", "globex.app.test", "/feed/x", "", "", anonymous},
		{"no credential POST on an anonymous GET rule", "POST", "globex.app.test", "/feed/x", "", "", unauth},
		{"member POST on an anonymous GET rule", "POST", "globex.app.test", "/feed/x", globexMember, "", forbidden},
		{"admin POST on an anonymous GET rule", "POST", "globex.app.test", "/feed/x", globexAdmin, "", forbidden},
		// Two rules on one path, each for its own methods.
		{"member GET on /reports/", "GET", "globex.app.test", "/reports/1", globexMember, "", allow},
		{"member HEAD on /reports/", "HEAD", "globex.app.test", "/reports/1", globexMember, "", allow},
		{"member DELETE on /reports/ needs its permission", "DELETE", "globex.app.test", "/reports/1", globexMember, "", forbidden},
		{"admin DELETE on /reports/", "DELETE", "globex.app.test", "/reports/1", globexAdmin, "", allow},
		{"admin PUT on /reports/", "PUT", "globex.app.test", "/reports/1", globexAdmin, "", forbidden},
		// A listed anonymous OPTIONS lets CORS preflights through.
		{"no credential CORS preflight on /api/", "OPTIONS", "globex.app.test", "/api/items", "", "", anonymous},
		{"no credential GET on /api/", "GET", "globex.app.test", "/api/items", "", "", unauth},
		{"member GET on /api/", "GET", "globex.app.test", "/api/items", globexMember, "", allow},
		{"member DELETE on /api/", "DELETE", "globex.app.test", "/api/items", globexMember, "", forbidden},
		// A later rule without methods decides what the earlier one left.
		{"member GET on /shared/", "GET", "globex.app.test", "/shared/x", globexMember, "", forbidden},
		{"member DELETE on /shared/", "DELETE", "globex.app.test", "/shared/x", globexMember, "", allow},

		// Many apps route paths without regard to case (Express and Koa by
		// default, ASP.NET Core, files on Windows or macOS): /ADMIN/ is
		// their /admin/. A path under a rule's path only when letters are
		// compared without case is refused to everyone, after
		// authentication, rather than left to the tenant default.
		{"member GET on /ADMIN/", "GET", "acme.app.test", "/ADMIN/users", acmeMember, "", forbidden},
		{"member POST on /Admin", "POST", "acme.app.test", "/Admin", acmeMember, "", forbidden},
		{"member GET on encoded /%41dmin/", "GET", "acme.app.test", "/%41dmin/x", acmeMember, "", forbidden},
		{"member GET on /ADMIN/ by path tenancy", "GET", "app.test", "/org/acme/ADMIN/", acmeMember, "", forbidden},
		// ASP.NET Core compares by upper-casing: dotless ı is I there, and
		// so /admın/ is /admin/; long s ſ folds to s in Unicode.
		{"member GET on /admın/ (dotless i)", "GET", "acme.app.test", "/adm%C4%B1n/x", acmeMember, "", forbidden},
		{"member GET on /admİn/ (dotted capital I)", "GET", "acme.app.test", "/adm%C4%B0n/x", acmeMember, "", forbidden},
		{"admin DELETE on /reportſ/ (long s)", "DELETE", "globex.app.test", "/report%C5%BF/1", globexAdmin, "", forbidden},
		{"admin GET on /ADMIN/", "GET", "acme.app.test", "/ADMIN/users", acmeAdmin, "", forbidden},
		{"no credential GET on /ADMIN/", "GET", "acme.app.test", "/ADMIN/users", "", "", unauth},
		{"no credential GET on /PUBLIC/ is not anonymous", "GET", "acme.app.test", "/PUBLIC/x", "", "", unauth},
		{"member GET on /Public/", "GET", "acme.app.test", "/Public/x", acmeMember, "", forbidden},
		{"member GET on /ADMINISTRATOR is under no rule", "GET", "acme.app.test", "/ADMINISTRATOR", acmeMember, "", allow},
		{"member GET on /Docs/ is under no rule", "GET", "acme.app.test", "/Docs/1", acmeMember, "", allow},
		{"admin DELETE on /REPORTS/", "DELETE", "globex.app.test", "/REPORTS/1", globexAdmin, "", forbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"authorization": tc.auth, "accept": tc.accept}
			d := a.Decide(&Request{Host: tc.host, Path: tc.path, Method: tc.method, Header: func(n string) string { return hdr[n] }})
			if d.Outcome != tc.want.outcome || d.Status != tc.want.status || d.Code != tc.want.code {
				t.Errorf("%s %s%s: outcome %d status %d code %q, want outcome %d status %d code %q",
					tc.method, tc.host, tc.path, d.Outcome, d.Status, d.Code, tc.want.outcome, tc.want.status, tc.want.code)
			}
		})
	}
}

// TestDecideMethodOverride: apps that honour a method-override header on a
// POST (Symfony and Laravel always, Rails, ASP.NET Core's and Express's
// middleware when installed) run the method it names, after tenantgate
// decided on the POST. Such a request must pass the rules for both.
func TestDecideMethodOverride(t *testing.T) {
	a, bearer := rulesAuthorizer(t)
	member, admin := bearer("globex", "member"), bearer("globex", "admin")
	cases := []struct {
		name, method, path, auth string
		header, value            string
		want                     Outcome
		status                   int
	}{
		{"member POST naming DELETE on /api/", "POST", "/api/items", member, "x-http-method-override", "DELETE", Deny, 403},
		{"admin POST naming DELETE on /api/", "POST", "/api/items", admin, "x-http-method-override", "DELETE", Deny, 403},
		{"member POST naming DELETE in X-HTTP-Method", "POST", "/api/items", member, "x-http-method", "DELETE", Deny, 403},
		{"member POST naming delete in X-Method-Override", "POST", "/api/items", member, "x-method-override", " delete ", Deny, 403},
		{"member POST naming GET and DELETE", "POST", "/api/items", member, "x-http-method-override", "GET, DELETE", Deny, 403},
		{"member POST naming DELETE on /reports/ (needs reports:delete)", "POST", "/reports/1", member, "x-http-method-override", "DELETE", Deny, 403},
		{"no credential OPTIONS naming DELETE is not anonymous", "OPTIONS", "/api/items", "", "x-http-method-override", "DELETE", Deny, 401},
		{"member POST naming GET on /api/", "POST", "/api/items", member, "x-http-method-override", "GET", Allow, 0},
		{"member POST naming POST", "POST", "/api/items", member, "x-http-method-override", "POST", Allow, 0},
		{"member POST naming DELETE where no rule lists methods", "POST", "/docs/1", member, "x-http-method-override", "DELETE", Allow, 0},
		{"admin POST naming DELETE on /reports/", "POST", "/reports/1", admin, "x-http-method-override", "DELETE", Deny, 403},
		{"member POST naming the same methods many times", "POST", "/api/items", member, "x-http-method-override", "GET,get, GET,POST", Allow, 0},
		{"member POST naming more methods than any app runs", "POST", "/docs/1", member, "x-http-method-override", "A,B,C,D,E", Deny, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"authorization": tc.auth, tc.header: tc.value}
			d := a.Decide(&Request{Host: "globex.app.test", Path: tc.path, Method: tc.method, Header: func(n string) string { return hdr[n] }})
			if d.Outcome != tc.want || d.Status != tc.status {
				t.Errorf("%s %s (%s: %s): outcome %d status %d code %q, want outcome %d status %d",
					tc.method, tc.path, tc.header, tc.value, d.Outcome, d.Status, d.Code, tc.want, tc.status)
			}
		})
	}
}
