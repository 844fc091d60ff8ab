package login

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/internal/smtpsink"
	"github.com/tenantgate/tenantgate/tenants"
)

// withGlobal turns on the apex's global sessions and switching.
func withGlobal(h *Handler) { h.Sealer = h.Minter.Sealer }

// addTenants applies more tenants to an env's store and republishes.
func (e *env) addTenants(ts ...tenants.Tenant) {
	e.t.Helper()
	if err := tenants.Validate(ts, tenants.ValidateOptions{Methods: testMethodTypes()}); err != nil {
		e.t.Fatal(err)
	}
	sealer := e.h.Minter.Sealer
	_, err := e.store.ApplyTenants(context.Background(), ts, tenants.ApplyOptions{
		NewKey:     func(id string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, id, e.clock.Now()) },
		SealMethod: signin.SealMethods(sealer, testMethodTypes()),
		Now:        e.clock.Now,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.refresh()
}

// globalSignIn signs in on the apex host with a password and returns the
// global session cookie.
func (e *env) globalSignIn(host, email, pw string) *http.Cookie {
	e.t.Helper()
	f := e.getForm(host, "/_auth/login")
	resp := e.do("POST", host, "/_auth/login", url.Values{"email": {email}, "password": {pw}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" {
		e.t.Fatalf("global sign-in as %s: %d Location %q", email, resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "tenantgate-global") && c.MaxAge > 0 {
			return c
		}
	}
	e.t.Fatalf("global sign-in set no global cookie: %q", resp.Header.Values("Set-Cookie"))
	return nil
}

// switchTrip is one run of the switching protocol's first two steps.
type switchTrip struct {
	verifier *http.Cookie // set by the tenant host
	apex     *url.URL     // where the tenant sent the browser
	confirm  bool         // the apex asked the person to confirm
	code     string       // the code the apex issued ("" if none)
	callback *url.URL     // where the apex sent the browser
	apexResp *http.Response
	global   *http.Cookie // the global session it was made with
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// startSwitch runs steps 1 and 2 (tenant host → apex → code), with the
// extra cookies (an intent) on the apex, clicking Continue when the apex
// asks for confirmation.
func (e *env) startSwitch(host, target string, global *http.Cookie, apexCookies ...*http.Cookie) switchTrip {
	e.t.Helper()
	resp := e.do("GET", host, target, nil, nil)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("GET %s%s: %d, want 302", host, target, resp.StatusCode)
	}
	trip := switchTrip{global: global}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "tenantgate-switch") {
			trip.verifier = c
		}
	}
	if trip.verifier == nil {
		e.t.Fatalf("GET %s%s set no verifier cookie: %q", host, target, resp.Header.Values("Set-Cookie"))
	}
	trip.apex = mustURL(e.t, resp.Header.Get("Location"))
	if global != nil {
		apexCookies = append(apexCookies, global)
	}
	trip.apexResp = e.do("GET", trip.apex.Host, trip.apex.RequestURI(), nil, nil, apexCookies...)
	if trip.apexResp.StatusCode == http.StatusOK {
		body := readBody(e.t, trip.apexResp)
		if !strings.Contains(body, `action="/_auth/switch"`) {
			e.t.Fatalf("apex answered 200 without a confirmation form:\n%s", body)
		}
		trip.confirm = true
		form := url.Values{}
		for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
			form.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
		}
		cookies := append(apexCookies, trip.apexResp.Cookies()...)
		trip.apexResp = e.do("POST", trip.apex.Host, "/_auth/switch", form, sameOrigin(), cookies...)
	}
	if trip.apexResp.StatusCode == http.StatusSeeOther {
		trip.callback = mustURL(e.t, trip.apexResp.Header.Get("Location"))
		trip.code = trip.callback.Query().Get("tg_switch")
	}
	return trip
}

// choose posts a chooser button for tenant id on the apex and returns the
// response (303 to the tenant's /_auth/switch and an intent cookie).
func (e *env) choose(apexHost, id string, global *http.Cookie) *http.Response {
	e.t.Helper()
	f := e.getForm(apexHost, "/_auth/login", global)
	return e.do("POST", apexHost, "/_auth/switch", url.Values{"tenant": {id}, "csrf": {f.csrf}}, sameOrigin(), f.preauth, global)
}

// redeem runs step 3 with the given cookies.
func (e *env) redeem(u *url.URL, cookies ...*http.Cookie) *http.Response {
	e.t.Helper()
	return e.do("GET", u.Host, u.RequestURI(), nil, nil, cookies...)
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u
}

