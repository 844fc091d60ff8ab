package fleet_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
)

// schema2Fixture is a bbolt database written by tenantgate at commit
// 49e6b0e (schema 2; its README.md says how), whose records are what that
// release wrote to etcd as well (one encoding, two backends).
var schema2Fixture = filepath.Join("..", "..", "tenants", "boltstore", "testdata", "49e6b0e", "tenantgate.db")

// fixtureRecords returns the records of a private copy of the schema-2
// fixture, after Open (bbolt's migration) when migrated.
func fixtureRecords(t *testing.T, migrated bool) map[string]string {
	t.Helper()
	b, err := os.ReadFile(schema2Fixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tenantgate.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if migrated {
		st, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return boltRecords(t, path)
}

// putRecords writes records (named as boltRecords names them) under
// prefix p, as the release that wrote them would have.
func putRecords(t *testing.T, cli *clientv3.Client, p string, recs map[string]string) {
	t.Helper()
	for k, v := range recs {
		if _, err := cli.Put(t.Context(), p+k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEtcdMigratesSchema2: an etcd store written by the last release of
// schema 2, whose saml methods state no nameIDFormat, opens as schema 4
// with every record exactly as bbolt's migration of the same records
// makes it (the saml methods stating unspecified, the format they had, so
// the AuthnRequest keeps asking for none); a store needing more than one
// transaction, and two replicas opening one store at once, migrate too.
func TestEtcdMigratesSchema2(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	cli := c.Client()
	old, want := fixtureRecords(t, false), fixtureRecords(t, true)
	if old["schema"] != `{"v":2}` || want["schema"] != `{"v":4}` {
		t.Fatalf("fixture schema %s, migrated by bbolt %s", old["schema"], want["schema"])
	}
	for _, id := range []string{"acme", "globex"} {
		if strings.Contains(old["tenants/"+id], "nameIDFormat") || !strings.Contains(want["tenants/"+id], `"nameIDFormat":"unspecified"`) {
			t.Fatalf("fixture tenant %s: %s, migrated by bbolt: %s", id, old["tenants/"+id], want["tenants/"+id])
		}
	}

	t.Run("as bbolt migrates", func(t *testing.T) {
		p := prefix(t)
		putRecords(t, cli, p, old)
		st := o.open(t, p)
		sameRecords(t, "etcd store after the migration", want, etcdRecords(t, cli, p))
		acme, err := st.Tenant(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		if cfg := string(acme.Methods[1].Config); !strings.Contains(cfg, `"nameIDFormat":"unspecified"`) {
			t.Errorf("acme's saml method after the migration: %s", cfg)
		}
		// A second open finds schema 4 and writes nothing.
		before, err := cli.Get(t.Context(), p, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		o.open(t, p)
		after, err := cli.Get(t.Context(), p, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if after.Header.Revision != before.Header.Revision {
			t.Errorf("a second open wrote: revision %d, was %d", after.Header.Revision, before.Header.Revision)
		}
	})

	t.Run("more than one transaction", func(t *testing.T) {
		p := prefix(t)
		recs := map[string]string{"schema": `{"v":2}`}
		var acme map[string]any
		if err := json.Unmarshal([]byte(old["tenants/acme"]), &acme); err != nil {
			t.Fatal(err)
		}
		const n = 230 // over two of etcd's default 128-operation transactions
		for i := range n {
			acme["id"], acme["internalID"], acme["emailDomains"] = fmt.Sprintf("t%03d", i), fmt.Sprintf("internal%03d", i), nil
			b, err := json.Marshal(acme)
			if err != nil {
				t.Fatal(err)
			}
			recs[fmt.Sprintf("tenants/t%03d", i)] = string(b)
		}
		putRecords(t, cli, p, recs)
		st := o.open(t, p)
		got := etcdRecords(t, cli, p)
		if got["schema"] != `{"v":4}` {
			t.Errorf("schema after the migration: %s", got["schema"])
		}
		ts, err := st.Tenants(t.Context())
		if err != nil || len(ts) != n {
			t.Fatalf("%d tenants, %v; want %d", len(ts), err, n)
		}
		for _, tn := range ts {
			if cfg := string(tn.Methods[1].Config); !strings.Contains(cfg, `"nameIDFormat":"unspecified"`) {
				t.Errorf("%s's saml method after the migration: %s", tn.ID, cfg)
			}
		}
	})

	t.Run("two replicas at once", func(t *testing.T) {
		p := prefix(t)
		putRecords(t, cli, p, old)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				opts := o.opts
				opts.Prefix = p
				st, err := etcdstore.Open(opts)
				if err == nil {
					err = st.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		sameRecords(t, "etcd store after two migrations", want, etcdRecords(t, cli, p))
	})
}
