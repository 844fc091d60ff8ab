package etcdstore

import (
	"context"
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// AddPasskey stores a member's passkey; see tenants.Store. The
// membership and the tenant's passkey keys are read in the transaction,
// so a concurrent registration of the same credential id, or one past the
// per-user cap, makes one of the two run again and be refused.
func (s *Store) AddPasskey(ctx context.Context, tenantInternalID, userID string, p tenants.Passkey) error {
	return s.update(ctx, func(t *txn) error {
		m, err := t.get(s.key(nsMemberships, record.MembershipKey(tenantInternalID, userID)))
		if err != nil {
			return err
		}
		if m == nil {
			return notFound("membership of user %q in tenant %q", userID, tenantInternalID)
		}
		prefix := s.nsPrefix(nsPasskeys)
		kvs, err := t.scan(s.nsPrefix(nsPasskeys, record.TenantPrefix(tenantInternalID)))
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(kvs))
		for _, kv := range kvs {
			keys = append(keys, strings.TrimPrefix(string(kv.Key), prefix))
		}
		if err := record.CheckNewPasskey(keys, tenantInternalID, userID, p); err != nil {
			return err
		}
		rec := record.FromPasskey(p)
		return t.putRecord(s.key(nsPasskeys, record.PasskeyKey(tenantInternalID, userID, p.ID)), &rec)
	})
}

// Passkeys lists a member's passkeys; see tenants.Store.
func (s *Store) Passkeys(ctx context.Context, tenantInternalID, userID string) ([]tenants.Passkey, error) {
	out := []tenants.Passkey{}
	err := s.view(ctx, func(ctx context.Context) error {
		out = out[:0]
		resp, err := s.get(ctx, s.nsPrefix(nsPasskeys, record.PasskeyUserPrefix(tenantInternalID, userID)), prefixOpts()...)
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			var rec record.Passkey
			if err := s.decode(string(kv.Key), kv.Value, &rec); err != nil {
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

// UpdatePasskey changes a member's passkey; see tenants.Store. The read
// is a condition of the transaction, so two replicas accepting
// assertions of the same credential race on it: one commits, the other
// runs fn again on what the first wrote (and sees its sign count).
func (s *Store) UpdatePasskey(ctx context.Context, tenantInternalID, userID string, id []byte, fn func(*tenants.Passkey) error) error {
	key := s.key(nsPasskeys, record.PasskeyKey(tenantInternalID, userID, id))
	return s.update(ctx, func(t *txn) error {
		var rec record.Passkey
		ok, err := t.getRecord(key, &rec)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("passkey of user %q in tenant %q", userID, tenantInternalID)
		}
		if err := record.UpdatePasskey(&rec, fn); err != nil {
			return err
		}
		return t.putRecord(key, &rec)
	})
}

// RemovePasskey deletes a member's passkey; see tenants.Store.
func (s *Store) RemovePasskey(ctx context.Context, tenantInternalID, userID string, id []byte) error {
	key := s.key(nsPasskeys, record.PasskeyKey(tenantInternalID, userID, id))
	return s.update(ctx, func(t *txn) error {
		v, err := t.get(key)
		if err != nil {
			return err
		}
		if v == nil {
			return notFound("passkey of user %q in tenant %q", userID, tenantInternalID)
		}
		t.delete(key)
		return nil
	})
}
