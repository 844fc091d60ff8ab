package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/audit"
	"github.com/tenantgate/tenantgate/tenants"
)

// auditEnv is newEnv with the handler recording into the env's own store.
func auditEnv(t *testing.T) *env {
	return newEnv(t, func(h *Handler) { h.TrustedProxyHops = 1 })
}

func auditEvents(t *testing.T, e *env, tenant string) []tenants.AuditEvent {
	t.Helper()
	evs, err := e.store.AuditEvents(context.Background(), tenants.AuditQuery{Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAuditSignInEvents: a password sign-in, a refused one (with its
// reason), and a sign-out are each one event of the tenant's trail, with
// the user, email, client address (--trusted-proxy-hops) and request id,
// and never the password.
func TestAuditSignInEvents(t *testing.T) {
	e := auditEnv(t)
	e.h.Audit = &audit.Recorder{Store: e.store}
	hdr := func() http.Header {
		h := sameOrigin()
		h.Set("X-Forwarded-For", "203.0.113.7, 198.51.100.1")
		h.Set("X-Request-Id", "req-42")
		return h
	}
	f := e.getForm("acme.app.test", "/_auth/login")
	resp := e.do("POST", "acme.app.test", "/_auth/login", url.Values{"email": {"alice@acme.test"}, "password": {"wrong-" + alicePassword},
		"rd": {"/"}, "csrf": {f.csrf}}, hdr(), f.preauth)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	f = e.getForm("acme.app.test", "/_auth/login")
	resp = e.do("POST", "acme.app.test", "/_auth/login", url.Values{"email": {"alice@acme.test"}, "password": {alicePassword},
		"rd": {"/"}, "csrf": {f.csrf}}, hdr(), f.preauth)
	sess := cookieNamed(resp, "__Host-tenantgate")
	if resp.StatusCode != http.StatusSeeOther || sess == nil {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	f = e.getForm("acme.app.test", "/_auth/logout")
	resp = e.do("POST", "acme.app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, hdr(), f.preauth, sess)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	alice, err := e.store.UserByEmail(context.Background(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}

	evs := auditEvents(t, e, "acme")
	type want struct{ event, actor, subject, outcome, reason, method string }
	wants := []want{
		{tenants.AuditSignIn, tenants.ActorAnonymous, "", tenants.OutcomeRefused, "wrong_password", ""},
		{tenants.AuditSignIn, alice.ID, alice.ID, tenants.OutcomeSuccess, "", "password"},
		{tenants.AuditSignOut, alice.ID, alice.ID, tenants.OutcomeSuccess, "", ""},
	}
	if len(evs) != len(wants) {
		t.Fatalf("acme's trail holds %d events, want %d: %+v", len(evs), len(wants), evs)
	}
	for i, w := range wants {
		ev := evs[i]
		got := want{ev.Event, ev.Actor, ev.Subject, ev.Outcome, ev.Reason, ev.Method}
		if got != w {
			t.Errorf("event %d = %+v, want %+v", i+1, got, w)
		}
		if ev.Email != "alice@acme.test" || ev.Client != "203.0.113.7" || ev.RequestID != "req-42" {
			t.Errorf("event %d: email %q client %q request id %q", i+1, ev.Email, ev.Client, ev.RequestID)
		}
	}
	v, err := e.store.VerifyAudit(context.Background(), "acme")
	if err != nil || v.Break != nil || v.Events != 3 {
		t.Errorf("verify: %+v %v", v, err)
	}
	if got := auditEvents(t, e, "globex"); len(got) != 0 {
		t.Errorf("globex's trail holds acme's events: %+v", got)
	}
}

// failingAudit is an audit trail that cannot be written.
type failingAudit struct{}

func (failingAudit) Record(context.Context, tenants.AuditEvent) error {
	return errors.New("disk full")
}

// TestAuditSignInFailsClosed: a sign-in whose audit event cannot be
// written is refused (503) and sets no session cookie.
func TestAuditSignInFailsClosed(t *testing.T) {
	e := newEnv(t)
	e.h.Audit = failingAudit{}
	resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if c := cookieNamed(resp, "__Host-tenantgate"); c != nil && c.Value != "" {
		t.Fatal("a sign-in that the audit trail does not hold set a session cookie")
	}
	if body := readBody(t, resp); strings.Contains(body, alicePassword) {
		t.Fatal("the page holds the password")
	}
}

// TestAuditRefusalsBudget: refusals that cost the requester nothing (a
// form without its CSRF token) are a store write each only up to
// Limits.AuditedRefusals a second (ten seconds' worth at once); the rest
// are answered and left out of the trail, and how many is logged once a
// minute. A success is recorded whatever the budget.
func TestAuditRefusalsBudget(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.Limits.AuditedRefusals = 2 })
	e.h.Audit = &audit.Recorder{Store: e.store}
	refuse := func(n int) {
		t.Helper()
		for range n {
			resp := e.do("POST", "acme.app.test", "/_auth/login", url.Values{"email": {"alice@acme.test"}, "password": {"x"}}, sameOrigin())
			if resp.StatusCode < 400 {
				t.Fatalf("a form without its CSRF token: %d, want a refusal", resp.StatusCode)
			}
		}
	}
	refused := func() int {
		n := 0
		for _, ev := range auditEvents(t, e, "acme") {
			if ev.Outcome == tenants.OutcomeRefused {
				n++
			}
		}
		return n
	}

	refuse(25)
	if got := refused(); got != 20 {
		t.Fatalf("25 refusals at once with a budget of 2/s: %d recorded, want 20 (ten seconds' worth)", got)
	}
	if strings.Contains(e.logs.String(), "not_recorded") {
		t.Error("the count of refusals left out was logged before a minute had passed")
	}
	e.clock.Advance(time.Second)
	refuse(3)
	if got := refused(); got != 22 {
		t.Errorf("3 more a second later: %d recorded in all, want 22", got)
	}
	resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the budget spent: %d", resp.StatusCode)
	}
	if evs := auditEvents(t, e, "acme"); evs[len(evs)-1].Outcome != tenants.OutcomeSuccess {
		t.Errorf("a sign-in with the refusal budget spent was not recorded: last event %+v", evs[len(evs)-1])
	}
	e.clock.Advance(time.Minute)
	refuse(1)
	if got := refused(); got != 23 {
		t.Errorf("a minute later: %d recorded in all, want 23", got)
	}
	if !strings.Contains(e.logs.String(), `"not_recorded":6`) {
		t.Errorf("the 6 refusals left out were not logged a minute later:\n%s", e.logs.String())
	}
}
