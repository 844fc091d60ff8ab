package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// testPasskey makes a passkey with credential id id.
func testPasskey(id string, created time.Time) tenants.Passkey {
	return tenants.Passkey{ID: []byte(id), PublicKey: []byte("cose-" + id), AAGUID: make([]byte, 16),
		Transports: []string{"internal", "hybrid"}, BackupEligible: true, Name: "key " + id, Created: created}
}

func testPasskeys(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme").InternalID, mustTenant(t, st, "globex").InternalID
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@x.example", PasswordHash: "h"})
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "bob@x.example", PasswordHash: "h"})
	mustAddMember(t, st, "globex", tenants.NewMember{Email: "ann@x.example"})
	ann, bob := mustUser(t, st, "ann@x.example").ID, mustUser(t, st, "bob@x.example").ID

	if ps, err := st.Passkeys(ctx(t), acme, ann); err != nil || ps == nil || len(ps) != 0 {
		t.Fatalf("Passkeys before any = %v, %v; want an empty list", ps, err)
	}
	second, first := testPasskey("cred-2", created.Add(time.Minute)), testPasskey("cred-1", created)
	for _, p := range []tenants.Passkey{second, first} {
		if err := st.AddPasskey(ctx(t), acme, ann, p); err != nil {
			t.Fatalf("AddPasskey(%s): %v", p.ID, err)
		}
	}
	ps, err := st.Passkeys(ctx(t), acme, ann)
	if err != nil || len(ps) != 2 || string(ps[0].ID) != "cred-1" || string(ps[1].ID) != "cred-2" {
		t.Fatalf("Passkeys = %+v, %v; want cred-1 then cred-2", ps, err)
	}
	if got := ps[0]; !bytes.Equal(got.PublicKey, first.PublicKey) || got.Name != first.Name || !got.Created.Equal(created) ||
		len(got.Transports) != 2 || !got.BackupEligible || len(got.AAGUID) != 16 || !got.LastUsed.IsZero() {
		t.Errorf("stored passkey = %+v; want %+v", got, first)
	}
	ps[0].Name = "changed by the caller"
	if again, _ := st.Passkeys(ctx(t), acme, ann); again[0].Name != first.Name {
		t.Error("Passkeys returned a value that shares the store's")
	}

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name         string
			tenant, user string
			p            tenants.Passkey
			want         error
		}{
			{"same id, same user", acme, ann, testPasskey("cred-1", created), tenants.ErrConflict},
			{"same id, another member of the tenant", acme, bob, testPasskey("cred-1", created), tenants.ErrConflict},
			{"no membership", globex, bob, testPasskey("cred-9", created), tenants.ErrNotFound},
			{"unknown tenant", "nope", ann, testPasskey("cred-9", created), tenants.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantErrIs(t, st.AddPasskey(ctx(t), tc.tenant, tc.user, tc.p), tc.want, "AddPasskey")
			})
		}
		for _, p := range []tenants.Passkey{{PublicKey: []byte("k"), Name: "n"}, {ID: []byte("i"), Name: "n"},
			{ID: []byte("i"), PublicKey: []byte("k")}, {ID: make([]byte, tenants.MaxPasskeyIDLen+1), PublicKey: []byte("k"), Name: "n"}} {
			if err := st.AddPasskey(ctx(t), acme, bob, p); err == nil {
				t.Errorf("AddPasskey(%+v) stored an incomplete passkey", p)
			}
		}
	})

	t.Run("same credential id in another tenant is another passkey", func(t *testing.T) {
		if err := st.AddPasskey(ctx(t), globex, ann, testPasskey("cred-1", created)); err != nil {
			t.Fatalf("AddPasskey on globex: %v", err)
		}
		if err := st.RemovePasskey(ctx(t), globex, ann, []byte("cred-1")); err != nil {
			t.Fatalf("RemovePasskey on globex: %v", err)
		}
		if ps, _ := st.Passkeys(ctx(t), acme, ann); len(ps) != 2 {
			t.Errorf("removing globex's cred-1 left acme's ann with %d passkeys, want 2", len(ps))
		}
	})

	t.Run("cap per user", func(t *testing.T) {
		for i := range tenants.MaxPasskeysPerUser {
			if err := st.AddPasskey(ctx(t), acme, bob, testPasskey(fmt.Sprintf("bob-%02d", i), created)); err != nil {
				t.Fatalf("AddPasskey #%d: %v", i, err)
			}
		}
		wantErrIs(t, st.AddPasskey(ctx(t), acme, bob, testPasskey("bob-extra", created)), tenants.ErrTooManyPasskeys, "AddPasskey past the cap")
		if err := st.AddPasskey(ctx(t), acme, ann, testPasskey("ann-3", created)); err != nil {
			t.Errorf("bob's cap refused ann's passkey: %v", err)
		}
	})

	t.Run("update", func(t *testing.T) {
		used := created.Add(time.Hour)
		err := st.UpdatePasskey(ctx(t), acme, ann, []byte("cred-1"), func(p *tenants.Passkey) error {
			p.SignCount, p.LastUsed, p.Name, p.ID = 7, used, "laptop", []byte("hijack")
			return nil
		})
		if err != nil {
			t.Fatalf("UpdatePasskey: %v", err)
		}
		if p := passkeyByID(t, st, acme, ann, "cred-1"); p.SignCount != 7 || p.Name != "laptop" || !p.LastUsed.Equal(used) {
			t.Errorf("after UpdatePasskey: %+v", p)
		}
		if p := passkeyByID(t, st, acme, ann, "hijack"); p.ID != nil {
			t.Error("UpdatePasskey changed the credential id")
		}
		refuse := errors.New("count did not grow")
		err = st.UpdatePasskey(ctx(t), acme, ann, []byte("cred-1"), func(p *tenants.Passkey) error {
			if p.SignCount != 7 {
				t.Errorf("fn saw sign count %d, want the stored 7", p.SignCount)
			}
			p.SignCount = 99
			return refuse
		})
		if !errors.Is(err, refuse) {
			t.Errorf("UpdatePasskey returned %v, want fn's error", err)
		}
		if p := passkeyByID(t, st, acme, ann, "cred-1"); p.SignCount != 7 {
			t.Errorf("a refused update wrote sign count %d", p.SignCount)
		}
		if err := st.UpdatePasskey(ctx(t), acme, ann, []byte("cred-1"), func(p *tenants.Passkey) error { p.Name = ""; return nil }); err == nil {
			t.Error("UpdatePasskey stored an empty name")
		}
		nop := func(*tenants.Passkey) error { return nil }
		wantErrIs(t, st.UpdatePasskey(ctx(t), acme, bob, []byte("cred-1"), nop), tenants.ErrNotFound, "update of another member's passkey")
		wantErrIs(t, st.UpdatePasskey(ctx(t), globex, ann, []byte("cred-1"), nop), tenants.ErrNotFound, "update in another tenant")
	})

	t.Run("remove", func(t *testing.T) {
		wantErrIs(t, st.RemovePasskey(ctx(t), acme, bob, []byte("cred-2")), tenants.ErrNotFound, "removal of another member's passkey")
		if err := st.RemovePasskey(ctx(t), acme, ann, []byte("cred-2")); err != nil {
			t.Fatalf("RemovePasskey: %v", err)
		}
		wantErrIs(t, st.RemovePasskey(ctx(t), acme, ann, []byte("cred-2")), tenants.ErrNotFound, "second removal")
		if err := st.AddPasskey(ctx(t), acme, bob, testPasskey("cred-2", created)); !errors.Is(err, tenants.ErrTooManyPasskeys) {
			t.Errorf("re-adding a removed credential id (as bob, at his cap): %v; want only the cap to refuse it", err)
		}
	})

	t.Run("removed with the membership and the tenant", func(t *testing.T) {
		rev := tenants.Revocation{NotBefore: time.Now(), Expires: time.Now().Add(time.Hour)}
		if err := st.RemoveMember(ctx(t), "acme", "ann@x.example", rev); err != nil {
			t.Fatalf("RemoveMember: %v", err)
		}
		if ps, err := st.Passkeys(ctx(t), acme, ann); err != nil || len(ps) != 0 {
			t.Errorf("after RemoveMember ann holds %d passkeys (%v), want none", len(ps), err)
		}
		mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@x.example"})
		if ps, _ := st.Passkeys(ctx(t), acme, ann); len(ps) != 0 {
			t.Error("a re-added member got her old passkeys back")
		}
		if err := st.DeleteTenant(ctx(t), "acme"); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		if ps, err := st.Passkeys(ctx(t), acme, bob); err != nil || len(ps) != 0 {
			t.Errorf("after DeleteTenant bob holds %d passkeys (%v), want none", len(ps), err)
		}
	})
}

