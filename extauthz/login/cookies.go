package login

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/tenantgate/tenantgate/extauthz/cookie"
	"github.com/tenantgate/tenantgate/extauthz/seal"
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

// cookiesNamed returns the request's cookies called name, in the order
// sent. Every cookie the sign-in pages read goes through here or
// requestCookies, which parse the Cookie header as the Check path does
// (cookie.Pairs: RFC 6265, ";" only), never with a parser of their own: a
// name smuggled inside another cookie's value (x="a, __Host-…=v") is never
// a cookie.
func cookiesNamed(r *http.Request, name string) []*http.Cookie {
	var out []*http.Cookie
	for _, line := range r.Header["Cookie"] {
		for p := range cookie.Pairs(line) {
			if p.Name == name {
				out = append(out, &http.Cookie{Name: p.Name, Value: p.Value})
			}
		}
	}
	return out
}

// requestCookies returns every named cookie of the request, in the order
// sent, parsed as cookiesNamed parses them.
func requestCookies(r *http.Request) []*http.Cookie {
	var out []*http.Cookie
	for _, line := range r.Header["Cookie"] {
		for p := range cookie.Pairs(line) {
			if p.Name != "" {
				out = append(out, &http.Cookie{Name: p.Name, Value: p.Value})
			}
		}
	}
	return out
}

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

// hostCookie is a cookie called base (hostCookieName) for the request:
// host-only, Path=/, HttpOnly, SameSite=Lax, Secure unless insecure. maxAge
// < 0 deletes it.
func (h *Handler) hostCookie(q *request, base, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     h.hostCookieName(q, base),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !h.InsecureCookies,
		SameSite: http.SameSiteLaxMode,
	}
}

// sealJSON encodes v as JSON and seals it with s, bound to context, in
// unpadded base64url: the value of a sealed cookie or code.
func sealJSON(s *seal.Sealer, v any, context string) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode sealed value: %w", err)
	}
	sealed, err := s.Seal(plain, context)
	if err != nil {
		return "", fmt.Errorf("seal value: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openJSON reverses sealJSON into v. It reports false for a value longer
// than maxLen, not base64url, sealed under another key or context, or not
// JSON of v's type.
func openJSON(s *seal.Sealer, raw string, maxLen int, context string, v any) bool {
	if raw == "" || len(raw) > maxLen {
		return false
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(raw)
	if err != nil {
		return false
	}
	plain, err := s.Open(sealed, context)
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}
