package login

import (
	"net/http"
	"slices"
	"sync"
	"testing"
)

// recordingObserver keeps what the sign-in pages told it, one line each.
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recordingObserver) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, s)
}

func (o *recordingObserver) SignIn(tenant, method, result string) {
	o.add("signin " + tenant + " " + method + " " + result)
}
func (o *recordingObserver) SignOut(tenant string)       { o.add("signout " + tenant) }
func (o *recordingObserver) SessionIssued(method string) { o.add("session " + method) }

func (o *recordingObserver) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev := o.events
	o.events = nil
	return ev
}

// TestObserver: the observer hears of each sign-in as the audit trail
// records it: a success with its method and the session minted, each
// refusal with the method it was for ("unknown" before a method was
// chosen) and its log reason, a sign-out; pages that are not sign-in
// steps tell it nothing.
func TestObserver(t *testing.T) {
	obs := &recordingObserver{}
	e := newEnv(t, func(h *Handler) { h.Observer = obs })

	for _, tc := range []struct {
		name string
		do   func() *http.Response
		want []string
	}{
		{"sign-in page", func() *http.Response { return e.do("GET", "acme.app.test", "/_auth/login", nil, nil) }, nil},
		{"wrong password", func() *http.Response {
			return e.signIn("acme.app.test", "", "alice@acme.test", "wrong-password-1", "/")
		}, []string{"signin acme password wrong_password"}},
		{"unknown user", func() *http.Response {
			return e.signIn("acme.app.test", "", "nobody@acme.test", "wrong-password-1", "/")
		}, []string{"signin acme password unknown_user"}},
		{"suspended tenant", func() *http.Response { return e.do("GET", "frozen.app.test", "/_auth/login", nil, nil) },
			[]string{"signin frozen unknown tenant_suspended"}},
		{"lost SSO attempt", func() *http.Response {
			return e.do("GET", "acme.app.test", "/_auth/callback?state=x&code=y", nil, nil)
		}, []string{"signin acme unknown sso_no_attempt"}},
		{"success", func() *http.Response {
			return e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
		}, []string{"session password", "signin acme password success"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.do()
			resp.Body.Close()
			if got := obs.take(); !slices.Equal(got, tc.want) {
				t.Errorf("observed %q, want %q (status %d)", got, tc.want, resp.StatusCode)
			}
		})
	}

	t.Run("sign-out", func(t *testing.T) {
		resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
		sc := cookieNamed(resp, "__Host-tenantgate")
		if sc == nil {
			t.Fatal("no session cookie")
		}
		obs.take()
		f := e.getForm("acme.app.test", "/_auth/logout", sc)
		e.do("POST", "acme.app.test", "/_auth/logout", map[string][]string{"csrf": {f.csrf}}, sameOrigin(), sc, f.preauth).Body.Close()
		if got := obs.take(); !slices.Equal(got, []string{"signout acme"}) {
			t.Errorf("observed %q, want a sign-out of acme", got)
		}
	})
}
