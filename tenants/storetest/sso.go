package storetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// samlTenant is a tenant whose only method is saml.
func samlTenant(id string) tenants.Tenant {
	t := simple(id)
	t.Methods = []tenants.Method{{Type: tenants.MethodSAML, Config: obj("idpMetadataURL", "https://idp."+id+".example/metadata")}}
	return t
}

func testSAMLKey(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("plain"), samlTenant("acme"))
	acme := mustTenant(t, st, "acme")
	if calls := c.samlKeyCalls(); !slices.Equal(calls, []string{acme.InternalID}) {
		t.Fatalf("NewSAMLKey called with %v, want once for acme's internal id %q", calls, acme.InternalID)
	}
	want := fakeSAMLKey(acme.InternalID)
	if got := normTenant(acme).SAMLKey; got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("SAMLKey = %+v, want %+v", got, want)
	}
	if k := mustTenant(t, st, "plain").SAMLKey; k != nil {
		t.Errorf("a tenant without saml got a SAMLKey: %+v", k)
	}
	if k := mustSnapshot(t, st).BySlug("acme").SAMLKey; k == nil || string(k.Certificate) != string(want.Certificate) {
		t.Errorf("snapshot SAMLKey = %+v", k)
	}

	// Re-applying keeps the key; removing saml and adding it back too.
	mustApply(t, st, c.opts(), samlTenant("acme"))
	mustApply(t, st, c.opts(), simple("acme"))
	mustApply(t, st, c.opts(), samlTenant("acme"))
	if calls := c.samlKeyCalls(); len(calls) != 1 {
		t.Errorf("NewSAMLKey called %d times, want once", len(calls))
	}
	if got := normTenant(mustTenant(t, st, "acme")).SAMLKey; got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("SAMLKey changed to %+v", got)
	}

	// An existing tenant that gains saml gets a key then.
	mustApply(t, st, c.opts(), samlTenant("plain"))
	plain := mustTenant(t, st, "plain")
	if plain.SAMLKey == nil || string(plain.SAMLKey.Certificate) != "cert-"+plain.InternalID {
		t.Errorf("plain's SAMLKey = %+v", plain.SAMLKey)
	}

	// Without NewSAMLKey, or when it fails, nothing is written.
	o := c.opts()
	o.NewSAMLKey = nil
	if _, err := st.ApplyTenants(ctx(t), []tenants.Tenant{samlTenant("globex")}, o); err == nil {
		t.Error("a saml tenant was created without NewSAMLKey")
	}
	o.NewSAMLKey = func(string) (tenants.SAMLKey, error) { return tenants.SAMLKey{}, errors.New("boom") }
	if _, err := st.ApplyTenants(ctx(t), []tenants.Tenant{samlTenant("globex")}, o); err == nil {
		t.Error("a saml tenant was created although NewSAMLKey failed")
	}
	if ids := tenantIDs(t, st); !slices.Equal(ids, []string{"acme", "plain"}) {
		t.Errorf("tenants = %v after failed applies", ids)
	}
}

