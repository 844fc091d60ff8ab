package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// RotateKey gives a tenant a new current signing key in one transaction,
// conditional on the tenant record being unchanged since it was read; see
// tenants.Store.RotateKey.
func (s *Store) RotateKey(ctx context.Context, tenantID string, r tenants.KeyRotation) (tenants.SigningKey, error) {
	var key tenants.SigningKey
	err := s.update(ctx, func(t *txn) error {
		rec, err := s.mustTenant(t, tenantID)
		if err != nil {
			return err
		}
		if key, err = record.RotateKey(rec, r); err != nil {
			return err
		}
		return t.putRecord(s.key(nsTenants, tenantID), rec)
	})
	if err != nil {
		return tenants.SigningKey{}, err
	}
	return key, nil
}

// Reseal rewrites every tenant record and the master key check value in
// one etcd transaction, conditional on no tenant having been created,
// changed or deleted since they were read; see tenants.Store.Reseal.
//
// One transaction holds one put per tenant plus the check value, so a
// store of more tenants than etcd's --max-txn-ops (128 by default) allows,
// or whose records together exceed --max-request-bytes (1.5 MiB by
// default), is refused with nothing written: a master key rotation that
// was only half done would leave the store readable by neither key. The
// error says which limit to raise, on every member, for the rotation.
func (s *Store) Reseal(ctx context.Context, r tenants.Reseal) error {
	var n int
	err := s.update(ctx, func(t *txn) error {
		kvs, err := t.scan(s.nsPrefix(nsTenants))
		if err != nil {
			return err
		}
		n = len(kvs)
		for _, kv := range kvs {
			var rec record.Tenant
			if err := s.decode(string(kv.Key), kv.Value, &rec); err != nil {
				return err
			}
			if err := record.Reseal(&rec, r.Tenant); err != nil {
				return err
			}
			if err := t.putRecord(string(kv.Key), &rec); err != nil {
				return fmt.Errorf("tenant %q: %w", rec.ID, err)
			}
		}
		members, err := t.scan(s.nsPrefix(nsMemberships))
		if err != nil {
			return err
		}
		prefix := s.nsPrefix(nsMemberships)
		for _, kv := range members {
			var rec record.Membership
			if err := s.decode(string(kv.Key), kv.Value, &rec); err != nil {
				return err
			}
			changed, err := record.ResealFactors(strings.TrimPrefix(string(kv.Key), prefix), &rec, r.Factor)
			if err != nil {
				return err
			}
			if changed {
				n++
				if err := t.putRecord(string(kv.Key), &rec); err != nil {
					return err
				}
			}
		}
		checkKey := s.prefix + keyMasterKeyCheck
		stored, err := t.get(checkKey)
		if err != nil {
			return err
		}
		check, err := record.ResealCheck(stored, r.Check)
		if err != nil {
			return err
		}
		t.put(checkKey, check)
		return nil
	})
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("master key rotation rewrites all %d tenants and members with second factors and the check value in one etcd transaction, more operations than etcd's --max-txn-ops allows (128 by default); nothing was changed: raise --max-txn-ops above %d on every etcd member for the rotation: %w",
			n, n+1, err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("master key rotation rewrites all %d tenants and members with second factors in one etcd transaction, larger than etcd's --max-request-bytes allows (1.5 MiB by default); nothing was changed: raise --max-request-bytes on every etcd member for the rotation: %w",
			n, err)
	}
	return err
}