func TestApexPageOffersPasswordWithGlobalSessions(t *testing.T) {
	for _, global := range []bool{false, true} {
		var opts []func(*Handler)
		if global {
			opts = append(opts, withGlobal)
		}
		e := newEnv(t, opts...)
		body := readBody(t, e.do("GET", "app.test", "/_auth/login", nil, nil))
		if got := strings.Contains(body, `name="password"`); got != global {
			t.Errorf("global sessions %v: password field shown = %v", global, got)
		}
		if !strings.Contains(body, `<label for="email">`) {
			t.Errorf("global sessions %v: no discovery email form", global)
		}
		// CONTRACT: email and csrf alone are discovery, whatever else the
		// page offers; so is an empty password.
		for _, form := range []url.Values{{"email": {"alice@acme.test"}}, {"email": {"alice@acme.test"}, "password": {""}}} {
			f := e.getForm("app.test", "/_auth/login")
			form.Set("csrf", f.csrf)
			resp := e.do("POST", "app.test", "/_auth/login", form, sameOrigin(), f.preauth)
			if want := "https://acme.app.test/_auth/login?login_hint=alice%40acme.test"; resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("global sessions %v, form %v: %d Location %q, want 303 %s", global, form, resp.StatusCode, resp.Header.Get("Location"), want)
			}
			if c := cookieNamed(resp, "__Host-tenantgate-global"); c != nil {
				t.Error("discovery started a global session")
			}
		}
	}
}

