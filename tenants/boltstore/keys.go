package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// keyMasterKeyCheck is the key, in bucket meta, of a value sealed under
// the master key the store is written with (MasterKeyCheck): the value
// etcdstore keeps under the same name, so a backup of either carries it.
var keyMasterKeyCheck = []byte("masterKeyCheck")

// MasterKeyCheck stores sealed (a value sealed under the caller's master
// key) if the store holds no check value yet, and returns the one it holds,
// as etcdstore's does: a process with another master key is refused even
// while no tenant exists, and after a master key rotation (Reseal) the old
// key opens nothing, the check value included. The bytes stay opaque.
func (s *Store) MasterKeyCheck(ctx context.Context, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, errors.New("master key check: empty value")
	}
	var stored []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		stored = bytes.Clone(tx.Bucket(bucketMeta).Get(keyMasterKeyCheck))
		return nil
	})
	if err != nil || stored != nil {
		return stored, err
	}
	err = s.update(ctx, func(tx *bolt.Tx, _ *tenants.SnapshotChange) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyMasterKeyCheck); v != nil {
			stored = bytes.Clone(v)
			return nil
		}
		stored = sealed
		return meta.Put(keyMasterKeyCheck, sealed)
	})
	return stored, err
}

// RotateKey gives a tenant a new current signing key; see
// tenants.Store.RotateKey.
func (s *Store) RotateKey(ctx context.Context, tenantID string, r tenants.KeyRotation) (tenants.SigningKey, error) {
	var key tenants.SigningKey
	err := s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		rec, err := mustTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if key, err = callOut(func() (tenants.SigningKey, error) { return record.RotateKey(rec, r) }); err != nil {
			return err
		}
		if err := putRecord(tx.Bucket(bucketTenants), []byte(tenantID), rec); err != nil {
			return fmt.Errorf("tenant %q: %w", tenantID, err)
		}
		return replaceTenants(tx, change)
	})
	if err != nil {
		return tenants.SigningKey{}, err
	}
	return key, nil
}

// Reseal rewrites every sealed value and the master key check value in
// one bbolt transaction; see tenants.Store.Reseal.
func (s *Store) Reseal(ctx context.Context, r tenants.Reseal) error {
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		tb := tx.Bucket(bucketTenants)
		var recs []record.Tenant
		err := tb.ForEach(func(k, v []byte) error {
			var rec record.Tenant
			if err := decodeRecord(bucketTenants, k, v, &rec); err != nil {
				return err
			}
			recs = append(recs, rec)
			return nil
		})
		if err != nil {
			return err
		}
		for i := range recs {
			if _, err := callOut(func() (struct{}, error) { return struct{}{}, record.Reseal(&recs[i], r.Tenant) }); err != nil {
				return err
			}
			if err := putRecord(tb, []byte(recs[i].ID), &recs[i]); err != nil {
				return fmt.Errorf("tenant %q: %w", recs[i].ID, err)
			}
		}
		mb := tx.Bucket(bucketMemberships)
		var resealed []record.Membership
		var keys [][]byte
		err = mb.ForEach(func(k, v []byte) error {
			var rec record.Membership
			if err := decodeRecord(bucketMemberships, k, v, &rec); err != nil {
				return err
			}
			changed, err := callOut(func() (bool, error) { return record.ResealFactors(string(k), &rec, r.Factor) })
			if err != nil || !changed {
				return err
			}
			resealed, keys = append(resealed, rec), append(keys, bytes.Clone(k))
			return nil
		})
		if err != nil {
			return err
		}
		for i := range resealed {
			if err := putRecord(mb, keys[i], &resealed[i]); err != nil {
				return fmt.Errorf("membership %s: %w", keys[i], err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		check, err := callOut(func() ([]byte, error) {
			return record.ResealCheck(bytes.Clone(meta.Get(keyMasterKeyCheck)), r.Check)
		})
		if err != nil {
			return err
		}
		if err := meta.Put(keyMasterKeyCheck, check); err != nil {
			return fmt.Errorf("put master key check value: %w", err)
		}
		return replaceTenants(tx, change)
	})
}
