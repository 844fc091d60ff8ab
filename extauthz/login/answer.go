package login

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/tenantgate/tenantgate/extauthz/telemetry"
)

// An answer is how the sign-in handler responds to one request, as a value,
// the way Check answers with a Decision written out in one place
// (extauthz/check.go): the routes decide and return an answer, and
// Handler.write, the only code that writes a response, logs and writes it.
//
// Cookies are not part of the answer: those set while deciding (a pre-auth
// value for a form, an attempt or switch verifier spent, a session minted)
// wait in the request (request.setCookie) and go out with whatever the
// answer turns out to be, so a cookie cleared because it was used once is
// cleared on every path that follows.
type answer struct {
	kind   answerKind
	status int

	// name and view are a pageAnswer's template and content.
	name string
	view page
	// location is a redirectAnswer's target, already made safe.
	location string
	// code is an errorAnswer's error code.
	code string
	// body, contentType and cacheControl are a documentAnswer's.
	body         []byte
	contentType  string
	cacheControl string

	// retryAfter is the Retry-After header (seconds) of a 429; allow the
	// Allow header of a 405.
	retryAfter string
	allow      string

	// refusal, when set, is logged as one "sign-in refused" line before
	// the answer is written; fault, when set, after it.
	refusal *refusal
	fault   *fault
}

// answerKind is the form an answer takes.
type answerKind int

const (
	// errorAnswer is a machine-readable error whose body names only its
	// code: {"error":code}.
	errorAnswer answerKind = iota
	// pageAnswer is an HTML page (render).
	pageAnswer
	// redirectAnswer sends the browser to location: 302 for the GET steps
	// that are navigations, 303 after a form POST.
	redirectAnswer
	// documentAnswer is a document for machines (the JWKS, SAML metadata).
	documentAnswer
)

// refusal is why a request was refused, for the log.
type refusal struct {
	reason string
	// email, when known (normalised), is logged as a keyed digest, never
	// as itself.
	email string
	// attrs are further key-value pairs.
	attrs []any
}

// fault is what failed behind an answer (a store or provider error), for
// the log only: the page never says.
type fault struct {
	level slog.Level
	msg   string
	attrs []any
}

// htmlPage answers the page template name shows with p.
func htmlPage(status int, name string, p page) *answer {
	return &answer{kind: pageAnswer, status: status, name: name, view: p}
}

// seeOther answers 303 See Other to location, after a form POST.
func seeOther(location string) *answer { return redirectTo(http.StatusSeeOther, location) }

// found answers 302 Found to location: the GET steps of switching and the
// direct start of a tenant's only SSO method are navigations, not form
// posts.
func found(location string) *answer { return redirectTo(http.StatusFound, location) }

// redirectTo answers status (302 or 303) to location, already made safe.
func redirectTo(status int, location string) *answer {
	return &answer{kind: redirectAnswer, status: status, location: location}
}

// jsonError answers a machine-readable error with code.
func jsonError(status int, code string) *answer {
	return &answer{kind: errorAnswer, status: status, code: code}
}

// methodNotAllowed answers 405 naming the methods allowed.
func methodNotAllowed(allow string) *answer {
	a := jsonError(http.StatusMethodNotAllowed, "method_not_allowed")
	a.allow = allow
	return a
}

// document answers 200 with body, a document for machines of contentType.
func document(contentType, cacheControl string, body []byte) *answer {
	return &answer{kind: documentAnswer, status: http.StatusOK, body: body, contentType: contentType, cacheControl: cacheControl}
}

// refused marks a as the answer to a refused request: write logs reason,
// the email's digest and attrs first.
func (a *answer) refused(reason, email string, attrs ...any) *answer {
	a.refusal = &refusal{reason: reason, email: email, attrs: attrs}
	return a
}

// logging has write log msg at level with attrs (after the refusal, if
// any).
func (a *answer) logging(level slog.Level, msg string, attrs ...any) *answer {
	a.fault = &fault{level: level, msg: msg, attrs: attrs}
	return a
}

// retry sets the Retry-After of a 429, in seconds.
func (a *answer) retry(seconds int) *answer {
	a.retryAfter = strconv.Itoa(seconds)
	return a
}

// write writes the answer to q: it logs its refusal and fault, then sets
// what every response under /_auth/ carries (the referrer policy, and the
// cookies the request set while deciding, in the order set) and writes the
// answer itself. Nothing else writes a response.
func (h *Handler) write(q *request, a *answer) {
	a = h.recordAudit(q, a)
	h.observe(q, a)
	h.traceAnswer(q, a)
	if a.refusal != nil {
		h.logRefusal(q, a.refusal)
	}
	if f := a.fault; f != nil {
		h.log().Log(q.r.Context(), f.level, f.msg, f.attrs...)
	}
	hd := q.w.Header()
	hd.Set("Referrer-Policy", referrerPolicy)
	for _, c := range q.cookies {
		http.SetCookie(q.w, c)
	}
	if a.retryAfter != "" {
		hd.Set("Retry-After", a.retryAfter)
	}
	if a.allow != "" {
		hd.Set("Allow", a.allow)
	}
	switch a.kind {
	case pageAnswer:
		h.render(q, a.status, a.name, a.view)
	case redirectAnswer:
		hd.Set("Location", a.location)
		hd.Set("Cache-Control", "no-store")
		q.w.WriteHeader(a.status)
	case documentAnswer:
		hd.Set("Content-Type", a.contentType)
		hd.Set("Cache-Control", a.cacheControl)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Length", strconv.Itoa(len(a.body)))
		q.w.WriteHeader(a.status)
		if q.r.Method != http.MethodHead {
			q.w.Write(a.body)
		}
	default:
		writeJSONError(q.w, a.status, a.code)
	}
}

// logRefusal logs a refused or failed request: tenant (or apex host),
// reason code and, when given, a digest of the (normalised) email, then
// any extra key-value pairs.
func (h *Handler) logRefusal(q *request, ref *refusal) {
	attrs := []any{"reason", ref.reason, "path", q.route, "client", h.clientKey(q.r)}
	if t := q.tenant(); t != nil {
		attrs = append(attrs, "tenant", t.ID)
	} else {
		attrs = append(attrs, "host", q.res.Host)
	}
	if ref.email != "" {
		attrs = append(attrs, "email_digest", h.emailDigest(ref.email))
	}
	attrs = append(attrs, ref.attrs...)
	h.log().InfoContext(q.r.Context(), "sign-in refused", attrs...)
}

// traceAnswer notes on the request's span (telemetry.HTTP) the tenant and
// the refusal's reason code.
func (h *Handler) traceAnswer(q *request, a *answer) {
	var tenant, reason string
	if t := q.tenant(); t != nil {
		tenant = t.ID
	}
	if a.refusal != nil {
		reason = a.refusal.reason
	}
	telemetry.Note(q.r.Context(), tenant, reason)
}
