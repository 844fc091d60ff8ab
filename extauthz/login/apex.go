package login

import (
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// discoveryNotice is what discovery says whenever it does not redirect,
// whatever the input was: it never tells which domains have tenants.
const discoveryNotice = "If your organisation uses tenantgate, you will be taken to its sign-in page. " +
	"If nothing happened, check the address, or ask your administrator for your organisation's sign-in link."

// apexPage: GET /_auth/login on the apex host. With a global session, the
// chooser of the person's organisations; otherwise the email form of
// home-realm discovery and, when global sessions are enabled, a password
// form that starts one.
func (h *Handler) apexPage(q *request) {
	_, user, ok, answered := h.signedIn(q)
	switch {
	case answered:
	case ok:
		h.chooser(q, user, "")
	default:
		h.renderApex(q, http.StatusOK, "", "")
	}
}

// renderApex renders the apex sign-in page with a notice or an error.
func (h *Handler) renderApex(q *request, status int, notice, errMsg string) {
	h.render(q, status, "apex", page{
		Title:       "Sign in",
		Action:      signin.PathLogin,
		CSRF:        h.formCSRF(q),
		Notice:      notice,
		Error:       errMsg,
		Password:    h.globalEnabled(),
		formTargets: h.discoveryFormTargets(q),
	})
}

// discoveryFormTargets extends form-action for forms whose POST may
// redirect to a tenant host (browsers hold that redirect to form-action):
// with SSO methods wired, any IdP as well (ssoFormTargets, which covers
// every https tenant host); otherwise every <id>.<apex> with the request's
// port, unless tenants are reached by path on this host.
func (h *Handler) discoveryFormTargets(q *request) string {
	if h.Methods != nil {
		// A tenant whose only method is SSO sends the browser straight on
		// to its IdP, and form-action governs every redirect that follows
		// the POST: the IdP must be a permitted target too.
		return h.ssoFormTargets()
	}
	if h.PathLinks {
		return ""
	}
	return h.scheme() + "://*." + q.res.Host + requestPort(q.r.Host)
}

// apexPost: POST /_auth/login on the apex host. A non-empty password (with
// global sessions enabled) is a global sign-in; anything else, in particular
// only email and csrf (CONTRACT.md), is home-realm discovery.
func (h *Handler) apexPost(q *request) {
	if !h.parseForm(q) || !h.checkCSRF(q) {
		return
	}
	if h.globalEnabled() && q.r.PostForm.Get("password") != "" {
		h.globalSignIn(q)
		return
	}
	h.discover(q)
}

// discover: home-realm discovery, for a POST whose form and CSRF token are
// already checked. It redirects to the sign-in page of the tenant owning
// the email's domain (exact match with Snapshot.ByEmailDomain), carrying
// the address as login_hint, or shows the same neutral notice for anything
// else, whatever the input. Every lookup counts against the client
// address's discovery limit (429 over it).
func (h *Handler) discover(q *request) {
	if !h.discovery.take(counterKey("discovery", h.clientKey(q.r)), h.now()) {
		h.refuse(q, "discovery_limited", "")
		q.w.Header().Set("Retry-After", "60")
		h.message(q, http.StatusTooManyRequests, "Too many attempts",
			"Too many attempts from your network. Wait a few minutes and try again.", true)
		return
	}
	addr, domain, ok := discoveryDomain(q.r.PostForm.Get("email"))
	var t *tenants.Tenant
	if ok {
		t = q.snap.ByEmailDomain(domain)
	}
	if t == nil {
		h.refuse(q, "discovery_no_match", "")
		h.renderApex(q, http.StatusOK, discoveryNotice, "")
		return
	}
	redirect(q.w, h.tenantURL(q, t)+signin.PathLogin+"?"+url.Values{"login_hint": {addr}}.Encode())
}

// tenantURL is the root of tenant t as seen from the apex host of the
// request: scheme://<id>.<apex>[:port], or with PathLinks
// scheme://<apex>[:port]<path-prefix>/<id>. /_auth/ paths follow it.
func (h *Handler) tenantURL(q *request, t *tenants.Tenant) string {
	port := requestPort(q.r.Host)
	if h.PathLinks {
		return h.scheme() + "://" + q.res.Host + port + h.pathPrefix() + "/" + t.ID
	}
	return h.scheme() + "://" + t.ID + "." + q.res.Host + port
}

// pathPrefix is the resolver's path-tenancy prefix ("/org").
func (h *Handler) pathPrefix() string {
	if h.Resolver.PathPrefix == "" {
		return tenants.DefaultPathPrefix
	}
	return h.Resolver.PathPrefix
}

// emailHint returns s, trimmed, when it is one bare addr-spec that
// discovery would accept (discoveryDomain), else "": a login_hint is shown
// in the email field and passed to providers only when it is an address.
func emailHint(s string) string {
	addr, _, ok := discoveryDomain(s)
	if !ok {
		return ""
	}
	return addr
}

// discoveryDomain parses raw as exactly one bare addr-spec (RFC 5322
// §3.4.1) with net/mail: no display name, no angle brackets, no list or
// group, no comment (not even an empty "()"), no folding whitespace inside,
// no domain literal. The domain is what follows the last "@" of the parsed
// address (so a quoted local part holding "@" cannot smuggle in another
// domain), canonicalised like a tenant's email domains by
// tenants.CanonicalDomain: ASCII letters lower-cased and nothing else
// folded (KELVIN SIGN U+212A or a long s stay non-ASCII and are refused by
// the IDNA registration profile instead of becoming "k" or "s"), non-ASCII
// labels turned into A-labels ("xn--…"), so a lookalike never equals the
// domain it imitates. addr is the input with surrounding space removed.
// Security catalogue §1 items 12 and 13.
func discoveryDomain(raw string) (addr, domain string, ok bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxEmailBytes || hasControl(raw) || strings.ContainsAny(raw, addrSpecRefused) {
		return "", "", false
	}
	a, err := mail.ParseAddress(raw)
	if err != nil || a.Name != "" {
		return "", "", false
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 {
		return "", "", false
	}
	d := a.Address[at+1:]
	if strings.HasPrefix(d, "[") {
		return "", "", false
	}
	d, err = tenants.CanonicalDomain(d)
	if err != nil {
		return "", "", false
	}
	return raw, d, true
}

// addrSpecRefused are bytes that never belong in the bare addr-spec people
// type, but that net/mail reads as structure: angle brackets (an angle-addr
// with a display name), "," (a list), ":" and ";" (a group), parentheses (a
// comment, which net/mail may drop or use as the name), "[" and "]" (a domain
// literal, or an IPv6 one), "\" (a quoted pair) and spaces (folding
// whitespace around the parts).
const addrSpecRefused = "<>,;:()[]\\ \t"

func (h *Handler) scheme() string {
	if h.InsecureCookies {
		return "http"
	}
	return "https"
}

// requestPort returns ":port" from a Host header the resolver has accepted
// (a domain, never an IPv6 literal, on the apex), or "".
func requestPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host, "]") {
		return host[i:]
	}
	return ""
}
