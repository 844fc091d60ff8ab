package boltstore

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// SecondFactors returns a membership's second factors; see tenants.Store.
func (s *Store) SecondFactors(ctx context.Context, tenantInternalID, userID string) (tenants.SecondFactors, error) {
	var out tenants.SecondFactors
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rec, err := getMembership(tx, tenantInternalID, userID)
		if err != nil {
			return err
		}
		out = rec.ToSecondFactors()
		return nil
	})
	return out, err
}

// UpdateSecondFactors changes a membership's second factors in one write
// transaction; see tenants.Store.
func (s *Store) UpdateSecondFactors(ctx context.Context, tenantInternalID, userID string, fn func(*tenants.SecondFactors) error) error {
	return s.update(ctx, func(tx *bolt.Tx, _ *tenants.SnapshotChange) error {
		rec, err := getMembership(tx, tenantInternalID, userID)
		if err != nil {
			return err
		}
		f := rec.ToSecondFactors()
		if err := fn(&f); err != nil {
			return err
		}
		rec.SetSecondFactors(f)
		return putRecord(tx.Bucket(bucketMemberships), membershipKey(tenantInternalID, userID), rec)
	})
}

// getMembership reads a membership record, or an error wrapping
// tenants.ErrNotFound.
func getMembership(tx *bolt.Tx, tenantInternalID, userID string) (*record.Membership, error) {
	key := membershipKey(tenantInternalID, userID)
	raw := tx.Bucket(bucketMemberships).Get(key)
	if raw == nil {
		return nil, fmt.Errorf("membership of user %q in tenant %q: %w", userID, tenantInternalID, tenants.ErrNotFound)
	}
	var rec record.Membership
	if err := decodeRecord(bucketMemberships, key, raw, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}
