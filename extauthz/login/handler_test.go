package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, host, target string
		wantAction, wantRD string
	}{
		{"subdomain", "acme.app.test", "/_auth/login?rd=%2Fdocs%3Fx%3D1", "/_auth/login", "/docs?x=1"},
		{"custom domain", "login.acme.test", "/_auth/login", "/_auth/login", "/"},
		{"port kept out", "acme.app.test:8443", "/_auth/login?rd=/a", "/_auth/login", "/a"},
		{"path tenancy", "app.test", "/org/acme/_auth/login?rd=/org/acme/docs", "/org/acme/_auth/login", "/org/acme/docs"},
		{"path tenancy rd elsewhere", "app.test", "/org/acme/_auth/login?rd=/org/globex/", "/org/acme/_auth/login", "/org/acme/"},
		{"open redirect replaced", "acme.app.test", "/_auth/login?rd=//evil.test", "/_auth/login", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("GET", tc.host, tc.target, nil, nil)
			body := readBody(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": cspFor(body),
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "same-origin",
				"Cache-Control":           "no-store",
				"Content-Type":            "text/html; charset=utf-8",
				"X-Content-Type-Options":  "nosniff",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, want := range []string{
				`<html lang="en">`,
				`<meta name="viewport"`,
				`Acme Corp`,
				`<label for="email">`,
				`id="email" name="email" autocomplete="username"`,
				`<label for="password">`,
				`id="password" name="password" autocomplete="current-password"`,
				`<button type="submit">Sign in</button>`,
				`action="` + tc.wantAction + `"`,
				`name="rd" value="` + htmlAttr(tc.wantRD) + `"`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q", want)
				}
			}
			if !strings.HasSuffix(strings.TrimSpace(body), "</html>") {
				t.Error("something follows the page")
			}
			// Focus order follows the document: email, password, button.
			ie, ip, ib := strings.Index(body, `id="email"`), strings.Index(body, `id="password"`), strings.Index(body, `<button`)
			if !(ie < ip && ip < ib) {
				t.Error("fields are not in email, password, submit order")
			}
			for _, bad := range []string{"http://", "https://", "<script", "<link", "src="} {
				if strings.Contains(body, bad) {
					t.Errorf("body contains %q: no external or active content allowed", bad)
				}
			}
			line := setCookieLine(resp, "__Host-tenantgate-csrf")
			for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
				if !strings.Contains(line, attr) {
					t.Errorf("pre-auth cookie %q lacks %s", line, attr)
				}
			}
			if strings.Contains(strings.ToLower(line), "domain=") {
				t.Errorf("pre-auth cookie %q has a Domain", line)
			}
		})
	}
}

// htmlAttr is how html/template writes these test values in an attribute.
func htmlAttr(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }

func TestLoginPageHint(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, hint string
		want       string // the email field's value attribute, "" for none
	}{
		{"address", "alice@acme.test", `value="alice@acme.test"`},
		{"escaped", "o'neil&co@acme.test", `value="o&#39;neil&amp;co@acme.test"`},
		{"trimmed", " alice@acme.test ", `value="alice@acme.test"`},
		{"markup", `"><script>alert(1)</script>`, ""},
		{"markup in an address", `a@acme.test"><script>alert(1)</script>`, ""},
		{"display name", "Alice <alice@acme.test>", ""},
		{"not an address", "alice", ""},
		{"too long", strings.Repeat("a", 400) + "@acme.test", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("GET", "acme.app.test", "/_auth/login?login_hint="+url.QueryEscape(tc.hint), nil, nil)
			body := readBody(t, resp)
			if strings.Contains(body, "<script>") {
				t.Fatal("login_hint rendered unescaped")
			}
			field := regexp.MustCompile(`<input[^>]*id="email"[^>]*>`).FindString(body)
			if field == "" {
				t.Fatalf("no email field:\n%s", body)
			}
			if tc.want == "" {
				if strings.Contains(field, `value="`) && !strings.Contains(field, `value=""`) {
					t.Fatalf("hint %q pre-filled: %s", tc.hint, field)
				}
				return
			}
			if !strings.Contains(field, tc.want) {
				t.Fatalf("email field %s, want %s", field, tc.want)
			}
			// With a hint the password field takes focus.
			if !regexp.MustCompile(`id="password"[^>]*autofocus`).MatchString(body) {
				t.Error("password field not focused when the email is pre-filled")
			}
		})
	}
}

