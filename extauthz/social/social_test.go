package social

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

const tenantInternalID = "t-acme-0001"

// fakeOAuth is an in-process OAuth 2.0 provider: an authorization endpoint
// that approves at once, a token endpoint that checks client, redirect URI
// and PKCE verifier, and userinfo / email-list endpoints serving whatever
// JSON the test sets.
type fakeOAuth struct {
	srv              *httptest.Server
	clientID, secret string
	user             string // raw JSON of /user
	emails           string // raw JSON of /user/emails; "" means 404
	userStatus       int
	iss              string // added to the authorization response when set

	mu          sync.Mutex
	codes       map[string][2]string // code -> redirect URI, challenge
	tokens      map[string]bool
	pkceChecked atomic.Int32
}

func newFakeOAuth(t *testing.T) *fakeOAuth {
	t.Helper()
	p := &fakeOAuth{
		clientID:   "tenantgate",
		secret:     "s3cret-" + rand.Text(),
		user:       `{"id": 583231, "login": "octocat", "name": "The Octocat", "email": "octo@example.com"}`,
		userStatus: http.StatusOK,
		codes:      make(map[string][2]string),
		tokens:     make(map[string]bool),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("client_id") != p.clientID || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		code := rand.Text()
		p.mu.Lock()
		p.codes[code] = [2]string{q.Get("redirect_uri"), q.Get("code_challenge")}
		p.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		bq := back.Query()
		bq.Set("code", code)
		bq.Set("state", q.Get("state"))
		if p.iss != "" {
			bq.Set("iss", p.iss)
		}
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		} else {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		}
		p.mu.Lock()
		c, found := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if id != p.clientID || secret != p.secret || !found || c[0] != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c[1] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"<script>leak</script>"}`)
			return
		}
		p.pkceChecked.Add(1)
		tok := rand.Text()
		p.mu.Lock()
		p.tokens[tok] = true
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"`+tok+`","token_type":"bearer","scope":"read:user"}`)
	})
	authed := func(r *http.Request) bool {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p.mu.Lock()
		defer p.mu.Unlock()
		return ok && p.tokens[tok]
	}
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(p.userStatus)
		io.WriteString(w, p.user)
	})
	mux.HandleFunc("GET /user/emails", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) || p.emails == "" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, p.emails)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// preset is a GitHub-shaped preset pointing at the fake provider.
func (p *fakeOAuth) preset() Provider {
	gh := Presets()[GitHub]
	gh.AuthURL = p.srv.URL + "/authorize"
	gh.TokenURL = p.srv.URL + "/token"
	gh.UserinfoURL = p.srv.URL + "/user"
	gh.EmailsURL = p.srv.URL + "/user/emails"
	return gh
}

type env struct {
	sealer *seal.Sealer
	opener signin.Opener
	logs   *bytes.Buffer // what the opened methods logged
}

func newEnv(t *testing.T, p *fakeOAuth) *env {
	t.Helper()
	key := make([]byte, seal.MasterKeySize)
	rand.Read(key)
	s, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	presets := Presets()
	presets[GitHub] = p.preset()
	logs := new(bytes.Buffer)
	return &env{sealer: s, logs: logs, opener: NewOpener(Options{
		Sealer:            s,
		HTTPClient:        idpclient.New(idpclient.Options{AllowLoopbackHTTP: true}),
		AllowLoopbackHTTP: true,
		Presets:           presets,
		Log:               slog.New(slog.NewTextHandler(logs, nil)),
	})}
}

// entry is a social method entry as a test edits it: its Config and the
// rest of its tenants.Method.
type entry struct {
	Config
	Type   string
	Sealed []byte
	Roles  tenants.RoleMapping
}

// method is e as a tenants.Method.
func (e entry) method() tenants.Method {
	m := tenants.Method{Type: e.Type, Sealed: e.Sealed, Roles: e.Roles}
	if err := m.EncodeConfig(e.Config); err != nil {
		panic(err)
	}
	return m
}

// generic is a generic method entry for p.
func (e *env) generic(t *testing.T, p *fakeOAuth) entry {
	t.Helper()
	sealed, err := seal.SealSecret(e.sealer, []byte(p.secret), tenantInternalID)
	if err != nil {
		t.Fatal(err)
	}
	return entry{
		Type:   Type,
		Sealed: sealed,
		Roles:  tenants.RoleMapping{DefaultRoles: []string{"member", "viewer", "member"}},
		Config: Config{
			Provider:    Generic,
			ClientID:    p.clientID,
			AuthURL:     p.srv.URL + "/authorize",
			TokenURL:    p.srv.URL + "/token",
			UserinfoURL: p.srv.URL + "/user",
			IDField:     "id",
			EmailField:  "email",
		},
	}
}

