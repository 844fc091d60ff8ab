package boltstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
)

// fixtureDir holds a database written by tenantgate at commit aab787b
// (schema 1; testdata/aab787b/README.md says how it was made), and
// fixtureDir2 one written at commit 49e6b0e (schema 2; its README.md).
const (
	fixtureDir  = "testdata/aab787b"
	fixtureDir2 = "testdata/49e6b0e"
)

// migratedSAML are the lines tenants get prints, after the migration to
// schema 3, beyond what the fixtures' releases printed: each saml method
// keyed by its NameID states the format it had, unspecified
// (record.UpgradeToSchema3). Keyed by fixture file: the line the new one
// follows, and the new line.
var migratedSAML = map[string][2]string{
	fixtureDir + "/acme.get.yaml":    {"        emailAttribute: mail\n", "        nameIDFormat: unspecified\n"},
	fixtureDir2 + "/acme.get.yaml":   {"        emailAttribute: mail\n", "        nameIDFormat: unspecified\n"},
	fixtureDir2 + "/globex.get.yaml": {"        idpMetadataURL: https://idp.globex.example/realms/globex/protocol/saml/descriptor\n", "        nameIDFormat: unspecified\n"},
}

// wantAfterMigration returns what tenants get prints after the migration
// for a tenant whose release printed the fixture file at path.
func wantAfterMigration(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	add, ok := migratedSAML[filepath.ToSlash(path)]
	if !ok {
		return b
	}
	if bytes.Count(b, []byte(add[0])) != 1 {
		t.Fatalf("%s: no single line %q to add %q after", path, add[0], add[1])
	}
	return bytes.Replace(b, []byte(add[0]), []byte(add[0]+add[1]), 1)
}

// copyFixtureDB copies the aab787b fixture database to a temporary
// directory (Open migrates it in place) and returns the copy's path.
func copyFixtureDB(t *testing.T) string {
	t.Helper()
	return copyFixtureDBFrom(t, fixtureDir)
}

