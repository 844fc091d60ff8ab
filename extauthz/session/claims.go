package session

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenType is the JWS "typ" header of a session token (RFC 8725 §3.11:
// explicit typing). VerifyFor refuses every other type, so a token of another
// kind, such as an IdP's id_token pasted into the cookie, never passes as a
// session even if it were signed by a key we trust.
const TokenType = "tg-session+jwt"

// Session lifetimes.
const (
	// DefaultTTL is how long a session lasts when Minter.TTL is zero.
	DefaultTTL = 12 * time.Hour
	// MaxTTL is the longest session a Minter signs and a Verifier accepts
	// (exp − iat). A revocation that lasts until RevocationExpires(now +
	// MaxTTL) outlives every token it covers.
	MaxTTL = 7 * 24 * time.Hour
)

// MaxTokenSize is the largest token, in bytes, that VerifyFor looks at; larger
// input is refused before any decoding, and Mint refuses to produce one.
const MaxTokenSize = 8 << 10

// Sign-in methods, as carried in the "method" claim and the x-auth-method
// header.
const (
	MethodPassword = "password"
	MethodOIDC     = "oidc"
	MethodSAML     = "saml"
	MethodSocial   = "social"
)

// Authentication method references (RFC 8176) a session's "amr" claim
// holds: how the person proved who they are. A password session has pwd,
// and otp or hwk when a second factor was checked too. An SSO session has
// none, unless its method requires the provider's MFA (docs/sso.md,
// "Requiring MFA at the identity provider"): then mfa, after those of the
// provider's references that are among these.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRHardware = "hwk"
	// AMRMFA is RFC 8176's "mfa": the sign-in used more than one factor,
	// as the identity provider confirmed it.
	AMRMFA = "mfa"
)

// validAMR reports whether every reference in amr is one Mint signs, none
// twice.
func validAMR(amr []string) bool {
	for i, a := range amr {
		switch a {
		case AMRPassword, AMROTP, AMRHardware, AMRMFA:
		default:
			return false
		}
		if slices.Contains(amr[:i], a) {
			return false
		}
	}
	return true
}

// validMethod reports whether m is one of the sign-in methods.
func validMethod(m string) bool {
	switch m {
	case MethodPassword, MethodOIDC, MethodSAML, MethodSocial:
		return true
	}
	return false
}

// Claims is what a session token says. It is what Mint signs and what Verify
// returns.
type Claims struct {
	// Subject is the user's id ("sub").
	Subject string
	// TenantID is the InternalID of the tenant the session belongs to
	// ("tid"). This, never Tenant, is what binds a session to a tenant.
	TenantID string
	// Tenant is the tenant's slug at sign-in ("tenant"); informational only.
	// Slugs can be deleted and re-registered, so it must not be trusted for
	// binding.
	Tenant string
	// Email is the user's email address at sign-in.
	Email string
	// Roles are the user's roles in the tenant, sorted: in a token, those
	// held at sign-in; from VerifyFor, those the snapshot holds now
	// (Snapshot.Membership), which are the ones that count. Callers must
	// not modify the slice: VerifyFor shares it between callers.
	Roles []string
	// SID is the session id ("sid"), random per sign-in; revocation of one
	// session names it.
	SID string
	// Method is how the user signed in: password, oidc, saml or social
	// ("method").
	Method string
	// AMR are the authentication method references of the sign-in
	// ("amr", RFC 8176): AMRPassword, then AMROTP or AMRHardware when a
	// second factor was checked; for an SSO sign-in whose method required
	// the provider's MFA, the provider's references among these and
	// AMRMFA. Empty for other SSO sessions and for sessions minted before
	// second factors existed. Callers must not modify the
	// slice VerifyFor returns: it is shared like Roles.
	AMR []string
	// IssuedAt and Expires are "iat" and "exp", whole seconds.
	IssuedAt time.Time
	Expires  time.Time
}

// MFA reports whether the sign-in checked a second factor, here or (mfa)
// at the identity provider: the value of the x-auth-mfa header.
func (c *Claims) MFA() bool {
	return slices.Contains(c.AMR, AMROTP) || slices.Contains(c.AMR, AMRHardware) || slices.Contains(c.AMR, AMRMFA)
}

// Issuer is the "iss" of every session of a tenant, named by InternalID.
func Issuer(tenantInternalID string) string { return "urn:tenantgate:tenant:" + tenantInternalID }

// Audience is the "aud" every session of a tenant must carry.
func Audience(tenantInternalID string) string { return "urn:tenantgate:session:" + tenantInternalID }

// CookieName is the session cookie's name: "__Host-tenantgate", or
// "tenantgate" when insecure (plain-http development, where the __Host-
// prefix, which requires Secure, cannot be used).
func CookieName(insecure bool) string {
	if insecure {
		return "tenantgate"
	}
	return "__Host-tenantgate"
}

// PathCookieName is the name a tenantgate cookie called hostName (its name
// for host tenancy, such as CookieName's) takes for the tenant tenantID when
// that tenant is reached by path tenancy ("/org/<id>/" on the apex host).
// Such a cookie is scoped with Path=/org/<id> so that tenants sharing a host
// never receive each other's cookie, and the __Host- prefix, which requires
// Path=/, becomes __Secure-: "__Host-tenantgate" is
// "__Secure-tenantgate.acme" for tenant acme, "tenantgate" is
// "tenantgate.acme". Tenant ids never hold a ".", so no tenant's name can
// equal another cookie's.
func PathCookieName(hostName, tenantID string) string {
	if rest, ok := strings.CutPrefix(hostName, "__Host-"); ok {
		return "__Secure-" + rest + "." + tenantID
	}
	return hostName + "." + tenantID
}

// sidBytes is the entropy of a session id: 128 bits.
const sidBytes = 16

// NewSID returns a fresh session id: 128 random bits from r (crypto/rand when
// r is nil), base64url without padding.
func NewSID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [sidBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("read session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// tokenClaims is the JSON payload of a session token.
type tokenClaims struct {
	jwt.RegisteredClaims
	TID    string   `json:"tid"`
	Tenant string   `json:"tenant,omitempty"`
	Email  string   `json:"email,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	SID    string   `json:"sid"`
	Method string   `json:"method,omitempty"`
	AMR    []string `json:"amr,omitempty"`
}