// passkeyByID finds one of the user's passkeys by credential id (zero
// Passkey: none).
func passkeyByID(t *testing.T, st tenants.Store, tenant, user, id string) tenants.Passkey {
	t.Helper()
	ps, err := st.Passkeys(ctx(t), tenant, user)
	if err != nil {
		t.Fatalf("Passkeys: %v", err)
	}
	for _, p := range ps {
		if string(p.ID) == id {
			return p
		}
	}
	return tenants.Passkey{}
}

// testSharedPasskeys: two processes registering the same credential id
// store it once, and two accepting the same assertion (the same sign
// count) accept it once: UpdatePasskey's read is its condition.
func testSharedPasskeys(t *testing.T, a, b tenants.Store) {
	mustApply(t, a, (&crypto{}).opts(), simple("acme"))
	acme := mustTenant(t, a, "acme").InternalID
	mustAddMember(t, a, "acme", tenants.NewMember{Email: "ann@x.example", PasswordHash: "h"})
	ann := mustUser(t, a, "ann@x.example").ID

	added := 0
	for _, err := range race(8, a, b, func(_ int, st tenants.Store) error {
		return st.AddPasskey(ctx(t), acme, ann, testPasskey("shared", created))
	}) {
		switch {
		case err == nil:
			added++
		case !errors.Is(err, tenants.ErrConflict):
			t.Errorf("AddPasskey: %v; want nil or ErrConflict", err)
		}
	}
	if added != 1 {
		t.Fatalf("%d concurrent registrations of one credential id succeeded, want 1", added)
	}
	stale := errors.New("sign count did not grow")
	accepted := 0
	for _, err := range race(8, a, b, func(_ int, st tenants.Store) error {
		return st.UpdatePasskey(ctx(t), acme, ann, []byte("shared"), func(p *tenants.Passkey) error {
			if p.SignCount >= 5 {
				return stale
			}
			p.SignCount = 5
			return nil
		})
	}) {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, stale):
			t.Errorf("UpdatePasskey: %v", err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d concurrent uses of sign count 5 were accepted, want 1", accepted)
	}
}
