package extauthz

import (
	"context"
	"crypto/rand"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// fixture is two tenants, acme and globex, with keys, a member token for each
// and an Envoy-facing gRPC client talking to a real server on loopback.
type fixture struct {
	snaps  *tenants.Current
	minter *session.Minter
	acme   *tenants.Tenant
	globex *tenants.Tenant
	// hooli has passSessionCookie.
	hooli  *tenants.Tenant
	client authv3.AuthorizationClient
	srv    *Server
	// members maps a tenant and a set of roles to the member token mints
	// for them (member).
	members map[string]string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(id, internal string, status tenants.Status) tenants.Tenant {
		k, err := session.NewSigningKey(sealer, internal, now)
		if err != nil {
			t.Fatal(err)
		}
		return tenants.Tenant{
			ID: id, InternalID: internal, Status: status, Keys: []tenants.SigningKey{k},
			Methods: []tenants.Method{{Type: tenants.MethodPassword}},
			Roles: map[string]tenants.Role{
				"admin":  {Permissions: []string{"admin:access"}, Inherits: []string{"member"}},
				"member": {Permissions: []string{"docs:read"}},
			},
			Rules: []tenants.Rule{
				{Path: "/public/", Access: tenants.AccessAnonymous},
				{Path: "/admin/", Permission: "admin:access"},
				{Path: "/docs", Methods: []string{"GET"}, Permission: "docs:read"},
			},
			Domains: []string{"login." + id + ".test"},
		}
	}
	ts := []tenants.Tenant{
		mk("acme", "iacme", tenants.StatusActive),
		mk("globex", "iglobex", tenants.StatusActive),
		mk("initech", "iinitech", tenants.StatusSuspended),
		mk("umbrella", "iumbrella", tenants.StatusActive),
		mk("hooli", "ihooli", tenants.StatusActive),
	}
	ts[0].TrustedOrigins = []string{"https://admin.acme.test", "http://localhost:3000"}
	ts[3].CrossOriginGuard = new(false)
	ts[4].PassSessionCookie = true
	snaps := &tenants.Current{}
	snaps.Refresh(context.Background(), staticStore{tenants.NewSnapshot(ts, nil)})

	f := &fixture{snaps: snaps, minter: &session.Minter{Sealer: sealer, TTL: time.Hour, Now: time.Now, Rand: rand.Reader}, members: map[string]string{}}
	f.acme = snaps.Load().BySlug("acme")
	f.globex = snaps.Load().BySlug("globex")
	f.hooli = snaps.Load().BySlug("hooli")

	srv := &Server{Authorizer: &Authorizer{
		Snapshots:  snaps,
		Resolver:   &tenants.Resolver{BaseDomains: []string{"app.test"}, PathPrefix: "/org"},
		Verifier:   session.NewVerifier(),
		CookieName: session.CookieName(false),
	}}
	// As serve registers it: allowed answers go out pre-encoded (wire.go),
	// so every test below reads them as Envoy does.
	f.srv = srv
	f.client = authv3.NewAuthorizationClient(serveGRPC(t, srv))
	return f
}

// staticStore serves one fixed snapshot; only Snapshot is used by Current.
type staticStore struct{ s *tenants.Snapshot }

func (s staticStore) Snapshot(context.Context) (*tenants.Snapshot, error) { return s.s, nil }

// token mints a session of a member of tn who holds exactly roles.
func (f *fixture) token(t testing.TB, tn *tenants.Tenant, roles ...string) string {
	t.Helper()
	tok, _, err := f.minter.Mint(tn, session.Claims{Subject: f.member(t, tn, roles), Email: "alice@" + tn.ID + ".test", Roles: roles, Method: "password"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// member returns the id of a member of tn holding exactly roles, adding the
// membership to the published snapshot first if it is new (Check takes the
// roles from there, not from the token). Each set of roles is its own
// member: the first a test asks for in a tenant is u-<tenant>, later ones
// u-<tenant>-2, u-<tenant>-3 and so on.
func (f *fixture) member(t testing.TB, tn *tenants.Tenant, roles []string) string {
	t.Helper()
	key := tn.ID + "\x00" + strings.Join(slices.Sorted(slices.Values(roles)), ",")
	if id, ok := f.members[key]; ok {
		return id
	}
	id := "u-" + tn.ID
	n := 1
	for k := range f.members {
		if strings.HasPrefix(k, tn.ID+"\x00") {
			n++
		}
	}
	if n > 1 {
		id += "-" + strconv.Itoa(n)
	}
	f.members[key] = id
	var c tenants.SnapshotChange
	c.PutMembership(tn.InternalID, id, roles)
	if err := f.snaps.Refresh(context.Background(), staticStore{f.snaps.Load().With(&c)}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) check(t *testing.T, method, host, path string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	if headers == nil {
		headers = map[string]string{}
	}
	return f.checkBoth(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, Headers: headers,
		}},
	}})
}

// checkBoth asks req over gRPC, where an allowed answer goes out
// pre-encoded (wire.go), and fails unless it decodes to exactly the
// message Check builds for the same request.
func (f *fixture) checkBoth(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := f.client.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	msg, _ := f.srv.Check(context.Background(), req)
	if !proto.Equal(resp, msg) {
		t.Fatalf("the answer on the wire is not Check's message:\nwire:    %v\nmessage: %v", resp, msg)
	}
	return resp
}

// checkRaw is check with the headers as Envoy sends them with
// encode_raw_headers: header_map entries, values in raw_value, the headers
// map empty. Each pair is one header line.
func (f *fixture) checkRaw(t *testing.T, method, host, path string, lines ...[2]string) *authv3.CheckResponse {
	t.Helper()
	hm := &corev3.HeaderMap{}
	for _, l := range lines {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: l[0], RawValue: []byte(l[1])})
	}
	return f.checkBoth(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, HeaderMap: hm,
		}},
	}})
}

