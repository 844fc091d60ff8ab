package test

import (
	"html"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// identityHeaders are the headers only tenantgate may set.
var identityHeaders = []string{"x-tenant-id", "x-user-id", "x-user-email", "x-user-roles", "x-auth-method"}

// spoofHeaders is a client's attempt to claim an identity: other tenants,
// mixed case, duplicates, and headers tenantgate may not set at all.
var spoofHeaders = []header{
	{"x-tenant-id", "globex"},
	{"X-Tenant-Id", "globex2"},
	{"X-TENANT-ID", "evil"},
	{"x-user-id", "1"},
	{"X-User-Email", "mallory@evil.test"},
	{"x-user-email", "root@acme.test"},
	{"x-user-roles", "admin"},
	{"x-user-roles", "superuser"},
	{"x-auth-method", "saml"},
	{"x-tenant-plan", "enterprise"},
	{"x-user-extra", "1"},
	{"x-auth-mfa", "true"},
}

// TestShippedEnvoyConfigValidates checks envoy/envoy.yaml with Envoy itself.
func TestShippedEnvoyConfigValidates(t *testing.T) {
	root := proc.RepoRoot(t)
	envoyBin := proc.Envoy(t)
	cmd := exec.Command(envoyBin, "--mode", "validate", "-c", filepath.Join(root, "envoy", "envoy.yaml"), "-l", "warning")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("envoy --mode validate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("envoy --mode validate did not say OK:\n%s", out)
	}
}

// TestEnvoyEndToEnd drives the CONTRACT.md Check table through a real Envoy
// with the shipped config. The subtests share one stack and run in order:
// later ones use the sessions earlier ones created, and the last one stops
// tenantgate.
func TestEnvoyEndToEnd(t *testing.T) {
	s := startHarness(t)
	acme := "acme." + baseDomain
	globex := "globex." + baseDomain

	var aliceSession *http.Cookie
	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	t.Run("browser navigation without a session is sent to the tenant's login page", func(t *testing.T) {
		for _, req := range []request{
			{host: acme, target: "/"},
			{host: acme, target: "/docs/report?year=2026"},
			{method: http.MethodHead, host: acme, target: "/docs/1"},
		} {
			target := req.target
			req.headers = []header{{"Accept", "text/html,application/xhtml+xml"}}
			hits := s.Upstream.Hits()
			resp := s.send(t, req)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("GET %s: want 302, got\n%s", target, resp)
			}
			loc := mustParseURL(t, resp.Header.Get("Location"))
			if loc.Host != "" && loc.Host != acme {
				t.Errorf("GET %s: Location %q leaves the tenant's host", target, loc)
			}
			if loc.Path != "/_auth/login" {
				t.Errorf("GET %s: Location %q, want /_auth/login?rd=…", target, loc)
			}
			path := strings.SplitN(target, "?", 2)[0]
			if rd := loc.Query().Get("rd"); !strings.HasPrefix(rd, path) {
				t.Errorf("GET %s: rd = %q, want the requested path", target, rd)
			}
			noStore(t, resp)
			noUpstream(t, s, hits)
		}
	})

	t.Run("API call without a session gets 401 JSON", func(t *testing.T) {
		for _, req := range []request{
			{host: acme, target: "/api/items", headers: []header{{"Accept", "application/json"}}},
			{host: acme, target: "/api/items"},
			// A POST is never a navigation, whatever it accepts.
			{method: http.MethodPost, host: acme, target: "/", headers: []header{{"Accept", "text/html"}}},
		} {
			hits := s.Upstream.Hits()
			resp := s.send(t, req)
			if resp.StatusCode != http.StatusUnauthorized || resp.errorCode() != "unauthenticated" {
				t.Fatalf("%s %s: want 401 unauthenticated, got\n%s", req.method, req.target, resp)
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), `Bearer realm="acme"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			jsonDenial(t, resp)
			noUpstream(t, s, hits)
		}
	})

	must("password sign-in through Envoy sets a host-only session cookie", func(t *testing.T) {
		aliceSession = s.signIn(t, acme, alice)
	})

	t.Run("refused sign-ins issue no session", func(t *testing.T) {
		cookies, csrf := s.loginPage(t, acme)
		good := url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/"}, "csrf": {csrf}}
		wrong := url.Values{"email": {alice.Email}, "password": {"not-the-password"}, "rd": {"/"}, "csrf": {csrf}}
		noCSRF := url.Values{"email": {alice.Email}, "password": {alice.Password}, "rd": {"/"}}
		tests := []struct {
			name  string
			form  url.Values
			extra []header
		}{
			{"wrong password", wrong, nil},
			{"no csrf token", noCSRF, nil},
			{"sibling tenant origin", good, []header{{"Origin", "http://" + globex}, {"Sec-Fetch-Site", "same-site"}}},
			{"cross-site", good, []header{{"Origin", "https://evil.test"}, {"Sec-Fetch-Site", "cross-site"}}},
		}
		for _, tc := range tests {
			resp := s.postLogin(t, acme, cookies, tc.form, tc.extra...)
			if resp.StatusCode < 400 || resp.cookie("tenantgate") != nil {
				t.Errorf("%s: want a refusal and no session cookie, got\n%s", tc.name, resp)
			}
			if tc.name == "wrong password" && (resp.StatusCode != http.StatusUnauthorized ||
				!strings.Contains(strings.ToLower(string(resp.body)), "invalid email or password")) {
				t.Errorf("wrong password: want 401 saying only \"invalid email or password\", got\n%s", resp)
			}
		}
	})

	t.Run("upstream sees exactly tenantgate's identity, whatever the client sent", func(t *testing.T) {
		for _, creds := range []struct {
			name string
			h    header
		}{
			{"cookie", cookieHeader(aliceSession)},
			{"bearer", header{"Authorization", "Bearer " + aliceSession.Value}},
		} {
			t.Run(creds.name, func(t *testing.T) {
				hits := s.Upstream.Hits()
				hs := append([]header{creds.h, {"Accept", "application/json"}}, spoofHeaders...)
				resp := s.send(t, request{host: acme, target: "/docs/1", headers: hs})
				seen := upstreamSaw(t, s, resp, hits)
				wantIdentity(t, seen, "acme", alice.Email, "member")
				if seen.Path != "/docs/1" {
					t.Errorf("upstream path = %q, want /docs/1", seen.Path)
				}
			})
		}
	})

	t.Run("Envoy's access log names the tenant and user tenantgate resolved", func(t *testing.T) {
		// The access log lines of the allowed requests above carry the
		// dynamic metadata tenantgate returned (the harness has Envoy flush
		// its log every 50ms).
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(s.Envoy.Output(), `"tenant_id":"acme"`) {
			if time.Now().After(deadline) {
				t.Fatalf("no access log line with tenant_id acme in Envoy's output:\n%s", s.Envoy.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("a session is refused on another tenant's host before the upstream", func(t *testing.T) {
		for _, req := range []request{
			{host: globex, target: "/docs/1", headers: []header{cookieHeader(aliceSession)}},
			{host: globex, target: "/docs/1", headers: []header{cookieHeader(aliceSession), {"Accept", "text/html"}}},
			{host: globex, target: "/docs/1", headers: []header{{"Authorization", "Bearer " + aliceSession.Value}}},
			// Spoofing the tenant header does not help.
			{host: globex, target: "/docs/1", headers: []header{cookieHeader(aliceSession), {"x-tenant-id", "acme"}}},
		} {
			hits := s.Upstream.Hits()
			resp := s.send(t, req)
			if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
				t.Errorf("acme session on %s: want 403 tenant_mismatch, got\n%s", req.host, resp)
			}
			jsonDenial(t, resp)
			noUpstream(t, s, hits)
		}
	})

	t.Run("one person in two tenants gets one session per tenant", func(t *testing.T) {
		bobAcme := s.signIn(t, acme, bob)
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/", headers: []header{cookieHeader(bobAcme), {"x-tenant-id", "globex"}}})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", bob.Email, "member")

		hits = s.Upstream.Hits()
		resp = s.send(t, request{host: globex, target: "/", headers: []header{cookieHeader(bobAcme)}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
			t.Errorf("bob's acme session on globex: want 403 tenant_mismatch, got\n%s", resp)
		}
		noUpstream(t, s, hits)

		bobGlobex := s.signIn(t, globex, bob)
		hits = s.Upstream.Hits()
		resp = s.send(t, request{host: globex, target: "/", headers: []header{cookieHeader(bobGlobex)}})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "globex", bob.Email, "member")

		hits = s.Upstream.Hits()
		resp = s.send(t, request{host: acme, target: "/", headers: []header{cookieHeader(bobGlobex)}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
			t.Errorf("bob's globex session on acme: want 403 tenant_mismatch, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("anonymous rule passes the tenant but no user", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/public/x", headers: spoofHeaders})
		seen := upstreamSaw(t, s, resp, hits)
		if got := seen.Values("x-tenant-id"); !slices.Equal(got, []string{"acme"}) {
			t.Errorf("x-tenant-id = %q, want exactly [acme]", got)
		}
		for name := range seen.Headers {
			if strings.HasPrefix(name, "x-user-") || name == "x-auth-method" || name == "x-auth-mfa" || name == "x-tenant-plan" {
				t.Errorf("anonymous request reached the upstream with %s: %q", name, seen.Headers[name])
			}
		}
	})

	t.Run("permission rule: members are forbidden, admins pass", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/admin/users", headers: []header{cookieHeader(aliceSession), {"x-user-roles", "admin"}}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "forbidden" {
			t.Errorf("member on /admin/: want 403 forbidden, got\n%s", resp)
		}
		jsonDenial(t, resp)
		noUpstream(t, s, hits)

		carolSession := s.signIn(t, acme, carol)
		hits = s.Upstream.Hits()
		resp = s.send(t, request{host: acme, target: "/admin/users", headers: []header{cookieHeader(carolSession)}})
		seen := upstreamSaw(t, s, resp, hits)
		if roles := seen.Values("x-user-roles"); len(roles) != 1 || !slices.Contains(strings.Split(roles[0], ","), "admin") {
			t.Errorf("admin's x-user-roles = %q, want one value listing admin", roles)
		}
	})

	t.Run("path tricks never turn a protected path into an anonymous one", func(t *testing.T) {
		tests := []struct {
			target string
			want   int // 0: an anonymous pass to a /public/ path is right
		}{
			{"/public/../private", http.StatusUnauthorized},
			{"/public/%2e%2e/private", http.StatusUnauthorized},
			{"/public/%2E%2E/private", http.StatusUnauthorized},
			{"/public/.%2e/private", http.StatusUnauthorized},
			{"/public/%2e%2e/admin/", http.StatusUnauthorized},
			{"/./public/../private", http.StatusUnauthorized},
			{"/public;x/../private", http.StatusUnauthorized},
			{"/public/../../../private", http.StatusUnauthorized},
			{"/%2F", http.StatusBadRequest},
			{"/public/%2Fprivate", http.StatusBadRequest},
			{"/public/..%2fprivate", http.StatusBadRequest},
			{"/public%2F..%2Fprivate", http.StatusBadRequest},
			{"/public/..%5cprivate", http.StatusBadRequest},
			{"/public/%00/../private", http.StatusBadRequest},
			{"//public/x", 0},
			{"/public//x", 0},
			{"/PUBLIC/x", http.StatusUnauthorized},
		}
		for _, tc := range tests {
			hits := s.Upstream.Hits()
			resp := s.send(t, request{host: acme, target: tc.target, headers: []header{{"Accept", "application/json"}}})
			reached := s.Upstream.Hits() > hits
			if reached {
				seen := lastUpstream(t, s)
				if !strings.HasPrefix(seen.Path, "/public/") || len(seen.Values("x-user-id")) > 0 {
					t.Errorf("%s reached the upstream anonymously as %q", tc.target, seen.Path)
				}
			}
			if tc.want == http.StatusBadRequest && len(resp.body) > 0 {
				// Encoded slashes, backslashes and NUL are Envoy's to refuse
				// (path_with_escaped_slashes_action, URL parsing) before any
				// Check: its local 400 has no body.
				t.Errorf("%s: want Envoy's own 400 before any Check, got\n%s", tc.target, resp)
			}
			switch {
			case tc.want == 0:
				if resp.StatusCode != http.StatusOK || !reached {
					t.Errorf("%s: want an anonymous pass to /public/, got\n%s", tc.target, resp)
				}
			case resp.StatusCode != tc.want:
				t.Errorf("%s: want %d, got\n%s", tc.target, tc.want, resp)
			}
		}

		// Signed in as a member, dot segments do not dodge the admin rule.
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/public/%2e%2e/admin/x", headers: []header{cookieHeader(aliceSession)}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "forbidden" {
			t.Errorf("member on /public/%%2e%%2e/admin/x: want 403 forbidden, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("underscored header names are refused by Envoy", func(t *testing.T) {
		for _, hs := range [][]header{
			{{"x_tenant_id", "globex"}},
			{cookieHeader(aliceSession), {"x_tenant_id", "globex"}},
			{cookieHeader(aliceSession), {"X_User_Roles", "admin"}},
		} {
			hits := s.Upstream.Hits()
			resp := s.send(t, request{host: acme, target: "/public/x", headers: hs})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("headers %v: want 400, got\n%s", hs, resp)
			}
			noUpstream(t, s, hits)
		}
	})

	t.Run("oversized request headers are refused by Envoy", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/public/x", headers: []header{{"X-Big", strings.Repeat("a", 70<<10)}}})
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("70 KiB header: want 431, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("spoofed identity never reaches the sign-in pages", func(t *testing.T) {
		for _, req := range []request{
			{host: acme, target: "/_auth/login?rd=%2F"},
			{host: baseDomain, target: "/org/acme/_auth/login?rd=%2F"},
		} {
			before := len(s.SignIn.Requests())
			hits := s.Upstream.Hits()
			req.headers = append([]header{{"Accept", "text/html"}, {"X-Forwarded-Host", globex}}, spoofHeaders...)
			resp := s.send(t, req)
			if resp.StatusCode >= 500 {
				t.Errorf("%s %s: got\n%s", req.host, req.target, resp)
			}
			got := s.SignIn.Requests()
			if len(got) != before+1 {
				t.Fatalf("%s %s: %d requests reached tenantgate's HTTP port, want 1", req.host, req.target, len(got)-before)
			}
			seen := got[len(got)-1]
			for name, v := range seen.Headers {
				if strings.HasPrefix(name, "x-tenant-") || strings.HasPrefix(name, "x-user-") || name == "x-auth-method" || name == "x-forwarded-host" {
					t.Errorf("%s %s: sign-in port received %s: %q", req.host, req.target, name, v)
				}
			}
			noUpstream(t, s, hits)
		}
	})

	t.Run("forwarding headers cannot choose the tenant", func(t *testing.T) {
		forwarded := []header{
			{"X-Forwarded-Host", globex},
			{"Forwarded", "host=" + globex},
			{"X-Original-Host", globex},
			{"X-Forwarded-Proto", "https"},
			{"X-Envoy-Internal", "true"},
		}
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: append([]header{cookieHeader(aliceSession)}, forwarded...)})
		seen := upstreamSaw(t, s, resp, hits)
		wantIdentity(t, seen, "acme", alice.Email, "member")
		for _, h := range []string{"x-forwarded-host", "forwarded", "x-original-host", "x-envoy-internal"} {
			if v := seen.Values(h); len(v) > 0 {
				t.Errorf("upstream received client-sent %s: %q", h, v)
			}
		}
		// Envoy is the edge: the scheme is the connection's, not the client's.
		if v := seen.Values("x-forwarded-proto"); !slices.Equal(v, []string{"http"}) {
			t.Errorf("upstream got x-forwarded-proto = %q, want [http] (the listener's scheme)", v)
		}

		hits = s.Upstream.Hits()
		resp = s.send(t, request{host: globex, target: "/docs/1", headers: []header{cookieHeader(aliceSession), {"X-Forwarded-Host", acme}, {"Forwarded", "host=" + acme}}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
			t.Errorf("acme session on globex with X-Forwarded-Host acme: want 403 tenant_mismatch, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("host spellings of the same tenant", func(t *testing.T) {
		for _, host := range []string{"ACME.App.Test", acme + ":8080", acme + "."} {
			hits := s.Upstream.Hits()
			resp := s.send(t, request{host: host, target: "/docs/1", headers: []header{cookieHeader(aliceSession)}})
			wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", alice.Email, "member")
		}
	})

	t.Run("unknown tenant host is 404 with no login page", func(t *testing.T) {
		for _, host := range []string{"nope." + baseDomain, "evil.test", "acme." + baseDomain + ".evil.test", baseDomain} {
			for _, accept := range []string{"application/json", "text/html"} {
				hits := s.Upstream.Hits()
				resp := s.send(t, request{host: host, target: "/docs/1", headers: []header{{"Accept", accept}, cookieHeader(aliceSession)}})
				if resp.StatusCode != http.StatusNotFound || resp.errorCode() != "unknown_tenant" {
					t.Errorf("Host %s (Accept %s): want 404 unknown_tenant, got\n%s", host, accept, resp)
				}
				jsonDenial(t, resp)
				noUpstream(t, s, hits)
			}
		}
	})

	t.Run("path tenancy on the apex host", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: baseDomain, target: "/org/acme/docs/1", headers: []header{{"Accept", "text/html"}}})
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("want 302, got\n%s", resp)
		}
		loc := mustParseURL(t, resp.Header.Get("Location"))
		if (loc.Host != "" && loc.Host != baseDomain) || loc.Path != "/org/acme/_auth/login" {
			t.Errorf("Location = %q, want /org/acme/_auth/login?rd=… on the apex host", loc)
		}
		noUpstream(t, s, hits)

		resp = s.send(t, request{host: baseDomain, target: "/org/nope/docs/1", headers: []header{{"Accept", "application/json"}}})
		if resp.StatusCode != http.StatusNotFound || resp.errorCode() != "unknown_tenant" {
			t.Errorf("/org/nope/: want 404 unknown_tenant, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("after logout the session is dead", func(t *testing.T) {
		session := s.signIn(t, acme, alice)
		page := s.send(t, request{host: acme, target: "/_auth/logout", headers: []header{cookieHeader(session), {"Accept", "text/html"}}})
		if page.StatusCode != http.StatusOK {
			t.Fatalf("GET /_auth/logout: want 200, got\n%s", page)
		}
		csrf := csrfToken(t, page)
		jar := append([]*http.Cookie{session}, page.Cookies()...)
		resp := s.send(t, request{
			method: http.MethodPost, host: acme, target: "/_auth/logout",
			headers: []header{
				cookieHeader(jar...),
				{"Content-Type", "application/x-www-form-urlencoded"},
				{"Origin", "http://" + acme},
				{"Sec-Fetch-Site", "same-origin"},
				{"Accept", "text/html"},
			},
			body: url.Values{"csrf": {csrf}}.Encode(),
		})
		if resp.StatusCode >= 400 {
			t.Fatalf("POST /_auth/logout: got\n%s", resp)
		}
		if c := resp.cookie("tenantgate"); c == nil || (c.MaxAge >= 0 && c.Value != "") {
			t.Errorf("POST /_auth/logout does not clear the session cookie: %v", resp.Header["Set-Cookie"])
		}

		hits := s.Upstream.Hits()
		nav := s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(session), {"Accept", "text/html"}}})
		if nav.StatusCode != http.StatusFound {
			t.Errorf("old cookie, browser: want 302 to login, got\n%s", nav)
		}
		api := s.send(t, request{host: acme, target: "/docs/1", headers: []header{{"Authorization", "Bearer " + session.Value}}})
		if api.StatusCode != http.StatusUnauthorized {
			t.Errorf("old token as bearer: want 401, got\n%s", api)
		}
		noUpstream(t, s, hits)
	})

	t.Run("with tenantgate down Envoy fails closed", func(t *testing.T) {
		s.Tenantgate.Stop()
		for _, req := range []request{
			{host: acme, target: "/docs/1", headers: []header{cookieHeader(aliceSession)}},
			{host: acme, target: "/public/x"},
			{host: acme, target: "/", headers: []header{{"Accept", "text/html"}}},
		} {
			hits := s.Upstream.Hits()
			resp := s.send(t, req)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s with tenantgate down: want 503 (status_on_error), got\n%s", req.target, resp)
			}
			noUpstream(t, s, hits)
		}
	})
}

// loginPage fetches host's sign-in page through Envoy and returns the
// pre-auth cookies it set and its csrf token.
func (s *harness) loginPage(t *testing.T, host string) ([]*http.Cookie, string) {
	t.Helper()
	page := s.send(t, request{host: host, target: "/_auth/login?rd=%2Fdashboard", headers: []header{{"Accept", "text/html"}}})
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s/_auth/login: want a 200 HTML page, got\n%s", host, page)
	}
	return page.Cookies(), csrfToken(t, page)
}

// postLogin posts the sign-in form to host through Envoy as a same-origin
// browser would, with the given cookies; extra headers replace the default
// Origin and Sec-Fetch-Site when given.
func (s *harness) postLogin(t *testing.T, host string, cookies []*http.Cookie, form url.Values, extra ...header) *response {
	t.Helper()
	hs := []header{
		cookieHeader(cookies...),
		{"Content-Type", "application/x-www-form-urlencoded"},
		{"Accept", "text/html"},
	}
	if len(extra) == 0 {
		extra = []header{{"Origin", "http://" + host}, {"Sec-Fetch-Site", "same-origin"}}
	}
	return s.send(t, request{method: http.MethodPost, host: host, target: "/_auth/login", headers: append(hs, extra...), body: form.Encode()})
}

// signIn runs the browser sign-in flow for u on host through Envoy and
// returns the session cookie, checking the contract's cookie attributes.
func (s *harness) signIn(t *testing.T, host string, u stack.User) *http.Cookie {
	t.Helper()
	cookies, csrf := s.loginPage(t, host)
	form := url.Values{"email": {u.Email}, "password": {u.Password}, "rd": {"/dashboard"}, "csrf": {csrf}}
	resp := s.postLogin(t, host, cookies, form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s/_auth/login as %s: want 303, got\n%s", host, u.Email, resp)
	}
	loc := mustParseURL(t, resp.Header.Get("Location"))
	if (loc.Host != "" && loc.Host != host) || loc.Path != "/dashboard" {
		t.Errorf("after sign-in, Location = %q, want /dashboard on %s", loc, host)
	}
	c := resp.cookie("tenantgate")
	if c == nil || c.Value == "" {
		t.Fatalf("POST %s/_auth/login: no tenantgate session cookie in %q", host, resp.Header["Set-Cookie"])
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || c.Path != "/" || c.Secure {
		t.Errorf("session cookie attributes: HttpOnly=%v SameSite=%v Domain=%q Path=%q Secure=%v; want HttpOnly, Lax, no Domain, Path=/, not Secure (insecure mode)",
			c.HttpOnly, c.SameSite, c.Domain, c.Path, c.Secure)
	}
	return c
}

// inputTag matches an HTML <input> element.
var inputTag = regexp.MustCompile(`(?is)<input\b[^>]*>`)

// attr matches one name="value" attribute.
var attr = regexp.MustCompile(`(?is)\b([a-z-]+)\s*=\s*"([^"]*)"`)

// csrfToken returns the value of the page's csrf form field.
func csrfToken(t *testing.T, page *response) string {
	t.Helper()
	for _, tag := range inputTag.FindAllString(string(page.body), -1) {
		attrs := map[string]string{}
		for _, m := range attr.FindAllStringSubmatch(tag, -1) {
			attrs[strings.ToLower(m[1])] = html.UnescapeString(m[2])
		}
		if attrs["name"] == "csrf" && attrs["value"] != "" {
			return attrs["value"]
		}
	}
	t.Fatalf("no csrf field in the page:\n%s", page)
	return ""
}

// cookieHeader is the Cookie request header carrying cs.
func cookieHeader(cs ...*http.Cookie) header {
	pairs := make([]string, 0, len(cs))
	for _, c := range cs {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	return header{"Cookie", strings.Join(pairs, "; ")}
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		t.Fatalf("bad URL %q: %v", raw, err)
	}
	return u
}

// noStore checks the contract's Cache-Control on a refusal.
func noStore(t *testing.T, resp *response) {
	t.Helper()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control = %q, want no-store on\n%s", cc, resp)
	}
}

// jsonDenial checks a JSON refusal's headers.
func jsonDenial(t *testing.T, resp *response) {
	t.Helper()
	noStore(t, resp)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json on\n%s", ct, resp)
	}
}