func TestPreauthCookieReused(t *testing.T) {
	e := newEnv(t)
	f1 := e.getForm("acme.app.test", "/_auth/login")
	resp := e.do("GET", "acme.app.test", "/_auth/login", nil, nil, f1.preauth)
	if setCookieLine(resp, "__Host-tenantgate-csrf") != "" {
		t.Fatal("a valid pre-auth cookie was replaced: a second tab would break the first")
	}
	f2 := e.getForm("acme.app.test", "/_auth/login", f1.preauth)
	if f1.csrf != f2.csrf {
		t.Fatal("same pre-auth cookie, different csrf token")
	}
	g := e.getForm("globex.app.test", "/_auth/login", f1.preauth)
	if g.csrf == f1.csrf {
		t.Fatal("csrf token is not bound to the tenant")
	}
}

func TestLoginSuccess(t *testing.T) {
	tests := []struct {
		name, host, prefix, rd string
		insecure               bool
		wantLocation           string
		wantCookie             string // the Set-Cookie line with the value cut out
		wantTenant             string
		wantRoles              string
	}{
		{"subdomain", "acme.app.test", "", "/docs?x=1", false, "/docs?x=1",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "acme", "admin,member"},
		{"custom domain", "login.acme.test", "", "/", false, "/",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "acme", "admin,member"},
		{"other tenant other roles", "globex.app.test", "", "/x", false, "/x",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "globex", "member"},
		{"path tenancy", "app.test", "/org/acme", "/org/acme/docs", false, "/org/acme/docs",
			"__Secure-tenantgate.acme=TOKEN; Path=/org/acme; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "acme", "admin,member"},
		{"path tenancy rd outside", "app.test", "/org/acme", "/org/globex/docs", false, "/org/acme/",
			"__Secure-tenantgate.acme=TOKEN; Path=/org/acme; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "acme", "admin,member"},
		{"path tenancy insecure", "app.test", "/org/globex", "/org/globex/x", true, "/org/globex/x",
			"tenantgate.globex=TOKEN; Path=/org/globex; Max-Age=3600; HttpOnly; SameSite=Lax", "globex", "member"},
		{"insecure", "acme.app.test", "", "/", true, "/",
			"tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax", "acme", "admin,member"},
		{"open redirect", "acme.app.test", "", "https://evil.test/", false, "/",
			"__Host-tenantgate=TOKEN; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax", "acme", "admin,member"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(h *Handler) { h.InsecureCookies = tc.insecure })
			resp := e.signIn(tc.host, tc.prefix, "Alice@ACME.test ", alicePassword, tc.rd)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d, want 303: %s", resp.StatusCode, readBody(t, resp))
			}
			if got := resp.Header.Get("Location"); got != tc.wantLocation {
				t.Errorf("Location = %q, want %q", got, tc.wantLocation)
			}
			name, _, _ := strings.Cut(tc.wantCookie, "=")
			if cs := resp.Cookies(); len(cs) != 1 {
				t.Errorf("%d cookies set, want only the session cookie: %q", len(cs), resp.Header.Values("Set-Cookie"))
			}
			c := cookieNamed(resp, name)
			if c == nil {
				t.Fatal("no session cookie")
			}
			line := strings.Replace(setCookieLine(resp, name), c.Value, "TOKEN", 1)
			if line != tc.wantCookie {
				t.Errorf("Set-Cookie = %q, want %q", line, tc.wantCookie)
			}
			claims, err := verifyOwnTenant(e.verifier, e.snaps.Load(), c.Value)
			if err != nil {
				t.Fatal(err)
			}
			tn := e.snaps.Load().BySlug(tc.wantTenant)
			if claims.TenantID != tn.InternalID || claims.Method != "password" || claims.Email != "alice@acme.test" ||
				strings.Join(claims.Roles, ",") != tc.wantRoles {
				t.Errorf("claims = %+v, want tenant %s roles %s method password", claims, tc.wantTenant, tc.wantRoles)
			}
		})
	}
}