func headerMap(opts []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, o := range opts {
		m[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return m
}

// wantDenied asserts a denied answer with the given status and JSON code
// (code "" for a redirect), and the headers every refusal carries.
func wantDenied(t *testing.T, resp *authv3.CheckResponse, status int, code string) map[string]string {
	t.Helper()
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		t.Fatalf("allowed; want denied %d %s", status, code)
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("no denied response")
	}
	if got := int(d.GetStatus().GetCode()); got != status {
		t.Fatalf("status %d, want %d (body %s)", got, status, d.GetBody())
	}
	h := headerMap(d.GetHeaders())
	if h["cache-control"] != "no-store" {
		t.Errorf("cache-control %q, want no-store", h["cache-control"])
	}
	if code != "" {
		if want := `{"error":"` + code + `"}`; d.GetBody() != want {
			t.Errorf("body %s, want %s", d.GetBody(), want)
		}
		if h["content-type"] != "application/json" {
			t.Errorf("content-type %q", h["content-type"])
		}
	}
	return h
}

func wantOK(t *testing.T, resp *authv3.CheckResponse) *authv3.OkHttpResponse {
	t.Helper()
	if resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("denied: %v %s", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
	}
	ok := resp.GetOkResponse()
	set := map[string]bool{}
	for _, h := range ok.GetHeaders() {
		if h.GetAppend() == nil || h.GetAppend().GetValue() {
			t.Errorf("header %s: append must be explicitly false", h.GetHeader().GetKey())
		}
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append action %v", h.GetHeader().GetKey(), h.GetAppendAction())
		}
		set[h.GetHeader().GetKey()] = true
	}
	for _, r := range ok.GetHeadersToRemove() {
		if set[r] {
			t.Errorf("header %s is both set and removed", r)
		}
	}
	return ok
}

func TestCheckAllowedSetsIdentityAndRemovesSpoofs(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "admin", "member")
	spoof := map[string]string{
		"cookie":      "other=1; __Host-tenantgate=" + tok,
		"x-tenant-id": "globex", "x-user-roles": "superuser", "x-user-email": "mallory@evil.test",
		"x-auth-method": "saml", "x-user-id": "u-root",
	}
	ok := wantOK(t, f.check(t, "GET", "acme.app.test", "/dashboard", spoof))
	h := headerMap(ok.GetHeaders())
	want := map[string]string{
		"x-tenant-id": "acme", "x-user-id": "u-acme", "x-user-email": "alice@acme.test",
		"x-user-roles": "admin,member", "x-auth-method": "password",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("%s = %q, want %q", k, h[k], v)
		}
	}
	if len(ok.GetHeadersToRemove()) != 0 {
		t.Errorf("headers_to_remove %v, want none (all identity headers are overwritten)", ok.GetHeadersToRemove())
	}
	resp := f.check(t, "GET", "acme.app.test", "/dashboard", map[string]string{"authorization": "Bearer " + tok})
	md := resp.GetDynamicMetadata().GetFields()
	if md["tenant_id"].GetStringValue() != "acme" || md["user_id"].GetStringValue() != "u-acme" {
		t.Errorf("dynamic metadata %v", md)
	}
}

