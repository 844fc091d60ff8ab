package tenants

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors a Store returns. Callers compare with errors.Is; backends wrap them
// with context.
var (
	// ErrNotFound: the tenant, user or membership does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a write would give a domain, email domain or email to two
	// owners. The wrapping error names the tenant, field and value.
	ErrConflict = errors.New("conflict")
	// ErrPasswordRequired: a new user was to be created without a password.
	ErrPasswordRequired = errors.New("a new user needs a password")
	// ErrLocked: another process holds the database.
	ErrLocked = errors.New("database is locked by another process")
	// ErrCorrupt: the database could not be read safely.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrReplay: a SAML assertion id was already used and its record has
	// not expired (UseAssertionID).
	ErrReplay = errors.New("assertion already used")
	// ErrTooManyKeys: a rotation would give a tenant more than
	// MaxSigningKeys signing keys that still verify (RotateKey).
	ErrTooManyKeys = errors.New("too many signing keys")
	// ErrSecretRequired: a method that needs a client secret (a social
	// method with a clientID) would be left without one (none in the input
	// and none kept from the stored tenant). ApplyOptions.SealMethod
	// returns it; the store passes it on.
	ErrSecretRequired = errors.New("client secret required")
	// ErrNotEmpty: a restore was to fill a store that already holds
	// records, without being told to replace them.
	ErrNotEmpty = errors.New("the store is not empty")
	// ErrChangeRefused: an apply would change what a stored tenant means
	// without the input saying so (a field left out of a tenant file whose
	// default differs from what is stored, where the change would re-key
	// accounts). ApplyOptions.CheckChange returns it; the store passes it
	// on, naming the tenant.
	ErrChangeRefused = errors.New("change refused")
)