// testSocialSecretRequired: an error of SealMethod (here the one a social
// method left without a secret gets) fails the whole apply, naming the
// tenant and the field.
func testSocialSecretRequired(t *testing.T, st tenants.Store) {
	c := &crypto{}
	social := simple("acme")
	social.Methods = []tenants.Method{{Type: "social", Config: obj("clientID", "gh", "provider", "github")}}
	_, err := st.ApplyTenants(ctx(t), []tenants.Tenant{social}, c.opts())
	wantErrIs(t, err, tenants.ErrSecretRequired, "social method without a secret")
	if err != nil && (!strings.Contains(err.Error(), "acme") || !strings.Contains(err.Error(), "methods[0].clientSecret")) {
		t.Errorf("error %q does not name the tenant and field", err)
	}
	if ids := tenantIDs(t, st); len(ids) != 0 {
		t.Fatalf("tenants = %v after a refused apply", ids)
	}
	// With a secret it applies; re-applied without, the stored one is kept.
	social.Methods[0].Config = withMember(social.Methods[0].Config, "clientSecret", "gh-secret")
	mustApply(t, st, c.opts(), social)
	mustApply(t, st, c.opts(), config(mustTenant(t, st, "acme")))
	if m := mustTenant(t, st, "acme").Methods[0]; len(m.Sealed) == 0 {
		t.Error("re-apply without the secret lost it")
	}
	// A social method without a clientID is incomplete: stored without a
	// secret (it is not offered until one is applied).
	bare := simple("bare")
	bare.Methods = []tenants.Method{{Type: tenants.MethodPassword}, {Type: "social", Config: obj("provider", "github")}}
	mustApply(t, st, c.opts(), bare)
	if m := mustTenant(t, st, "bare").Methods[1]; string(m.Config) != `{"provider":"github"}` || len(m.Sealed) != 0 {
		t.Errorf("bare social method stored as %+v; want its config, no secret", m)
	}
}

func testExternalUserCreated(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme"), mustTenant(t, st, "globex")
	x := tenants.ExternalIdentity{Method: "oidc#0", Issuer: "https://idp.example", Subject: "u-1",
		Email: "Ann@Acme.Example", Roles: []string{"admin"}}
	u, err := st.UpsertExternalUser(ctx(t), acme.InternalID, x)
	if err != nil {
		t.Fatalf("UpsertExternalUser: %v", err)
	}
	if len(u.ID) < 16 || u.PasswordHash != "" || u.Email != "ann@acme.example" {
		t.Errorf("new external user = %+v: want a random id, no password, the email lower-cased", u)
	}
	if roles, err := st.Membership(ctx(t), acme.InternalID, u.ID); err != nil || !slices.Equal(roles, []string{"admin"}) {
		t.Errorf("membership in acme = %v, %v; want [admin]", roles, err)
	}
	_, err = st.Membership(ctx(t), globex.InternalID, u.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "membership of an acme SSO user in globex")
	_, err = st.UserByEmail(ctx(t), "ann@acme.example")
	wantErrIs(t, err, tenants.ErrNotFound, "UserByEmail of an SSO user")

	// The same identity again: same user, email and roles updated.
	x.Email, x.Roles = "ann.new@acme.example", []string{"viewer"}
	again, err := st.UpsertExternalUser(ctx(t), acme.InternalID, x)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != u.ID || again.Email != "ann.new@acme.example" {
		t.Errorf("second sign-in = %+v, want user %s with the new email", again, u.ID)
	}
	if roles, _ := st.Membership(ctx(t), acme.InternalID, u.ID); !slices.Equal(roles, []string{"viewer"}) {
		t.Errorf("roles after second sign-in = %v, want [viewer]", roles)
	}
	members, err := st.Members(ctx(t), "acme")
	if err != nil || len(members) != 1 || members[0].User.ID != u.ID {
		t.Errorf("Members(acme) = %+v, %v", members, err)
	}

	// Every part of the key matters: another method, issuer or subject, or
	// another tenant, is another person.
	for _, other := range []struct {
		tenant string
		x      tenants.ExternalIdentity
	}{
		{acme.InternalID, tenants.ExternalIdentity{Method: "oidc#1", Issuer: x.Issuer, Subject: x.Subject}},
		{acme.InternalID, tenants.ExternalIdentity{Method: x.Method, Issuer: "https://other.example", Subject: x.Subject}},
		{acme.InternalID, tenants.ExternalIdentity{Method: x.Method, Issuer: x.Issuer, Subject: "u-2"}},
		{acme.InternalID, tenants.ExternalIdentity{Method: x.Method, Issuer: x.Issuer + "u", Subject: "-1"}},
		{globex.InternalID, tenants.ExternalIdentity{Method: x.Method, Issuer: x.Issuer, Subject: x.Subject}},
	} {
		o, err := st.UpsertExternalUser(ctx(t), other.tenant, other.x)
		if err != nil {
			t.Fatal(err)
		}
		if o.ID == u.ID {
			t.Errorf("identity %+v in %s reached user %s", other.x, other.tenant, u.ID)
		}
	}

	// Bad input and unknown tenants are refused.
	_, err = st.UpsertExternalUser(ctx(t), "no-such-tenant", x)
	wantErrIs(t, err, tenants.ErrNotFound, "unknown tenant")
	for _, bad := range []tenants.ExternalIdentity{
		{Issuer: "i", Subject: "s"}, {Method: "m", Subject: "s"}, {Method: "m", Issuer: "i"},
	} {
		if _, err := st.UpsertExternalUser(ctx(t), acme.InternalID, bad); err == nil {
			t.Errorf("UpsertExternalUser(%+v) succeeded", bad)
		}
	}
}

