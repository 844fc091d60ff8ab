package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Backups and restores name a record by its namespace and key, as
// boltstore's Export and Create do: the namespace is the key segment after
// the prefix (the bbolt bucket of the same records), and "meta" holds the
// store's own keys ("schema", "masterKeyCheck").

// nsMeta is the namespace of the keys directly under the prefix.
const nsMeta = "meta"

// restoredNamespaces are the namespaces Restore writes, in the order it
// writes them: what a session is checked against (revocations) before what
// lets it in, and the tenants last, so that a restore written in several
// transactions makes a tenant visible only with everything it needs
// (docs/fleet.md, Backup and restore).
var restoredNamespaces = []string{
	nsRevocations, nsAssertions, nsUsers, nsUserEmails, nsExternals, nsMemberships,
	nsSessions, nsPasskeys, nsAuditHeads, nsAudit, nsDomains, nsEmailDomains, nsTenants,
}

// exportPage is how many keys one read of Export returns.
const exportPage = 500

// Export calls put for every record under the store's prefix, read at one
// etcd revision (a consistent copy whatever other processes write
// meanwhile), in pages, and returns that revision. Records on leases
// (revocations, used assertion ids, recorded sessions) are exported with their value, whose
// Expires Restore and boltstore.Create turn back into an expiry. key and
// value are valid only during the call. The sign-in attempt counters
// (counter.go) are left out: they are a few minutes of rate-limit state on
// leases, not records, and a restored store starts with none, as a new
// bbolt file does. A key in no namespace tenantgate has is an error
// wrapping tenants.ErrCorrupt; an error from put stops the export and is
// returned.
func (s *Store) Export(ctx context.Context, put func(ns string, key, value []byte) error) (int64, error) {
	var rev int64
	err := s.view(ctx, func(ctx context.Context) error {
		from, end := s.prefix, clientv3.GetPrefixRangeEnd(s.prefix)
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(exportPage), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
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
				ns, name, err := s.exportName(kv.Key)
				if err != nil {
					return err
				}
				if ns == nsCounters {
					continue
				}
				if err := put(ns, []byte(name), kv.Value); err != nil {
					return err
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return nil
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	})
	if err != nil {
		return 0, fmt.Errorf("export etcd store at %s (prefix %s): %w", s.endpoints, s.prefix, err)
	}
	return rev, nil
}

// exportName is the namespace and key Export gives a key of the store.
func (s *Store) exportName(key []byte) (ns, name string, err error) {
	rest, _ := strings.CutPrefix(string(key), s.prefix)
	ns, name, ok := strings.Cut(rest, "/")
	switch {
	case !ok && (rest == keySchema || rest == keyMasterKeyCheck):
		return nsMeta, rest, nil
	case ok && (slices.Contains(restoredNamespaces, ns) || ns == nsCounters) && name != "":
		return ns, name, nil
	}
	return "", "", corrupt("key %s under the prefix is no tenantgate record", record.Short(key))
}

// RestoreResult says how a restore was written.
type RestoreResult struct {
	// Records is how many records were written (expired ones are left
	// out).
	Records int
	// Transactions is how many etcd transactions wrote them: 1 means the
	// restore was atomic.
	Transactions int
}

// Restore limits: a transaction holds at most maxRestoreOps operations
// (under etcd's default --max-txn-ops of 128) and about maxRestoreBytes of
// keys and values (under etcd's default --max-request-bytes of 1.5 MiB).
const (
	maxRestoreOps   = 100
	maxRestoreBytes = 1 << 20
)

// restoredRecord is one record Restore writes.
type restoredRecord struct {
	key   string
	value []byte
	// expires is when a record that lives on a lease expires (zero for
	// every other record).
	expires time.Time
}

// Restore writes the records that records puts (named as Export and
// boltstore.Export name them) into the store, which must hold no record
// but its own (schema and master key check) unless replace is set: then
// what it holds is replaced, every key the backup lacks deleted and every
// other overwritten. A store that is not empty and replace not set is an
// error wrapping tenants.ErrNotEmpty, and nothing is written. The store's
// own keys are never written: the schema is this binary's, and the master
// key check value is the caller's business (MasterKeyCheck).
//
// Revocations, used assertion ids and recorded sessions go on leases that
// end after their Expires (as Revoke, UseAssertionID and RecordSession
// write them); those expired already are left out. The restore is one etcd transaction, atomic, when it fits
// in one (about 100 writes and 1 MiB). A larger one is written in
// transactions in this order: revocations and used ids, then the deletions
// (tenants first), then users, memberships and indexes, tenants last, so
// that a tenant becomes visible with everything it needs. Each is
// conditional on no other process having written under the prefix since
// the restore read it or wrote its previous transaction: another writer
// makes the restore stop with an error saying so. A restore that stopped
// part-way leaves part of the backup in the store, which a restore with
// replace then overwrites; between its transactions other processes see
// the store part-way (docs/fleet.md).
func (s *Store) Restore(ctx context.Context, records func(put func(ns string, key, value []byte) error) error, replace bool) (RestoreResult, error) {
	var res RestoreResult
	byNS := map[string][]restoredRecord{}
	now := s.now()
	err := records(func(ns string, key, value []byte) error {
		if ns == nsMeta {
			return nil
		}
		if !slices.Contains(restoredNamespaces, ns) || len(key) == 0 {
			return corrupt("record %s is in no namespace tenantgate has", record.Where(ns, key))
		}
		r := restoredRecord{key: s.key(ns, string(key)), value: bytes.Clone(value)}
		switch ns {
		case nsRevocations:
			var rev record.Revocation
			if err := record.Decode(record.Where(ns, key), value, &rev); err != nil {
				return err
			}
			r.expires = rev.Expires
		case nsAssertions:
			var a record.Assertion
			if err := record.Decode(record.Where(ns, key), value, &a); err != nil {
				return err
			}
			r.expires = a.Expires
		case nsSessions:
			var rs record.Session
			if err := record.Decode(record.Where(ns, key), value, &rs); err != nil {
				return err
			}
			if err := record.CheckSessionKey(string(key), &rs); err != nil {
				return err
			}
			r.expires = rs.Expires
		}
		if !r.expires.IsZero() && r.expires.Before(now) {
			return nil
		}
		byNS[ns] = append(byNS[ns], r)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("restore: read the backup: %w", err)
	}

	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return res, err
	}
	defer cancel()
	// What the store holds now, at one revision: every later transaction
	// is conditional on nothing under the prefix changing after it.
	reads := make([]clientv3.Op, len(restoredNamespaces))
	for i, ns := range restoredNamespaces {
		reads[i] = clientv3.OpGet(s.nsPrefix(ns), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	}
	resp, err := s.cli.Txn(cctx).Then(reads...).Commit()
	if err != nil {
		return res, fmt.Errorf("read from etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
	}
	rev := resp.Header.Revision
	// held are the keys the store holds, by namespace.
	held := map[string][]string{}
	var nheld int
	for i, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().GetKvs() {
			held[restoredNamespaces[i]] = append(held[restoredNamespaces[i]], string(kv.Key))
			nheld++
		}
	}
	if nheld > 0 && !replace {
		return res, fmt.Errorf("restore into etcd at %s (prefix %s): it holds %d records: %w", s.endpoints, s.prefix, nheld, tenants.ErrNotEmpty)
	}

	// The writes, in order: what refuses sessions first (revocations,
	// used ids), then the deletion of what the backup does not have
	// (tenants first, so an old tenant goes before anything it needs),
	// then the rest, tenants last. etcd refuses a transaction that names
	// a key twice, so a key the backup has is overwritten, not deleted.
	var ops []restoreOp
	kept := map[string]bool{}
	for _, ns := range restoredNamespaces {
		for _, r := range byNS[ns] {
			kept[r.key] = true
		}
	}
	puts := func(namespaces ...string) error {
		for _, ns := range namespaces {
			for _, r := range byNS[ns] {
				op := clientv3.OpPut(r.key, string(r.value))
				if !r.expires.IsZero() {
					lease, err := s.leaseUntil(ctx, r.expires)
					if err != nil {
						return err
					}
					op = clientv3.OpPut(r.key, string(r.value), clientv3.WithLease(lease))
				}
				ops = append(ops, restoreOp{op, len(r.key) + len(r.value)})
				res.Records++
			}
		}
		return nil
	}
	if err := puts(nsRevocations, nsAssertions); err != nil {
		return res, err
	}
	for _, ns := range slices.Backward(restoredNamespaces) {
		for _, k := range held[ns] {
			if !kept[k] {
				ops = append(ops, restoreOp{clientv3.OpDelete(k), len(k)})
			}
		}
	}
	if err := puts(restoredNamespaces[2:]...); err != nil {
		return res, err
	}

	var batches [][]clientv3.Op
	var cur []clientv3.Op
	var size int
	for _, op := range ops {
		if len(cur) > 0 && (len(cur)+1 > maxRestoreOps || size+op.size > maxRestoreBytes) {
			batches, cur, size = append(batches, cur), nil, 0
		}
		cur, size = append(cur, op.op), size+op.size
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	for i, ops := range batches {
		// Nothing under the prefix may have changed since the count (the
		// first transaction) or since this restore's previous
		// transaction: the store holds exactly the backup at the end, or
		// the restore says it does not.
		unchanged := clientv3.Compare(clientv3.ModRevision(s.prefix), "<", rev+1).WithPrefix()
		tr, err := s.commitRestore(ctx, unchanged, ops)
		switch {
		case err != nil:
			err = fmt.Errorf("write to etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
		case !tr.Succeeded && i == 0:
			err = errors.New("another process wrote to the store while the restore read it; stop every replica and command writing to it and run restore again")
		case !tr.Succeeded:
			err = errors.New("another process wrote to the store during the restore; stop every replica and command writing to it and run restore again with --replace")
		}
		if err != nil {
			if i > 0 {
				return res, fmt.Errorf("restore stopped after %d of %d transactions, so the store holds part of the backup: %w", i, len(batches), err)
			}
			return res, err
		}
		rev = tr.Header.Revision
		res.Transactions++
		s.committed(rev)
	}
	return res, nil
}

// leaseUntil is leases.forUntil with a deadline of its own: a restore may
// need a lease for every minute of a day of revocations.
func (s *Store) leaseUntil(ctx context.Context, expires time.Time) (clientv3.LeaseID, error) {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	return s.leases.forUntil(cctx, expires)
}

// restoreOp is one write of a restore and its size in bytes.
type restoreOp struct {
	op   clientv3.Op
	size int
}

// commitRestore commits one transaction of a restore, with a deadline of
// its own.
func (s *Store) commitRestore(ctx context.Context, cmp clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return s.cli.Txn(cctx).If(cmp).Then(ops...).Commit()
}
