package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// follower is the snapshot a Store keeps current by following etcd
// (doc.go). Its fields are guarded by Store.mu, except tenants, which only
// the follower goroutine touches.
type follower struct {
	started bool
	// hot is the snapshot as of revision rev; nil until the first load.
	hot *tenants.Snapshot
	rev int64
	// tenants are the tenants hot was built from, by slug: a tenant
	// event replaces one and rebuilds the tenant index from all.
	tenants map[string]tenants.Tenant
	// err is why the follower is not following now (a failed load, a
	// lost watch), nil while it is.
	err error
	// confirmed is when hot was last known to be current: a load, or
	// etcd's word that every event up to a revision was delivered.
	confirmed time.Time
	// own are the revisions of this process's writes that have notified
	// the watchers already and are not applied yet: their events do not
	// notify again.
	own map[int64]bool
	// advanced is closed and replaced whenever rev, hot or err change.
	advanced chan struct{}
	// askProgress asks the follower goroutine for a progress
	// notification (Snapshot waiting for a revision that no event of
	// this prefix will bring).
	askProgress chan struct{}
}

// broadcast wakes everyone waiting on advanced.
func (f *follower) broadcast() {
	if f.advanced != nil {
		close(f.advanced)
	}
	f.advanced = make(chan struct{})
}

// Follower timing.
const (
	// minReloadBackoff and maxReloadBackoff bound the wait between two
	// attempts to load after a failure.
	minReloadBackoff = 100 * time.Millisecond
	maxReloadBackoff = 5 * time.Second
	// progressRetry is how often Snapshot asks again for a progress
	// notification while it waits.
	progressRetry = 100 * time.Millisecond
)

// startLocked starts the follower goroutine once; s.mu must be held.
func (s *Store) startLocked() {
	if s.f.started || s.closed {
		return
	}
	s.f.started = true
	s.f.own = map[int64]bool{}
	s.f.askProgress = make(chan struct{}, 1)
	s.f.broadcast()
	s.followed = make(chan struct{})
	go s.follow()
}

// follow loads the snapshot and follows the watch, loading again whenever
// the watch ends, until the Store is closed.
func (s *Store) follow() {
	defer close(s.followed)
	backoff := minReloadBackoff
	for {
		loaded, err := s.followOnce()
		if s.ctx.Err() != nil {
			return
		}
		if loaded {
			backoff = minReloadBackoff
		}
		s.mu.Lock()
		s.f.err = err
		s.f.broadcast()
		s.mu.Unlock()
		s.log.Warn("etcd store: reloading the tenant snapshot", "err", err, "retry_in", backoff.String())
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
			return
		}
		if !loaded {
			backoff = min(2*backoff, maxReloadBackoff)
		}
	}
}

