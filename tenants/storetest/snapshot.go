package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// membership returns a user's roles in a snapshot as "role,role", or "-"
// when the user is not a member.
func membership(s *tenants.Snapshot, tenantInternalID, userID string) string {
	roles, ok := s.Membership(tenantInternalID, userID)
	if !ok {
		return "-"
	}
	return fmt.Sprint(roles)
}

// testSnapshotMemberships: the snapshot holds every membership with its
// roles as the last write left them, so that a demotion, a removal or a
// deleted tenant reaches the next Check (CONTRACT.md, users add).
func testSnapshotMemberships(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme").InternalID, mustTenant(t, st, "globex").InternalID
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@x.example", Roles: []string{"member", "admin"}, PasswordHash: "h"})
	mustAddMember(t, st, "globex", tenants.NewMember{Email: "ann@x.example", Roles: []string{"member"}})
	ann := mustUser(t, st, "ann@x.example")
	sso, err := st.UpsertExternalUser(ctx(t), acme, tenants.ExternalIdentity{
		Method: "oidc#0", Issuer: "https://idp.example", Subject: "s1", Email: "sso@x.example", Roles: []string{"viewer"}})
	if err != nil {
		t.Fatal(err)
	}

	before := mustSnapshot(t, st)
	steps := []struct {
		name  string
		write func() error
		// want are the memberships after the write: ann in acme, ann in
		// globex, the SSO user in acme.
		want [3]string
	}{
		{"as added", func() error { return nil }, [3]string{"[admin member]", "[member]", "[viewer]"}},
		{"demoted", func() error {
			_, err := st.AddMember(ctx(t), "acme", tenants.NewMember{Email: "ANN@x.example", Roles: []string{"member"}})
			return err
		}, [3]string{"[member]", "[member]", "[viewer]"}},
		{"promoted", func() error {
			_, err := st.AddMember(ctx(t), "acme", tenants.NewMember{Email: "ann@x.example", Roles: []string{"admin", "auditor"}})
			return err
		}, [3]string{"[admin auditor]", "[member]", "[viewer]"}},
		{"all roles taken away", func() error {
			_, err := st.AddMember(ctx(t), "acme", tenants.NewMember{Email: "ann@x.example"})
			return err
		}, [3]string{"[]", "[member]", "[viewer]"}},
		{"SSO sign-in with new roles", func() error {
			_, err := st.UpsertExternalUser(ctx(t), acme, tenants.ExternalIdentity{
				Method: "oidc#0", Issuer: "https://idp.example", Subject: "s1", Email: "sso@x.example", Roles: []string{"admin"}})
			return err
		}, [3]string{"[]", "[member]", "[admin]"}},
		{"removed", func() error {
			return st.RemoveMember(ctx(t), "acme", "ann@x.example", tenants.Revocation{NotBefore: created, Expires: time.Now().Add(time.Hour)})
		}, [3]string{"-", "[member]", "[admin]"}},
		{"SSO user removed", func() error {
			return st.RemoveMember(ctx(t), "acme", "sso@x.example", tenants.Revocation{NotBefore: created, Expires: time.Now().Add(time.Hour)})
		}, [3]string{"-", "[member]", "-"}},
		{"added back", func() error {
			_, err := st.AddMember(ctx(t), "acme", tenants.NewMember{Email: "ann@x.example", Roles: []string{"member"}})
			return err
		}, [3]string{"[member]", "[member]", "-"}},
		{"other tenant deleted", func() error { return st.DeleteTenant(ctx(t), "globex") }, [3]string{"[member]", "-", "-"}},
	}
	for _, step := range steps {
		if err := step.write(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		s := mustSnapshot(t, st)
		got := [3]string{membership(s, acme, ann.ID), membership(s, globex, ann.ID), membership(s, acme, sso.ID)}
		if got != step.want {
			t.Errorf("%s: memberships (ann@acme, ann@globex, sso@acme) = %q, want %q", step.name, got, step.want)
		}
	}
	// A snapshot is a point in time.
	if got := membership(before, acme, ann.ID); got != "[admin member]" {
		t.Errorf("an earlier snapshot changed: ann@acme = %s", got)
	}
}

// testSnapshotFollowsWrites: the snapshot a store keeps up to date write by
// write equals what a fresh read of the same data gives, after every kind
// of write, including revocations dropped on expiry and writes that fail.
func testSnapshotFollowsWrites(t *testing.T, st tenants.Store, reopen func() tenants.Store) {
	c := &crypto{}
	mustSnapshot(t, st) // from here on, writes change the snapshot held
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme").InternalID, mustTenant(t, st, "globex").InternalID
	now := time.Now()
	var emails []string
	for i := range 6 {
		email := fmt.Sprintf("u%d@x.example", i)
		emails = append(emails, email)
		mustAddMember(t, st, []string{"acme", "globex"}[i%2], tenants.NewMember{Email: email, Roles: []string{fmt.Sprint("r", i)}, PasswordHash: "h"})
	}
	mustAddMember(t, st, "acme", tenants.NewMember{Email: emails[1], Roles: []string{"b", "a"}})
	mustAddMember(t, st, "globex", tenants.NewMember{Email: emails[0], Roles: []string{"c"}})
	if err := st.RemoveMember(ctx(t), "acme", emails[2], tenants.Revocation{NotBefore: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertExternalUser(ctx(t), globex, tenants.ExternalIdentity{Method: "saml#0", Issuer: "i", Subject: "s", Roles: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := tenants.Revocation{Key: tenants.SessionRevocationKey(fmt.Sprint("s", i)), NotBefore: now, Expires: now.Add(time.Hour)}
		if i%2 == 1 {
			r.Expires = now.Add(-time.Minute) // dropped by the write that records it
		}
		if err := st.Revoke(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Revoke(ctx(t), tenants.Revocation{Key: tenants.SessionRevocationKey("s0"), NotBefore: now.Add(time.Minute), Expires: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddMember(ctx(t), "nope", tenants.NewMember{Email: emails[0]}); err == nil {
		t.Fatal("AddMember to a missing tenant succeeded")
	}
	if err := st.UseAssertionID(ctx(t), acme, "_a", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyTenants(ctx(t), []tenants.Tenant{simple("initech")}, c.opts()); err != nil {
		t.Fatal(err)
	}

	live := mustSnapshot(t, st)
	var users []string
	for _, e := range emails {
		users = append(users, mustUser(t, st, e).ID)
	}
	if sso, err := st.Members(ctx(t), "globex"); err == nil {
		for _, m := range sso {
			users = append(users, m.User.ID)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fresh := mustSnapshot(t, reopen())

	if live.Len() != fresh.Len() || live.Len() != 3 {
		t.Errorf("tenants: %d kept up to date, %d read afresh, want 3", live.Len(), fresh.Len())
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		if a, b := live.BySlug(id), fresh.BySlug(id); a == nil || b == nil || a.InternalID != b.InternalID {
			t.Errorf("tenant %s: kept %v, fresh %v", id, a, b)
		}
	}
	for _, tid := range []string{acme, globex} {
		for _, uid := range users {
			if a, b := membership(live, tid, uid), membership(fresh, tid, uid); a != b {
				t.Errorf("membership %s/%s: kept %s, fresh %s", tid, uid, a, b)
			}
		}
	}
	at := now.Add(30 * time.Second)
	for i := range 5 {
		sid := fmt.Sprint("s", i)
		if a, b := live.Revoked("", "", sid, at), fresh.Revoked("", "", sid, at); a != b || a != (i%2 == 0) {
			t.Errorf("revocation of %s: kept %v, fresh %v, want %v", sid, a, b, i%2 == 0)
		}
	}
	removed := users[2]
	if !live.Revoked(acme, removed, "any", now) || !fresh.Revoked(acme, removed, "any", now) {
		t.Error("the removal's user revocation is missing")
	}
	if got := membership(live, acme, users[1]); got != "[a b]" {
		t.Errorf("u1@acme = %s, want [a b]", got)
	}
}
