package record

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// RotateKey is the change tenants.Store.RotateKey makes to a tenant record:
// a new current key from r.NewKey, the older keys that still verify at
// r.Now kept with RetireAt at most r.RetireAt, the others dropped. It is
// the one place both backends rotate, so that they cannot differ in what a
// rotation keeps. rec is changed only when it returns no error.
func RotateKey(rec *Tenant, r tenants.KeyRotation) (tenants.SigningKey, error) {
	if r.NewKey == nil {
		return tenants.SigningKey{}, fmt.Errorf("tenant %q: rotate key: no KeyRotation.NewKey", rec.ID)
	}
	if r.Now.IsZero() || r.RetireAt.IsZero() {
		return tenants.SigningKey{}, fmt.Errorf("tenant %q: rotate key: KeyRotation.Now and RetireAt are required", rec.ID)
	}
	key, err := r.NewKey(rec.InternalID)
	if err != nil {
		return tenants.SigningKey{}, fmt.Errorf("tenant %q: make signing key: %w", rec.ID, err)
	}
	if key.KID == "" || len(key.Public) == 0 || len(key.SealedPrivate) == 0 {
		return tenants.SigningKey{}, fmt.Errorf("tenant %q: make signing key: empty kid or key", rec.ID)
	}
	key.RetireAt = key.RetireAt.UTC()
	if !key.RetireAt.IsZero() {
		return tenants.SigningKey{}, fmt.Errorf("tenant %q: make signing key: a new key must not retire", rec.ID)
	}
	keys := []Key{FromKey(key)}
	for _, k := range rec.Keys {
		if k.KID == key.KID {
			return tenants.SigningKey{}, fmt.Errorf("tenant %q: new signing key %s: the tenant already holds a key with this kid", rec.ID, key.KID)
		}
		if !k.RetireAt.IsZero() && !r.Now.Before(k.RetireAt) {
			continue // retired: verifies nothing any more
		}
		if k.RetireAt.IsZero() || r.RetireAt.Before(k.RetireAt) {
			k.RetireAt = r.RetireAt.UTC()
		}
		if !r.Now.Before(k.RetireAt) {
			continue // retired at once
		}
		keys = append(keys, k)
	}
	if len(keys) > tenants.MaxSigningKeys {
		return tenants.SigningKey{}, fmt.Errorf("tenant %q: %d signing keys would still verify, at most %d: wait until older ones retire (the earliest at %s), or rotate with an earlier retire time: %w",
			rec.ID, len(keys), tenants.MaxSigningKeys, earliestRetire(keys).Format(time.RFC3339), tenants.ErrTooManyKeys)
	}
	rec.Keys = keys
	return key, nil
}

// earliestRetire is the first RetireAt among keys (zero for none).
func earliestRetire(keys []Key) (first time.Time) {
	for _, k := range keys {
		if !k.RetireAt.IsZero() && (first.IsZero() || k.RetireAt.Before(first)) {
			first = k.RetireAt
		}
	}
	return first
}

// Reseal is the change tenants.Store.Reseal makes to a tenant record: fn
// is given the tenant and replaces its sealed bytes in place, and only
// those are copied back into rec. Any other change fn makes to keys, the
// SAML key or the methods, and a sealed value it empties or adds, is an
// error naming the tenant, with rec unchanged.
func Reseal(rec *Tenant, fn func(*tenants.Tenant) error) error {
	if fn == nil {
		return errors.New("reseal: no Reseal.Tenant")
	}
	t := rec.ToTenant()
	if err := fn(&t); err != nil {
		return fmt.Errorf("tenant %q: %w", rec.ID, err)
	}
	bad := func(what string) error {
		return fmt.Errorf("tenant %q: reseal changed %s, not only sealed bytes", rec.ID, what)
	}
	resealed := func(old, new []byte) bool { return len(old) > 0 && len(new) > 0 || len(old) == 0 && len(new) == 0 }
	if len(t.Keys) != len(rec.Keys) {
		return bad("the signing keys")
	}
	for i, k := range rec.Keys {
		n := t.Keys[i]
		if n.KID != k.KID || n.Alg != k.Alg || !bytes.Equal(n.Public, k.Public) || !resealed(k.SealedPrivate, n.SealedPrivate) {
			return bad("signing key " + k.KID)
		}
	}
	if (t.SAMLKey == nil) != (rec.SAMLKey == nil) ||
		rec.SAMLKey != nil && (!bytes.Equal(t.SAMLKey.Certificate, rec.SAMLKey.Certificate) || !resealed(rec.SAMLKey.SealedPrivate, t.SAMLKey.SealedPrivate)) {
		return bad("the SAML key")
	}
	if len(t.Methods) != len(rec.Methods) {
		return bad("the methods")
	}
	for i, m := range rec.Methods {
		n := t.Methods[i]
		if n.Type != m.Type || !bytes.Equal(n.Config, m.Config) || !resealed(m.Sealed, n.Sealed) {
			return bad(fmt.Sprintf("methods[%d]", i))
		}
	}
	for i := range rec.Keys {
		rec.Keys[i].SealedPrivate = slices.Clone(t.Keys[i].SealedPrivate)
	}
	if rec.SAMLKey != nil {
		k := *rec.SAMLKey
		k.SealedPrivate = slices.Clone(t.SAMLKey.SealedPrivate)
		rec.SAMLKey = &k
	}
	for i := range rec.Methods {
		rec.Methods[i].Sealed = slices.Clone(t.Methods[i].Sealed)
	}
	return nil
}

// ResealCheck is the change tenants.Store.Reseal makes to the master key
// check value: check's answer for stored, which must not be empty.
func ResealCheck(stored []byte, check func([]byte) ([]byte, error)) ([]byte, error) {
	if check == nil {
		return nil, errors.New("reseal: no Reseal.Check")
	}
	v, err := check(stored)
	if err != nil {
		return nil, fmt.Errorf("master key check value: %w", err)
	}
	if len(v) == 0 {
		return nil, errors.New("master key check value: reseal returned nothing")
	}
	return v, nil
}

// ResealFactors is the change tenants.Store.Reseal makes to a membership
// record (key is its MembershipKey): fn replaces the sealed TOTP secret;
// any other change, or an emptied secret, is an error and rec stays as it
// was. It reports whether rec holds a sealed value at all (else fn is not
// called and nothing is to be written).
func ResealFactors(key string, rec *Membership, fn func(tenantInternalID, userID string, sealed []byte) ([]byte, error)) (bool, error) {
	if rec.Factors == nil || len(rec.Factors.TOTP) == 0 {
		return false, nil
	}
	if fn == nil {
		return false, errors.New("reseal: the store holds sealed second factors and there is no Reseal.Factor")
	}
	tid, uid, ok := strings.Cut(key, "/")
	if !ok {
		return false, fmt.Errorf("%w: membership key %q", tenants.ErrCorrupt, key)
	}
	v, err := fn(tid, uid, slices.Clone(rec.Factors.TOTP))
	if err != nil {
		return false, fmt.Errorf("membership %s: totp secret: %w", key, err)
	}
	if len(v) == 0 {
		return false, fmt.Errorf("membership %s: reseal emptied the totp secret", key)
	}
	rec.Factors.TOTP = v
	return true, nil
}
