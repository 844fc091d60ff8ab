package login

import (
	"github.com/tenantgate/tenantgate/extauthz/session"
)

// Cookie scopes (docs/tenancy.md). Every cookie tenantgate sets is
// host-only: no Domain attribute, so no cookie is ever shared with, or
// settable by, a sibling subdomain's tenantgate. What differs is the tenancy:
//
//   - host tenancy and the apex host: the __Host- prefix (Secure, Path=/,
//     no Domain, enforced by the browser);
//   - path tenancy ("/org/<id>/" on the apex host): the session cookie is
//     session.PathCookieName ("__Secure-tenantgate.<id>") with
//     Path=/org/<id>, so tenants sharing the host never receive each other's
//     session. Cookies that are not credentials and are already bound to the
//     tenant inside (the CSRF pre-auth value, SSO attempts) keep __Host- and
//     Path=/, which a sibling subdomain cannot overwrite ("cookie tossing")
//     as it could a __Secure- cookie; the per-session ones (the ID-token
//     hint, the switch verifier) get the tenant id in their name so two path
//     tenants do not overwrite each other's.
//
// With InsecureCookies the __Host-/__Secure- prefixes are dropped (they
// require Secure) and nothing else changes.

// sessionCookieName is the name of the request's tenant's session cookie.
func (h *Handler) sessionCookieName(q *request) string {
	name := session.CookieName(h.InsecureCookies)
	if q.res.Prefix != "" {
		return session.PathCookieName(name, q.tenant().ID)
	}
	return name
}

// sessionCookiePath is the Path of the request's tenant's session cookie:
// "/" for host tenancy, the tenant's prefix ("/org/acme") for path tenancy.
// A cookie with Path=/org/acme is sent to /org/acme and everything under
// /org/acme/, never to /org/acmex (RFC 6265 §5.1.4).
func sessionCookiePath(q *request) string {
	if q.res.Prefix != "" {
		return q.res.Prefix
	}
	return "/"
}

// hostCookieName is the name of a host-wide (Path=/) cookie called base
// ("tenantgate-switch"): "__Host-"+base, or base when insecure; for a path
// tenant the tenant id follows a ".", so two path tenants on one host each
// have their own.
func (h *Handler) hostCookieName(q *request, base string) string {
	name := base
	if !h.InsecureCookies {
		name = "__Host-" + base
	}
	if q.res.Prefix != "" {
		name += "." + q.tenant().ID
	}
	return name
}
