package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/social"
	"github.com/tenantgate/tenantgate/tenants"
)

// The SSO tests drive the handler with test doubles of the method
// interfaces: what they check is the handler's part (attempts, cookies,
// binding to the tenant, accounts, sessions), not a protocol.

// providerSecretText stands for whatever an IdP writes in an error; it must
// never reach a page.
const providerSecretText = "<b>idp-internal-error-detail</b>"

// idps is what the fake providers will say for each code (OIDC/OAuth2) or
// SAMLResponse value.
type idps struct {
	mu    sync.Mutex
	codes map[string]signin.Identity
}

func (p *idps) set(code string, id signin.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[code] = id
}

func (p *idps) get(code string) (signin.Identity, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.codes[code]
	return id, ok
}

// codeMFAMissing is the code at which fakeRedirect's provider did not
// confirm the MFA its method requires.
const codeMFAMissing = "code-mfa-missing"

// fakeRedirect is a signin.RedirectMethod and signin.LogoutMethod double.
type fakeRedirect struct {
	typ, label, tenant string
	p                  *idps
}

func (m *fakeRedirect) Type() string  { return m.typ }
func (m *fakeRedirect) Label() string { return m.label }
func (m *fakeRedirect) AuthURL(_ context.Context, a *signin.Attempt) (string, error) {
	if a.State == "" || a.Nonce == "" || len(a.PKCEVerifier) < 43 || a.TenantID != m.tenant {
		return "", errors.New("bad attempt")
	}
	return "https://idp.test/auth?" + url.Values{"state": {a.State}, "redirect_uri": {a.Endpoint.URL("/_auth/callback")}}.Encode(), nil
}
func (m *fakeRedirect) Callback(_ context.Context, a *signin.Attempt, r *http.Request) (signin.Identity, error) {
	if r.URL.Query().Get("code") == codeMFAMissing {
		return signin.Identity{}, fmt.Errorf("oidc: %w", signin.MFAMissing(errors.New("amr absent")))
	}
	id, ok := m.p.get(r.URL.Query().Get("code"))
	if !ok {
		return signin.Identity{}, errors.New("provider said " + providerSecretText)
	}
	return id, nil
}
func (m *fakeRedirect) LogoutURL(_ context.Context, hint, post string) (string, error) {
	return "https://idp.test/logout?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {post}}.Encode(), nil
}

// fakeSAML is a signin.SAMLMethod double. A SAMLResponse value is a code naming the
// identity, then "|" and the InResponseTo ("" for unsolicited).
type fakeSAML struct {
	tenant      string
	p           *idps
	allowIDPSSO bool
}

func (m *fakeSAML) Type() string  { return saml.Type }
func (m *fakeSAML) Label() string { return "Sign in with SAML" }
func (m *fakeSAML) Metadata(e signin.Endpoint) ([]byte, error) {
	return []byte(`<EntityDescriptor entityID="` + e.URL("/_auth/saml/metadata") + `"/>`), nil
}
func (m *fakeSAML) AuthnRequestURL(_ context.Context, a *signin.Attempt) (string, string, error) {
	return "https://idp.test/sso?RelayState=" + a.ID, "_req-" + a.ID, nil
}
func (m *fakeSAML) HandleResponse(_ context.Context, e signin.Endpoint, a *signin.Attempt, r *http.Request) (signin.Identity, error) {
	code, inResponseTo, _ := strings.Cut(r.PostForm.Get("SAMLResponse"), "|")
	switch {
	case a == nil && (!m.allowIDPSSO || inResponseTo != ""):
		return signin.Identity{}, errors.New("unsolicited response refused")
	case a != nil && inResponseTo != a.SAMLRequestID:
		return signin.Identity{}, errors.New("InResponseTo mismatch")
	}
	if reason, ok := strings.CutPrefix(code, "explained:"); ok {
		return signin.Identity{}, fmt.Errorf("saml: %w", &signin.Refusal{
			Reason:  reason,
			Message: "Set the <Name ID format> to persistent.",
			Err:     errors.New("NameID format is transient"),
		})
	}
	id, ok := m.p.get(code)
	if !ok {
		return signin.Identity{}, errors.New("bad assertion " + providerSecretText)
	}
	return id, nil
}

// ssoEnv is env plus SSO tenants and fake methods:
//
//   - oidcco: one oidc method only (straight redirect);
//   - multi: password, oidc, social, saml (the chooser);
//   - brokenco: password and an oidc method whose opener fails;
//   - bareco: password and a social method without a clientID;
//   - idpinit: saml only, IdP-initiated allowed;
//   - iced: suspended, oidc only.
type ssoEnv struct {
	*env
	p     *idps
	opens map[string]int // opener calls by tenant slug
	mu    sync.Mutex
}