func TestCheckAnonymousRule(t *testing.T) {
	f := newFixture(t)
	ok := wantOK(t, f.check(t, "GET", "acme.app.test", "/public/logo.png?x=1", map[string]string{
		"x-user-email": "mallory@evil.test", "x-auth-method": "password", "x-tenant-id": "globex",
	}))
	h := headerMap(ok.GetHeaders())
	if len(h) != 1 || h["x-tenant-id"] != "acme" {
		t.Errorf("set %v, want only x-tenant-id: acme", h)
	}
	removed := slices.Sorted(slices.Values(ok.GetHeadersToRemove()))
	if !slices.Equal(removed, []string{"x-auth-method", "x-user-email"}) {
		t.Errorf("removed %v", removed)
	}
}

func TestCheckDenials(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, f.acme, "member")
	globex := f.token(t, f.globex, "member")
	html := "text/html,application/xhtml+xml"
	cases := []struct {
		name, method, host, path string
		headers                  map[string]string
		status                   int
		code                     string
	}{
		{"api without credentials", "GET", "acme.app.test", "/x", nil, 401, "unauthenticated"},
		{"post from a browser is not redirected", "POST", "acme.app.test", "/x", map[string]string{"accept": html}, 401, "unauthenticated"},
		{"garbage cookie", "GET", "acme.app.test", "/x", map[string]string{"cookie": "__Host-tenantgate=abc.def.ghi"}, 401, "unauthenticated"},
		{"other tenant's cookie", "GET", "acme.app.test", "/x", map[string]string{"cookie": "__Host-tenantgate=" + globex}, 403, "tenant_mismatch"},
		{"other tenant's bearer", "GET", "globex.app.test", "/x", map[string]string{"authorization": "Bearer " + acme}, 403, "tenant_mismatch"},
		{"other tenant's cookie via custom domain", "GET", "login.globex.test", "/x", map[string]string{"cookie": "__Host-tenantgate=" + acme}, 403, "tenant_mismatch"},
		{"other tenant's cookie via path tenancy", "GET", "app.test", "/org/globex/x", map[string]string{"cookie": "__Secure-tenantgate.globex=" + acme}, 403, "tenant_mismatch"},
		// A path tenant reads only its own cookie: the host-tenancy one, or
		// another path tenant's, is not even looked at.
		{"host-tenancy cookie on a path tenant", "GET", "app.test", "/org/acme/x", map[string]string{"cookie": "__Host-tenantgate=" + acme}, 401, "unauthenticated"},
		{"sibling path tenant's cookie name", "GET", "app.test", "/org/acme/x", map[string]string{"cookie": "__Secure-tenantgate.globex=" + acme}, 401, "unauthenticated"},
		{"path tenant's cookie on its subdomain", "GET", "acme.app.test", "/x", map[string]string{"cookie": "__Secure-tenantgate.acme=" + acme}, 401, "unauthenticated"},
		{"browser with other tenant's cookie", "GET", "acme.app.test", "/x", map[string]string{"accept": html, "cookie": "__Host-tenantgate=" + globex}, 403, "tenant_mismatch"},
		{"rule denies", "GET", "acme.app.test", "/admin/users", map[string]string{"cookie": "__Host-tenantgate=" + acme}, 403, "forbidden"},
		{"encoded path cannot dodge a rule", "GET", "acme.app.test", "/%61dmin/users", map[string]string{"cookie": "__Host-tenantgate=" + acme}, 403, "forbidden"},
		{"method-scoped rule", "GET", "acme.app.test", "/docs/1", map[string]string{"authorization": "Bearer " + f.token(t, f.acme)}, 403, "forbidden"},
		{"suspended tenant", "GET", "initech.app.test", "/x", nil, 403, "tenant_suspended"},
		{"unknown tenant", "GET", "nobody.app.test", "/x", nil, 404, "unknown_tenant"},
		{"two labels deep", "GET", "x.acme.app.test", "/x", nil, 404, "unknown_tenant"},
		{"apex outside /org", "GET", "app.test", "/x", nil, 404, "unknown_tenant"},
		{"unknown host", "GET", "evil.test", "/x", nil, 404, "unknown_tenant"},
		{"malformed host", "GET", "acme..app.test", "/x", nil, 400, "bad_request"},
		{"dot segments", "GET", "acme.app.test", "/public/../admin/x", nil, 400, "bad_request"},
		{"encoded dot segments", "GET", "app.test", "/org/acme/%2e%2e/globex/x", nil, 400, "bad_request"},
		{"encoded slash in tenant", "GET", "app.test", "/org/acme%2F..%2Fglobex/x", nil, 400, "bad_request"},
		{"x-forwarded-host ignored", "GET", "nobody.app.test", "/x", map[string]string{"x-forwarded-host": "acme.app.test", "cookie": "__Host-tenantgate=" + acme}, 404, "unknown_tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := wantDenied(t, f.check(t, tc.method, tc.host, tc.path, tc.headers), tc.status, tc.code)
			if tc.status == 401 && h["www-authenticate"] != `Bearer realm="acme"` {
				t.Errorf("www-authenticate %q", h["www-authenticate"])
			}
		})
	}
}

