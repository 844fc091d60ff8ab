package fleet_test

import (
	"crypto/sha256"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/login/countertest"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
)

// counters opens counters of st as Handler.Counters does.
func counters(st *etcdstore.Store) countertest.Open {
	return func(name string, window time.Duration) login.Counter { return st.Counter(name, window) }
}

// TestCounterConformance holds the etcd store's sign-in counters to the
// Counter contract the memory counter keeps, and to what two processes
// sharing them promise.
func TestCounterConformance(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	countertest.Run(t, func(t *testing.T) countertest.Open { return counters(o.open(t, prefix(t))) })
	countertest.RunShared(t, func(t *testing.T) (countertest.Open, countertest.Open) {
		p := prefix(t)
		return counters(o.open(t, p)), counters(o.open(t, p))
	})
}

// TestEtcdCounter holds what is the etcd counter's own: the attempts it
// counts are no change to any snapshot (a flood of failed sign-ins must
// not make every replica refresh), and each is on a lease that outlasts
// its window, so etcd deletes them.
func TestEtcdCounter(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	p := prefix(t)
	one, two := o.open(t, p), o.open(t, p)
	ctx := t.Context()
	if _, err := two.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	changes := two.Watch(ctx)
	select {
	case <-changes: // a load's
	default:
	}

	counter := one.Counter(login.CounterAccountFailures, time.Minute)
	k := sha256.Sum256([]byte("alice"))
	for range 5 {
		if _, err := counter.Add(ctx, k, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// The other process's snapshot reaches etcd's revision (Snapshot
	// waits for it), past the five attempts, without telling its
	// watchers of a change.
	if _, err := two.Snapshot(ctx); err != nil {
		t.Fatalf("snapshot after attempts counted: %v", err)
	}
	select {
	case <-changes:
		t.Fatal("counting an attempt told the other process's watchers of a change")
	case <-time.After(200 * time.Millisecond):
	}
	mustApplySimple(t, one, "acme")
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("a tenant applied did not reach the other process's watchers")
	}

	cli := c.Client()
	resp, err := cli.Get(ctx, p+"counters/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 5 {
		t.Fatalf("%d counter keys, want one per attempt (5)", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			t.Fatalf("counter key %s has no lease", kv.Key)
		}
		ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
		if err != nil {
			t.Fatal(err)
		}
		if ttl.TTL < 60 {
			t.Errorf("counter key %s expires in %ds, before its window of 60s ends", kv.Key, ttl.TTL)
		}
	}
	t.Logf("counter key: %s (%d bytes)", resp.Kvs[0].Key, len(resp.Kvs[0].Key))
}