func newSSOEnv(t *testing.T, configure ...func(*Handler)) *ssoEnv {
	t.Helper()
	se := &ssoEnv{p: &idps{codes: map[string]signin.Identity{}}, opens: map[string]int{}}
	opener := func(ctx context.Context, tn *tenants.Tenant, i int) (signin.Method, error) {
		se.mu.Lock()
		se.opens[tn.ID]++
		se.mu.Unlock()
		m := tn.Methods[i]
		var cfg struct {
			Issuer, ClientID  string
			AllowIDPInitiated bool
		}
		_ = json.Unmarshal(m.Config, &cfg)
		switch {
		case strings.Contains(cfg.Issuer, "broken"):
			return nil, errors.New("discovery failed")
		case m.Type == saml.Type:
			return &fakeSAML{tenant: tn.InternalID, p: se.p, allowIDPSSO: cfg.AllowIDPInitiated}, nil
		case m.Type == social.Type && cfg.ClientID == "":
			return nil, fmt.Errorf("no clientID: %w", signin.ErrNotOffered)
		}
		label := m.Label
		if label == "" {
			label = "Sign in with " + m.Type + " " + tn.ID
		}
		return &fakeRedirect{typ: m.Type, label: label, tenant: tn.InternalID, p: se.p}, nil
	}
	se.env = newEnv(t, append([]func(*Handler){func(h *Handler) {
		h.Methods = map[string]signin.Opener{oidc.Type: opener, social.Type: opener, saml.Type: opener}
		h.MethodTypes = testMethodTypes()
		h.Sealer = h.Minter.Sealer
	}}, configure...)...)
	sealer := se.h.Minter.Sealer

	roles := map[string]tenants.Role{"admin": {Permissions: []string{"*"}}, "member": {Permissions: []string{"docs:read"}}}
	oidcM := func(label, issuer string) tenants.Method {
		return method(t, oidc.Type, label, oidc.Config{Issuer: issuer, ClientID: "tg", ClientSecret: "oidc-secret"}, tenants.RoleMapping{})
	}
	samlM := func(allowIDPInitiated bool) tenants.Method {
		return method(t, saml.Type, "", saml.Config{IDPMetadataURL: "https://idp.test/saml/metadata", AllowIDPInitiated: allowIDPInitiated}, tenants.RoleMapping{})
	}
	const issuer = "https://idp.test/realms/x"
	ts := []tenants.Tenant{
		{ID: "oidcco", Name: "OIDC Co", Methods: []tenants.Method{oidcM("", issuer)}, Roles: roles},
		{ID: "multi", Name: "Multi", Methods: []tenants.Method{
			{Type: tenants.MethodPassword}, oidcM("Acme SSO", issuer),
			method(t, social.Type, "", social.Config{Provider: "github", ClientID: "gh", ClientSecret: "gh-secret"}, tenants.RoleMapping{}), samlM(false),
		}, Roles: roles},
		{ID: "brokenco", Methods: []tenants.Method{{Type: tenants.MethodPassword}, oidcM("", "https://broken.idp.test/")}, Roles: roles},
		{ID: "bareco", Methods: []tenants.Method{{Type: tenants.MethodPassword},
			method(t, social.Type, "", social.Config{Provider: "github"}, tenants.RoleMapping{})}, Roles: roles},
		{ID: "idpinit", Methods: []tenants.Method{samlM(true)}, Roles: roles},
		{ID: "iced", Status: tenants.StatusSuspended, Methods: []tenants.Method{oidcM("", issuer)}, Roles: roles},
	}
	if err := tenants.Validate(ts, tenants.ValidateOptions{Methods: testMethodTypes()}); err != nil {
		t.Fatal(err)
	}
	_, err := se.store.ApplyTenants(t.Context(), ts, tenants.ApplyOptions{
		NewKey:     func(id string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, id, se.clock.Now()) },
		SealMethod: signin.SealMethods(sealer, testMethodTypes()),
		NewSAMLKey: func(id string) (tenants.SAMLKey, error) {
			return tenants.SAMLKey{Certificate: []byte("cert"), SealedPrivate: []byte("key")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	se.refresh()
	return se
}

// jar is a minimal browser cookie jar for one host: Set-Cookie replaces,
// Max-Age<0 deletes.
type jar map[string]*http.Cookie

func (j jar) take(resp *http.Response) {
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(j, c.Name)
		} else {
			j[c.Name] = c
		}
	}
}

func (j jar) all() []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *http.Cookie) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (j jar) attempts() []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j.all() {
		if strings.Contains(c.Name, "tg-attempt-") {
			out = append(out, c)
		}
	}
	return out
}