func TestCheckBrowserRedirect(t *testing.T) {
	f := newFixture(t)
	cases := []struct{ host, path, want string }{
		{"acme.app.test", "/reports?q=1&b=2", "/_auth/login?rd=%2Freports%3Fq%3D1%26b%3D2"},
		{"ACME.app.test:443", "/", "/_auth/login?rd=%2F"},
		{"app.test", "/org/acme/reports", "/org/acme/_auth/login?rd=%2Forg%2Facme%2Freports"},
	}
	for _, tc := range cases {
		h := wantDenied(t, f.check(t, "GET", tc.host, tc.path, map[string]string{"accept": "text/html"}), 302, "")
		if h["location"] != tc.want {
			t.Errorf("%s%s: location %q, want %q", tc.host, tc.path, h["location"], tc.want)
		}
	}
}

func TestCheckMultipleCookiesPicksTheTenantsOwn(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, f.acme, "member")
	globex := f.token(t, f.globex, "member")
	// A sibling-planted cookie with the same name must not shadow the real one.
	hdr := map[string]string{"cookie": "__Host-tenantgate=" + globex + "; __Host-tenantgate=" + acme}
	ok := wantOK(t, f.check(t, "GET", "acme.app.test", "/x", hdr))
	if got := headerMap(ok.GetHeaders())["x-tenant-id"]; got != "acme" {
		t.Errorf("x-tenant-id %q", got)
	}
}

func TestCheckPathTenantCookie(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, f.acme, "member")
	globex := f.token(t, f.globex, "member")
	// Both tenants' cookies reach a request whose path matches both scopes
	// only in a hand-made header; each tenant takes its own.
	hdr := map[string]string{"cookie": "__Host-tenantgate=" + globex + "; __Secure-tenantgate.globex=" + globex + "; __Secure-tenantgate.acme=" + acme}
	for _, tc := range []struct{ path, tenant string }{{"/org/acme/x", "acme"}, {"/org/globex/docs", "globex"}} {
		ok := wantOK(t, f.check(t, "GET", "app.test", tc.path, hdr))
		if got := headerMap(ok.GetHeaders())["x-tenant-id"]; got != tc.tenant {
			t.Errorf("%s: x-tenant-id %q, want %q", tc.path, got, tc.tenant)
		}
	}
}

