package cookie

import "strings"

// The bases of tenantgate's cookie names: the names tenantgate sets, less
// the "__Host-" or "__Secure-" prefix (dropped with --insecure-cookies) and
// less the ".<tenant id>" that path tenancy appends (session.PathCookieName
// and the sign-in pages' host cookies). The sign-in pages and the session
// package spell the full names; their tests hold every name they set to
// Owned.
var ownedBases = [...]string{
	"tenantgate",             // the session (session.CookieName)
	"tenantgate-csrf",        // the sign-in forms' pre-auth value
	"tenantgate-global",      // the apex host's global session
	"tenantgate-switch",      // the tenant-switch verifier
	"tenantgate-intent",      // the apex chooser's remembered choice
	"tenantgate-mfa",         // the second sign-in step's state
	"tenantgate-mfa-passkey", // the second step's passkey ceremony
	"tg-passkey",             // the account page's passkey ceremony
	"tg-idt",                 // the ID-token hint for SSO sign-out
}

// ownedPrefix begins the name of every sign-in attempt cookie
// ("tg-attempt-<attempt id>").
const ownedPrefix = "tg-attempt-"

// Owned reports whether a cookie name is one tenantgate sets: a session
// cookie for host or path tenancy, or any of the sign-in pages' cookies,
// with or without the __Host-/__Secure- prefix and for any tenant. Such
// cookies are tenantgate's business alone and are taken out of the Cookie
// header the upstream receives. The match is exact and case-sensitive, as
// cookie names are; an application's own cookie of another name is never
// Owned.
func Owned(name string) bool {
	if rest, ok := strings.CutPrefix(name, "__Host-"); ok {
		name = rest
	} else if rest, ok := strings.CutPrefix(name, "__Secure-"); ok {
		name = rest
	}
	if id, ok := strings.CutPrefix(name, ownedPrefix); ok {
		return id != ""
	}
	base, tenant, scoped := strings.Cut(name, ".")
	if scoped && (tenant == "" || strings.Contains(tenant, ".")) {
		return false
	}
	for _, b := range ownedBases {
		if base == b {
			return true
		}
	}
	return false
}
