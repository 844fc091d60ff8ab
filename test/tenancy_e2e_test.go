package test

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestTenancyEndToEnd drives home-realm discovery, the apex's global
// session and chooser, tenant switching and path tenancy through the real
// Envoy, with tenantgate as in production (https origins, __Host- and
// __Secure- cookies) behind a TLS front, and browsers whose cookie jars
// apply RFC 6265 (host-only cookies, Path matching), so what the upstream
// receives is what a browser would send.
func TestTenancyEndToEnd(t *testing.T) {
	s := startHarness(t, stack.SecureCookies())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	te := &tenancyEnv{s: s, transport: s.tlsFront(t, ln)}
	apex := te.origin("")
	acme, globex := te.origin("acme"), te.origin("globex")

	t.Run("discovery sends an address of a tenant's domain to its sign-in page, and nothing else anywhere", func(t *testing.T) {
		b := te.browser(t)
		want := acme + "/_auth/login?login_hint=alice%40acme.test"
		resp := b.discover(t, apex, "alice@acme.test")
		if resp.StatusCode != http.StatusSeeOther || sansPort(resp.Header.Get("Location")) != want {
			t.Fatalf("discovery of alice@acme.test: want 303 to %s, got\n%s", want, resp)
		}
		page := b.get(t, want)
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), `value="alice@acme.test"`) {
			t.Errorf("acme's sign-in page does not prefill the address from login_hint:\n%s", page)
		}
		var neutral string
		for _, email := range []string{"alice@evil.test", "alice@sub.acme.test", "alice@аcme.test", "alice@\u212Acme.test",
			"Alice <alice@acme.test>", "alice@acme.test ()", "alice@acme.test, bob@globex.test", "not an address"} {
			resp := b.discover(t, apex, email)
			body := csrfValue.ReplaceAllString(string(resp.body), `value="X"`)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
				t.Fatalf("discovery of %q: want the neutral 200 page, got\n%s", email, resp)
			}
			if neutral == "" {
				neutral = body
			} else if body != neutral {
				t.Errorf("discovery of %q: the neutral page differs with the input", email)
			}
		}
	})

	var bob *tenancyBrowser
	t.Run("a password sign-in on the apex keeps a global session and lists the person's tenants", func(t *testing.T) {
		bob = te.browser(t)
		page := bob.get(t, apex+"/_auth/login")
		form := url.Values{"email": {"bob@example.test"}, "password": {"bob-shared-password"}, "csrf": {csrfToken(t, page)}}
		resp := bob.post(t, apex+"/_auth/login", form)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" {
			t.Fatalf("global sign-in: want 303 to /_auth/login, got\n%s", resp)
		}
		c := resp.cookie("__Host-tenantgate-global")
		if c == nil || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
			t.Fatalf("global session cookie: want __Host-tenantgate-global, Secure, HttpOnly, Path=/, no Domain, Lax; got %q", resp.Header.Values("Set-Cookie"))
		}
		if resp.cookie("__Host-tenantgate") != nil {
			t.Error("the apex sign-in set a tenant session")
		}
		chooser := bob.get(t, apex+"/_auth/login")
		got := chooserTenants(chooser)
		if len(got) != 2 || got["acme"] != "Acme Corp" || got["globex"] != "Globex Corporation" {
			t.Errorf("chooser offers %v, want acme and globex", got)
		}
		// The global session is the apex's alone.
		if got := bob.cookieNames(acme + "/"); strings.Contains(got, "global") {
			t.Errorf("acme's host would receive %s", got)
		}
	})

	var bobGlobex *http.Cookie
	t.Run("choosing a tenant switches into it without a password, by a single-use code", func(t *testing.T) {
		chooser := bob.get(t, apex+"/_auth/login")
		resp := bob.post(t, apex+"/_auth/switch", url.Values{"tenant": {"globex"}, "csrf": {csrfToken(t, chooser)}})
		if resp.StatusCode != http.StatusSeeOther || sansPort(resp.Header.Get("Location")) != globex+"/_auth/switch" {
			t.Fatalf("choose globex: want 303 to globex's /_auth/switch, got\n%s", resp)
		}
		start := bob.get(t, globex+"/_auth/switch")
		toApex := mustParseURL(t, start.Header.Get("Location"))
		if start.StatusCode != http.StatusFound || toApex.Hostname() != "app.test" || toApex.Path != "/_auth/switch" {
			t.Fatalf("globex's /_auth/switch: want 302 to the apex, got\n%s", start)
		}
		issued := bob.get(t, toApex.String())
		callback := mustParseURL(t, issued.Header.Get("Location"))
		code := callback.Query().Get("tg_switch")
		if issued.StatusCode != http.StatusSeeOther || code == "" || callback.Hostname() != "globex.app.test" || callback.Path != "/_auth/callback" {
			t.Fatalf("apex: want 303 to globex's /_auth/callback with a code, got\n%s", issued)
		}
		redeemed := bob.get(t, callback.String())
		bobGlobex = redeemed.cookie("__Host-tenantgate")
		if redeemed.StatusCode != http.StatusSeeOther || bobGlobex == nil || bobGlobex.Domain != "" || bobGlobex.Path != "/" || !bobGlobex.Secure {
			t.Fatalf("redeem: want 303 with a host-only __Host-tenantgate, got\n%s", redeemed)
		}
		hits := s.Upstream.Hits()
		seen := upstreamSaw(t, s, bob.get(t, globex+"/docs/1"), hits)
		wantIdentity(t, seen, "globex", "bob@example.test", "member")
		if c := strings.Join(seen.Values("cookie"), "; "); strings.Contains(c, "global") || strings.Contains(c, "intent") {
			t.Errorf("globex's upstream received apex cookies: %q", c)
		}

		// Single use: again in this browser, and in another browser holding
		// this one's cookies for globex.
		if again := bob.get(t, callback.String()); again.StatusCode != http.StatusBadRequest || again.cookie("__Host-tenantgate") != nil {
			t.Errorf("code redeemed twice: got\n%s", again)
		}
		thief := te.browser(t)
		thief.jar.SetCookies(mustParseURL(t, globex+"/"), bob.jar.Cookies(mustParseURL(t, globex+"/")))
		if again := thief.get(t, callback.String()); again.StatusCode != http.StatusBadRequest {
			t.Errorf("spent code in another browser: got\n%s", again)
		}
		// A session of globex opens nothing at acme.
		hits = s.Upstream.Hits()
		mismatch := te.browser(t)
		mismatch.jar.SetCookies(mustParseURL(t, acme+"/"), []*http.Cookie{bobGlobex})
		if resp := mismatch.get(t, acme+"/docs/1"); resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
			t.Errorf("globex session at acme: want 403 tenant_mismatch, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("a code is bound to its tenant and to the browser that asked for it", func(t *testing.T) {
		callback, verifier := bob.switchInto(t, te, "acme")
		// At globex: the same query, in the browser holding acme's verifier.
		at := *callback
		at.Host = strings.Replace(at.Host, "acme.", "globex.", 1)
		if resp := bob.get(t, at.String()); resp.StatusCode != http.StatusBadRequest || resp.cookie("__Host-tenantgate") != nil {
			t.Errorf("acme's code at globex: want 400, got\n%s", resp)
		}
		// At acme, in a browser without the verifier (the code leaked).
		if resp := te.browser(t).get(t, callback.String()); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("acme's code in another browser: want 400, got\n%s", resp)
		}
		// The code was not spent by those: acme's own browser signs in.
		owner := te.browser(t)
		owner.jar.SetCookies(mustParseURL(t, acme+"/"), []*http.Cookie{verifier})
		resp := owner.get(t, callback.String())
		if resp.StatusCode != http.StatusSeeOther || resp.cookie("__Host-tenantgate") == nil {
			t.Fatalf("redeem at acme: got\n%s", resp)
		}
		hits := s.Upstream.Hits()
		wantIdentity(t, upstreamSaw(t, s, owner.get(t, acme+"/docs/1"), hits), "acme", "bob@example.test", "member")
	})

	t.Run("a switch started on the tenant host asks for confirmation on the apex", func(t *testing.T) {
		start := bob.get(t, acme+"/_auth/switch?rd=%2Freports")
		page := bob.get(t, start.Header.Get("Location"))
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "Acme Corp") || strings.Contains(page.Header.Get("Location"), "tg_switch") {
			t.Fatalf("apex without a choice: want the confirmation page, got\n%s", page)
		}
		form := url.Values{}
		for _, m := range hiddenField.FindAllStringSubmatch(string(page.body), -1) {
			form.Set(m[1], m[2])
		}
		// Another site cannot confirm for the person.
		cross := bob.postWith(t, apex+"/_auth/switch", form, header{"Origin", "https://evil.test"}, header{"Sec-Fetch-Site", "cross-site"})
		if cross.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site confirmation: want 403, got\n%s", cross)
		}
		confirmed := bob.post(t, apex+"/_auth/switch", form)
		if confirmed.StatusCode != http.StatusSeeOther {
			t.Fatalf("confirm: got\n%s", confirmed)
		}
		redeemed := bob.get(t, confirmed.Header.Get("Location"))
		if redeemed.StatusCode != http.StatusSeeOther || redeemed.Header.Get("Location") != "/reports" {
			t.Fatalf("redeem: want 303 to /reports, got\n%s", redeemed)
		}
	})

	t.Run("path tenancy: sign-in, redirects and cookies stay within each tenant's prefix", func(t *testing.T) {
		b := te.browser(t)
		nav := b.get(t, apex+"/org/acme/docs/1")
		if nav.StatusCode != http.StatusFound || nav.Header.Get("Location") != "/org/acme/_auth/login?rd=%2Forg%2Facme%2Fdocs%2F1" {
			t.Fatalf("navigation without a session: want 302 to /org/acme's sign-in, got\n%s", nav)
		}
		acmeSession := b.pathSignIn(t, te, "acme", "/org/acme/docs/1", "/org/acme/docs/1")
		globexSession := b.pathSignIn(t, te, "globex", "/org/acme/elsewhere", "/org/globex/")
		for _, c := range []*http.Cookie{acmeSession, globexSession} {
			id := strings.TrimPrefix(c.Name, "__Secure-tenantgate.")
			if c.Path != "/org/"+id || c.Domain != "" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("%s: Path=%q Domain=%q Secure=%v HttpOnly=%v SameSite=%v; want Path=/org/%s, host-only, Secure, HttpOnly, Lax",
					c.Name, c.Path, c.Domain, c.Secure, c.HttpOnly, c.SameSite, id)
			}
		}
		// The browser sends each tenant's prefix its own session only, and
		// that is the session Check reads; the upstream receives neither
		// (tenantgate's cookies never reach the app).
		for _, tc := range []struct{ tenant, own, other string }{
			{"acme", "__Secure-tenantgate.acme", "__Secure-tenantgate.globex"},
			{"globex", "__Secure-tenantgate.globex", "__Secure-tenantgate.acme"},
		} {
			target := apex + "/org/" + tc.tenant + "/docs/1"
			if jar := "," + b.cookieNames(target) + ","; !strings.Contains(jar, ","+tc.own+",") || strings.Contains(jar, ","+tc.other+",") {
				t.Errorf("the browser sends %s the cookies %s: want %s and never %s", target, jar, tc.own, tc.other)
			}
			hits := s.Upstream.Hits()
			seen := upstreamSaw(t, s, b.get(t, target), hits)
			wantIdentity(t, seen, tc.tenant, "bob@example.test", "member")
			if cookies := strings.Join(seen.Values("cookie"), "; "); strings.Contains(cookies, "tenantgate") {
				t.Errorf("%s's upstream received cookies %q: want none of tenantgate's", tc.tenant, cookieNames(cookies))
			}
		}
		// A session put under the other tenant's name is refused there.
		hits := s.Upstream.Hits()
		resp := s.sendTLS(t, te, "app.test", "/org/globex/docs/1", header{"Cookie", "__Secure-tenantgate.globex=" + acmeSession.Value})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
			t.Errorf("acme's session as globex's cookie: want 403 tenant_mismatch, got\n%s", resp)
		}
		// The host-tenancy cookie name means nothing to a path tenant.
		resp = s.sendTLS(t, te, "app.test", "/org/acme/docs/1", header{"Cookie", "__Host-tenantgate=" + acmeSession.Value})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("acme's session as __Host-tenantgate on /org/acme: want 401, got\n%s", resp)
		}
		noUpstream(t, s, hits)

		// Signing out of acme clears acme's cookie only; globex stays.
		page := b.get(t, apex+"/org/acme/_auth/logout")
		out := b.post(t, apex+"/org/acme/_auth/logout", url.Values{"csrf": {csrfToken(t, page)}})
		if out.StatusCode != http.StatusSeeOther || out.Header.Get("Location") != "/org/acme/_auth/login" {
			t.Fatalf("logout: got\n%s", out)
		}
		if c := out.cookie("__Secure-tenantgate.acme"); c == nil || c.MaxAge >= 0 || c.Path != "/org/acme" {
			t.Errorf("logout does not clear acme's cookie at its path: %q", out.Header.Values("Set-Cookie"))
		}
		if c := out.cookie("__Secure-tenantgate.globex"); c != nil {
			t.Error("logout of acme touched globex's cookie")
		}
		hits = s.Upstream.Hits()
		if resp := b.get(t, apex+"/org/acme/docs/1"); resp.StatusCode != http.StatusFound {
			t.Errorf("acme after logout: want 302 to sign-in, got\n%s", resp)
		}
		noUpstream(t, s, hits)
		hits = s.Upstream.Hits()
		upstreamSaw(t, s, b.get(t, apex+"/org/globex/docs/1"), hits)
	})

	t.Run("path tenancy: switching into a path tenant", func(t *testing.T) {
		start := bob.get(t, apex+"/org/globex/_auth/switch?rd=%2Forg%2Fglobex%2Freports")
		if c := start.cookie("__Host-tenantgate-switch.globex"); start.StatusCode != http.StatusFound || c == nil || c.Path != "/" {
			t.Fatalf("/org/globex/_auth/switch: want 302 and globex's verifier, got\n%s", start)
		}
		page := bob.get(t, start.Header.Get("Location"))
		form := url.Values{}
		for _, m := range hiddenField.FindAllStringSubmatch(string(page.body), -1) {
			form.Set(m[1], m[2])
		}
		confirmed := bob.post(t, apex+"/_auth/switch", form)
		callback := mustParseURL(t, confirmed.Header.Get("Location"))
		if confirmed.StatusCode != http.StatusSeeOther || callback.Hostname() != "app.test" || callback.Path != "/org/globex/_auth/callback" {
			t.Fatalf("confirm: want 303 to /org/globex/_auth/callback, got\n%s", confirmed)
		}
		redeemed := bob.get(t, callback.String())
		c := redeemed.cookie("__Secure-tenantgate.globex")
		if redeemed.StatusCode != http.StatusSeeOther || redeemed.Header.Get("Location") != "/org/globex/reports" || c == nil || c.Path != "/org/globex" {
			t.Fatalf("redeem: want 303 to /org/globex/reports with globex's path cookie, got\n%s", redeemed)
		}
		hits := s.Upstream.Hits()
		wantIdentity(t, upstreamSaw(t, s, bob.get(t, apex+"/org/globex/docs/1"), hits), "globex", "bob@example.test", "member")
	})

	t.Run("signing out of the apex ends the global session", func(t *testing.T) {
		page := bob.get(t, apex+"/_auth/logout")
		out := bob.post(t, apex+"/_auth/logout", url.Values{"csrf": {csrfToken(t, page)}})
		if out.StatusCode != http.StatusSeeOther || out.cookie("__Host-tenantgate-global") == nil {
			t.Fatalf("apex logout: got\n%s", out)
		}
		// A copy of the signed-out cookie lists nothing, from the very next
		// request: the sign-out publishes its revocation before it answers.
		copied := te.browser(t)
		copied.jar.SetCookies(mustParseURL(t, apex+"/"), te.lastGlobal(bob, t))
		if body := string(copied.get(t, apex+"/_auth/login").body); strings.Contains(body, "Signed in as") {
			t.Fatal("a signed-out global session still shows the chooser")
		}
	})

	t.Run("no cookie tenantgate set has a Domain attribute", func(t *testing.T) {
		lines := te.setCookies()
		if len(lines) < 10 {
			t.Fatalf("only %d Set-Cookie lines seen", len(lines))
		}
		for _, l := range lines {
			if strings.Contains(strings.ToLower(l), "domain=") {
				t.Errorf("Set-Cookie with a Domain: %q", l)
			}
			if !strings.Contains(l, "Secure") || !strings.Contains(l, "HttpOnly") {
				t.Errorf("Set-Cookie without Secure and HttpOnly: %q", l)
			}
		}
	})
}

