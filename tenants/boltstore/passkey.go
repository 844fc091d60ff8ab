package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// AddPasskey stores a member's passkey; see tenants.Store. Passkeys are
// registered rarely, so the credential id's uniqueness in the tenant is
// checked by a scan of the tenant's passkey keys inside the write rather
// than by another index to keep consistent.
func (s *Store) AddPasskey(ctx context.Context, tenantInternalID, userID string, p tenants.Passkey) error {
	return s.update(ctx, func(tx *bolt.Tx, _ *tenants.SnapshotChange) error {
		if tx.Bucket(bucketMemberships).Get(membershipKey(tenantInternalID, userID)) == nil {
			return fmt.Errorf("membership of user %q in tenant %q: %w", userID, tenantInternalID, tenants.ErrNotFound)
		}
		pb := tx.Bucket(bucketPasskeys)
		var keys []string
		prefix := []byte(record.TenantPrefix(tenantInternalID))
		c := pb.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		if err := record.CheckNewPasskey(keys, tenantInternalID, userID, p); err != nil {
			return err
		}
		rec := record.FromPasskey(p)
		return putRecord(pb, []byte(record.PasskeyKey(tenantInternalID, userID, p.ID)), &rec)
	})
}

// Passkeys lists a member's passkeys; see tenants.Store.
func (s *Store) Passkeys(ctx context.Context, tenantInternalID, userID string) ([]tenants.Passkey, error) {
	out := []tenants.Passkey{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		prefix := []byte(record.PasskeyUserPrefix(tenantInternalID, userID))
		c := tx.Bucket(bucketPasskeys).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var rec record.Passkey
			if err := decodeRecord(bucketPasskeys, k, v, &rec); err != nil {
				return err
			}
			out = append(out, rec.ToPasskey())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	record.SortPasskeys(out)
	return out, nil
}

// UpdatePasskey changes a member's passkey in one write transaction; see
// tenants.Store. bbolt has one writer, so what fn reads is what the write
// replaces.
func (s *Store) UpdatePasskey(ctx context.Context, tenantInternalID, userID string, id []byte, fn func(*tenants.Passkey) error) error {
	key := []byte(record.PasskeyKey(tenantInternalID, userID, id))
	return s.update(ctx, func(tx *bolt.Tx, _ *tenants.SnapshotChange) error {
		pb := tx.Bucket(bucketPasskeys)
		raw := pb.Get(key)
		if raw == nil {
			return fmt.Errorf("passkey of user %q in tenant %q: %w", userID, tenantInternalID, tenants.ErrNotFound)
		}
		var rec record.Passkey
		if err := decodeRecord(bucketPasskeys, key, raw, &rec); err != nil {
			return err
		}
		if err := record.UpdatePasskey(&rec, fn); err != nil {
			return err
		}
		return putRecord(pb, key, &rec)
	})
}

// RemovePasskey deletes a member's passkey; see tenants.Store.
func (s *Store) RemovePasskey(ctx context.Context, tenantInternalID, userID string, id []byte) error {
	key := []byte(record.PasskeyKey(tenantInternalID, userID, id))
	return s.update(ctx, func(tx *bolt.Tx, _ *tenants.SnapshotChange) error {
		pb := tx.Bucket(bucketPasskeys)
		if pb.Get(key) == nil {
			return fmt.Errorf("passkey of user %q in tenant %q: %w", userID, tenantInternalID, tenants.ErrNotFound)
		}
		if err := pb.Delete(key); err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
		return nil
	})
}

// deletePasskeys removes every passkey whose key starts with prefix (a
// membership's, when it is deleted).
func deletePasskeys(tx *bolt.Tx, prefix []byte) error {
	pb := tx.Bucket(bucketPasskeys)
	var keys [][]byte
	c := pb.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := pb.Delete(k); err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
	}
	return nil
}
