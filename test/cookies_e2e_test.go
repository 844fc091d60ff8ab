package test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// passCookieTenants is the fixture tenant file with globex's app reading
// the session cookie itself (passSessionCookie).
func passCookieTenants() string {
	return strings.Replace(tenantFile, "  - id: globex\n", "  - id: globex\n    passSessionCookie: true\n", 1)
}

// TestEnvoyCookieSmuggling is issue 7 item 1 through the real Envoy: a
// sibling subdomain (another tenant's content, or script on any host under
// the base domain) sets x="junk, tenantgate=<its own session>" with
// Domain=<base domain>, and the browser sends it verbatim to the victim's
// tenant. Cookies are split on ";" only, so the planted session is never
// read, while a browser's own several cookies work over HTTP/1.1 and
// HTTP/2. (The stack runs with --insecure-cookies, so the session cookie is
// "tenantgate"; the parse is the same for "__Host-tenantgate".)
func TestEnvoyCookieSmuggling(t *testing.T) {
	s := startHarness(t)
	acme := "acme." + baseDomain
	attacker := s.signIn(t, acme, bob) // a member of acme too
	victim := s.signIn(t, acme, alice)
	planted := `x="junk, tenantgate=` + attacker.Value + `"`

	t.Run("a planted session signs no one in", func(t *testing.T) {
		for _, c := range []string{planted, "x=junk, tenantgate=" + attacker.Value} {
			hits := s.Upstream.Hits()
			resp := s.send(t, request{host: acme, target: "/docs/1", headers: []header{{"Cookie", c}, {"Accept", "application/json"}}})
			if resp.StatusCode != http.StatusUnauthorized || resp.errorCode() != "unauthenticated" {
				t.Errorf("Cookie %.40q…: want 401 unauthenticated, got\n%s", c, resp)
			}
			noUpstream(t, s, hits)

			nav := s.send(t, request{host: acme, target: "/docs/1", headers: []header{{"Cookie", c}, {"Accept", "text/html"}}})
			if nav.StatusCode != http.StatusFound || !strings.HasPrefix(nav.Header.Get("Location"), "/_auth/login") {
				t.Errorf("navigation with a planted session: want 302 to the login page, got\n%s", nav)
			}
			noUpstream(t, s, hits)
		}
	})

	t.Run("a planted session does not displace the victim's", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: []header{
			{"Cookie", planted + "; tenantgate=" + victim.Value}, {"Accept", "application/json"},
		}})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", alice.Email, "member")
	})

	t.Run("a browser's several cookies work over HTTP/1.1", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: []header{
			{"Cookie", `theme=dark; tenantgate=` + victim.Value + `; pref="a, b"; lang=en`},
		}})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", alice.Email, "member")
	})

	t.Run("a browser's several cookies work over HTTP/2", func(t *testing.T) {
		// Go's HTTP/2 client sends one cookie per header field (RFC 9113
		// §8.2.3 crumbs), as browsers may; Envoy joins them with "; ".
		hits := s.Upstream.Hits()
		resp := s.sendH2C(t, acme, "/docs/1", header{"Cookie", `theme=dark; tenantgate=` + victim.Value + `; pref="a, b"`})
		seen := upstreamSaw(t, s, resp, hits)
		wantIdentity(t, seen, "acme", alice.Email, "member")
		if got := seen.Values("cookie"); !slices.Equal(got, []string{`theme=dark; pref="a, b"`}) {
			t.Errorf("upstream cookie %q, want the app's two cookies", got)
		}

		hits = s.Upstream.Hits()
		resp = s.sendH2C(t, acme, "/docs/1", header{"Cookie", planted}, header{"Accept", "application/json"})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("HTTP/2 with a planted session: want 401, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})
}

// TestInlineCookieSmuggling: in inline mode the sign-in pages run inside
// Check, and used to split the Cookie header on commas too. A sibling could
// then plant its own pre-auth (CSRF) cookie and post the sign-in form with
// its own csrf token and password: login CSRF, the victim's browser signed
// in to the attacker's account.
func TestInlineCookieSmuggling(t *testing.T) {
	s := startInlineStack(t)
	acme := "acme." + baseDomain
	// The attacker loads the sign-in page itself: a pre-auth cookie and
	// the csrf token bound to it.
	cookies, csrf := s.loginPage(t, acme)
	var preauth string
	for _, c := range cookies {
		if c.Name == "tenantgate-csrf" {
			preauth = c.Value
		}
	}
	if preauth == "" {
		t.Fatalf("no pre-auth cookie in %v", cookies)
	}
	form := url.Values{"email": {bob.Email}, "password": {bob.Password}, "rd": {"/"}, "csrf": {csrf}}
	// Browsers store and send commas and spaces in cookie values, quoted
	// or not.
	for _, value := range []string{"junk, tenantgate-csrf=" + preauth, `"a, tenantgate-csrf=` + preauth + `, b"`} {
		planted := &http.Cookie{Name: "x", Value: value}
		resp := s.postLogin(t, acme, []*http.Cookie{planted}, form)
		if resp.StatusCode != http.StatusForbidden || resp.cookie("tenantgate") != nil {
			t.Errorf("sign-in with the planted cookie x=%s: want 403 and no session, got\n%s", value, resp)
		}
	}
	// The same form with the pre-auth cookie as its own pair is the
	// attacker's own browser: it signs in.
	resp := s.postLogin(t, acme, cookies, form)
	if resp.StatusCode != http.StatusSeeOther || resp.cookie("tenantgate") == nil {
		t.Errorf("sign-in with the pre-auth cookie: want 303 and a session, got\n%s", resp)
	}
}

// TestEnvoyUpstreamCookies is issue 7 item 9 through the real Envoy: the
// app never receives tenantgate's cookies (the session is a bearer
// credential its logs and bugs could leak), its own cookies pass byte for
// byte, and a tenant with passSessionCookie gets its session cookie too.
func TestEnvoyUpstreamCookies(t *testing.T) {
	s := startHarness(t, stack.Tenants(passCookieTenants, fixtureMemberships...))
	acme := "acme." + baseDomain
	globex := "globex." + baseDomain
	session := s.signIn(t, acme, alice)
	bearer := header{"Authorization", "Bearer " + session.Value}

	tests := []struct {
		name    string
		host    string
		target  string
		headers []header
		want    []string // the upstream's Cookie header lines
	}{
		{"the session is taken out, the app's cookies kept", acme, "/docs/1",
			[]header{{"Cookie", `app=1; tenantgate=` + session.Value + `; pref="a, b";x=%20y`}}, []string{`app=1; pref="a, b";x=%20y`}},
		{"the session alone: no Cookie header", acme, "/docs/1",
			[]header{{"Cookie", "tenantgate=" + session.Value}}, nil},
		{"sign-in cookies are taken out too", acme, "/public/x",
			[]header{{"Cookie", "tenantgate-csrf=c; app=1; tg-attempt-abc=a; tg-idt=i; tenantgate-global=g"}}, []string{"app=1"}},
		{"on an anonymous path as well", acme, "/public/x",
			[]header{{"Cookie", "a=1; tenantgate=" + session.Value}}, []string{"a=1"}},
		{"nothing of tenantgate's: untouched", acme, "/docs/1",
			[]header{bearer, {"Cookie", "a=1;b=2 ;  c"}}, []string{"a=1;b=2 ;  c"}},
		{"nothing of tenantgate's, two lines: untouched", acme, "/docs/1",
			[]header{bearer, {"Cookie", "a=1"}, {"Cookie", "b=2"}}, []string{"a=1", "b=2"}},
		// Envoy hands tenantgate several HTTP/1 Cookie lines joined with
		// ","; a session on a later line is not read, and is still taken
		// out of what the app gets.
		{"a session on a second Cookie line", acme, "/docs/1",
			[]header{bearer, {"Cookie", "a=1"}, {"Cookie", "tenantgate=" + session.Value + "; b=2"}}, []string{"a=1; b=2"}},
		{"a session on a second Cookie line, anonymous path", acme, "/public/x",
			[]header{{"Cookie", "a=1"}, {"Cookie", "tenantgate=" + session.Value}}, []string{"a=1"}},
		{"path tenancy", baseDomain, "/org/acme/public/x",
			[]header{{"Cookie", "tenantgate.acme=t; app=1"}}, []string{"app=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := s.Upstream.Hits()
			resp := s.send(t, request{host: tc.host, target: tc.target, headers: tc.headers})
			seen := upstreamSaw(t, s, resp, hits)
			if got := seen.Values("cookie"); !slices.Equal(got, tc.want) {
				t.Errorf("upstream Cookie %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("passSessionCookie passes the session, not the sign-in cookies", func(t *testing.T) {
		bobGlobex := s.signIn(t, globex, bob)
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: globex, target: "/docs/1", headers: []header{
			{"Cookie", "app=1; tenantgate-csrf=c; tenantgate=" + bobGlobex.Value},
		}})
		seen := upstreamSaw(t, s, resp, hits)
		wantIdentity(t, seen, "globex", bob.Email, "member")
		if got, want := seen.Values("cookie"), []string{"app=1; tenantgate=" + bobGlobex.Value}; !slices.Equal(got, want) {
			t.Errorf("upstream Cookie %q, want %q", got, want)
		}
	})
}

// sendH2C sends a GET to Envoy over cleartext HTTP/2 with prior knowledge,
// as Go's HTTP/2 client sends it (each cookie its own header field).
func (s *harness) sendH2C(t *testing.T, host, target string, hs ...header) *response {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+s.EnvoyAddr+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for _, h := range hs {
		req.Header.Add(h.name, h.value)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("HTTP/2 GET %s%s: %v", host, target, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 GET %s%s: answered over %s", host, target, resp.Proto)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("HTTP/2 GET %s%s: read body: %v", host, target, err)
	}
	return &response{Response: resp, body: body}
}
