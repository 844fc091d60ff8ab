package extauthz

import (
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
)

// CodeCrossOrigin is the deny code of the cross-origin request guard
// (CONTRACT.md, Check table).
const CodeCrossOrigin = "cross_origin"

// crossOrigin reports whether the cross-origin request guard refuses a
// request that tenantgate's session cookie authenticated (CONTRACT.md: 403
// cross_origin). Every tenant of a base domain is the same *site* to a
// browser, so SameSite=Lax cookies ride along on a sibling tenant's form POST
// or fetch; only the origin tells the two apart (security-catalogue §52).
//
// It refuses an unsafe method (anything but GET, HEAD, OPTIONS and TRACE;
// methods are case-sensitive, so "post" is unsafe too), or a request that
// asks to switch protocols (an Upgrade header: a WebSocket handshake, which
// is a GET), when
// Sec-Fetch-Site is same-site, cross-site or any value but same-origin and
// none, or, without Sec-Fetch-Site, when Origin is present and is not the
// request's own origin ("null" and anything unparsable are foreign). An
// origin in the tenant's trustedOrigins passes either way. A request with
// neither header passes: it is not from a browser that would attach the
// cookie on a page's behalf (Go's http.CrossOriginProtection reasons the same
// way). Bearer-token requests never come here: a browser does not attach an
// Authorization header by itself.
//
// A WebSocket handshake is guarded although it is a GET: browsers attach
// cookies to it without any CORS check, and the channel it opens both acts
// and reads answers, so a sibling tenant's page could otherwise use the
// person's session both ways (cross-site WebSocket hijacking).
func crossOrigin(t *tenants.Tenant, r *Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		if r.Header("upgrade") == "" {
			return false
		}
	}
	if !t.GuardsCrossOrigin() {
		return false
	}
	origin := r.Header("origin")
	switch r.Header("sec-fetch-site") {
	case "same-origin", "none":
		return false
	case "":
		if origin == "" {
			return false
		}
		o, err := tenants.ParseOrigin(origin)
		if err != nil {
			return true
		}
		return !sameOrigin(o, r) && !t.TrustsOrigin(o.String())
	default:
		o, err := tenants.ParseOrigin(origin)
		return err != nil || !t.TrustsOrigin(o.String())
	}
}

// sameOrigin reports whether o is the origin the browser sent r to: the
// same scheme, host and port. The scheme is X-Forwarded-Proto's (Envoy sets
// it at the edge; a trusted load balancer in front sets it for the browser's
// connection), else the Check's scheme, else https. The host is the
// request's canonical host. The port is the Host header's, else
// X-Forwarded-Port's; when neither says (Envoy's strip_any_host_port, which
// envoy/envoy.yaml uses, takes it off the Host), the port is not compared.
// A browser page cannot set either header on a request it sends with the
// person's cookies without the app's CORS consent, so they cannot be used to
// pass the guard.
func sameOrigin(o tenants.Origin, r *Request) bool {
	scheme := strings.ToLower(strings.TrimSpace(firstValue(r.Header("x-forwarded-proto"))))
	if scheme != "http" && scheme != "https" {
		scheme = strings.ToLower(r.Scheme)
		if scheme != "http" && scheme != "https" {
			scheme = "https"
		}
	}
	if o.Scheme != scheme {
		return false
	}
	host, err := tenants.CanonicalHost(r.Host)
	if err != nil || o.Host != host {
		return false
	}
	port, known := requestPort(r)
	if !known {
		return true
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	return o.Port == port
}

// requestPort is the port the browser connected to, when the request says:
// from the Host header, else from a single numeric X-Forwarded-Port.
func requestPort(r *Request) (string, bool) {
	h := r.Host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		return strings.TrimLeft(h[i+1:], "0"), true
	}
	p := strings.TrimSpace(r.Header("x-forwarded-port"))
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return "", false
	}
	p = strings.TrimLeft(p, "0")
	return p, p != ""
}

// firstValue is the first of the comma-joined values Envoy delivers for a
// repeated header.
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		return v[:i]
	}
	return v
}
