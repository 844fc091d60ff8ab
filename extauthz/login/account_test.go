package login

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/account"
	"github.com/tenantgate/tenantgate/extauthz/mail"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/internal/smtpsink"
	"github.com/tenantgate/tenantgate/tenants"
)

// withMail configures the account pages against a real SMTP server.
func withMail(t *testing.T, sink *smtpsink.Sink) func(*Handler) {
	return func(h *Handler) {
		master, err := seal.NewSealer([]byte(strings.Repeat("k", seal.MasterKeySize)))
		if err != nil {
			t.Fatal(err)
		}
		links, err := account.NewLinks(master)
		if err != nil {
			t.Fatal(err)
		}
		links.Now = h.Now
		sender, err := mail.NewSender(sink.URL, "", "noreply@app.test")
		if err != nil {
			t.Fatal(err)
		}
		h.Accounts = &Accounts{Links: links, Outbox: mail.NewOutbox(sender, h.Log), Scheme: "https"}
	}
}

var resetLinkRE = regexp.MustCompile(`https://[a-z.]+/_auth/(?:reset|invite)\?t=[A-Za-z0-9_-]+`)

// linkIn returns the one link in a message's text, checking the HTML has
// the same.
func linkIn(t *testing.T, m smtpsink.Message) string {
	t.Helper()
	l := resetLinkRE.FindString(m.Text)
	if l == "" || !strings.Contains(m.HTML, l) {
		t.Fatalf("no link in message %q", m.Subject)
	}
	return l
}

// postForm fetches the page at target, then posts fields to it with its
// csrf.
func (e *env) postForm(host, target string, fields url.Values, cookies ...*http.Cookie) *http.Response {
	e.t.Helper()
	f := e.getForm(host, target, cookies...)
	fields.Set("csrf", f.csrf)
	path, _, _ := strings.Cut(target, "?")
	return e.do("POST", host, path, fields, sameOrigin(), append([]*http.Cookie{f.preauth}, cookies...)...)
}

func wantStatus(t *testing.T, what string, resp *http.Response, status int) string {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, resp.StatusCode, status, body)
	}
	return body
}

