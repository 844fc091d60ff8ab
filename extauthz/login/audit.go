package login

import (
	"context"
	"net/http"
	"strings"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Auditor records audit events into the tenant's trail (audit.Recorder).
// Record returns once the event is stored, or why it is not.
type Auditor interface {
	Record(ctx context.Context, e tenants.AuditEvent) error
}

// auditNote is what a request did that the audit trail records, noted by
// the route as it happens (noteSignIn, noteSignOut, noteSwitch) and
// recorded by recordAudit when the answer is written. Refusals need no
// note: a refused sign-in is recorded from the answer's refusal.
type auditNote struct {
	event  string
	tenant string
	user   string
	email  string
	method string
	// firstSeen: the sign-in created the user (an SSO identity's first
	// sign-in), recorded as its own event before the sign-in.
	firstSeen bool
	// also are further events the request caused (a second factor
	// enrolled, a recovery code used), recorded before the main one with
	// the same fields and, for a sign-in, refusing it just the same when
	// they cannot be written.
	also []string
}

// noteSignIn notes a successful sign-in of user to the request's tenant
// by method. Its event is written before the answer; if it cannot be,
// the sign-in is refused (recordAudit).
func (h *Handler) noteSignIn(q *request, user tenants.User, method string) {
	q.audit = &auditNote{event: tenants.AuditSignIn, tenant: q.tenant().ID, user: user.ID, email: user.Email,
		method: method, firstSeen: user.FirstSeen}
}

// noteSignOut notes the sign-out of a session of user in the request's
// tenant.
func (h *Handler) noteSignOut(q *request, user, email string) {
	q.audit = &auditNote{event: tenants.AuditSignOut, tenant: q.tenant().ID, user: user, email: email}
}

// noteSwitch notes a switch code the apex issued for user into tenant.
func (h *Handler) noteSwitch(q *request, tenant *tenants.Tenant, user tenants.User) {
	q.audit = &auditNote{event: tenants.AuditSwitch, tenant: tenant.ID, user: user.ID, email: user.Email, method: "switch"}
}

// signInRoutes are the tenant routes whose refusals are refused sign-ins.
var signInRoutes = []string{signin.PathLogin, signin.PathStart, signin.PathCallback, signin.PathSAMLACS, signin.PathSwitch, PathMFA}

// maxRequestID bounds the x-request-id kept: it comes from the client side.
const maxRequestID = 128

// recordAudit writes the audit event of what answering q did, before the
// answer goes out, and returns the answer to give. A sign-in whose event
// cannot be written is refused (503, its session cookies withheld): a
// sign-in the trail does not show must not happen. A refusal or sign-out
// whose event cannot be written is answered all the same, and the failure
// logged: the person is refused or signed out either way. Without
// Handler.Audit nothing is recorded.
func (h *Handler) recordAudit(q *request, a *answer) *answer {
	if h.Audit == nil {
		return a
	}
	e := tenants.AuditEvent{Actor: tenants.ActorAnonymous, Client: h.auditClient(q.r), RequestID: requestID(q.r)}
	switch n := q.audit; {
	case n != nil && a.refusal == nil && a.status < 400:
		e.Tenant, e.Event, e.Subject, e.Email, e.Method, e.Outcome = n.tenant, n.event, n.user, n.email, n.method, tenants.OutcomeSuccess
		if n.user != "" {
			e.Actor = n.user
		}
		before := n.also
		if n.firstSeen {
			before = append([]string{tenants.AuditSSOFirstSeen}, before...)
		}
		for _, name := range before {
			ev := e
			ev.Event = name
			if err := h.Audit.Record(q.r.Context(), ev); err != nil {
				if n.event == tenants.AuditSignIn {
					return h.auditFailed(q, a, err)
				}
				h.log().Error("audit event not recorded", "tenant", e.Tenant, "event", name, "err", err)
			}
		}
		if err := h.Audit.Record(q.r.Context(), e); err != nil {
			if n.event == tenants.AuditSignIn {
				return h.auditFailed(q, a, err)
			}
			h.log().Error("audit event not recorded", "tenant", e.Tenant, "event", e.Event, "err", err)
		}
	case a.refusal != nil && q.tenant() != nil && isSignInRoute(q):
		e.Tenant, e.Event, e.Email, e.Outcome, e.Reason = q.tenant().ID, tenants.AuditSignIn, a.refusal.email, tenants.OutcomeRefused, a.refusal.reason
		if q.route == signin.PathSwitch {
			e.Method = "switch"
		}
		if err := h.Audit.Record(q.r.Context(), e); err != nil {
			h.log().Error("audit event not recorded", "tenant", e.Tenant, "event", e.Event, "reason", e.Reason, "err", err)
		}
	}
	return a
}

// isSignInRoute reports whether q is a step of signing in to its tenant
// (the sign-in page itself, a GET, refuses nothing but a suspended tenant
// or a tenant without methods, which are refusals of sign-in too).
func isSignInRoute(q *request) bool {
	for _, r := range signInRoutes {
		if q.route == r {
			return true
		}
	}
	return false
}

// auditFailed answers a sign-in whose audit event could not be written:
// 503, and none of the cookies the sign-in set (the session, the ID-token
// hint) go out; cookies being cleared still are.
func (h *Handler) auditFailed(q *request, _ *answer, err error) *answer {
	kept := q.cookies[:0]
	for _, c := range q.cookies {
		if c.MaxAge < 0 || c.Value == "" {
			kept = append(kept, c)
		}
	}
	q.cookies = kept
	q.audit = nil
	return h.unavailable(q, "record sign-in audit event", err)
}

// auditClient is the client address of the audit trail: the one the rate
// limits use (--trusted-proxy-hops), whole, or "" when unknown.
func (h *Handler) auditClient(r *http.Request) string {
	a := clientAddress(r, h.TrustedProxyHops)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// requestID is Envoy's x-request-id, when it is a short printable token.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if len(id) > maxRequestID || strings.IndexFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		return ""
	}
	return id
}
