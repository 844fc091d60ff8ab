// Package record is the stored form of tenantgate's data, shared by every
// tenants.Store backend: one encoding, two backends (boltstore keeps records
// in bbolt buckets, etcdstore under etcd keys), so that a record means the
// same in both and moves between them unchanged.
//
// Every record is JSON of a type of this package carrying "v", so the
// tenants model can change without rewriting stored data; a record of any
// other version than its type's is refused, never guessed at. The record
// types are deliberately separate from the tenants model (STYLE.md): the
// model may grow or rename fields while data written by an older binary
// stays readable. Field names are fixed JSON keys. Plaintext client secrets
// have no field to be written to.
//
// Keys (MembershipKey, ExternalKey, AssertionKey) are part of the encoding:
// both backends name the same record the same way under their own
// namespace (a bbolt bucket, an etcd key prefix).
package record

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// Version is the stored version of every record but the tenant records
// (TenantVersion) and the schema record (SchemaVersion). A record with any
// other "v" than its type's is refused, never guessed at: it was written by
// a newer tenantgate or it is damage.
const Version = 1

// TenantVersion is the version of tenant records. Version 1 (until schema
// 1) held every method type's fields in one method record; version 2 keeps
// each method's own configuration as opaque bytes. boltstore migrates
// version 1 records; etcdstore never had them.
const TenantVersion = 2

// SchemaVersion is the layout of a store: 1 had tenant records of version
// 1, 2 has them of version 2, and 3 has them of version 2 with every saml
// method keyed by its NameID stating its nameIDFormat (UpgradeToSchema3:
// from 3 on, a saml method without one means persistent). 4 is 3 whose
// memberships may hold second factors (Membership.Factors: TOTP and
// recovery codes; and passkeys, in their own namespace, Passkey) and whose
// tenants may ask for them (mfa optional or required): no record changes
// on the way from 3, but a tenantgate that reads only 3 must not open such
// a store, because it would sign people in with the password alone and
// drop the factors of every membership whose roles it rewrites. Passkeys
// came with TOTP in the same release, so 4 covers both: no tenantgate
// reads 4 without knowing passkeys. A store of a newer schema is refused.
const SchemaVersion = 4

// Limits on what tenantgate ever stores: keys are slugs, domains, emails,
// ids and revocation keys; the largest values are tenants with inline SAML
// metadata. A backend refuses, as tenants.ErrCorrupt, anything larger.
const (
	MaxKeyLen   = 1024
	MaxValueLen = 16 << 20
)

// Tenant is one tenant, stored under its slug ("tenants").
// There is no field for a plaintext client secret: only sealed ones are
// written (Method.Sealed).
type Tenant struct {
	V            int             `json:"v"`
	ID           string          `json:"id"`
	InternalID   string          `json:"internalID"`
	Name         string          `json:"name,omitempty"`
	Domains      []string        `json:"domains,omitempty"`
	EmailDomains []string        `json:"emailDomains,omitempty"`
	Status       string          `json:"status,omitempty"`
	Methods      []Method        `json:"methods,omitempty"`
	Roles        map[string]Role `json:"roles,omitempty"`
	Rules        []Rule          `json:"rules,omitempty"`
	Keys         []Key           `json:"keys,omitempty"`
	SAMLKey      *SAMLKey        `json:"samlKey,omitempty"`
	Created      time.Time       `json:"created"`
	// Branding was added within version 1: records written before it have
	// no such key and read as the default look; an older binary ignores it.
	Branding *Branding `json:"branding,omitempty"`
	// PassSessionCookie was added within version 1 the same way: a record
	// without the key reads as false (the session cookie is kept from the
	// app), and false is written as no key.
	PassSessionCookie bool `json:"passSessionCookie,omitempty"`
	// MFA, CrossOriginGuard and TrustedOrigins were added within version 1
	// too: records written before them read as mfa off and the guard on
	// with no trusted origins; an older binary ignores them, which leaves
	// its guard on and stricter, never weaker.
	MFA              string   `json:"mfa,omitempty"`
	CrossOriginGuard *bool    `json:"crossOriginGuard,omitempty"`
	TrustedOrigins   []string `json:"trustedOrigins,omitempty"`
}

// Branding is a tenant's sign-in page look (tenants.Branding).
type Branding struct {
	LogoURL     string `json:"logoURL,omitempty"`
	AccentColor string `json:"accentColor,omitempty"`
}