// tenancyEnv is the stack of TestTenancyEndToEnd with its TLS front.
type tenancyEnv struct {
	s         *harness
	transport *http.Transport

	mu      sync.Mutex
	cookies []string // every Set-Cookie line any browser received
	globals map[*tenancyBrowser]*http.Cookie
}

// origin is https://<tenant>.app.test, or the apex for "". The TLS front
// takes every such host on port 443 (its transport dials the front
// whatever the port), and Envoy strips any port from the Host, so
// tenantgate's URLs carry none.
func (te *tenancyEnv) origin(tenant string) string {
	host := baseDomain
	if tenant != "" {
		host = tenant + "." + baseDomain
	}
	return "https://" + host
}

func (te *tenancyEnv) setCookies() []string {
	te.mu.Lock()
	defer te.mu.Unlock()
	return append([]string(nil), te.cookies...)
}

// lastGlobal is the last global session cookie b received.
func (te *tenancyEnv) lastGlobal(b *tenancyBrowser, t *testing.T) []*http.Cookie {
	t.Helper()
	te.mu.Lock()
	defer te.mu.Unlock()
	c := te.globals[b]
	if c == nil {
		t.Fatal("the browser never received a global session")
	}
	return []*http.Cookie{c}
}

// tenancyBrowser is an http.Client with an RFC 6265 cookie jar, reaching
// every *.app.test host through the TLS front, following no redirect.
type tenancyBrowser struct {
	te  *tenancyEnv
	c   *http.Client
	jar *cookiejar.Jar
}

