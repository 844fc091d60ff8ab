package login

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestNoSecretsInLogs drives every path that logs and checks that no
// password, token, cookie value, CSRF token or email address reaches the
// log, while the log still says what happened.
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.Limits = Limits{AccountFailures: 2} })
	var secrets []string

	resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
	sess := cookieNamed(resp, "__Host-tenantgate")
	if sess == nil {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	secrets = append(secrets, sess.Value, alicePassword)

	for _, pw := range []string{"wrong-guess-one", "wrong-guess-two", alicePassword} {
		e.signIn("acme.app.test", "", "alice@acme.test", pw, "/") // the last one while locked
		secrets = append(secrets, pw)
	}
	e.signIn("acme.app.test", "", "nobody-here@acme.test", "unknown-user-pw", "/")
	fr := e.getForm("acme.app.test", "/_auth/login")
	e.do("POST", "frozen.app.test", "/_auth/login",
		url.Values{"email": {"alice@acme.test"}, "password": {alicePassword}, "csrf": {fr.csrf}}, sameOrigin(), fr.preauth)
	secrets = append(secrets, "nobody-here", "unknown-user-pw")

	f := e.getForm("acme.app.test", "/_auth/logout")
	e.do("POST", "acme.app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), f.preauth, sess)
	e.do("POST", "acme.app.test", "/_auth/logout", url.Values{"csrf": {"forged-csrf-value"}}, sameOrigin(), f.preauth, sess)
	secrets = append(secrets, f.csrf, f.preauth.Value, "forged-csrf-value")

	d := e.getForm("app.test", "/_auth/login")
	e.do("POST", "app.test", "/_auth/login", url.Values{"email": {"carol@unknown-org.test"}, "csrf": {d.csrf}}, sameOrigin(), d.preauth)
	secrets = append(secrets, "carol", "unknown-org")

	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains secret %q", s)
		}
	}
	for _, s := range []string{"alice", "acme.test\"", "@"} {
		if strings.Contains(logs, s) {
			t.Errorf("log contains email part %q", s)
		}
	}
	// What the operator needs is there.
	reasons := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r, ok := rec["reason"].(string); ok {
			reasons[r] = true
			if _, ok := rec["tenant"]; !ok && r != "discovery_no_match" {
				t.Errorf("log line without tenant: %s", line)
			}
		}
	}
	for _, want := range []string{"wrong_password", "account_locked", "unknown_user", "tenant_suspended", "csrf", "discovery_no_match"} {
		if !reasons[want] {
			t.Errorf("no log line with reason %s; reasons %v", want, reasons)
		}
	}
}

func TestCounterBounded(t *testing.T) {
	c := newCounter(2, time.Minute, 100)
	ctx := context.Background()
	now := time.Unix(1000, 0)
	for i := range 1000 {
		c.Add(ctx, counterKey("k", string(rune(i))), now)
	}
	if n := c.windows.Len(); n > 100 {
		t.Fatalf("%d entries kept, bound is 100", n)
	}
	l := limit{c, 2}
	over := func(at time.Time) bool {
		o, err := l.over(ctx, counterKey("account", "tid", "a@b"), at)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	k := counterKey("account", "tid", "a@b")
	c.Add(ctx, k, now)
	if over(now) {
		t.Fatal("over after 1 of 2")
	}
	c.Add(ctx, k, now)
	if !over(now) || !over(now.Add(59*time.Second)) {
		t.Fatal("not over after 2 of 2")
	}
	if over(now.Add(time.Minute)) {
		t.Fatal("still over after the window")
	}
	c.Reset(ctx, k)
	if over(now) {
		t.Fatal("over after reset")
	}
}

func TestHead(t *testing.T) {
	e := newEnv(t)
	resp := e.do("HEAD", "acme.app.test", "/_auth/login", nil, nil)
	if b := readBody(t, resp); resp.StatusCode != http.StatusOK || b != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, b)
	}
}
