package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// txn is one write being prepared: what it read, at one revision, and what
// it will write. commit sends it as a single etcd transaction that applies
// only if nothing it read has changed since, which is how every invariant
// of tenants.Store is kept inside the write (doc.go).
type txn struct {
	s   *Store
	ctx context.Context
	// rev is the revision every read is taken at: the first read's, then
	// the same for the rest, so the reads are one consistent state.
	rev int64
	// cmps are the transaction's conditions: one per key read, one per
	// range read.
	cmps []clientv3.Cmp
	// read holds what each key read held (nil: absent), and whether a
	// condition on it is already in cmps.
	read map[string]readKey
	// writes are the keys to put (value, lease) or delete (deleted), by
	// key: etcd refuses a transaction that names a key twice, and a write
	// sees its own earlier writes, as in a bbolt transaction.
	writes map[string]write
	// ranges are prefixes to delete whole.
	ranges []string
}

type readKey struct {
	value    []byte
	mod      int64
	compared bool
}

type write struct {
	value   []byte
	deleted bool
	lease   clientv3.LeaseID
}

// get returns what key holds (nil when absent) as this write sees it: its
// own writes first, else the store at the transaction's revision. The
// commit is conditional on the key being unchanged since.
func (t *txn) get(key string) ([]byte, error) {
	if w, ok := t.writes[key]; ok {
		if w.deleted {
			return nil, nil
		}
		return w.value, nil
	}
	if r, ok := t.read[key]; ok {
		if !r.compared {
			t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", r.mod))
			r.compared = true
			t.read[key] = r
		}
		return r.value, nil
	}
	resp, err := t.s.get(t.ctx, key, t.revOpts()...)
	if err != nil {
		return nil, err
	}
	t.at(resp.Header.Revision)
	r := readKey{compared: true}
	if len(resp.Kvs) > 0 {
		r.value, r.mod = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	// A key that is absent has mod revision 0: the condition is then
	// "still absent", which makes a put "create if absent".
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", r.mod))
	t.read[key] = r
	return r.value, nil
}

// scan returns every key-value under prefix at the transaction's revision,
// in key order. The commit is conditional on no key under prefix being
// created or changed since; the values are remembered, so a get of one of
// them costs no round trip (but adds a condition on that key alone, which
// also catches its deletion). The writes of this transaction are not
// reflected.
func (t *txn) scan(prefix string) ([]*mvccpb.KeyValue, error) {
	resp, err := t.s.get(t.ctx, prefix, append(t.revOpts(), clientv3.WithPrefix())...)
	if err != nil {
		return nil, err
	}
	t.at(resp.Header.Revision)
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(prefix), "<", t.rev+1).WithPrefix())
	for _, kv := range resp.Kvs {
		if _, ok := t.read[string(kv.Key)]; !ok {
			t.read[string(kv.Key)] = readKey{value: kv.Value, mod: kv.ModRevision}
		}
	}
	return resp.Kvs, nil
}

func (t *txn) revOpts() []clientv3.OpOption {
	if t.rev == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithRev(t.rev)}
}

func (t *txn) at(rev int64) {
	if t.rev == 0 {
		t.rev = rev
	}
}

// getRecord reads and decodes the record under key into rec, reporting
// whether there was one.
func (t *txn) getRecord(key string, rec any) (bool, error) {
	v, err := t.get(key)
	if err != nil || v == nil {
		return false, err
	}
	return true, t.s.decode(key, v, rec)
}

// put writes value under key.
func (t *txn) put(key string, value []byte) { t.writes[key] = write{value: value} }

// putLeased writes value under key on lease (0: none).
func (t *txn) putLeased(key string, value []byte, lease clientv3.LeaseID) {
	t.writes[key] = write{value: value, lease: lease}
}

// putRecord encodes rec and writes it under key.
func (t *txn) putRecord(key string, rec any) error {
	v, err := record.Encode(rec)
	if err != nil {
		return err
	}
	t.put(key, v)
	return nil
}

// delete deletes key.
func (t *txn) delete(key string) { t.writes[key] = write{deleted: true} }

// deletePrefix deletes every key under prefix. No key of the transaction's
// other writes may lie under it.
func (t *txn) deletePrefix(prefix string) { t.ranges = append(t.ranges, prefix) }

