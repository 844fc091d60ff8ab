package login

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/audit"
	"github.com/tenantgate/tenantgate/extauthz/passkey/passkeytest"
)

// passkeyOptions asks for registration options as the page's script does.
func (e *env) passkeyOptions(host string, session *http.Cookie) ([]byte, *http.Cookie) {
	e.t.Helper()
	resp := e.postForm(host, "/_auth/account", url.Values{"action": {"passkey-options"}}, session)
	body := wantStatus(e.t, "passkey options", resp, 200)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("passkey options: Content-Type %q", ct)
	}
	c := cookieNamed(resp, "__Host-tg-passkey")
	if c == nil || !c.HttpOnly || !c.Secure || c.MaxAge <= 0 {
		e.t.Fatalf("passkey options: ceremony cookie %+v", c)
	}
	return []byte(body), c
}

func TestPasskeysOnTheAccountPage(t *testing.T) {
	e := newEnv(t, withSealer)
	e.h.Audit = &audit.Recorder{Store: e.store}
	const host = "acme.app.test"
	alice := cookieNamed(e.signIn(host, "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	aliceGlobex := cookieNamed(e.signIn("globex.app.test", "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	bob := cookieNamed(e.signIn("globex.app.test", "", "bob@globex.test", bobPassword, "/"), "__Host-tenantgate")
	acme, globex := e.snaps.Load().BySlug("acme").InternalID, e.snaps.Load().BySlug("globex").InternalID
	aliceID := mustUser(t, e, "alice@acme.test").ID

	resp := e.do("GET", host, "/_auth/account", nil, nil, alice)
	page := wantStatus(t, "account page", resp, 200)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(page, "You have no passkey yet") || !strings.Contains(csp, "script-src "+passkeyScriptHash+";") ||
		!strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("account page: CSP %q\n%s", csp, page)
	}

	auth := &passkeytest.Authenticator{Origin: "https://" + host}
	opts, ceremony := e.passkeyOptions(host, alice)
	if strings.Contains(string(opts), "alice@acme.test") && strings.Contains(string(opts), `"id":"`+base64.RawURLEncoding.EncodeToString([]byte("alice@acme.test"))) {
		t.Error("the user handle is the email")
	}
	credential, cred, err := auth.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	register := url.Values{"action": {"passkey-register"}, "name": {"  Work\tlaptop\x00 "}, "credential": {string(credential)}}
	body := wantStatus(t, "register", e.postForm(host, "/_auth/account", register, alice, ceremony), 200)
	if !strings.Contains(body, "Your passkey was added") || !strings.Contains(body, `value="Work laptop"`) {
		t.Fatalf("register: %s", body)
	}
	ps, err := e.store.Passkeys(t.Context(), acme, aliceID)
	if err != nil || len(ps) != 1 || string(ps[0].ID) != string(cred.ID) || ps[0].Name != "Work laptop" {
		t.Fatalf("stored passkeys = %+v, %v", ps, err)
	}
	id := base64.RawURLEncoding.EncodeToString(cred.ID)

	t.Run("replayed ceremony", func(t *testing.T) {
		wantStatus(t, "same ceremony again", e.postForm(host, "/_auth/account", register, alice, ceremony), 400)
	})
	t.Run("tampered ceremony", func(t *testing.T) {
		_, c := e.passkeyOptions(host, alice)
		v := []byte(c.Value)
		v[len(v)/2] ^= 1
		c.Value = string(v)
		wantStatus(t, "tampered", e.postForm(host, "/_auth/account", register, alice, c), 400)
	})
	t.Run("ceremony of another tenant", func(t *testing.T) {
		opts, c := e.passkeyOptions(host, alice)
		g := &passkeytest.Authenticator{Origin: "https://globex.app.test"}
		cr, _, err := g.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, "acme ceremony on globex", e.postForm("globex.app.test", "/_auth/account",
			url.Values{"action": {"passkey-register"}, "credential": {string(cr)}}, aliceGlobex, c), 400)
	})
	t.Run("answer from another origin", func(t *testing.T) {
		opts, c := e.passkeyOptions(host, alice)
		g := &passkeytest.Authenticator{Origin: "https://globex.app.test"}
		cr, _, err := g.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, "globex origin", e.postForm(host, "/_auth/account", url.Values{"action": {"passkey-register"}, "credential": {string(cr)}}, alice, c), 400)
	})
	t.Run("no CSRF", func(t *testing.T) {
		wantStatus(t, "options without csrf", e.do("POST", host, "/_auth/account", url.Values{"action": {"passkey-options"}}, sameOrigin(), alice), 403)
	})
	t.Run("another person's or tenant's passkey", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			session *http.Cookie
			action  string
		}{
			{"bob on globex removes", bob, "passkey-remove"},
			{"alice on globex removes", aliceGlobex, "passkey-remove"},
			{"alice on globex renames", aliceGlobex, "passkey-rename"},
		} {
			wantStatus(t, tc.name, e.postForm("globex.app.test", "/_auth/account", url.Values{"action": {tc.action}, "id": {id}, "name": {"x"}}, tc.session), 404)
		}
		if ps, _ := e.store.Passkeys(t.Context(), acme, aliceID); len(ps) != 1 || ps[0].Name != "Work laptop" {
			t.Errorf("alice's acme passkey changed: %+v", ps)
		}
		if ps, _ := e.store.Passkeys(t.Context(), globex, aliceID); len(ps) != 0 {
			t.Errorf("alice holds passkeys on globex: %+v", ps)
		}
		wantStatus(t, "garbage id", e.postForm(host, "/_auth/account", url.Values{"action": {"passkey-remove"}, "id": {"!!"}}, alice), 404)
	})

	body = wantStatus(t, "rename", e.postForm(host, "/_auth/account", url.Values{"action": {"passkey-rename"}, "id": {id}, "name": {"Phone"}}, alice), 200)
	if !strings.Contains(body, `value="Phone"`) {
		t.Errorf("rename: %s", body)
	}
	wantStatus(t, "remove", e.postForm(host, "/_auth/account", url.Values{"action": {"passkey-remove"}, "id": {id}}, alice), 200)
	if ps, _ := e.store.Passkeys(t.Context(), acme, aliceID); len(ps) != 0 {
		t.Errorf("after removal: %+v", ps)
	}
	if strings.Contains(e.logs.String(), "alice@acme.test") {
		t.Error("an email is in the logs")
	}
	var events []string
	for _, ev := range auditEvents(t, e, "acme") {
		if strings.HasPrefix(ev.Event, "passkey_") {
			events = append(events, ev.Event)
			if ev.Actor != aliceID || ev.Subject != aliceID {
				t.Errorf("%s recorded with actor %q subject %q, want alice", ev.Event, ev.Actor, ev.Subject)
			}
		}
	}
	if got, want := strings.Join(events, ","), "passkey_added,passkey_renamed,passkey_removed"; got != want {
		t.Errorf("audit events %s, want %s", got, want)
	}
	if evs := auditEvents(t, e, "globex"); len(evs) > 0 {
		for _, ev := range evs {
			if strings.HasPrefix(ev.Event, "passkey_") {
				t.Errorf("refused changes on globex were audited as %s", ev.Event)
			}
		}
	}
}

