package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/audit"
	"github.com/tenantgate/tenantgate/tenants"
)

const (
	firefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	safariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	carolPW      = "carol-Pa55word-q4W"
)

// signInWith signs email in at host with the given User-Agent and returns
// the session cookie.
func (e *env) signInWith(host, email, pw, ua string) *http.Cookie {
	e.t.Helper()
	f := e.getForm(host, "/_auth/login")
	hdr := sameOrigin()
	hdr.Set("User-Agent", ua)
	resp := e.do("POST", host, "/_auth/login", url.Values{"email": {email}, "password": {pw}, "rd": {"/"}, "csrf": {f.csrf}}, hdr, f.preauth)
	sess := cookieNamed(resp, "__Host-tenantgate")
	if resp.StatusCode != http.StatusSeeOther || sess == nil || sess.Value == "" {
		e.t.Fatalf("sign-in of %s at %s: status %d", email, host, resp.StatusCode)
	}
	return sess
}

// accountPage fetches host's account page with sess and returns its body.
func (e *env) accountPage(host string, sess *http.Cookie) string {
	e.t.Helper()
	return wantStatus(e.t, "account page", e.do("GET", host, "/_auth/account", nil, nil, sess), http.StatusOK)
}

var (
	handleRE = regexp.MustCompile(`name="session" value="([^"]+)"`)
	rowRE    = regexp.MustCompile(`(?s)<li>\s*<p><strong>([^<]*)</strong>( <span class="current">This session</span>)?`)
)

// handles are the revoke handles an account page offers.
func handles(body string) []string {
	var out []string
	for _, m := range handleRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// rows are the devices an account page lists, "*" marking this session.
func rows(body string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		d := m[1]
		if m[2] != "" {
			d += "*"
		}
		out = append(out, d)
	}
	return out
}

// revoke posts a revoke of handle from host's account page with sess.
func (e *env) revoke(host, handle string, sess *http.Cookie) *http.Response {
	e.t.Helper()
	return e.postForm(host, "/_auth/account", url.Values{"action": {"revoke-session"}, "session": {handle}}, sess)
}

// valid reports whether sess still verifies for its tenant in the
// published snapshot (what Check answers from).
func (e *env) valid(sess *http.Cookie) bool {
	_, err := verifyOwnTenant(e.verifier, e.snaps.Load(), sess.Value)
	return err == nil
}

