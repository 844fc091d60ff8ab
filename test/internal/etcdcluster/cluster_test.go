package etcdcluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
)

// opTimeout bounds one client call in these tests that is expected to
// succeed.
const opTimeout = 10 * time.Second

func put(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, key, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %d keys, want 1", key, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value)
}

// TestClusterSurvivesLosingItsLeader kills the leader of a 3-member
// cluster with SIGKILL: the other two elect a new leader, a client of all
// three endpoints writes again, and the killed member, restarted on its
// data directory, rejoins with what was written while it was gone. Then
// the same with a graceful stop, as in a rolling restart.
func TestClusterSurvivesLosingItsLeader(t *testing.T) {
	began := time.Now()
	c := etcdcluster.Start(t, etcdcluster.Options{ClientCertAuth: true})
	t.Logf("3 members (TLS, client certificates) healthy %v after start", time.Since(began).Round(time.Millisecond))

	cli := c.Client()
	put(t, cli, "before", "1")
	if got := get(t, cli, "before"); got != "1" {
		t.Fatalf("get before = %q, want 1", got)
	}

	old := c.Leader()
	c.Kill(old)
	killed := time.Now()

	// Write as a store would: each attempt bounded, again until one
	// succeeds. The errors seen meanwhile are what a store must expect.
	var failures []string
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "after", "2")
		cancel()
		if err == nil {
			break
		}
		if msg := err.Error(); !slices.Contains(failures, msg) {
			failures = append(failures, msg)
		}
		if time.Since(killed) > etcdcluster.Timeout {
			t.Fatalf("no write succeeded in %v after the leader was killed (%d attempts): %v", etcdcluster.Timeout, attempt, failures)
		}
	}
	writable := time.Since(killed)
	leader := c.Leader()
	elected := time.Since(killed)
	if leader == old {
		t.Fatalf("leader after the kill = %s, the killed member", c.Name(leader))
	}
	t.Logf("killed leader %s: writes resumed after %v (errors meanwhile: %q); %s leads, agreed by all %v after the kill",
		c.Name(old), writable.Round(time.Millisecond), failures, c.Name(leader), elected.Round(time.Millisecond))

	restarted := time.Now()
	c.Restart(old)
	t.Logf("%s restarted, rejoined and caught up in %v", c.Name(old), time.Since(restarted).Round(time.Millisecond))

	// A serializable read is answered from the member's own data: it has
	// the write it missed.
	own := c.Client(c.Endpoint(old))
	if got := get(t, own, "after", clientv3.WithSerializable()); got != "2" {
		t.Errorf("restarted %s: serializable get after = %q, want 2", c.Name(old), got)
	}
	if got := get(t, cli, "after"); got != "2" {
		t.Errorf("get after = %q, want 2", got)
	}

	// A rolling restart stops the leader gracefully: it hands leadership
	// over before it exits.
	old = c.Leader()
	stopping := time.Now()
	c.Stop(old)
	stopped := time.Since(stopping)
	if leader := c.Leader(); leader == old {
		t.Fatalf("leader after a graceful stop = %s, the stopped member", c.Name(leader))
	}
	t.Logf("leader %s stopped with SIGTERM in %v; a new leader agreed %v after the stop began",
		c.Name(old), stopped.Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond))
	put(t, cli, "rolled", "3")
	c.Restart(old)
	if got := get(t, own, "rolled", clientv3.WithSerializable()); got != "3" {
		t.Errorf("restarted %s: serializable get rolled = %q, want 3", c.Name(old), got)
	}
}