// Store is where tenants, users, memberships, signing keys and revocations
// live. Every method is safe for concurrent use. Every write is atomic: it
// either happens completely or not at all, and uniqueness (tenant ids, domains,
// email domains, user emails) is enforced inside the write, never by a read
// followed by a write.
//
// Backends: boltstore (one process, embedded file) and etcdstore (a fleet
// of processes sharing one etcd). Each runs the conformance suite in
// tenants/storetest; etcdstore also runs storetest.RunShared, the promises
// kept between two processes.
type Store interface {
	// ApplyTenants creates or updates every tenant in ts, all or nothing.
	// The tenants must already be valid (Validate). A new tenant gets a fresh
	// InternalID and a first signing key from opts.NewKey; an existing one keeps
	// its InternalID, keys and Created, and has every other field replaced.
	// Every method entry goes through opts.SealMethod before it is written,
	// with the stored entry at the same position when it has the same type
	// (else nil): the method's package seals the plaintext secrets of its
	// Config, or keeps the stored entry's sealed ones, so re-applying a file
	// printed by `tenants get` (which never shows secrets) loses nothing.
	// Sealed bytes in ts are ignored. An error from SealMethod (such as
	// ErrSecretRequired) aborts the whole batch. An existing tenant is
	// first compared, inside the write, with what it becomes
	// (opts.CheckChange): its warnings are returned in the ApplyResult, its
	// error (such as ErrChangeRefused) aborts the whole batch. A tenant with a saml
	// method and no SAMLKey gets one from opts.NewSAMLKey; an existing
	// SAMLKey is kept, even while the tenant has no saml method, so the
	// certificate IdPs pinned survives a method being removed and added
	// back.
	// A domain or email domain that another tenant (in the store or in ts)
	// already holds is ErrConflict.
	ApplyTenants(ctx context.Context, ts []Tenant, opts ApplyOptions) ([]ApplyResult, error)
	// Tenants returns every tenant, sorted by ID, with secrets sealed.
	Tenants(ctx context.Context) ([]Tenant, error)
	// Tenant returns one tenant by slug, or ErrNotFound.
	Tenant(ctx context.Context, id string) (Tenant, error)
	// DeleteTenant removes a tenant, its keys, its memberships, its external
	// identities (with the users UpsertExternalUser created for them), its
	// used assertion ids and its recorded sessions. Its InternalID is never used again, so its
	// sessions stop verifying. Password users left without any membership
	// stay (they may be re-added elsewhere).
	DeleteTenant(ctx context.Context, id string) error

	// AddMember makes the user with the given email a member of the tenant
	// with the given roles, replacing the roles of an existing membership
	// (the next Snapshot, and so the next Check of every session the user
	// holds in the tenant, has exactly these roles). If
	// no user has that email, one is created with PasswordHash (which must
	// then be set, else ErrPasswordRequired); for an existing user PasswordHash
	// is ignored and the stored password never changes. Emails are compared
	// lower-case. It reports whether a user was created.
	AddMember(ctx context.Context, tenantID string, m NewMember) (created bool, err error)
	// Members lists the members of a tenant, sorted by email.
	Members(ctx context.Context, tenantID string) ([]Member, error)
	// RemoveMember removes a user's membership in a tenant (it is gone from
	// the next Snapshot, which refuses every session of the user there) and,
	// in the same write, revokes every session of that user in that tenant
	// (rev.Key is set by the store; rev.NotBefore and rev.Expires by the
	// caller), so a membership given back later does not revive them. It
	// returns ErrNotFound when there is no such membership.
	RemoveMember(ctx context.Context, tenantID, email string, rev Revocation) error
	// UserByEmail returns the user with that email (compared lower-case), or
	// ErrNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// Membership returns a user's roles in a tenant, both named by internal
	// ids, or ErrNotFound.
	Membership(ctx context.Context, tenantInternalID, userID string) ([]string, error)

	// UpsertExternalUser signs in a person an SSO method of the tenant
	// vouched for. The identity is keyed on (tenantInternalID, x.Method,
	// x.Issuer, x.Subject), never on the email: the first sign-in creates a
	// new user (random id, no password, not in the email index that
	// UserByEmail and AddMember use, so no password user of any tenant is
	// ever linked to it) with a membership in this tenant only, holding
	// x.Roles; a later sign-in updates the user's Email and replaces the
	// membership's roles with x.Roles (recreating a removed membership: the
	// tenant's IdP decides who may sign in). The tenant must exist (else
	// ErrNotFound); Method, Issuer and Subject must not be empty. It returns
	// the user.
	UpsertExternalUser(ctx context.Context, tenantInternalID string, x ExternalIdentity) (User, error)
	// UseAssertionID records a SAML assertion id as used for the tenant
	// until expires (SAML Profiles §4.1.4.5). It returns an error wrapping
	// ErrReplay when the same id was recorded for the tenant and has not
	// expired. Records are durable (they survive a restart) and expired ones
	// are dropped by later writes.
	UseAssertionID(ctx context.Context, tenantInternalID, id string, expires time.Time) error

	// AddPasskey stores a passkey for the user's membership in the tenant
	// (both named by internal ids). It returns ErrNotFound when there is
	// no such membership, ErrConflict when a passkey with the same
	// credential id exists in the tenant (whoever holds it), and
	// ErrTooManyPasskeys when the user already holds MaxPasskeysPerUser
	// there; all three are checked inside the write. p.ID, p.PublicKey and
	// p.Name must not be empty.
	AddPasskey(ctx context.Context, tenantInternalID, userID string, p Passkey) error
	// Passkeys returns the user's passkeys in the tenant, oldest first
	// (none: an empty list, whether or not the membership exists).
	Passkeys(ctx context.Context, tenantInternalID, userID string) ([]Passkey, error)
	// UpdatePasskey changes one of the user's passkeys in the tenant in
	// one write: fn gets it as stored and changes it in place; what it
	// leaves is written (ID excepted: it is kept), unless it returns an
	// error, which aborts the write and is returned as is. The passkey fn
	// reads is the one the write replaces, never older (compare-and-swap):
	// this is what makes a sign count only ever grow across replicas. fn
	// may be called more than once. It returns ErrNotFound when the user
	// holds no passkey with that id in the tenant.
	UpdatePasskey(ctx context.Context, tenantInternalID, userID string, id []byte, fn func(*Passkey) error) error
	// RemovePasskey deletes one of the user's passkeys in the tenant, or
	// returns ErrNotFound when the user holds none with that id there.
	RemovePasskey(ctx context.Context, tenantInternalID, userID string, id []byte) error

	// RotateKey gives the tenant a new current signing key, made by
	// r.NewKey bound to the tenant's internal id, in one write: the new
	// key becomes Keys[0]; every older key that still verifies at r.Now
	// (SigningKey.Verifies) stays, after it, with its RetireAt set to
	// r.RetireAt unless it was already earlier, so the sessions it signed
	// keep verifying until then (and the JWKS lists it); keys that no
	// longer verify at r.Now are removed. It returns the new key. A
	// tenant that does not exist is ErrNotFound; a new key whose KID the
	// tenant already holds is an error; a tenant that would hold more than
	// MaxSigningKeys keys is ErrTooManyKeys, with nothing written.
	RotateKey(ctx context.Context, tenantID string, r KeyRotation) (SigningKey, error)
	// Reseal rewrites every value the store holds sealed under the master
	// key, in one write, all or nothing (master key rotation): r.Tenant is
	// called with each tenant as stored and replaces the sealed bytes in
	// place (Keys[i].SealedPrivate, SAMLKey.SealedPrivate,
	// Methods[i].Sealed); any other change it makes is refused, as is a
	// sealed value it empties. r.Factor does the same for every
	// membership's sealed TOTP secret (SecondFactors.TOTP). r.Check is given the store's master key
	// check value (nil when it has none) and returns the one to store. An
	// error from either callback aborts with nothing written. A store that
	// cannot hold the whole rewrite in one write (etcd's transaction
	// limits) refuses with an error that says which limit.
	Reseal(ctx context.Context, r Reseal) error
	// SetPassword replaces the password hash of the user with id userID
	// with newHash, but only while it is still oldHash: a password changed
	// meanwhile, by any route, makes it ErrConflict, so a reset link or a
	// change form read before that change cannot undo it. In the same
	// write it revokes every session of the user in every tenant the user
	// is a member of, and the user's global sessions on the apex host
	// (UserRevocationKey with the empty tenant; rev.Key is set by the
	// store, once per tenant and once for the apex; rev.NotBefore and
	// rev.Expires by the caller). It returns ErrNotFound
	// when there is no such user. newHash must not be empty.
	SetPassword(ctx context.Context, userID, oldHash, newHash string, rev Revocation) error

	// SecondFactors returns the second factors of the user's membership
	// in the tenant (both named by internal ids), or ErrNotFound when
	// there is no such membership.
	SecondFactors(ctx context.Context, tenantInternalID, userID string) (SecondFactors, error)
	// UpdateSecondFactors changes the second factors of a membership in
	// one write: fn gets them as stored and changes them in place; what it
	// leaves is written, unless it returns an error, which aborts the
	// write and is returned as is. The factors fn reads are the ones the
	// write replaces, never older (compare-and-swap): this is what makes
	// a TOTP step or a recovery code single use across replicas. fn may be
	// called more than once (a write that lost a race runs again) and must
	// not keep what it is given. It returns ErrNotFound when there is no
	// such membership. Roles and sessions are untouched.
	UpdateSecondFactors(ctx context.Context, tenantInternalID, userID string, fn func(*SecondFactors) error) error

	// Revoke records a revocation, replacing one with the same key.
	// Revocations past their Expires are dropped by later writes.
	Revoke(ctx context.Context, r Revocation) error

	// RecordSession records a session just issued (Session), so that its
	// holder can list it (Sessions) and revoke it (RevokeSession). Records
	// of one person in one tenant are capped at MaxSessionsPerUser: in the
	// same write, the oldest beyond the cap (by Issued) are dropped and
	// revoked (evict.Key is set by the store, once per dropped session;
	// evict.NotBefore and evict.Expires by the caller, Expires outliving
	// every session). A record lives until its Expires: backends drop
	// expired records (etcd on leases, bbolt by later writes), so records
	// never outgrow the sessions alive. A record with the same SID
	// replaces the earlier one. A Session with an empty field, an
	// Expires not after Issued, or a field over MaxSessionFieldLen is an
	// error, and nothing is written.
	RecordSession(ctx context.Context, s Session, evict Revocation) error
	// Sessions returns the recorded sessions of a user in a tenant (both
	// internal ids) that have not expired, newest first. Revoked sessions
	// are returned too, until their record goes: the caller knows the
	// revocations (Snapshot.Revoked). No session is not an error.
	Sessions(ctx context.Context, tenantInternalID, userID string) ([]Session, error)
	// RevokeSession revokes the recorded session sid of the user in the
	// tenant and drops its record, in one write (rev.Key is set by the
	// store to SessionRevocationKey(sid); rev.NotBefore and rev.Expires by
	// the caller). The record is looked up under this tenant and user
	// only, so no one names another person's session: a sid recorded for
	// anyone else, or not at all, is ErrNotFound, with nothing written.
	RevokeSession(ctx context.Context, tenantInternalID, userID, sid string, rev Revocation) error

	// Snapshot returns everything the hot path needs: tenants with keys and
	// sealed secrets, every membership with its current roles (Check takes a
	// session's roles from here, never from the token), and the revocations
	// not yet expired (one that expires without a later write may stay until
	// the next write drops it). It is consistent: it reflects exactly the
	// writes that committed before the call. It is cheap: a backend reads
	// everything once, then applies each write's SnapshotChange to the
	// snapshot it holds (Snapshot.With), so a write costs time in
	// proportion to what it changed, never to every revocation or member
	// stored; a sign-out is one revocation. The Snapshot is shared: callers
	// must not modify it.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Watch returns a channel that receives a value (coalesced: at most one
	// pending) after every committed write, by this process or, for
	// distributed backends, any other. The channel is closed when ctx ends.
	Watch(ctx context.Context) <-chan struct{}

	// Close releases the store. It is safe to call more than once.
	Close() error
}

