package boltstore

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// recordVersion is the on-disk version of every record but the tenant
// records (tenantRecordVersion). A record with any other "v" than its type's
// is refused, never guessed at: it was written by a newer tenantgate or it
// is damage.
const recordVersion = 1

// tenantRecordVersion is the version of tenant records. Version 1 (until
// schema 1) held every method type's fields in one methodRecord; version 2
// keeps each method's own configuration as opaque bytes. Open migrates
// version 1 records (migrate.go).
const tenantRecordVersion = 2

// schemaVersion is the database's layout: 1 had tenant records of version
// 1, 2 has them of version 2. Open migrates a schema-1 database and refuses
// a newer one.
const schemaVersion = 2

// The on-disk records are deliberately separate from the tenants model
// (STYLE.md): the model may grow or rename fields while files written by an
// older binary stay readable. Field names are fixed JSON keys.

// tenantRecord is one tenant, stored under its slug in bucketTenants.
// There is no field for a plaintext client secret: only sealed ones are
// written (methodRecord.Sealed).
type tenantRecord struct {
	V            int                   `json:"v"`
	ID           string                `json:"id"`
	InternalID   string                `json:"internalID"`
	Name         string                `json:"name,omitempty"`
	Domains      []string              `json:"domains,omitempty"`
	EmailDomains []string              `json:"emailDomains,omitempty"`
	Status       string                `json:"status,omitempty"`
	Methods      []methodRecord        `json:"methods,omitempty"`
	Roles        map[string]roleRecord `json:"roles,omitempty"`
	Rules        []ruleRecord          `json:"rules,omitempty"`
	Keys         []keyRecord           `json:"keys,omitempty"`
	SAMLKey      *samlKeyRecord        `json:"samlKey,omitempty"`
	Created      time.Time             `json:"created"`
	// Branding was added within version 1: records written before it have
	// no such key and read as the default look; an older binary ignores it.
	Branding *brandingRecord `json:"branding,omitempty"`
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

// brandingRecord is a tenant's sign-in page look (tenants.Branding).
type brandingRecord struct {
	LogoURL     string `json:"logoURL,omitempty"`
	AccentColor string `json:"accentColor,omitempty"`
}

// samlKeyRecord is a tenant's SAML SP key; the private half stays sealed.
type samlKeyRecord struct {
	Certificate   []byte    `json:"certificate"`
	SealedPrivate []byte    `json:"sealedPrivate"`
	Created       time.Time `json:"created"`
}

// methodRecord is one of a tenant's sign-in methods. Config is the method
// type's own configuration, opaque here: its package encodes and decodes it
// (tenants.Method.Config), so a new method field changes no record.
type methodRecord struct {
	Type         string              `json:"type"`
	Label        string              `json:"label,omitempty"`
	Config       json.RawMessage     `json:"config,omitempty"`
	Sealed       []byte              `json:"sealed,omitempty"`
	GroupRoles   map[string][]string `json:"groupRoles,omitempty"`
	DefaultRoles []string            `json:"defaultRoles,omitempty"`
}

func (r methodRecord) toMethod() tenants.Method {
	return tenants.Method{Type: r.Type, Label: r.Label, Config: r.Config, Sealed: r.Sealed,
		Roles: tenants.RoleMapping{GroupRoles: r.GroupRoles, DefaultRoles: r.DefaultRoles}}.Clone()
}

func methodToRecord(m tenants.Method) methodRecord {
	m = m.Clone()
	return methodRecord{Type: m.Type, Label: m.Label, Config: m.Config, Sealed: m.Sealed,
		GroupRoles: m.Roles.GroupRoles, DefaultRoles: m.Roles.DefaultRoles}
}

type roleRecord struct {
	Permissions []string `json:"permissions,omitempty"`
	Inherits    []string `json:"inherits,omitempty"`
}

type ruleRecord struct {
	Path       string   `json:"path"`
	Methods    []string `json:"methods,omitempty"`
	Access     string   `json:"access,omitempty"`
	Permission string   `json:"permission,omitempty"`
}

type keyRecord struct {
	KID           string    `json:"kid"`
	Alg           string    `json:"alg"`
	Public        []byte    `json:"public"`
	SealedPrivate []byte    `json:"sealedPrivate"`
	Created       time.Time `json:"created"`
}

// userRecord is one global identity, stored under its id in bucketUsers.
type userRecord struct {
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

// externalRecord is an SSO identity, stored under externalKey in
// bucketExternals.
type externalRecord struct {
	V       int       `json:"v"`
	Tenant  string    `json:"tenant"`
	Method  string    `json:"method"`
	Issuer  string    `json:"issuer"`
	Subject string    `json:"subject"`
	UserID  string    `json:"userID"`
	Created time.Time `json:"created"`
}

// assertionRecord is a used SAML assertion id, stored under assertionKey in
// bucketAssertions until Expires.
type assertionRecord struct {
	V       int       `json:"v"`
	Expires time.Time `json:"expires"`
}

// membershipRecord is a user's roles in one tenant, stored under
// tenantInternalID + "/" + userID in bucketMemberships.
type membershipRecord struct {
	V     int      `json:"v"`
	Roles []string `json:"roles"`
}

// revocationRecord is stored under its key in bucketRevocations.
type revocationRecord struct {
	V         int       `json:"v"`
	Key       string    `json:"key"`
	NotBefore time.Time `json:"notBefore"`
	Expires   time.Time `json:"expires"`
}

// schemaRecord is the database's schema version, stored under keySchema in
// bucketMeta. Its "v" is the schema version (schemaVersion).
type schemaRecord struct {
	V int `json:"v"`
}

func (schemaRecord) version() int { return schemaVersion }
func (tenantRecord) version() int { return tenantRecordVersion }

// versionOf is the "v" a record of rec's type must have: its version()
// when it has one, else recordVersion.
func versionOf(rec any) int {
	if r, ok := rec.(interface{ version() int }); ok {
		return r.version()
	}
	return recordVersion
}

// decodeRecord unmarshals a stored record into rec after checking its "v"
// (versionOf). Every failure wraps tenants.ErrCorrupt and names where the
// record lives.
func decodeRecord(bucket, key, data []byte, rec any) error {
	if len(data) > maxValueLen {
		return fmt.Errorf("%w: record %s/%s is %d bytes, larger than any tenantgate writes", tenants.ErrCorrupt, bucket, short(key), len(data))
	}
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%w: record %s/%s: %v", tenants.ErrCorrupt, bucket, short(key), err)
	}
	if head.V == nil {
		return fmt.Errorf("%w: record %s/%s has no version", tenants.ErrCorrupt, bucket, short(key))
	}
	if want := versionOf(rec); *head.V != want {
		return fmt.Errorf("%w: record %s/%s has version %d, this tenantgate reads only version %d (written by a newer tenantgate?)",
			tenants.ErrCorrupt, bucket, short(key), *head.V, want)
	}
	if err := json.Unmarshal(data, rec); err != nil {
		return fmt.Errorf("%w: record %s/%s: %v", tenants.ErrCorrupt, bucket, short(key), err)
	}
	return nil
}

// encodeRecord marshals a record; the records hold only marshalable types, so
// an error here is a programming mistake reported as a plain error.
func encodeRecord(rec any) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

// toTenant converts a stored record to the model. Every slice and map is a
// fresh copy, so callers may modify what they get.
func (r *tenantRecord) toTenant() tenants.Tenant {
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
		t.Methods = append(t.Methods, m.toMethod())
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
		})
	}
	return t
}