// noUpstream fails the test if the upstream served a request since it had
// served hits.
func noUpstream(t *testing.T, s *harness, hits int) {
	t.Helper()
	if got := s.Upstream.Hits(); got != hits {
		t.Errorf("the upstream was called %d time(s); it must not be", got-hits)
	}
}

// lastUpstream returns the request the upstream served last.
func lastUpstream(t *testing.T, s *harness) echo.Request {
	t.Helper()
	reqs := s.Upstream.Requests()
	if len(reqs) == 0 {
		t.Fatal("the upstream was never called")
	}
	return reqs[len(reqs)-1]
}

// upstreamSaw checks that resp is the upstream's 200 for exactly one request
// and returns what the upstream received.
func upstreamSaw(t *testing.T, s *harness, resp *response, hits int) echo.Request {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("want 200 from the upstream, got\n%s", resp)
	}
	if got := s.Upstream.Hits(); got != hits+1 {
		t.Fatalf("the upstream was called %d times, want once", got-hits)
	}
	return lastUpstream(t, s)
}

// wantIdentity checks that the upstream received each identity header exactly
// once, with tenantgate's values.
func wantIdentity(t *testing.T, seen echo.Request, tenant, email, roles string) {
	t.Helper()
	want := map[string]string{
		"x-tenant-id":   tenant,
		"x-user-email":  email,
		"x-user-roles":  roles,
		"x-auth-method": "password",
	}
	for name, v := range want {
		if got := seen.Values(name); !slices.Equal(got, []string{v}) {
			t.Errorf("upstream got %s = %q, want exactly [%s]", name, got, v)
		}
	}
	if id := seen.Values("x-user-id"); len(id) != 1 || id[0] == "" || id[0] == "1" {
		t.Errorf("upstream got x-user-id = %q, want one value set by tenantgate", id)
	}
	for name, v := range seen.Headers {
		if (strings.HasPrefix(name, "x-user-") || strings.HasPrefix(name, "x-tenant-")) && !slices.Contains(identityHeaders, name) {
			t.Errorf("upstream got client-sent %s: %q", name, v)
		}
	}
	// x-auth-mfa is tenantgate's (CONTRACT.md extension): exactly its
	// "false" for a password-only sign-in, never spoofHeaders' "true".
	if v := seen.Values("x-auth-mfa"); !slices.Equal(v, []string{"false"}) {
		t.Errorf("upstream got x-auth-mfa %q, want exactly [false]", v)
	}
}
