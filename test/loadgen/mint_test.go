package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// newBenchDB writes the bench tenant and one member into a fresh database,
// the way `tenantgate tenants apply` and `users add` do, and closes it.
func newBenchDB(t *testing.T) (db, key string) {
	t.Helper()
	dir := t.TempDir()
	db, key = filepath.Join(dir, "tg.db"), filepath.Join(dir, "tg.key")
	sealer, err := seal.LoadOrCreateMasterKey(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	ts := []tenants.Tenant{{
		ID: "acme", Status: tenants.StatusActive,
		Methods: []tenants.Method{{Type: tenants.MethodPassword}},
		Roles:   map[string]tenants.Role{"member": {Permissions: []string{"docs:read"}}},
	}}
	_, err = st.ApplyTenants(ctx, ts, tenants.ApplyOptions{NewKey: func(id string) (tenants.SigningKey, error) {
		return session.NewSigningKey(sealer, id, time.Now())
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddMember(ctx, "acme", tenants.NewMember{Email: "alice@acme.bench.test", Roles: []string{"member"}, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}); err != nil {
		t.Fatal(err)
	}
	return db, key
}

func TestMint(t *testing.T) {
	db, key := newBenchDB(t)
	out := t.TempDir()
	results := filepath.Join(out, "results.jsonl")
	var stdout bytes.Buffer
	err := cmdMint(context.Background(), []string{"-db", db, "-master-key-file", key, "-tenant", "acme",
		"-email", "alice@acme.bench.test", "-n", "50", "-verify-iterations", "10", "-out", out, "-results", results}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	session1, err := readTokens(filepath.Join(out, "session.tok"), 10)
	if err != nil || len(session1) != 1 {
		t.Fatalf("session.tok: %d tokens, %v; want 1", len(session1), err)
	}
	fresh, err := readTokens(filepath.Join(out, "fresh.tok"), 100)
	if err != nil || len(fresh) != 50 {
		t.Fatalf("fresh.tok: %d tokens, %v; want 50", len(fresh), err)
	}
	seen := map[string]bool{session1[0]: true}
	for _, tok := range fresh {
		if seen[tok] {
			t.Fatal("a token was minted twice")
		}
		seen[tok] = true
	}
	if fi, err := os.Stat(filepath.Join(out, "fresh.tok")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("fresh.tok mode %v (%v), want 0600: tokens are secrets", fi.Mode().Perm(), err)
	}
	if strings.Contains(stdout.String(), fresh[0]) {
		t.Error("mint printed a token")
	}

	// The tokens are the member's, and the server (opening the database
	// after mint closed it) accepts them.
	st, err := boltstore.Open(db, boltstore.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("database still locked after mint: %v", err)
	}
	defer st.Close()
	snap, err := st.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByEmail(context.Background(), "alice@acme.bench.test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := session.NewVerifier().VerifyFor(snap, snap.BySlug("acme"), fresh[7])
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != u.ID || c.Tenant != "acme" || strings.Join(c.Roles, ",") != "member" || c.Method != session.MethodPassword {
		t.Errorf("claims %+v, want subject %s in acme with role member by password", c, u.ID)
	}

	s, err := readResults(results)
	if err != nil {
		t.Fatal(err)
	}
	if v := s.verify; v == nil || v.Alg != session.AlgEdDSA || v.SignatureUs <= 0 || v.VerifierUs <= 0 || v.CachedUs <= 0 || v.Iterations != 10 {
		t.Errorf("verification cost %+v, want positive EdDSA figures over 10 iterations", s.verify)
	}
}

func TestMintRefuses(t *testing.T) {
	db, key := newBenchDB(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown tenant", []string{"-tenant", "globex", "-email", "alice@acme.bench.test"}, `tenant "globex" not found`},
		{"unknown user", []string{"-email", "bob@acme.bench.test"}, "user bob@acme.bench.test"},
		{"missing email", nil, "need -db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-db", db, "-master-key-file", key, "-out", t.TempDir(), "-n", "1"}, tc.args...)
			err := cmdMint(context.Background(), args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
