package etcdstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Counter counts events per key in a sliding window, in etcd, for every
// process on the store together: the sign-in attempt counters of a fleet
// (login.Counter, whose contract it keeps; cmd wires it). Each event is one
// key, created in the same transaction that counts the key's events, so
// that of concurrent Adds by any number of processes each gets its own
// count:
//
//	counters/<name>/<hex digest>/<time, 16 hex digits of Unix ns>-<random>
//
// An Add is one etcd transaction (a count-only range read and a put: one
// write to the raft log); a Count is one serializable count-only range
// read, which the member the client talks to answers from its own data,
// without asking the leader; a Reset deletes the digest's keys (one
// write). The keys are on the
// store's shared expiry leases (lease.go), which outlast the window by one
// to two minutes, so etcd deletes them, a lease at a time, and the store
// does not grow with attempts; counting reads the time in the key, so an
// event stops counting exactly a window after it happened, whatever the
// lease. The window slides: an event counts for window after it, and
// times are the callers' clocks, so replicas' clock skew shifts an event's
// end by as much.
//
// The snapshot follower ignores these keys (follow.go): an attempt is no
// change to any snapshot.
type Counter struct {
	s      *Store
	name   string
	window time.Duration
}

// Counter returns the store's counter called name, whose events count for
// window. Every process that opens the same name on the same store and
// prefix shares its counts; give every process the same window.
func (s *Store) Counter(name string, window time.Duration) *Counter {
	return &Counter{s: s, name: name, window: window}
}

// dir is the common prefix of key's events.
func (c *Counter) dir(key [sha256.Size]byte) string {
	return c.s.key(nsCounters, c.name+"/"+hex.EncodeToString(key[:])+"/")
}

// stamp is t as a key part whose byte order is time order: Unix ns in 16
// hex digits (times before 1970 as 1970: they sort first, counted or not).
func stamp(t time.Time) string {
	return fmt.Sprintf("%016x", uint64(max(t.UnixNano(), 0)))
}

// inWindow are the options of a count-only read of the events of key dir
// that still count at now: those after now-window, up to the end of dir
// (which takes in events stamped later than now by a clock ahead).
func (c *Counter) inWindow(dir string, now time.Time) (string, []clientv3.OpOption) {
	return dir + stamp(now.Add(-c.window).Add(time.Nanosecond)),
		[]clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(dir)), clientv3.WithCountOnly()}
}

// Count returns how many events key has had in the window before now
// (login.Counter). The read is serializable: cheap enough to make before
// every attempt, even in a flood, and at most a moment behind the Adds of
// other processes (a member's replication lag); it guides (is the account
// already locked, the address already over its limit?), while what must
// be exact rests on Add, which is linearizable.
func (c *Counter) Count(ctx context.Context, key [sha256.Size]byte, now time.Time) (int, error) {
	cctx, cancel, err := c.s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	from, opts := c.inWindow(c.dir(key), now)
	resp, err := c.s.cli.Get(cctx, from, append(opts, clientv3.WithSerializable())...)
	if err != nil {
		return 0, fmt.Errorf("read %s counter from etcd at %s: %w", c.name, c.s.endpoints, explain(err, c.s.callTimeout))
	}
	return int(resp.Count), nil
}

// maxCounterAttempts bounds how often Add tries again after a lease that
// etcd no longer has or a key that exists (a random suffix drawn twice).
const maxCounterAttempts = 4

// Add counts one event for key at now and returns the count of the window
// with it (login.Counter): one transaction that counts the events already
// in the window and creates this one, so concurrent Adds are ordered by
// etcd and each returns another count.
func (c *Counter) Add(ctx context.Context, key [sha256.Size]byte, now time.Time) (int, error) {
	cctx, cancel, err := c.s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	dir := c.dir(key)
	from, opts := c.inWindow(dir, now)
	for range maxCounterAttempts {
		var suffix [8]byte
		if _, err := io.ReadFull(c.s.rand, suffix[:]); err != nil {
			return 0, fmt.Errorf("count in %s: %w", c.name, err)
		}
		event := dir + stamp(now) + "-" + hex.EncodeToString(suffix[:])
		// Kept at least a window from now by this process's clock, the
		// one etcd's lease countdown follows.
		lease, err := c.s.leases.forUntil(cctx, c.s.now().Add(c.window))
		if err != nil {
			return 0, err
		}
		resp, err := c.s.cli.Txn(cctx).
			If(clientv3.Compare(clientv3.CreateRevision(event), "=", 0)).
			Then(clientv3.OpGet(from, opts...), clientv3.OpPut(event, "", clientv3.WithLease(lease))).
			Commit()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			c.s.leases.forget()
			continue
		case err != nil:
			return 0, fmt.Errorf("count in %s counter in etcd at %s: %w", c.name, c.s.endpoints, explain(err, c.s.callTimeout))
		case !resp.Succeeded:
			continue
		}
		return int(resp.Responses[0].GetResponseRange().GetCount()) + 1, nil
	}
	return 0, fmt.Errorf("count in %s counter in etcd at %s: no write succeeded in %d attempts", c.name, c.s.endpoints, maxCounterAttempts)
}

// Reset forgets every event of key (login.Counter).
func (c *Counter) Reset(ctx context.Context, key [sha256.Size]byte) error {
	cctx, cancel, err := c.s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := c.s.cli.Delete(cctx, c.dir(key), clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("reset %s counter in etcd at %s: %w", c.name, c.s.endpoints, explain(err, c.s.callTimeout))
	}
	return nil
}