// asGitHub turns a generic entry into one for the GitHub-shaped preset.
func asGitHub(m *entry) {
	m.Provider = GitHub
	m.AuthURL, m.TokenURL, m.UserinfoURL, m.IDField, m.EmailField = "", "", "", "", ""
}

// signIn opens me as method 1 of the tenant and runs one attempt through
// its provider: authorize, then Callback, after edit when set.
func signIn(t *testing.T, e *env, me entry, edit func(a *signin.Attempt, cb *url.URL)) (signin.Identity, error) {
	t.Helper()
	mm, err := e.opener(context.Background(), tenant(me), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := mm.(*Method)
	a := newAttempt(1)
	cb := authorize(t, m, a)
	if edit != nil {
		edit(a, cb)
	}
	return m.Callback(context.Background(), a, httptest.NewRequest(http.MethodGet, cb.String(), nil))
}

func tenant(methods ...entry) *tenants.Tenant {
	t := &tenants.Tenant{ID: "acme", InternalID: tenantInternalID, Methods: []tenants.Method{{Type: tenants.MethodPassword}}}
	for _, m := range methods {
		t.Methods = append(t.Methods, m.method())
	}
	return t
}

func newAttempt(index int) *signin.Attempt {
	return &signin.Attempt{
		ID: rand.Text(), TenantID: tenantInternalID, Method: index,
		Endpoint: signin.Endpoint{Origin: "https://acme.app.example"},
		State:    rand.Text(), Nonce: rand.Text(), PKCEVerifier: oauth2.GenerateVerifier(),
		ReturnTo: "/", Created: time.Now(),
	}
}

func authorize(t *testing.T, m signin.RedirectMethod, a *signin.Attempt) *url.URL {
	t.Helper()
	u, err := m.AuthURL(context.Background(), a)
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	return cb
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
		name    string
		github  bool // use the GitHub-shaped preset instead of generic
		idp     func(p *fakeOAuth)
		method  func(m *entry)
		edit    func(a *signin.Attempt, cb *url.URL)
		want    error
		subject string
		check   func(t *testing.T, id signin.Identity)
	}{
		{name: "numeric id", subject: "583231", check: func(t *testing.T, id signin.Identity) {
			if id.Email != "octo@example.com" || id.EmailVerified || id.Name != "The Octocat" {
				t.Errorf("identity = %+v, want the email unverified (no emailVerifiedField)", id)
			}
			if !slices.Equal(id.Roles, []string{"member", "viewer"}) {
				t.Errorf("roles = %v", id.Roles)
			}
		}},
		{name: "numeric id beyond float64 precision kept digit for digit",
			idp: func(p *fakeOAuth) { p.user = `{"id": 12345678901234567890123}` }, subject: "12345678901234567890123"},
		{name: "string id", idp: func(p *fakeOAuth) { p.user = `{"id": "a1b2-c3", "email": "x@example.com"}` }, subject: "a1b2-c3"},
		{name: "missing id", idp: func(p *fakeOAuth) { p.user = `{"login": "octocat", "email": "octo@example.com"}` }, want: errNoID},
		{name: "null id", idp: func(p *fakeOAuth) { p.user = `{"id": null}` }, want: errNoID},
		{name: "empty id", idp: func(p *fakeOAuth) { p.user = `{"id": ""}` }, want: errNoID},
		{name: "boolean id", idp: func(p *fakeOAuth) { p.user = `{"id": true}` }, want: errNoID},
		{name: "object id", idp: func(p *fakeOAuth) { p.user = `{"id": {"n": 1}}` }, want: errNoID},
		{name: "fractional id", idp: func(p *fakeOAuth) { p.user = `{"id": 1000.0}` }, want: errNoID},
		{name: "exponent id", idp: func(p *fakeOAuth) { p.user = `{"id": 1e3}` }, want: errNoID},
		{name: "id with control characters", idp: func(p *fakeOAuth) { p.user = `{"id": "a\nb"}` }, want: errNoID},
		{name: "userinfo not an object", idp: func(p *fakeOAuth) { p.user = `["id", 1]` }, want: errUserinfo},
		{name: "userinfo error status", idp: func(p *fakeOAuth) { p.userStatus = http.StatusInternalServerError }, want: errUserinfo},
		{name: "verified email", method: func(m *entry) { m.EmailVerifiedField = "email_verified" },
			idp:     func(p *fakeOAuth) { p.user = `{"id": 7, "email": "v@example.com", "email_verified": true}` },
			subject: "7", check: func(t *testing.T, id signin.Identity) {
				if !id.EmailVerified || id.Email != "v@example.com" {
					t.Errorf("identity = %+v, want verified", id)
				}
			}},
		{name: "email_verified as a string is unverified", method: func(m *entry) { m.EmailVerifiedField = "email_verified" },
			idp:     func(p *fakeOAuth) { p.user = `{"id": 7, "email": "v@example.com", "email_verified": "true"}` },
			subject: "7", check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified {
					t.Errorf("identity = %+v, want unverified", id)
				}
			}},
		{name: "github: verified primary from the email list", github: true,
			idp: func(p *fakeOAuth) {
				p.emails = `[{"email":"old@example.com","primary":false,"verified":true},{"email":"octo@example.com","primary":true,"verified":true}]`
			},
			subject: "583231", check: func(t *testing.T, id signin.Identity) {
				if id.Issuer != GitHub || id.Email != "octo@example.com" || !id.EmailVerified {
					t.Errorf("identity = %+v, want github, verified primary", id)
				}
			}},
		{name: "github: unverified primary stays unverified", github: true,
			idp: func(p *fakeOAuth) {
				p.emails = `[{"email":"ceo@victim.example","primary":true,"verified":false}]`
				p.user = `{"id": 583231, "email": "ceo@victim.example"}`
			},
			subject: "583231", check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified {
					t.Errorf("identity = %+v, want unverified", id)
				}
			}},
		{name: "github: no email list, null email", github: true,
			idp:     func(p *fakeOAuth) { p.user = `{"id": 583231, "login": "octocat", "email": null}` },
			subject: "583231", check: func(t *testing.T, id signin.Identity) {
				if id.EmailVerified || id.Email != "" || id.Name != "octocat" {
					t.Errorf("identity = %+v", id)
				}
			}},
		{name: "error parameter", edit: func(_ *signin.Attempt, cb *url.URL) {
			cb.RawQuery = url.Values{"error": {"access_denied"}, "error_description": {"<script>x</script>"}, "state": {cb.Query().Get("state")}}.Encode()
		}, want: errProvider},
		{name: "state mismatch", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "state", rand.Text()) }, want: errState},
		{name: "no code", edit: func(_ *signin.Attempt, cb *url.URL) { setQuery(cb, "code", "") }, want: errNoCode},
		{name: "PKCE verifier of another attempt", edit: func(a *signin.Attempt, _ *url.URL) { a.PKCEVerifier = oauth2.GenerateVerifier() }, want: errExchange},
		{name: "attempt of another method", edit: func(a *signin.Attempt, _ *url.URL) { a.Method = 0 }, want: errAttempt},
		{name: "attempt of another tenant", edit: func(a *signin.Attempt, _ *url.URL) { a.TenantID = "t-globex-0002" }, want: errAttempt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeOAuth(t)
			if tc.idp != nil {
				tc.idp(p)
			}
			e := newEnv(t, p)
			me := e.generic(t, p)
			if tc.github {
				asGitHub(&me)
			}
			if tc.method != nil {
				tc.method(&me)
			}
			id, err := signIn(t, e, me, tc.edit)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Callback = %+v, %v; want %v", id, err, tc.want)
				}
				if id.Subject != "" {
					t.Fatalf("failed Callback returned an identity %+v", id)
				}
				if strings.Contains(err.Error(), "<script>") || strings.Contains(err.Error(), p.secret) {
					t.Fatalf("error leaks provider text or secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if id.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", id.Subject, tc.subject)
			}
			if !tc.github && id.Issuer != p.srv.URL {
				t.Errorf("Issuer = %q, want the authorization URL's origin %q", id.Issuer, p.srv.URL)
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

// TestCallbackGroups signs in through a generic provider whose userinfo
// lists groups and checks the roles the identity carries: groups map through
// groupRoles on top of defaultRoles; a groups member of the wrong shape or
// of excessive length gives no groups (the sign-in still succeeds with the
// default roles, and the provider's value reaches no log); presets map no
// groups.
func TestCallbackGroups(t *testing.T) {
	groupList := func(n int, last string) string {
		return `{"id": 7, "groups": [` + strings.Repeat(`"g",`, n-1) + `"` + last + `"]}`
	}
	defaults := []string{"member", "viewer"}
	tests := []struct {
		name     string
		github   bool
		method   func(m *entry)
		user     string
		want     []string
		wantWarn bool
	}{
		{name: "array of groups", user: `{"id": 7, "groups": ["admins", "sales"]}`, want: []string{"admin", "member", "viewer"}},
		{name: "keycloak group paths", user: `{"id": 7, "groups": ["/admins", "/eng"]}`, want: []string{"admin", "dev", "member", "viewer"}},
		{name: "single string", user: `{"id": 7, "groups": "eng"}`, want: []string{"dev", "member", "viewer"}},
		{name: "groups compare exactly", user: `{"id": 7, "groups": ["Admins", "admins ", "eng/admins"]}`, want: defaults},
		{name: "groupsClaim names the member", method: func(m *entry) { m.GroupsClaim = "teams" },
			user: `{"id": 7, "teams": ["eng"], "groups": ["admins"]}`, want: []string{"dev", "member", "viewer"}},
		{name: "no groups member", user: `{"id": 7}`, want: defaults},
		{name: "null groups", user: `{"id": 7, "groups": null}`, want: defaults},
		{name: "no defaultRoles, no groups", method: func(m *entry) { m.Roles.DefaultRoles = nil }, user: `{"id": 7}`},
		{name: "no defaultRoles, a group", method: func(m *entry) { m.Roles.DefaultRoles = nil },
			user: `{"id": 7, "groups": ["admins"]}`, want: []string{"admin"}},
		{name: "object groups", user: `{"id": 7, "groups": {"admins": true}}`, want: defaults, wantWarn: true},
		{name: "number groups", user: `{"id": 7, "groups": 5}`, want: defaults, wantWarn: true},
		{name: "mixed array", user: `{"id": 7, "groups": ["admins", {"admins": 1}]}`, want: defaults, wantWarn: true},
		{name: "array of numbers", user: `{"id": 7, "groups": [1, 2]}`, want: defaults, wantWarn: true},
		{name: "exactly the limit", user: groupList(tenants.MaxSignInGroups, "admins"), want: []string{"admin", "member", "viewer"}},
		{name: "one over the limit", user: groupList(tenants.MaxSignInGroups+1, "admins"), want: defaults, wantWarn: true},
		{name: "huge list", user: groupList(200_000, "admins"), want: defaults, wantWarn: true},
		{name: "preset maps no groups", github: true, method: func(m *entry) { m.GroupsClaim = "groups" },
			user: `{"id": 583231, "groups": ["admins"]}`, want: defaults},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeOAuth(t)
			p.user = tc.user
			e := newEnv(t, p)
			me := e.generic(t, p)
			me.Roles.GroupRoles = map[string][]string{"admins": {"admin"}, "eng": {"dev", "member"}}
			if tc.github {
				asGitHub(&me)
			}
			if tc.method != nil {
				tc.method(&me)
			}
			id, err := signIn(t, e, me, nil)
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if !slices.Equal(id.Roles, tc.want) {
				t.Errorf("roles = %q, want %q", id.Roles, tc.want)
			}
			logs := e.logs.String()
			if warned := strings.Contains(logs, "social groups member ignored"); warned != tc.wantWarn {
				t.Errorf("warning logged = %v, want %v; log: %s", warned, tc.wantWarn, logs)
			}
			if strings.Contains(logs, "admins") || len(logs) > 1000 {
				t.Errorf("log carries the provider's groups: %.300s", logs)
			}
		})
	}
}