// followOnce loads everything at one revision, publishes it, and applies
// the watch's events from the next revision until the watch ends. It
// reports whether the load succeeded, and why it stopped.
func (s *Store) followOnce() (loaded bool, err error) {
	started := s.now()
	snap, byslug, rev, err := s.load()
	if err != nil {
		return false, err
	}
	s.f.tenants = byslug
	s.mu.Lock()
	first := s.f.hot == nil
	s.f.hot, s.f.rev, s.f.err = snap, rev, nil
	if started.After(s.f.confirmed) {
		// A load is linearizable: current as of before it began.
		s.f.confirmed = started
	}
	s.forgetOwnLocked(rev)
	s.f.broadcast()
	if !first {
		// Anything may have changed while the watch was lost.
		s.notifyLocked()
	}
	s.mu.Unlock()

	// WithRequireLeader: a member cut off from the leader cancels the
	// watch (and a load then finds a member that has one) instead of
	// leaving it open and silent.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	// From rev itself, not rev+1, although the snapshot holds rev
	// already (apply skips it): etcd answers progress requests only for a
	// watcher whose start revision it has reached, and a watcher of rev+1
	// would get none until the next write anywhere in etcd.
	wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithProgressNotify())
	checks := make(chan revCheck)
	go s.checkRevisions(wctx, checks)
	// Progress requests go through a goroutine of their own: etcd's
	// client takes one only once the watch stream is up, and events must
	// not wait behind it.
	progress := make(chan struct{}, 1)
	go s.requestProgress(wctx, progress)
	askProgress := func() {
		select {
		case progress <- struct{}{}:
		default: // one is pending
		}
	}
	// behind are the checks that found etcd ahead of the snapshot, oldest
	// first: each confirms the snapshot as of its time once the
	// snapshot reaches its revision (events, or a progress
	// notification).
	var behind []revCheck
	settle := func() {
		held := s.revision()
		for len(behind) > 0 && behind[0].rev <= held {
			s.confirm(behind[0].at)
			behind = behind[1:]
		}
	}
	for {
		select {
		case <-s.ctx.Done():
			return true, nil
		case c := <-checks:
			if c.rev <= s.revision() {
				s.confirm(c.at)
				continue
			}
			behind = append(behind, c)
			if late := c.at.Sub(behind[0].at); late > s.stuckAfter() {
				// Events stopped coming (a stream etcd's client keeps
				// resuming without success) while etcd answers reads:
				// start afresh.
				return true, fmt.Errorf("the etcd watch has not reached revision %d in %v: restarting it", behind[0].rev, late.Round(time.Millisecond))
			}
			askProgress()
		case <-s.f.askProgress:
			askProgress()
		case resp, ok := <-wch:
			switch {
			case !ok:
				return true, errors.New("the etcd watch ended")
			case resp.Err() != nil:
				// Compacted past our revision, no leader, cancelled:
				// the events in between are lost, so load afresh.
				return true, fmt.Errorf("etcd watch from revision %d: %w", s.revision(), resp.Err())
			case resp.Canceled:
				return true, fmt.Errorf("etcd watch cancelled: %s", resp.CancelReason)
			case resp.IsProgressNotify():
				s.progressed(resp.Header.Revision)
			case resp.Created:
			default:
				if err := s.apply(resp.Events); err != nil {
					return true, err
				}
			}
			settle()
		}
	}
}

// revCheck is etcd's current revision as a linearizable read saw it, and
// when the read was sent: a snapshot that holds rev holds every write that
// committed before at.
type revCheck struct {
	rev int64
	at  time.Time
}

// checkRevisions reads etcd's current revision every progress interval and
// sends what it saw to out, until ctx ends. A read that fails sends
// nothing: the snapshot is then not confirmed, and Confirmed grows old.
func (s *Store) checkRevisions(ctx context.Context, out chan<- revCheck) {
	tick := time.NewTicker(s.progress)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := s.now()
		cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
		resp, err := s.cli.Get(cctx, s.prefix+keySchema)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("etcd store: revision check failed", "err", err)
			}
			continue
		}
		select {
		case out <- revCheck{rev: resp.Header.Revision, at: at}:
		case <-ctx.Done():
			return
		}
	}
}

// stuckAfter is how long the snapshot may stay behind a revision etcd
// reported before the watch is started afresh.
func (s *Store) stuckAfter() time.Duration { return max(5*s.progress, 2*time.Second) }

// confirm records that the snapshot held every write committed before at.
func (s *Store) confirm(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.After(s.f.confirmed) {
		s.f.confirmed = at
		s.f.broadcast()
	}
}

// requestProgress asks etcd for a progress notification on the watch
// stream of wctx (etcd answers once every event up to its current
// revision has been delivered) each time asked is signalled, until wctx
// ends.
func (s *Store) requestProgress(wctx context.Context, asked <-chan struct{}) {
	for {
		select {
		case <-wctx.Done():
			return
		case <-asked:
		}
		ctx, cancel := context.WithTimeout(wctx, s.callTimeout)
		err := s.cli.RequestProgress(ctx)
		cancel()
		if err != nil && wctx.Err() == nil {
			s.log.Debug("etcd store: progress request failed", "err", err)
		}
	}
}

// revision is the revision the snapshot reflects.
func (s *Store) revision() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.rev
}

