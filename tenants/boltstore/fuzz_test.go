package boltstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// FuzzOpen feeds arbitrary bytes to Open as a database file. Whatever the
// file holds, Open and the reads after it must return a result or an error
// wrapping ErrCorrupt, never crash. The committed corpus is in
// testdata/fuzz/FuzzOpen; a valid populated database is added as a seed at
// run time so the fuzzer mutates real pages.
func FuzzOpen(f *testing.F) {
	_, valid := validDB(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := Open(path, Options{Timeout: 100 * time.Millisecond})
		if err != nil {
			if !errors.Is(err, tenants.ErrCorrupt) {
				t.Fatalf("Open = %v, want nil or ErrCorrupt", err)
			}
			return
		}
		defer st.Close()
		ctx := t.Context()
		if _, err := st.Snapshot(ctx); err != nil && !errors.Is(err, tenants.ErrCorrupt) {
			t.Fatalf("Snapshot = %v", err)
		}
		if _, err := st.Members(ctx, "acme"); err != nil && !errors.Is(err, tenants.ErrCorrupt) && !errors.Is(err, tenants.ErrNotFound) {
			t.Fatalf("Members = %v", err)
		}
		if _, err := st.AddMember(ctx, "acme", tenants.NewMember{Email: "new@acme.example", PasswordHash: "h"}); err != nil &&
			!errors.Is(err, tenants.ErrCorrupt) && !errors.Is(err, tenants.ErrNotFound) {
			t.Fatalf("AddMember = %v", err)
		}
	})
}