func (te *tenancyEnv) browser(t *testing.T) *tenancyBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &tenancyBrowser{te: te, jar: jar}
	b.c = &http.Client{
		Jar:           jar,
		Transport:     te.transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return b
}

func (b *tenancyBrowser) do(t *testing.T, req *http.Request) *response {
	t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Redacted(), err)
	}
	b.te.mu.Lock()
	b.te.cookies = append(b.te.cookies, resp.Header.Values("Set-Cookie")...)
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-tenantgate-global" && c.MaxAge >= 0 {
			if b.te.globals == nil {
				b.te.globals = map[*tenancyBrowser]*http.Cookie{}
			}
			b.te.globals[b] = c
		}
	}
	b.te.mu.Unlock()
	return &response{Response: resp, body: body}
}

// get navigates to rawURL (relative URLs are on the apex).
func (b *tenancyBrowser) get(t *testing.T, rawURL string) *response {
	t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = b.te.origin("") + rawURL
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// post submits a form as a same-origin page of that origin would.
func (b *tenancyBrowser) post(t *testing.T, rawURL string, form url.Values) *response {
	t.Helper()
	u := mustParseURL(t, rawURL)
	return b.postWith(t, rawURL, form, header{"Origin", u.Scheme + "://" + u.Host}, header{"Sec-Fetch-Site", "same-origin"})
}

func (b *tenancyBrowser) postWith(t *testing.T, rawURL string, form url.Values, hs ...header) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range hs {
		req.Header.Set(h.name, h.value)
	}
	return b.do(t, req)
}

