package fleet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
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
	cli := c.Client()
	storetest.RunAudit(t, func(t *testing.T) (tenants.Store, storetest.Tamper) {
		p := prefix(t)
		return o.open(t, p), etcdTamper{cli: cli, prefix: p}
	})
}

// etcdTamper writes keys under a store's prefix behind its back.
type etcdTamper struct {
	cli    *clientv3.Client
	prefix string
}

func (e etcdTamper) Raw(t *testing.T, ns, key string) []byte {
	t.Helper()
	resp, err := e.cli.Get(t.Context(), e.prefix+ns+"/"+key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0].Value
}

func (e etcdTamper) SetRaw(t *testing.T, ns, key string, value []byte) {
	t.Helper()
	var err error
	if value == nil {
		_, err = e.cli.Delete(t.Context(), e.prefix+ns+"/"+key)
	} else {
		_, err = e.cli.Put(t.Context(), e.prefix+ns+"/"+key, string(value))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestEtcdStore holds what is the etcd backend's own, beyond the contract:
// the very records bbolt writes, expiring records on leases, damaged or
// foreign data refused, and a write too large for one transaction refused
// whole.
func TestEtcdStore(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	cli := c.Client()

	t.Run("same records as bbolt", func(t *testing.T) {
		p := prefix(t)
		et := o.openWith(t, p, func(opts *etcdstore.Options) { opts.Now, opts.Rand = fixedClock, fixedRand() })
		dbPath := filepath.Join(t.TempDir(), "tenantgate.db")
		bt, err := boltstore.Open(dbPath, boltstore.Options{Now: fixedClock, Rand: fixedRand()})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []tenants.Store{et, bt} {
			populate(t, st)
		}
		if err := bt.Close(); err != nil {
			t.Fatal(err)
		}
		fromBolt := boltRecords(t, dbPath)
		fromEtcd := etcdRecords(t, cli, p)
		if len(fromBolt) < 8 {
			t.Fatalf("bbolt holds only %d records: %v", len(fromBolt), fromBolt)
		}
		for k, v := range fromBolt {
			if got, ok := fromEtcd[k]; !ok || got != v {
				t.Errorf("record %s: bbolt %s, etcd %s", k, v, got)
			}
		}
		for k := range fromEtcd {
			if _, ok := fromBolt[k]; !ok {
				t.Errorf("etcd holds %s, bbolt does not", k)
			}
		}
	})

	t.Run("expiring records on leases", func(t *testing.T) {
		p := prefix(t)
		st := o.open(t, p)
		mustApplySimple(t, st, "acme")
		acme := mustInternalID(t, st, "acme")
		now := time.Now()
		for _, tc := range []struct {
			name, key string
			write     func(expires time.Time) error
		}{
			{"revocation", p + "revocations/sid:s1", func(exp time.Time) error {
				return st.Revoke(t.Context(), tenants.Revocation{Key: tenants.SessionRevocationKey("s1"), NotBefore: now, Expires: exp})
			}},
			{"assertion id", p + "assertions/" + acme + "/_a1", func(exp time.Time) error {
				return st.UseAssertionID(t.Context(), acme, "_a1", exp)
			}},
			{"recorded session", p + "sessions/" + acme + "/u1/s1", func(exp time.Time) error {
				return st.RecordSession(t.Context(), tenants.Session{TenantInternalID: acme, UserID: "u1", SID: "s1",
					Issued: now, Expires: exp, Device: "Firefox on Linux", Address: "192.0.2.1", Method: "password"},
					tenants.Revocation{NotBefore: now, Expires: exp})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				expires := now.Add(10 * time.Minute)
				if err := tc.write(expires); err != nil {
					t.Fatal(err)
				}
				resp, err := cli.Get(t.Context(), tc.key)
				if err != nil || len(resp.Kvs) != 1 {
					t.Fatalf("get %s: %v, %v", tc.key, resp, err)
				}
				lease := clientv3.LeaseID(resp.Kvs[0].Lease)
				if lease == 0 {
					t.Fatalf("%s is on no lease: it would never go", tc.key)
				}
				ttl, err := cli.TimeToLive(t.Context(), lease)
				if err != nil {
					t.Fatal(err)
				}
				left := time.Duration(ttl.TTL) * time.Second
				if min, max := time.Until(expires), time.Until(expires)+3*time.Minute; left < min || left > max {
					t.Errorf("lease ends in %v, want between %v (the expiry) and %v", left, min, max)
				}
			})
		}
	})

	t.Run("damaged record fails closed", func(t *testing.T) {
		p := prefix(t)
		st := o.open(t, p)
		mustApplySimple(t, st, "acme")
		if _, err := st.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(t.Context(), p+"tenants/acme", `{"v":99}`); err != nil {
			t.Fatal(err)
		}
		_, err := st.Tenants(t.Context())
		wantErrIs(t, err, tenants.ErrCorrupt, "Tenants with a record of version 99")
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		if s, err := st.Snapshot(ctx); err == nil {
			t.Errorf("Snapshot with a damaged tenant record = %d tenants, want an error", s.Len())
		}
		if _, err := o.open(t, p).Snapshot(ctx); err == nil {
			t.Error("a new store's first Snapshot read a damaged tenant record")
		}
	})

	t.Run("schema 3 opens as 4", func(t *testing.T) {
		// Schema 4 changes no record; the schema record alone is written,
		// so a tenantgate reading only 3 refuses the store from then on.
		p := prefix(t)
		o.open(t, p)
		if _, err := cli.Put(t.Context(), p+"schema", `{"v":3}`); err != nil {
			t.Fatal(err)
		}
		o.open(t, p)
		resp, err := cli.Get(t.Context(), p+"schema")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `{"v":4}` {
			t.Fatalf("schema after opening a schema-3 store: %v, %v", resp, err)
		}
	})

	t.Run("newer schema refused", func(t *testing.T) {
		p := prefix(t)
		if _, err := cli.Put(t.Context(), p+"schema", `{"v":5}`); err != nil {
			t.Fatal(err)
		}
		opts := o.opts
		opts.Prefix = p
		st, err := etcdstore.Open(opts)
		if err == nil {
			st.Close()
		}
		wantErrIs(t, err, tenants.ErrCorrupt, "Open of a schema-4 store")
	})

	t.Run("write larger than a transaction", func(t *testing.T) {
		st := o.open(t, prefix(t))
		var batch []tenants.Tenant
		for i := range 70 {
			batch = append(batch, tenants.Tenant{ID: fmt.Sprintf("t%d", i), Domains: []string{fmt.Sprintf("t%d.example", i)}})
		}
		_, err := st.ApplyTenants(t.Context(), batch, testOpts)
		if err == nil || !strings.Contains(err.Error(), "--max-txn-ops") {
			t.Errorf("apply of 140 keys = %v, want an error naming --max-txn-ops", err)
		}
		if all, err := st.Tenants(t.Context()); err != nil || len(all) != 0 {
			t.Errorf("after the refused apply: %d tenants, %v; want none", len(all), err)
		}
		if _, err := st.ApplyTenants(t.Context(), batch[:40], testOpts); err != nil {
			t.Errorf("apply of 80 keys: %v", err)
		}
	})
}