func TestDiscoveryPathLinks(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.PathLinks = true })
	page := e.do("GET", "app.test:8443", "/_auth/login", nil, nil)
	if csp := page.Header.Get("Content-Security-Policy"); strings.Contains(csp, "*.app.test") {
		t.Errorf("CSP %q allows tenant subdomains though tenants are reached by path", csp)
	}
	f := e.getForm("app.test:8443", "/_auth/login")
	resp := e.do("POST", "app.test:8443", "/_auth/login", url.Values{"email": {"bob@globex.test"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	if want := "https://app.test:8443/org/globex/_auth/login?login_hint=bob%40globex.test"; resp.Header.Get("Location") != want {
		t.Fatalf("%d Location %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func TestGlobalSignIn(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		e := newEnv(t, withGlobal, func(h *Handler) { h.InsecureCookies = insecure })
		f := e.getForm("app.test", "/_auth/login")
		resp := e.do("POST", "app.test", "/_auth/login",
			url.Values{"email": {" Alice@ACME.test"}, "password": {alicePassword}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" {
			t.Fatalf("insecure %v: %d Location %q", insecure, resp.StatusCode, resp.Header.Get("Location"))
		}
		name, want := "__Host-tenantgate-global", "__Host-tenantgate-global=V; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
		if insecure {
			name, want = "tenantgate-global", "tenantgate-global=V; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
		}
		c := cookieNamed(resp, name)
		if c == nil {
			t.Fatalf("insecure %v: no %s cookie in %q", insecure, name, resp.Header.Values("Set-Cookie"))
		}
		if got := strings.Replace(setCookieLine(resp, name), c.Value, "V", 1); got != want {
			t.Errorf("Set-Cookie = %q, want %q", got, want)
		}
		if strings.Contains(c.Value, "alice") || strings.Contains(c.Value, ".") {
			t.Errorf("global cookie is not sealed: %q", c.Value)
		}
		// No tenant session comes with it.
		for _, other := range resp.Cookies() {
			if other.Name == session.CookieName(insecure) {
				t.Error("global sign-in set a tenant session cookie")
			}
		}
	}
}

func TestGlobalSignInFailuresIdentical(t *testing.T) {
	e := newEnv(t, withGlobal, func(h *Handler) { h.Limits = Limits{AccountFailures: 2} })
	var first string
	for _, tc := range []struct{ name, email, pw string }{
		{"wrong password", "alice@acme.test", "wrong-guess"},
		{"unknown user", "nobody@acme.test", "whatever"},
		{"second wrong password", "alice@acme.test", "wrong-again"},
		{"locked, right password", "alice@acme.test", alicePassword},
	} {
		f := e.getForm("app.test", "/_auth/login")
		resp := e.do("POST", "app.test", "/_auth/login", url.Values{"email": {tc.email}, "password": {tc.pw}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		body := csrfField.ReplaceAllString(readBody(t, resp), `name="csrf" value="X"`)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, invalidCredentials) {
			t.Fatalf("%s: %d, want 401 %q", tc.name, resp.StatusCode, invalidCredentials)
		}
		for _, c := range resp.Cookies() {
			if strings.Contains(c.Name, "global") {
				t.Fatalf("%s: global cookie set", tc.name)
			}
		}
		if first == "" {
			first = body
		} else if body != first {
			t.Fatalf("%s: body differs from the first failure's", tc.name)
		}
	}
	// The lock on the apex is its own: the tenant still lets alice in.
	if resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tenant sign-in after apex lockout: %d", resp.StatusCode)
	}
}

// chooserEntries returns the chooser's organisations, name → the tenant id
// its button posts, or the href of its link.
func chooserEntries(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`<li><a href="([^"]*)">([^<]*)</a>`).FindAllStringSubmatch(body, -1) {
		out[m[2]] = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	for _, m := range regexp.MustCompile(`(?s)<li><form method="post" action="/_auth/switch"[^>]*>.*?name="tenant" value="([^"]*)">\s*<button type="submit">([^<]*)</button>`).FindAllStringSubmatch(body, -1) {
		out[m[2]] = m[1]
	}
	return out
}

func TestChooser(t *testing.T) {
	e := newEnv(t, withGlobal)
	e.addTenants(tenants.Tenant{ID: "ssoonly", Name: "SSO Only Inc", Methods: []tenants.Method{
		method(t, oidc.Type, "", oidc.Config{Issuer: "https://idp.example/", ClientID: "tg", ClientSecret: "s"}, tenants.RoleMapping{})}})
	if _, err := e.store.AddMember(context.Background(), "ssoonly", tenants.NewMember{Email: "alice@acme.test", Roles: nil}); err != nil {
		t.Fatal(err)
	}
	e.refresh()

	alice := e.globalSignIn("app.test:8443", "alice@acme.test", alicePassword)
	resp := e.do("GET", "app.test:8443", "/_auth/login", nil, nil, alice)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "alice@acme.test") {
		t.Fatalf("chooser: %d\n%s", resp.StatusCode, body)
	}
	want := map[string]string{
		"Acme Corp":    "acme",
		"Globex":       "globex",
		"SSO Only Inc": "https://ssoonly.app.test:8443/_auth/login?login_hint=alice%40acme.test",
	}
	got := chooserEntries(t, body)
	if len(got) != len(want) {
		t.Errorf("chooser lists %v, want %v (frozen is suspended, sso has no membership)", got, want)
	}
	for name, href := range want {
		if got[name] != href {
			t.Errorf("chooser link %q = %q, want %q", name, got[name], href)
		}
	}
	// The contract's email form is still there, and sign-out.
	for _, s := range []string{`<label for="email">`, `action="/_auth/logout"`} {
		if !strings.Contains(body, s) {
			t.Errorf("chooser lacks %s", s)
		}
	}

	bob := e.globalSignIn("app.test", "bob@globex.test", bobPassword)
	if got := chooserEntries(t, readBody(t, e.do("GET", "app.test", "/_auth/login", nil, nil, bob))); len(got) != 1 || got["Globex"] != "globex" {
		t.Errorf("bob's chooser %v, want Globex only", got)
	}

	// Choosing leads to the tenant host's /_auth/switch, leaving a sealed
	// intent on the apex.
	for _, tc := range []struct {
		pathLinks bool
		want      string
	}{{false, "https://globex.app.test/_auth/switch"}, {true, "https://app.test/org/globex/_auth/switch"}} {
		e.h.PathLinks = tc.pathLinks
		resp := e.choose("app.test", "globex", bob)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
			t.Errorf("path links %v: choose: %d Location %q, want %q", tc.pathLinks, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
		c := cookieNamed(resp, "__Host-tenantgate-intent")
		if line := strings.Replace(setCookieLine(resp, "__Host-tenantgate-intent"), c.Value, "V", 1); c == nil ||
			line != "__Host-tenantgate-intent=V; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax" {
			t.Errorf("intent cookie %q", line)
		}
	}
	// Only a member's own tenants can be chosen.
	if resp := e.choose("app.test", "acme", bob); resp.StatusCode != http.StatusForbidden || cookieNamed(resp, "__Host-tenantgate-intent") != nil {
		t.Errorf("bob chose acme: %d", resp.StatusCode)
	}
}

func TestGlobalSessionEnds(t *testing.T) {
	e := newEnv(t, withGlobal, func(h *Handler) {
		h.Resolver = &tenants.Resolver{BaseDomains: []string{"app.test", "other.test"}, PathPrefix: "/org"}
	})
	isChooser := func(host string, c *http.Cookie) bool {
		t.Helper()
		body := readBody(t, e.do("GET", host, "/_auth/login", nil, nil, c))
		return strings.Contains(body, "Signed in as")
	}
	c := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
	if !isChooser("app.test", c) {
		t.Fatal("fresh global session does not show the chooser")
	}
	if isChooser("other.test", c) {
		t.Error("a global session of app.test opens on the apex other.test")
	}
	moved := *c
	moved.Name = "__Host-tenantgate-csrf"
	if isChooser("app.test", &moved) {
		t.Error("global session read from another cookie name")
	}
	tampered := *c
	tampered.Value = c.Value[:len(c.Value)-2] + "AA"
	if isChooser("app.test", &tampered) {
		t.Error("tampered global session accepted")
	}

	e.clock.Advance(DefaultGlobalTTL)
	if isChooser("app.test", c) {
		t.Error("global session outlived its TTL")
	}

	e.clock.Advance(-DefaultGlobalTTL)
	f := e.getForm("app.test", "/_auth/logout")
	resp := e.do("POST", "app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), f.preauth, c)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" ||
		setCookieLine(resp, "__Host-tenantgate-global") != "__Host-tenantgate-global=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax" {
		t.Fatalf("apex logout: %d %q %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
	}
	e.refresh()
	if isChooser("app.test", c) {
		t.Error("signed-out global session still shows the chooser")
	}
}

func TestSwitch(t *testing.T) {
	tests := []struct {
		name, host, target string
		wantApex           string // apex URL up to the query
		wantCallback       string // callback URL up to the query
		wantCookie         string // session Set-Cookie with the token cut out
		wantLocation       string
		tenant, roles      string
	}{
		{"subdomain", "acme.app.test", "/_auth/switch?rd=%2Fdocs%3Fx%3D1",
			"https://app.test/_auth/switch", "https://acme.app.test/_auth/callback",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "/docs?x=1", "acme", "admin,member"},
		{"custom domain", "login.acme.test", "/_auth/switch",
			"https://app.test/_auth/switch", "https://login.acme.test/_auth/callback",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "/", "acme", "admin,member"},
		{"path tenancy", "app.test", "/org/globex/_auth/switch?rd=%2Forg%2Fglobex%2Freports",
			"https://app.test/_auth/switch", "https://app.test/org/globex/_auth/callback",
			"__Secure-tenantgate.globex=TOKEN; Path=/org/globex; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "/org/globex/reports", "globex", "member"},
		{"path tenancy rd outside its prefix", "app.test", "/org/globex/_auth/switch?rd=%2Forg%2Facme%2F",
			"https://app.test/_auth/switch", "https://app.test/org/globex/_auth/callback",
			"__Secure-tenantgate.globex=TOKEN; Path=/org/globex; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "/org/globex/", "globex", "member"},
		{"port kept", "globex.app.test:8443", "/_auth/switch",
			"https://app.test:8443/_auth/switch", "https://globex.app.test:8443/_auth/callback",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "/", "globex", "member"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withGlobal)
			apexHost := "app.test" + requestPort(tc.host)
			global := e.globalSignIn(apexHost, "alice@acme.test", alicePassword)
			trip := e.startSwitch(tc.host, tc.target, global)
			if got := trip.apex.Scheme + "://" + trip.apex.Host + trip.apex.Path; got != tc.wantApex {
				t.Errorf("tenant sent the browser to %q, want %q", got, tc.wantApex)
			}
			if trip.code == "" {
				t.Fatalf("apex: %d Location %q, want a code", trip.apexResp.StatusCode, trip.apexResp.Header.Get("Location"))
			}
			if got := trip.callback.Scheme + "://" + trip.callback.Host + trip.callback.Path; got != tc.wantCallback {
				t.Errorf("apex sent the code to %q, want %q", got, tc.wantCallback)
			}
			if len(trip.apexResp.Cookies()) != 0 {
				t.Errorf("apex set cookies while issuing a code: %q", trip.apexResp.Header.Values("Set-Cookie"))
			}
			resp := e.redeem(trip.callback, trip.verifier)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.wantLocation {
				t.Fatalf("redeem: %d Location %q, want 303 %q\n%s", resp.StatusCode, resp.Header.Get("Location"), tc.wantLocation, readBody(t, resp))
			}
			name, _, _ := strings.Cut(tc.wantCookie, "=")
			c := cookieNamed(resp, name)
			if c == nil {
				t.Fatalf("no %s cookie in %q", name, resp.Header.Values("Set-Cookie"))
			}
			if got := strings.Replace(setCookieLine(resp, name), c.Value, "TOKEN", 1); got != tc.wantCookie {
				t.Errorf("Set-Cookie = %q, want %q", got, tc.wantCookie)
			}
			if got := setCookieLine(resp, trip.verifier.Name); !strings.Contains(got, "Max-Age=0") {
				t.Errorf("verifier cookie not cleared: %q", got)
			}
			claims, err := verifyOwnTenant(e.verifier, e.snaps.Load(), c.Value)
			if err != nil {
				t.Fatal(err)
			}
			if tn := e.snaps.Load().BySlug(tc.tenant); claims.TenantID != tn.InternalID || strings.Join(claims.Roles, ",") != tc.roles ||
				claims.Email != "alice@acme.test" || claims.Method != session.MethodPassword {
				t.Errorf("claims %+v, want tenant %s roles %s", claims, tc.tenant, tc.roles)
			}
		})
	}
}

func TestSwitchVerifierCookie(t *testing.T) {
	e := newEnv(t, withGlobal)
	for host, want := range map[string]string{
		"acme.app.test": "__Host-tenantgate-switch=V; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax",
		"app.test":      "__Host-tenantgate-switch.acme=V; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax",
	} {
		target := "/_auth/switch"
		if host == "app.test" {
			target = "/org/acme/_auth/switch"
		}
		resp := e.do("GET", host, target, nil, nil)
		var got string
		for _, c := range resp.Cookies() {
			got = strings.Replace(setCookieLine(resp, c.Name), c.Value, "V", 1)
		}
		if got != want {
			t.Errorf("%s: Set-Cookie %q, want %q", host, got, want)
		}
		loc := mustURL(t, resp.Header.Get("Location"))
		if loc.Query().Get("tenant") != "acme" || !validChallenge(loc.Query().Get("challenge")) || loc.Query().Get("host") != host {
			t.Errorf("%s: apex URL %q", host, loc)
		}
		if resp.Header.Get("Referrer-Policy") != "same-origin" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", host, resp.Header)
		}
	}
}

// TestSwitchRedeemRefusals: every way of redeeming a code other than the
// one it was issued for gets the same 400 and no session.
func TestSwitchRedeemRefusals(t *testing.T) {
	tests := []struct {
		name, reason string // reason: the code the log gives
		redeem       func(e *env, trip switchTrip) *http.Response
	}{
		{"without the verifier cookie", "switch_no_verifier", func(e *env, trip switchTrip) *http.Response {
			return e.redeem(trip.callback)
		}},
		{"in another browser", "switch_other_browser", func(e *env, trip switchTrip) *http.Response {
			other := e.startSwitch("acme.app.test", "/_auth/switch", nil) // its own verifier, no code
			return e.redeem(trip.callback, other.verifier)
		}},
		{"at another tenant", "switch_bad_code", func(e *env, trip switchTrip) *http.Response {
			// The browser holds a good verifier of globex; acme's code does
			// not open there.
			globex := e.startSwitch("globex.app.test", "/_auth/switch", nil)
			u := *trip.callback
			u.Host = "globex.app.test"
			return e.redeem(&u, globex.verifier)
		}},
		{"at the same tenant under path tenancy", "switch_other_endpoint", func(e *env, trip switchTrip) *http.Response {
			u := *trip.callback
			u.Host, u.Path = "app.test", "/org/acme/_auth/callback"
			moved := *trip.verifier
			moved.Name = "__Host-tenantgate-switch.acme"
			return e.redeem(&u, &moved)
		}},
		{"twice", "switch_code_reused", func(e *env, trip switchTrip) *http.Response {
			if resp := e.redeem(trip.callback, trip.verifier); resp.StatusCode != http.StatusSeeOther {
				e.t.Fatalf("first redemption: %d", resp.StatusCode)
			}
			return e.redeem(trip.callback, trip.verifier)
		}},
		{"after 30 seconds", "switch_code_expired", func(e *env, trip switchTrip) *http.Response {
			e.clock.Advance(switchCodeTTL)
			return e.redeem(trip.callback, trip.verifier)
		}},
		{"tampered", "switch_bad_code", func(e *env, trip switchTrip) *http.Response {
			u := *trip.callback
			code := []byte(trip.code)
			code[len(code)/2] ^= 1
			u.RawQuery = url.Values{"tg_switch": {string(code)}}.Encode()
			return e.redeem(&u, trip.verifier)
		}},
		{"as an OIDC code", "sso_no_attempt", func(e *env, trip switchTrip) *http.Response {
			u := *trip.callback
			u.RawQuery = url.Values{"code": {trip.code}, "state": {"x"}}.Encode()
			return e.redeem(&u, trip.verifier)
		}},
		{"after the membership ended", "switch_not_member", func(e *env, trip switchTrip) *http.Response {
			if err := e.store.RemoveMember(context.Background(), "acme", "alice@acme.test", tenants.Revocation{NotBefore: e.clock.Now(), Expires: e.clock.Now().Add(time.Hour)}); err != nil {
				e.t.Fatal(err)
			}
			e.refresh()
			return e.redeem(trip.callback, trip.verifier)
		}},
		{"after the global session was signed out", "switch_global_revoked", func(e *env, trip switchTrip) *http.Response {
			f := e.getForm("app.test", "/_auth/logout")
			e.do("POST", "app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), f.preauth, trip.global)
			e.refresh()
			return e.redeem(trip.callback, trip.verifier)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withGlobal)
			global := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
			trip := e.startSwitch("acme.app.test", "/_auth/switch", global)
			if trip.code == "" {
				t.Fatalf("no code: %d", trip.apexResp.StatusCode)
			}
			resp := tc.redeem(e, trip)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Invalid login request") {
				t.Fatalf("%d, want 400 Invalid login request\n%s", resp.StatusCode, body)
			}
			for _, c := range resp.Cookies() {
				if strings.Contains(c.Name, "tenantgate") && !strings.Contains(c.Name, "switch") && !strings.Contains(c.Name, "csrf") && c.MaxAge >= 0 {
					t.Errorf("refused redemption set %s", c.Name)
				}
			}
			logs := e.logs.String()
			if !strings.Contains(logs, `"reason":"`+tc.reason+`"`) {
				t.Errorf("log does not give reason %s:\n%s", tc.reason, logs)
			}
			if strings.Contains(logs, trip.code) || strings.Contains(logs, trip.verifier.Value) || strings.Contains(logs, trip.global.Value) {
				t.Error("the log holds the code, the verifier or the global session")
			}
		})
	}
}

func TestSwitchCodeSingleUseUnderRace(t *testing.T) {
	e := newEnv(t, withGlobal)
	global := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
	trip := e.startSwitch("globex.app.test", "/_auth/switch", global)
	const n = 8
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Go(func() {
			r := httptest.NewRequest("GET", trip.callback.RequestURI(), nil)
			r.Host = trip.callback.Host
			r.AddCookie(&http.Cookie{Name: trip.verifier.Name, Value: trip.verifier.Value})
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			statuses <- w.Code
		})
	}
	wg.Wait()
	close(statuses)
	won := 0
	for s := range statuses {
		switch s {
		case http.StatusSeeOther:
			won++
		case http.StatusBadRequest:
		default:
			t.Errorf("status %d", s)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent redemptions signed in, want exactly 1", won, n)
	}
}

func TestSwitchIssueRefusals(t *testing.T) {
	e := newEnv(t, withGlobal)
	e.addTenants(tenants.Tenant{ID: "ssoonly", Name: "SSO Only Inc", Methods: []tenants.Method{
		method(t, oidc.Type, "", oidc.Config{Issuer: "https://idp.example/", ClientID: "tg", ClientSecret: "s"}, tenants.RoleMapping{})}})
	if _, err := e.store.AddMember(context.Background(), "ssoonly", tenants.NewMember{Email: "alice@acme.test"}); err != nil {
		t.Fatal(err)
	}
	alice := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
	bob := e.globalSignIn("app.test", "bob@globex.test", bobPassword)
	challenge := challengeOf("some secret")
	q := func(tenant, host, challenge string) string {
		return "/_auth/switch?" + url.Values{"tenant": {tenant}, "host": {host}, "challenge": {challenge}}.Encode()
	}
	tests := []struct {
		name, target string
		global       *http.Cookie
		status       int
		location     string
	}{
		{"no global session", q("acme", "acme.app.test", challenge), nil, http.StatusSeeOther, "/_auth/login"},
		{"not a member", q("acme", "acme.app.test", challenge), bob, http.StatusForbidden, ""},
		{"suspended tenant", q("frozen", "frozen.app.test", challenge), alice, http.StatusForbidden, ""},
		{"tenant without password sign-in", q("ssoonly", "ssoonly.app.test", challenge), alice, http.StatusForbidden, ""},
		{"unknown tenant", q("nope", "nope.app.test", challenge), alice, http.StatusForbidden, ""},
		{"host of another tenant", q("acme", "globex.app.test", challenge), alice, http.StatusBadRequest, ""},
		{"host elsewhere", q("acme", "evil.test", challenge), alice, http.StatusBadRequest, ""},
		{"host with a port", q("acme", "acme.app.test:444", challenge), alice, http.StatusBadRequest, ""},
		{"host not canonical", q("acme", "ACME.app.test", challenge), alice, http.StatusBadRequest, ""},
		{"host with userinfo", q("acme", "evil.test@acme.app.test", challenge), alice, http.StatusBadRequest, ""},
		{"custom domain of another tenant", q("globex", "login.acme.test", challenge), alice, http.StatusBadRequest, ""},
		{"malformed challenge", q("acme", "acme.app.test", "short"), alice, http.StatusBadRequest, ""},
		{"malformed tenant", q("Acme", "acme.app.test", challenge), alice, http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cookies []*http.Cookie
			if tc.global != nil {
				cookies = append(cookies, tc.global)
			}
			resp := e.do("GET", "app.test", tc.target, nil, nil, cookies...)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("%d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
			}
			if strings.Contains(resp.Header.Get("Location"), "tg_switch") {
				t.Fatal("a code was issued")
			}
		})
	}
	// A tenant that cannot be switched into sends its own visitors to its
	// sign-in page.
	resp := e.do("GET", "ssoonly.app.test", "/_auth/switch?rd=%2Fx", nil, nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/_auth/login?rd=%2Fx" || len(resp.Cookies()) != 0 {
		t.Errorf("switch at an SSO-only tenant: %d %q %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
	}
}

// TestSwitchNeverOpensForSSOIdentities: even a code the apex were tricked
// into sealing for an identity an SSO method vouched for (no password)
// opens nothing.
func TestSwitchNeverOpensForSSOIdentities(t *testing.T) {
	e := newEnv(t, withGlobal)
	ctx := context.Background()
	acme := e.snaps.Load().BySlug("acme")
	u, err := e.store.UpsertExternalUser(ctx, acme.InternalID, tenants.ExternalIdentity{
		Method: "oidc", Issuer: "https://idp.acme.test", Subject: "alice", Email: "alice@acme.test", Roles: []string{"member"}})
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant with the same person's SSO identity.
	globex := e.snaps.Load().BySlug("globex")
	if _, err := e.store.UpsertExternalUser(ctx, globex.InternalID, tenants.ExternalIdentity{
		Method: "oidc", Issuer: "https://idp.acme.test", Subject: "alice", Email: "alice@acme.test"}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	e.h.init()
	trip := e.startSwitch("globex.app.test", "/_auth/switch", nil) // a verifier of this browser
	var v switchVerifier
	if !openJSON(e.h.switchSealer, trip.verifier.Value, maxSwitchCode, switchVerifierContext(globex.InternalID), &v) {
		t.Fatal("verifier does not open")
	}
	code, err := e.h.sealSwitchCode(globex, &globalSession{sid: "sid", issued: e.clock.Now()},
		tenants.User{ID: u.ID, Email: "alice@acme.test"}, challengeOf(v.Secret), "https://globex.app.test")
	if err != nil {
		t.Fatal(err)
	}
	cb := mustURL(t, "https://globex.app.test/_auth/callback?tg_switch="+code)
	resp := e.redeem(cb, trip.verifier)
	if resp.StatusCode != http.StatusBadRequest || cookieNamed(resp, "__Host-tenantgate") != nil {
		t.Fatalf("SSO identity switched in: %d", resp.StatusCode)
	}
}

// TestSwitchConfirmation: the apex issues a code without a click only to a
// browser that chose the tenant on its chooser a moment ago, under the same
// global session; any other switch (started on the tenant host, or by a
// link from elsewhere) asks the person first, with a CSRF-checked form.
func TestSwitchConfirmation(t *testing.T) {
	e := newEnv(t, withGlobal)
	alice := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
	intent := func(id string, global *http.Cookie) *http.Cookie {
		t.Helper()
		c := cookieNamed(e.choose("app.test", id, global), "__Host-tenantgate-intent")
		if c == nil {
			t.Fatalf("choosing %s set no intent", id)
		}
		return c
	}

	t.Run("chosen on the chooser", func(t *testing.T) {
		trip := e.startSwitch("acme.app.test", "/_auth/switch", alice, intent("acme", alice))
		if trip.confirm || trip.code == "" {
			t.Fatalf("confirm %v, code %v: want a code at once", trip.confirm, trip.code != "")
		}
		if got := setCookieLine(trip.apexResp, "__Host-tenantgate-intent"); !strings.Contains(got, "Max-Age=0") {
			t.Errorf("intent not cleared: %q", got)
		}
		if resp := e.redeem(trip.callback, trip.verifier); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("redeem: %d", resp.StatusCode)
		}
	})

	bob := e.globalSignIn("app.test", "bob@globex.test", bobPassword)
	for _, tc := range []struct {
		name   string
		intent func() *http.Cookie
	}{
		{"no intent", func() *http.Cookie { return nil }},
		{"intent for another tenant", func() *http.Cookie { return intent("globex", alice) }},
		{"intent of another global session", func() *http.Cookie {
			again := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
			return intent("acme", again)
		}},
		{"intent of another person", func() *http.Cookie { return intent("globex", bob) }},
		{"intent too old", func() *http.Cookie {
			c := intent("acme", alice)
			e.clock.Advance(switchIntentTTL + time.Second)
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra []*http.Cookie
			if c := tc.intent(); c != nil {
				extra = append(extra, c)
			}
			resp := e.do("GET", "acme.app.test", "/_auth/switch", nil, nil)
			verifier := resp.Cookies()[0]
			apex := mustURL(t, resp.Header.Get("Location"))
			page := e.do("GET", apex.Host, apex.RequestURI(), nil, nil, append(extra, alice)...)
			body := readBody(t, page)
			if page.StatusCode != http.StatusOK || !strings.Contains(body, "Acme Corp") || !strings.Contains(body, "alice@acme.test") {
				t.Fatalf("want the confirmation page, got %d Location %q", page.StatusCode, page.Header.Get("Location"))
			}
			if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://acme.app.test;") {
				t.Errorf("CSP %q does not let the form go on to the tenant", csp)
			}
			form := url.Values{}
			for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
				form.Set(m[1], m[2])
			}
			cookies := append([]*http.Cookie{alice}, page.Cookies()...)
			// Neither another site nor a form without its token confirms.
			for name, hdr := range map[string]http.Header{
				"cross-site": {"Sec-Fetch-Site": {"cross-site"}},
				"same-site":  {"Sec-Fetch-Site": {"same-site"}},
			} {
				if r := e.do("POST", "app.test", "/_auth/switch", form, hdr, cookies...); r.StatusCode != http.StatusForbidden {
					t.Errorf("%s confirmation: %d, want 403", name, r.StatusCode)
				}
			}
			noToken := url.Values{"tenant": form["tenant"], "host": form["host"], "challenge": form["challenge"]}
			if r := e.do("POST", "app.test", "/_auth/switch", noToken, sameOrigin(), cookies...); r.StatusCode != http.StatusForbidden {
				t.Errorf("confirmation without csrf: %d, want 403", r.StatusCode)
			}
			r := e.do("POST", "app.test", "/_auth/switch", form, sameOrigin(), cookies...)
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("confirmed: %d", r.StatusCode)
			}
			if resp := e.redeem(mustURL(t, r.Header.Get("Location")), verifier); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("redeem: %d", resp.StatusCode)
			}
		})
	}
}

