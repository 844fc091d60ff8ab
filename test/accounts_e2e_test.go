package test

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/smtpsink"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// mailLink matches the one link of a reset or invitation message as
// tenantgate builds it behind Envoy with --insecure-cookies.
var mailLink = regexp.MustCompile(`http://acme\.app\.test(?::[0-9]+)?/_auth/(?:reset|invite)\?t=[A-Za-z0-9_-]+`)

// linkOf returns the link of m, which its text and HTML parts must both
// carry.
func linkOf(t *testing.T, m smtpsink.Message) *url.URL {
	t.Helper()
	l := mailLink.FindString(m.Text)
	if l == "" || !strings.Contains(m.HTML, l) {
		t.Fatalf("message %q has no link to acme (or its parts differ):\n%s", m.Subject, m.Text)
	}
	return mustParseURL(t, l)
}

// postPage fetches target on host through Envoy as a browser would, then
// posts form to its action with the page's csrf and pre-auth cookies, and
// more cookies (a session).
func (s *harness) postPage(t *testing.T, host, target string, form url.Values, more ...*http.Cookie) *response {
	t.Helper()
	hs := []header{{"Accept", "text/html"}}
	if len(more) > 0 {
		hs = append(hs, cookieHeader(more...))
	}
	page := s.send(t, request{host: host, target: target, headers: hs})
	if page.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: want the 200 form, got\n%s", host, target, page)
	}
	form.Set("csrf", csrfToken(t, page))
	path, _, _ := strings.Cut(target, "?")
	return s.send(t, request{method: http.MethodPost, host: host, target: path, body: form.Encode(), headers: []header{
		cookieHeader(append(page.Cookies(), more...)...),
		{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "text/html"},
		{"Origin", "http://" + host}, {"Sec-Fetch-Site", "same-origin"},
	}})
}

// TestAccountMailThroughEnvoy: issue 11 items 1–4 as people use them, with
// the real binary behind the real Envoy and a real SMTP server. A reset
// asked for a known and an unknown address gives the same page and one
// mail; its link works once, ends the sessions from before, and a notice
// follows. `users invite` through the admin API mails a link that creates
// the account once. The server's log holds no link, token or password.
func TestAccountMailThroughEnvoy(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte("e2e-admin-token-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startHarness(t, stack.ServeArgs("--smtp-url", sink.URL, "--mail-from", "Sign-in <noreply@app.test>",
		"--admin-token-file", tokenFile, "--log-level", "debug"))
	acme := "acme." + baseDomain
	reaches := func(sess *http.Cookie) bool {
		t.Helper()
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(sess), {"Accept", "application/json"}}})
		return resp.StatusCode == http.StatusOK && s.Upstream.Hits() == hits+1
	}
	var secrets []string

	// Password reset.
	before := s.signIn(t, acme, alice)
	known := s.postPage(t, acme, "/_auth/forgot", url.Values{"email": {alice.Email}})
	unknown := s.postPage(t, acme, "/_auth/forgot", url.Values{"email": {"nobody@acme.test"}})
	if known.StatusCode != http.StatusOK || unknown.StatusCode != http.StatusOK {
		t.Fatalf("forgot: known %d, unknown %d, want 200 both", known.StatusCode, unknown.StatusCode)
	}
	csrfInput := regexp.MustCompile(`name="csrf" value="[^"]*"`)
	stripCSRF := func(r *response) string { return csrfInput.ReplaceAllString(string(r.body), "") }
	if stripCSRF(known) != stripCSRF(unknown) {
		t.Error("the forgot page differs for a known and an unknown address")
	}
	msgs := sink.Wait(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // time for a second message, which must not come
	if n := len(sink.Messages(t)); n != 1 || msgs[0].To != "<"+alice.Email+">" {
		t.Fatalf("%d messages (first to %s), want 1, to alice (none for the unknown address)", n, msgs[0].To)
	}
	reset := linkOf(t, msgs[0])
	secrets = append(secrets, reset.Query().Get("t"))
	const newPassword = "alice-New-passw0rd-e2e"
	secrets = append(secrets, newPassword)
	done := s.postPage(t, acme, reset.RequestURI(), url.Values{"t": {reset.Query().Get("t")}, "new_password": {newPassword}, "confirm_password": {newPassword}})
	if done.StatusCode != http.StatusOK || !strings.Contains(string(done.body), "Your password was changed") {
		t.Fatalf("reset through Envoy: want 200 and the confirmation, got\n%s", done)
	}
	if reaches(before) {
		t.Error("a session from before the reset still reaches the app")
	}
	if again := s.send(t, request{host: acme, target: reset.RequestURI(), headers: []header{{"Accept", "text/html"}}}); again.StatusCode != http.StatusBadRequest {
		t.Errorf("the reset link a second time: %d, want 400", again.StatusCode)
	}
	if !reaches(s.signIn(t, acme, stack.User{Email: alice.Email, Password: newPassword})) {
		t.Error("a session with the new password does not reach the app")
	}
	notice := sink.Wait(t, 2, 10*time.Second)[1]
	if notice.To != "<"+alice.Email+">" || !strings.Contains(notice.Subject, "was changed") || mailLink.MatchString(notice.Text) {
		t.Errorf("notice to %s, subject %q: want a password-changed notice to alice, with no link", notice.To, notice.Subject)
	}

	// Invitation, through the admin API.
	cmd := exec.Command(s.Bin, "users", "invite", "--tenant", "acme", "--email", "dave@acme.test", "--role", "member",
		"--server", s.Admin, "--admin-token-file", tokenFile)
	cmd.Env = proc.Env()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "invited dave@acme.test to tenant acme") {
		t.Fatalf("users invite: %v\n%s", err, out)
	}
	invitation := sink.Wait(t, 3, 10*time.Second)[2]
	if invitation.To != "<dave@acme.test>" {
		t.Fatalf("invitation to %s, want dave", invitation.To)
	}
	invite := linkOf(t, invitation)
	secrets = append(secrets, invite.Query().Get("t"))
	const davePassword = "dave-Passw0rd-from-the-link"
	secrets = append(secrets, davePassword)
	accepted := s.postPage(t, acme, invite.RequestURI(), url.Values{"t": {invite.Query().Get("t")}, "new_password": {davePassword}, "confirm_password": {davePassword}})
	dave := accepted.cookie("tenantgate")
	if accepted.StatusCode != http.StatusSeeOther || dave == nil {
		t.Fatalf("accepting the invitation through Envoy: want 303 with a session, got\n%s", accepted)
	}
	if !reaches(dave) {
		t.Error("the session from the invitation does not reach the app")
	}
	if again := s.send(t, request{host: acme, target: invite.RequestURI(), headers: []header{{"Accept", "text/html"}}}); again.StatusCode != http.StatusBadRequest {
		t.Errorf("the invitation link a second time: %d, want 400", again.StatusCode)
	}
	if !reaches(s.signIn(t, acme, stack.User{Email: "dave@acme.test", Password: davePassword})) {
		t.Error("the invited person cannot sign in with the password they chose")
	}

	logs := s.Tenantgate.Output()
	for _, secret := range append(secrets, alice.Password) {
		if strings.Contains(logs, secret) {
			t.Errorf("the server's log (--log-level debug) holds a link token or password (%d bytes)", len(secret))
		}
	}
	for _, addr := range []string{alice.Email, "dave@acme.test", "nobody@acme.test"} {
		if strings.Contains(logs, addr) {
			t.Errorf("the server's log holds the address %s, which it should give as a digest", addr)
		}
	}
}
