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
	mux.Handle("GET /metrics", s.serveMetrics())
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

// checkReady is ready when the store is open, a snapshot is served and
// the store still answers. It never reads the store's contents: a probe
// every few seconds must cost next to nothing, whatever the store holds.
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
	p, ok := st.(pinger)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		s.pingFailures.Add(1)
		s.log.Error("readiness: the store does not answer", "err", err)
		return err
	}
	return nil
}