// SAMLKey is a tenant's SAML SP key; the private half stays sealed.
type SAMLKey struct {
	Certificate   []byte    `json:"certificate"`
	SealedPrivate []byte    `json:"sealedPrivate"`
	Created       time.Time `json:"created"`
}

// Method is one of a tenant's sign-in methods. Config is the method
// type's own configuration, opaque here: its package encodes and decodes it
// (tenants.Method.Config), so a new method field changes no record.
type Method struct {
	Type         string              `json:"type"`
	Label        string              `json:"label,omitempty"`
	Config       json.RawMessage     `json:"config,omitempty"`
	Sealed       []byte              `json:"sealed,omitempty"`
	GroupRoles   map[string][]string `json:"groupRoles,omitempty"`
	DefaultRoles []string            `json:"defaultRoles,omitempty"`
}

func (r Method) ToMethod() tenants.Method {
	return tenants.Method{Type: r.Type, Label: r.Label, Config: r.Config, Sealed: r.Sealed,
		Roles: tenants.RoleMapping{GroupRoles: r.GroupRoles, DefaultRoles: r.DefaultRoles}}.Clone()
}

func FromMethod(m tenants.Method) Method {
	m = m.Clone()
	return Method{Type: m.Type, Label: m.Label, Config: m.Config, Sealed: m.Sealed,
		GroupRoles: m.Roles.GroupRoles, DefaultRoles: m.Roles.DefaultRoles}
}

type Role struct {
	Permissions []string `json:"permissions,omitempty"`
	Inherits    []string `json:"inherits,omitempty"`
}

type Rule struct {
	Path       string   `json:"path"`
	Methods    []string `json:"methods,omitempty"`
	Access     string   `json:"access,omitempty"`
	Permission string   `json:"permission,omitempty"`
}

type Key struct {
	KID           string    `json:"kid"`
	Alg           string    `json:"alg"`
	Public        []byte    `json:"public"`
	SealedPrivate []byte    `json:"sealedPrivate"`
	Created       time.Time `json:"created"`
	// RetireAt was added within version 1 (key rotation): a record
	// without it is a key that does not retire. An older binary ignores
	// it and keeps verifying the key until a rotation by a newer one
	// removes it.
	RetireAt time.Time `json:"retireAt,omitzero"`
}

// User is one global identity, stored under its id ("users").
type User struct {
	V            int       `json:"v"`
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"passwordHash,omitempty"`
	Created      time.Time `json:"created"`
	// External users were created by UpsertExternalUser for one tenant
	// (Tenant, an internal id). They have no password and are not in the
	// email index: their email links nothing.
	External bool   `json:"external,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
}

// External is an SSO identity, stored under ExternalKey ("externals").
type External struct {
	V       int       `json:"v"`
	Tenant  string    `json:"tenant"`
	Method  string    `json:"method"`
	Issuer  string    `json:"issuer"`
	Subject string    `json:"subject"`
	UserID  string    `json:"userID"`
	Created time.Time `json:"created"`
}

// Assertion is a used SAML assertion id (or spent switch code), stored
// under AssertionKey ("assertions") until Expires.
type Assertion struct {
	V       int       `json:"v"`
	Expires time.Time `json:"expires"`
}

// Membership is a user's roles in one tenant, stored under MembershipKey
// ("memberships").
type Membership struct {
	V     int      `json:"v"`
	Roles []string `json:"roles"`
	// Factors are the member's second factors (tenants.SecondFactors),
	// added within version 1: a record without the key has none. Every
	// write of a membership's roles keeps them (the backends' AddMember
	// and UpsertExternalUser read the record they replace).
	Factors *Factors `json:"factors,omitempty"`
}

// Factors are a membership's second factors. The TOTP secret is sealed;
// recovery codes are hashes.
type Factors struct {
	TOTP          []byte    `json:"totp,omitempty"`
	TOTPStep      int64     `json:"totpStep,omitempty"`
	TOTPEnrolled  time.Time `json:"totpEnrolled,omitzero"`
	RecoveryCodes []string  `json:"recoveryCodes,omitempty"`
}

// ToSecondFactors is the model of r's factors (none when nil).
func (r *Membership) ToSecondFactors() tenants.SecondFactors {
	if r.Factors == nil {
		return tenants.SecondFactors{}
	}
	f := r.Factors
	return tenants.SecondFactors{TOTP: slices.Clone(f.TOTP), TOTPStep: f.TOTPStep, TOTPEnrolled: f.TOTPEnrolled,
		RecoveryCodes: slices.Clone(f.RecoveryCodes)}
}

