package boltstore

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// SetPassword replaces a user's password hash while it is still oldHash,
// and revokes the user's sessions in every tenant; see tenants.Store.
func (s *Store) SetPassword(ctx context.Context, userID, oldHash, newHash string, rev tenants.Revocation) error {
	switch {
	case userID == "":
		return errors.New("set password: no user id")
	case newHash == "":
		return errors.New("set password: the new hash is empty")
	case rev.Expires.IsZero():
		return errors.New("set password: the revocation needs an expiry")
	}
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		users := tx.Bucket(bucketUsers)
		raw := users.Get([]byte(userID))
		if raw == nil {
			return fmt.Errorf("set password of user %s: %w", userID, tenants.ErrNotFound)
		}
		var u record.User
		if err := decodeRecord(bucketUsers, []byte(userID), raw, &u); err != nil {
			return err
		}
		if u.External || u.PasswordHash != oldHash {
			return fmt.Errorf("set password of user %s: the password changed meanwhile: %w", userID, tenants.ErrConflict)
		}
		u.PasswordHash = newHash
		if err := putRecord(users, []byte(userID), &u); err != nil {
			return fmt.Errorf("set password of user %s: %w", userID, err)
		}
		// The apex's global sessions, then each tenant's: tenants are few
		// next to memberships, so look the user up in each.
		apex := rev
		apex.Key = tenants.UserRevocationKey("", userID)
		if err := putRevocation(tx, change, apex); err != nil {
			return err
		}
		mb := tx.Bucket(bucketMemberships)
		return tx.Bucket(bucketTenants).ForEach(func(k, v []byte) error {
			var t record.Tenant
			if err := decodeRecord(bucketTenants, k, v, &t); err != nil {
				return err
			}
			if mb.Get(membershipKey(t.InternalID, userID)) == nil {
				return nil
			}
			r := rev
			r.Key = tenants.UserRevocationKey(t.InternalID, userID)
			return putRevocation(tx, change, r)
		})
	})
}