func TestPasskeysRefusedOnPathTenancy(t *testing.T) {
	e := newEnv(t, withSealer)
	s := cookieNamed(e.signIn("app.test", "/org/acme", "alice@acme.test", alicePassword, "/org/acme/"), "__Secure-tenantgate.acme")
	if s == nil {
		t.Fatal("no path-tenancy session")
	}
	body := wantStatus(t, "account page", e.do("GET", "app.test", "/org/acme/_auth/account", nil, nil, s), 200)
	if !strings.Contains(body, "not offered on shared paths") || strings.Contains(body, "<script") {
		t.Errorf("path tenancy offers passkeys:\n%s", body)
	}
	wantStatus(t, "options on a path", e.postForm("app.test", "/org/acme/_auth/account", url.Values{"action": {"passkey-options"}}, s), 400)
}

func FuzzPasskeyName(f *testing.F) {
	for _, s := range []string{"", "Work laptop", " a\tb\n", "\x00\u202e", strings.Repeat("é", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := passkeyName(s)
		if n == "" || len([]rune(n)) > maxPasskeyName || strings.TrimSpace(n) != n {
			t.Fatalf("passkeyName(%q) = %q", s, n)
		}
		for _, r := range n {
			if r < ' ' || r == 0x7f || r == '\u202e' {
				t.Fatalf("passkeyName(%q) kept %U", s, r)
			}
		}
	})
}
