package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// metricsFlags are serve's --metrics* flags.
type metricsFlags struct {
	on          bool
	tenantLabel bool
	tenantLimit int
}

func (f *metricsFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.on, "metrics", true, "collect Prometheus metrics and serve them at /metrics on --admin-addr; false counts nothing and /metrics answers 404")
	fl.BoolVar(&f.tenantLabel, "metrics-tenant-label", false, "add a tenant label to tenantgate_check_decisions_total and tenantgate_signins_total (the first --metrics-tenant-limit tenants seen get their own value, later ones \"_other\")")
	fl.IntVar(&f.tenantLimit, "metrics-tenant-limit", metrics.DefaultTenantLimit, "with --metrics-tenant-label, how many tenants get a label value of their own")
}

// build checks the flags and returns the metrics, nil when off.
func (f *metricsFlags) build() (*metrics.Metrics, error) {
	if f.tenantLimit < 1 || f.tenantLimit > 10000 {
		return nil, fmt.Errorf("--metrics-tenant-limit %d: must be between 1 and 10000 (each tenant adds up to a dozen series per metric)", f.tenantLimit)
	}
	if !f.on {
		return nil, nil
	}
	return metrics.New(metrics.Options{TenantLabel: f.tenantLabel, TenantLimit: f.tenantLimit}), nil
}

// pinger is a store that can say cheaply whether it still answers (bbolt:
// one read transaction), for /readyz.
type pinger interface {
	Ping(ctx context.Context) error
}

var _ pinger = (*boltstore.Store)(nil)

// instrumentCheck has Check report to the metrics, and exposes the
// verified-token cache and the store's snapshot. Nothing when metrics are
// off.
func (s *server) instrumentCheck(check *extauthz.Server, verifier *session.Verifier) {
	if s.metrics == nil {
		return
	}
	check.Observer = s.metrics
	s.metrics.WatchTokenCache(verifier)
	s.metrics.WatchStore(metrics.Store{
		Tenants: func() int {
			if snap := s.snapshots.Load(); snap != nil {
				return snap.Len()
			}
			return 0
		},
		Age:    s.snapshotAge,
		Errors: func() uint64 { return s.snapshots.RefreshFailures() + s.pingFailures.Load() },
	})
}

// instrumentSignIn has the sign-in handler report to the metrics, and
// exposes its password hasher. Nothing when metrics are off.
func (s *server) instrumentSignIn(h *login.Handler) {
	if s.metrics == nil {
		return
	}
	h.Observer = s.metrics
	s.metrics.WatchPasswordHasher(h.Passwords)
}

// idpObserver is what the IdP client reports its exchanges to, nil when
// metrics are off.
func (s *server) idpObserver() func(idpclient.Kind, string) {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.IdPRequest
}

// serveMetrics is /metrics: the registry's exposition, or 404 when
// metrics are off.
func (s *server) serveMetrics() http.Handler {
	if s.metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "metrics are off: serve was started with --metrics=false", http.StatusNotFound)
		})
	}
	return s.metrics.Handler()
}

// snapshotAge is how long ago the snapshot served was last known to match
// the store: on etcd, since the store last confirmed it (the figure
// --store-max-staleness bounds); on bbolt, which this process alone
// writes, 0 unless a refresh has failed since the last that succeeded,
// then since that failure. 0 before the store is open.
func (s *server) snapshotAge() time.Duration {
	o := s.opened.Load()
	if o == nil {
		return 0
	}
	if c, ok := o.store.(confirmer); ok {
		if confirmed := c.Confirmed(); !confirmed.IsZero() {
			return time.Since(confirmed)
		}
		return 0
	}
	if behind := s.snapshots.BehindSince(); !behind.IsZero() {
		return time.Since(behind)
	}
	return 0
}
