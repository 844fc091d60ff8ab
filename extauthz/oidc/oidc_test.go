package oidc

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

const tenantInternalID = "t-acme-0001"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	sealer *seal.Sealer
	opener signin.Opener
	clock  *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	key := make([]byte, seal.MasterKeySize)
	rand.Read(key)
	s, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	return &env{
		sealer: s,
		clock:  c,
		opener: NewOpener(Options{
			Sealer:            s,
			HTTPClient:        idpclient.New(idpclient.Options{AllowLoopbackHTTP: true}),
			AllowLoopbackHTTP: true,
			Now:               c.Now,
		}),
	}
}

// oidcMethod is a tenant method entry for p, with the client secret sealed
// for the tenant.
func (e *env) oidcMethod(t *testing.T, p *fakeIdP) tenants.Method {
	t.Helper()
	sealed, err := seal.SealSecret(e.sealer, []byte(p.secret), tenantInternalID)
	if err != nil {
		t.Fatal(err)
	}
	return entry(t, Config{Issuer: p.issuer, ClientID: p.clientID}, sealed,
		tenants.RoleMapping{GroupRoles: map[string][]string{"engineering": {"dev", "member"}, "admins": {"admin"}}, DefaultRoles: []string{"member"}})
}

// entry is an oidc method entry with Config c.
func entry(t testing.TB, c Config, sealed []byte, roles tenants.RoleMapping) tenants.Method {
	t.Helper()
	m := tenants.Method{Type: Type, Sealed: sealed, Roles: roles}
	if err := m.EncodeConfig(c); err != nil {
		t.Fatal(err)
	}
	return m
}

