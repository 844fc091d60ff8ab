package etcdstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Records that expire (revocations, used assertion ids) are written on
// leases, so etcd deletes them once they are of no use and the store does
// not grow with every sign-out. One lease per record would cost a lease
// grant per sign-out and as many leases as records; instead the records
// that expire within the same minute share one lease (a "bucket"), which
// ends a minute after the bucket's last instant. A record therefore lives
// at least until its Expires and at most about two minutes longer. etcd
// may keep a lease longer than asked (a new leader restarts the countdown),
// never shorter, which is the safe side for both kinds of record: a
// revocation or a used id kept too long refuses nothing valid, because
// past its Expires the session or assertion it names is refused anyway.

// leaseBucket is the width of the expiry buckets that share a lease.
const leaseBucket = time.Minute

// leases grants and remembers the bucket leases of one Store.
type leases struct {
	s  *Store
	mu sync.Mutex
	// byBucket maps a bucket's end (Unix seconds) to its lease.
	byBucket map[int64]clientv3.LeaseID
}

func (l *leases) init(s *Store) {
	l.s = s
	l.byBucket = map[int64]clientv3.LeaseID{}
}

// forUntil returns a lease that lasts at least until expires (and a
// bucket's width more), granting it on first use. Leases are shared with
// other processes by nothing: each process grants its own, which costs a
// lease per bucket and process.
func (l *leases) forUntil(ctx context.Context, expires time.Time) (clientv3.LeaseID, error) {
	now := l.s.now()
	if expires.Before(now) {
		// Expired already (a record written only so that a concurrent
		// use of the same id collides with it): kept briefly all the
		// same.
		expires = now
	}
	end := expires.Truncate(leaseBucket).Add(2 * leaseBucket).Unix()
	l.mu.Lock()
	for b := range l.byBucket {
		if b <= now.Unix() {
			delete(l.byBucket, b) // ended; etcd has revoked it
		}
	}
	id, ok := l.byBucket[end]
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	ttl := end - now.Unix()
	resp, err := l.s.cli.Grant(ctx, ttl)
	if err != nil {
		return 0, fmt.Errorf("grant an etcd lease of %ds at %s: %w", ttl, l.s.endpoints, explain(err, l.s.callTimeout))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.byBucket[end]; ok {
		// A concurrent caller granted one first; this one simply
		// expires unused.
		return prev, nil
	}
	l.byBucket[end] = resp.ID
	return resp.ID, nil
}

// forget drops every remembered lease, after etcd said one of them is
// gone (revoked by an operator, or its countdown ran out early while this
// process's clock was behind): the next write grants new ones.
func (l *leases) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.byBucket)
}