// TestCheckTwoSessionsAreNoSession: a path tenant's session cookie is
// __Secure-tenantgate.<id> with Path=/org/<id>, and a __Secure- cookie,
// unlike a __Host- one, can be set by any sibling subdomain with
// Domain=<base domain> and a longer Path, which browsers send first. A
// member of the tenant planting their own session that way would have the
// victim's browser act as the attacker (uploads, messages into the
// attacker's account). A browser holds at most one genuine session per
// tenant (tenantgate sets one name, one Path, no Domain), so two valid
// sessions of the tenant are a plant: neither is taken.
func TestCheckTwoSessionsAreNoSession(t *testing.T) {
	f := newFixture(t)
	attacker := f.token(t, f.acme, "member")
	victim, _, err := f.minter.Mint(f.acme, session.Claims{Subject: "u-victim", Email: "victim@acme.test", Roles: []string{"member"}, Method: "password"})
	if err != nil {
		t.Fatal(err)
	}
	var member tenants.SnapshotChange
	member.PutMembership(f.acme.InternalID, "u-victim", []string{"member"})
	if err := f.snaps.Refresh(t.Context(), staticStore{f.snaps.Load().With(&member)}); err != nil {
		t.Fatal(err)
	}
	globex := f.token(t, f.globex, "member")
	const name = "__Secure-tenantgate.acme="
	cases := []struct {
		name, host, path, cookie string
		wantSub                  string // "" means a 401
	}{
		{"a planted session before the victim's", "app.test", "/org/acme/x", name + attacker + "; " + name + victim, ""},
		{"a planted session after the victim's", "app.test", "/org/acme/x", name + victim + "; " + name + attacker, ""},
		{"a planted session alone still signs in (only a __Host- name could stop it)", "app.test", "/org/acme/x", name + attacker, "u-acme"},
		{"junk planted before the victim's", "app.test", "/org/acme/x", name + "junk; " + name + victim, "u-victim"},
		{"another tenant's session planted", "app.test", "/org/acme/x", name + globex + "; " + name + victim, "u-victim"},
		{"the same session twice", "app.test", "/org/acme/x", name + victim + "; " + name + victim, "u-victim"},
		{"host tenancy alike", "acme.app.test", "/x", "__Host-tenantgate=" + attacker + "; __Host-tenantgate=" + victim, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.check(t, "GET", tc.host, tc.path, map[string]string{"cookie": tc.cookie})
			if tc.wantSub == "" {
				wantDenied(t, resp, 401, "unauthenticated")
				return
			}
			if got := headerMap(wantOK(t, resp).GetHeaders())["x-user-id"]; got != tc.wantSub {
				t.Errorf("signed in as %q, want %q", got, tc.wantSub)
			}
		})
	}
}

func TestCheckNoSnapshotFailsClosed(t *testing.T) {
	srv := &Server{Authorizer: &Authorizer{Snapshots: &tenants.Current{}, Resolver: &tenants.Resolver{}, Verifier: session.NewVerifier()}}
	resp, err := srv.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "acme.app.test", Path: "/"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantDenied(t, resp, 503, "unavailable")
	resp, _ = srv.Check(context.Background(), &authv3.CheckRequest{})
	wantDenied(t, resp, 400, "bad_request")
}