// stateOf returns the state parameter of a fake provider redirect.
func stateOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Host != "idp.test" {
		t.Fatalf("Location %q is not the provider", resp.Header.Get("Location"))
	}
	return u.Query().Get("state")
}

// sessionOf verifies the session cookie a response set.
func (se *ssoEnv) sessionOf(resp *http.Response) session.Claims {
	se.t.Helper()
	c := cookieNamed(resp, "__Host-tenantgate")
	if c == nil {
		se.t.Fatalf("no session cookie (status %d)", resp.StatusCode)
	}
	se.refresh()
	claims, err := verifyOwnTenant(se.verifier, se.snaps.Load(), c.Value)
	if err != nil {
		se.t.Fatalf("session does not verify: %v", err)
	}
	return *claims
}

func (se *ssoEnv) tenant(id string) *tenants.Tenant {
	return se.snaps.Load().BySlug(id)
}

// startOIDC begins a straight-redirect sign-in at oidcco and returns the
// state.
func (se *ssoEnv) startOIDC(j jar, host, target string) string {
	se.t.Helper()
	resp := se.do("GET", host, target, nil, nil, j.all()...)
	if resp.StatusCode != http.StatusFound {
		se.t.Fatalf("GET %s%s: %d, want 302", host, target, resp.StatusCode)
	}
	j.take(resp)
	return stateOf(se.t, resp)
}

func TestSSOStraightRedirectAndAttemptCookie(t *testing.T) {
	se := newSSOEnv(t)
	resp := se.do("GET", "oidcco.app.test", "/_auth/login?rd=%2Fdocs%3Fa%3D1", nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302 straight to the provider", resp.StatusCode)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	if u.Host != "idp.test" || len(u.Query().Get("state")) < 43 {
		t.Errorf("Location = %s: want the provider with a state of at least 256 bits", u)
	}
	if got := u.Query().Get("redirect_uri"); got != "https://oidcco.app.test/_auth/callback" {
		t.Errorf("redirect_uri = %q", got)
	}
	var line string
	for _, l := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(l, "__Host-tg-attempt-") {
			line = l
		}
	}
	for _, want := range []string{"Path=/", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(line, want) {
			t.Errorf("attempt cookie %q lacks %s", line, want)
		}
	}
	if strings.Contains(strings.ToLower(line), "domain=") {
		t.Errorf("attempt cookie %q is not host-only", line)
	}
	if strings.Contains(line, u.Query().Get("state")) {
		t.Error("the attempt cookie shows the state in the clear")
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("redirect is cacheable")
	}

	// Insecure mode: no __Host- prefix, no Secure.
	ins := newSSOEnv(t, func(h *Handler) { h.InsecureCookies = true })
	resp = ins.do("GET", "oidcco.app.test", "/_auth/login", nil, nil)
	c := cookieNamed(resp, "")
	for _, x := range resp.Cookies() {
		if strings.HasPrefix(x.Name, "tg-attempt-") {
			c = x
		}
	}
	if c == nil || c.Secure || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("insecure attempt cookie = %+v", c)
	}
}