func TestPasswordResetByMail(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	e := newEnv(t, withMail(t, sink))
	const host = "acme.app.test"
	const newPassword = "a-New-passw0rd-for-alice"

	login := wantStatus(t, "sign-in page", e.do("GET", host, "/_auth/login", nil, nil), 200)
	if !strings.Contains(login, `href="/_auth/forgot"`) {
		t.Fatal("the sign-in page has no Forgot link with mail configured")
	}
	old := cookieNamed(e.signIn(host, "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	if old == nil {
		t.Fatal("no session")
	}

	known := wantStatus(t, "forgot, known", e.postForm(host, "/_auth/forgot", url.Values{"email": {"Alice@acme.test"}}), 200)
	unknown := wantStatus(t, "forgot, unknown", e.postForm(host, "/_auth/forgot", url.Values{"email": {"nobody@acme.test"}}), 200)
	strip := func(s string) string { return csrfField.ReplaceAllString(s, "") }
	if strip(known) != strip(unknown) || !strings.Contains(known, "a link to choose a new password is on its way") {
		t.Fatal("forgot answers differ for a known and an unknown address")
	}
	msgs := sink.Wait(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 1 {
		t.Fatalf("%d messages, want 1 (none for the unknown address)", n)
	}
	if msgs[0].To != "<alice@acme.test>" || !strings.Contains(msgs[0].Subject, "Acme") {
		t.Errorf("message to %q subject %q", msgs[0].To, msgs[0].Subject)
	}
	link := linkIn(t, msgs[0])
	u, _ := url.Parse(link)
	target := u.RequestURI()

	// Bound to the tenant it was asked on.
	wantStatus(t, "acme link on globex", e.do("GET", "globex.app.test", target, nil, nil), 400)
	// The policy holds; a refused form does not spend the link.
	wantStatus(t, "short password", e.postForm(host, target, url.Values{"t": {u.Query().Get("t")}, "new_password": {"short"}, "confirm_password": {"short"}}), 400)
	body := wantStatus(t, "reset", e.postForm(host, target, url.Values{"t": {u.Query().Get("t")}, "new_password": {newPassword}, "confirm_password": {newPassword}}), 200)
	if !strings.Contains(body, "Your password was changed") {
		t.Fatalf("reset page: %s", body)
	}
	if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), old.Value); err == nil {
		t.Error("the session from before the reset still verifies")
	}
	wantStatus(t, "old password", e.signIn(host, "", "alice@acme.test", alicePassword, "/"), 401)
	wantStatus(t, "new password", e.signIn(host, "", "alice@acme.test", newPassword, "/"), 303)
	// Single use.
	wantStatus(t, "reused link", e.do("GET", host, target, nil, nil), 400)
	wantStatus(t, "reused link, POST", e.postFormNoGet(host, "/_auth/reset", url.Values{"t": {u.Query().Get("t")}, "new_password": {newPassword + "x"}, "confirm_password": {newPassword + "x"}}), 400)
	changed := sink.Wait(t, 2, 10*time.Second)[1]
	if !strings.Contains(changed.Subject, "was changed") || resetLinkRE.MatchString(changed.Text) {
		t.Errorf("second message %q should be the password-changed notice", changed.Subject)
	}

	// Expired after 30 minutes.
	wantStatus(t, "forgot again", e.postForm(host, "/_auth/forgot", url.Values{"email": {"alice@acme.test"}}), 200)
	expiring := linkIn(t, sink.Wait(t, 3, 10*time.Second)[2])
	e.clock.Advance(31 * time.Minute)
	eu, _ := url.Parse(expiring)
	wantStatus(t, "expired link", e.do("GET", host, eu.RequestURI(), nil, nil), 400)

	for _, secret := range []string{u.Query().Get("t"), eu.Query().Get("t"), newPassword, alicePassword, "alice@acme.test", "nobody@acme.test"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}

// postFormNoGet posts with a csrf from the sign-in page (for a target
// that no longer serves a form).
func (e *env) postFormNoGet(host, path string, fields url.Values) *http.Response {
	e.t.Helper()
	f := e.getForm(host, "/_auth/login")
	fields.Set("csrf", f.csrf)
	return e.do("POST", host, path, fields, sameOrigin(), f.preauth)
}

// TestResetLinkDiesWithPasswordChange: a password changed by another
// route (the account page) kills an outstanding reset link.
func TestResetLinkDiesWithPasswordChange(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	e := newEnv(t, withMail(t, sink))
	const host = "acme.app.test"
	wantStatus(t, "forgot", e.postForm(host, "/_auth/forgot", url.Values{"email": {"alice@acme.test"}}), 200)
	link := linkIn(t, sink.Wait(t, 1, 10*time.Second)[0])
	session := cookieNamed(e.signIn(host, "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	const pw = "changed-Passw0rd-elsewhere"
	wantStatus(t, "change", e.postForm(host, "/_auth/account", url.Values{"action": {"password"}, "current_password": {alicePassword}, "new_password": {pw}, "confirm_password": {pw}}, session), 200)
	u, _ := url.Parse(link)
	wantStatus(t, "reset link after a change", e.do("GET", host, u.RequestURI(), nil, nil), 400)
}

// TestPasswordChange: the current password is checked, the policy holds,
// every other session is revoked, this browser keeps a fresh session, and
// a notice is mailed.
func TestPasswordChange(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	e := newEnv(t, withMail(t, sink))
	const host = "acme.app.test"
	other := cookieNamed(e.signIn(host, "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	globex := cookieNamed(e.signIn("globex.app.test", "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	e.clock.Advance(2 * time.Second)
	mine := cookieNamed(e.signIn(host, "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")

	wantStatus(t, "account page without a session", e.do("GET", host, "/_auth/account", nil, nil), 302)
	const pw = "brand-new-Passw0rd-42"
	wantStatus(t, "wrong current password", e.postForm(host, "/_auth/account", url.Values{"action": {"password"}, "current_password": {"wrong-password-123"}, "new_password": {pw}, "confirm_password": {pw}}, mine), 401)
	wantStatus(t, "no CSRF", e.do("POST", host, "/_auth/account", url.Values{"action": {"password"}, "current_password": {alicePassword}, "new_password": {pw}, "confirm_password": {pw}}, sameOrigin(), mine), 403)
	resp := e.postForm(host, "/_auth/account", url.Values{"action": {"password"}, "current_password": {alicePassword}, "new_password": {pw}, "confirm_password": {pw}}, mine)
	fresh := cookieNamed(resp, "__Host-tenantgate")
	body := wantStatus(t, "change", resp, 200)
	if !strings.Contains(body, "Your password was changed") || fresh == nil {
		t.Fatalf("no confirmation or no fresh session: %s", body)
	}
	snap := e.snaps.Load()
	for name, c := range map[string]*http.Cookie{"other session": other, "this session's old token": mine} {
		if _, err := verifyOwnTenant(e.verifier, snap, c.Value); err == nil {
			t.Errorf("%s still verifies", name)
		}
	}
	if _, err := verifyOwnTenant(e.verifier, snap, globex.Value); err == nil {
		t.Error("the session in another tenant still verifies")
	}
	if _, err := verifyOwnTenant(e.verifier, snap, fresh.Value); err != nil {
		t.Errorf("the fresh session does not verify: %v", err)
	}
	m := sink.Wait(t, 1, 10*time.Second)[0]
	if !strings.Contains(m.Subject, "was changed") || m.To != "<alice@acme.test>" {
		t.Errorf("notice %q to %q", m.Subject, m.To)
	}
	if strings.Contains(e.logs.String(), pw) || strings.Contains(e.logs.String(), alicePassword) {
		t.Error("a password is in the logs")
	}

	// Sign out everywhere.
	resp = e.postForm(host, "/_auth/account", url.Values{"action": {"signout-all"}}, fresh)
	wantStatus(t, "sign out everywhere", resp, 303)
	if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), fresh.Value); err == nil {
		t.Error("the session survives signing out everywhere")
	}
}

func TestInvitations(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	e := newEnv(t, withMail(t, sink))
	const host = "acme.app.test"
	acme := e.snaps.Load().BySlug("acme")
	invite := func(email string) string {
		tok, _, err := e.h.Accounts.Links.Issue(account.Link{Kind: account.KindInvite, Email: email, Roles: []string{"member"}}, acme.InternalID, account.DefaultInviteTTL)
		if err != nil {
			t.Fatal(err)
		}
		return "/_auth/invite?t=" + tok
	}

	t.Run("new account", func(t *testing.T) {
		target := invite("carol@acme.test")
		tok := strings.TrimPrefix(target, "/_auth/invite?t=")
		wantStatus(t, "globex", e.do("GET", "globex.app.test", target, nil, nil), 400)
		const pw = "carol-Passw0rd-new-1"
		resp := e.postForm(host, target, url.Values{"t": {tok}, "new_password": {pw}, "confirm_password": {pw}})
		c := cookieNamed(resp, "__Host-tenantgate")
		wantStatus(t, "accept", resp, 303)
		claims, err := verifyOwnTenant(e.verifier, e.snaps.Load(), c.Value)
		if err != nil || claims.Email != "carol@acme.test" {
			t.Fatalf("session after accepting: %v %v", claims, err)
		}
		wantStatus(t, "reuse", e.do("GET", host, target, nil, nil), 400)
	})
	t.Run("existing account needs its password", func(t *testing.T) {
		target := invite("bob@globex.test")
		tok := strings.TrimPrefix(target, "/_auth/invite?t=")
		page := wantStatus(t, "page", e.do("GET", host, target, nil, nil), 200)
		if strings.Contains(page, "new_password") {
			t.Fatal("an invitation to an existing account offers to set its password")
		}
		// A new password is never taken for an existing account.
		resp := e.postForm(host, target, url.Values{"t": {tok}, "new_password": {"attacker-Passw0rd-1"}, "confirm_password": {"attacker-Passw0rd-1"}})
		wantStatus(t, "new password for an existing account", resp, 401)
		if cookieNamed(resp, "__Host-tenantgate") != nil {
			t.Fatal("signed in without the account's password")
		}
		resp = e.postForm(host, target, url.Values{"t": {tok}, "password": {bobPassword}})
		wantStatus(t, "accept with the password", resp, 303)
		roles, err := e.store.Membership(context.Background(), acme.InternalID, mustUser(t, e, "bob@globex.test").ID)
		if err != nil || strings.Join(roles, ",") != "member" {
			t.Fatalf("membership: %v %v", roles, err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		target := invite("dave@acme.test")
		e.clock.Advance(time.Second)
		now := e.clock.Now()
		if err := e.store.Revoke(context.Background(), tenants.Revocation{Key: account.InviteRevocationKey(acme.InternalID, "dave@acme.test"), NotBefore: now, Expires: now.Add(account.MaxInviteTTL)}); err != nil {
			t.Fatal(err)
		}
		e.refresh()
		wantStatus(t, "revoked invitation", e.do("GET", host, target, nil, nil), 400)
		e.clock.Advance(time.Second)
		wantStatus(t, "a new invitation after the revocation", e.do("GET", host, invite("dave@acme.test"), nil, nil), 200)
	})
}

func mustUser(t *testing.T, e *env, email string) tenants.User {
	u, err := e.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestForgotWithoutMail: without mail the sign-in page has no Forgot link
// and /_auth/forgot says why.
func TestForgotWithoutMail(t *testing.T) {
	e := newEnv(t)
	if strings.Contains(wantStatus(t, "login", e.do("GET", "acme.app.test", "/_auth/login", nil, nil), 200), "/_auth/forgot") {
		t.Error("a Forgot link without mail")
	}
	if !strings.Contains(wantStatus(t, "forgot", e.do("GET", "acme.app.test", "/_auth/forgot", nil, nil), 501), "Email is not configured") {
		t.Error("the forgot page does not say mail is not configured")
	}
}

// TestRevocationsInTheSameSecond: tokens carry their issue time in whole
// seconds, and a revocation of every session of a person takes those
// issued up to its NotBefore. Every session issued before it, even in the
// same second, is revoked (an attacker signing in with the old password a
// moment before the change keeps nothing), and every session issued after
// it, even in the same second, lives (the person signing straight back in
// is not signed out by their own change). The test clock never moves.
func TestRevocationsInTheSameSecond(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	e := newEnv(t, withMail(t, sink))
	const host = "acme.app.test"
	session := func(resp *http.Response) *http.Cookie {
		t.Helper()
		c := cookieNamed(resp, "__Host-tenantgate")
		if c == nil {
			t.Fatalf("no session cookie: %d", resp.StatusCode)
		}
		return c
	}
	verifies := func(c *http.Cookie) bool {
		_, err := verifyOwnTenant(e.verifier, e.snaps.Load(), c.Value)
		return err == nil
	}

	attacker := session(e.signIn(host, "", "alice@acme.test", alicePassword, "/"))
	mine := session(e.signIn(host, "", "alice@acme.test", alicePassword, "/"))
	const pw = "brand-new-Passw0rd-42"
	resp := e.postForm(host, "/_auth/account", url.Values{"action": {"password"}, "current_password": {alicePassword}, "new_password": {pw}, "confirm_password": {pw}}, mine)
	fresh := session(resp)
	wantStatus(t, "change", resp, 200)
	if verifies(attacker) || verifies(mine) {
		t.Error("a session issued in the same second, before the password change, still verifies")
	}
	if !verifies(fresh) {
		t.Fatal("the session the password change issued does not verify")
	}
	again := session(e.signIn(host, "", "alice@acme.test", pw, "/"))
	if !verifies(again) {
		t.Error("a sign-in in the same second, after the password change, does not verify")
	}

	wantStatus(t, "sign out everywhere", e.postForm(host, "/_auth/account", url.Values{"action": {"signout-all"}}, again), 303)
	if verifies(again) || verifies(fresh) {
		t.Error("a session from before signing out everywhere still verifies")
	}
	if back := session(e.signIn(host, "", "alice@acme.test", pw, "/")); !verifies(back) {
		t.Error("a sign-in in the same second, after signing out everywhere, does not verify")
	}

	wantStatus(t, "forgot", e.postForm(host, "/_auth/forgot", url.Values{"email": {"alice@acme.test"}}), 200)
	link, _ := url.Parse(linkIn(t, sink.Wait(t, 2, 10*time.Second)[1]))
	const reset = "reset-Passw0rd-in-the-same-second"
	wantStatus(t, "reset", e.postForm(host, link.RequestURI(), url.Values{"t": {link.Query().Get("t")}, "new_password": {reset}, "confirm_password": {reset}}), 200)
	if after := session(e.signIn(host, "", "alice@acme.test", reset, "/")); !verifies(after) {
		t.Error("a sign-in in the same second, after a reset, does not verify")
	}
}
