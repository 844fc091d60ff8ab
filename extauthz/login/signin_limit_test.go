package login

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/signin"
)

// TestAccountSignInsLimited: successful sign-ins per account per minute are
// bounded, since each can be followed by a sign-out whose revocation every
// snapshot holds for the session's lifetime. Over the limit every attempt on
// the account, right or wrong, gets the 429 page; other accounts, the same
// email in another tenant and the next minute are unaffected.
func TestAccountSignInsLimited(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.Limits = Limits{AccountSignIns: 3} })
	signIn := func(host, email, pw string) *http.Response {
		t.Helper()
		return e.signIn(host, "", email, pw, "/")
	}
	for i := range 3 {
		if resp := signIn("acme.app.test", "alice@acme.test", alicePassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: status %d, want 303", i+1, resp.StatusCode)
		}
	}
	for _, tc := range []struct{ name, email, pw string }{
		{"right password", "alice@acme.test", alicePassword},
		{"another spelling", "ALICE@acme.test", alicePassword},
		{"wrong password", "alice@acme.test", "wrong"},
	} {
		resp := signIn("acme.app.test", tc.email, tc.pw)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" ||
			!strings.Contains(body, "signed in too many times") || cookieNamed(resp, "__Host-tenantgate") != nil {
			t.Errorf("%s over the limit: status %d, Retry-After %q, want 429 with Retry-After 60, the page and no session",
				tc.name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if !strings.Contains(e.logs.String(), `"reason":"signin_limited"`) {
		t.Error("no signin_limited log line")
	}
	if resp := signIn("globex.app.test", "alice@acme.test", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same email in globex: status %d, want 303", resp.StatusCode)
	}
	if resp := signIn("globex.app.test", "bob@globex.test", bobPassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another account: status %d, want 303", resp.StatusCode)
	}
	e.clock.Advance(time.Minute)
	if resp := signIn("acme.app.test", "alice@acme.test", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a minute later: status %d, want 303", resp.StatusCode)
	}
}

// TestSSOSignInsLimited: SSO sign-ins count against the account's
// sign-ins per minute like password ones; the account is the identity the
// method vouched for.
func TestSSOSignInsLimited(t *testing.T) {
	se := newSSOEnv(t, func(h *Handler) { h.Limits = Limits{AccountSignIns: 2} })
	se.p.set("c", signin.Identity{Issuer: "i", Subject: "s"})
	se.p.set("d", signin.Identity{Issuer: "i", Subject: "someone-else"})
	sso := func(code string) *http.Response {
		t.Helper()
		j := jar{}
		state := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
		return se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(state)+"&code="+code, nil, nil, j.all()...)
	}
	for i := range 2 {
		if resp := sso("c"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("SSO sign-in %d: status %d", i+1, resp.StatusCode)
		}
	}
	resp := sso("c")
	if resp.StatusCode != http.StatusTooManyRequests || cookieNamed(resp, "__Host-tenantgate") != nil {
		t.Errorf("third SSO sign-in in a minute: status %d, want 429 and no session", resp.StatusCode)
	}
	if resp := sso("d"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another identity: status %d, want 303", resp.StatusCode)
	}
}
