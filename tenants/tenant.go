package tenants

import (
	"bytes"
	"slices"
	"time"
)

// Status says whether a tenant may be used.
type Status string

const (
	// StatusActive tenants serve requests and sign people in.
	StatusActive Status = "active"
	// StatusSuspended tenants refuse every request (403 tenant_suspended) and
	// every sign-in, but keep their configuration, members and keys.
	StatusSuspended Status = "suspended"
)

// Tenant is one customer of the SaaS product, as an operator describes it in a
// tenant file, plus the fields the store assigns (InternalID, Keys, Created).
type Tenant struct {
	// ID is the operator-chosen slug: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?.
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Domains are extra exact hosts (custom domains) that resolve to this
	// tenant, stored canonical (lower-case A-labels, no port, no trailing dot).
	Domains []string `json:"domains,omitempty" yaml:"domains,omitempty"`
	// EmailDomains are the verified email domains used for home-realm
	// discovery. A domain belongs to at most one tenant.
	EmailDomains []string `json:"emailDomains,omitempty" yaml:"emailDomains,omitempty"`
	// Status is active unless set otherwise; empty means active.
	Status  Status          `json:"status,omitempty" yaml:"status,omitempty"`
	Methods []Method        `json:"methods,omitempty" yaml:"methods,omitempty"`
	Roles   map[string]Role `json:"roles,omitempty" yaml:"roles,omitempty"`
	Rules   []Rule          `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Branding is how the tenant's sign-in pages look, beyond Name (the
	// display name). Optional: a tenant file without it gets the default
	// look.
	Branding Branding `json:"branding,omitzero" yaml:"branding,omitempty"`
	// PassSessionCookie lets the upstream app receive the tenant's session
	// cookie in its Cookie header. Off (the default), Check takes every
	// cookie of tenantgate's out of the Cookie header sent upstream, so an
	// app's logs or bugs cannot leak a session; with it on, only the
	// session cookie is kept (the sign-in pages' cookies still go). For an
	// app that must read the session token itself.
	PassSessionCookie bool `json:"passSessionCookie,omitempty" yaml:"passSessionCookie,omitempty"`
	// MFA is the tenant's second-factor policy for password sign-in
	// (docs/accounts.md): "" or "off", none; "optional", members may
	// enrol a second factor and then must use it at every sign-in;
	// "required", every member must, and one without a factor enrols
	// right after the password, before any session is issued.
	MFA string `json:"mfa,omitempty" yaml:"mfa,omitempty"`
	// CrossOriginGuard, when explicitly false, turns the cross-origin
	// request guard off for this tenant (see GuardsCrossOrigin). nil and
	// true mean on.
	CrossOriginGuard *bool `json:"crossOriginGuard,omitempty" yaml:"crossOriginGuard,omitempty"`
	// TrustedOrigins are exact origins (scheme://host[:port]) whose
	// cookie-authenticated unsafe requests the guard lets through. Validate
	// stores them canonical: lower case, without the scheme's default port.
	TrustedOrigins []string `json:"trustedOrigins,omitempty" yaml:"trustedOrigins,omitempty"`

	// InternalID is assigned by the store on creation and never changes or
	// repeats. Sessions and memberships carry it instead of ID.
	InternalID string `json:"-" yaml:"-"`
	// Keys are the tenant's session signing keys, newest first. The private
	// halves are sealed under the master key; the store never sees them in
	// the clear.
	Keys []SigningKey `json:"-" yaml:"-"`
	// SAMLKey is the tenant's SAML service-provider key and certificate,
	// created when the tenant first has a saml method; nil otherwise.
	SAMLKey *SAMLKey `json:"-" yaml:"-"`
	// Created is when the store first saw the tenant.
	Created time.Time `json:"-" yaml:"-"`
}

// Branding is a tenant's look on its sign-in pages. Both fields are optional;
// Validate checks them (LogoOrigin, ParseAccentColor).
type Branding struct {
	// LogoURL is an absolute https:// URL of an image shown above the
	// tenant's name. The person's browser fetches it, so the page's
	// Content-Security-Policy allows images from exactly its origin.
	LogoURL string `json:"logoURL,omitempty" yaml:"logoURL,omitempty"`
	// AccentColor is "#rgb" or "#rrggbb": the colour of the primary button
	// and, where it is readable on the page background, of links and focus
	// rings. The button's text colour is chosen for contrast.
	AccentColor string `json:"accentColor,omitempty" yaml:"accentColor,omitempty"`
}

// SAMLKey is a tenant's SAML SP signing key pair.
type SAMLKey struct {
	// Certificate is the DER X.509 certificate published in SP metadata.
	Certificate []byte
	// SealedPrivate is the PKCS #8 private key sealed under the master key,
	// bound to the tenant's InternalID.
	SealedPrivate []byte
	Created       time.Time
}

// Equal reports whether k and o are the same key (both nil, or the same
// certificate, sealed private key and creation time).
func (k *SAMLKey) Equal(o *SAMLKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return bytes.Equal(k.Certificate, o.Certificate) && bytes.Equal(k.SealedPrivate, o.SealedPrivate) && k.Created.Equal(o.Created)
}

// Role is a named set of permissions, scoped to one tenant. A role also has
// the permissions of every role it inherits, transitively
// (Snapshot.HasPermission).
type Role struct {
	Permissions []string `json:"permissions,omitempty" yaml:"permissions,omitempty"`
	Inherits    []string `json:"inherits,omitempty" yaml:"inherits,omitempty"`
}

// Access values for a Rule.
const (
	AccessAnonymous     = "anonymous"
	AccessAuthenticated = "authenticated"
)

// Rule decides who may reach a path (CONTRACT.md, "Rules"; docs/rules.md).
// Rules are evaluated in order and the first whose Path covers the request
// path (the same path or one below it, by whole segments) and whose Methods,
// if any, include the request method (HEAD counting as GET, compared
// case-sensitively) decides. A request no rule matches is refused (403
// forbidden, once authenticated) when its path is under the Path of a rule
// that lists Methods, and otherwise needs an authenticated member of the
// tenant: listing methods never opens a path wider for the methods left out.
type Rule struct {
	Path string `json:"path" yaml:"path"`
	// Methods, when set, are upper-case HTTP method tokens ("GET",
	// "POST"); omitted, the rule matches every method.
	Methods []string `json:"methods,omitempty" yaml:"methods,omitempty"`
	// Access is anonymous or authenticated; empty means authenticated, or,
	// with Permission set, a member holding that permission.
	Access     string `json:"access,omitempty" yaml:"access,omitempty"`
	Permission string `json:"permission,omitempty" yaml:"permission,omitempty"`
}

// SigningKey is one of a tenant's session signing keys.
type SigningKey struct {
	// KID is the key id written in the JWT header and the JWKS.
	KID string
	// Alg is the JOSE algorithm: "EdDSA" or "ES256".
	Alg string
	// Public is the PKIX (DER) encoding of the public key.
	Public []byte
	// SealedPrivate is the PKCS #8 private key sealed under the master key,
	// bound to the tenant's InternalID.
	SealedPrivate []byte
	Created       time.Time
	// RetireAt is when a key that is no longer current stops verifying:
	// zero for the current key (Keys[0]), which never retires while it
	// signs. Store.RotateKey sets it on the keys a rotation replaces; a key
	// past it verifies nothing (Verifies) and the next rotation removes it.
	RetireAt time.Time
}

// Verifies reports whether sessions signed with k are accepted at now: k has
// no retire time, or now is before it. Verification and the JWKS both ask
// it, so a retired key stops working on its own, without a write.
func (k *SigningKey) Verifies(now time.Time) bool {
	return k.RetireAt.IsZero() || now.Before(k.RetireAt)
}

// MFA policies (Tenant.MFA).
const (
	MFAOff      = "off"
	MFAOptional = "optional"
	MFARequired = "required"
)

// MFAOn reports whether the tenant's password sign-in has a second step
// (mfa optional or required).
func (t *Tenant) MFAOn() bool { return t.MFA == MFAOptional || t.MFA == MFARequired }

// MFARequired reports whether every member must sign in with a second
// factor.
func (t *Tenant) MFARequired() bool { return t.MFA == MFARequired }

// GuardsCrossOrigin reports whether Check refuses this tenant's
// cookie-authenticated unsafe requests that come from another origin
// (CONTRACT.md, cross_origin). On unless crossOriginGuard is false.
func (t *Tenant) GuardsCrossOrigin() bool {
	return t.CrossOriginGuard == nil || *t.CrossOriginGuard
}

// TrustsOrigin reports whether origin, in the canonical form CanonicalOrigin
// returns, is one of the tenant's trustedOrigins.
func (t *Tenant) TrustsOrigin(origin string) bool {
	return slices.Contains(t.TrustedOrigins, origin)
}

// Suspended reports whether the tenant refuses requests and sign-ins.
func (t *Tenant) Suspended() bool { return t.Status == StatusSuspended }

// HasMethod reports whether the tenant offers a method of the given type.
func (t *Tenant) HasMethod(typ string) bool {
	return slices.ContainsFunc(t.Methods, func(m Method) bool { return m.Type == typ })
}

// User is a global identity: one email, one password, any number of
// memberships in tenants.
type User struct {
	// ID is random, assigned by the store, and never reused.
	ID string
	// Email is stored lower-case.
	Email string
	// PasswordHash is a PHC-format argon2id string, or empty for a user who
	// cannot sign in with a password.
	PasswordHash string
	Created      time.Time
	// FirstSeen is set by Store.UpsertExternalUser when that call created
	// the user: the identity's first sign-in to the tenant (an audit
	// event). It is never stored.
	FirstSeen bool
}

// Member is a user together with their roles in one tenant.
type Member struct {
	User  User
	Roles []string
}

// Revocation makes sessions unusable before they expire. Key names what is
// revoked: SessionRevocationKey for one session, UserRevocationKey for every
// session of a user in a tenant issued up to NotBefore. The store keeps a
// revocation until Expires, after which every token it covers has expired on
// its own.
type Revocation struct {
	Key       string
	NotBefore time.Time
	Expires   time.Time
}

// SessionRevocationKey is the revocation key for one session id (the sid
// claim).
func SessionRevocationKey(sid string) string { return "sid:" + sid }

// UserRevocationKey is the revocation key for every session of a user in one
// tenant, both named by internal ids.
func UserRevocationKey(tenantInternalID, userID string) string {
	return "user:" + tenantInternalID + ":" + userID
}
