package fleet_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
	"github.com/tenantgate/tenantgate/tenants/storetest"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
)

// opener opens etcd stores on one cluster, each test's under a prefix of
// its own, so that one cluster serves a whole suite.
type opener struct {
	opts etcdstore.Options
}

func newOpener(t *testing.T, c *etcdcluster.Cluster) *opener {
	return &opener{opts: etcdstore.Options{Endpoints: c.Endpoints(), TLS: c.TLS()}}
}

// prefix returns a new prefix no other test uses.
func prefix(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "/test-" + hex.EncodeToString(b) + "/"
}

// open opens a store under prefix p, closed when t ends.
func (o *opener) open(t *testing.T, p string) *etcdstore.Store {
	t.Helper()
	opts := o.opts
	opts.Prefix = p
	st, err := etcdstore.Open(opts)
	if err != nil {
		t.Fatalf("etcdstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestConformance runs the Store conformance suite on etcd: one member is
// enough for the contract; the fleet tests below kill members.
func TestConformance(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	storetest.Run(t, func(t *testing.T) tenants.Store { return o.open(t, prefix(t)) })
	storetest.RunDurable(t, func(t *testing.T) (tenants.Store, func() tenants.Store) {
		p := prefix(t)
		return o.open(t, p), func() tenants.Store { return o.open(t, p) }
	})
	storetest.RunShared(t, func(t *testing.T) (tenants.Store, tenants.Store) {
		p := prefix(t)
		return o.open(t, p), o.open(t, p)
	})
}