// SetSecondFactors stores f in r; factors with nothing in them are no
// key at all.
func (r *Membership) SetSecondFactors(f tenants.SecondFactors) {
	if len(f.TOTP) == 0 && f.TOTPStep == 0 && f.TOTPEnrolled.IsZero() && len(f.RecoveryCodes) == 0 {
		r.Factors = nil
		return
	}
	r.Factors = &Factors{TOTP: slices.Clone(f.TOTP), TOTPStep: f.TOTPStep, TOTPEnrolled: f.TOTPEnrolled.UTC(),
		RecoveryCodes: slices.Clone(f.RecoveryCodes)}
}

// Revocation is a revoked session or user, stored under its key
// ("revocations") until Expires.
type Revocation struct {
	V         int       `json:"v"`
	Key       string    `json:"key"`
	NotBefore time.Time `json:"notBefore"`
	Expires   time.Time `json:"expires"`
}

// Schema is the store's schema version, stored under "schema" (in bbolt's
// bucket "meta"). Its "v" is the schema version (SchemaVersion).
type Schema struct {
	V int `json:"v"`
}

// RecordVersion is the "v" a schema record has: the schema version.
func (Schema) RecordVersion() int { return SchemaVersion }

// RecordVersion is the "v" a tenant record has.
func (Tenant) RecordVersion() int { return TenantVersion }

// versionOf is the "v" a record of rec's type must have: its
// RecordVersion() when it has one, else Version.
func versionOf(rec any) int {
	if r, ok := rec.(interface{ RecordVersion() int }); ok {
		return r.RecordVersion()
	}
	return Version
}

// Decode unmarshals a stored record into rec after checking its size and
// its "v" (the type's RecordVersion, else Version). Every failure wraps
// tenants.ErrCorrupt and names where the record lives (where, such as
// `tenants/"acme"`).
func Decode(where string, data []byte, rec any) error {
	if len(data) > MaxValueLen {
		return fmt.Errorf("%w: record %s is %d bytes, larger than any tenantgate writes", tenants.ErrCorrupt, where, len(data))
	}
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%w: record %s: %v", tenants.ErrCorrupt, where, err)
	}
	if head.V == nil {
		return fmt.Errorf("%w: record %s has no version", tenants.ErrCorrupt, where)
	}
	if want := versionOf(rec); *head.V != want {
		return fmt.Errorf("%w: record %s has version %d, this tenantgate reads only version %d (written by a newer tenantgate?)",
			tenants.ErrCorrupt, where, *head.V, want)
	}
	if err := json.Unmarshal(data, rec); err != nil {
		return fmt.Errorf("%w: record %s: %v", tenants.ErrCorrupt, where, err)
	}
	return nil
}

// Encode marshals a record; the records hold only marshalable types, so
// an error here is a programming mistake reported as a plain error.
func Encode(rec any) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

// toTenant converts a stored record to the model. Every slice and map is a
// fresh copy, so callers may modify what they get.
func (r *Tenant) ToTenant() tenants.Tenant {
	t := tenants.Tenant{
		ID:           r.ID,
		Name:         r.Name,
		Domains:      slices.Clone(r.Domains),
		EmailDomains: slices.Clone(r.EmailDomains),
		Status:       tenants.Status(r.Status),
		InternalID:   r.InternalID,
		Created:      r.Created,

		PassSessionCookie: r.PassSessionCookie,
	}
	if b := r.Branding; b != nil {
		t.Branding = tenants.Branding{LogoURL: b.LogoURL, AccentColor: b.AccentColor}
	}
	t.MFA = r.MFA
	if g := r.CrossOriginGuard; g != nil {
		t.CrossOriginGuard = new(*g)
	}
	t.TrustedOrigins = slices.Clone(r.TrustedOrigins)
	for _, m := range r.Methods {
		t.Methods = append(t.Methods, m.ToMethod())
	}
	if k := r.SAMLKey; k != nil {
		t.SAMLKey = &tenants.SAMLKey{
			Certificate:   slices.Clone(k.Certificate),
			SealedPrivate: slices.Clone(k.SealedPrivate),
			Created:       k.Created,
		}
	}
	if len(r.Roles) > 0 {
		t.Roles = make(map[string]tenants.Role, len(r.Roles))
		for name, role := range r.Roles {
			t.Roles[name] = tenants.Role{Permissions: slices.Clone(role.Permissions), Inherits: slices.Clone(role.Inherits)}
		}
	}
	for _, rule := range r.Rules {
		t.Rules = append(t.Rules, tenants.Rule{
			Path:       rule.Path,
			Methods:    slices.Clone(rule.Methods),
			Access:     rule.Access,
			Permission: rule.Permission,
		})
	}
	for _, k := range r.Keys {
		t.Keys = append(t.Keys, tenants.SigningKey{
			KID:           k.KID,
			Alg:           k.Alg,
			Public:        slices.Clone(k.Public),
			SealedPrivate: slices.Clone(k.SealedPrivate),
			Created:       k.Created,
			RetireAt:      k.RetireAt,
		})
	}
	return t
}

