package login

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
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

// noteSessionRevoked notes that the signed-in person c revoked sessions of
// their own in the request's tenant (one from the account page's list, or
// all of them). Its event is recorded after the revocation; a failure to
// record it is logged, the revocation stands.
func (h *Handler) noteSessionRevoked(q *request, c *session.Claims) {
	q.audit = &auditNote{event: tenants.AuditSessionRevoked, tenant: q.tenant().ID, user: c.Subject, email: c.Email}
}

// noteSwitch notes a switch code the apex issued for user into tenant.
func (h *Handler) noteSwitch(q *request, tenant *tenants.Tenant, user tenants.User) {
	q.audit = &auditNote{event: tenants.AuditSwitch, tenant: tenant.ID, user: user.ID, email: user.Email, method: methodSwitch}
}

// signInRoutes are the tenant routes whose refusals are refused sign-ins.
var signInRoutes = []string{signin.PathLogin, signin.PathStart, signin.PathCallback, signin.PathSAMLACS, signin.PathSwitch, PathMFA}

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
	switch n, refused := outcomeOf(q, a); {
	case n != nil:
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
				h.log().ErrorContext(q.r.Context(), "audit event not recorded", "tenant", e.Tenant, "event", name, "err", err)
			}
		}
		if err := h.Audit.Record(q.r.Context(), e); err != nil {
			if n.event == tenants.AuditSignIn {
				return h.auditFailed(q, a, err)
			}
			h.log().ErrorContext(q.r.Context(), "audit event not recorded", "tenant", e.Tenant, "event", e.Event, "err", err)
		}
	case refused:
		e.Tenant, e.Event, e.Email, e.Outcome, e.Reason = q.tenant().ID, tenants.AuditSignIn, a.refusal.email, tenants.OutcomeRefused, a.refusal.reason
		if q.route == signin.PathSwitch {
			e.Method = methodSwitch
		}
		ok, dropped := h.refusals.take(h.now())
		if dropped > 0 {
			h.log().WarnContext(q.r.Context(), "refused sign-ins left out of the audit trail in the last minute: more than Limits.AuditedRefusals per second",
				"not_recorded", dropped)
		}
		if !ok {
			return a
		}
		if err := h.Audit.Record(q.r.Context(), e); err != nil {
			h.log().ErrorContext(q.r.Context(), "audit event not recorded", "tenant", e.Tenant, "event", e.Event, "reason", e.Reason, "err", err)
		}
	}
	return a
}

// outcomeOf is what answering q with a amounts to, for the audit trail
// and the metrics alike: the noted event (a sign-in, sign-out or switch)
// done, or a sign-in refused (a refusal on a sign-in route of a tenant),
// or neither.
func outcomeOf(q *request, a *answer) (done *auditNote, refused bool) {
	switch n := q.audit; {
	case n != nil && a.refusal == nil && a.status < 400:
		return n, false
	case a.refusal != nil && q.tenant() != nil && isSignInRoute(q):
		return nil, true
	}
	return nil, false
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
// hint) go out; cookies being cleared still are. The session it recorded
// is revoked (withdrawSessions): nobody holds it, so nobody may see it
// listed or ever use it.
func (h *Handler) auditFailed(q *request, _ *answer, err error) *answer {
	kept := q.cookies[:0]
	for _, c := range q.cookies {
		if c.MaxAge < 0 || c.Value == "" {
			kept = append(kept, c)
		}
	}
	q.cookies = kept
	q.audit = nil
	h.withdrawSessions(q)
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

// requestID is Envoy's x-request-id, when it is a short printable token
// (telemetry.RequestID).
func requestID(r *http.Request) string {
	return telemetry.RequestID(r.Header.Get("X-Request-Id"))
}

// refusalBudget is the token bucket of Limits.AuditedRefusals: perSecond
// tokens a second, up to ten seconds' worth, one per refused sign-in the
// audit trail records. It counts the refusals it turns away and hands that
// count out at most once a minute, for one log line.
type refusalBudget struct {
	perSecond float64
	mu        sync.Mutex
	tokens    float64
	last      time.Time // when tokens was last topped up
	dropped   int64     // refusals turned away since the last report
	reported  time.Time // when dropped was last handed out
}

func newRefusalBudget(perSecond int) *refusalBudget {
	return &refusalBudget{perSecond: float64(perSecond), tokens: 10 * float64(perSecond)}
}

// refusalReportEvery is how often the count of refusals left out of the
// trail is handed out for the log.
const refusalReportEvery = time.Minute

// take spends a token at now if there is one (ok). dropped, when not 0,
// is how many refusals were turned away since it was last handed out, a
// minute or more ago (or since the start): the caller logs it.
func (b *refusalBudget) take(now time.Time) (ok bool, dropped int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.last, b.reported = now, now
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.tokens+d.Seconds()*b.perSecond, 10*b.perSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		ok = true
	} else {
		b.dropped++
	}
	if b.dropped > 0 && now.Sub(b.reported) >= refusalReportEvery {
		dropped, b.dropped, b.reported = b.dropped, 0, now
	}
	return ok, dropped
}