// copyFixtureDBFrom copies the database of fixture directory dir.
func copyFixtureDBFrom(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tenantgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tenantgate.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawRecords returns every record of a bucket of a closed database file.
func rawRecords(t *testing.T, path string, bucket []byte) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil // added after the file was written: empty
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateSchema1Fixture: a database written by the release before
// method configurations became opaque (schema 1) opens: its tenant records
// are rewritten as version 2 and the schema as 3, tenants get prints every
// tenant exactly as that release did but for the saml method's
// nameIDFormat unspecified (the format it had: schema 1 goes straight to
// 3), the sealed client secrets keep their bytes, and nothing but the
// tenant records and the schema changes.
func TestMigrateSchema1Fixture(t *testing.T) {
	path := copyFixtureDB(t)
	beforeTenants := rawRecords(t, path, bucketTenants)
	before := map[string]map[string][]byte{}
	for _, b := range allBuckets() {
		if !bytes.Equal(b, bucketTenants) && !bytes.Equal(b, bucketMeta) {
			before[string(b)] = rawRecords(t, path, b)
		}
	}
	if meta := rawRecords(t, path, bucketMeta); string(meta["schema"]) != `{"v":1}` {
		t.Fatalf("fixture schema record %s, want version 1", meta["schema"])
	}

	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a schema-1 database: %v", err)
	}
	for _, tc := range []struct{ id, format, file string }{
		{"acme", "yaml", "acme.get.yaml"},
		{"globex", "yaml", "globex.get.yaml"},
		{"globex", "json", "globex.get.json"},
		{"initech", "yaml", "initech.get.yaml"},
	} {
		want := wantAfterMigration(t, fixtureDir+"/"+tc.file)
		tn, err := st.Tenant(t.Context(), tc.id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tenants.MarshalFile([]tenants.Tenant{tn}, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("tenants get %s -o %s after the migration:\n%s\nwant (as aab787b printed it, saml stating unspecified):\n%s", tc.id, tc.format, got, want)
		}
	}

	// Sealed client secrets keep their bytes: they open with the same key
	// under the same context.
	ts, err := st.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sealedBefore := map[string][][]byte{}
	for id, raw := range beforeTenants {
		var r tenantRecordV1
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Methods {
			sealedBefore[id] = append(sealedBefore[id], m.SealedClientSecret)
		}
	}
	secrets := 0
	for _, tn := range ts {
		for i, m := range tn.Methods {
			if !bytes.Equal(m.Sealed, sealedBefore[tn.ID][i]) {
				t.Errorf("%s methods[%d]: sealed bytes %q, were %q", tn.ID, i, m.Sealed, sealedBefore[tn.ID][i])
			}
			if bytes.Contains(m.Config, []byte("ecret")) {
				t.Errorf("%s methods[%d]: config holds a secret: %s", tn.ID, i, m.Config)
			}
			if len(m.Sealed) > 0 {
				secrets++
			}
		}
	}
	if secrets != 3 {
		t.Errorf("%d sealed client secrets after the migration, want the fixture's 3", secrets)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	for name, recs := range before {
		if after := rawRecords(t, path, []byte(name)); len(after) != len(recs) {
			t.Errorf("bucket %s: %d records, were %d", name, len(after), len(recs))
		} else {
			for k, v := range recs {
				if !bytes.Equal(after[k], v) {
					t.Errorf("bucket %s record %q changed in the migration", name, k)
				}
			}
		}
	}
	if meta := rawRecords(t, path, bucketMeta); string(meta["schema"]) != `{"v":4}` {
		t.Errorf("schema record after the migration: %s", meta["schema"])
	}
	for id, raw := range rawRecords(t, path, bucketTenants) {
		if !bytes.HasPrefix(raw, []byte(`{"v":2,`)) || bytes.Contains(raw, []byte("sealedClientSecret")) {
			t.Errorf("tenant record %s after the migration: %s", id, raw)
		}
	}

	// A second open finds nothing to migrate and writes nothing.
	migrated := rawRecords(t, path, bucketTenants)
	again, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen the migrated database: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	for k, v := range rawRecords(t, path, bucketTenants) {
		if !bytes.Equal(migrated[k], v) {
			t.Errorf("tenant %s rewritten by a second open", k)
		}
	}
}

// TestMigrateKeepsFieldsAddedWithinVersion1: the fields main added to
// version-1 tenant records after aab787b (passSessionCookie, mfa,
// crossOriginGuard, trustedOrigins, branding) come through the migration.
func TestMigrateKeepsFieldsAddedWithinVersion1(t *testing.T) {
	path := copyFixtureDB(t)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		var rec map[string]any
		if err := json.Unmarshal(b.Get([]byte("globex")), &rec); err != nil {
			return err
		}
		rec["passSessionCookie"] = true
		rec["mfa"] = "off"
		rec["crossOriginGuard"] = false
		rec["trustedOrigins"] = []string{"https://portal.globex.test"}
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte("globex"), raw)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g, err := st.Tenant(t.Context(), "globex")
	if err != nil {
		t.Fatal(err)
	}
	if !g.PassSessionCookie || g.MFA != "off" || g.GuardsCrossOrigin() || len(g.TrustedOrigins) != 1 || len(g.Methods) != 2 {
		t.Errorf("globex after the migration: %+v", g)
	}
	a, err := st.Tenant(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if a.Branding.AccentColor != "#0a7" || !a.GuardsCrossOrigin() {
		t.Errorf("acme after the migration: %+v", a)
	}
}

// TestMigrateSchema2Fixture: a database written by the last release of
// schema 2, whose saml methods state no nameIDFormat (they asked for no
// format and keyed accounts by any NameID), opens as schema 3 with both
// saml methods stating unspecified: the AuthnRequest keeps asking for no
// particular format, so an IdP that follows the request keeps sending the
// NameIDs the accounts are keyed by. Only the saml tenants' records and
// the schema change; a second open writes nothing.
func TestMigrateSchema2Fixture(t *testing.T) {
	path := copyFixtureDBFrom(t, fixtureDir2)
	if meta := rawRecords(t, path, bucketMeta); string(meta["schema"]) != `{"v":2}` {
		t.Fatalf("fixture schema record %s, want version 2", meta["schema"])
	}
	beforeTenants := rawRecords(t, path, bucketTenants)
	for id, raw := range beforeTenants {
		if bytes.Contains(raw, []byte("nameIDFormat")) {
			t.Fatalf("fixture tenant %s already states a nameIDFormat: %s", id, raw)
		}
	}
	before := map[string]map[string][]byte{}
	for _, b := range allBuckets() {
		if !bytes.Equal(b, bucketTenants) && !bytes.Equal(b, bucketMeta) {
			before[string(b)] = rawRecords(t, path, b)
		}
	}

	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a schema-2 database: %v", err)
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		want := wantAfterMigration(t, fixtureDir2+"/"+id+".get.yaml")
		tn, err := st.Tenant(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tenants.MarshalFile([]tenants.Tenant{tn}, "yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("tenants get %s after the migration:\n%s\nwant:\n%s", id, got, want)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	if meta := rawRecords(t, path, bucketMeta); string(meta["schema"]) != `{"v":4}` {
		t.Errorf("schema record after the migration: %s", meta["schema"])
	}
	after := rawRecords(t, path, bucketTenants)
	for _, tc := range []struct {
		id      string
		changed bool
	}{{"acme", true}, {"globex", true}, {"initech", false}} {
		want := beforeTenants[tc.id]
		if tc.changed {
			// The config gains the member where the saml package
			// encodes it, and nothing else of the record changes.
			if tc.id == "acme" {
				want = bytes.Replace(beforeTenants[tc.id], []byte(`"emailAttribute":"mail"`), []byte(`"emailAttribute":"mail","nameIDFormat":"unspecified"`), 1)
			} else {
				want = bytes.Replace(beforeTenants[tc.id], []byte(`descriptor"`), []byte(`descriptor","nameIDFormat":"unspecified"`), 1)
			}
			if bytes.Equal(want, beforeTenants[tc.id]) {
				t.Fatalf("tenant %s: the test's edit matched nothing", tc.id)
			}
		}
		if !bytes.Equal(after[tc.id], want) {
			t.Errorf("tenant record %s after the migration:\n%s\nwant:\n%s", tc.id, after[tc.id], want)
		}
	}
	for name, recs := range before {
		got := rawRecords(t, path, []byte(name))
		if len(got) != len(recs) {
			t.Errorf("bucket %s: %d records, were %d", name, len(got), len(recs))
		}
		for k, v := range recs {
			if !bytes.Equal(got[k], v) {
				t.Errorf("bucket %s record %q changed in the migration", name, k)
			}
		}
	}

	again, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen the migrated database: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	for k, v := range rawRecords(t, path, bucketTenants) {
		if !bytes.Equal(after[k], v) {
			t.Errorf("tenant %s rewritten by a second open", k)
		}
	}
}

// TestReadSchemaVersions: a database of schema 2 (the fixture), 3 or 4 opens,
// one of a newer or no version is refused as corrupt (schema 1 is
// TestMigrateSchema1Fixture's: its tenant records differ).
func TestReadSchemaVersions(t *testing.T) {
	for _, tc := range []struct {
		schema string
		ok     bool
	}{
		{`{"v":2}`, true}, {`{"v":3}`, true}, {`{"v":4}`, true},
		{`{"v":5}`, false}, {`{"v":0}`, false}, {`{}`, false},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			path := copyFixtureDBFrom(t, fixtureDir2)
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, []byte(tc.schema))
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			st, err := Open(path, Options{})
			if tc.ok {
				if err != nil {
					t.Fatalf("open a database of schema %s: %v", tc.schema, err)
				}
				st.Close()
				if meta := rawRecords(t, path, bucketMeta); string(meta["schema"]) != `{"v":4}` {
					t.Errorf("a database of schema %s opened as %s, want schema 4", tc.schema, meta["schema"])
				}
				return
			}
			if err == nil {
				st.Close()
				t.Fatalf("a database of schema %s opened", tc.schema)
			}
			if !errors.Is(err, tenants.ErrCorrupt) {
				t.Errorf("error %v, want tenants.ErrCorrupt", err)
			}
		})
	}
}
