package fleet_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
)

// recorder is a slog handler that keeps the messages it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, b.String())
	return nil
}

// saw reports whether a message containing s was logged.
func (r *recorder) saw(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// within polls cond every 20 ms until it holds or d has passed, and
// returns how long it took, failing the test after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// keepTrying runs a write until it succeeds, for up to d: while etcd elects
// a new leader, writes fail at their deadline.
func keepTrying(t *testing.T, d time.Duration, what string, write func() error) {
	t.Helper()
	start := time.Now()
	for {
		err := write()
		if err == nil {
			return
		}
		if time.Since(start) > d {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// follow starts a Current following st, as serve does, until t ends.
func follow(t *testing.T, st tenants.Store) *tenants.Current {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cur := &tenants.Current{}
	if err := cur.Refresh(ctx, st); err != nil {
		t.Fatalf("first snapshot: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); cur.Follow(ctx, st, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	return cur
}

func revoke(st tenants.Store, sid string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		now := time.Now()
		return st.Revoke(ctx, tenants.Revocation{Key: tenants.SessionRevocationKey(sid), NotBefore: now, Expires: now.Add(time.Hour)})
	}
}

func revoked(cur *tenants.Current, sid string) func() bool {
	return func() bool { return cur.Load().Revoked("", "", sid, time.Now()) }
}

// TestFollowAcrossFailures: a replica's snapshot keeps following etcd
// through what happens to a cluster, and never skips what it missed: a
// watch resumed after its history was compacted away loads everything
// again; the leader's death; the whole cluster down and back, during which
// Confirmed stops advancing and Snapshot fails at its deadline.
func TestFollowAcrossFailures(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{ClientCertAuth: true})
	p := prefix(t)
	base := etcdstore.Options{Endpoints: c.Endpoints(), TLS: c.TLS(), Prefix: p,
		CallTimeout: 2 * time.Second, ProgressInterval: 200 * time.Millisecond}
	open := func(opts etcdstore.Options) *etcdstore.Store {
		t.Helper()
		st, err := etcdstore.Open(opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	writer := open(base)

	t.Run("compacted while away", func(t *testing.T) {
		// This replica talks to member 0 alone, so that killing it
		// cuts the replica off while the others go on.
		log := &recorder{}
		opts := base
		opts.Endpoints, opts.Log = []string{c.Endpoint(0)}, slog.New(log)
		replica := open(opts)
		cur := follow(t, replica)

		c.Kill(0)
		keepTrying(t, 30*time.Second, "revoke while member 0 is down", revoke(writer, "while-away"))
		// A second write, so that compacting at the current revision
		// drops the first write's revision: the one the replica's watch
		// resumes from.
		keepTrying(t, 10*time.Second, "revoke while member 0 is down", revoke(writer, "while-away-2"))
		cli := c.Client(c.Endpoint(1))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "any")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
			t.Fatalf("compact: %v", err)
		}
		if cur.Load().Revoked("", "", "while-away", time.Now()) {
			t.Fatal("the cut-off replica saw the revocation already")
		}
		c.Restart(0)
		took := within(t, 20*time.Second, "replica sees what it missed", revoked(cur, "while-away"))
		t.Logf("member back: the replica serves the revocation after %v", took.Round(time.Millisecond))
		if !log.saw("compacted") {
			t.Errorf("the replica caught up without reloading after compaction; logged %q", log.msgs)
		}
		keepTrying(t, 10*time.Second, "revoke after", revoke(writer, "after"))
		within(t, 5*time.Second, "replica follows again", revoked(cur, "after"))
	})

	t.Run("leader killed", func(t *testing.T) {
		replica := open(base)
		cur := follow(t, replica)
		leader := c.Leader()
		c.Kill(leader)
		keepTrying(t, 30*time.Second, "revoke after the leader died", revoke(writer, "new-leader"))
		took := within(t, 10*time.Second, "replica follows the new leader", revoked(cur, "new-leader"))
		t.Logf("leader killed: the replica serves a write after %v", took.Round(time.Millisecond))
		c.Restart(leader)
	})

	t.Run("cluster down and back", func(t *testing.T) {
		replica := open(base)
		cur := follow(t, replica)
		within(t, 5*time.Second, "confirmed", func() bool { return time.Since(replica.Confirmed()) < time.Second })
		c.StopAll()
		stopped := time.Now()
		within(t, 10*time.Second, "Confirmed stops advancing", func() bool { return time.Since(replica.Confirmed()) > 2*time.Second })
		if last := replica.Confirmed(); last.After(stopped) {
			t.Errorf("Confirmed = %v, after etcd stopped at %v", last, stopped)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := replica.Snapshot(ctx)
		if err == nil {
			t.Fatal("Snapshot succeeded with every member down")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Snapshot failed after %v, want its 2s call timeout", d)
		}
		if cur.Load() == nil || cur.Load().Len() != 0 {
			t.Error("the last snapshot stopped serving while etcd was down")
		}
		c.RestartAll()
		keepTrying(t, 30*time.Second, "revoke after the restart", revoke(writer, "back"))
		within(t, 20*time.Second, "replica catches up", revoked(cur, "back"))
		within(t, 5*time.Second, "confirmed again", func() bool { return time.Since(replica.Confirmed()) < time.Second })
	})
}

// TestOpenFailsClearly: etcd unreachable, or TLS that does not match, is a
// start-up error within the call timeout that names the endpoints and says
// what to check, never a hang.
func TestOpenFailsClearly(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	noCert := c.TLS()
	noCert.Certificates = nil
	for _, tc := range []struct {
		name string
		opts etcdstore.Options
		want []string
	}{
		{"nothing listens", etcdstore.Options{Endpoints: []string{"https://127.0.0.1:1"}, TLS: c.TLS()},
			[]string{"https://127.0.0.1:1", "did not answer within 1s", "--etcd-ca-file"}},
		{"no client certificate", etcdstore.Options{Endpoints: c.Endpoints(), TLS: noCert},
			[]string{c.Endpoint(0), "TLS does not match", "--etcd-cert-file"}},
		{"plain http to TLS", etcdstore.Options{Endpoints: []string{strings.Replace(c.Endpoint(0), "https:", "http:", 1)}},
			[]string{"did not answer", "https://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.CallTimeout = time.Second
			start := time.Now()
			st, err := etcdstore.Open(tc.opts)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open failed after %v, want about its 1s timeout", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if !errors.Is(err, etcdstore.ErrUnreachable) {
				t.Errorf("error %v does not wrap etcdstore.ErrUnreachable (serve waits only for those)", err)
			}
		})
	}
}
