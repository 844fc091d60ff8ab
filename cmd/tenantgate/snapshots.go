package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/tenantgate/tenantgate/tenants"
)

// liveSnapshots keeps serve's tenant snapshot in step with the store: after
// every change the store reports (follow), and at once after every write of
// the admin API (refresh), so a tenant applied through the API resolves in
// the very next Check.
//
// Refreshes are serialised, so the snapshot published last is also the one
// read last. Without that, a refresh the watch started just before an admin
// write could read the old state, finish after the admin's own refresh and
// publish the old state over the new one until the next change.
type liveSnapshots struct {
	mu    sync.Mutex
	cur   *tenants.Current
	store tenants.Store
	log   *slog.Logger
}

// refresh reads the store and publishes the snapshot; on error the previous
// snapshot stays.
func (l *liveSnapshots) refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur.Refresh(ctx, l.store)
}

// follow refreshes after every change the store reports until ctx ends,
// logging failures (the last good snapshot keeps serving meanwhile).
func (l *liveSnapshots) follow(ctx context.Context) {
	for range l.store.Watch(ctx) {
		if err := l.refresh(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("refresh tenant snapshot", "err", err)
		}
	}
}