func addCarol(t *testing.T, e *env) {
	hash, err := e.h.Passwords.Hash(carolPW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddMember(t.Context(), "acme", tenants.NewMember{Email: "carol@acme.test", Roles: []string{"member"}, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
}

// TestSessionsListed: the account page lists the person's sessions in this
// tenant, newest first, with a device label (never the User-Agent itself),
// time, address and method, and marks this one; not other people's, not
// expired ones, not signed-out ones.
func TestSessionsListed(t *testing.T) {
	e := newEnv(t)
	const host = "acme.app.test"
	addCarol(t, e)
	hostile := `<script>alert(1)</script> Firefox/1`
	old := e.signInWith(host, "alice@acme.test", alicePassword, firefoxLinux)
	e.clock.Advance(time.Minute)
	gone := e.signInWith(host, "alice@acme.test", alicePassword, safariIPhone)
	e.clock.Advance(time.Minute)
	odd := e.signInWith(host, "alice@acme.test", alicePassword, hostile)
	e.clock.Advance(time.Minute)
	cur := e.signInWith(host, "alice@acme.test", alicePassword, "")
	e.signInWith(host, "carol@acme.test", carolPW, firefoxLinux)
	e.signInWith("globex.app.test", "bob@globex.test", bobPassword, firefoxLinux)

	body := e.accountPage(host, cur)
	want := []string{"Unknown browser*", "Firefox", "Safari on iOS", "Firefox on Linux"}
	if got := rows(body); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("listed %q, want %q", got, want)
	}
	for _, s := range []string{"<script>", "&lt;script", "alert(1)", "Gecko/20100101", "AppleWebKit"} {
		if strings.Contains(body, s) {
			t.Errorf("the account page shows %q from a User-Agent", s)
		}
	}
	for _, s := range []string{"192.0.2.10", "Password", "UTC"} {
		if !strings.Contains(body, s) {
			t.Errorf("the account page does not show %q", s)
		}
	}
	if n := len(handles(body)); n != 3 {
		t.Errorf("%d revoke forms, want 3 (every session but this one, which signs out at /_auth/logout)", n)
	}

	// Signed out: no longer listed.
	f := e.getForm(host, "/_auth/logout")
	if resp := e.do("POST", host, "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), f.preauth, gone); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	// Expired: the first session's hour is up, the others' not.
	e.clock.Advance(time.Hour - 2*time.Minute)
	want = []string{"Unknown browser*", "Firefox"}
	if got := rows(e.accountPage(host, cur)); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after a sign-out and an expiry: listed %q, want %q", got, want)
	}
	_, _ = old, odd
}

// TestRevokeOneSession: revoking a session from the account page refuses
// it from the next request on, leaves the others, and is in the audit
// trail.
func TestRevokeOneSession(t *testing.T) {
	e := newEnv(t)
	e.h.Audit = &audit.Recorder{Store: e.store}
	const host = "acme.app.test"
	laptop := e.signInWith(host, "alice@acme.test", alicePassword, firefoxLinux)
	phone := e.signInWith(host, "alice@acme.test", alicePassword, safariIPhone)

	hs := handles(e.accountPage(host, laptop))
	if len(hs) != 1 {
		t.Fatalf("revoke forms %v, want the phone's", hs)
	}
	body := wantStatus(t, "revoke", e.revoke(host, hs[0], laptop), http.StatusOK)
	if !strings.Contains(body, "The session on Safari on iOS was signed out.") {
		t.Errorf("no notice after revoking:\n%s", body)
	}
	// No refresh by the test: the handler published the revocation.
	if e.valid(phone) {
		t.Error("the revoked session still verifies against the published snapshot")
	}
	if !e.valid(laptop) {
		t.Error("the session that revoked the other was revoked too")
	}
	if got := rows(e.accountPage(host, laptop)); strings.Join(got, "|") != "Firefox on Linux*" {
		t.Errorf("after revoking: listed %q", got)
	}
	// The same handle again: nothing left to revoke.
	wantStatus(t, "revoke again", e.revoke(host, hs[0], laptop), http.StatusNotFound)

	var revoked []tenants.AuditEvent
	for _, ev := range auditEvents(t, e, "acme") {
		if ev.Event == tenants.AuditSessionRevoked {
			revoked = append(revoked, ev)
		}
	}
	if len(revoked) != 1 || revoked[0].Actor == "" || revoked[0].Actor != revoked[0].Subject || revoked[0].Email != "alice@acme.test" {
		t.Errorf("audit events of the revocation = %+v, want one by alice of her own session", revoked)
	}
}

// TestRevokeOthersSessionsRefused: a handle names a session only for its
// holder: another account of the same tenant, or a session of another
// tenant, posting it revokes nothing.
func TestRevokeOthersSessionsRefused(t *testing.T) {
	e := newEnv(t)
	const host = "acme.app.test"
	addCarol(t, e)
	alice1 := e.signInWith(host, "alice@acme.test", alicePassword, firefoxLinux)
	alice2 := e.signInWith(host, "alice@acme.test", alicePassword, safariIPhone)
	carol1 := e.signInWith(host, "carol@acme.test", carolPW, firefoxLinux)
	carol2 := e.signInWith(host, "carol@acme.test", carolPW, safariIPhone)
	bob1 := e.signInWith("globex.app.test", "bob@globex.test", bobPassword, firefoxLinux)
	bob2 := e.signInWith("globex.app.test", "bob@globex.test", bobPassword, safariIPhone)

	aliceHandles := handles(e.accountPage(host, alice1))
	bobHandles := handles(e.accountPage("globex.app.test", bob1))
	if len(aliceHandles) != 1 || len(bobHandles) != 1 {
		t.Fatalf("handles: alice %v, bob %v", aliceHandles, bobHandles)
	}
	for _, tc := range []struct {
		name, host, handle string
		sess               *http.Cookie
	}{
		{"another account of the tenant", host, aliceHandles[0], carol2},
		{"another tenant's session, from this tenant", host, bobHandles[0], carol2},
		{"this tenant's session, from another tenant", "globex.app.test", aliceHandles[0], bob2},
		{"a made-up handle", host, "AAAAAAAAAAAAAAAAAAAAAAAA", carol2},
		{"no handle", host, "", carol2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, "revoke", e.revoke(tc.host, tc.handle, tc.sess), http.StatusNotFound)
			for _, s := range []*http.Cookie{alice1, alice2, carol1, carol2, bob1, bob2} {
				if !e.valid(s) {
					t.Fatal("a refused revocation revoked a session")
				}
			}
		})
	}
	// A session of another tenant is no session here at all.
	resp := e.do("POST", host, "/_auth/account", url.Values{"action": {"revoke-session"}, "session": {aliceHandles[0]}}, sameOrigin(), bob2)
	if resp.StatusCode == http.StatusOK || !e.valid(alice2) {
		t.Errorf("a globex session posting to acme's account page: %d", resp.StatusCode)
	}
}

