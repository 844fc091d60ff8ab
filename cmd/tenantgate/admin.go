package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// adminMux serves the admin address: liveness, readiness and metrics, and
// the admin API under /admin/ when serve has --admin-token-file.
func (s *server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := s.checkReady(r.Context()); err != nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m := s.metrics
		snap := s.snapshots.Load()
		fmt.Fprintf(w, "# HELP tenantgate_check_total Check decisions by outcome.\n# TYPE tenantgate_check_total counter\n")
		fmt.Fprintf(w, "tenantgate_check_total{outcome=\"allowed\"} %d\n", m.Allowed.Load())
		fmt.Fprintf(w, "tenantgate_check_total{outcome=\"allowed_anonymous\"} %d\n", m.AllowedAnonymous.Load())
		fmt.Fprintf(w, "tenantgate_check_total{outcome=\"redirected\"} %d\n", m.Redirected.Load())
		fmt.Fprintf(w, "tenantgate_check_total{outcome=\"denied\"} %d\n", m.Denied.Load())
		if snap != nil {
			fmt.Fprintf(w, "# HELP tenantgate_tenants Tenants in the current snapshot.\n# TYPE tenantgate_tenants gauge\ntenantgate_tenants %d\n", snap.Len())
			fmt.Fprintf(w, "# HELP tenantgate_snapshot_version Snapshots published since start.\n# TYPE tenantgate_snapshot_version counter\ntenantgate_snapshot_version %d\n", snap.Version)
		}
	})
	if s.adminOn {
		mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
			o := s.opened.Load()
			if o == nil {
				w.Header().Set("Cache-Control", "no-store")
				writeAdminError(w, http.StatusServiceUnavailable, "unavailable", "the store is not open yet (etcd has not answered since serve started); try again once /readyz answers 200")
				return
			}
			o.adminAPI.ServeHTTP(w, r)
		})
	} else {
		mux.HandleFunc("/admin/", adminAPIOff)
	}
	return mux
}

// checkReady is ready when the store is open, a snapshot is loaded and the
// store still answers.
func (s *server) checkReady(ctx context.Context) error {
	if !s.ready() {
		return fmt.Errorf("no tenant snapshot loaded")
	}
	st := s.opened.Load().store
	if _, ok := st.(confirmer); ok {
		// A distributed store's snapshot is withheld once it is too old
		// (staleness), which ready reports; asking the store here would
		// make a replica unready the moment etcd is away, before
		// --store-max-staleness has passed.
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := st.Snapshot(ctx)
	return err
}