// config is the Config of entry m.
func config(t testing.TB, m tenants.Method) Config {
	t.Helper()
	var c Config
	if err := m.DecodeConfig(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func tenant(methods ...tenants.Method) *tenants.Tenant {
	return &tenants.Tenant{
		ID:         "acme",
		InternalID: tenantInternalID,
		Methods:    append([]tenants.Method{{Type: tenants.MethodPassword}}, methods...),
	}
}

func (e *env) open(t *testing.T, tn *tenants.Tenant, index int) *Method {
	t.Helper()
	m, err := e.opener(context.Background(), tn, index)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return m.(*Method)
}

func newAttempt(index int) *signin.Attempt {
	return &signin.Attempt{
		ID:           rand.Text(),
		TenantID:     tenantInternalID,
		Method:       index,
		Endpoint:     signin.Endpoint{Origin: "https://acme.app.example"},
		State:        rand.Text(),
		Nonce:        rand.Text(),
		PKCEVerifier: oauth2.GenerateVerifier(),
		ReturnTo:     "/",
		Created:      time.Now(),
	}
}

// authorize follows AuthURL through the fake IdP's authorization endpoint
// and returns the callback URL it redirects the browser to.
func authorize(t *testing.T, m signin.RedirectMethod, a *signin.Attempt) *url.URL {
	t.Helper()
	u, err := m.AuthURL(context.Background(), a)
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if want := a.Endpoint.URL(signin.PathCallback); cb.Scheme+"://"+cb.Host+cb.Path != want {
		t.Fatalf("redirected to %s, want %s", cb, want)
	}
	return cb
}

func callback(m signin.RedirectMethod, a *signin.Attempt, cb *url.URL) (signin.Identity, error) {
	return m.Callback(context.Background(), a, httptest.NewRequest(http.MethodGet, cb.String(), nil))
}

func setQuery(cb *url.URL, k, v string) {
	q := cb.Query()
	if v == "" {
		q.Del(k)
	} else {
		q.Set(k, v)
	}
	cb.RawQuery = q.Encode()
}

func TestCallback(t *testing.T) {
	tests := []struct {
		name string
		idp  func(p *fakeIdP)
		// edit changes the attempt or callback after the authorization
		// response, as an attacker or a broken browser would.
		edit  func(a *signin.Attempt, cb *url.URL)
		want  error
		check func(t *testing.T, id signin.Identity)
	}{
		{
			name: "success RS256",
			check: func(t *testing.T, id signin.Identity) {
				if id.Subject != "user-1" || id.Email != "ada@acme.test" || !id.EmailVerified || id.Name != "Ada Lovelace" {
					t.Errorf("identity = %+v", id)
				}
				if !slices.Equal(id.Roles, []string{"dev", "member"}) {
					t.Errorf("roles = %v, want [dev member]", id.Roles)
				}
				if id.IDTokenHint == "" || strings.Count(id.IDTokenHint, ".") != 2 {
					t.Errorf("IDTokenHint = %q, want the raw id token", id.IDTokenHint)
				}
			},
		},
		{name: "success ES256", idp: func(p *fakeIdP) { p.alg = "ES256" }},
		{name: "success without iss parameter when not advertised", idp: func(p *fakeIdP) { p.advertiseIss, p.sendIss = false, false }},
		{name: "wrong nonce", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["nonce"] = rand.Text() } }, want: errNonce},
		{name: "missing nonce", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { delete(c, "nonce") } }, want: errNonce},
		{name: "nonce of another attempt", edit: func(a *signin.Attempt, _ *url.URL) { a.Nonce = rand.Text() }, want: errNonce},
		{name: "wrong iss in token", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["iss"] = "https://evil.example/realms/acme" } }, want: errIDToken},
		{name: "wrong aud", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["aud"] = "another-client" } }, want: errIDToken},
		{name: "missing aud", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { delete(c, "aud") } }, want: errIDToken},
		{name: "azp mismatch", idp: func(p *fakeIdP) {
			p.claims = func(c jwt.MapClaims) { c["aud"] = []string{"tenantgate", "other"}; c["azp"] = "other" }
		}, want: errAzp},
		{name: "several audiences without azp", idp: func(p *fakeIdP) {
			p.claims = func(c jwt.MapClaims) { c["aud"] = []string{"tenantgate", "other"} }
		}, want: errAzp},
		{name: "several audiences with our azp", idp: func(p *fakeIdP) {
			p.claims = func(c jwt.MapClaims) { c["aud"] = []string{"tenantgate", "other"}; c["azp"] = "tenantgate" }
		}},
		{name: "single audience, foreign azp", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["azp"] = "other" } }, want: errAzp},
		{name: "unsigned alg none", idp: func(p *fakeIdP) { p.alg = "none" }, want: errIDToken},
		{name: "signed by another key", idp: func(p *fakeIdP) { p.alg = "foreign" }, want: errIDToken},
		{name: "HS256 with public key material", idp: func(p *fakeIdP) { p.alg = "HS256" }, want: errIDToken},
		{name: "expired token", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() } }, want: errIDToken},
		{name: "no sub", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { delete(c, "sub") } }, want: errClaims},
		{name: "wrong at_hash", idp: func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" } }, want: errIDToken},
		{name: "iss parameter mismatch", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "iss", "https://evil.example/realms/acme") }, want: errIssParam},
		{name: "iss parameter repeated", edit: func(_ *signin.Attempt, cb *url.URL) { cb.RawQuery += "&iss=x" }, want: errIssParam},
		{name: "iss parameter missing while advertised", idp: func(p *fakeIdP) { p.sendIss = false }, want: errIssParamGone},
		{name: "iss parameter mismatch while not advertised", idp: func(p *fakeIdP) { p.advertiseIss = false },
			edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "iss", "https://evil.example/") }, want: errIssParam},
		{name: "error parameter", edit: func(_ *signin.Attempt, cb *url.URL) {
			cb.RawQuery = url.Values{"error": {"access_denied"}, "error_description": {"<script>x</script>"}, "state": {cb.Query().Get("state")}}.Encode()
		}, want: errProvider},
		{name: "error parameter alongside a code", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "error", "server_error") }, want: errProvider},
		{name: "state mismatch", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "state", rand.Text()) }, want: errState},
		{name: "no code", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "code", "") }, want: errNoCode},
		{name: "forged code", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "code", rand.Text()) }, want: errExchange},
		{name: "PKCE verifier of another attempt", edit: func(a *signin.Attempt, _ *url.URL) { a.PKCEVerifier = oauth2.GenerateVerifier() }, want: errExchange},
		{name: "attempt of another tenant", edit: func(a *signin.Attempt, _ *url.URL) { a.TenantID = "t-globex-0002" }, want: errAttempt},
		{name: "attempt of another method", edit: func(a *signin.Attempt, _ *url.URL) { a.Method = 0 }, want: errAttempt},
		{name: "redirect URI of another host", edit: func(a *signin.Attempt, _ *url.URL) { a.Endpoint.Origin = "https://globex.app.example" }, want: errExchange},
		{
			name: "email_verified false",
			idp:  func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["email_verified"] = false } },
			check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified {
					t.Error("EmailVerified with email_verified false")
				}
			},
		},
		{
			name: "email_verified as the string true",
			idp:  func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["email_verified"] = "true" } },
			check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified {
					t.Error(`EmailVerified with email_verified "true" (a string)`)
				}
			},
		},
		{
			name: "email_verified absent",
			idp:  func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { delete(c, "email_verified") } },
			check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified || id.Email != "ada@acme.test" {
					t.Errorf("identity = %+v, want the email unverified", id)
				}
			},
		},
		{
			name: "email from userinfo",
			idp:  func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { delete(c, "email"); delete(c, "email_verified") } },
			check: func(t *testing.T, id signin.Identity) {
				if id.Email != "ada@userinfo.acme.test" || !id.EmailVerified {
					t.Errorf("identity = %+v, want the userinfo email, verified", id)
				}
			},
		},
		{
			name: "userinfo for another subject",
			idp: func(p *fakeIdP) {
				p.claims = func(c jwt.MapClaims) { delete(c, "email") }
				p.userinfoClaims = func(c map[string]any) { c["sub"] = "user-2" }
			},
			want: errUserinfoSub,
		},
		{
			name: "unverified email in id token not upgraded by userinfo",
			idp: func(p *fakeIdP) {
				p.claims = func(c jwt.MapClaims) { c["email_verified"] = false }
			},
			check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified || id.Email != "ada@acme.test" {
					t.Errorf("identity = %+v", id)
				}
			},
		},
		{
			name: "groups map to roles, unknown groups grant nothing",
			idp: func(p *fakeIdP) {
				p.claims = func(c jwt.MapClaims) { c["groups"] = []string{"/admins", "engineering", "/unknown", "admins/x"} }
			},
			check: func(t *testing.T, id signin.Identity) {
				if !slices.Equal(id.Roles, []string{"admin", "dev", "member"}) {
					t.Errorf("roles = %v, want [admin dev member]", id.Roles)
				}
			},
		},
		{
			name: "groups claim of the wrong shape gives only default roles",
			idp:  func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { c["groups"] = map[string]any{"admins": true} } },
			check: func(t *testing.T, id signin.Identity) {
				if !slices.Equal(id.Roles, []string{"member"}) {
					t.Errorf("roles = %v, want [member]", id.Roles)
				}
			},
		},
		{
			name: "no groups gives default roles",
			idp:  func(p *fakeIdP) { p.claims = func(c jwt.MapClaims) { delete(c, "groups") } },
			check: func(t *testing.T, id signin.Identity) {
				if !slices.Equal(id.Roles, []string{"member"}) {
					t.Errorf("roles = %v, want [member]", id.Roles)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := newFakeIdP(t)
			if tc.idp != nil {
				tc.idp(p)
			}
			m := e.open(t, tenant(e.oidcMethod(t, p)), 1)
			a := newAttempt(1)
			cb := authorize(t, m, a)
			if tc.edit != nil {
				tc.edit(a, cb)
			}
			id, err := callback(m, a, cb)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Callback = %+v, %v; want %v", id, err, tc.want)
				}
				if id.Subject != "" || id.Email != "" {
					t.Fatalf("failed Callback returned an identity: %+v", id)
				}
				for _, leak := range []string{"<script>", p.secret, cb.Query().Get("code")} {
					if leak != "" && strings.Contains(err.Error(), leak) {
						t.Fatalf("error %q leaks %q", err, leak)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if id.Issuer != p.issuer || id.Subject != "user-1" {
				t.Errorf("identity keyed %q/%q, want %q/user-1", id.Issuer, id.Subject, p.issuer)
			}
			if p.pkceChecked.Load() != 1 {
				t.Error("the provider did not check a PKCE verifier")
			}
			if tc.check != nil {
				tc.check(t, id)
			}
		})
	}
}

