package test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// sessionHandle matches the revoke forms' session field on the account page.
var sessionHandle = regexp.MustCompile(`name="session" value="([^"]+)"`)

// TestRevokeSessionFromAccountPage: docs/accounts.md, Sessions. A person
// signed in on two devices sees both on the account page (through Envoy),
// signs the other one out from there, and the very next request of that
// other session is refused by Check, while this one goes on.
func TestRevokeSessionFromAccountPage(t *testing.T) {
	s := startHarness(t)
	acme := "acme." + baseDomain
	const (
		laptopUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
		phoneUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	)
	signInAs := func(u stack.User, ua string) *http.Cookie {
		t.Helper()
		cookies, csrf := s.loginPage(t, acme)
		form := url.Values{"email": {u.Email}, "password": {u.Password}, "rd": {"/dashboard"}, "csrf": {csrf}}
		resp := s.postLogin(t, acme, cookies, form,
			header{"Origin", "http://" + acme}, header{"Sec-Fetch-Site", "same-origin"}, header{"User-Agent", ua})
		c := resp.cookie("tenantgate")
		if resp.StatusCode != http.StatusSeeOther || c == nil || c.Value == "" {
			t.Fatalf("sign-in of %s: want 303 with a session, got\n%s", u.Email, resp)
		}
		return c
	}
	// api is one API request of the session through Envoy: 200 from the
	// upstream, or Check's refusal.
	api := func(sess *http.Cookie) *response {
		t.Helper()
		return s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(sess), {"Accept", "application/json"}}})
	}

	laptop := signInAs(alice, laptopUA)
	phone := signInAs(alice, phoneUA)
	other := signInAs(carol, phoneUA)
	for name, sess := range map[string]*http.Cookie{"laptop": laptop, "phone": phone, "carol": other} {
		if resp := api(sess); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s session before any revocation: want 200, got\n%s", name, resp)
		}
	}

	page := s.send(t, request{host: acme, target: "/_auth/account", headers: []header{cookieHeader(laptop), {"Accept", "text/html"}}})
	if page.StatusCode != http.StatusOK {
		t.Fatalf("GET /_auth/account: want 200, got\n%s", page)
	}
	body := string(page.body)
	for _, want := range []string{"Firefox on Linux", "This session", "Safari on iOS", "127.0.0.1", "Password"} {
		if !strings.Contains(body, want) {
			t.Errorf("the account page does not show %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "AppleWebKit") {
		t.Error("the account page shows the User-Agent itself")
	}
	handles := sessionHandle.FindAllStringSubmatch(body, -1)
	if len(handles) != 1 {
		t.Fatalf("%d revoke forms on the laptop's page, want 1 (the phone's; carol's are not hers)", len(handles))
	}

	jar := append([]*http.Cookie{laptop}, page.Cookies()...)
	resp := s.send(t, request{
		method: http.MethodPost, host: acme, target: "/_auth/account",
		headers: []header{
			cookieHeader(jar...),
			{"Content-Type", "application/x-www-form-urlencoded"},
			{"Origin", "http://" + acme},
			{"Sec-Fetch-Site", "same-origin"},
			{"Accept", "text/html"},
		},
		body: url.Values{"csrf": {csrfToken(t, page)}, "action": {"revoke-session"}, "session": {handles[0][1]}}.Encode(),
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), "The session on Safari on iOS was signed out.") {
		t.Fatalf("POST /_auth/account revoke-session: got\n%s", resp)
	}

	hits := s.Upstream.Hits()
	if resp := api(phone); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked session's next request: want 401, got\n%s", resp)
	}
	nav := s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(phone), {"Accept", "text/html"}}})
	if nav.StatusCode != http.StatusFound {
		t.Errorf("the revoked session, browser navigation: want 302 to sign in, got\n%s", nav)
	}
	noUpstream(t, s, hits)
	for name, sess := range map[string]*http.Cookie{"laptop": laptop, "carol": other} {
		if resp := api(sess); resp.StatusCode != http.StatusOK {
			t.Errorf("%s session after the phone's revocation: want 200, got\n%s", name, resp)
		}
	}
}