// TestRevokeSessionCSRF: the revoke form needs its CSRF field and a
// same-origin request, like every account form.
func TestRevokeSessionCSRF(t *testing.T) {
	e := newEnv(t)
	const host = "acme.app.test"
	laptop := e.signInWith(host, "alice@acme.test", alicePassword, firefoxLinux)
	phone := e.signInWith(host, "alice@acme.test", alicePassword, safariIPhone)
	h := handles(e.accountPage(host, laptop))[0]
	f := e.getForm(host, "/_auth/account", laptop)
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  http.Header
	}{
		{"no csrf", url.Values{"action": {"revoke-session"}, "session": {h}}, sameOrigin()},
		{"wrong csrf", url.Values{"action": {"revoke-session"}, "session": {h}, "csrf": {"x" + f.csrf}}, sameOrigin()},
		{"cross-site", url.Values{"action": {"revoke-session"}, "session": {h}, "csrf": {f.csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
	} {
		resp := e.do("POST", host, "/_auth/account", tc.form, tc.hdr, f.preauth, laptop)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, resp.StatusCode)
		}
	}
	if !e.valid(phone) {
		t.Error("a refused form revoked the session")
	}
}

// TestSessionNotRecordedRefusesSignIn: a session the store cannot record is
// not issued: 503 and no cookie, for the list must show every session.
func TestSessionNotRecordedRefusesSignIn(t *testing.T) {
	e := newEnv(t)
	f := e.getForm("acme.app.test", "/_auth/login")
	e.h.Store = unrecordingStore{e.store}
	resp := e.do("POST", "acme.app.test", "/_auth/login",
		url.Values{"email": {"alice@acme.test"}, "password": {alicePassword}, "rd": {"/"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
	if resp.StatusCode != http.StatusServiceUnavailable || cookieNamed(resp, "__Host-tenantgate") != nil {
		t.Fatalf("status %d, cookie %v; want 503 and no session", resp.StatusCode, cookieNamed(resp, "__Host-tenantgate"))
	}
}

// unrecordingStore is the real store failing to record sessions.
type unrecordingStore struct{ Store }

func (unrecordingStore) RecordSession(context.Context, tenants.Session, tenants.Revocation) error {
	return errors.New("disk on fire")
}

func TestDeviceLabel(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{firefoxLinux, "Firefox on Linux"},
		{safariIPhone, "Safari on iOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on macOS"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Headless Chrome on Linux"},
		{"curl/8.5.0", "curl"},
		{"Go-http-client/1.1", "Unknown browser"},
		{"", "Unknown browser"},
		{"<b>Windows</b>", "Unknown browser on Windows"},
	} {
		if got := deviceLabel(tc.ua); got != tc.want {
			t.Errorf("deviceLabel(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

// deviceLabelRE is every label deviceLabel may return: its own words only.
var deviceLabelRE = regexp.MustCompile(`^(Unknown browser|Edge|Opera|Samsung Internet|Firefox|Chrome|Headless Chrome|Chromium|Safari|curl)` +
	`( on (Windows|iOS|iPadOS|Android|ChromeOS|macOS|Linux))?$`)

// FuzzDeviceLabel: whatever a client sends as its User-Agent, the label
// stored and shown is one of deviceLabel's own, never bytes of the header.
func FuzzDeviceLabel(f *testing.F) {
	for _, ua := range []string{firefoxLinux, safariIPhone, "", "<script>alert(1)</script>", "Firefox/1 \x00 Windows", strings.Repeat("Chrome/", 400) + "Linux"} {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		if got := deviceLabel(ua); !deviceLabelRE.MatchString(got) {
			t.Fatalf("deviceLabel(%q) = %q, not a label of its own", ua, got)
		}
	})
}

// TestSessionWithdrawnWhenNotHandedOut: a sign-in refused after its session
// was recorded (its audit event could not be written) leaves no session
// listed, and the token, never handed out, is revoked.
func TestSessionWithdrawnWhenNotHandedOut(t *testing.T) {
	e := newEnv(t)
	e.h.Audit = failingAudit{}
	resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	alice, err := e.store.UserByEmail(t.Context(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	acme := e.snaps.Load().BySlug("acme").InternalID
	got, err := e.store.Sessions(t.Context(), acme, alice.ID)
	if err != nil || len(got) != 0 {
		t.Fatalf("sessions recorded after the refused sign-in: %+v, %v; want none", got, err)
	}
	e.h.Audit = nil
	sess := e.signInWith("acme.app.test", "alice@acme.test", alicePassword, firefoxLinux)
	if rs := rows(e.accountPage("acme.app.test", sess)); strings.Join(rs, "|") != "Firefox on Linux*" {
		t.Errorf("after a good sign-in: listed %q, want that one session", rs)
	}
}