// configFromTenant fills the operator-controlled fields of a record from t.
// Store-assigned fields (InternalID, Keys, Created) and method secrets are the
// caller's business.
func configFromTenant(t *tenants.Tenant) tenantRecord {
	r := tenantRecord{
		V:            tenantRecordVersion,
		ID:           t.ID,
		Name:         t.Name,
		Domains:      slices.Clone(t.Domains),
		EmailDomains: slices.Clone(t.EmailDomains),
		Status:       string(t.Status),

		PassSessionCookie: t.PassSessionCookie,
	}
	if b := t.Branding; b != (tenants.Branding{}) {
		r.Branding = &brandingRecord{LogoURL: b.LogoURL, AccentColor: b.AccentColor}
	}
	r.MFA = t.MFA
	if g := t.CrossOriginGuard; g != nil {
		r.CrossOriginGuard = new(*g)
	}
	r.TrustedOrigins = slices.Clone(t.TrustedOrigins)
	for _, m := range t.Methods {
		r.Methods = append(r.Methods, methodToRecord(m))
	}
	if len(t.Roles) > 0 {
		r.Roles = make(map[string]roleRecord, len(t.Roles))
		for name, role := range t.Roles {
			r.Roles[name] = roleRecord{Permissions: slices.Clone(role.Permissions), Inherits: slices.Clone(role.Inherits)}
		}
	}
	for _, rule := range t.Rules {
		r.Rules = append(r.Rules, ruleRecord{
			Path:       rule.Path,
			Methods:    slices.Clone(rule.Methods),
			Access:     rule.Access,
			Permission: rule.Permission,
		})
	}
	return r
}

func keyToRecord(k tenants.SigningKey) keyRecord {
	return keyRecord{
		KID:           k.KID,
		Alg:           k.Alg,
		Public:        slices.Clone(k.Public),
		SealedPrivate: slices.Clone(k.SealedPrivate),
		Created:       k.Created,
	}
}

func (r *userRecord) toUser() tenants.User {
	return tenants.User{ID: r.ID, Email: r.Email, PasswordHash: r.PasswordHash, Created: r.Created}
}

func (r *revocationRecord) toRevocation() tenants.Revocation {
	return tenants.Revocation{Key: r.Key, NotBefore: r.NotBefore, Expires: r.Expires}
}
