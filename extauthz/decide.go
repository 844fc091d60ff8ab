package extauthz

import (
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tenantgate/tenantgate/extauthz/cookie"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Request is what the authorizer needs to know about one HTTP request, free of
// Envoy's types.
type Request struct {
	// Host is the request's :authority / Host, exactly as received.
	Host string
	// Path is the raw request target, including the query string.
	Path   string
	Method string
	// Scheme is the request's scheme as Envoy saw it (http or https), used
	// only when X-Forwarded-Proto does not say.
	Scheme string
	// Header looks up a request header by lower-case name. Envoy delivers
	// repeated headers joined with commas; Cookie lines Envoy sent apart
	// (header_map) are joined with "; ", so no pair spans two lines.
	Header func(name string) string
}

// Outcome is the kind of answer a Decision carries.
type Outcome int

const (
	// Allow: a signed-in member of the resolved tenant may proceed.
	Allow Outcome = iota + 1
	// AllowAnonymous: a rule lets anyone through; only the tenant is known.
	AllowAnonymous
	// Redirect: a browser without a usable session goes to its tenant's
	// sign-in page.
	Redirect
	// Deny: an HTTP error answer with a JSON error code.
	Deny
)

// Error codes in deny bodies (CONTRACT.md, Check table).
const (
	CodeUnauthenticated = "unauthenticated"
	CodeTenantMismatch  = "tenant_mismatch"
	CodeForbidden       = "forbidden"
	CodeTenantSuspended = "tenant_suspended"
	CodeUnknownTenant   = "unknown_tenant"
	CodeBadRequest      = "bad_request"
	CodeUnavailable     = "unavailable"
)

// Decision is the authorizer's answer to one Request. It is a value: how it
// is written to Envoy is the adapter's business.
type Decision struct {
	Outcome Outcome
	// Status is the HTTP status of a Deny.
	Status int
	// Code is the JSON error code of a Deny, and the reason logged for any
	// refusal.
	Code string
	// Tenant is the resolved tenant, when there is one.
	Tenant *tenants.Tenant
	// Claims are the verified session claims of an Allow.
	Claims *session.Claims
	// Location is the redirect target of a Redirect.
	Location string

	// snap is the snapshot an Allow was decided on, and memo the slot kept
	// with the session's token in the verifier's cache (nil when the token
	// is not cached yet): where Check keeps the OK answer's parts that
	// depend only on the session and the snapshot (okTemplate).
	snap *tenants.Snapshot
	memo *session.Memo
}

// Authorizer decides requests. It reads only the current snapshot and the
// verifier's cache: no store transaction, no configuration decoding and, for a
// token seen before, no signature check.
type Authorizer struct {
	Snapshots *tenants.Current
	Resolver  *tenants.Resolver
	Verifier  *session.Verifier
	// CookieName is the session cookie's name for host tenancy
	// (session.CookieName). A tenant reached by path tenancy has its own
	// cookie, session.PathCookieName(CookieName, id), scoped to its path.
	CookieName string
	Log        *slog.Logger
}

// maxCookieCandidates bounds how many same-named cookies are tried, so a
// request stuffed with cookies costs at most this many verifications.
const maxCookieCandidates = 4

// Decide resolves the request's tenant, authenticates it and applies the
// tenant's rules. It never returns an Allow for a credential issued for a
// tenant other than the resolved one.
func (a *Authorizer) Decide(r *Request) Decision {
	snap := a.Snapshots.Load()
	if snap == nil {
		return deny(503, CodeUnavailable, nil)
	}
	res, err := a.Resolver.Resolve(snap, r.Host, r.Path)
	switch {
	case errors.Is(err, tenants.ErrUnknownTenant):
		return deny(404, CodeUnknownTenant, nil)
	case err != nil:
		return deny(400, CodeBadRequest, nil)
	case res.Apex:
		return deny(404, CodeUnknownTenant, nil)
	}
	t := res.Tenant
	if t.Suspended() {
		return deny(403, CodeTenantSuspended, t)
	}

	rel, ok := ruleTarget(r.Path, res.Prefix)
	if !ok {
		return deny(400, CodeBadRequest, t)
	}
	// The method on the wire, and every method an override header names:
	// the rules must let each of them through (overriddenMethods).
	matches := []ruleMatch{matchRule(t.Rules, rel, r.Method)}
	overrides, ok := overriddenMethods(r)
	if !ok {
		matches = append(matches, ruleMatch{refused: true})
	}
	for _, m := range overrides {
		if m != r.Method {
			matches = append(matches, matchRule(t.Rules, rel, m))
		}
	}
	if !slices.ContainsFunc(matches, func(m ruleMatch) bool { return !m.anonymous() }) {
		return Decision{Outcome: AllowAnonymous, Tenant: t}
	}

	cookieName := a.CookieName
	if res.Prefix != "" {
		cookieName = session.PathCookieName(cookieName, t.ID)
	}
	claims, memo, code, byCookie := a.authenticate(snap, t, r, cookieName)
	switch code {
	case "":
	case CodeTenantMismatch:
		return deny(403, CodeTenantMismatch, t)
	default:
		if isNavigation(r) {
			return Decision{Outcome: Redirect, Tenant: t, Code: CodeUnauthenticated, Location: loginURL(res.Prefix, r.Path)}
		}
		return deny(401, CodeUnauthenticated, t)
	}

	if byCookie && crossOrigin(t, r) {
		// Authenticated by the cookie, which a sibling tenant's page gets
		// attached for free (same site); see crossOrigin.
		return Decision{Outcome: Deny, Status: 403, Code: CodeCrossOrigin, Tenant: t, Claims: claims}
	}
	// A request refused by the rules is authenticated first, like one a
	// permission rule refuses: who the caller is comes before what they
	// may do, and an anonymous caller learns nothing of the rules.
	for _, match := range matches {
		if match.refused || match.rule != nil && match.rule.Permission != "" && !snap.HasPermission(t, claims.Roles, match.rule.Permission) {
			return Decision{Outcome: Deny, Status: 403, Code: CodeForbidden, Tenant: t, Claims: claims}
		}
	}
	return Decision{Outcome: Allow, Tenant: t, Claims: claims, snap: snap, memo: memo}
}

// authenticate finds a credential valid for tenant t in the bearer token or
// else the cookies called cookieName, read as RFC 6265 pairs (cookie.Pairs:
// a name smuggled inside another cookie's value is never one of them). It
// returns the claims, the verifier's Memo for the token that carried them
// (session.Verifier.VerifyForMemo) and whether the session cookie (not a
// bearer token) carried them, which the cross-origin guard needs; or nil and
// a code:
// CodeTenantMismatch when the only valid credential belongs to another
// tenant, CodeUnauthenticated otherwise.
//
// Two cookies holding different valid sessions of t are no session at all:
// a browser holds one genuine session per tenant (one name, one Path, no
// Domain), so the other was planted. A path tenant's __Secure- cookie can
// be, by any sibling subdomain, with a longer Path that browsers send
// first; taking the first valid one would sign the victim in as whichever
// member planted it.
func (a *Authorizer) authenticate(snap *tenants.Snapshot, t *tenants.Tenant, r *Request, cookieName string) (claims *session.Claims, memo *session.Memo, code string, byCookie bool) {
	mismatch := false
	try := func(token string) (*session.Claims, *session.Memo) {
		c, m, err := a.Verifier.VerifyForMemo(snap, t, token)
		if errors.Is(err, session.ErrTenantMismatch) {
			mismatch = true
		}
		return c, m
	}
	if tok, ok := bearerToken(r.Header("authorization")); ok {
		if c, m := try(tok); c != nil {
			return c, m, "", false
		}
	} else {
		var found *session.Claims
		var foundMemo *session.Memo
		tried := 0
		for p := range cookie.Pairs(r.Header("cookie")) {
			if p.Name != cookieName || p.Value == "" {
				continue
			}
			if tried++; tried > maxCookieCandidates {
				break
			}
			c, m := try(p.Value)
			switch {
			case c == nil:
			case found == nil:
				found, foundMemo = c, m
			case c.SID != found.SID:
				return nil, nil, CodeUnauthenticated, false
			}
		}
		if found != nil {
			return found, foundMemo, "", true
		}
	}
	if mismatch {
		return nil, nil, CodeTenantMismatch, false
	}
	return nil, nil, CodeUnauthenticated, false
}

func deny(status int, code string, t *tenants.Tenant) Decision {
	return Decision{Outcome: Deny, Status: status, Code: code, Tenant: t}
}

// bearerToken extracts the token of an "Authorization: Bearer" header (RFC
// 6750 §2.1; the scheme is case-insensitive).
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(scheme):])
	return tok, tok != ""
}

