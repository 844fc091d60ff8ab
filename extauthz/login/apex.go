package login

import (
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
)

// discoveryNotice is what discovery says whenever it does not redirect,
// whatever the input was: it never tells which domains have tenants.
const discoveryNotice = "If your organisation uses tenantgate, you will be taken to its sign-in page. " +
	"If nothing happened, check the address, or ask your administrator for your organisation's sign-in link."

// discoverPage: GET /_auth/login on the apex host, the email form of
// home-realm discovery.
func (h *Handler) discoverPage(q *request) {
	h.renderDiscover(q, "")
}

func (h *Handler) renderDiscover(q *request, notice string) {
	h.render(q, http.StatusOK, "discover", page{
		Title:       "Sign in",
		Action:      pathLogin,
		CSRF:        h.formCSRF(q),
		Notice:      notice,
		formTargets: h.scheme() + "://*." + q.res.Host + requestPort(q.r.Host),
	})
}

// discover: POST /_auth/login on the apex host with email and csrf. It
// redirects to the sign-in page of the tenant owning the email's domain
// (exact match with Snapshot.ByEmailDomain), carrying the address as
// login_hint, or shows the same neutral notice for anything else.
func (h *Handler) discover(q *request) {
	if !h.parseForm(q) || !h.checkCSRF(q) {
		return
	}
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
		h.renderDiscover(q, discoveryNotice)
		return
	}
	target := h.scheme() + "://" + t.ID + "." + q.res.Host + requestPort(q.r.Host) +
		pathLogin + "?" + url.Values{"login_hint": {addr}}.Encode()
	redirect(q.w, target)
}

// discoveryDomain parses raw as exactly one bare addr-spec (RFC 5322 §3.4.1)
// with net/mail: no display name, no angle brackets, no list, no comment.
// The domain is what follows the last "@", canonicalised like a tenant's
// email domains (ASCII-only lower-casing, IDNA A-labels, one trailing dot
// dropped); a domain literal such as "[127.0.0.1]" is refused (security
// catalogue §1 item 12).
func discoveryDomain(raw string) (addr, domain string, ok bool) {
	if raw == "" || len(raw) > maxEmailBytes || strings.ContainsAny(raw, "<>,;") || hasControl(raw) {
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
	return a.Address, d, true
}

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