// load reads every tenant, membership and unexpired revocation at one
// revision.
func (s *Store) load() (*tenants.Snapshot, map[string]tenants.Tenant, int64, error) {
	ctx, cancel, err := s.call(s.ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	defer cancel()
	ts, err := s.get(ctx, s.nsPrefix(nsTenants), prefixOpts()...)
	if err != nil {
		return nil, nil, 0, err
	}
	rev := ts.Header.Revision
	ms, err := s.get(ctx, s.nsPrefix(nsMemberships), clientv3.WithPrefix(), withRev(rev))
	if err != nil {
		return nil, nil, 0, err
	}
	rs, err := s.get(ctx, s.nsPrefix(nsRevocations), clientv3.WithPrefix(), withRev(rev))
	if err != nil {
		return nil, nil, 0, err
	}
	byslug := map[string]tenants.Tenant{}
	var change tenants.SnapshotChange
	for _, kv := range ts.Kvs {
		var r record.Tenant
		if err := s.decode(string(kv.Key), kv.Value, &r); err != nil {
			return nil, nil, 0, err
		}
		byslug[r.ID] = r.ToTenant()
	}
	change.ReplaceTenants(sortedTenants(byslug))
	for _, kv := range ms.Kvs {
		tid, uid, roles, err := s.decodeMembership(kv)
		if err != nil {
			return nil, nil, 0, err
		}
		change.PutMembership(tid, uid, roles)
	}
	now := s.now()
	for _, kv := range rs.Kvs {
		var r record.Revocation
		if err := s.decode(string(kv.Key), kv.Value, &r); err != nil {
			return nil, nil, 0, err
		}
		if !r.Expires.Before(now) {
			change.PutRevocation(r.ToRevocation())
		}
	}
	return new(tenants.Snapshot).With(&change), byslug, rev, nil
}

// sortedTenants returns the tenants of byslug sorted by slug.
func sortedTenants(byslug map[string]tenants.Tenant) []tenants.Tenant {
	out := make([]tenants.Tenant, 0, len(byslug))
	for _, slug := range slices.Sorted(maps.Keys(byslug)) {
		out = append(out, byslug[slug])
	}
	return out
}

// decodeMembership decodes a membership record and the internal ids its
// key names.
func (s *Store) decodeMembership(kv *mvccpb.KeyValue) (tenantID, userID string, roles []string, err error) {
	_, name, _ := s.split(kv.Key)
	tid, uid, ok := strings.Cut(name, "/")
	if !ok {
		return "", "", nil, corrupt("membership key %s has no tenant", record.Short(kv.Key))
	}
	if kv.Value == nil {
		return tid, uid, nil, nil
	}
	var mr record.Membership
	if err := s.decode(string(kv.Key), kv.Value, &mr); err != nil {
		return "", "", nil, err
	}
	return tid, uid, mr.Roles, nil
}

// apply applies the events of one watch response to the snapshot. An event
// the follower cannot decode fails it whole, and the follower loads again
// (which fails closed in its turn if the record is damaged).
func (s *Store) apply(events []*clientv3.Event) error {
	var change tenants.SnapshotChange
	tenantsChanged := map[string]*tenants.Tenant{} // slug → new value, nil when deleted
	var last int64
	revs := map[int64]bool{}
	now := s.now()
	held := s.revision() // only this goroutine changes it
	for _, ev := range events {
		if ev.Kv.ModRevision <= held {
			continue // in the snapshot already (the watch starts at its revision)
		}
		last = max(last, ev.Kv.ModRevision)
		ns, name, ok := s.split(ev.Kv.Key)
		if ns == nsCounters || ns == nsAudit || ns == nsAuditHeads || ns == nsSessions {
			// A sign-in attempt counted (Counter), an audit event or a
			// session recorded changes no snapshot: the snapshot moves on to its
			// revision, but the watchers are not told, or every sign-in
			// anywhere in the fleet would make every replica refresh.
			continue
		}
		revs[ev.Kv.ModRevision] = true
		if !ok {
			continue
		}
		deleted := ev.Type == mvccpb.DELETE
		switch ns {
		case nsTenants:
			if deleted {
				tenantsChanged[name] = nil
				continue
			}
			var r record.Tenant
			if err := s.decode(string(ev.Kv.Key), ev.Kv.Value, &r); err != nil {
				return err
			}
			t := r.ToTenant()
			tenantsChanged[name] = &t
		case nsMemberships:
			tid, uid, roles, err := s.decodeMembership(ev.Kv)
			if err != nil {
				return err
			}
			if deleted {
				change.DeleteMembership(tid, uid)
			} else {
				change.PutMembership(tid, uid, roles)
			}
		case nsRevocations:
			if deleted {
				change.DeleteRevocation(name)
				continue
			}
			var r record.Revocation
			if err := s.decode(string(ev.Kv.Key), ev.Kv.Value, &r); err != nil {
				return err
			}
			if r.Expires.Before(now) {
				change.DeleteRevocation(name)
			} else {
				change.PutRevocation(r.ToRevocation())
			}
		}
	}
	if len(tenantsChanged) > 0 {
		for slug, t := range tenantsChanged {
			if t == nil {
				delete(s.f.tenants, slug)
			} else {
				s.f.tenants[slug] = *t
			}
		}
		change.ReplaceTenants(sortedTenants(s.f.tenants))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f.hot == nil || last <= s.f.rev {
		return nil
	}
	s.f.hot = s.f.hot.With(&change)
	s.f.rev = last
	foreign := false
	for rev := range revs {
		if !s.f.own[rev] {
			foreign = true
		}
	}
	s.forgetOwnLocked(last)
	s.f.broadcast()
	if foreign {
		s.notifyLocked()
	}
	return nil
}

// progressed records etcd's word that every event up to rev has been
// delivered: the snapshot is current as of rev, now. etcd gives it only to
// a watcher whose start revision it has reached; checkRevisions confirms
// the snapshot when there is no newer revision to reach.
func (s *Store) progressed(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.f.rev {
		s.f.rev = rev
		s.forgetOwnLocked(rev)
	}
	s.f.confirmed = s.now()
	s.f.broadcast()
}

// forgetOwnLocked drops the own revisions up to rev; s.mu must be held.
func (s *Store) forgetOwnLocked(rev int64) {
	for r := range s.f.own {
		if r <= rev {
			delete(s.f.own, r)
		}
	}
}

// committed is called after this process's write committed at rev: it
// tells the watchers at once (as bbolt's backend does), and keeps its
// event, when the follower applies it, from telling them again.
func (s *Store) committed(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f.started && rev > s.f.rev {
		s.f.own[rev] = true
	}
	s.notifyLocked()
}

// Snapshot returns what the hot path needs (tenants.Store): every tenant,
// membership and live revocation, as of every write that committed before
// the call, by any process. It reads etcd's current revision (one
// linearizable read) and waits, within the call timeout, until the
// followed snapshot has caught up with it; the first call starts the
// follower and waits for its first load. It fails when the snapshot cannot
// be brought up to date: etcd unreachable, or a record that cannot be
// decoded.
func (s *Store) Snapshot(ctx context.Context) (*tenants.Snapshot, error) {
	s.mu.Lock()
	s.startLocked()
	s.mu.Unlock()
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := s.get(cctx, s.prefix+keySchema)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	target := resp.Header.Revision
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errClosed
		}
		hot, rev, ferr, wait, ask := s.f.hot, s.f.rev, s.f.err, s.f.advanced, s.f.askProgress
		s.mu.Unlock()
		if hot != nil && rev >= target {
			return hot, nil
		}
		if hot != nil {
			select {
			case ask <- struct{}{}:
			default: // one is pending
			}
		}
		select {
		case <-wait:
		case <-time.After(progressRetry):
		case <-cctx.Done():
			err := fmt.Errorf("snapshot: the tenant snapshot is at revision %d, etcd at %d: %w", rev, target, cctx.Err())
			if ferr != nil {
				err = fmt.Errorf("%w (following etcd failed: %w)", err, ferr)
			}
			return nil, err
		}
	}
}

// Confirmed returns the latest time before which every committed write is
// known to be in the snapshot: a load, a linearizable read of etcd's
// revision (every Options.ProgressInterval) that the snapshot has reached,
// or etcd's word that the watch delivered every event. It is the zero
// time before the first load, and stops advancing while etcd is
// unreachable or the watch lags. A caller that answers from the snapshot
// stops trusting it when this is too long ago (etcd unreachable).
func (s *Store) Confirmed() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.confirmed
}

// Watch returns a channel that receives a value (at most one pending)
// after every write that commits under the prefix (but a sign-in attempt
// counted, Counter), by this process (as soon as it commits) or any other
// (when the watch delivers it), and after
// the snapshot was loaded afresh because the watch was lost. It is closed
// when ctx ends or the Store is closed. The first call starts the
// follower.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || ctx.Err() != nil {
		close(ch)
		return ch
	}
	s.startLocked()
	s.watchers[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.watchers[ch]; ok {
			delete(s.watchers, ch)
			close(ch)
		}
	})
	return ch
}

// notifyLocked tells every watcher that something changed; s.mu must be
// held.
func (s *Store) notifyLocked() {
	for ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default: // one is already pending
		}
	}
}