// isNavigation reports whether a request looks like a browser navigation,
// which is redirected to the sign-in page instead of getting a 401.
func isNavigation(r *Request) bool {
	if r.Method != "GET" && r.Method != "HEAD" {
		return false
	}
	return strings.Contains(strings.ToLower(r.Header("accept")), "text/html")
}

// loginURL is the same-host sign-in page for a tenant, carrying the original
// request target as rd.
func loginURL(prefix, target string) string {
	return prefix + signin.PathLogin + "?rd=" + url.QueryEscape(target)
}

// ruleTarget is the path rules are matched against: the query removed,
// percent-encoding decoded (so "/%61dmin/" cannot slip past an "/admin/" rule
// while the upstream decodes it), and, for path tenancy, relative to the
// tenant's prefix. The resolver has already refused encoded slashes, dots,
// backslashes and NULs, so decoding cannot create new segments.
func ruleTarget(raw, prefix string) (string, bool) {
	p := raw
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if strings.IndexByte(p, '%') >= 0 {
		d, err := url.PathUnescape(p)
		if err != nil {
			return "", false
		}
		p = d
	}
	if prefix != "" {
		p = strings.TrimPrefix(p, prefix)
		if p == "" {
			p = "/"
		}
	}
	return p, true
}

// ruleMatch is what a tenant's rules say about one request.
type ruleMatch struct {
	// rule is the first rule that matches, or nil.
	rule *tenants.Rule
	// refused is set when no rule matches but the path is under the path
	// of a rule that lists methods: the request is refused to everyone
	// (403 forbidden once authenticated).
	refused bool
}

