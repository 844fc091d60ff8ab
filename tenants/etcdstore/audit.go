package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// The audit trail is the namespaces audit/<tenant>/<seq> (the events) and
// auditHeads/<tenant> (each tenant's chain head), the records and keys
// boltstore writes. Appending reads the tenant's head and commits the new
// event and head only if the head is unchanged: of two replicas appending
// to one tenant at once, one commits and the other runs again on the new
// head, so the chain stays one line (tenants.AuditLog). The same holds
// between an append and a prune, which rewrites the head too.

var _ tenants.AuditLog = (*Store)(nil)

// auditPage is how many events one read of a query returns.
const auditPage = 500

// maxAuditBatch bounds the events of one AppendAudit: each is a put, and
// each tenant adds a condition and a put, under etcd's --max-txn-ops of
// 128.
const maxAuditBatch = 40

// auditUpdate is update without telling this process's watchers: audit
// writes change nothing the snapshot holds.
func (s *Store) auditUpdate(ctx context.Context, fn func(t *txn) error) error {
	for attempt := 0; ; attempt++ {
		_, err := s.attempt(ctx, fn)
		if !errors.Is(err, errRetry) {
			return err
		}
		if attempt+1 >= maxAttempts {
			return fmt.Errorf("etcd store: audit write lost %d races in a row to other writers; try again", maxAttempts)
		}
		d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AppendAudit appends events in one transaction; see tenants.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, events []tenants.AuditEvent) ([]tenants.AuditEvent, error) {
	if len(events) > maxAuditBatch {
		return nil, fmt.Errorf("append audit: %d events in one write, at most %d", len(events), maxAuditBatch)
	}
	for i := range events {
		if err := record.CheckAuditEvent(&events[i]); err != nil {
			return nil, err
		}
	}
	var out []tenants.AuditEvent
	err := s.auditUpdate(ctx, func(t *txn) error {
		out = make([]tenants.AuditEvent, 0, len(events))
		heads := map[string]*record.AuditHead{}
		now := s.now()
		for _, e := range events {
			h, ok := heads[e.Tenant]
			if !ok {
				var stored record.AuditHead
				found, err := t.getRecord(s.key(nsAuditHeads, e.Tenant), &stored)
				if err != nil {
					return err
				}
				if found {
					h = &stored
				}
			}
			v, ev, next, err := record.ChainAudit(h, e, now)
			if err != nil {
				return err
			}
			t.put(s.key(nsAudit, record.AuditKey(e.Tenant, ev.Seq)), v)
			heads[e.Tenant] = &next
			out = append(out, ev)
		}
		for tenant, h := range heads {
			if err := t.putRecord(s.key(nsAuditHeads, tenant), h); err != nil {
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

// AuditEvents returns a tenant's selected events, oldest first, read at
// one revision from the newest back; see tenants.AuditLog.
func (s *Store) AuditEvents(ctx context.Context, q tenants.AuditQuery) ([]tenants.AuditEvent, error) {
	var out []tenants.AuditEvent
	err := s.view(ctx, func(ctx context.Context) error {
		from := s.key(nsAudit, record.AuditPrefix(q.Tenant))
		end := clientv3.GetPrefixRangeEnd(from)
		var rev int64
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(auditPage),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := s.get(ctx, from, opts...)
			if err != nil {
				return err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				var r record.AuditEvent
				if err := s.decode(string(kv.Key), kv.Value, &r); err != nil {
					return err
				}
				if r.Time.Before(q.Since) {
					return nil
				}
				if r.Selects(q) {
					out = append(out, r.ToAuditEvent(record.Hash(kv.Value)))
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return nil
			}
			end = string(resp.Kvs[len(resp.Kvs)-1].Key) // exclusive
		}
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// forEachAudit calls fn for each event of tenant at revision rev, oldest
// first, until fn returns false.
func (s *Store) forEachAudit(ctx context.Context, tenant string, rev int64, fn func(key string, value []byte) (bool, error)) error {
	prefix := s.key(nsAudit, record.AuditPrefix(tenant))
	from, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
	for {
		resp, err := s.get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(auditPage), clientv3.WithRev(rev),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			more, err := fn(strings.TrimPrefix(string(kv.Key), s.nsPrefix(nsAudit)), kv.Value)
			if err != nil || !more {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// auditHead reads a tenant's chain head now, returning it (nil: none), its
// mod revision and the revision of the read.
func (s *Store) auditHead(ctx context.Context, tenant string) (*record.AuditHead, int64, int64, error) {
	key := s.key(nsAuditHeads, tenant)
	resp, err := s.get(ctx, key)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, resp.Header.Revision, nil
	}
	var h record.AuditHead
	if err := s.decode(key, resp.Kvs[0].Value, &h); err != nil {
		return nil, 0, 0, err
	}
	return &h, resp.Kvs[0].ModRevision, resp.Header.Revision, nil
}

// VerifyAudit checks a tenant's chain at one revision; see
// tenants.AuditLog.
func (s *Store) VerifyAudit(ctx context.Context, tenant string) (tenants.AuditVerdict, error) {
	var v tenants.AuditVerdict
	err := s.view(ctx, func(ctx context.Context) error {
		h, _, rev, err := s.auditHead(ctx, tenant)
		if err != nil {
			return err
		}
		check := record.NewChainCheck(tenant, h)
		err = s.forEachAudit(ctx, tenant, rev, func(key string, value []byte) (bool, error) {
			check.Next(key, value)
			return !check.Broken(), nil
		})
		if err != nil {
			return err
		}
		v = check.End()
		return nil
	})
	return v, err
}

// PruneAudit removes every event older than before, one transaction per
// tenant (a range delete and the new head, conditional on the head being
// unchanged since it was read); see tenants.AuditLog.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	var tenantIDs []string
	err := s.view(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, s.nsPrefix(nsAuditHeads), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			tenantIDs = append(tenantIDs, strings.TrimPrefix(string(kv.Key), s.nsPrefix(nsAuditHeads)))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var n int
	for _, tenant := range tenantIDs {
		for attempt := 0; ; attempt++ {
			pruned, err := s.pruneTenantAudit(ctx, tenant, before)
			if !errors.Is(err, errRetry) {
				if err != nil {
					return n, fmt.Errorf("prune audit events of tenant %q: %w", tenant, err)
				}
				n += pruned
				break
			}
			if attempt+1 >= maxAttempts {
				return n, fmt.Errorf("prune audit events of tenant %q: lost %d races in a row to other writers", tenant, maxAttempts)
			}
		}
	}
	return n, nil
}

// pruneTenantAudit prunes one tenant's events, or returns errRetry when
// its head changed meanwhile.
func (s *Store) pruneTenantAudit(ctx context.Context, tenant string, before time.Time) (int, error) {
	var n int
	err := s.view(ctx, func(ctx context.Context) error {
		h, mod, rev, err := s.auditHead(ctx, tenant)
		if err != nil || h == nil {
			return err
		}
		next := *h
		var first, last string
		err = s.forEachAudit(ctx, tenant, rev, func(key string, value []byte) (bool, error) {
			var r record.AuditEvent
			if err := s.decode(s.key(nsAudit, key), value, &r); err != nil {
				return false, err
			}
			if !r.Time.Before(before) {
				return false, nil
			}
			if first == "" {
				first = key
			}
			last, n = key, n+1
			next.Pruned, next.PrunedHash = r.Seq, record.Hash(value)
			return true, nil
		})
		if err != nil || n == 0 {
			return err
		}
		v, err := record.Encode(next)
		if err != nil {
			return err
		}
		headKey := s.key(nsAuditHeads, tenant)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(headKey), "=", mod)).
			Then(clientv3.OpDelete(s.key(nsAudit, first), clientv3.WithRange(s.key(nsAudit, last)+"\x00")),
				clientv3.OpPut(headKey, string(v))).
			Commit()
		if err != nil {
			return fmt.Errorf("write to etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
		}
		if !resp.Succeeded {
			return errRetry
		}
		return nil
	})
	return n, err
}