// TestCheckCommaSmuggledCookie: a sibling subdomain (another tenant's
// content, or script on any host under the base domain) can set a cookie
// with Domain=<base domain> whose value holds ", __Host-tenantgate=<its
// session>"; the browser sends it verbatim to the victim's tenant. Only
// ";" separates cookies (RFC 6265), so the planted session is never read:
// the victim is not signed in as the attacker.
func TestCheckCommaSmuggledCookie(t *testing.T) {
	f := newFixture(t)
	attacker := f.token(t, f.acme, "member")
	victim, _, err := f.minter.Mint(f.acme, session.Claims{Subject: "u-victim", Email: "victim@acme.test", Roles: []string{"member"}, Method: "password"})
	if err != nil {
		t.Fatal(err)
	}
	var member tenants.SnapshotChange
	member.PutMembership(f.acme.InternalID, "u-victim", []string{"member"})
	if err := f.snaps.Refresh(t.Context(), staticStore{f.snaps.Load().With(&member)}); err != nil {
		t.Fatal(err)
	}
	smuggled := `x="junk, __Host-tenantgate=` + attacker + `"`
	cases := []struct {
		name    string
		cookie  string
		wantSub string // "" means a 401
	}{
		{"planted cookie alone", smuggled, ""},
		{"planted cookie before the victim's session", smuggled + "; __Host-tenantgate=" + victim, "u-victim"},
		{"unquoted", "x=junk, __Host-tenantgate=" + attacker, ""},
		{"several planted", smuggled + "; " + smuggled + "; y=a,__Host-tenantgate=" + attacker + "; __Host-tenantgate=" + victim, "u-victim"},
		// Envoy's headers map joins two HTTP/1 Cookie lines with ",": a
		// session in a second line is not a pair of its own and is not
		// read (browsers send one Cookie line).
		{"second Cookie line joined by Envoy", "a=1," + "__Host-tenantgate=" + victim, ""},
		{"a nameless pair holding the name", "=__Host-tenantgate=" + attacker, ""},
		{"a Unicode space before the name", "\u00a0__Host-tenantgate=" + attacker + "; \u2003__Host-tenantgate=" + attacker, ""},
		{"the prefix in another case", "__host-tenantgate=" + attacker + "; __HOST-tenantgate=" + attacker, ""},
		{"a tab is whitespace", "a=1;\t__Host-tenantgate=" + victim, "u-victim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.check(t, "GET", "acme.app.test", "/x", map[string]string{"cookie": tc.cookie})
			if tc.wantSub == "" {
				wantDenied(t, resp, 401, "unauthenticated")
				return
			}
			if got := headerMap(wantOK(t, resp).GetHeaders())["x-user-id"]; got != tc.wantSub {
				t.Errorf("signed in as %q, want %q", got, tc.wantSub)
			}
		})
	}
	t.Run("path tenancy", func(t *testing.T) {
		resp := f.check(t, "GET", "app.test", "/org/acme/x", map[string]string{"cookie": `x="a, __Secure-tenantgate.acme=` + attacker + `"`})
		wantDenied(t, resp, 401, "unauthenticated")
	})
}

// TestCheckRawHeaders: behind Envoy's encode_raw_headers the headers come
// in header_map (values in raw_value) and the headers map is empty. A
// session is read from there, Cookie lines kept apart, and every
// client-sent identity header there is removed or overwritten.
func TestCheckRawHeaders(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "member")
	spoofs := [][2]string{
		{"x-tenant-id", "globex"}, {"x-tenant-id", "evil"}, {"x-user-id", "u-root"}, {"x-user-email", "mallory@evil.test"},
		{"x-user-roles", "admin"}, {"x-auth-method", "saml"}, {"x-auth-mfa", "true"}, {"x-user-groups", "admins"},
		{"x-tenant-plan", "enterprise"}, {"X-User-Shout", "1"},
	}
	t.Run("session cookie on its own line", func(t *testing.T) {
		resp := f.checkRaw(t, "GET", "acme.app.test", "/x", append([][2]string{
			{"cookie", "a=1; b=2"}, {"cookie", "__Host-tenantgate=" + tok}, {"accept", "application/json"},
		}, spoofs...)...)
		ok := wantOK(t, resp)
		h := headerMap(ok.GetHeaders())
		if h["x-tenant-id"] != "acme" || h["x-user-id"] != "u-acme" || h["x-user-roles"] != "member" || h["x-auth-method"] != "password" ||
			h["x-auth-mfa"] != "false" {
			t.Errorf("identity headers %v", h)
		}
		removed := ok.GetHeadersToRemove()
		for _, want := range []string{"x-user-groups", "x-tenant-plan", "x-user-shout"} {
			if !slices.Contains(removed, want) {
				t.Errorf("headers_to_remove %v lacks %s", removed, want)
			}
		}
		if h["cookie"] != "a=1; b=2" {
			t.Errorf("upstream cookie %q, want the app's two cookies", h["cookie"])
		}
	})
	t.Run("a comma in a Cookie line is a value byte", func(t *testing.T) {
		// Lines come apart here, so nothing is read or taken out after a
		// comma: the app's cookie passes byte for byte.
		planted := `x="j, __Host-tenantgate=T"`
		ok := wantOK(t, f.checkRaw(t, "GET", "acme.app.test", "/x", [2]string{"cookie", planted}, [2]string{"cookie", "__Host-tenantgate=" + tok}))
		if got := headerMap(ok.GetHeaders())["cookie"]; got != planted {
			t.Errorf("upstream cookie %q, want %q", got, planted)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		ok := wantOK(t, f.checkRaw(t, "GET", "acme.app.test", "/x", [2]string{"authorization", "Bearer " + tok}))
		if got := headerMap(ok.GetHeaders())["x-user-id"]; got != "u-acme" {
			t.Errorf("x-user-id %q", got)
		}
	})
	t.Run("anonymous rule", func(t *testing.T) {
		ok := wantOK(t, f.checkRaw(t, "GET", "acme.app.test", "/public/x", spoofs...))
		if h := headerMap(ok.GetHeaders()); len(h) != 1 || h["x-tenant-id"] != "acme" {
			t.Errorf("set %v, want only x-tenant-id: acme", h)
		}
		want := []string{"x-auth-method", "x-auth-mfa", "x-tenant-plan", "x-user-email", "x-user-groups", "x-user-id", "x-user-roles", "x-user-shout"}
		if got := ok.GetHeadersToRemove(); !slices.Equal(got, want) {
			t.Errorf("headers_to_remove %v, want %v", got, want)
		}
	})
	t.Run("no session", func(t *testing.T) {
		wantDenied(t, f.checkRaw(t, "GET", "acme.app.test", "/x", [2]string{"cookie", "a=1"}), 401, "unauthenticated")
	})
}