func TestFreshSessionIDEverySignIn(t *testing.T) {
	e := newEnv(t)
	sids := map[string]bool{}
	for range 3 {
		resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
		c := cookieNamed(resp, "__Host-tenantgate")
		if c == nil {
			t.Fatalf("status %d, no cookie", resp.StatusCode)
		}
		claims, err := verifyOwnTenant(e.verifier, e.snaps.Load(), c.Value)
		if err != nil {
			t.Fatal(err)
		}
		if sids[claims.SID] {
			t.Fatal("session id reused across sign-ins")
		}
		sids[claims.SID] = true
	}
}

// TestFailuresIdentical: every reason a sign-in fails gives byte-identical
// answers (security catalogue §5 item 35).
func TestFailuresIdentical(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.Limits = Limits{AccountFailures: 3} })
	ctx := context.Background()
	if _, err := e.store.AddMember(ctx, "acme", tenants.NewMember{Email: "badhash@acme.test", Roles: []string{"member"}, PasswordHash: "$argon2id$v=19$m=4194304,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}); err != nil {
		t.Fatal(err)
	}
	// Lock alice out of acme first (limit 3), through a case variant.
	lockedEmail := "ALICE@acme.test"
	f := e.getForm("acme.app.test", "/_auth/login")
	post := func(email, pw string) (int, string) {
		resp := e.do("POST", "acme.app.test", "/_auth/login",
			url.Values{"email": {email}, "password": {pw}, "rd": {"/docs"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		return resp.StatusCode, readBody(t, resp)
	}
	for range 3 {
		post(lockedEmail, "wrong")
	}
	cases := []struct{ name, email, pw string }{
		{"wrong password", "bob@globex.test", "wrong"}, // bob is not an acme member either
		{"unknown user", "nobody@acme.test", alicePassword},
		{"not a member of this tenant", "bob@globex.test", bobPassword},
		{"empty email", "", alicePassword},
		{"empty password", "alice@acme.test", ""},
		{"garbage email", "\x00<>@@", "x"},
		{"overlong password", "alice@acme.test", strings.Repeat("p", 2000)},
		{"unusable stored hash", "badhash@acme.test", "whatever"},
		{"locked out, right password", "alice@acme.test", alicePassword},
	}
	var first string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.email, tc.pw)
			if status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", status)
			}
			if !strings.Contains(body, "Invalid email or password.") {
				t.Fatal("body lacks the generic message")
			}
			if tc.email != "" && strings.Contains(body, tc.email) {
				t.Fatal("body echoes the email")
			}
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("body differs from the first failure's:\n%s\n---\n%s", body, first)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	acme := e.getForm("acme.app.test", "/_auth/login")
	// The sibling tenant's form, fetched with the same pre-auth cookie.
	globex := e.getForm("globex.app.test", "/_auth/login", acme.preauth)
	other := e.getForm("acme.app.test", "/_auth/login") // another browser
	creds := func(csrf string) url.Values {
		return url.Values{"email": {"alice@acme.test"}, "password": {alicePassword}, "rd": {"/"}, "csrf": {csrf}}
	}
	tests := []struct {
		name    string
		form    url.Values
		cookies []*http.Cookie
	}{
		{"no cookie", creds(acme.csrf), nil},
		{"no token", creds(""), []*http.Cookie{acme.preauth}},
		{"wrong token", creds("AAAA" + acme.csrf[4:]), []*http.Cookie{acme.preauth}},
		{"token of another browser", creds(other.csrf), []*http.Cookie{acme.preauth}},
		{"token from sibling tenant", creds(globex.csrf), []*http.Cookie{acme.preauth}},
		{"malformed cookie", creds(acme.csrf), []*http.Cookie{{Name: acme.preauth.Name, Value: "short"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("POST", "acme.app.test", "/_auth/login", tc.form, sameOrigin(), tc.cookies...)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if cookieNamed(resp, "__Host-tenantgate") != nil {
				t.Fatal("session cookie set")
			}
			if !strings.Contains(body, "Reload the page") || resp.Header.Get("Content-Security-Policy") != cspFor(body) {
				t.Fatal("not the refusal page")
			}
		})
	}
	t.Run("path tenancy sibling token", func(t *testing.T) {
		a := e.getForm("app.test", "/org/acme/_auth/login")
		g := e.getForm("app.test", "/org/globex/_auth/login", a.preauth)
		resp := e.do("POST", "app.test", "/org/acme/_auth/login", creds(g.csrf), sameOrigin(), a.preauth)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("no key", func(t *testing.T) {
		e := newEnv(t, func(h *Handler) { h.CSRFKey = nil })
		resp := e.do("GET", "acme.app.test", "/_auth/login", nil, nil)
		body := readBody(t, resp)
		m := csrfField.FindStringSubmatch(body)
		if m == nil || m[1] != "" {
			t.Fatal("without a key the form must carry an empty token")
		}
		resp = e.do("POST", "acme.app.test", "/_auth/login", creds(""), sameOrigin(),
			&http.Cookie{Name: "__Host-tenantgate-csrf", Value: strings.Repeat("A", 43)})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
}

func TestCrossOrigin(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		hdr  http.Header
		want int
	}{
		{"same-origin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusSeeOther},
		{"no fetch metadata (non-browser)", http.Header{}, http.StatusSeeOther},
		{"sibling tenant is same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden},
		{"cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"origin of sibling tenant", http.Header{"Origin": {"https://evil.app.test"}}, http.StatusForbidden},
		{"origin of another site", http.Header{"Origin": {"https://evil.test"}}, http.StatusForbidden},
		// Plain http (--insecure-cookies behind Envoy on :8080): browsers
		// send no Sec-Fetch-Site there, only the Origin, whose port Envoy
		// passes on as x-forwarded-port.
		{"plain http, the page's own origin", http.Header{"Origin": {"http://acme.app.test:8080"}, "X-Forwarded-Port": {"8080"}}, http.StatusSeeOther},
		{"plain http, another port", http.Header{"Origin": {"http://acme.app.test:9090"}, "X-Forwarded-Port": {"8080"}}, http.StatusForbidden},
		// What browsers sent under Referrer-Policy: no-referrer: nothing
		// to tell a foreign page from our own, so refused.
		{"plain http, Origin null", http.Header{"Origin": {"null"}, "X-Forwarded-Port": {"8080"}}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := e.getForm("acme.app.test", "/_auth/login")
			resp := e.do("POST", "acme.app.test", "/_auth/login",
				url.Values{"email": {"alice@acme.test"}, "password": {alicePassword}, "rd": {"/"}, "csrf": {f.csrf}}, tc.hdr, f.preauth)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusForbidden && cookieNamed(resp, "__Host-tenantgate") != nil {
				t.Fatal("session cookie set on a refused request")
			}
		})
	}
}

func TestLockout(t *testing.T) {
	e := newEnv(t)
	fail := func(host, email string) {
		t.Helper()
		if resp := e.signIn(host, "", email, "wrong", "/"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: status %d", resp.StatusCode)
		}
	}
	// Nine failures, then success resets the count.
	for range 9 {
		fail("acme.app.test", "alice@acme.test")
	}
	if resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("9 failures then right password: status %d, want 303", resp.StatusCode)
	}
	// Ten failures, counted across case variants, lock the account in acme.
	for i := range 10 {
		fail("acme.app.test", []string{"alice@acme.test", "ALICE@ACME.TEST", " Alice@Acme.Test"}[i%3])
	}
	if resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("locked account, right password: status %d, want 401", resp.StatusCode)
	}
	// The same email in another tenant is unaffected.
	if resp := e.signIn("globex.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same email in globex: status %d, want 303", resp.StatusCode)
	}
	// The lock lifts when the window has passed.
	e.clock.Advance(15*time.Minute + time.Second)
	if resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: status %d, want 303", resp.StatusCode)
	}
}

func TestPasswordsSaturated(t *testing.T) {
	e := newEnv(t, func(h *Handler) {
		// One slot, no waiting, and a hash slow enough to overlap.
		h.Passwords = &password.Hasher{Params: password.Params{Memory: 8 << 10, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
			MaxConcurrent: 1, Wait: -1}
	})
	f := e.getForm("acme.app.test", "/_auth/login")
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := ""
	for round := 0; round < 20 && statuses[http.StatusTooManyRequests] == 0; round++ {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := e.do("POST", "acme.app.test", "/_auth/login",
					url.Values{"email": {"u" + strconv.Itoa(i) + "@acme.test"}, "password": {"x"}, "rd": {"/"}, "csrf": {f.csrf}},
					http.Header{"Sec-Fetch-Site": {"same-origin"}, HeaderExternalAddress: {"198.51.100." + strconv.Itoa(round*8+i)}}, f.preauth)
				mu.Lock()
				defer mu.Unlock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests {
					retryAfter = resp.Header.Get("Retry-After")
				}
			}()
		}
		wg.Wait()
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Fatalf("no 429 while argon2 was saturated: %v", statuses)
	}
	if retryAfter == "" {
		t.Error("429 without Retry-After")
	}
	for s := range statuses {
		if s != http.StatusTooManyRequests && s != http.StatusUnauthorized {
			t.Errorf("unexpected status %d", s)
		}
	}
}

func TestSuspendedTenant(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "frozen.app.test", "/_auth/login", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This organisation is suspended") {
		t.Fatalf("GET: status %d", resp.StatusCode)
	}
	if strings.Contains(body, `name="password"`) {
		t.Fatal("suspended tenant shows a password form")
	}
	// A member with the right password still gets no session.
	f := e.getForm("acme.app.test", "/_auth/login")
	resp = e.do("POST", "frozen.app.test", "/_auth/login",
		url.Values{"email": {"alice@acme.test"}, "password": {alicePassword}, "rd": {"/"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	body = readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This organisation is suspended") {
		t.Fatalf("POST: status %d", resp.StatusCode)
	}
	if cookieNamed(resp, "__Host-tenantgate") != nil {
		t.Fatal("session cookie for a suspended tenant")
	}
}

func TestNoSignInMethod(t *testing.T) {
	e := newEnv(t)
	for _, method := range []string{"GET", "POST"} {
		resp := e.do(method, "sso.app.test", "/_auth/login", url.Values{}, sameOrigin())
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "No sign-in method is available") {
			t.Fatalf("%s: status %d", method, resp.StatusCode)
		}
		if strings.Contains(body, `name="password"`) {
			t.Fatalf("%s: password form shown for a tenant without password sign-in", method)
		}
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	sessionName := func(prefix string) string {
		if id, ok := strings.CutPrefix(prefix, "/org/"); ok {
			return "__Secure-tenantgate." + id
		}
		return "__Host-tenantgate"
	}
	signIn := func(host, prefix string) *http.Cookie {
		t.Helper()
		resp := e.signIn(host, prefix, "alice@acme.test", alicePassword, "/")
		c := cookieNamed(resp, sessionName(prefix))
		if c == nil {
			t.Fatalf("sign-in: status %d", resp.StatusCode)
		}
		return c
	}
	logout := func(host, prefix string, sess *http.Cookie) *http.Response {
		t.Helper()
		f := e.getForm(host, prefix+"/_auth/logout")
		cookies := []*http.Cookie{f.preauth}
		if sess != nil {
			cookies = append(cookies, sess)
		}
		return e.do("POST", host, prefix+"/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), cookies...)
	}
	const cleared = "__Host-tenantgate=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"

	t.Run("revokes", func(t *testing.T) {
		sess := signIn("acme.app.test", "")
		resp := logout("acme.app.test", "", sess)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" {
			t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got := setCookieLine(resp, "__Host-tenantgate"); got != cleared {
			t.Fatalf("Set-Cookie = %q, want %q", got, cleared)
		}
		// No refresh here: the sign-out publishes its revocation itself,
		// so the very next request already refuses the session.
		if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), sess.Value); err == nil {
			t.Fatal("the signed-out session still verifies")
		}
	})
	t.Run("path tenancy", func(t *testing.T) {
		sess := signIn("app.test", "/org/acme")
		resp := logout("app.test", "/org/acme", sess)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/org/acme/_auth/login" {
			t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got, want := setCookieLine(resp, "__Secure-tenantgate.acme"), "__Secure-tenantgate.acme=; Path=/org/acme; Max-Age=0; HttpOnly; Secure; SameSite=Lax"; got != want {
			t.Errorf("Set-Cookie = %q, want %q", got, want)
		}
		if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), sess.Value); err == nil {
			t.Fatal("the signed-out session still verifies")
		}
	})
	t.Run("another tenant's session is not revoked", func(t *testing.T) {
		// Planted under acme's name, as a hand-made request could.
		sess := signIn("app.test", "/org/globex")
		sess.Name = sessionName("/org/acme")
		resp := logout("app.test", "/org/acme", sess)
		if resp.StatusCode != http.StatusSeeOther || setCookieLine(resp, sess.Name) == "" {
			t.Fatalf("status %d", resp.StatusCode)
		}
		e.refresh()
		if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), sess.Value); err != nil {
			t.Fatalf("acme's sign-out revoked globex's session: %v", err)
		}
	})
	t.Run("without a session", func(t *testing.T) {
		resp := logout("acme.app.test", "", nil)
		if resp.StatusCode != http.StatusSeeOther || setCookieLine(resp, "__Host-tenantgate") != cleared {
			t.Fatalf("status %d, Set-Cookie %q", resp.StatusCode, setCookieLine(resp, "__Host-tenantgate"))
		}
	})
	t.Run("csrf required", func(t *testing.T) {
		sess := signIn("acme.app.test", "")
		f := e.getForm("acme.app.test", "/_auth/logout")
		for name, hdr := range map[string]http.Header{"same-origin": sameOrigin(), "same-site": {"Sec-Fetch-Site": {"same-site"}}} {
			csrf := ""
			if name == "same-site" {
				csrf = f.csrf
			}
			resp := e.do("POST", "acme.app.test", "/_auth/logout", url.Values{"csrf": {csrf}}, hdr, f.preauth, sess)
			if resp.StatusCode != http.StatusForbidden || setCookieLine(resp, "__Host-tenantgate") != "" {
				t.Fatalf("%s: status %d", name, resp.StatusCode)
			}
		}
		e.refresh()
		if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), sess.Value); err != nil {
			t.Fatalf("refused sign-out revoked the session: %v", err)
		}
	})
	t.Run("confirmation page", func(t *testing.T) {
		resp := e.do("GET", "acme.app.test", "/_auth/logout", nil, nil)
		body := readBody(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != cspFor(body) ||
			!strings.Contains(body, `action="/_auth/logout"`) || !strings.Contains(body, "Sign out</button>") {
			t.Fatalf("status %d:\n%s", resp.StatusCode, body)
		}
	})
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "acme.app.test", "/_auth/jwks.json", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Cache-Control") != "public, max-age=300" || !strings.Contains(body, `"keys"`) {
		t.Fatalf("status %d, headers %v, body %s", resp.StatusCode, resp.Header, body)
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS body %q: %v", body, err)
	}
	kid := e.snaps.Load().BySlug("acme").Keys[0].KID
	if !strings.Contains(body, kid) {
		t.Error("JWKS lacks the tenant's key")
	}
	if other := e.snaps.Load().BySlug("globex").Keys[0].KID; strings.Contains(body, other) {
		t.Error("JWKS carries another tenant's key")
	}
	path := e.do("GET", "app.test", "/org/acme/_auth/jwks.json", nil, nil)
	if b := readBody(t, path); path.StatusCode != 200 || b != body {
		t.Error("path tenancy JWKS differs")
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, host, target string
		hdr                        http.Header
		status                     int
		body                       string
	}{
		{"unknown tenant", "GET", "nope.app.test", "/_auth/login", nil, 404, `{"error":"unknown_tenant"}`},
		{"unknown custom domain", "GET", "evil.test", "/_auth/login", nil, 404, `{"error":"unknown_tenant"}`},
		{"forwarded host ignored", "GET", "evil.test", "/_auth/login", http.Header{"X-Forwarded-Host": {"acme.app.test"}, "Forwarded": {"host=acme.app.test"}}, 404, `{"error":"unknown_tenant"}`},
		{"nested label", "GET", "x.acme.app.test", "/_auth/login", nil, 404, `{"error":"unknown_tenant"}`},
		{"ip literal", "GET", "127.0.0.1", "/_auth/login", nil, 404, `{"error":"unknown_tenant"}`},
		{"unknown path tenant", "GET", "app.test", "/org/nope/_auth/login", nil, 404, `{"error":"unknown_tenant"}`},
		{"malformed host", "GET", "acme..app.test", "/_auth/login", nil, 400, `{"error":"bad_request"}`},
		{"bad port", "GET", "acme.app.test:abc", "/_auth/login", nil, 400, `{"error":"bad_request"}`},
		{"dot-segment", "GET", "app.test", "/org/globex/../acme/_auth/login", nil, 400, `{"error":"bad_request"}`},
		{"unknown auth path", "GET", "acme.app.test", "/_auth/nope", nil, 404, `{"error":"not_found"}`},
		{"not under auth", "GET", "acme.app.test", "/docs", nil, 404, `{"error":"not_found"}`},
		{"apex logout", "GET", "app.test", "/_auth/logout", nil, 404, `{"error":"not_found"}`},
		{"apex jwks", "GET", "app.test", "/_auth/jwks.json", nil, 404, `{"error":"not_found"}`},
		{"encoded path", "GET", "acme.app.test", "/_auth/%6cogin", nil, 404, `{"error":"not_found"}`},
		{"method", "PUT", "acme.app.test", "/_auth/login", nil, 405, `{"error":"method_not_allowed"}`},
		{"post jwks", "POST", "acme.app.test", "/_auth/jwks.json", nil, 405, `{"error":"method_not_allowed"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(tc.method, tc.host, tc.target, nil, tc.hdr)
			body := strings.TrimSpace(readBody(t, resp))
			if resp.StatusCode != tc.status || body != tc.body {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, tc.status, tc.body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", resp.Header)
			}
		})
	}
	t.Run("no snapshot", func(t *testing.T) {
		h := &Handler{Snapshots: &tenants.Current{}, Resolver: e.h.Resolver}
		e2 := *e
		e2.h = h
		resp := e2.do("GET", "acme.app.test", "/_auth/login", nil, nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
	})
}

// TestStoreFailure: a store that cannot answer fails closed with 503.
func TestStoreFailure(t *testing.T) {
	e := newEnv(t)
	f := e.getForm("acme.app.test", "/_auth/login")
	e.h.Store = failingStore{e.store}
	resp := e.do("POST", "acme.app.test", "/_auth/login",
		url.Values{"email": {"alice@acme.test"}, "password": {alicePassword}, "rd": {"/"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	if resp.StatusCode != http.StatusServiceUnavailable || cookieNamed(resp, "__Host-tenantgate") != nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// failingStore is the real store with lookups failing as a broken disk
// would make them.
type failingStore struct{ Store }

func (failingStore) UserByEmail(context.Context, string) (tenants.User, error) {
	return tenants.User{}, errors.New("disk on fire")
}

// TestReferrerPolicy: every answer under /_auth/, page, redirect or error,
// carries Referrer-Policy: same-origin, and every page repeats it in its
// <meta> element. Under the no-referrer it replaces, browsers send
// "Origin: null" with the pages' own form POSTs, which the cross-origin
// check must refuse (TestCrossOrigin): over plain http, without
// Sec-Fetch-Site, every sign-in failed (security catalogue item 51).
func TestReferrerPolicy(t *testing.T) {
	se := newSSOEnv(t)
	se.p.set("good", signin.Identity{Issuer: "i", Subject: "s", IDTokenHint: "the.id.token"})
	tests := []struct {
		name   string
		do     func() *http.Response
		status int
	}{
		{"sign-in page", func() *http.Response { return se.do("GET", "acme.app.test", "/_auth/login?rd=%2Fdocs", nil, nil) }, 200},
		{"signed in", func() *http.Response {
			return se.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/docs")
		}, 303},
		{"wrong password", func() *http.Response {
			return se.signIn("acme.app.test", "", "alice@acme.test", "wrong", "/docs")
		}, 401},
		{"refused cross-origin", func() *http.Response {
			f := se.getForm("acme.app.test", "/_auth/login")
			return se.do("POST", "acme.app.test", "/_auth/login", url.Values{"csrf": {f.csrf}},
				http.Header{"Origin": {"https://evil.test"}}, f.preauth)
		}, 403},
		{"refused csrf", func() *http.Response {
			return se.do("POST", "acme.app.test", "/_auth/login", url.Values{"csrf": {"x"}}, sameOrigin())
		}, 403},
		{"straight to the provider", func() *http.Response { return se.do("GET", "oidcco.app.test", "/_auth/login", nil, nil) }, 302},
		{"SSO button to the provider", func() *http.Response {
			f := se.getForm("multi.app.test", "/_auth/login")
			return se.do("POST", "multi.app.test", "/_auth/start", url.Values{"m": {"1"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		}, 303},
		{"callback refused", func() *http.Response {
			return se.do("GET", "oidcco.app.test", "/_auth/callback?state=x&code=good", nil, nil)
		}, 400},
		{"callback signs in", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			return se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {s}, "code": {"good"}}.Encode(), nil, nil, j.all()...)
		}, 303},
		{"sign-out page", func() *http.Response { return se.do("GET", "acme.app.test", "/_auth/logout", nil, nil) }, 200},
		{"signed out at the provider", func() *http.Response {
			j := jar{}
			s := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
			j.take(se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {s}, "code": {"good"}}.Encode(), nil, nil, j.all()...))
			f := se.getForm("oidcco.app.test", "/_auth/logout", j.all()...)
			return se.do("POST", "oidcco.app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), append(j.all(), f.preauth)...)
		}, 303},
		{"signed-out page", func() *http.Response { return se.do("GET", "oidcco.app.test", "/_auth/signed-out", nil, nil) }, 200},
		{"discovery page", func() *http.Response { return se.do("GET", "app.test", "/_auth/login", nil, nil) }, 200},
		{"discovery to the tenant", func() *http.Response {
			f := se.getForm("app.test", "/_auth/login")
			return se.do("POST", "app.test", "/_auth/login", url.Values{"email": {"x@acme.test"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		}, 303},
		{"path tenant's page", func() *http.Response { return se.do("GET", "app.test", "/org/acme/_auth/login", nil, nil) }, 200},
		{"jwks", func() *http.Response { return se.do("GET", "acme.app.test", "/_auth/jwks.json", nil, nil) }, 200},
		{"unknown tenant", func() *http.Response { return se.do("GET", "nope.app.test", "/_auth/login", nil, nil) }, 404},
		{"malformed host", func() *http.Response { return se.do("GET", "acme..app.test", "/_auth/login", nil, nil) }, 400},
		{"unknown path", func() *http.Response { return se.do("GET", "acme.app.test", "/_auth/nope", nil, nil) }, 404},
		{"method not allowed", func() *http.Response { return se.do("PUT", "acme.app.test", "/_auth/login", nil, nil) }, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.do()
			body := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Values("Referrer-Policy"); len(got) != 1 || got[0] != "same-origin" {
				t.Errorf("Referrer-Policy %q, want exactly one same-origin", got)
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				metas := regexp.MustCompile(`<meta name="referrer"[^>]*>`).FindAllString(body, -1)
				if len(metas) != 1 || metas[0] != `<meta name="referrer" content="same-origin">` {
					t.Errorf("page's referrer <meta> elements %q, want one with content same-origin", metas)
				}
			}
		})
	}
}