func TestIssParameter(t *testing.T) {
	p := newFakeOAuth(t)
	e := newEnv(t, p)
	gh := p.preset()
	gh.ResponseIssuer = "https://accounts.example"
	e.opener = NewOpener(Options{Sealer: e.sealer, HTTPClient: idpclient.New(idpclient.Options{AllowLoopbackHTTP: true}),
		AllowLoopbackHTTP: true, Presets: map[string]Provider{"x": gh}})
	me := e.generic(t, p)
	me.Provider = "x"
	mm, err := e.opener(context.Background(), tenant(me), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iss  string
		want error
	}{{"https://accounts.example", nil}, {"https://evil.example", errIssParam}} {
		p.iss = tc.iss
		a := newAttempt(1)
		cb := authorize(t, mm.(*Method), a)
		_, err := mm.(*Method).Callback(context.Background(), a, httptest.NewRequest(http.MethodGet, cb.String(), nil))
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("iss %s: Callback err = %v, want %v", tc.iss, err, tc.want)
		}
	}
}

func TestAuthURL(t *testing.T) {
	p := newFakeOAuth(t)
	e := newEnv(t, p)
	mm, err := e.opener(context.Background(), tenant(e.generic(t, p)), 1)
	if err != nil {
		t.Fatal(err)
	}
	a := newAttempt(1)
	raw, err := mm.(signin.RedirectMethod).AuthURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	if q.Get("state") != a.State || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(a.PKCEVerifier) ||
		q.Get("redirect_uri") != "https://acme.app.example/_auth/callback" || strings.Contains(raw, p.secret) {
		t.Errorf("AuthURL = %s", raw)
	}
	if got := mm.Label(); got != "Sign in with 127.0.0.1" {
		t.Errorf("Label = %q", got)
	}
}