// anonymous reports whether the matching rule lets anyone through.
func (m ruleMatch) anonymous() bool {
	return m.rule != nil && m.rule.Access == tenants.AccessAnonymous
}

// methodOverrideHeaders name the method an app is to run instead of a
// request's own: Symfony and Laravel honour X-HTTP-Method-Override on a
// POST by default, as do Rails' Rack::MethodOverride, ASP.NET Core's
// HttpMethodOverrideMiddleware and Express's method-override when installed.
var methodOverrideHeaders = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// maxOverriddenMethods bounds the distinct methods override headers may
// name; a client that names more is refused rather than costing a rule
// walk for each.
const maxOverriddenMethods = 4

// overriddenMethods returns every distinct method the request's override
// headers name, upper-cased as the frameworks upper-case them; each
// comma-separated value counts. Rules then decide each of them as well as
// the request's own method, so a POST the app runs as a DELETE needs what a
// DELETE needs. It reports false when they name more than
// maxOverriddenMethods. (A "_method" form field, which Rails and Laravel
// also honour, is in the body, which Check does not see: docs/rules.md.)
func overriddenMethods(r *Request) ([]string, bool) {
	var out []string
	for _, name := range methodOverrideHeaders {
		v := r.Header(name)
		if v == "" {
			continue
		}
		for m := range strings.SplitSeq(v, ",") {
			m = strings.ToUpper(strings.TrimSpace(m))
			if m == "" || slices.Contains(out, m) {
				continue
			}
			if len(out) == maxOverriddenMethods {
				return nil, false
			}
			out = append(out, m)
		}
	}
	return out, true
}

// matchRule applies the rules of CONTRACT.md ("Rules"): a rule matches when
// the path is under its path and, if it lists methods, the method is one of
// them, HEAD counting as GET and methods compared case-sensitively (RFC
// 9110 §9.1: "get" is not GET). The first matching rule decides. A request
// that no rule matches, on a path under the path of some rule that lists
// methods, is refused: listing methods never opens a path wider for the
// methods left out. No match and no such path leaves the tenant's default
// (authenticated).
//
// A rule path matches the same path and everything below it: "/admin" and
// "/admin/" both match "/admin/x" but neither matches "/administrator".
// Letters are compared exactly, but a path under some rule's path only when
// letters are compared without case ("/ADMIN/x", "/Public/") is refused
// whatever the rules say: many apps route paths without regard to case
// (Express and Koa by default, ASP.NET Core, files on a case-insensitive
// file system), so to them it is the rule's path, and it must neither
// escape a rule nor take an anonymous rule's grant.
func matchRule(rules []tenants.Rule, path, method string) ruleMatch {
	for i := range rules {
		if !pathUnder(path, rules[i].Path) && pathUnderFold(path, rules[i].Path) {
			return ruleMatch{refused: true}
		}
	}
	restricted := false
	for i := range rules {
		r := &rules[i]
		if !pathUnder(path, r.Path) {
			continue
		}
		if len(r.Methods) > 0 && !methodListed(r.Methods, method) {
			restricted = true
			continue
		}
		return ruleMatch{rule: r}
	}
	return ruleMatch{refused: restricted}
}

// methodListed reports whether method is one of methods, exactly, or is
// HEAD and GET is listed (RFC 9110 §9.3.2: HEAD is GET without the body, so
// a rule that decides a GET decides the HEAD of the same path too).
func methodListed(methods []string, method string) bool {
	return slices.Contains(methods, method) || method == "HEAD" && slices.Contains(methods, "GET")
}

func pathUnder(path, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix) || path == prefix[:len(prefix)-1]
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// pathUnderFold is pathUnder with letters compared without case (sameFold).
func pathUnderFold(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	rest, ok := cutPrefixFold(path, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

// cutPrefixFold reports whether s begins with prefix, letters compared
// without case (sameFold), and returns the rest of s.
func cutPrefixFold(s, prefix string) (string, bool) {
	for prefix != "" {
		if s == "" {
			return "", false
		}
		a, na := utf8.DecodeRuneInString(s)
		b, nb := utf8.DecodeRuneInString(prefix)
		if a != b && !sameFold(a, b) {
			return "", false
		}
		s, prefix = s[na:], prefix[nb:]
	}
	return s, true
}

// sameFold reports whether a case-insensitive router could take a and b for
// the same letter: one is in the other's case-folding orbit
// (unicode.SimpleFold, as strings.EqualFold and JavaScript's /i compare), or
// they upper- or lower-case alike (.NET's OrdinalIgnoreCase upper-cases, so
// dotless ı is I there).
func sameFold(a, b rune) bool {
	if unicode.ToUpper(a) == unicode.ToUpper(b) || unicode.ToLower(a) == unicode.ToLower(b) {
		return true
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}