func testExternalUserNeverLinkedByEmail(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme"), mustTenant(t, st, "globex")
	// pat has a password account in globex.
	mustAddMember(t, st, "globex", tenants.NewMember{Email: "pat@shared.example", Roles: []string{"admin"}, PasswordHash: "hash-pat"})
	pw := mustUser(t, st, "pat@shared.example")

	// acme's IdP vouches for someone with the same email.
	u, err := st.UpsertExternalUser(ctx(t), acme.InternalID, tenants.ExternalIdentity{
		Method: "saml#0", Issuer: "https://idp.acme.example", Subject: "pat", Email: "pat@shared.example", Roles: []string{"viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == pw.ID {
		t.Fatal("the SSO identity was linked to the password user by email")
	}
	if _, err := st.Membership(ctx(t), globex.InternalID, u.ID); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("the SSO user is a member of globex: %v", err)
	}
	if _, err := st.Membership(ctx(t), acme.InternalID, pw.ID); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("the password user became a member of acme: %v", err)
	}
	if got := mustUser(t, st, "pat@shared.example"); got.ID != pw.ID || got.PasswordHash != "hash-pat" {
		t.Errorf("UserByEmail now returns %+v", got)
	}
	// And the other way: AddMember with that email in acme makes (or finds)
	// the password user, never the SSO one.
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "pat@shared.example", Roles: []string{"viewer"}})
	if roles, err := st.Membership(ctx(t), acme.InternalID, pw.ID); err != nil || !slices.Equal(roles, []string{"viewer"}) {
		t.Errorf("AddMember in acme: password user's roles = %v, %v", roles, err)
	}
}

func testExternalUserDeletedWithTenant(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	old := mustTenant(t, st, "acme")
	x := tenants.ExternalIdentity{Method: "oidc#0", Issuer: "https://idp.example", Subject: "s", Email: "a@acme.example"}
	u, err := st.UpsertExternalUser(ctx(t), old.InternalID, x)
	if err != nil {
		t.Fatal(err)
	}
	exp := created.Add(24 * 365 * time.Hour * 100)
	if err := st.UseAssertionID(ctx(t), old.InternalID, "_a1", exp); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	_, err = st.Membership(ctx(t), old.InternalID, u.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "membership after DeleteTenant")
	_, err = st.UpsertExternalUser(ctx(t), old.InternalID, x)
	wantErrIs(t, err, tenants.ErrNotFound, "sign-in to a deleted tenant")

	// The re-created slug starts with nobody.
	mustApply(t, st, c.opts(), simple("acme"))
	again := mustTenant(t, st, "acme")
	nu, err := st.UpsertExternalUser(ctx(t), again.InternalID, x)
	if err != nil {
		t.Fatal(err)
	}
	if nu.ID == u.ID {
		t.Error("the re-created tenant inherited the deleted tenant's SSO user")
	}
	if members, _ := st.Members(ctx(t), "acme"); len(members) != 1 {
		t.Errorf("Members = %+v, want only the new user", members)
	}
}

