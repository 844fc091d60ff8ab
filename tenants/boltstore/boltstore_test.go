package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
	"github.com/tenantgate/tenantgate/tenants/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenantgate.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenants.Store {
		st, _ := openTemp(t)
		return st
	})
	storetest.RunDurable(t, func(t *testing.T) (tenants.Store, func() tenants.Store) {
		st, path := openTemp(t)
		return st, func() tenants.Store {
			again, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { _ = again.Close() })
			return again
		}
	})
}

// TestAuditConformance runs the audit trail's conformance suite, reaching
// the records through the bbolt handle of the store itself.
func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) (tenants.Store, storetest.Tamper) {
		st, _ := openTemp(t)
		return st, boltTamper{st}
	})
}

// boltTamper writes a bucket behind the store's back.
type boltTamper struct{ s *Store }

func (b boltTamper) Raw(t *testing.T, ns, key string) []byte {
	t.Helper()
	var v []byte
	if err := b.s.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket([]byte(ns)).Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func (b boltTamper) SetRaw(t *testing.T, ns, key string, value []byte) {
	t.Helper()
	if err := b.s.db.Update(func(tx *bolt.Tx) error {
		if value == nil {
			return tx.Bucket([]byte(ns)).Delete([]byte(key))
		}
		return tx.Bucket([]byte(ns)).Put([]byte(key), value)
	}); err != nil {
		t.Fatal(err)
	}
}

var testOpts = tenants.ApplyOptions{
	NewKey: func(id string) (tenants.SigningKey, error) {
		return tenants.SigningKey{KID: "k-" + id, Alg: "EdDSA", Public: []byte("pub"), SealedPrivate: []byte("sealed-private")}, nil
	},
	SealMethod: func(m tenants.Method, prev *tenants.Method, id string) (tenants.Method, error) {
		// A reversible toy "seal" of the config's clientSecret, so a
		// plaintext leak would be visible as the plaintext itself, not its
		// sealed form.
		if len(m.Config) == 0 {
			return m, nil
		}
		var cfg map[string]any
		if err := json.Unmarshal(m.Config, &cfg); err != nil {
			return tenants.Method{}, err
		}
		if p, ok := cfg["clientSecret"].(string); ok {
			out := []byte("sealed:")
			for _, c := range []byte(p) {
				out = append(out, c^0x5a)
			}
			m.Sealed = out
			delete(cfg, "clientSecret")
		}
		var err error
		m.Config, err = json.Marshal(cfg)
		return m, err
	},
}

// populate writes one of everything the store keeps.
func populate(t testing.TB, st *Store) {
	t.Helper()
	ctx := t.Context()
	_, err := st.ApplyTenants(ctx, []tenants.Tenant{
		{ID: "acme", Domains: []string{"login.acme.example"}, EmailDomains: []string{"acme.example"},
			Methods: []tenants.Method{{Type: "oidc", Config: json.RawMessage(`{"issuer":"https://idp.example","clientID":"c","clientSecret":"plaintext-client-secret"}`)}}},
		{ID: "globex", Domains: []string{"globex.example"}},
	}, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddMember(ctx, "acme", tenants.NewMember{Email: "ann@acme.example", Roles: []string{"admin"}, PasswordHash: "$argon2id$fake"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddMember(ctx, "globex", tenants.NewMember{Email: "bob@globex.example", PasswordHash: "$argon2id$fake"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(ctx, tenants.Revocation{Key: tenants.SessionRevocationKey("sid"), NotBefore: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// validDB makes a closed, populated database file and returns its path and
// bytes.
func validDB(t testing.TB) (string, []byte) {
	t.Helper()
	st, path := openTemp(t)
	populate(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, raw
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode = %v, want 0600", perm)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path, _ := validDB(t)
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	ts, err := st.Tenants(t.Context())
	if err != nil || len(ts) != 2 {
		t.Fatalf("Tenants after reopen = %v, %v", ts, err)
	}
	ms, err := st.Members(t.Context(), "acme")
	if err != nil || len(ms) != 1 || ms[0].User.Email != "ann@acme.example" {
		t.Fatalf("Members after reopen = %v, %v", ms, err)
	}
	if !mustSnap(t, st).Revoked("", "", "sid", time.Now()) {
		t.Error("revocation lost across reopen")
	}
}

func mustSnap(t *testing.T, st *Store) *tenants.Snapshot {
	t.Helper()
	s, err := st.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNoSyncOff(t *testing.T) {
	st, _ := openTemp(t)
	if st.db.NoSync {
		t.Fatal("NoSync is set: a committed write could be lost on power failure")
	}
}

func TestPlaintextSecretNeverOnDisk(t *testing.T) {
	_, raw := validDB(t)
	if bytes.Contains(raw, []byte("plaintext-client-secret")) {
		t.Fatal("the plaintext client secret is in the database file")
	}
	if !bytes.Contains(raw, []byte(`"v":1`)) {
		t.Error("records are not versioned")
	}
}

func TestSecondOpenerFailsFast(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	_, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, tenants.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Open took %v", d)
	}
	for _, want := range []string{path, "locked by another process", "tenantgate serve"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDefaultTimeoutIsFinite(t *testing.T) {
	t.Parallel()
	_, path := openTemp(t)
	start := time.Now()
	_, err := Open(path, Options{})
	if !errors.Is(err, tenants.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Open with default options took %v", d)
	}
}

// openCorrupt writes data to a fresh file and expects Open to refuse it
// with ErrCorrupt, without crashing and without holding the file.
func openCorrupt(t *testing.T, data []byte) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		_ = st.Close()
		return nil
	}
	if errors.Is(err, tenants.ErrLocked) {
		t.Fatalf("a refused file stayed locked: %v", err)
	}
	// The lock was released: a later opener is not told the file is locked.
	if _, err2 := Open(path, Options{Timeout: 100 * time.Millisecond}); errors.Is(err2, tenants.ErrLocked) {
		t.Fatalf("after a refused open the file is still locked: %v", err2)
	}
	return err
}

// usedSize is how much of a valid file bbolt's meta page says is in use;
// the file may be longer (bbolt grows it in steps).
func usedSize(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return int(n)
}

func TestOpenRefusesCorruptFiles(t *testing.T) {
	path, valid := validDB(t)
	used := usedSize(t, path)
	pageSize := os.Getpagesize()
	flip := func(off int, n int) []byte {
		b := bytes.Clone(valid)
		for i := off; i < off+n && i < len(b); i++ {
			b[i] ^= 0xff
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", bytes.Repeat([]byte("not a database "), 1000)},
		{"short garbage", []byte("x")},
		{"truncated to one page", valid[:pageSize]},
		{"truncated to two pages", valid[:2*pageSize]},
		{"truncated by one page", valid[:used-pageSize]},
		{"truncated mid-page", valid[:used-pageSize/2]},
		{"both meta pages flipped", flip(0, 2*pageSize)},
		{"data pages zeroed", append(bytes.Clone(valid[:2*pageSize]), make([]byte, len(valid)-2*pageSize)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := openCorrupt(t, tc.data)
			if !errors.Is(err, tenants.ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("error %q does not say the database is corrupt", err)
			}
		})
	}
}

// TestOpenFlippedBytes damages a valid file all over: every open either
// succeeds (the byte was unused) or fails with ErrCorrupt, and none crashes.
func TestOpenFlippedBytes(t *testing.T) {
	t.Parallel()
	_, valid := validDB(t)
	var refused int
	for off := 0; off < len(valid); off += 127 {
		for _, mask := range []byte{[]byte{0x01, 0x55, 0xff}[off%3]} {
			b := bytes.Clone(valid)
			b[off] ^= mask
			err := openCorrupt(t, b)
			if err != nil && !errors.Is(err, tenants.ErrCorrupt) {
				t.Fatalf("flip %#x at %d: Open = %v, want nil or ErrCorrupt", mask, off, err)
			}
			if err != nil {
				refused++
			}
		}
	}
	if refused == 0 {
		t.Fatal("no damaged file was refused")
	}
}

// TestOpenDamagedRecord changes each byte at the start of a stored tenant
// record; every change must be refused at open, never served.
func TestOpenDamagedRecord(t *testing.T) {
	t.Parallel()
	_, valid := validDB(t)
	// bbolt copies on write, so stale copies of the record sit in free
	// pages; damage every copy so the live one is surely hit.
	var at []int
	for i := 0; ; {
		j := bytes.Index(valid[i:], []byte(`{"v":2,"id":"acme"`))
		if j < 0 {
			break
		}
		at = append(at, i+j)
		i += j + 1
	}
	if len(at) == 0 {
		t.Fatal("tenant record not found in file")
	}
	for off := range 40 {
		for _, repl := range []byte{"}x0"[off%3]} {
			b := bytes.Clone(valid)
			for _, i := range at {
				b[i+off] = repl
			}
			if bytes.Equal(b, valid) {
				continue
			}
			if err := openCorrupt(t, b); !errors.Is(err, tenants.ErrCorrupt) {
				t.Errorf("record byte %d set to %q: Open = %v, want ErrCorrupt", off, repl, err)
			}
		}
	}
}

func TestOpenRefusesUnknownRecordVersion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bucket []byte
		key    string
		value  string
	}{
		{"newer tenant record", bucketTenants, "acme", `{"v":3,"id":"acme","internalID":"x"}`},
		{"older tenant record", bucketTenants, "acme", `{"v":1,"id":"acme","internalID":"x"}`},
		{"record without version", bucketTenants, "acme", `{"id":"acme","internalID":"x"}`},
		{"newer schema", bucketMeta, "schema", `{"v":5}`},
		{"newer user record", bucketUsers, "", `{"v":7}`},
		{"index points nowhere", bucketDomains, "stray.example", `nobody`},
		{"membership of a missing user", bucketMemberships, "x/y", `{"v":1,"roles":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := validDB(t)
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(tc.bucket)
				key := []byte(tc.key)
				if len(key) == 0 {
					key, _ = b.Cursor().First()
					key = bytes.Clone(key)
				}
				return b.Put(key, []byte(tc.value))
			})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = Open(path, Options{})
			if !errors.Is(err, tenants.ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestOpenRefusesForeignBoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("something")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, tenants.ErrCorrupt) {
		t.Fatalf("Open of another program's bbolt file = %v, want ErrCorrupt", err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), Options{})
	if err == nil || errors.Is(err, tenants.ErrCorrupt) || errors.Is(err, tenants.ErrLocked) {
		t.Fatalf("Open in a missing directory = %v, want a plain error", err)
	}
}

func TestExpiredRevocationsDropped(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "db")
	st, err := Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	for _, r := range []tenants.Revocation{
		{Key: "sid:a", Expires: now.Add(time.Minute)},
		{Key: "sid:b", Expires: now.Add(time.Hour)},
		{Key: "sid:c", Expires: now.Add(time.Minute + 300*time.Millisecond)},
	} {
		if err := st.Revoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Replacing moves the expiry; the old index entry must not linger.
	if err := st.Revoke(ctx, tenants.Revocation{Key: "sid:a", Expires: now.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(90 * time.Second)
	if err := st.Revoke(ctx, tenants.Revocation{Key: "sid:d", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	var expiryEntries int
	err = st.db.View(func(tx *bolt.Tx) error {
		_ = tx.Bucket(bucketRevocations).ForEach(func(k, _ []byte) error { stored[string(k)] = true; return nil })
		expiryEntries = tx.Bucket(bucketRevocationExpiry).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored["sid:c"] || !stored["sid:a"] || !stored["sid:b"] || !stored["sid:d"] || len(stored) != 3 {
		t.Errorf("stored revocations = %v, want a, b, d", stored)
	}
	if expiryEntries != 3 {
		t.Errorf("expiry index has %d entries, want 3", expiryEntries)
	}
	s := mustSnap(t, st)
	if s.Revoked("", "", "c", now) || !s.Revoked("", "", "a", now) {
		t.Error("snapshot disagrees with stored revocations")
	}
	// Revocations needing expiry.
	if err := st.Revoke(ctx, tenants.Revocation{Key: "sid:x"}); err == nil {
		t.Error("Revoke without Expires succeeded")
	}
	// The database is still consistent for a reopen.
	st.Close()
	st2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	st2.Close()
}

func TestInternalIDsFromRand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st, err := Open(path, Options{Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 16))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ApplyTenants(t.Context(), []tenants.Tenant{{ID: "acme"}}, testOpts); err != nil {
		t.Fatal(err)
	}
	got, err := st.Tenant(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("ab", 16); got.InternalID != want {
		t.Errorf("InternalID = %q, want %q (16 bytes from Options.Rand, hex)", got.InternalID, want)
	}
	// An exhausted random source is an error, not a weak id.
	_, err = st.ApplyTenants(t.Context(), []tenants.Tenant{{ID: "globex"}}, testOpts)
	if err == nil {
		t.Fatal("ApplyTenants with an exhausted random source succeeded")
	}
}

func TestWatchClosedByClose(t *testing.T) {
	st, _ := openTemp(t)
	ch := st.Watch(context.Background())
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("received a value, want the channel closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch channel still open after Close")
	}
}

func TestCallbackPanicIsNotCorruption(t *testing.T) {
	st, _ := openTemp(t)
	opts := testOpts
	opts.NewKey = func(string) (tenants.SigningKey, error) { panic("caller bug") }
	defer func() {
		if r := recover(); r != "caller bug" {
			t.Fatalf("recovered %v, want the caller's own panic", r)
		}
		// The failed write left nothing behind and the store still works.
		if ts, err := st.Tenants(context.Background()); err != nil || len(ts) != 0 {
			t.Fatalf("after a panicking callback: %v, %v", ts, err)
		}
	}()
	_, _ = st.ApplyTenants(t.Context(), []tenants.Tenant{{ID: "acme"}}, opts)
}

// TestOpenRandomDamage applies random flips, byte changes and truncations
// (a fixed seed, so failures reproduce): Open must answer promptly with nil
// or ErrCorrupt, and must not leave the file locked.
func TestOpenRandomDamage(t *testing.T) {
	t.Parallel()
	_, valid := validDB(t)
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 300 {
		b := bytes.Clone(valid)
		for range 1 + r.IntN(4) {
			switch r.IntN(3) {
			case 0:
				b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
			case 1:
				b[r.IntN(len(b))] = byte(r.IntN(256))
			case 2:
				b = b[:1+r.IntN(len(b))]
			}
		}
		if err := openCorrupt(t, b); err != nil && !errors.Is(err, tenants.ErrCorrupt) {
			t.Fatalf("damage #%d: Open = %v, want nil or ErrCorrupt", i, err)
		}
	}
}

// TestOpenUpgradesDatabaseWithoutSSOBuckets: a file written before the SSO
// buckets existed opens, keeps its data, and gains the buckets.
func TestOpenUpgradesDatabaseWithoutSSOBuckets(t *testing.T) {
	st, path := openTemp(t)
	populate(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range addedBuckets() {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open an older database: %v", err)
	}
	defer again.Close()
	acme, err := again.Tenant(t.Context(), "acme")
	if err != nil {
		t.Fatalf("data lost: %v", err)
	}
	if err := again.UseAssertionID(t.Context(), acme.InternalID, "_id", time.Now().Add(time.Minute)); err != nil {
		t.Errorf("UseAssertionID after upgrade: %v", err)
	}
}

// seedRevocations writes n live session revocations in one transaction,
// straight to the file: st must not have read its snapshot yet.
func seedRevocations(t testing.TB, st *Store, n int) {
	t.Helper()
	exp := time.Now().Add(time.Hour)
	err := st.db.Update(func(tx *bolt.Tx) error {
		revs, expiry := tx.Bucket(bucketRevocations), tx.Bucket(bucketRevocationExpiry)
		for i := range n {
			key := tenants.SessionRevocationKey(fmt.Sprint("seeded-", i))
			v, err := record.Encode(record.Revocation{V: record.Version, Key: key, NotBefore: exp.Add(-time.Hour), Expires: exp})
			if err != nil {
				return err
			}
			if err := revs.Put([]byte(key), v); err != nil {
				return err
			}
			if err := expiry.Put(expiryKey(exp, key), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSignOutWithManyRevocations: a sign-out (one Revoke, then the Snapshot
// the sign-in handler publishes) with 20,000 revocations stored does not
// read them all again. Counted in allocations, which do not depend on how
// fast the machine is: reading 20,000 records costs well over 20,000.
func TestSignOutWithManyRevocations(t *testing.T) {
	st, _ := openTemp(t)
	populate(t, st)
	seedRevocations(t, st, 20_000)
	before := mustSnap(t, st)
	if !before.Revoked("", "", "seeded-19999", time.Now()) {
		t.Fatal("seeded revocations are not in the snapshot")
	}
	i := 0
	allocs := testing.AllocsPerRun(5, func() {
		i++
		r := tenants.Revocation{Key: tenants.SessionRevocationKey(fmt.Sprint("signed-out-", i)), NotBefore: time.Now(), Expires: time.Now().Add(time.Hour)}
		if err := st.Revoke(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		mustSnap(t, st)
	})
	if allocs > 2000 {
		t.Errorf("a sign-out with 20,000 revocations stored made %v allocations, want a few hundred (no full read)", allocs)
	}
	after := mustSnap(t, st)
	if !after.Revoked("", "", "signed-out-1", time.Now()) || !after.Revoked("", "", "seeded-0", time.Now()) {
		t.Error("the snapshot after the sign-out lacks the new or an old revocation")
	}
	if before.Revoked("", "", "signed-out-1", time.Now()) {
		t.Error("the snapshot before the sign-out changed")
	}
}

// TestWritesDoNotReloadSnapshot: after the first Snapshot, no write reads
// everything again; each applies its own change.
func TestWritesDoNotReloadSnapshot(t *testing.T) {
	st, _ := openTemp(t)
	populate(t, st)
	mustSnap(t, st)
	ctx := t.Context()
	acme := mustSnap(t, st).BySlug("acme").InternalID
	now := time.Now()
	writes := []struct {
		name string
		do   func() error
	}{
		{"Revoke", func() error {
			return st.Revoke(ctx, tenants.Revocation{Key: tenants.SessionRevocationKey("x"), NotBefore: now, Expires: now.Add(time.Hour)})
		}},
		{"AddMember", func() error {
			_, err := st.AddMember(ctx, "acme", tenants.NewMember{Email: "cy@acme.example", Roles: []string{"member"}, PasswordHash: "h"})
			return err
		}},
		{"RemoveMember", func() error {
			return st.RemoveMember(ctx, "acme", "cy@acme.example", tenants.Revocation{NotBefore: now, Expires: now.Add(time.Hour)})
		}},
		{"UpsertExternalUser", func() error {
			_, err := st.UpsertExternalUser(ctx, acme, tenants.ExternalIdentity{Method: "oidc#0", Issuer: "i", Subject: "s"})
			return err
		}},
		{"UseAssertionID", func() error { return st.UseAssertionID(ctx, acme, "_a", now.Add(time.Hour)) }},
		{"ApplyTenants", func() error {
			_, err := st.ApplyTenants(ctx, []tenants.Tenant{{ID: "initech"}}, testOpts)
			return err
		}},
		{"DeleteTenant", func() error { return st.DeleteTenant(ctx, "initech") }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		mustSnap(t, st)
		st.writing.Lock()
		loads := st.loads
		st.writing.Unlock()
		if loads != 1 {
			t.Errorf("after %s: %d full reads, want only the first", w.name, loads)
		}
	}
}

// BenchmarkSignOut is one sign-out (Revoke, then Snapshot) with n
// revocations already stored.
func BenchmarkSignOut(b *testing.B) {
	for _, n := range []int{0, 20_000} {
		b.Run(fmt.Sprint(n, "_revocations"), func(b *testing.B) {
			st, _ := openTemp(b)
			populate(b, st)
			seedRevocations(b, st, n)
			if _, err := st.Snapshot(b.Context()); err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				r := tenants.Revocation{Key: tenants.SessionRevocationKey(fmt.Sprint("bench-", i)), NotBefore: time.Now(), Expires: time.Now().Add(time.Hour)}
				if err := st.Revoke(b.Context(), r); err != nil {
					b.Fatal(err)
				}
				if _, err := st.Snapshot(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestExpiredSessionsDropped: the record of a session goes, with its
// expiry index entry, at the first write after the session expires, so
// the file never outgrows the sessions alive; a database holding records
// reopens (the walk checks them).
func TestExpiredSessionsDropped(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "db")
	st, err := Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	evict := tenants.Revocation{NotBefore: now, Expires: now.Add(2 * time.Hour)}
	for _, s := range []struct {
		sid string
		ttl time.Duration
	}{{"short", time.Minute}, {"long", time.Hour}} {
		err := st.RecordSession(ctx, tenants.Session{TenantInternalID: "t1", UserID: "u1", SID: s.sid, Issued: now,
			Expires: now.Add(s.ttl), Device: "Firefox on Linux", Address: "192.0.2.1", Method: "password"}, evict)
		if err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Minute)
	// Any write prunes: here one of another kind altogether.
	if err := st.Revoke(ctx, tenants.Revocation{Key: "sid:x", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var expiryEntries int
	err = st.db.View(func(tx *bolt.Tx) error {
		_ = tx.Bucket(bucketSessions).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
		expiryEntries = tx.Bucket(bucketSessionExpiry).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "t1/u1/long" || expiryEntries != 1 {
		t.Errorf("stored sessions = %v with %d expiry entries, want t1/u1/long alone", keys, expiryEntries)
	}
	st.Close()
	st2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	st2.Close()
}
