package etcdstore

import (
	"context"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// SecondFactors returns a membership's second factors; see tenants.Store.
func (s *Store) SecondFactors(ctx context.Context, tenantInternalID, userID string) (tenants.SecondFactors, error) {
	var out tenants.SecondFactors
	err := s.view(ctx, func(ctx context.Context) error {
		key := s.key(nsMemberships, record.MembershipKey(tenantInternalID, userID))
		resp, err := s.get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return notFound("membership of user %q in tenant %q", userID, tenantInternalID)
		}
		var mr record.Membership
		if err := s.decode(key, resp.Kvs[0].Value, &mr); err != nil {
			return err
		}
		out = mr.ToSecondFactors()
		return nil
	})
	return out, err
}

// UpdateSecondFactors changes a membership's second factors; see
// tenants.Store. The membership read is a condition of the transaction,
// so two replicas spending the same TOTP step or recovery code race on
// it: one commits, the other runs fn again on what the first wrote.
func (s *Store) UpdateSecondFactors(ctx context.Context, tenantInternalID, userID string, fn func(*tenants.SecondFactors) error) error {
	return s.update(ctx, func(t *txn) error {
		key := s.key(nsMemberships, record.MembershipKey(tenantInternalID, userID))
		var rec record.Membership
		ok, err := t.getRecord(key, &rec)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("membership of user %q in tenant %q", userID, tenantInternalID)
		}
		f := rec.ToSecondFactors()
		if err := fn(&f); err != nil {
			return err
		}
		rec.SetSecondFactors(f)
		return t.putRecord(key, &rec)
	})
}
