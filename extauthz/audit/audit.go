// Package audit records tenantgate's audit events (tenants.AuditEvent):
// into the store's hash-chained trail (tenants.AuditLog) and, when asked,
// as JSON lines to a stream (serve's --audit-log). The sign-in handler and
// the administrative commands record through a Recorder; the Check path
// never does.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// Recorder writes audit events. A nil *Recorder records nothing. It is
// safe for concurrent use.
type Recorder struct {
	// Store keeps the events; required.
	Store tenants.AuditLog
	// Stream, when set, receives each event as stored (with its seq and
	// hash) as one JSON line, after the store has it. A failure to write
	// it is logged, never returned: the store holds the event.
	Stream io.Writer
	// Log receives stream failures and prune reports; nil discards them.
	Log *slog.Logger

	mu sync.Mutex // serialises Stream writes, so lines never interleave
}

// Record appends e to its tenant's trail and returns once the store has
// it, or returns why it could not (the caller decides what a lost event
// means: a sign-in is refused, an admin change reported).
func (r *Recorder) Record(ctx context.Context, e tenants.AuditEvent) error {
	if r == nil {
		return nil
	}
	stored, err := r.Store.AppendAudit(ctx, []tenants.AuditEvent{e})
	if err != nil {
		return fmt.Errorf("record audit event %s of tenant %q: %w", e.Event, e.Tenant, err)
	}
	if r.Stream != nil {
		r.stream(stored)
	}
	return nil
}

func (r *Recorder) stream(events []tenants.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range events {
		line, err := json.Marshal(e)
		if err == nil {
			_, err = r.Stream.Write(append(line, '\n'))
		}
		if err != nil {
			r.log().Error("write audit log", "tenant", e.Tenant, "seq", e.Seq, "err", err)
		}
	}
}

func (r *Recorder) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// DefaultRetention is how long events are kept (--audit-retention).
const DefaultRetention = 90 * 24 * time.Hour

// PruneInterval is how often Prune runs.
const PruneInterval = time.Hour

// Prune removes events older than retention from the store now and then
// every interval, until ctx ends. now is the clock (nil: time.Now).
// Failures are logged and tried again at the next interval. Every replica
// of a fleet may run it: prunes of one tenant by two replicas serialise on
// the tenant's chain head.
func (r *Recorder) Prune(ctx context.Context, retention, interval time.Duration, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	for {
		n, err := r.Store.PruneAudit(ctx, now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			r.log().Error("prune audit events", "err", err)
		case n > 0:
			r.log().Info("pruned audit events", "events", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
