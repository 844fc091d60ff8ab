package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

type fakeConfirmer struct {
	mu sync.Mutex
	at time.Time
}

func (f *fakeConfirmer) Confirmed() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at
}

// TestStaleness: the snapshot is served while the store confirmed it
// within --store-max-staleness, withheld (Load nil: Check 503, not ready,
// health NOT_SERVING) once it is older, and served again once the store
// confirms it; each change is reported once.
func TestStaleness(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cur := &tenants.Current{}
	if err := cur.Refresh(context.Background(), snapshotOf{tenants.NewSnapshot([]tenants.Tenant{{ID: "acme"}}, nil)}); err != nil {
		t.Fatal(err)
	}
	store := &fakeConfirmer{}
	var changes []bool
	g := &staleness{cur: cur, store: store, max: time.Minute, now: func() time.Time { return now },
		log: slog.New(slog.DiscardHandler), changed: func(stale bool) { changes = append(changes, stale) }}
	for _, step := range []struct {
		name      string
		confirmed time.Time
		serving   bool
	}{
		{"just confirmed", now, true},
		{"confirmed a minute ago", now.Add(-time.Minute), true},
		{"a moment too old", now.Add(-time.Minute - time.Millisecond), false},
		{"still too old", now.Add(-time.Hour), false},
		{"confirmed again", now.Add(-time.Second), true},
		{"never confirmed", time.Time{}, false},
	} {
		store.mu.Lock()
		store.at = step.confirmed
		store.mu.Unlock()
		g.check()
		if got := cur.Load() != nil; got != step.serving {
			t.Errorf("%s: serving = %v, want %v", step.name, got, step.serving)
		}
	}
	if want := []bool{true, false, true}; len(changes) != len(want) || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Errorf("changes reported = %v, want %v", changes, want)
	}
}

type snapshotOf struct{ s *tenants.Snapshot }

func (s snapshotOf) Snapshot(context.Context) (*tenants.Snapshot, error) { return s.s, nil }
