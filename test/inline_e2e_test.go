package test

import (
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestShippedInlineEnvoyConfigValidates checks envoy/envoy-inline.yaml with
// Envoy itself.
func TestShippedInlineEnvoyConfigValidates(t *testing.T) {
	root := proc.RepoRoot(t)
	envoyBin := proc.Envoy(t)
	cmd := exec.Command(envoyBin, "--mode", "validate", "-c", filepath.Join(root, "envoy", "envoy-inline.yaml"), "-l", "warning")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("envoy --mode validate envoy-inline.yaml: %v\n%s", err, out)
	}
}

// startInlineStack is startStack for inline mode: tenantgate serve with
// inline-auth set in its config file, and Envoy running the shipped
// envoy/envoy-inline.yaml, which has no route to tenantgate's HTTP port,
// changed by edits when given.
func startInlineStack(t *testing.T, edits ...func(config string) string) *harness {
	t.Helper()
	return startHarness(t, stack.EnvoyConfig("envoy-inline.yaml", edits...), stack.ServeConfig("inline-auth: true\n"))
}

// TestInlineEndToEnd drives sign-in through a real Envoy that only ever
// calls Check: every /_auth/ page, form and redirect comes back as
// tenantgate's denied_response. The subtests share one stack and run in
// order; the last stops tenantgate.
func TestInlineEndToEnd(t *testing.T) {
	s := startInlineStack(t)
	acme := "acme." + baseDomain
	globex := "globex." + baseDomain
	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	var aliceSession *http.Cookie

	t.Run("a browser without a session is sent to the login page", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/report?year=2026", headers: []header{{"Accept", "text/html"}}})
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("want 302, got\n%s", resp)
		}
		loc := mustParseURL(t, resp.Header.Get("Location"))
		if (loc.Host != "" && loc.Host != acme) || loc.Path != "/_auth/login" || loc.Query().Get("rd") != "/docs/report?year=2026" {
			t.Errorf("Location = %q, want /_auth/login?rd=/docs/report?year=2026", loc)
		}
		noUpstream(t, s, hits)
	})

	must("the login page is served by Check", func(t *testing.T) {
		for _, req := range []request{
			{host: acme, target: "/_auth/login?rd=%2Fdashboard"},
			{host: baseDomain, target: "/org/acme/_auth/login?rd=%2Forg%2Facme%2F"},
		} {
			hits := s.Upstream.Hits()
			req.headers = append([]header{{"Accept", "text/html"}}, spoofHeaders...)
			page := s.send(t, req)
			if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%s%s: want a 200 HTML page, got\n%s", req.host, req.target, page)
			}
			if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("%s%s: Content-Security-Policy %q", req.host, req.target, csp)
			}
			noStore(t, page)
			if page.cookie("tenantgate-csrf") == nil {
				t.Errorf("%s%s: no pre-auth cookie in %q", req.host, req.target, page.Header["Set-Cookie"])
			}
			csrfToken(t, page)
			noUpstream(t, s, hits)
		}

		hits := s.Upstream.Hits()
		head := s.send(t, request{method: http.MethodHead, host: acme, target: "/_auth/login"})
		if head.StatusCode != http.StatusOK || len(head.body) != 0 {
			t.Errorf("HEAD /_auth/login: want 200 without a body, got\n%s", head)
		}
		noUpstream(t, s, hits)
	})

	t.Run("refused sign-ins issue no session", func(t *testing.T) {
		cookies, csrf := s.loginPage(t, acme)
		for _, tc := range []struct {
			name   string
			form   url.Values
			status int
		}{
			{"wrong password", url.Values{"email": {alice.Email}, "password": {"not-the-password"}, "rd": {"/"}, "csrf": {csrf}}, http.StatusUnauthorized},
			{"no csrf token", url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/"}}, http.StatusForbidden},
			{"csrf token of another page", url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/"}, "csrf": {csrf + "x"}}, http.StatusForbidden},
		} {
			hits := s.Upstream.Hits()
			resp := s.postLogin(t, acme, cookies, tc.form)
			if resp.StatusCode != tc.status || resp.cookie("tenantgate") != nil {
				t.Errorf("%s: want %d and no session cookie, got\n%s", tc.name, tc.status, resp)
			}
			if strings.Contains(string(resp.body), "not-the-password") {
				t.Errorf("%s: the page echoes the password", tc.name)
			}
			noUpstream(t, s, hits)
		}
	})

	must("password sign-in with CSRF sets the session cookie", func(t *testing.T) {
		hits := s.Upstream.Hits()
		aliceSession = s.signIn(t, acme, alice)
		noUpstream(t, s, hits)
	})

	t.Run("the session opens the app with tenantgate's identity only", func(t *testing.T) {
		hits := s.Upstream.Hits()
		hs := append([]header{cookieHeader(aliceSession), {"Accept", "text/html"}}, spoofHeaders...)
		resp := s.send(t, request{host: acme, target: "/dashboard", headers: hs})
		seen := upstreamSaw(t, s, resp, hits)
		wantIdentity(t, seen, "acme", alice.Email, "member")
	})

	t.Run("a session is refused on another tenant's host", func(t *testing.T) {
		for _, hs := range [][]header{
			{cookieHeader(aliceSession)},
			{cookieHeader(aliceSession), {"Accept", "text/html"}, {"x-tenant-id", "acme"}},
			{{"Authorization", "Bearer " + aliceSession.Value}},
		} {
			hits := s.Upstream.Hits()
			resp := s.send(t, request{host: globex, target: "/docs/1", headers: hs})
			if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
				t.Errorf("acme session on globex: want 403 tenant_mismatch, got\n%s", resp)
			}
			noUpstream(t, s, hits)
		}
		// Nor can it sign in there: alice is no member of globex.
		cookies, csrf := s.loginPage(t, globex)
		resp := s.postLogin(t, globex, append(cookies, aliceSession), url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/"}, "csrf": {csrf}})
		if resp.StatusCode != http.StatusUnauthorized || resp.cookie("tenantgate") != nil {
			t.Errorf("alice signing in to globex: want 401 and no session, got\n%s", resp)
		}
	})

	t.Run("one person in two tenants gets one session per tenant", func(t *testing.T) {
		bobGlobex := s.signIn(t, globex, bob)
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: globex, target: "/", headers: []header{cookieHeader(bobGlobex)}})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "globex", bob.Email, "member")
		hits = s.Upstream.Hits()
		resp = s.send(t, request{host: acme, target: "/", headers: []header{cookieHeader(bobGlobex)}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
			t.Errorf("bob's globex session on acme: want 403 tenant_mismatch, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("a signed-in /_auth/ request never reaches the app", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/_auth/jwks.json", headers: []header{cookieHeader(aliceSession)}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), `"keys"`) {
			t.Errorf("GET /_auth/jwks.json: want the tenant's JWKS, got\n%s", resp)
		}
		resp = s.send(t, request{host: acme, target: "/_auth/nope", headers: []header{cookieHeader(aliceSession)}})
		if resp.StatusCode != http.StatusNotFound || resp.errorCode() != "not_found" {
			t.Errorf("GET /_auth/nope: want tenantgate's 404, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("sign-in bodies arrive whole and bounded; other bodies are not buffered", func(t *testing.T) {
		// 40 KiB is over the listener's 32 KiB connection buffer: the
		// form's csrf field, last, still arrives, so the sign-in succeeds.
		cookies, csrf := s.loginPage(t, acme)
		form := "pad=" + strings.Repeat("a", 40<<10) + "&" +
			url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/x"}, "csrf": {csrf}}.Encode()
		resp := s.send(t, request{method: http.MethodPost, host: acme, target: "/_auth/login", body: form, headers: []header{
			cookieHeader(cookies...), {"Content-Type", "application/x-www-form-urlencoded"},
			{"Origin", "http://" + acme}, {"Sec-Fetch-Site", "same-origin"},
		}})
		if resp.StatusCode != http.StatusSeeOther || resp.cookie("tenantgate") == nil {
			t.Errorf("40 KiB sign-in form: want 303 with a session, got\n%s", resp)
		}

		// Over the route's 256 KiB: Envoy's 413, before any Check.
		hits := s.Upstream.Hits()
		resp = s.send(t, request{method: http.MethodPost, host: acme, target: "/_auth/login", body: strings.Repeat("a", 300<<10),
			headers: []header{{"Content-Type", "application/x-www-form-urlencoded"}}})
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("300 KiB sign-in POST: want 413, got\n%s", resp)
		}
		noUpstream(t, s, hits)

		// The app's own POSTs are checked without their body: a 300 KiB
		// upload passes through to it.
		hits = s.Upstream.Hits()
		resp = s.send(t, request{method: http.MethodPost, host: acme, target: "/upload", body: strings.Repeat("b", 300<<10),
			headers: []header{cookieHeader(aliceSession), {"Content-Type", "application/octet-stream"}}})
		seen := upstreamSaw(t, s, resp, hits)
		if got := seen.Values("content-length"); len(got) != 1 || got[0] != fmt.Sprint(300<<10) {
			t.Errorf("upload reached the app with content-length %q", got)
		}
	})

	t.Run("logout clears the cookie and kills the session", func(t *testing.T) {
		session := s.signIn(t, acme, alice)
		page := s.send(t, request{host: acme, target: "/_auth/logout", headers: []header{cookieHeader(session), {"Accept", "text/html"}}})
		if page.StatusCode != http.StatusOK {
			t.Fatalf("GET /_auth/logout: want 200, got\n%s", page)
		}
		csrf := csrfToken(t, page)
		jar := append([]*http.Cookie{session}, page.Cookies()...)
		hits := s.Upstream.Hits()
		resp := s.send(t, request{
			method: http.MethodPost, host: acme, target: "/_auth/logout",
			headers: []header{
				cookieHeader(jar...),
				{"Content-Type", "application/x-www-form-urlencoded"},
				{"Origin", "http://" + acme},
				{"Sec-Fetch-Site", "same-origin"},
			},
			body: url.Values{"csrf": {csrf}}.Encode(),
		})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /_auth/logout: want 303, got\n%s", resp)
		}
		if c := resp.cookie("tenantgate"); c == nil || c.MaxAge >= 0 {
			t.Errorf("the session cookie is not cleared: %q", resp.Header["Set-Cookie"])
		}
		// Every Set-Cookie of the handler's answer is its own header line
		// (the session and the ID-token hint cookie are both cleared).
		if n := len(resp.Header.Values("Set-Cookie")); n < 2 {
			t.Errorf("want each cleared cookie in its own Set-Cookie, got %q", resp.Header["Set-Cookie"])
		}
		noUpstream(t, s, hits)

		nav := s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(session), {"Accept", "text/html"}}})
		if nav.StatusCode != http.StatusFound {
			t.Errorf("old cookie after logout: want 302 to login, got\n%s", nav)
		}
		api := s.send(t, request{host: acme, target: "/docs/1", headers: []header{{"Authorization", "Bearer " + session.Value}}})
		if api.StatusCode != http.StatusUnauthorized {
			t.Errorf("old token after logout: want 401, got\n%s", api)
		}
		noUpstream(t, s, hits)
		// The other session is untouched.
		resp = s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(aliceSession)}})
		upstreamSaw(t, s, resp, hits)
	})

	t.Run("with tenantgate down sign-in fails closed", func(t *testing.T) {
		s.Tenantgate.Stop()
		hits := s.Upstream.Hits()
		for _, req := range []request{
			{host: acme, target: "/_auth/login", headers: []header{{"Accept", "text/html"}}},
			{method: http.MethodPost, host: acme, target: "/_auth/login", body: "email=a&password=b", headers: []header{{"Content-Type", "application/x-www-form-urlencoded"}}},
		} {
			resp := s.send(t, req)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s %s with tenantgate down: want 503, got\n%s", req.method, req.target, resp)
			}
		}
		noUpstream(t, s, hits)
	})
}