// TestCheckRemovesEveryReservedHeader: on every OK answer, anonymous or
// not, each client-sent x-user-*, x-tenant-*, x-auth-method and x-auth-mfa
// header is overwritten or removed.
func TestCheckRemovesEveryReservedHeader(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "member")
	spoofs := map[string]string{
		"x-user-id": "1", "x-user-groups": "admins", "x-user-": "x", "x-tenant-plan": "gold",
		"x-auth-mfa": "true", "x-auth-method": "saml", "x-tenant-id": "globex", "x-other": "kept",
	}
	for _, tc := range []struct{ name, path string }{{"anonymous", "/public/x"}, {"authenticated", "/x"}} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := maps.Clone(spoofs)
			hdr["cookie"] = "__Host-tenantgate=" + tok
			ok := wantOK(t, f.check(t, "GET", "acme.app.test", tc.path, hdr))
			set := headerMap(ok.GetHeaders())
			for name := range spoofs {
				_, isSet := set[name]
				removed := slices.Contains(ok.GetHeadersToRemove(), name)
				if reserved := name != "x-other"; reserved != (isSet || removed) {
					t.Errorf("%s: set %v, removed %v", name, isSet, removed)
				}
			}
		})
	}
}

// TestCheckUpstreamCookie: tenantgate's cookies never reach the upstream;
// the app's own pass byte for byte, the header is untouched when there is
// nothing of tenantgate's in it, removed when nothing else is left, and a
// tenant with passSessionCookie keeps its session cookie (only).
func TestCheckUpstreamCookie(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, f.acme, "member")
	hooli := f.token(t, f.hooli, "member")
	cases := []struct {
		name, host, path, cookie string
		want                     string // the cookie header set; "" with remove
		remove, untouched        bool
	}{
		{name: "no tenantgate cookie", host: "acme.app.test", path: "/public/x", cookie: `app=1;b="x y"`, untouched: true},
		{name: "no cookie at all", host: "acme.app.test", path: "/public/x", untouched: true},
		{name: "session among app cookies", host: "acme.app.test", path: "/x",
			cookie: `app=1; __Host-tenantgate=` + acme + `; b="x, y";c=%20`, want: `app=1; b="x, y";c=%20`},
		{name: "session only", host: "acme.app.test", path: "/x", cookie: "__Host-tenantgate=" + acme, remove: true},
		{name: "every sign-in cookie", host: "acme.app.test", path: "/public/x",
			cookie: "__Host-tenantgate-csrf=c; app=1; __Host-tg-attempt-abc=a; __Host-tg-idt=i; __Host-tenantgate-switch=s; __Host-tenantgate-global=g; __Host-tenantgate-intent=n; __Host-tenantgate-mfa=m; __Host-tenantgate=x",
			want:   "app=1"},
		{name: "path tenancy session", host: "app.test", path: "/org/acme/x",
			cookie: "__Secure-tenantgate.acme=" + acme + "; app=1; __Host-tg-idt.acme=i", want: "app=1"},
		{name: "anonymous path keeps a bearer user's session from the app too", host: "acme.app.test", path: "/public/x",
			cookie: "__Host-tenantgate=" + acme, remove: true},
		// Envoy's headers map joins HTTP/1 Cookie lines with ",": a session
		// on a later line is not read, but must not reach the app either.
		{name: "a session on a second Cookie line", host: "acme.app.test", path: "/public/x",
			cookie: "a=1,__Host-tenantgate=" + acme, want: "a=1"},
		{name: "a session on a second Cookie line with the app's after it", host: "acme.app.test", path: "/public/x",
			cookie: `a=1,__Host-tenantgate=` + acme + `; b="x, y"`, want: `a=1; b="x, y"`},
		{name: "passSessionCookie keeps the session", host: "hooli.app.test", path: "/x",
			cookie: "app=1; __Host-tenantgate=" + hooli, untouched: true},
		{name: "passSessionCookie still drops the sign-in cookies", host: "hooli.app.test", path: "/x",
			cookie: "app=1; __Host-tenantgate-csrf=c; __Host-tenantgate=" + hooli + "; __Host-tg-attempt-x=a",
			want:   "app=1; __Host-tenantgate=" + hooli},
		{name: "passSessionCookie, path tenancy", host: "app.test", path: "/org/hooli/x",
			cookie: "__Secure-tenantgate.hooli=" + hooli + "; __Host-tenantgate-switch.hooli=s", want: "__Secure-tenantgate.hooli=" + hooli},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.cookie != "" {
				hdr["cookie"] = tc.cookie
			}
			ok := wantOK(t, f.check(t, "GET", tc.host, tc.path, hdr))
			set, isSet := headerMap(ok.GetHeaders())["cookie"]
			removed := slices.Contains(ok.GetHeadersToRemove(), "cookie")
			switch {
			case tc.untouched:
				if isSet || removed {
					t.Errorf("cookie header touched: set %q, removed %v", set, removed)
				}
			case tc.remove:
				if isSet || !removed {
					t.Errorf("cookie header: set %q (%v), removed %v; want removed", set, isSet, removed)
				}
			default:
				if set != tc.want || removed {
					t.Errorf("cookie header set to %q (removed %v), want %q", set, removed, tc.want)
				}
			}
		})
	}
}

