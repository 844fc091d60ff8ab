package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// confirmer is a store whose snapshot can fall behind without an error to
// show for it (etcdstore, while etcd is unreachable): it reports when the
// snapshot was last known to be current.
type confirmer interface {
	Confirmed() time.Time
}

// The etcd store must keep reporting it: a rename would otherwise turn
// --store-max-staleness off without a word.
var _ confirmer = (*etcdstore.Store)(nil)

// staleness withholds the snapshot from Check (tenants.Current.SetStale)
// while the store has not confirmed it for longer than max
// (--store-max-staleness), and serves it again once the store has caught
// up. Until then Check keeps answering from the last snapshot: etcd may be
// away for a moment, but a replica must not go on for long allowing
// sessions whose revocation it cannot see.
type staleness struct {
	cur   *tenants.Current
	store confirmer
	max   time.Duration
	now   func() time.Time
	log   *slog.Logger
	// changed is told of every change (true: stale), to set the gRPC
	// health status.
	changed func(stale bool)
}

// check looks once and marks the snapshot stale or fresh.
func (g *staleness) check() {
	confirmed := g.store.Confirmed()
	age := g.now().Sub(confirmed)
	stale := confirmed.IsZero() || age > g.max
	if !g.cur.SetStale(stale) {
		return
	}
	if stale {
		g.log.Error("tenant snapshot not confirmed by the store for longer than --store-max-staleness: denying every request (503) until the store answers again",
			"max_staleness", g.max.String(), "last_confirmed", confirmed)
	} else {
		g.log.Info("tenant snapshot confirmed by the store again: serving", "max_staleness", g.max.String())
	}
	if g.changed != nil {
		g.changed(stale)
	}
}

// run checks until ctx ends, often enough that the snapshot is withheld
// within a small fraction of max after it became too old.
func (g *staleness) run(ctx context.Context) {
	every := min(max(g.max/20, 10*time.Millisecond), 250*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			g.check()
		}
	}
}