func TestSwitchRateLimited(t *testing.T) {
	e := newEnv(t, withGlobal, func(h *Handler) { h.Limits = Limits{SwitchCodes: 2} })
	alice := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
	for i := range 2 {
		if trip := e.startSwitch("acme.app.test", "/_auth/switch", alice); trip.code == "" {
			t.Fatalf("switch %d: %d, want a code", i, trip.apexResp.StatusCode)
		}
	}
	trip := e.startSwitch("acme.app.test", "/_auth/switch", alice)
	if trip.code != "" || trip.apexResp.StatusCode != http.StatusTooManyRequests || trip.apexResp.Header.Get("Retry-After") == "" {
		t.Fatalf("third switch: %d, want 429 and no code", trip.apexResp.StatusCode)
	}
}

// FuzzOpenSwitchCode: whatever arrives as a code, verifier, intent or
// global session, nothing opens that the handler did not seal, and nothing
// panics.
func FuzzOpenSwitchCode(f *testing.F) {
	for _, s := range []string{"", "AQ", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 5000), "not base64!", "e30"} {
		f.Add(s)
	}
	sealer, err := seal.NewSealer(bytes.Repeat([]byte{7}, seal.MasterKeySize))
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{Sealer: sealer}
	h.init()
	f.Fuzz(func(t *testing.T, raw string) {
		var code switchCode
		var rec globalRecord
		for _, tc := range []struct {
			s   *seal.Sealer
			ctx string
			v   any
		}{
			{h.switchSealer, switchCodeContext("t1"), &code},
			{h.switchSealer, switchVerifierContext("t1"), &code},
			{h.switchSealer, switchIntentContext("app.test"), &code},
			{h.globalSealer, globalContext("app.test"), &rec},
		} {
			if openJSON(tc.s, raw, maxSwitchCode, tc.ctx, tc.v) {
				t.Fatalf("forged value %q opened", raw)
			}
		}
	})
}

