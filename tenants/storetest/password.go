package storetest

import (
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// testSetPassword: the hash changes only from the expected one, and every
// session of the user in every tenant they belong to, and on the apex, is
// revoked in the same write; a tenant they do not belong to gets no
// revocation.
func testSetPassword(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"), simple("initech"))
	acme, globex, initech := mustTenant(t, st, "acme"), mustTenant(t, st, "globex"), mustTenant(t, st, "initech")
	for _, id := range []string{"acme", "globex"} {
		if _, err := st.AddMember(ctx(t), id, tenants.NewMember{Email: "alice@example.com", PasswordHash: "hash-1"}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := st.UserByEmail(ctx(t), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rev := tenants.Revocation{NotBefore: now, Expires: now.Add(time.Hour)}

	err = st.SetPassword(ctx(t), u.ID, "not-the-hash", "hash-2", rev)
	wantErrIs(t, err, tenants.ErrConflict, "SetPassword from a stale hash")
	if got, _ := st.UserByEmail(ctx(t), "alice@example.com"); got.PasswordHash != "hash-1" {
		t.Fatalf("hash after a refused SetPassword = %q", got.PasswordHash)
	}
	if mustSnapshot(t, st).Revoked(acme.InternalID, u.ID, "", now.Add(-time.Second)) {
		t.Fatal("a refused SetPassword revoked sessions")
	}

	if err := st.SetPassword(ctx(t), u.ID, "hash-1", "hash-2", rev); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if got, _ := st.UserByEmail(ctx(t), "alice@example.com"); got.PasswordHash != "hash-2" {
		t.Fatalf("hash after SetPassword = %q, want hash-2", got.PasswordHash)
	}
	snap := mustSnapshot(t, st)
	for _, tn := range []tenants.Tenant{acme, globex} {
		if !snap.Revoked(tn.InternalID, u.ID, "", now.Add(-time.Second)) {
			t.Errorf("session in %s issued before the change not revoked", tn.ID)
		}
		if snap.Revoked(tn.InternalID, u.ID, "", now.Add(time.Second)) {
			t.Errorf("session in %s issued after the change revoked", tn.ID)
		}
	}
	if snap.Revoked(initech.InternalID, u.ID, "", now.Add(-time.Second)) {
		t.Error("a tenant the user is not a member of got a revocation")
	}
	if !snap.Revoked("", u.ID, "global-sid", now.Add(-time.Second)) {
		t.Error("a global session on the apex issued before the change not revoked")
	}
	if snap.Revoked("", u.ID, "global-sid", now.Add(time.Second)) {
		t.Error("a global session on the apex issued after the change revoked")
	}
	// The old hash no longer works as the expected one.
	err = st.SetPassword(ctx(t), u.ID, "hash-1", "hash-3", rev)
	wantErrIs(t, err, tenants.ErrConflict, "SetPassword replayed with the old hash")
	err = st.SetPassword(ctx(t), "no-such-user", "", "hash-3", rev)
	wantErrIs(t, err, tenants.ErrNotFound, "SetPassword of an unknown user")
}