func TestAuthURL(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	m := e.open(t, tenant(e.oidcMethod(t, p)), 1)
	a := newAttempt(1)
	a.LoginHint = "ada@acme.test"
	raw, err := m.AuthURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             "tenantgate",
		"redirect_uri":          "https://acme.app.example/_auth/callback",
		"state":                 a.State,
		"nonce":                 a.Nonce,
		"code_challenge_method": "S256",
		"code_challenge":        oauth2.S256ChallengeFromVerifier(a.PKCEVerifier),
		"login_hint":            "ada@acme.test",
		"scope":                 "openid email profile",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("client_secret") || strings.Contains(raw, p.secret) {
		t.Error("the authorization URL carries the client secret")
	}
	if q.Has("code_verifier") || strings.Contains(raw, a.PKCEVerifier) {
		t.Error("the authorization URL carries the PKCE verifier")
	}

	// Path tenancy: the redirect URI keeps the /org/<id> prefix.
	a = newAttempt(1)
	a.Endpoint = signin.Endpoint{Origin: "https://app.example", Prefix: "/org/acme"}
	raw, _ = m.AuthURL(context.Background(), a)
	u, _ = url.Parse(raw)
	if got := u.Query().Get("redirect_uri"); got != "https://app.example/org/acme/_auth/callback" {
		t.Errorf("redirect_uri = %q", got)
	}

	for _, edit := range []func(a *signin.Attempt){
		func(a *signin.Attempt) { a.Nonce = "" },
		func(a *signin.Attempt) { a.State = "" },
		func(a *signin.Attempt) { a.PKCEVerifier = "" },
		func(a *signin.Attempt) { a.TenantID = "other" },
	} {
		a := newAttempt(1)
		edit(a)
		if _, err := m.AuthURL(context.Background(), a); err == nil {
			t.Errorf("AuthURL accepted an incomplete attempt %+v", a)
		}
	}
}