// MaxSigningKeys bounds how many signing keys a tenant holds at once (the
// current one and those retiring): rotations faster than sessions expire
// are refused past it, so neither a tenant record nor the JWKS grows
// without bound.
const MaxSigningKeys = 16

// KeyRotation is the input to Store.RotateKey.
type KeyRotation struct {
	// NewKey makes the new signing key, bound to the tenant's internal id.
	// A backend may call it more than once (a write that lost a race runs
	// again); only the key of the write that commits is kept.
	NewKey func(internalID string) (SigningKey, error)
	// RetireAt is the latest time an older key keeps verifying: when the
	// longest session it may have signed has expired, plus the verifiers'
	// leeway. It may be Now or earlier: the older keys are then removed at
	// once (a compromised key).
	RetireAt time.Time
	// Now is the clock of the rotation: keys that no longer verify at Now
	// are removed.
	Now time.Time
}

// Reseal is the input to Store.Reseal.
type Reseal struct {
	// Tenant replaces the sealed bytes of t in place.
	Tenant func(t *Tenant) error
	// Check returns the master key check value to store, given the stored
	// one (nil: none yet).
	Check func(stored []byte) ([]byte, error)
	// Factor returns the sealed TOTP secret of a membership (both named
	// by internal ids) sealed anew; required when any member has one.
	Factor func(tenantInternalID, userID string, sealed []byte) ([]byte, error)
}