func TestSSOChooser(t *testing.T) {
	se := newSSOEnv(t)
	resp := se.do("GET", "multi.app.test", "/_auth/login?rd=/x&login_hint=ann%40multi.test", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Password form first, then one form per SSO method in configured order.
	iPW := strings.Index(body, `name="password"`)
	i1 := strings.Index(body, `name="m" value="1"`)
	i2 := strings.Index(body, `name="m" value="2"`)
	i3 := strings.Index(body, `name="m" value="3"`)
	if iPW < 0 || i1 < iPW || i2 < i1 || i3 < i2 {
		t.Fatalf("order password, m=1, m=2, m=3 not found in\n%s", body)
	}
	for _, want := range []string{
		`action="/_auth/start"`, `>Acme SSO</button>`, `>Sign in with social multi</button>`, `>Sign in with SAML</button>`,
		`name="login_hint" value="ann@multi.test"`, `name="rd" value="/x"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https:") {
		t.Errorf("CSP %q does not let the start forms redirect to a provider", csp)
	}

	// A method that cannot be opened is shown as unavailable; the page and
	// the password form still work, and the failure is logged once.
	for range 3 {
		resp = se.do("GET", "brokenco.app.test", "/_auth/login", nil, nil)
		body = readBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) || !strings.Contains(body, "Temporarily unavailable") {
			t.Fatalf("broken method page: %d\n%s", resp.StatusCode, body)
		}
	}
	if n := strings.Count(se.logs.String(), "discovery failed"); n != 1 {
		t.Errorf("opening failure logged %d times, want once", n)
	}
	if strings.Contains(body, "discovery failed") {
		t.Error("the page shows the opener's error")
	}
	// Opened methods are reused across requests and snapshots.
	before := se.opens["multi"]
	se.refresh()
	se.do("GET", "multi.app.test", "/_auth/login", nil, nil)
	if se.opens["multi"] != before {
		t.Errorf("methods reopened after an unrelated snapshot refresh (%d -> %d opens)", before, se.opens["multi"])
	}
}

// TestSSOIncompleteMethodNotOffered: a social method without a clientID
// (CONTRACT's bare `provider: github`) is neither shown nor startable, and
// never reaches the opener.
func TestSSOIncompleteMethodNotOffered(t *testing.T) {
	se := newSSOEnv(t)
	resp := se.do("GET", "bareco.app.test", "/_auth/login", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("bareco sign-in page: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, `name="m"`) || strings.Contains(body, "Temporarily unavailable") {
		t.Errorf("the incomplete social method is on the page:\n%s", body)
	}
	f := se.getForm("bareco.app.test", "/_auth/login")
	resp = se.do("POST", "bareco.app.test", "/_auth/start", url.Values{"m": {"1"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	if resp.StatusCode < 400 || resp.Header.Get("Location") != "" {
		t.Errorf("starting the incomplete method: %d, Location %q; want a refusal", resp.StatusCode, resp.Header.Get("Location"))
	}
	if se.opens["bareco"] != 0 {
		t.Errorf("the incomplete method was opened %d times", se.opens["bareco"])
	}
}

func TestSSOStartForm(t *testing.T) {
	se := newSSOEnv(t)
	f := se.getForm("multi.app.test", "/_auth/login")
	post := func(form url.Values, hdr http.Header, cookies ...*http.Cookie) *http.Response {
		return se.do("POST", "multi.app.test", "/_auth/start", form, hdr, cookies...)
	}
	ok := url.Values{"m": {"3"}, "rd": {"/after"}, "csrf": {f.csrf}}
	if resp := post(ok, http.Header{"Sec-Fetch-Site": {"cross-site"}}, f.preauth); resp.StatusCode != 403 {
		t.Errorf("cross-site start: %d, want 403", resp.StatusCode)
	}
	if resp := post(url.Values{"m": {"3"}}, sameOrigin(), f.preauth); resp.StatusCode != 403 {
		t.Errorf("start without csrf: %d, want 403", resp.StatusCode)
	}
	for _, m := range []string{"0", "9", "-1", "x"} {
		if resp := post(url.Values{"m": {m}, "csrf": {f.csrf}}, sameOrigin(), f.preauth); resp.StatusCode != 400 {
			t.Errorf("start with m=%s: %d, want 400", m, resp.StatusCode)
		}
	}
	if resp := se.do("GET", "multi.app.test", "/_auth/start", nil, nil); resp.StatusCode != 405 {
		t.Errorf("GET /_auth/start: %d, want 405", resp.StatusCode)
	}

	// SAML: 303 to the IdP; the attempt cookie is SameSite=None; Secure, for
	// the cross-site POST back to the ACS.
	resp := post(ok, sameOrigin(), f.preauth)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.test/sso?RelayState=") {
		t.Fatalf("SAML start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var line string
	for _, l := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(l, "__Host-tg-attempt-") {
			line = l
		}
	}
	if !strings.Contains(line, "SameSite=None") || !strings.Contains(line, "Secure") {
		t.Errorf("SAML attempt cookie %q: want SameSite=None; Secure", line)
	}
}

func TestSSOCallbackSignsIn(t *testing.T) {
	se := newSSOEnv(t)
	j := jar{}
	state := se.startOIDC(j, "oidcco.app.test", "/_auth/login?rd=/docs")
	se.p.set("code-ann", signin.Identity{Issuer: "https://idp.test/realms/x", Subject: "ann-sub", Email: "Ann@OIDC.test",
		EmailVerified: true, Roles: []string{"admin", "ghost"}, IDTokenHint: "id.token.hint"})
	resp := se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {state}, "code": {"code-ann"}}.Encode(), nil, nil, j.all()...)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/docs" {
		t.Fatalf("callback: %d %s: %s", resp.StatusCode, resp.Header.Get("Location"), readBody(t, resp))
	}
	claims := se.sessionOf(resp)
	oidcco := se.tenant("oidcco")
	if claims.TenantID != oidcco.InternalID || claims.Method != "oidc" || claims.Email != "ann@oidc.test" ||
		!slices.Equal(claims.Roles, []string{"admin"}) {
		t.Errorf("claims = %+v: want tenant oidcco, method oidc, the verified email, roles [admin] (unknown roles dropped)", claims)
	}
	if roles, err := se.store.Membership(t.Context(), oidcco.InternalID, claims.Subject); err != nil || !slices.Equal(roles, []string{"admin"}) {
		t.Errorf("stored membership = %v, %v", roles, err)
	}
	j.take(resp)
	if len(j.attempts()) != 0 {
		t.Error("the attempt cookie was not cleared")
	}
	// Single use: the same state again (the browser no longer has the
	// cookie) is refused.
	resp = se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {state}, "code": {"code-ann"}}.Encode(), nil, nil, j.all()...)
	if body := readBody(t, resp); resp.StatusCode != 400 || !strings.Contains(body, "Invalid login request") {
		t.Errorf("reused state: %d, want 400 invalid login request", resp.StatusCode)
	}

	// The same person again: the same account.
	state = se.startOIDC(j, "oidcco.app.test", "/_auth/login")
	resp = se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {state}, "code": {"code-ann"}}.Encode(), nil, nil, j.all()...)
	if again := se.sessionOf(resp); again.Subject != claims.Subject {
		t.Errorf("second sign-in got user %s, want %s", again.Subject, claims.Subject)
	}
}

func TestSSOParallelAttempts(t *testing.T) {
	se := newSSOEnv(t)
	j := jar{}
	s1 := se.startOIDC(j, "oidcco.app.test", "/_auth/login?rd=/one")
	s2 := se.startOIDC(j, "oidcco.app.test", "/_auth/login?rd=/two")
	if len(j.attempts()) != 2 || s1 == s2 {
		t.Fatalf("two tabs: %d attempt cookies", len(j.attempts()))
	}
	se.p.set("c", signin.Identity{Issuer: "i", Subject: "s"})
	for _, tc := range []struct{ state, rd string }{{s2, "/two"}, {s1, "/one"}} {
		resp := se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(tc.state)+"&code=c", nil, nil, j.all()...)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.rd {
			t.Errorf("tab %s: %d %s", tc.rd, resp.StatusCode, resp.Header.Get("Location"))
		}
		j.take(resp)
	}
	if len(j.attempts()) != 0 {
		t.Errorf("%d attempt cookies left", len(j.attempts()))
	}

	// At most five attempts are kept; the oldest go first.
	for i := range 7 {
		se.startOIDC(j, "oidcco.app.test", "/_auth/login")
		se.clock.Advance(time.Second)
		if n := len(j.attempts()); n > maxAttempts || n != min(i+1, maxAttempts) {
			t.Fatalf("after %d starts: %d attempt cookies", i+1, n)
		}
	}
}

func TestSSOCallbackRefusals(t *testing.T) {
	se := newSSOEnv(t)
	se.p.set("good", signin.Identity{Issuer: "i", Subject: "s", Email: "x@y.test", EmailVerified: true})
	se.p.set("nosub", signin.Identity{Issuer: "i", Email: "x@y.test", EmailVerified: true})
	callback := func(host, prefix string, state, code string, j jar) *http.Response {
		return se.do("GET", host, prefix+"/_auth/callback?"+url.Values{"state": {state}, "code": {code}}.Encode(), nil, nil, j.all()...)
	}
	for _, tc := range []struct {
		name string
		run  func() *http.Response
	}{
		{"no state", func() *http.Response {
			j := jar{}
			se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			return callback("oidcco.app.test", "", "", "good", j)
		}},
		{"wrong state", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			return callback("oidcco.app.test", "", s[:len(s)-2]+"AA", "good", j)
		}},
		{"no attempt cookie", func() *http.Response {
			s := se.startOIDC(jar{}, "oidcco.app.test", "/_auth/login")
			return callback("oidcco.app.test", "", s, "good", jar{})
		}},
		{"expired", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			se.clock.Advance(attemptTTL + time.Second)
			return callback("oidcco.app.test", "", s, "good", j)
		}},
		{"tampered cookie", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			for _, c := range j.attempts() {
				b := []byte(c.Value)
				b[10] ^= 1
				c.Value = string(b)
			}
			return callback("oidcco.app.test", "", s, "good", j)
		}},
		{"cookie renamed to another attempt", func() *http.Response {
			j := jar{}
			se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			s2 := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			cs := j.attempts()
			cs[0].Value, cs[1].Value = cs[1].Value, cs[0].Value
			return callback("oidcco.app.test", "", s2, "good", j)
		}},
		{"state from another tenant (mix-up)", func() *http.Response {
			// Path tenancy shares the host's cookies: an attempt started
			// for oidcco completed at multi.
			j := jar{}
			s := se.startOIDC(j, "app.test", "/org/oidcco/_auth/login")
			return callback("app.test", "/org/multi", s, "good", j)
		}},
		{"state for another host of the tenant", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			return callback("app.test", "/org/oidcco", s, "good", j)
		}},
		{"provider error", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			return callback("oidcco.app.test", "", s, "unknown-code", j)
		}},
		{"identity without subject", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			return callback("oidcco.app.test", "", s, "nosub", j)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.run()
			body := readBody(t, resp)
			if resp.StatusCode != 400 || !strings.Contains(body, "Invalid login request") {
				t.Errorf("status %d, want 400 invalid login request:\n%s", resp.StatusCode, body)
			}
			if cookieNamed(resp, "__Host-tenantgate") != nil {
				t.Error("a session cookie was set")
			}
			if strings.Contains(body, "idp-internal-error-detail") {
				t.Error("the page echoes the provider's error")
			}
		})
	}
	if !strings.Contains(se.logs.String(), "sso_attempt_other_tenant") || !strings.Contains(se.logs.String(), "sso_callback_refused") {
		t.Error("refusals are not logged with reason codes")
	}
}

func TestSSONeverLinksByEmail(t *testing.T) {
	se := newSSOEnv(t)
	alice, err := se.store.UserByEmail(t.Context(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	// oidcco's IdP says it is alice@acme.test, verified.
	se.p.set("alice", signin.Identity{Issuer: "https://idp.test/realms/x", Subject: "a1", Email: "alice@acme.test", EmailVerified: true, Roles: []string{"admin"}})
	j := jar{}
	s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
	claims := se.sessionOf(se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(s)+"&code=alice", nil, nil, j.all()...))
	if claims.Subject == alice.ID {
		t.Fatal("the SSO identity was linked to the password user with the same email")
	}
	for _, tid := range []string{"acme", "globex", "multi"} {
		if _, err := se.store.Membership(t.Context(), se.tenant(tid).InternalID, claims.Subject); !errors.Is(err, tenants.ErrNotFound) {
			t.Errorf("the oidcco SSO user is a member of %s (%v)", tid, err)
		}
	}
	if u, _ := se.store.UserByEmail(t.Context(), "alice@acme.test"); u.ID != alice.ID {
		t.Error("UserByEmail now finds another user")
	}
	// And the same subject at another tenant's IdP is another account.
	se.p.set("multi-a1", signin.Identity{Issuer: "https://idp.test/realms/x", Subject: "a1"})
	f := se.getForm("multi.app.test", "/_auth/login")
	resp := se.do("POST", "multi.app.test", "/_auth/start", url.Values{"m": {"1"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	j2 := jar{}
	j2.take(resp)
	resp = se.do("GET", "multi.app.test", "/_auth/callback?state="+url.QueryEscape(stateOf(t, resp))+"&code=multi-a1", nil, nil, j2.all()...)
	if other := se.sessionOf(resp); other.Subject == claims.Subject || other.TenantID != se.tenant("multi").InternalID {
		t.Errorf("same issuer and subject at multi = %+v: want another user, in multi", other)
	}
}

func TestSSOUnverifiedEmailDropped(t *testing.T) {
	se := newSSOEnv(t)
	se.p.set("m", signin.Identity{Issuer: "i", Subject: "mallory", Email: "mallory@acme.test", EmailVerified: false})
	j := jar{}
	s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
	claims := se.sessionOf(se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(s)+"&code=m", nil, nil, j.all()...))
	if claims.Email != "" {
		t.Errorf("session email = %q from an unverified claim", claims.Email)
	}
	ms, _ := se.store.Members(t.Context(), "oidcco")
	if len(ms) != 1 || ms[0].User.Email != "" {
		t.Errorf("stored members = %+v: the unverified email was stored", ms)
	}
}

func TestSSOSAMLACS(t *testing.T) {
	se := newSSOEnv(t)
	se.p.set("carol", signin.Identity{Issuer: "https://idp.test/saml", Subject: "carol", Email: "carol@multi.test", EmailVerified: true, Roles: []string{"member"}})
	start := func(j jar) string {
		f := se.getForm("multi.app.test", "/_auth/login")
		resp := se.do("POST", "multi.app.test", "/_auth/start", url.Values{"m": {"3"}, "rd": {"/saml-landing"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		j.take(resp)
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query().Get("RelayState")
	}
	crossSite := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://idp.test"}}
	acs := func(form url.Values, j jar) *http.Response {
		return se.do("POST", "multi.app.test", "/_auth/saml/acs", form, crossSite, j.all()...)
	}

	// The IdP's cross-site POST, with no CSRF field, signs in: bound to the
	// attempt by RelayState and InResponseTo.
	j := jar{}
	relay := start(j)
	resp := acs(url.Values{"SAMLResponse": {"carol|_req-" + relay}, "RelayState": {relay}}, j)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/saml-landing" {
		t.Fatalf("ACS: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), readBody(t, resp))
	}
	claims := se.sessionOf(resp)
	if claims.Method != "saml" || claims.TenantID != se.tenant("multi").InternalID || !slices.Equal(claims.Roles, []string{"member"}) {
		t.Errorf("claims = %+v", claims)
	}

	for _, tc := range []struct {
		name string
		run  func() *http.Response
	}{
		{"no attempt cookie", func() *http.Response {
			relay := start(jar{})
			return acs(url.Values{"SAMLResponse": {"carol|_req-" + relay}, "RelayState": {relay}}, jar{})
		}},
		{"response for another attempt", func() *http.Response {
			j := jar{}
			r1 := start(j)
			r2 := start(j)
			return acs(url.Values{"SAMLResponse": {"carol|_req-" + r1}, "RelayState": {r2}}, j)
		}},
		{"unsolicited, not allowed", func() *http.Response {
			return acs(url.Values{"SAMLResponse": {"carol|"}}, jar{})
		}},
		{"expired attempt", func() *http.Response {
			j := jar{}
			relay := start(j)
			se.clock.Advance(attemptTTL + time.Second)
			return acs(url.Values{"SAMLResponse": {"carol|_req-" + relay}, "RelayState": {relay}}, j)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.run()
			if body := readBody(t, resp); resp.StatusCode != 400 || !strings.Contains(body, "Invalid login request") {
				t.Errorf("status %d, want 400:\n%s", resp.StatusCode, body)
			}
			if cookieNamed(resp, "__Host-tenantgate") != nil {
				t.Error("a session cookie was set")
			}
		})
	}

	// A refusal the method explains (signin.Refusal, as for a transient
	// NameID) logs the method's reason and shows its cause and fix.
	t.Run("explained refusal", func(t *testing.T) {
		j := jar{}
		relay := start(j)
		resp := acs(url.Values{"SAMLResponse": {"explained:sso_saml_transient_nameid|_req-" + relay}, "RelayState": {relay}}, j)
		body := readBody(t, resp)
		if resp.StatusCode != 400 || !strings.Contains(body, "Invalid login request") ||
			!strings.Contains(body, "Set the &lt;Name ID format&gt; to persistent.") {
			t.Errorf("status %d, want 400 with the method's message, escaped:\n%s", resp.StatusCode, body)
		}
		if cookieNamed(resp, "__Host-tenantgate") != nil {
			t.Error("a session cookie was set")
		}
		logLine(t, se.logs.String(), "sso_saml_transient_nameid")
		if !strings.Contains(se.logs.String(), "NameID format is transient") {
			t.Errorf("the log lacks the method's detail:\n%s", se.logs.String())
		}
	})

	// An attempt made at one tenant is no good at another's ACS.
	j = jar{}
	relay = start(j)
	resp = se.do("POST", "idpinit.app.test", "/_auth/saml/acs",
		url.Values{"SAMLResponse": {"carol|_req-" + relay}, "RelayState": {relay}}, crossSite, j.all()...)
	if resp.StatusCode != 400 {
		t.Errorf("multi's attempt at idpinit: %d, want 400", resp.StatusCode)
	}

	// IdP-initiated where the tenant allows it.
	resp = se.do("POST", "idpinit.app.test", "/_auth/saml/acs", url.Values{"SAMLResponse": {"carol|"}}, crossSite)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("IdP-initiated at idpinit: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Oversized bodies are refused before anything reads them.
	resp = acs(url.Values{"SAMLResponse": {strings.Repeat("A", maxACSBytes+1)}}, jar{})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized ACS POST: %d, want 413", resp.StatusCode)
	}
	if resp := se.do("GET", "multi.app.test", "/_auth/saml/acs", nil, nil); resp.StatusCode != 405 {
		t.Errorf("GET ACS: %d, want 405", resp.StatusCode)
	}

	// Metadata, for this host.
	resp = se.do("GET", "multi.app.test", "/_auth/saml/metadata", nil, nil)
	if body := readBody(t, resp); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/samlmetadata+xml" ||
		!strings.Contains(body, `entityID="https://multi.app.test/_auth/saml/metadata"`) {
		t.Errorf("metadata: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp := se.do("GET", "oidcco.app.test", "/_auth/saml/metadata", nil, nil); resp.StatusCode != 404 {
		t.Errorf("metadata of a tenant without saml: %d, want 404", resp.StatusCode)
	}
}

func TestSSOSuspendedTenant(t *testing.T) {
	se := newSSOEnv(t)
	for _, tc := range []struct {
		method, target string
		form           url.Values
	}{
		{"GET", "/_auth/login", nil},
		{"GET", "/_auth/callback?state=x&code=y", nil},
		{"POST", "/_auth/start", url.Values{"m": {"0"}}},
		{"POST", "/_auth/saml/acs", url.Values{"SAMLResponse": {"x"}}},
	} {
		resp := se.do(tc.method, "iced.app.test", tc.target, tc.form, sameOrigin())
		if body := readBody(t, resp); resp.StatusCode != 403 || !strings.Contains(body, "suspended") {
			t.Errorf("%s %s at a suspended tenant: %d", tc.method, tc.target, resp.StatusCode)
		}
	}
}

func TestSSOLogoutAtProvider(t *testing.T) {
	se := newSSOEnv(t)
	se.p.set("c", signin.Identity{Issuer: "i", Subject: "s", IDTokenHint: "the.id.token"})
	j := jar{}
	s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
	resp := se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(s)+"&code=c", nil, nil, j.all()...)
	j.take(resp)
	idt := j["__Host-tg-idt"]
	if idt == nil || strings.Contains(idt.Value, "the.id.token") || !idt.HttpOnly || !idt.Secure {
		t.Fatalf("id-token cookie = %+v: want a sealed, HttpOnly, Secure cookie", idt)
	}
	f := se.getForm("oidcco.app.test", "/_auth/logout", j.all()...)
	resp = se.do("POST", "oidcco.app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), append(j.all(), f.preauth)...)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Host != "idp.test" || loc.Query().Get("id_token_hint") != "the.id.token" ||
		loc.Query().Get("post_logout_redirect_uri") != "https://oidcco.app.test/_auth/signed-out" {
		t.Fatalf("logout: %d %s", resp.StatusCode, loc)
	}
	j.take(resp)
	if j["__Host-tg-idt"] != nil || j["__Host-tenantgate"] != nil {
		t.Error("logout left the session or id-token cookie")
	}
	if resp := se.do("GET", "oidcco.app.test", "/_auth/signed-out", nil, nil); resp.StatusCode != 200 {
		t.Errorf("signed-out page: %d", resp.StatusCode)
	}

	// The id-token cookie of one session is no good with another.
	se.p.set("d", signin.Identity{Issuer: "i", Subject: "other"})
	s = se.startOIDC(j, "oidcco.app.test", "/_auth/login")
	resp = se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(s)+"&code=d", nil, nil, j.all()...)
	j.take(resp)
	j["__Host-tg-idt"] = idt
	f = se.getForm("oidcco.app.test", "/_auth/logout", j.all()...)
	resp = se.do("POST", "oidcco.app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), append(j.all(), f.preauth)...)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" {
		t.Errorf("logout with a foreign id-token cookie: %d %s, want the local sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDiscoveryFormReachesSSOOnlyTenants: discovery's POST may redirect to
// a tenant whose only method is SSO, which redirects on to its IdP; the
// apex page's form-action must allow that whole chain, or the browser stops
// at the IdP.
func TestDiscoveryFormReachesSSOOnlyTenants(t *testing.T) {
	se := newSSOEnv(t)
	resp := se.do("GET", "app.test", "/_auth/login", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("apex page: %d", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Content-Security-Policy"), cspFor(body, "https: http://localhost:* http://127.0.0.1:*"); got != want {
		t.Errorf("CSP = %q, want %q", got, want)
	}
}
