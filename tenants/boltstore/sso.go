package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// tenantByInternalID finds a tenant record by internal id, or returns nil.
// Tenants are few and small next to a sign-in's network round trips, so a
// scan is cheaper than keeping another index consistent.
func tenantByInternalID(tx *bolt.Tx, internalID string) (*record.Tenant, error) {
	var found *record.Tenant
	errFound := errors.New("found")
	err := tx.Bucket(bucketTenants).ForEach(func(k, v []byte) error {
		var r record.Tenant
		if err := decodeRecord(bucketTenants, k, v, &r); err != nil {
			return err
		}
		if r.InternalID == internalID {
			found = &r
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, err
	}
	return found, nil
}

// UpsertExternalUser creates or updates the user an SSO method of the tenant
// identified; see tenants.Store. The user and the membership are written in
// the same transaction as the identity.
func (s *Store) UpsertExternalUser(ctx context.Context, tenantInternalID string, x tenants.ExternalIdentity) (tenants.User, error) {
	if tenantInternalID == "" || x.Method == "" || x.Issuer == "" || x.Subject == "" {
		return tenants.User{}, errors.New("upsert external user: tenant, method, issuer and subject must be set")
	}
	email := record.NormalizeEmail(x.Email)
	roles := slices.Clone(x.Roles)
	if roles == nil {
		roles = []string{}
	}
	var out tenants.User
	err := s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		t, err := tenantByInternalID(tx, tenantInternalID)
		if err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("tenant with internal id %q: %w", tenantInternalID, tenants.ErrNotFound)
		}
		xb, users := tx.Bucket(bucketExternals), tx.Bucket(bucketUsers)
		key := externalKey(tenantInternalID, x.Method, x.Issuer, x.Subject)
		var u record.User
		raw := xb.Get(key)
		found := raw != nil
		if found {
			var xr record.External
			if err := decodeRecord(bucketExternals, key, raw, &xr); err != nil {
				return err
			}
			uraw := users.Get([]byte(xr.UserID))
			if uraw == nil {
				return fmt.Errorf("%w: external identity %s names missing user", tenants.ErrCorrupt, short(key))
			}
			if err := decodeRecord(bucketUsers, []byte(xr.UserID), uraw, &u); err != nil {
				return err
			}
			if !u.External || u.Tenant != tenantInternalID {
				return fmt.Errorf("%w: external identity %s names a user of another kind", tenants.ErrCorrupt, short(key))
			}
		} else {
			id, err := s.newID()
			if err != nil {
				return err
			}
			u = record.User{V: record.Version, ID: id, Created: s.now(), External: true, Tenant: tenantInternalID}
			xr := record.External{V: record.Version, Tenant: tenantInternalID, Method: x.Method,
				Issuer: x.Issuer, Subject: x.Subject, UserID: id, Created: u.Created}
			if err := putRecord(xb, key, &xr); err != nil {
				return fmt.Errorf("external identity: %w", err)
			}
		}
		u.Email = email
		if err := putRecord(users, []byte(u.ID), &u); err != nil {
			return fmt.Errorf("external user: %w", err)
		}
		if err := putMembership(tx, change, tenantInternalID, u.ID, roles); err != nil {
			return fmt.Errorf("membership of external user in tenant %q: %w", t.ID, err)
		}
		out = u.ToUser()
		out.FirstSeen = !found
		return nil
	})
	if err != nil {
		return tenants.User{}, err
	}
	return out, nil
}

// UseAssertionID records a used SAML assertion id; see tenants.Store.
func (s *Store) UseAssertionID(ctx context.Context, tenantInternalID, id string, expires time.Time) error {
	switch {
	case tenantInternalID == "" || id == "":
		return errors.New("use assertion id: tenant and id must be set")
	case len(id) > tenants.MaxAssertionIDLen:
		return fmt.Errorf("use assertion id: id longer than %d bytes", tenants.MaxAssertionIDLen)
	case expires.IsZero():
		return errors.New("use assertion id: expiry must be set")
	}
	key := assertionKey(tenantInternalID, id)
	return s.update(ctx, func(tx *bolt.Tx, _ *tenants.SnapshotChange) error {
		ab, ae := tx.Bucket(bucketAssertions), tx.Bucket(bucketAssertionExpiry)
		if raw := ab.Get(key); raw != nil {
			var prev record.Assertion
			if err := decodeRecord(bucketAssertions, key, raw, &prev); err != nil {
				return err
			}
			if !prev.Expires.Before(s.now()) {
				return fmt.Errorf("assertion id for tenant %s: %w", tenantInternalID, tenants.ErrReplay)
			}
			if err := ae.Delete(expiryKey(prev.Expires, string(key))); err != nil {
				return fmt.Errorf("assertion id: %w", err)
			}
		}
		rec := record.Assertion{V: record.Version, Expires: expires}
		if err := putRecord(ab, key, &rec); err != nil {
			return fmt.Errorf("assertion id: %w", err)
		}
		if err := ae.Put(expiryKey(expires, string(key)), nil); err != nil {
			return fmt.Errorf("assertion id: index expiry: %w", err)
		}
		return nil
	})
}

// pruneAssertions drops used assertion ids whose expiry has passed.
func (s *Store) pruneAssertions(tx *bolt.Tx) error {
	now := s.now()
	ab, ae := tx.Bucket(bucketAssertions), tx.Bucket(bucketAssertionExpiry)
	if ab == nil || ae == nil {
		return nil
	}
	var doomed [][]byte
	c := ae.Cursor()
	for k, _ := c.First(); k != nil && expirySeconds(k) <= now.Unix(); k, _ = c.Next() {
		var r record.Assertion
		if err := decodeRecord(bucketAssertions, k[8:], ab.Get(k[8:]), &r); err != nil {
			return err
		}
		if r.Expires.Before(now) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := ab.Delete(k[8:]); err != nil {
			return fmt.Errorf("drop expired assertion id: %w", err)
		}
		if err := ae.Delete(k); err != nil {
			return fmt.Errorf("drop expired assertion id: %w", err)
		}
	}
	return nil
}

// deleteAssertions removes every used assertion id of a tenant, with its
// expiry index entry.
func deleteAssertions(tx *bolt.Tx, tenantInternalID string) error {
	ab, ae := tx.Bucket(bucketAssertions), tx.Bucket(bucketAssertionExpiry)
	prefix := membershipPrefix(tenantInternalID)
	var keys, expiries [][]byte
	c := ab.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r record.Assertion
		if err := decodeRecord(bucketAssertions, k, v, &r); err != nil {
			return err
		}
		keys = append(keys, bytes.Clone(k))
		expiries = append(expiries, expiryKey(r.Expires, string(k)))
	}
	for i := range keys {
		if err := ab.Delete(keys[i]); err != nil {
			return fmt.Errorf("delete used assertion id: %w", err)
		}
		if err := ae.Delete(expiries[i]); err != nil {
			return fmt.Errorf("delete used assertion id: %w", err)
		}
	}
	return nil
}