// discover posts an email to the apex's discovery form.
func (b *tenancyBrowser) discover(t *testing.T, apex, email string) *response {
	t.Helper()
	page := b.get(t, apex+"/_auth/login")
	return b.post(t, apex+"/_auth/login", url.Values{"email": {email}, "csrf": {csrfToken(t, page)}})
}

// cookieNames lists the names of the cookies the jar would send to rawURL.
func (b *tenancyBrowser) cookieNames(rawURL string) string {
	u, _ := url.Parse(rawURL)
	var names []string
	for _, c := range b.jar.Cookies(u) {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

// switchInto runs a switch from the chooser into tenant id (host tenancy)
// up to the code, and returns the callback URL and the verifier cookie,
// unspent and no longer in this browser.
func (b *tenancyBrowser) switchInto(t *testing.T, te *tenancyEnv, id string) (*url.URL, *http.Cookie) {
	t.Helper()
	origin := te.origin(id)
	chooser := b.get(t, te.origin("")+"/_auth/login")
	if r := b.post(t, te.origin("")+"/_auth/switch", url.Values{"tenant": {id}, "csrf": {csrfToken(t, chooser)}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("choose %s: got\n%s", id, r)
	}
	start := b.get(t, origin+"/_auth/switch")
	verifier := start.cookie("__Host-tenantgate-switch")
	issued := b.get(t, start.Header.Get("Location"))
	if verifier == nil || issued.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch into %s: verifier %v, apex\n%s", id, verifier != nil, issued)
	}
	// Forget the verifier in this browser: the caller decides who holds it.
	b.jar.SetCookies(mustParseURL(t, origin+"/"), []*http.Cookie{{Name: verifier.Name, Path: "/", MaxAge: -1, Secure: true}})
	return mustParseURL(t, issued.Header.Get("Location")), verifier
}

// pathSignIn signs bob in to a path tenant with rd and checks where he
// lands; it returns the session cookie.
func (b *tenancyBrowser) pathSignIn(t *testing.T, te *tenancyEnv, tenant, rd, wantLocation string) *http.Cookie {
	t.Helper()
	prefix := "/org/" + tenant
	page := b.get(t, prefix+"/_auth/login?rd="+url.QueryEscape(rd))
	form := url.Values{"email": {"bob@example.test"}, "password": {"bob-shared-password"}, "rd": {rd}, "csrf": {csrfToken(t, page)}}
	resp := b.post(t, te.origin("")+prefix+"/_auth/login", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != wantLocation {
		t.Fatalf("sign-in at %s with rd %s: want 303 to %s, got\n%s", prefix, rd, wantLocation, resp)
	}
	c := resp.cookie("__Secure-tenantgate." + tenant)
	if c == nil {
		t.Fatalf("sign-in at %s set no __Secure-tenantgate.%s: %q", prefix, tenant, resp.Header.Values("Set-Cookie"))
	}
	return c
}

// sendTLS sends one API GET (Accept: application/json) through the TLS
// front with the given headers and an empty cookie jar.
func (s *harness) sendTLS(t *testing.T, te *tenancyEnv, host, target string, hs ...header) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+host+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	for _, h := range hs {
		req.Header.Set(h.name, h.value)
	}
	return te.browser(t).do(t, req)
}

// chooserTenants returns the chooser's switch buttons, tenant id → name.
func chooserTenants(page *response) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`(?s)name="tenant" value="([^"]*)">\s*<button type="submit">([^<]*)</button>`)
	for _, m := range re.FindAllStringSubmatch(string(page.body), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// sansPort removes the port from an absolute URL: tenantgate's URLs carry
// Envoy's listener port (x-forwarded-port), which the TLS front's browsers
// reach anyway, while the test names origins without one.
func sansPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		return raw
	}
	u.Host = u.Hostname()
	return u.String()
}

// cookieNames lists the names in a Cookie header.
func cookieNames(header string) string {
	var names []string
	for _, part := range strings.Split(header, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

var (
	csrfValue   = regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)
)
