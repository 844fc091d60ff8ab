package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// The audit trail lives in bucketAudit (record.AuditKey → event) and
// bucketAuditHeads (tenant id → record.AuditHead). Within a tenant, key
// order is seq order and, because an event is never dated before the one
// it follows, time order too: a query by time reads back from the newest
// event and stops at the first older one, and pruning reads forward from
// the oldest and stops at the first newer one. No time index is needed.

var _ tenants.AuditLog = (*Store)(nil)

// auditUpdate runs fn in a write transaction of its own. Audit writes
// change nothing the snapshot holds, so watchers are not told.
func (s *Store) auditUpdate(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnFailed bool
	err := guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			err := fn(tx)
			fnFailed = err != nil
			return err
		})
	})
	if err != nil && !fnFailed {
		return fmt.Errorf("write database %s: %w", s.path, err)
	}
	return err
}

// auditHead reads a tenant's chain head, or returns nil.
func auditHead(tx *bolt.Tx, tenant string) (*record.AuditHead, error) {
	raw := tx.Bucket(bucketAuditHeads).Get([]byte(tenant))
	if raw == nil {
		return nil, nil
	}
	var h record.AuditHead
	if err := decodeRecord(bucketAuditHeads, []byte(tenant), raw, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// AppendAudit appends events in one transaction; see tenants.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, events []tenants.AuditEvent) ([]tenants.AuditEvent, error) {
	for i := range events {
		if err := record.CheckAuditEvent(&events[i]); err != nil {
			return nil, err
		}
	}
	var out []tenants.AuditEvent
	err := s.auditUpdate(ctx, func(tx *bolt.Tx) error {
		out = make([]tenants.AuditEvent, 0, len(events))
		heads := map[string]*record.AuditHead{}
		now := s.now()
		for _, e := range events {
			h, ok := heads[e.Tenant]
			if !ok {
				var err error
				if h, err = auditHead(tx, e.Tenant); err != nil {
					return err
				}
			}
			v, stored, next, err := record.ChainAudit(h, e, now)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketAudit).Put([]byte(record.AuditKey(e.Tenant, stored.Seq)), v); err != nil {
				return fmt.Errorf("append audit event: %w", err)
			}
			heads[e.Tenant] = &next
			out = append(out, stored)
		}
		for tenant, h := range heads {
			if err := putRecord(tx.Bucket(bucketAuditHeads), []byte(tenant), h); err != nil {
				return fmt.Errorf("audit head of tenant %q: %w", tenant, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuditEvents returns a tenant's selected events, oldest first; see
// tenants.AuditLog.
func (s *Store) AuditEvents(ctx context.Context, q tenants.AuditQuery) ([]tenants.AuditEvent, error) {
	var out []tenants.AuditEvent
	err := s.view(ctx, func(tx *bolt.Tx) error {
		prefix := []byte(record.AuditPrefix(q.Tenant))
		c := tx.Bucket(bucketAudit).Cursor()
		// The newest event first: the last key under the prefix.
		k, v := c.Seek(append(bytes.Clone(prefix), 0xff))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var r record.AuditEvent
			if err := decodeRecord(bucketAudit, k, v, &r); err != nil {
				return err
			}
			if r.Time.Before(q.Since) {
				break
			}
			if r.Selects(q) {
				out = append(out, r.ToAuditEvent(record.Hash(v)))
			}
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// VerifyAudit checks a tenant's chain; see tenants.AuditLog.
func (s *Store) VerifyAudit(ctx context.Context, tenant string) (tenants.AuditVerdict, error) {
	var v tenants.AuditVerdict
	err := s.view(ctx, func(tx *bolt.Tx) error {
		h, err := auditHead(tx, tenant)
		if err != nil {
			return err
		}
		check := record.NewChainCheck(tenant, h)
		prefix := []byte(record.AuditPrefix(tenant))
		c := tx.Bucket(bucketAudit).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && !check.Broken(); k, val = c.Next() {
			check.Next(string(k), val)
		}
		v = check.End()
		return nil
	})
	return v, err
}

// PruneAudit removes every event older than before; see tenants.AuditLog.
// One transaction: the events of the tenants pruned and their heads.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.auditUpdate(ctx, func(tx *bolt.Tx) error {
		n = 0
		heads, events := tx.Bucket(bucketAuditHeads), tx.Bucket(bucketAudit)
		type cut struct {
			tenant string
			head   record.AuditHead
			keys   [][]byte
		}
		var cuts []cut
		err := heads.ForEach(func(k, raw []byte) error {
			var h record.AuditHead
			if err := decodeRecord(bucketAuditHeads, k, raw, &h); err != nil {
				return err
			}
			cu := cut{tenant: string(k), head: h}
			prefix := []byte(record.AuditPrefix(string(k)))
			c := events.Cursor()
			for ek, ev := c.Seek(prefix); ek != nil && bytes.HasPrefix(ek, prefix); ek, ev = c.Next() {
				var r record.AuditEvent
				if err := decodeRecord(bucketAudit, ek, ev, &r); err != nil {
					return err
				}
				if !r.Time.Before(before) {
					break
				}
				cu.keys = append(cu.keys, bytes.Clone(ek))
				cu.head.Pruned, cu.head.PrunedHash = r.Seq, record.Hash(ev)
			}
			if len(cu.keys) > 0 {
				cuts = append(cuts, cu)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, cu := range cuts {
			for _, k := range cu.keys {
				if err := events.Delete(k); err != nil {
					return fmt.Errorf("prune audit event: %w", err)
				}
				n++
			}
			if err := putRecord(heads, []byte(cu.tenant), &cu.head); err != nil {
				return fmt.Errorf("audit head of tenant %q: %w", cu.tenant, err)
			}
		}
		return nil
	})
	return n, err
}