// TestMixUp: two IdPs configured for one tenant (or for two tenants); a
// code obtained at X is delivered to the method configured for Y, with a
// state the attacker got from a Y attempt of their own (RFC 9700 §4.4).
func TestMixUp(t *testing.T) {
	tests := []struct {
		name   string
		xIss   bool // X adds iss to its response
		yAdv   bool // Y advertises the iss parameter
		want   error
		sameIx bool // the attempt was started for X's index
	}{
		{name: "X sends iss", xIss: true, want: errIssParam},
		{name: "Y requires iss", yAdv: true, want: errIssParamGone},
		{name: "no iss anywhere: Y's token endpoint refuses X's code", want: errExchange},
		{name: "attempt started for X", xIss: true, sameIx: true, want: errAttempt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			x, y := newFakeIdP(t), newFakeIdP(t)
			x.sendIss, x.advertiseIss = tc.xIss, tc.xIss
			y.sendIss, y.advertiseIss = tc.yAdv, tc.yAdv
			y.clientID, y.secret = x.clientID, x.secret // the worst case: same client credentials
			tn := tenant(e.oidcMethod(t, x), e.oidcMethod(t, y))
			mx, my := e.open(t, tn, 1), e.open(t, tn, 2)

			ax := newAttempt(1)
			cbx := authorize(t, mx, ax) // the code for X
			ay := newAttempt(2)
			if tc.sameIx {
				ay = ax
			}
			ay.PKCEVerifier = ax.PKCEVerifier // even with the verifier known
			ay.Nonce = ax.Nonce
			setQuery(cbx, "state", ay.State)
			id, err := callback(my, ay, cbx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Callback = %+v, %v; want %v", id, err, tc.want)
			}
		})
	}
}