// TestGlobalSessionEndsWithPasswordChange: a password changed in a tenant
// (or reset) also ends the person's global sessions on the apex: whoever
// held the old password must not keep switching into tenants with it.
func TestGlobalSessionEndsWithPasswordChange(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	e := newEnv(t, withGlobal, withMail(t, sink))
	global := e.globalSignIn("app.test", "alice@acme.test", alicePassword)
	if body := readBody(t, e.do("GET", "app.test", "/_auth/login", nil, nil, global)); !strings.Contains(body, "Signed in as") {
		t.Fatal("fresh global session does not show the chooser")
	}
	e.clock.Advance(2 * time.Second)
	sess := cookieNamed(e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	const pw = "brand-new-Passw0rd-42"
	wantStatus(t, "change", e.postForm("acme.app.test", "/_auth/account",
		url.Values{"action": {"password"}, "current_password": {alicePassword}, "new_password": {pw}, "confirm_password": {pw}}, sess), 200)
	if body := readBody(t, e.do("GET", "app.test", "/_auth/login", nil, nil, global)); strings.Contains(body, "Signed in as") {
		t.Error("the global session from before the password change still shows the chooser")
	}
	if trip := e.startSwitch("acme.app.test", "/_auth/switch", global); trip.code != "" {
		t.Error("the global session from before the password change still issues switch codes")
	}
	if body := readBody(t, e.do("GET", "app.test", "/_auth/login", nil, nil, e.globalSignIn("app.test", "alice@acme.test", pw))); !strings.Contains(body, "Signed in as") {
		t.Error("a global session with the new password does not show the chooser")
	}
}
