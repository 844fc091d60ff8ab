package boltstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestBrandingRecordCompatible: branding was added to version-1 tenant
// records. A tenant without branding is written exactly as before (no
// "branding" key, so an older binary reads the same record); a record
// written before branding existed reads as the default look; branding
// survives a reopen.
func TestBrandingRecordCompatible(t *testing.T) {
	st, path := openTemp(t)
	brand := tenants.Branding{LogoURL: "https://cdn.acme.example/logo.png", AccentColor: "#0a66c2"}
	_, err := st.ApplyTenants(t.Context(), []tenants.Tenant{
		{ID: "acme", Methods: []tenants.Method{{Type: tenants.MethodPassword}}, Branding: brand},
		{ID: "plain", Methods: []tenants.Method{{Type: tenants.MethodPassword}}},
	}, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Tenant(t.Context(), "acme"); err != nil || got.Branding != brand {
		t.Fatalf("branding after reopen = %+v, %v; want %+v", got.Branding, err, brand)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if plain := b.Get([]byte("plain")); bytes.Contains(plain, []byte("branding")) {
			t.Errorf("a tenant without branding is stored with a branding key: %s", plain)
		}
		// Rewrite acme's record as a binary from before branding wrote it.
		var rec map[string]any
		if err := json.Unmarshal(b.Get([]byte("acme")), &rec); err != nil {
			return err
		}
		if rec["branding"] == nil {
			t.Errorf("acme's record has no branding: %v", rec)
		}
		delete(rec, "branding")
		old, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte("acme"), old)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	old, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a database whose record predates branding: %v", err)
	}
	t.Cleanup(func() { _ = old.Close() })
	got, err := old.Tenant(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.Branding != (tenants.Branding{}) || len(got.Methods) != 1 {
		t.Errorf("record without branding read as %+v", got)
	}
}
