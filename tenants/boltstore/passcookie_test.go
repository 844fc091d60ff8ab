package boltstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestPassSessionCookieRecordCompatible: passSessionCookie was added to
// version-1 tenant records. A tenant without it is written exactly as
// before (no key, so an older binary reads the same record); true survives
// a reopen; a record written before the field existed reads as false, the
// safe default (the app never sees the session cookie).
func TestPassSessionCookieRecordCompatible(t *testing.T) {
	st, path := openTemp(t)
	_, err := st.ApplyTenants(t.Context(), []tenants.Tenant{
		{ID: "acme", Methods: []tenants.Method{{Type: tenants.MethodPassword}}, PassSessionCookie: true},
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
	if got, err := again.Tenant(t.Context(), "acme"); err != nil || !got.PassSessionCookie {
		t.Fatalf("passSessionCookie after reopen = %v, %v; want true", got.PassSessionCookie, err)
	}
	if got, err := again.Tenant(t.Context(), "plain"); err != nil || got.PassSessionCookie {
		t.Fatalf("plain tenant's passSessionCookie = %v, %v; want false", got.PassSessionCookie, err)
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
		if plain := b.Get([]byte("plain")); bytes.Contains(plain, []byte("passSessionCookie")) {
			t.Errorf("a tenant without passSessionCookie is stored with the key: %s", plain)
		}
		// Rewrite acme's record as a binary from before the field wrote it.
		var rec map[string]any
		if err := json.Unmarshal(b.Get([]byte("acme")), &rec); err != nil {
			return err
		}
		if rec["passSessionCookie"] != true {
			t.Errorf("acme's record has no passSessionCookie: %v", rec)
		}
		delete(rec, "passSessionCookie")
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
		t.Fatalf("open a database whose record predates passSessionCookie: %v", err)
	}
	t.Cleanup(func() { _ = old.Close() })
	if got, err := old.Tenant(t.Context(), "acme"); err != nil || got.PassSessionCookie {
		t.Errorf("record without passSessionCookie read as %v, %v; want false", got.PassSessionCookie, err)
	}
}