func testExternalUserRemoveMember(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	acme := mustTenant(t, st, "acme")
	u, err := st.UpsertExternalUser(ctx(t), acme.InternalID, tenants.ExternalIdentity{
		Method: "oidc#0", Issuer: "https://idp.example", Subject: "s", Email: "sso@acme.example", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	rev := tenants.Revocation{NotBefore: created, Expires: created.Add(time.Hour)}
	if err := st.RemoveMember(ctx(t), "acme", "SSO@acme.example", rev); err != nil {
		t.Fatalf("RemoveMember of an SSO user: %v", err)
	}
	_, err = st.Membership(ctx(t), acme.InternalID, u.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "membership after RemoveMember")
	if !mustSnapshot(t, st).Revoked(acme.InternalID, u.ID, "", created) {
		t.Error("RemoveMember did not revoke the SSO user's sessions")
	}
}

func testAssertionReplay(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme").InternalID, mustTenant(t, st, "globex").InternalID
	far := time.Now().Add(time.Hour)
	if err := st.UseAssertionID(ctx(t), acme, "_id1", far); err != nil {
		t.Fatalf("first use: %v", err)
	}
	err := st.UseAssertionID(ctx(t), acme, "_id1", far)
	wantErrIs(t, err, tenants.ErrReplay, "second use")
	// Ids are per tenant.
	if err := st.UseAssertionID(ctx(t), globex, "_id1", far); err != nil {
		t.Errorf("same id at another tenant: %v", err)
	}
	// An expired record no longer blocks the id, and is replaced.
	past := time.Now().Add(-time.Hour)
	if err := st.UseAssertionID(ctx(t), acme, "_old", past); err != nil {
		t.Fatal(err)
	}
	if err := st.UseAssertionID(ctx(t), acme, "_old", far); err != nil {
		t.Errorf("reuse after expiry: %v", err)
	}
	err = st.UseAssertionID(ctx(t), acme, "_old", far)
	wantErrIs(t, err, tenants.ErrReplay, "reuse of the renewed id")
	for _, bad := range []struct {
		tenant, id string
		exp        time.Time
	}{
		{"", "_x", far}, {acme, "", far}, {acme, "_x", time.Time{}}, {acme, strings.Repeat("x", tenants.MaxAssertionIDLen+1), far},
	} {
		if err := st.UseAssertionID(ctx(t), bad.tenant, bad.id, bad.exp); err == nil {
			t.Errorf("UseAssertionID(%q, %d bytes, %v) succeeded", bad.tenant, len(bad.id), bad.exp)
		}
	}
}

// RunDurable runs the conformance tests that need a store to be closed and
// opened again on the same data. open returns a new, empty store and a
// function that reopens it (after the test closed it); both arrange their
// own cleanup.
func RunDurable(t *testing.T, open func(t *testing.T) (st tenants.Store, reopen func() tenants.Store)) {
	t.Helper()
	t.Run("SnapshotFollowsWrites", func(t *testing.T) {
		st, reopen := open(t)
		testSnapshotFollowsWrites(t, st, reopen)
	})
	t.Run("AssertionReplaySurvivesRestart", func(t *testing.T) {
		st, reopen := open(t)
		c := &crypto{}
		mustApply(t, st, c.opts(), simple("acme"))
		acme := mustTenant(t, st, "acme").InternalID
		x := tenants.ExternalIdentity{Method: "saml#0", Issuer: "https://idp.example", Subject: "s", Roles: []string{"r"}}
		u, err := st.UpsertExternalUser(ctx(t), acme, x)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.UseAssertionID(ctx(t), acme, "_id1", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = reopen()
		err = st.UseAssertionID(ctx(t), acme, "_id1", time.Now().Add(time.Hour))
		wantErrIs(t, err, tenants.ErrReplay, "replay after a restart")
		again, err := st.UpsertExternalUser(ctx(t), acme, x)
		if err != nil || again.ID != u.ID {
			t.Errorf("SSO user after a restart = %+v, %v; want %s", again, err, u.ID)
		}
	})
}
