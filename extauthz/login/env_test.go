package login

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/social"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// Passwords of the fixture users. Each is distinctive so that a test can
// search logs and bodies for it.
const (
	alicePassword = "alice-Pa55word-x7Q"
	bobPassword   = "bob-Pa55word-k9Z"
)

// fastHash are argon2id parameters cheap enough for tests where the cost is
// not the point.
var fastHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// clock is an adjustable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a Handler over a real bbolt store in a temporary directory, with
// four tenants:
//
//   - acme (custom domain login.acme.test, email domain acme.test) and
//     globex: password sign-in;
//   - frozen: suspended;
//   - sso: SAML only, which this build does not serve.
//
// alice@acme.test is a member of acme (admin, member) and globex (member);
// bob@globex.test only of globex.
type env struct {
	t        *testing.T
	h        *Handler
	store    *boltstore.Store
	snaps    *tenants.Current
	verifier *session.Verifier
	clock    *clock
	logs     *syncBuffer
}

func newEnv(t *testing.T, configure ...func(*Handler)) *env {
	t.Helper()
	ctx := context.Background()
	clk := &clock{now: time.Now().Truncate(time.Second)}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "tenantgate.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := seal.NewSealer(bytes.Repeat([]byte{7}, seal.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]tenants.Role{
		"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
		"member": {Permissions: []string{"docs:read"}},
	}
	pw := []tenants.Method{{Type: tenants.MethodPassword}}
	ts := []tenants.Tenant{
		{ID: "acme", Name: "Acme Corp", Domains: []string{"login.acme.test"}, EmailDomains: []string{"acme.test"}, Methods: pw, Roles: roles},
		{ID: "globex", Name: "Globex", EmailDomains: []string{"globex.test"}, Methods: pw, Roles: roles},
		{ID: "frozen", Name: "Frozen Ltd", Status: tenants.StatusSuspended, Methods: pw, Roles: roles},
		{ID: "sso", Name: "SSO Only", Methods: []tenants.Method{
			method(t, saml.Type, "", saml.Config{IDPMetadataURL: "https://idp.example/saml/metadata"}, tenants.RoleMapping{})}, Roles: roles},
	}
	if err := tenants.Validate(ts, tenants.ValidateOptions{Methods: testMethodTypes()}); err != nil {
		t.Fatal(err)
	}
	_, err = st.ApplyTenants(ctx, ts, tenants.ApplyOptions{
		NewKey:     func(id string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, id, clk.Now()) },
		SealMethod: signin.SealMethods(sealer, testMethodTypes()),
		NewSAMLKey: func(id string) (tenants.SAMLKey, error) {
			return tenants.SAMLKey{Certificate: []byte("test-cert-" + id), SealedPrivate: []byte("test-key"), Created: clk.Now()}, nil
		},
		Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	hasher := &password.Hasher{Params: fastHash}
	for _, m := range []struct {
		tenant, email, pw string
		roles             []string
	}{
		{"acme", "alice@acme.test", alicePassword, []string{"admin", "member"}},
		{"globex", "alice@acme.test", "", []string{"member"}},
		{"frozen", "alice@acme.test", "", []string{"member"}},
		{"globex", "bob@globex.test", bobPassword, []string{"member"}},
	} {
		var hash string
		if m.pw != "" {
			if hash, err = hasher.Hash(m.pw); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.AddMember(ctx, m.tenant, tenants.NewMember{Email: m.email, Roles: m.roles, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	snaps := &tenants.Current{}
	if err := snaps.Refresh(ctx, st); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	verifier := &session.Verifier{Now: clk.Now}
	h := &Handler{
		Snapshots: snaps,
		Resolver:  &tenants.Resolver{BaseDomains: []string{"app.test"}, PathPrefix: "/org"},
		Store:     st,
		Minter:    &session.Minter{Sealer: sealer, TTL: time.Hour, Now: clk.Now},
		Verifier:  verifier,
		Passwords: hasher,
		CSRFKey:   bytes.Repeat([]byte{9}, 32),
		Now:       clk.Now,
		Sleep:     clk.Advance,
		Log:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range configure {
		f(h)
	}
	return &env{t: t, h: h, store: st, snaps: snaps, verifier: verifier, clock: clk, logs: logs}
}

// refresh republishes the snapshot, as Current.Follow does in serve.
func (e *env) refresh() {
	e.t.Helper()
	if err := e.snaps.Refresh(context.Background(), e.store); err != nil {
		e.t.Fatal(err)
	}
}

// do serves one request. host is the Host header; target the request target.
func (e *env) do(method, host, target string, form url.Values, hdr http.Header, cookies ...*http.Cookie) *http.Response {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	r.Host = host
	r.RemoteAddr = "192.0.2.10:40000"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range hdr {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w.Result()
}

// form is a sign-in page already fetched: its csrf field and the pre-auth
// cookie it came with.
type form struct {
	csrf    string
	preauth *http.Cookie
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// getForm fetches a form page (login or logout) and returns its CSRF state.
func (e *env) getForm(host, target string, cookies ...*http.Cookie) form {
	e.t.Helper()
	resp := e.do("GET", host, target, nil, nil, cookies...)
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s%s: %d", host, target, resp.StatusCode)
	}
	m := csrfField.FindStringSubmatch(readBody(e.t, resp))
	if m == nil || m[1] == "" {
		e.t.Fatalf("GET %s%s: no csrf field", host, target)
	}
	f := form{csrf: m[1]}
	f.preauth = cookieNamed(resp, "__Host-tenantgate-csrf")
	if f.preauth == nil {
		f.preauth = cookieNamed(resp, "tenantgate-csrf")
	}
	for _, c := range cookies {
		if f.preauth == nil && strings.HasSuffix(c.Name, "tenantgate-csrf") {
			f.preauth = c
		}
	}
	if f.preauth == nil {
		e.t.Fatalf("GET %s%s: no pre-auth cookie", host, target)
	}
	return f
}

// signIn posts credentials through a freshly fetched form on a
// same-origin browser request.
func (e *env) signIn(host, prefix, email, pw, rd string) *http.Response {
	e.t.Helper()
	f := e.getForm(host, prefix+"/_auth/login")
	return e.do("POST", host, prefix+"/_auth/login",
		url.Values{"email": {email}, "password": {pw}, "rd": {rd}, "csrf": {f.csrf}},
		sameOrigin(), f.preauth)
}

func sameOrigin() http.Header { return http.Header{"Sec-Fetch-Site": {"same-origin"}} }

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setCookieLine returns the raw Set-Cookie header for a cookie name.
func setCookieLine(resp *http.Response, name string) string {
	for _, l := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(l, name+"=") {
			return l
		}
	}
	return ""
}

// verifyOwnTenant verifies a session token for the tenant it names (its
// unverified tid claim picks the tenant to pass to VerifyFor), for tests
// that check which tenant a cookie they were given belongs to.
func verifyOwnTenant(v *session.Verifier, snap *tenants.Snapshot, token string) (*session.Claims, error) {
	t := &tenants.Tenant{}
	if parts := strings.Split(token, "."); len(parts) == 3 {
		var c struct {
			TID string `json:"tid"`
		}
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil {
			if own := snap.ByInternalID(c.TID); own != nil {
				t = own
			}
		}
	}
	return v.VerifyFor(snap, t, token)
}

// testMethodTypes are the method types' real Configs (to validate and seal
// tenants); the Openers of these tests are fakes.
func testMethodTypes() tenants.MethodTypes {
	return tenants.MethodTypes{
		{Name: tenants.MethodPassword, NewConfig: password.NewConfig},
		{Name: oidc.Type, NewConfig: oidc.NewConfig},
		{Name: saml.Type, NewConfig: saml.NewConfig},
		{Name: social.Type, NewConfig: social.NewConfig},
	}
}

// method is a method entry of type typ whose Config is cfg.
func method(t testing.TB, typ, label string, cfg any, roles tenants.RoleMapping) tenants.Method {
	t.Helper()
	m := tenants.Method{Type: typ, Label: label, Roles: roles}
	if err := m.EncodeConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return m
}