// ops are the transaction's writes, in key order. A put of the very bytes
// the key held when read is left out: it would change nothing but the
// key's revision (re-applying an unchanged tenant file writes nothing).
func (t *txn) ops() []clientv3.Op {
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var ops []clientv3.Op
	for _, k := range keys {
		w := t.writes[k]
		r, wasRead := t.read[k]
		switch {
		case w.deleted:
			if wasRead && r.compared && r.value == nil {
				continue // absent, and the condition keeps it so
			}
			ops = append(ops, clientv3.OpDelete(k))
		case wasRead && r.compared && w.lease == 0 && r.value != nil && string(r.value) == string(w.value):
			continue
		case w.lease != 0:
			ops = append(ops, clientv3.OpPut(k, string(w.value), clientv3.WithLease(w.lease)))
		default:
			ops = append(ops, clientv3.OpPut(k, string(w.value)))
		}
	}
	for _, p := range t.ranges {
		ops = append(ops, clientv3.OpDelete(p, clientv3.WithPrefix()))
	}
	return ops
}

// errRetry makes update run a write again on the current state: the
// state it read changed, or a lease it used is gone.
var errRetry = errors.New("retry")

// maxAttempts bounds how often update runs a write that keeps losing races.
// Each loser sees the winner's state on its next attempt, so a few suffice
// unless many processes write the same keys at once.
const maxAttempts = 64

// update runs fn to prepare a write and commits it as one transaction,
// running fn again on the new state when another write changed what it
// read in between. fn must set its results afresh on every run. An error
// from fn aborts with nothing written. A write with nothing to change
// commits nothing and notifies no one.
func (s *Store) update(ctx context.Context, fn func(t *txn) error) error {
	for attempt := 0; ; attempt++ {
		rev, err := s.attempt(ctx, fn)
		if !errors.Is(err, errRetry) {
			if err == nil && rev != 0 {
				s.committed(rev)
			}
			return err
		}
		if attempt+1 >= maxAttempts {
			return fmt.Errorf("etcd store: write lost %d races in a row to other writers; try again", maxAttempts)
		}
		// Back off a little, at random, so that writers colliding again
		// and again fall out of step.
		d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// attempt runs fn once and commits its transaction. It returns the
// revision of the commit (0 when there was nothing to write), or errRetry.
func (s *Store) attempt(ctx context.Context, fn func(t *txn) error) (int64, error) {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	t := &txn{s: s, ctx: cctx, read: map[string]readKey{}, writes: map[string]write{}}
	if err := fn(t); err != nil {
		return 0, err
	}
	ops := t.ops()
	if len(ops) == 0 {
		return 0, nil
	}
	resp, err := s.cli.Txn(cctx).If(t.cmps...).Then(ops...).Commit()
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		s.leases.forget()
		return 0, errRetry
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return 0, fmt.Errorf("write of %d keys under %d conditions is larger than one etcd transaction may be (etcd's --max-txn-ops, 128 by default): "+
			"apply fewer tenants at a time, or raise --max-txn-ops on every member: %w", len(ops), len(t.cmps), err)
	case err != nil:
		return 0, fmt.Errorf("write to etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
	case !resp.Succeeded:
		return 0, errRetry
	}
	return resp.Header.Revision, nil
}

// get is one Get with the store's deadline handling and error wording.
func (s *Store) get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	resp, err := s.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("read from etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
	}
	return resp, nil
}

// view runs fn with a context for reads, bounded like every call.
func (s *Store) view(ctx context.Context, fn func(ctx context.Context) error) error {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return fn(cctx)
}

// getMany reads keys at revision rev (0: now) in as few round trips as
// etcd's transaction size allows, returning each key's value (nil when
// absent) in the order of keys.
func (s *Store) getMany(ctx context.Context, keys []string, rev int64) ([][]byte, error) {
	const chunk = 100 // under etcd's default --max-txn-ops of 128
	out := make([][]byte, 0, len(keys))
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		ops := make([]clientv3.Op, len(part))
		for i, k := range part {
			if rev != 0 {
				ops[i] = clientv3.OpGet(k, clientv3.WithRev(rev))
			} else {
				ops[i] = clientv3.OpGet(k)
			}
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("read from etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, r := range resp.Responses {
			kvs := r.GetResponseRange().GetKvs()
			if len(kvs) == 0 {
				out = append(out, nil)
				continue
			}
			out = append(out, kvs[0].Value)
		}
	}
	return out, nil
}

// decode decodes a record read from key, naming it by its namespace and
// name in errors.
func (s *Store) decode(key string, data []byte, rec any) error {
	ns, name, _ := s.split([]byte(key))
	return record.Decode(record.Where(ns, []byte(name)), data, rec)
}

// notFound wraps tenants.ErrNotFound with what was missing.
func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, tenants.ErrNotFound)...)
}

// corrupt wraps tenants.ErrCorrupt with what is wrong.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{tenants.ErrCorrupt}, args...)...)
}