func TestLogoutURL(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	m := e.open(t, tenant(e.oidcMethod(t, p)), 1)
	got, err := m.LogoutURL(context.Background(), "the.id.token", "https://acme.app.example/_auth/login")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	q := u.Query()
	if u.Path != "/realms/acme/logout" || q.Get("realm") != "acme" || q.Get("id_token_hint") != "the.id.token" ||
		q.Get("post_logout_redirect_uri") != "https://acme.app.example/_auth/login" || q.Get("client_id") != "tenantgate" {
		t.Errorf("LogoutURL = %s", got)
	}

	p2 := newFakeIdP(t)
	p2.endSession = false
	m2 := e.open(t, tenant(e.oidcMethod(t, p2)), 1)
	if got, err := m2.LogoutURL(context.Background(), "x", "https://acme.app.example/"); got != "" || err != nil {
		t.Errorf("LogoutURL without end_session_endpoint = %q, %v; want empty", got, err)
	}
}

func TestDiscoveryCache(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	tn := tenant(e.oidcMethod(t, p), e.oidcMethod(t, p))
	m1, m2 := e.open(t, tn, 1), e.open(t, tn, 2)
	if n := p.discoveryHits.Load(); n != 0 {
		t.Fatalf("opening fetched discovery %d times, want 0", n)
	}
	for range 3 {
		if _, err := m1.AuthURL(context.Background(), newAttempt(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := m2.AuthURL(context.Background(), newAttempt(2)); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.discoveryHits.Load(); n != 1 {
		t.Fatalf("discovery fetched %d times, want 1 (cached per issuer)", n)
	}
	e.clock.Add(DefaultRefreshInterval + time.Second)
	if _, err := m1.AuthURL(context.Background(), newAttempt(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.discoveryHits.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("stale discovery was not refreshed in the background")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDiscoveryFailures(t *testing.T) {
	tests := []struct {
		name string
		idp  func(p *fakeIdP)
		want error
	}{
		{name: "issuer mismatch", idp: func(p *fakeIdP) { p.discoveryIss = "https://evil.example/realms/acme" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := newFakeIdP(t)
			tc.idp(p)
			m := e.open(t, tenant(e.oidcMethod(t, p)), 1)
			if u, err := m.AuthURL(context.Background(), newAttempt(1)); err == nil {
				t.Fatalf("AuthURL = %s, want an error", u)
			}
			// The failure is remembered briefly: no request storm.
			m.AuthURL(context.Background(), newAttempt(1))
			if n := p.discoveryHits.Load(); n != 1 {
				t.Errorf("discovery fetched %d times after two failures, want 1", n)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	good := e.oidcMethod(t, p)
	tests := []struct {
		name string
		edit func(c *Config, m *tenants.Method, tn *tenants.Tenant)
		raw  string // the entry's Config, when set
		ok   bool
	}{
		{name: "good", ok: true},
		{name: "public client without secret", edit: func(_ *Config, m *tenants.Method, _ *tenants.Tenant) { m.Sealed = nil }, ok: true},
		{name: "wrong type", edit: func(_ *Config, m *tenants.Method, _ *tenants.Tenant) { m.Type = tenants.MethodSAML }},
		{name: "no client id", edit: func(c *Config, _ *tenants.Method, _ *tenants.Tenant) { c.ClientID = "" }},
		{name: "plaintext secret", edit: func(c *Config, m *tenants.Method, _ *tenants.Tenant) { m.Sealed = nil; c.ClientSecret = "x" }},
		{name: "secret sealed for another tenant", edit: func(_ *Config, _ *tenants.Method, tn *tenants.Tenant) { tn.InternalID = "t-globex-0002" }},
		{name: "metadata issuer", edit: func(c *Config, _ *tenants.Method, _ *tenants.Tenant) { c.Issuer = "http://169.254.169.254/latest" }},
		{name: "metadata issuer over https", edit: func(c *Config, _ *tenants.Method, _ *tenants.Tenant) { c.Issuer = "https://169.254.169.254/" }},
		{name: "http issuer not on loopback", edit: func(c *Config, _ *tenants.Method, _ *tenants.Tenant) { c.Issuer = "http://idp.example/realms/acme" }},
		{name: "issuer with query", edit: func(c *Config, _ *tenants.Method, _ *tenants.Tenant) { c.Issuer = "https://idp.example/?a=b" }},
		{name: "issuer not a URL", edit: func(c *Config, _ *tenants.Method, _ *tenants.Tenant) { c.Issuer = "idp.example" }},
		{name: "a field oidc does not have", raw: `{"issuer":"https://idp.example/","clientID":"c","provider":"github"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good.Clone()
			c := config(t, m)
			tn := tenant()
			if tc.edit != nil {
				tc.edit(&c, &m, tn)
			}
			if err := m.EncodeConfig(c); err != nil {
				t.Fatal(err)
			}
			if tc.raw != "" {
				m.Config = []byte(tc.raw)
			}
			tn.Methods = append(tn.Methods, m)
			got, err := e.opener(context.Background(), tn, 1)
			if tc.ok != (err == nil) {
				t.Fatalf("open = %v, %v; ok want %v", got, err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), p.secret) {
				t.Fatalf("error leaks the client secret: %v", err)
			}
		})
	}
	if _, err := e.opener(context.Background(), tenant(good), 5); err == nil {
		t.Error("open accepted an index out of range")
	}
}

func TestLabel(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	m := e.oidcMethod(t, p)
	if got := e.open(t, tenant(m), 1).Label(); got != "Sign in with 127.0.0.1" {
		t.Errorf("default label = %q", got)
	}
	m.Label = "Acme SSO"
	if got := e.open(t, tenant(m), 1).Label(); got != "Acme SSO" {
		t.Errorf("label = %q", got)
	}
}

func TestRefusedIdPAddress(t *testing.T) {
	// Without --allow-loopback-http-idp a loopback issuer is refused before
	// any request.
	key := make([]byte, seal.MasterKeySize)
	s, _ := seal.NewSealer(key)
	p := newFakeIdP(t)
	open := NewOpener(Options{Sealer: s})
	_, err := open(context.Background(), tenant(entry(t, Config{Issuer: p.issuer, ClientID: "c"}, nil, tenants.RoleMapping{})), 1)
	if !errors.Is(err, idpclient.ErrForbiddenScheme) {
		t.Fatalf("open = %v, want ErrForbiddenScheme", err)
	}
	// A discovery document pointing the browser at javascript: is refused.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": "http://" + r.Host, "authorization_endpoint": "javascript:alert(1)",
			"token_endpoint": "http://" + r.Host + "/token", "jwks_uri": "http://" + r.Host + "/jwks"})
	}))
	defer srv.Close()
	e := newEnv(t)
	m := e.open(t, tenant(entry(t, Config{Issuer: srv.URL, ClientID: "c"}, nil, tenants.RoleMapping{})), 1)
	if _, err := m.AuthURL(context.Background(), newAttempt(1)); !errors.Is(err, idpclient.ErrForbiddenScheme) {
		t.Fatalf("AuthURL = %v, want ErrForbiddenScheme", err)
	}
}