func TestOpen(t *testing.T) {
	p := newFakeOAuth(t)
	e := newEnv(t, p)
	tests := []struct {
		name string
		edit func(m *entry, tn *tenants.Tenant)
		ok   bool
	}{
		{name: "generic", ok: true},
		{name: "empty provider is generic", edit: func(m *entry, _ *tenants.Tenant) { m.Provider = "" }, ok: true},
		{name: "preset", edit: func(m *entry, _ *tenants.Tenant) { m.Provider = Google }, ok: true},
		{name: "unknown provider", edit: func(m *entry, _ *tenants.Tenant) { m.Provider = "myspace" }},
		{name: "wrong type", edit: func(m *entry, _ *tenants.Tenant) { m.Type = "oidc" }},
		{name: "no client id", edit: func(m *entry, _ *tenants.Tenant) { m.ClientID = "" }},
		{name: "no token URL", edit: func(m *entry, _ *tenants.Tenant) { m.TokenURL = "" }},
		{name: "http userinfo off loopback", edit: func(m *entry, _ *tenants.Tenant) { m.UserinfoURL = "http://idp.example/user" }},
		{name: "metadata userinfo", edit: func(m *entry, _ *tenants.Tenant) { m.UserinfoURL = "http://169.254.169.254/latest/meta-data/" }},
		{name: "javascript auth URL", edit: func(m *entry, _ *tenants.Tenant) { m.AuthURL = "javascript:alert(1)" }},
		{name: "plaintext secret", edit: func(m *entry, _ *tenants.Tenant) { m.Sealed = nil; m.ClientSecret = "x" }},
		{name: "secret sealed for another tenant", edit: func(_ *entry, tn *tenants.Tenant) { tn.InternalID = "t-globex-0002" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.generic(t, p)
			tn := tenant()
			if tc.edit != nil {
				tc.edit(&m, tn)
			}
			tn.Methods = append(tn.Methods, m.method())
			got, err := e.opener(context.Background(), tn, 1)
			if tc.ok != (err == nil) {
				t.Fatalf("open = %v, %v; ok want %v", got, err, tc.ok)
			}
		})
	}
}

// TestPresets pins the presets' security-relevant data.
func TestPresets(t *testing.T) {
	policy := idpclient.Options{}
	for name, p := range Presets() {
		for _, u := range []string{p.AuthURL, p.TokenURL, p.UserinfoURL} {
			if err := policy.CheckURL(u); err != nil {
				t.Errorf("%s: %s: %v", name, u, err)
			}
		}
		if p.Key != name || p.IDField == "" {
			t.Errorf("%s: key %q, id field %q", name, p.Key, p.IDField)
		}
	}
	ps := Presets()
	if ps[GitHub].IDField != "id" || ps[GitHub].EmailVerifiedField != "" {
		t.Error("github must key on the numeric id and never trust /user's email")
	}
	if ps[Microsoft].EmailVerifiedField != "" {
		t.Error("microsoft emails must stay unverified (nOAuth)")
	}
	if ps[Google].EmailVerifiedField != "email_verified" {
		t.Error("google must use email_verified")
	}
	ps[GitHub] = Provider{}
	if Presets()[GitHub].AuthURL == "" {
		t.Error("Presets shares its map between calls")
	}
}