// FromTenant fills the operator-controlled fields of a record from t.
// Store-assigned fields (InternalID, Keys, Created) and method secrets are the
// caller's business.
func FromTenant(t *tenants.Tenant) Tenant {
	r := Tenant{
		V:            TenantVersion,
		ID:           t.ID,
		Name:         t.Name,
		Domains:      slices.Clone(t.Domains),
		EmailDomains: slices.Clone(t.EmailDomains),
		Status:       string(t.Status),

		PassSessionCookie: t.PassSessionCookie,
	}
	if b := t.Branding; b != (tenants.Branding{}) {
		r.Branding = &Branding{LogoURL: b.LogoURL, AccentColor: b.AccentColor}
	}
	r.MFA = t.MFA
	if g := t.CrossOriginGuard; g != nil {
		r.CrossOriginGuard = new(*g)
	}
	r.TrustedOrigins = slices.Clone(t.TrustedOrigins)
	for _, m := range t.Methods {
		r.Methods = append(r.Methods, FromMethod(m))
	}
	if len(t.Roles) > 0 {
		r.Roles = make(map[string]Role, len(t.Roles))
		for name, role := range t.Roles {
			r.Roles[name] = Role{Permissions: slices.Clone(role.Permissions), Inherits: slices.Clone(role.Inherits)}
		}
	}
	for _, rule := range t.Rules {
		r.Rules = append(r.Rules, Rule{
			Path:       rule.Path,
			Methods:    slices.Clone(rule.Methods),
			Access:     rule.Access,
			Permission: rule.Permission,
		})
	}
	return r
}

func FromKey(k tenants.SigningKey) Key {
	return Key{
		KID:           k.KID,
		Alg:           k.Alg,
		Public:        slices.Clone(k.Public),
		SealedPrivate: slices.Clone(k.SealedPrivate),
		Created:       k.Created,
		RetireAt:      k.RetireAt,
	}
}

func (r *User) ToUser() tenants.User {
	return tenants.User{ID: r.ID, Email: r.Email, PasswordHash: r.PasswordHash, Created: r.Created}
}

func (r *Revocation) ToRevocation() tenants.Revocation {
	return tenants.Revocation{Key: r.Key, NotBefore: r.NotBefore, Expires: r.Expires}
}

// Where names a stored record for an error message: its namespace (a bbolt
// bucket, an etcd key segment) and its key, cut to a readable length.
func Where(namespace string, key []byte) string { return namespace + "/" + Short(key) }

// Short renders a key or value for an error message, cut to a readable
// length.
func Short(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// NormalizeEmail is how both backends store and compare emails, and so the
// key of a user's email index: a user found by one spelling of the address
// in one backend is found by it in the other (backup, restore).
func NormalizeEmail(email string) string { return strings.ToLower(email) }

// MembershipKey is the key of a membership; internal ids never contain "/".
func MembershipKey(tenantInternalID, userID string) string {
	return tenantInternalID + "/" + userID
}

// TenantPrefix is the common prefix of the keys of a tenant's memberships,
// external identities and used assertion ids.
func TenantPrefix(tenantInternalID string) string { return tenantInternalID + "/" }

// ExternalKey is the key of an external identity: the tenant's internal
// id, then a SHA-256 of the method, issuer and subject (each
// length-prefixed, so no two triples collide by shifting bytes between
// fields), which keeps keys short whatever an IdP sends.
func ExternalKey(tenantInternalID, method, issuer, subject string) string {
	h := sha256.New()
	for _, part := range []string{method, issuer, subject} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return tenantInternalID + "/" + hex.EncodeToString(h.Sum(nil))
}

// AssertionKey is the key of a used assertion id (or spent switch code)
// of a tenant.
func AssertionKey(tenantInternalID, id string) string {
	return tenantInternalID + "/" + id
}