// TestClusterDownFailsInBoundedTime stops every member: client calls fail
// by their deadline, not later; after RestartAll the same client is served
// again, data intact.
func TestClusterDownFailsInBoundedTime(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{ClientCertAuth: true})
	cli := c.Client()
	put(t, cli, "k", "v")

	c.StopAll()

	const deadline = 2 * time.Second
	const slack = 3 * time.Second // scheduling on a loaded machine
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"put", func(ctx context.Context) error { _, err := cli.Put(ctx, "k", "w"); return err }},
		{"linearizable get", func(ctx context.Context) error { _, err := cli.Get(ctx, "k"); return err }},
		{"serializable get", func(ctx context.Context) error {
			_, err := cli.Get(ctx, "k", clientv3.WithSerializable())
			return err
		}},
		{"status", func(ctx context.Context) error { _, err := cli.Status(ctx, c.Endpoint(0)); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			began := time.Now()
			err := tc.call(ctx)
			took := time.Since(began)
			if err == nil {
				t.Fatal("succeeded with every member down")
			}
			if took > deadline+slack {
				t.Errorf("failed after %v with a %v deadline", took, deadline)
			}
			t.Logf("all members down: %s failed after %v: %v", tc.name, took.Round(time.Millisecond), err)
		})
	}

	// Without a deadline, a call waits for a member to come back: a
	// store must always pass one.
	waiting := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := cli.Get(ctx, "k")
		waiting <- err
	}()
	select {
	case err := <-waiting:
		t.Logf("all members down: a get without a deadline returned at once: %v", err)
	case <-time.After(time.Second):
		t.Logf("all members down: a get without a deadline still waits after 1s")
	}
	cancel()
	<-waiting

	restarted := time.Now()
	c.RestartAll()
	healthy := time.Since(restarted)
	if got := get(t, cli, "k"); got != "v" {
		t.Errorf("get k after RestartAll = %q, want v", got)
	}
	t.Logf("all members restarted: healthy after %v, the old client served %v after the restart",
		healthy.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
}

// TestClientTLS shows that members speak TLS only, trust only the test CA,
// and ask for a client certificate exactly when ClientCertAuth is set.
func TestClientTLS(t *testing.T) {
	withCerts := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	noCerts := etcdcluster.Start(t, etcdcluster.Options{Members: 1})

	caOnly := func(c *etcdcluster.Cluster) *tls.Config {
		return &tls.Config{RootCAs: c.CAPool()}
	}
	otherCA := func(c *etcdcluster.Cluster) *tls.Config {
		cfg := c.TLS()
		cfg.RootCAs = x509.NewCertPool() // trusts nothing
		return cfg
	}
	tests := []struct {
		name       string
		cluster    *etcdcluster.Cluster
		scheme     string // "" keeps https
		tls        func(*etcdcluster.Cluster) *tls.Config
		wantServed bool
	}{
		{"client certificate, cert auth on", withCerts, "", (*etcdcluster.Cluster).TLS, true},
		{"no client certificate, cert auth on", withCerts, "", caOnly, false},
		{"no client certificate, cert auth off", noCerts, "", caOnly, true},
		{"server not trusted", noCerts, "", otherCA, false},
		{"plain text", noCerts, "http", func(*etcdcluster.Cluster) *tls.Config { return nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := tc.cluster.Endpoint(0)
			if tc.scheme != "" {
				ep = tc.scheme + strings.TrimPrefix(ep, "https")
			}
			cli, err := clientv3.New(clientv3.Config{
				Endpoints:   []string{ep},
				DialTimeout: time.Second,
				TLS:         tc.tls(tc.cluster),
				Logger:      zap.NewNop(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err = cli.Put(ctx, "k", "v")
			if served := err == nil; served != tc.wantServed {
				t.Errorf("put: %v, want served %v", err, tc.wantServed)
			}
			if err != nil {
				t.Logf("put refused: %v", err)
			}
		})
	}
}

// TestBinaryWantsTheClientVersion checks the pin: an etcd binary that does
// not report the version of the client in go.mod is not used (skipped
// outside CI, naming make tools), and neither is a missing one.
func TestBinaryWantsTheClientVersion(t *testing.T) {
	t.Setenv("CI", "") // skip rather than fail, so the outcome can be seen
	dir := t.TempDir()
	script := func(name, versionLine string) string {
		path := filepath.Join(dir, name)
		body := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\nGit SHA: test\\n' '%s'\n", versionLine)
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name     string
		path     string
		wantUsed bool
	}{
		{"pinned version", script("right", "etcd Version: "+version.Version), true},
		{"another version", script("wrong", "etcd Version: 3.5.0"), false},
		{"a longer version", script("longer", "etcd Version: "+version.Version+"1"), false},
		{"missing", filepath.Join(dir, "absent"), false},
	}
	for _, tc := range tests {
		t.Setenv("TENANTGATE_ETCD", tc.path)
		var got string
		var skipped bool
		t.Run(tc.name, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			got = etcdcluster.Binary(t)
		})
		if used := !skipped && got == tc.path; used != tc.wantUsed {
			t.Errorf("%s: Binary = %q (skipped %v), want used %v", tc.name, got, skipped, tc.wantUsed)
		}
	}
}
