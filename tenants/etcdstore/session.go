package etcdstore

import (
	"context"
	"fmt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Recorded sessions live under sessions/<tenant>/<user>/<sid>, each on the
// lease of its expiry (lease.go), as revocations are: etcd deletes them
// once their session has expired, so the records never outgrow the
// sessions alive. Their watch events change no snapshot (follow.go).

// RecordSession records an issued session on a lease that ends after it
// expires, dropping the person's expired records and evicting (dropping
// and revoking) the oldest beyond tenants.MaxSessionsPerUser, in one
// transaction conditional on the person's records being unchanged since
// they were read; see tenants.Store.
func (s *Store) RecordSession(ctx context.Context, sess tenants.Session, evict tenants.Revocation) error {
	rec, err := record.FromSession(sess)
	if err != nil {
		return err
	}
	v, err := record.Encode(&rec)
	if err != nil {
		return err
	}
	return s.update(ctx, func(t *txn) error {
		held, err := s.heldSessions(t, rec.Tenant, rec.User)
		if err != nil {
			return err
		}
		expired, evicted := record.Evicted(held, rec, s.now())
		for _, r := range append(expired, evicted...) {
			t.delete(s.key(nsSessions, record.SessionKey(r.Tenant, r.User, r.SID)))
		}
		for _, r := range evicted {
			ev := evict
			ev.Key = tenants.SessionRevocationKey(r.SID)
			if err := s.putRevocation(t, ev); err != nil {
				return fmt.Errorf("revoke evicted session: %w", err)
			}
		}
		lease, err := s.leases.forUntil(t.ctx, rec.Expires)
		if err != nil {
			return err
		}
		t.putLeased(s.key(nsSessions, record.SessionKey(rec.Tenant, rec.User, rec.SID)), v, lease)
		return nil
	})
}

// Sessions returns a person's live recorded sessions in a tenant, newest
// first, from one linearizable read; see tenants.Store.
func (s *Store) Sessions(ctx context.Context, tenantInternalID, userID string) ([]tenants.Session, error) {
	var out []tenants.Session
	err := s.view(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, s.nsPrefix(nsSessions, record.SessionPrefix(tenantInternalID, userID)), prefixOpts()...)
		if err != nil {
			return err
		}
		held := make([]record.Session, len(resp.Kvs))
		for i, kv := range resp.Kvs {
			if err := s.decodeSession(string(kv.Key), kv.Value, &held[i]); err != nil {
				return err
			}
		}
		out = record.Listed(held, s.now())
		return nil
	})
	return out, err
}

// RevokeSession revokes one recorded session of a person in a tenant and
// drops its record, in one transaction conditional on the record being
// unchanged since it was read; see tenants.Store.
func (s *Store) RevokeSession(ctx context.Context, tenantInternalID, userID, sid string, rev tenants.Revocation) error {
	if tenantInternalID == "" || userID == "" || sid == "" {
		return fmt.Errorf("revoke session: tenant, user and sid must be set: %w", tenants.ErrNotFound)
	}
	key := s.key(nsSessions, record.SessionKey(tenantInternalID, userID, sid))
	return s.update(ctx, func(t *txn) error {
		raw, err := t.get(key)
		if err != nil {
			return err
		}
		if raw == nil {
			return notFound("session of user %q in tenant %q", userID, tenantInternalID)
		}
		var r record.Session
		if err := s.decodeSession(key, raw, &r); err != nil {
			return err
		}
		t.delete(key)
		rev.Key = tenants.SessionRevocationKey(sid)
		return s.putRevocation(t, rev)
	})
}

// heldSessions reads every record of a person's sessions in a tenant, in
// the transaction (the commit is conditional on none changing).
func (s *Store) heldSessions(t *txn, tenantInternalID, userID string) ([]record.Session, error) {
	kvs, err := t.scan(s.nsPrefix(nsSessions, record.SessionPrefix(tenantInternalID, userID)))
	if err != nil {
		return nil, err
	}
	out := make([]record.Session, len(kvs))
	for i, kv := range kvs {
		if err := s.decodeSession(string(kv.Key), kv.Value, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeSession decodes a session record and checks that it sits under its
// own key.
func (s *Store) decodeSession(key string, value []byte, r *record.Session) error {
	if err := s.decode(key, value, r); err != nil {
		return err
	}
	return record.CheckSessionKey(key[len(s.nsPrefix(nsSessions)):], r)
}
