package etcdstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// SetPassword replaces a user's password hash while it is still oldHash,
// and revokes the user's sessions in every tenant; see tenants.Store. The
// user record read is a condition of the transaction, so a concurrent
// change of the password makes this one retry and then see ErrConflict.
func (s *Store) SetPassword(ctx context.Context, userID, oldHash, newHash string, rev tenants.Revocation) error {
	switch {
	case userID == "":
		return errors.New("set password: no user id")
	case newHash == "":
		return errors.New("set password: the new hash is empty")
	case rev.Expires.IsZero():
		return errors.New("set password: the revocation needs an expiry")
	}
	return s.update(ctx, func(t *txn) error {
		var u record.User
		ok, err := t.getRecord(s.key(nsUsers, userID), &u)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("user %s", userID)
		}
		if u.External || u.PasswordHash != oldHash {
			return fmt.Errorf("set password of user %s: the password changed meanwhile: %w", userID, tenants.ErrConflict)
		}
		u.PasswordHash = newHash
		if err := t.putRecord(s.key(nsUsers, userID), &u); err != nil {
			return err
		}
		// The apex's global sessions, then each tenant's.
		apex := rev
		apex.Key = tenants.UserRevocationKey("", userID)
		if err := s.putRevocation(t, apex); err != nil {
			return err
		}
		all, err := t.scan(s.nsPrefix(nsTenants))
		if err != nil {
			return err
		}
		for _, kv := range all {
			var tr record.Tenant
			if err := s.decode(string(kv.Key), kv.Value, &tr); err != nil {
				return err
			}
			m, err := t.get(s.key(nsMemberships, record.MembershipKey(tr.InternalID, userID)))
			if err != nil {
				return err
			}
			if m == nil {
				continue
			}
			r := rev
			r.Key = tenants.UserRevocationKey(tr.InternalID, userID)
			if err := s.putRevocation(t, r); err != nil {
				return err
			}
		}
		return nil
	})
}
