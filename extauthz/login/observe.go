package login

import (
	"net/http"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Observer learns what the sign-in pages did, for metrics
// (cmd/tenantgate's Prometheus metrics). It sees the events the audit
// trail records, never an email, token or password. Its methods run on the
// request's goroutine and must not block.
type Observer interface {
	// SignIn: a sign-in to tenant (its id) by method (password, oidc,
	// saml, social, switch, or "unknown" when the refusal came before a
	// method was chosen) ended with result: SignInSuccess, or the refusal's
	// reason code (the "reason" of the "sign-in refused" log line).
	SignIn(tenant, method, result string)
	// SignOut: a session of tenant was signed out.
	SignOut(tenant string)
	// SessionIssued: a session was minted whose x-auth-method is method
	// (password, oidc, saml or social).
	SessionIssued(method string)
}

// SignInSuccess is the result of a sign-in that issued a session.
const SignInSuccess = "success"

// methodSwitch is the method of a switch into a tenant from the apex
// host's global session (switch.go), in the audit trail and the metrics.
const methodSwitch = "switch"

// methodUnknown is the method of a refused sign-in whose method was not
// known yet (a suspended tenant's sign-in page, a lost SSO attempt).
const methodUnknown = "unknown"

// observe tells the Observer what answering q with a amounted to: the
// same outcome the audit trail records (outcomeOf).
func (h *Handler) observe(q *request, a *answer) {
	if h.Observer == nil {
		return
	}
	switch n, refused := outcomeOf(q, a); {
	case n != nil && n.event == tenants.AuditSignIn:
		h.Observer.SignIn(n.tenant, n.method, SignInSuccess)
	case n != nil && n.event == tenants.AuditSignOut:
		h.Observer.SignOut(n.tenant)
	case refused:
		h.Observer.SignIn(q.tenant().ID, signInMethod(q), a.refusal.reason)
	}
}

// sessionIssued tells the Observer a session for method was minted.
func (h *Handler) sessionIssued(method string) {
	if h.Observer != nil {
		h.Observer.SessionIssued(method)
	}
}

// signInMethod is the method a refused sign-in step was for: the one the
// route noted once it knew (request.method), else the one the route
// implies.
func signInMethod(q *request) string {
	if q.method != "" {
		return q.method
	}
	switch {
	case q.route == signin.PathLogin && q.r.Method == http.MethodPost:
		return session.MethodPassword
	case q.route == signin.PathSAMLACS:
		return session.MethodSAML
	case q.route == signin.PathSwitch:
		return methodSwitch
	}
	return methodUnknown
}