// replaceOnce replaces the one occurrence of old in s, failing the test if
// there is not exactly one: an edit of the shipped config must not silently
// stop applying.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("envoy-inline.yaml: %d occurrences of %q, want 1", n, old)
	}
	return strings.Replace(s, old, new, 1)
}

// TestInlineMeshBodyShapes runs inline mode with the body settings a mesh
// gives: Istio's includeRequestBodyInCheck is one filter-wide
// with_request_body for every request (here 16 KiB, partial messages
// allowed so large app uploads still pass; with partial messages allowed
// the limit must stay under the listener's 32 KiB connection buffer, which
// Envoy then does not raise), and a route may send no body at all. tenantgate must serve whole sign-in bodies, refuse truncated or
// missing ones with 400 without running the handler, and ignore the app's.
func TestInlineMeshBodyShapes(t *testing.T) {
	s := startInlineStack(t, func(c string) string {
		// Filter-wide body, as Istio's provider setting generates.
		c = replaceOnce(t, c, "                      validate_mutations: true\n",
			"                      validate_mutations: true\n"+
				"                      with_request_body: {max_request_bytes: 16384, allow_partial_message: true, pack_as_bytes: true}\n")
		// No per-route body settings on the tenant-host sign-in POSTs.
		c = replaceOnce(t, c, "                                with_request_body:\n"+
			"                                  max_request_bytes: 262144\n"+
			"                                  allow_partial_message: false\n"+
			"                                  pack_as_bytes: true\n", "")
		// And no body at all for path tenancy's sign-in POSTs.
		return replaceOnce(t, c, "                            envoy.filters.http.ext_authz: *signin_post\n",
			"                            envoy.filters.http.ext_authz:\n"+
				"                              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n"+
				"                              check_settings: {disable_request_body_buffering: true}\n")
	})
	acme := "acme." + baseDomain

	session := s.signIn(t, acme, alice)

	t.Run("a truncated sign-in body is refused before the handler", func(t *testing.T) {
		cookies, csrf := s.loginPage(t, acme)
		form := "pad=" + strings.Repeat("a", 100<<10) + "&" +
			url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/"}, "csrf": {csrf}}.Encode()
		hits := s.Upstream.Hits()
		resp := s.send(t, request{method: http.MethodPost, host: acme, target: "/_auth/login", body: form, headers: []header{
			cookieHeader(cookies...), {"Content-Type", "application/x-www-form-urlencoded"},
			{"Origin", "http://" + acme}, {"Sec-Fetch-Site", "same-origin"},
		}})
		if resp.StatusCode != http.StatusBadRequest || resp.errorCode() != "bad_request" || resp.cookie("tenantgate") != nil {
			t.Errorf("100 KiB sign-in form, 16 KiB sent: want 400 bad_request and no session, got\n%s", resp)
		}
		jsonDenial(t, resp)
		noUpstream(t, s, hits)
	})

	t.Run("a sign-in POST whose body was not sent is refused", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{method: http.MethodPost, host: baseDomain, target: "/org/acme/_auth/login",
			body:    url.Values{"email": {alice.Email}, "password": {alice.Password}, "csrf": {"x"}}.Encode(),
			headers: []header{{"Content-Type", "application/x-www-form-urlencoded"}, {"Origin", "http://" + baseDomain}, {"Sec-Fetch-Site", "same-origin"}}})
		if resp.StatusCode != http.StatusBadRequest || resp.errorCode() != "bad_request" {
			t.Errorf("sign-in POST without its body: want 400 bad_request, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("the app's large POSTs pass, their partial body ignored", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{method: http.MethodPost, host: acme, target: "/upload", body: strings.Repeat("b", 300<<10),
			headers: []header{cookieHeader(session), {"Content-Type", "application/octet-stream"}}})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", alice.Email, "member")
	})
}
