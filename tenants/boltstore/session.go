package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Recorded sessions live in bucketSessions (record.SessionKey →
// record.Session), each with an entry in bucketSessionExpiry, which every
// write prunes (pruneSessions) as it prunes revocations: the records never
// outgrow the sessions alive.

// RecordSession records an issued session, dropping the person's expired
// records and evicting (dropping and revoking) the oldest beyond
// tenants.MaxSessionsPerUser, in one transaction; see tenants.Store.
func (s *Store) RecordSession(ctx context.Context, sess tenants.Session, evict tenants.Revocation) error {
	rec, err := record.FromSession(sess)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		held, err := heldSessions(tx, rec.Tenant, rec.User)
		if err != nil {
			return err
		}
		expired, evicted := record.Evicted(held, rec, s.now())
		for _, r := range append(expired, evicted...) {
			if err := deleteSession(tx, &r); err != nil {
				return err
			}
		}
		for _, r := range evicted {
			ev := evict
			ev.Key = tenants.SessionRevocationKey(r.SID)
			if err := putRevocation(tx, change, ev); err != nil {
				return fmt.Errorf("revoke evicted session: %w", err)
			}
		}
		key := []byte(record.SessionKey(rec.Tenant, rec.User, rec.SID))
		if raw := tx.Bucket(bucketSessions).Get(key); raw != nil {
			var prev record.Session
			if err := decodeRecord(bucketSessions, key, raw, &prev); err != nil {
				return err
			}
			if err := deleteSession(tx, &prev); err != nil {
				return err
			}
		}
		if err := putRecord(tx.Bucket(bucketSessions), key, &rec); err != nil {
			return fmt.Errorf("session: %w", err)
		}
		if err := tx.Bucket(bucketSessionExpiry).Put(expiryKey(rec.Expires, string(key)), nil); err != nil {
			return fmt.Errorf("session: index expiry: %w", err)
		}
		return nil
	})
}

// Sessions returns a person's live recorded sessions in a tenant, newest
// first; see tenants.Store.
func (s *Store) Sessions(ctx context.Context, tenantInternalID, userID string) ([]tenants.Session, error) {
	var out []tenants.Session
	err := s.view(ctx, func(tx *bolt.Tx) error {
		held, err := heldSessions(tx, tenantInternalID, userID)
		if err != nil {
			return err
		}
		out = record.Listed(held, s.now())
		return nil
	})
	return out, err
}

// RevokeSession revokes one recorded session of a person in a tenant and
// drops its record, in one transaction; see tenants.Store.
func (s *Store) RevokeSession(ctx context.Context, tenantInternalID, userID, sid string, rev tenants.Revocation) error {
	if tenantInternalID == "" || userID == "" || sid == "" {
		return fmt.Errorf("revoke session: tenant, user and sid must be set: %w", tenants.ErrNotFound)
	}
	key := []byte(record.SessionKey(tenantInternalID, userID, sid))
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		raw := tx.Bucket(bucketSessions).Get(key)
		if raw == nil {
			return fmt.Errorf("session of user %q in tenant %q: %w", userID, tenantInternalID, tenants.ErrNotFound)
		}
		var r record.Session
		if err := decodeRecord(bucketSessions, key, raw, &r); err != nil {
			return err
		}
		if err := deleteSession(tx, &r); err != nil {
			return err
		}
		rev.Key = tenants.SessionRevocationKey(sid)
		return putRevocation(tx, change, rev)
	})
}

// heldSessions reads every record of a person's sessions in a tenant.
func heldSessions(tx *bolt.Tx, tenantInternalID, userID string) ([]record.Session, error) {
	b := tx.Bucket(bucketSessions)
	if b == nil {
		return nil, nil // a database from before sessions were recorded, not yet upgraded
	}
	prefix := []byte(record.SessionPrefix(tenantInternalID, userID))
	var out []record.Session
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r record.Session
		if err := decodeRecord(bucketSessions, k, v, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// deleteSession removes a session record and its expiry index entry.
func deleteSession(tx *bolt.Tx, r *record.Session) error {
	key := record.SessionKey(r.Tenant, r.User, r.SID)
	if err := tx.Bucket(bucketSessions).Delete([]byte(key)); err != nil {
		return fmt.Errorf("drop session record: %w", err)
	}
	if err := tx.Bucket(bucketSessionExpiry).Delete(expiryKey(r.Expires, key)); err != nil {
		return fmt.Errorf("drop session record: %w", err)
	}
	return nil
}

// pruneSessions drops the records of sessions that have expired.
func (s *Store) pruneSessions(tx *bolt.Tx) error {
	sb, se := tx.Bucket(bucketSessions), tx.Bucket(bucketSessionExpiry)
	if sb == nil || se == nil {
		return nil
	}
	now := s.now()
	var doomed []record.Session
	c := se.Cursor()
	for k, _ := c.First(); k != nil && expirySeconds(k) <= now.Unix(); k, _ = c.Next() {
		var r record.Session
		if err := decodeRecord(bucketSessions, k[8:], sb.Get(k[8:]), &r); err != nil {
			return err
		}
		if !r.Expires.After(now) {
			doomed = append(doomed, r)
		}
	}
	for i := range doomed {
		if err := deleteSession(tx, &doomed[i]); err != nil {
			return err
		}
	}
	return nil
}

// deleteSessions removes every recorded session of a tenant.
func deleteSessions(tx *bolt.Tx, tenantInternalID string) error {
	sb := tx.Bucket(bucketSessions)
	if sb == nil {
		return nil
	}
	prefix := membershipPrefix(tenantInternalID)
	var doomed []record.Session
	c := sb.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r record.Session
		if err := decodeRecord(bucketSessions, k, v, &r); err != nil {
			return err
		}
		doomed = append(doomed, r)
	}
	for i := range doomed {
		if err := deleteSession(tx, &doomed[i]); err != nil {
			return err
		}
	}
	return nil
}

// walkSessions is walkRecords' check of the recorded sessions: each
// decodes, sits under its own key and is in the expiry index, and every
// index entry names a record.
func walkSessions(tx *bolt.Tx) error {
	sb, se := tx.Bucket(bucketSessions), tx.Bucket(bucketSessionExpiry)
	if sb == nil || se == nil {
		return nil
	}
	err := sb.ForEach(func(k, v []byte) error {
		var r record.Session
		if err := decodeRecord(bucketSessions, k, v, &r); err != nil {
			return err
		}
		if err := record.CheckSessionKey(string(k), &r); err != nil {
			return err
		}
		if se.Get(expiryKey(r.Expires, string(k))) == nil {
			return fmt.Errorf("%w: session %s is missing from the expiry index", tenants.ErrCorrupt, short(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return se.ForEach(func(k, _ []byte) error {
		if len(k) <= 8 || sb.Get(k[8:]) == nil {
			return fmt.Errorf("%w: expiry index entry %s names no session", tenants.ErrCorrupt, short(k))
		}
		return nil
	})
}