func TestUpstreamCookieNotUTF8(t *testing.T) {
	acme := &tenants.Tenant{ID: "acme"}
	// A HeaderValue's value must be UTF-8, and Envoy ignores raw_value in
	// an OK answer: such a header goes rather than carry the session on.
	if v, changed := upstreamCookie(acme, "a=\xff; __Host-tenantgate=t", true, "__Host-tenantgate"); v != "" || !changed {
		t.Errorf("upstreamCookie = %q, %v; want \"\", true", v, changed)
	}
	if v, changed := upstreamCookie(acme, "a=\xff", true, "__Host-tenantgate"); v != "a=\xff" || changed {
		t.Errorf("nothing to remove: upstreamCookie = %q, %v; want untouched", v, changed)
	}
}

// TestCheckAuthMFA: x-auth-mfa is "true" exactly for a session whose
// sign-in checked a second factor (amr otp or hwk), "false" for any other
// session, and a client's copy never survives either way.
func TestCheckAuthMFA(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		amr  []string
		want string
	}{
		{nil, "false"},
		{[]string{session.AMRPassword}, "false"},
		{[]string{session.AMRPassword, session.AMROTP}, "true"},
		{[]string{session.AMRPassword, session.AMRHardware}, "true"},
	} {
		tok, _, err := f.minter.Mint(f.acme, session.Claims{Subject: f.member(t, f.acme, []string{"member"}), Roles: []string{"member"},
			Method: session.MethodPassword, AMR: tc.amr})
		if err != nil {
			t.Fatal(err)
		}
		for _, spoof := range []string{"true", "false"} {
			ok := wantOK(t, f.check(t, "GET", "acme.app.test", "/x", map[string]string{"authorization": "Bearer " + tok, "x-auth-mfa": spoof}))
			if got := headerMap(ok.GetHeaders())["x-auth-mfa"]; got != tc.want {
				t.Errorf("amr %v, client sent %s: x-auth-mfa %q, want %q", tc.amr, spoof, got, tc.want)
			}
		}
	}
}

// serveGRPC serves srv as serve does (ServerCodec, Register) on loopback
// and returns a client connection to it.
func serveGRPC(t testing.TB, srv *Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(ServerCodec())
	Register(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