// ExternalIdentity is a person as an SSO method of one tenant identified
// them; the input to Store.UpsertExternalUser.
type ExternalIdentity struct {
	// Method is a stable key of the tenant's method, such as "oidc#1" (type
	// and position).
	Method string
	// Issuer and Subject name the person at the provider (OIDC iss and sub,
	// SAML IdP entity id and NameID, OAuth2 provider and account id).
	Issuer, Subject string
	// Email is stored on the user for display and headers only when the
	// method verified it; it never links accounts.
	Email string
	// Roles replace the membership's roles on every sign-in.
	Roles []string
}

// MaxAssertionIDLen bounds the assertion ids UseAssertionID accepts.
const MaxAssertionIDLen = 512

// NewMember is the input to Store.AddMember.
type NewMember struct {
	Email        string
	Roles        []string
	PasswordHash string
}

// ApplyOptions supply the cryptography ApplyTenants needs without the store
// knowing any of it.
type ApplyOptions struct {
	// NewKey makes the first signing key of a tenant being created, bound to
	// its new internal id.
	NewKey func(internalID string) (SigningKey, error)
	// NewSAMLKey makes a tenant's SAML SP key and certificate. It is called
	// for a tenant that has a saml method and no SAMLKey yet (new or
	// existing); required then.
	NewSAMLKey func(internalID string) (SAMLKey, error)
	// SealMethod returns method entry m as it is to be stored for the
	// tenant with the given internal id: its package's plaintext secrets
	// sealed into Sealed and removed from Config, or, when m brings none,
	// prev's sealed ones kept. prev is the stored entry at the same
	// position when it has the same type, else nil. It must not change the
	// type. Required when any method has a Config.
	SealMethod func(m Method, prev *Method, tenantInternalID string) (Method, error)
	// CheckChange compares an existing tenant as stored with what the
	// apply makes of it (next, as given, before SealMethod), inside the
	// write, so that what it compares is exactly what the write replaces.
	// Its warnings are returned in the tenant's ApplyResult; an error
	// refuses the whole batch, and a *FieldError is named after the
	// tenant: tenant "acme": methods[1].nameIDFormat: …. nil: no check.
	CheckChange func(stored, next *Tenant) (warnings []string, err error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// FieldError is a problem of one field of a method entry, as
// ApplyOptions.SealMethod reports it (Field is the tenant-file name,
// "clientSecret"); the store names the tenant and the entry before the
// field: tenant "acme": methods[3].clientSecret: missing.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// ChangeRefusedf returns an error wrapping ErrChangeRefused whose text is
// the formatted message alone: the message says what is refused and how to
// go on, which "change refused" would only repeat.
func ChangeRefusedf(format string, args ...any) error {
	return &changeRefused{fmt.Sprintf(format, args...)}
}

type changeRefused struct{ msg string }

func (e *changeRefused) Error() string { return e.msg }
func (e *changeRefused) Unwrap() error { return ErrChangeRefused }

// ApplyResult says what ApplyTenants did with one tenant.
type ApplyResult struct {
	ID      string
	Created bool
	// Warnings are ApplyOptions.CheckChange's for this tenant.
	Warnings []string
}
