package tenants

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// overlapSnapshotter's first Snapshot call waits (at most a moment) for a
// second call to begin, and records whether one did.
type overlapSnapshotter struct {
	calls   atomic.Int64
	entered chan struct{} // closed when the first call is in Snapshot
	second  chan struct{} // closed when a second call begins
	overlap atomic.Bool
}

func (o *overlapSnapshotter) Snapshot(context.Context) (*Snapshot, error) {
	switch o.calls.Add(1) {
	case 1:
		close(o.entered)
		select {
		case <-o.second:
			o.overlap.Store(true)
		case <-time.After(200 * time.Millisecond):
		}
	case 2:
		close(o.second)
	}
	return NewSnapshot(nil, nil), nil
}

// TestCurrentRefreshIsSerialised: a Refresh started while another is
// reading the store waits for it, so the snapshot published last is the one
// read last (a watch-driven refresh cannot overwrite the newer snapshot an
// admin write published).
func TestCurrentRefreshIsSerialised(t *testing.T) {
	var cur Current
	st := &overlapSnapshotter{entered: make(chan struct{}), second: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := cur.Refresh(context.Background(), st); err != nil {
			t.Error(err)
		}
	}()
	<-st.entered
	if err := cur.Refresh(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if st.overlap.Load() {
		t.Error("a second Refresh read the store while the first was still reading")
	}
	if v := cur.Load().Version; v != 2 {
		t.Errorf("Version = %d after two refreshes, want 2", v)
	}
}

// TestSnapshotWithIsIncremental: a sign-out adds one revocation to a
// snapshot holding 20,000 of them by sharing them, not copying: the cost
// (counted in allocations, which do not depend on the machine's speed) is
// that of a few trie nodes, and every earlier snapshot is unchanged.
func TestSnapshotWithIsIncremental(t *testing.T) {
	var c SnapshotChange
	c.ReplaceTenants([]Tenant{{ID: "acme", InternalID: "iacme"}})
	for i := range 20_000 {
		c.PutRevocation(Revocation{Key: SessionRevocationKey(fmt.Sprint("old-", i))})
		c.PutMembership("iacme", fmt.Sprint("user-", i), []string{"member"})
	}
	base := new(Snapshot).With(&c)
	if base.revocations.len() != 20_000 || base.memberships.len() != 20_000 {
		t.Fatalf("base holds %d revocations and %d memberships", base.revocations.len(), base.memberships.len())
	}
	one := &SnapshotChange{}
	one.PutRevocation(Revocation{Key: SessionRevocationKey("signed-out")})
	var next *Snapshot
	allocs := testing.AllocsPerRun(20, func() { next = base.With(one) })
	if allocs > 40 {
		t.Errorf("adding one revocation to 20,000 took %v allocations, want a few (O(log n))", allocs)
	}
	if !next.Revoked("", "", "signed-out", time.Now()) || !next.Revoked("", "", "old-19999", time.Now()) {
		t.Error("the new snapshot lacks the new or an old revocation")
	}
	if base.Revoked("", "", "signed-out", time.Now()) {
		t.Error("With changed the snapshot it started from")
	}
	if next.BySlug("acme") != base.BySlug("acme") {
		t.Error("a revocation re-indexed the tenants")
	}
}

func TestSnapshotMemberships(t *testing.T) {
	var c SnapshotChange
	c.PutMembership("t1", "u1", []string{"member", "admin", "member"})
	c.PutMembership("t2", "u1", nil)
	s1 := new(Snapshot).With(&c)
	if roles, ok := s1.Membership("t1", "u1"); !ok || !slices.Equal(roles, []string{"admin", "member"}) {
		t.Errorf("t1/u1 = %q, %v; want [admin member] (sorted, de-duplicated)", roles, ok)
	}
	if roles, ok := s1.Membership("t2", "u1"); !ok || roles == nil || len(roles) != 0 {
		t.Errorf("t2/u1 = %#v, %v; want a member with no roles", roles, ok)
	}
	for _, k := range [][2]string{{"t1", "u2"}, {"t2", "u2"}, {"t", "1u1"}, {"", "t1u1"}} {
		if _, ok := s1.Membership(k[0], k[1]); ok {
			t.Errorf("%q/%q is a member", k[0], k[1])
		}
	}
	var demote SnapshotChange
	demote.PutMembership("t1", "u1", []string{"member"})
	demote.DeleteMembership("t2", "u1")
	s2 := s1.With(&demote)
	if roles, _ := s2.Membership("t1", "u1"); !slices.Equal(roles, []string{"member"}) {
		t.Errorf("after a demotion t1/u1 = %q, want [member]", roles)
	}
	if _, ok := s2.Membership("t2", "u1"); ok {
		t.Error("a deleted membership is still there")
	}
	if roles, _ := s1.Membership("t1", "u1"); !slices.Equal(roles, []string{"admin", "member"}) {
		t.Error("With changed the snapshot it started from")
	}
}

// TestCurrentPublishesCopies: a store may return one Snapshot to several
// refreshes; each publication carries its own version without touching the
// store's.
func TestCurrentPublishesCopies(t *testing.T) {
	shared := NewSnapshot([]Tenant{{ID: "acme"}}, nil)
	var a, b Current
	for _, c := range []*Current{&a, &a, &b} {
		if err := c.Refresh(context.Background(), staticSnapshotter{shared}); err != nil {
			t.Fatal(err)
		}
	}
	if shared.Version != 0 || a.Load().Version != 2 || b.Load().Version != 1 {
		t.Errorf("versions: shared %d, a %d, b %d; want 0, 2, 1", shared.Version, a.Load().Version, b.Load().Version)
	}
	if a.Load().BySlug("acme") == nil {
		t.Error("published copy lost the tenants")
	}
}

type staticSnapshotter struct{ s *Snapshot }

func (s staticSnapshotter) Snapshot(context.Context) (*Snapshot, error) { return s.s, nil }

// TestCurrentStale: a stale Current serves nothing (Load is nil, so Check
// answers 503) while Refresh goes on publishing, and serves the latest
// snapshot once it is fresh again.
func TestCurrentStale(t *testing.T) {
	var cur Current
	first := NewSnapshot([]Tenant{{ID: "acme", InternalID: "a1"}}, nil)
	if err := cur.Refresh(t.Context(), fixedSnapshotter{first}); err != nil {
		t.Fatal(err)
	}
	if !cur.SetStale(true) || cur.SetStale(true) {
		t.Error("SetStale(true) twice: want changed, then unchanged")
	}
	if cur.Load() != nil {
		t.Fatal("a stale Current serves a snapshot")
	}
	second := NewSnapshot([]Tenant{{ID: "globex", InternalID: "g1"}}, nil)
	if err := cur.Refresh(t.Context(), fixedSnapshotter{second}); err != nil {
		t.Fatal(err)
	}
	if cur.Load() != nil {
		t.Fatal("a refresh made a stale Current serve")
	}
	if !cur.SetStale(false) {
		t.Error("SetStale(false) did not report the change")
	}
	if s := cur.Load(); s == nil || s.BySlug("globex") == nil {
		t.Errorf("fresh again: Load = %v, want the latest snapshot", s)
	}
}

type fixedSnapshotter struct{ s *Snapshot }

func (f fixedSnapshotter) Snapshot(context.Context) (*Snapshot, error) { return f.s, nil }

// flakySnapshotter fails while err is set.
type flakySnapshotter struct{ err error }

func (f *flakySnapshotter) Snapshot(context.Context) (*Snapshot, error) {
	if f.err != nil {
		return nil, f.err
	}
	return NewSnapshot(nil, nil), nil
}

// TestCurrentRefreshFailures: failed Refreshes are counted, BehindSince
// is when the first of a run of failures happened (the previous snapshot
// stays served) and is zero again after a Refresh succeeds.
func TestCurrentRefreshFailures(t *testing.T) {
	cur := &Current{}
	st := &flakySnapshotter{}
	if err := cur.Refresh(context.Background(), st); err != nil || !cur.BehindSince().IsZero() {
		t.Fatalf("Refresh: %v, BehindSince %v", err, cur.BehindSince())
	}
	st.err = fmt.Errorf("disk gone")
	before := time.Now()
	cur.Refresh(context.Background(), st)
	first := cur.BehindSince()
	cur.Refresh(context.Background(), st)
	if cur.RefreshFailures() != 2 || first.Before(before) || !cur.BehindSince().Equal(first) || cur.Load() == nil {
		t.Errorf("after two failures: %d failures, behind since %v (first %v), served %v; want 2, the first failure, still served",
			cur.RefreshFailures(), cur.BehindSince(), first, cur.Load() != nil)
	}
	st.err = nil
	if err := cur.Refresh(context.Background(), st); err != nil || !cur.BehindSince().IsZero() || cur.RefreshFailures() != 2 {
		t.Errorf("after a success: %v, behind since %v, %d failures; want zero time, 2", err, cur.BehindSince(), cur.RefreshFailures())
	}
}
