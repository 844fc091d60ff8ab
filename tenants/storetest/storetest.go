// Package storetest is the conformance suite for tenants.Store. Every backend
// runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tenants.Store { … a fresh, empty store … })
//	}
//
// Each promise in the tenants.Store documentation has a subtest here. The
// suite uses fake cryptography (NewKey and SealMethod that only tag their
// input): the real key handling and the method configurations live
// elsewhere and the store must not care.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// Run runs every conformance test against stores made by open. open must
// return a new, empty store for each call and arrange for it to be closed
// when t ends (t.Cleanup); the suite may close it earlier itself.
func Run(t *testing.T, open func(t *testing.T) tenants.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, st tenants.Store)
	}{
		{"ApplyCreates", testApplyCreates},
		{"ApplyReturnsCopies", testApplyReturnsCopies},
		{"ReapplyKeepsIdentity", testReapplyKeepsIdentity},
		{"ApplyAllOrNothing", testApplyAllOrNothing},
		{"ApplyConflicts", testApplyConflicts},
		{"ApplyMovesDomainWithinBatch", testApplyMovesDomainWithinBatch},
		{"ApplyCallbackFailures", testApplyCallbackFailures},
		{"ApplyCheckChange", testApplyCheckChange},
		{"ClientSecrets", testClientSecrets},
		{"DeleteTenant", testDeleteTenant},
		{"AddMember", testAddMember},
		{"MembersSorted", testMembersSorted},
		{"RemoveMember", testRemoveMember},
		{"Revoke", testRevoke},
		{"Snapshot", testSnapshot},
		{"SnapshotConsistent", testSnapshotConsistent},
		{"SnapshotMemberships", testSnapshotMemberships},
		{"Watch", testWatch},
		{"ConcurrentDomainClaims", testConcurrentDomainClaims},
		{"ConcurrentUserCreation", testConcurrentUserCreation},
		{"CloseTwice", testCloseTwice},
		{"SAMLKey", testSAMLKey},
		{"SocialSecretRequired", testSocialSecretRequired},
		{"ExternalUserCreated", testExternalUserCreated},
		{"ExternalUserNeverLinkedByEmail", testExternalUserNeverLinkedByEmail},
		{"ExternalUserDeletedWithTenant", testExternalUserDeletedWithTenant},
		{"ExternalUserRemoveMember", testExternalUserRemoveMember},
		{"AssertionReplay", testAssertionReplay},
		{"Passkeys", testPasskeys},
		{"RotateKey", testRotateKey},
		{"RotateKeyRefusals", testRotateKeyRefusals},
		{"Reseal", testReseal},
		{"SetPassword", testSetPassword},
		{"SessionsRecorded", testSessionsRecorded},
		{"SessionsRefused", testSessionsRefused},
		{"SessionsExpired", testSessionsExpired},
		{"SessionsCapped", testSessionsCapped},
		{"RevokeSession", testRevokeSession},
		{"SessionsDeletedWithTenant", testSessionsDeletedWithTenant},
		{"SecondFactors", testSecondFactors},
		{"ResealFactors", testResealFactors},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// created is the fixed clock the suite passes as ApplyOptions.Now.
var created = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// crypto is a fake NewKey and SealMethod that record their calls.
type crypto struct {
	mu       sync.Mutex
	newKeys  []string // internal ids NewKey was called with
	seals    []string // internal ids SealMethod was called with
	samlKeys []string // internal ids NewSAMLKey was called with
}

// fakeSAMLKey is what the fake NewSAMLKey returns for an internal id.
func fakeSAMLKey(internalID string) tenants.SAMLKey {
	return tenants.SAMLKey{
		Certificate:   []byte("cert-" + internalID),
		SealedPrivate: []byte("sealed-saml-" + internalID),
		Created:       created,
	}
}

// fakeKey is what the fake NewKey returns for an internal id.
func fakeKey(internalID string) tenants.SigningKey {
	return tenants.SigningKey{
		KID:           "kid-" + internalID,
		Alg:           "EdDSA",
		Public:        []byte("public-" + internalID),
		SealedPrivate: []byte("sealed-private-" + internalID),
		Created:       created,
	}
}

// fakeSeal is what the fake SealMethod seals a secret to; it keeps the
// plaintext visible on purpose so the tests can tell which secret went
// where.
func fakeSeal(plaintext []byte, internalID string) []byte {
	return append([]byte("sealed:"+internalID+":"), plaintext...)
}

// obj is a method Config: a JSON object of the given keys and values, in
// order.
func obj(kv ...any) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv[i])
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			panic(err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// members returns a Config's members in order, as alternating keys and raw
// values (obj's arguments).
func members(cfg json.RawMessage) []any {
	if len(cfg) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(cfg))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		panic("config is not an object")
	}
	var kv []any
	for dec.More() {
		tok, _ := dec.Token()
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			panic(err)
		}
		kv = append(kv, tok, v)
	}
	return kv
}

// member returns the string member key of a Config, and the Config
// without it (nil when nothing is left).
func member(cfg json.RawMessage, key string) (string, json.RawMessage) {
	var value string
	var rest []any
	kv := members(cfg)
	for i := 0; i < len(kv); i += 2 {
		if kv[i] == key {
			_ = json.Unmarshal(kv[i+1].(json.RawMessage), &value)
			continue
		}
		rest = append(rest, kv[i], kv[i+1])
	}
	if len(rest) == 0 {
		return value, nil
	}
	return value, obj(rest...)
}

// withMember returns cfg with the string member key set to value, last.
func withMember(cfg json.RawMessage, key, value string) json.RawMessage {
	_, rest := member(cfg, key)
	return obj(append(members(rest), key, value)...)
}

// fakeSealMethod is the suite's ApplyOptions.SealMethod: a Config's
// plaintext "clientSecret" member moves into Sealed (fakeSeal), or, without
// one, prev's Sealed is kept; a social method with a clientID left without a
// sealed secret is a FieldError wrapping tenants.ErrSecretRequired, as the
// social method's own SealMethod reports it.
func fakeSealMethod(m tenants.Method, prev *tenants.Method, internalID string) (tenants.Method, error) {
	secret, rest := member(m.Config, "clientSecret")
	m.Config = rest
	switch {
	case secret != "":
		m.Sealed = fakeSeal([]byte(secret), internalID)
	case prev != nil:
		m.Sealed = bytes.Clone(prev.Sealed)
	}
	if id, _ := member(m.Config, "clientID"); m.Type == "social" && id != "" && len(m.Sealed) == 0 {
		return tenants.Method{}, &tenants.FieldError{Field: "clientSecret", Err: fmt.Errorf("missing: %w", tenants.ErrSecretRequired)}
	}
	return m, nil
}

func (c *crypto) opts() tenants.ApplyOptions {
	return tenants.ApplyOptions{
		NewKey: func(id string) (tenants.SigningKey, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.newKeys = append(c.newKeys, id)
			return fakeKey(id), nil
		},
		SealMethod: func(m tenants.Method, prev *tenants.Method, id string) (tenants.Method, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.seals = append(c.seals, id)
			return fakeSealMethod(m, prev, id)
		},
		NewSAMLKey: func(id string) (tenants.SAMLKey, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.samlKeys = append(c.samlKeys, id)
			return fakeSAMLKey(id), nil
		},
		Now: func() time.Time { return created },
	}
}

func (c *crypto) samlKeyCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.samlKeys)
}

func (c *crypto) newKeyCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.newKeys)
}

// acme is a tenant using every field a tenant file may set.
func acme() tenants.Tenant {
	return tenants.Tenant{
		ID:           "acme",
		Name:         "Acme Corp",
		Domains:      []string{"login.acme.example", "acme.example"},
		EmailDomains: []string{"acme.example"},
		Status:       tenants.StatusActive,
		Methods: []tenants.Method{
			{Type: tenants.MethodPassword},
			{Type: "oidc", Label: "Acme SSO",
				Config: obj("issuer", "https://idp.acme.example", "clientID", "tg", "clientSecret", "oidc-secret",
					"scopes", []string{"groups"}, "groupsClaim", "roles"),
				Roles: tenants.RoleMapping{GroupRoles: map[string][]string{"eng": {"admin", "viewer"}}, DefaultRoles: []string{"viewer"}}},
			{Type: tenants.MethodSAML,
				Config: obj("groupsClaim", "memberOf", "idpMetadataURL", "https://idp.acme.example/saml/metadata",
					"emailAttribute", "mail", "allowIDPInitiated", true),
				Roles: tenants.RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}}}},
			{Type: "social", Config: obj("clientID", "gh", "clientSecret", "gh-secret", "provider", "github"),
				Roles: tenants.RoleMapping{DefaultRoles: []string{"viewer"}}},
			{Type: "social", Config: obj("clientID", "gen", "clientSecret", "gen-secret", "provider", "generic",
				"authURL", "https://oauth.acme.example/auth", "tokenURL", "https://oauth.acme.example/token",
				"userinfoURL", "https://oauth.acme.example/userinfo", "idField", "uid", "emailField", "mail",
				"emailVerifiedField", "mail_verified")},
		},
		Roles: map[string]tenants.Role{
			"viewer": {Permissions: []string{"docs:read"}},
			"admin":  {Permissions: []string{"docs:*"}, Inherits: []string{"viewer"}},
		},
		Rules: []tenants.Rule{
			{Path: "/public/", Access: tenants.AccessAnonymous},
			{Path: "/admin/", Methods: []string{"POST"}, Permission: "docs:write"},
		},
		Branding:          tenants.Branding{LogoURL: "https://cdn.acme.example/logo.svg?v=2", AccentColor: "#0A66c2"},
		PassSessionCookie: true,
		MFA:               tenants.MFAOff,
		CrossOriginGuard:  new(false),
		TrustedOrigins:    []string{"https://admin.acme.example", "http://localhost:3000"},
	}
}

// simple is a tenant with only an id, a domain and an email domain.
func simple(id string) tenants.Tenant {
	return tenants.Tenant{
		ID:           id,
		Domains:      []string{id + ".example"},
		EmailDomains: []string{id + ".example"},
		Methods:      []tenants.Method{{Type: tenants.MethodPassword}},
	}
}

// config strips what the store assigns or never returns, leaving what an
// operator wrote.
func config(t tenants.Tenant) tenants.Tenant {
	t.InternalID, t.Keys, t.Created, t.SAMLKey = "", nil, time.Time{}, nil
	t.Methods = slices.Clone(t.Methods)
	for i := range t.Methods {
		_, t.Methods[i].Config = member(t.Methods[i].Config, "clientSecret")
		t.Methods[i].Sealed = nil
	}
	return t
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustApply(t *testing.T, st tenants.Store, opts tenants.ApplyOptions, ts ...tenants.Tenant) []tenants.ApplyResult {
	t.Helper()
	res, err := st.ApplyTenants(ctx(t), ts, opts)
	if err != nil {
		t.Fatalf("ApplyTenants: %v", err)
	}
	return res
}

func mustTenant(t *testing.T, st tenants.Store, id string) tenants.Tenant {
	t.Helper()
	got, err := st.Tenant(ctx(t), id)
	if err != nil {
		t.Fatalf("Tenant(%q): %v", id, err)
	}
	return got
}

func mustAddMember(t *testing.T, st tenants.Store, tenantID string, m tenants.NewMember) bool {
	t.Helper()
	created, err := st.AddMember(ctx(t), tenantID, m)
	if err != nil {
		t.Fatalf("AddMember(%q, %q): %v", tenantID, m.Email, err)
	}
	return created
}

func mustUser(t *testing.T, st tenants.Store, email string) tenants.User {
	t.Helper()
	u, err := st.UserByEmail(ctx(t), email)
	if err != nil {
		t.Fatalf("UserByEmail(%q): %v", email, err)
	}
	return u
}

func mustSnapshot(t *testing.T, st tenants.Store) *tenants.Snapshot {
	t.Helper()
	s, err := st.Snapshot(ctx(t))
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return s
}

func tenantIDs(t *testing.T, st tenants.Store) []string {
	t.Helper()
	ts, err := st.Tenants(ctx(t))
	if err != nil {
		t.Fatalf("Tenants: %v", err)
	}
	var ids []string
	for _, x := range ts {
		ids = append(ids, x.ID)
	}
	return ids
}

func wantErrIs(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

func testApplyCreates(t *testing.T, st tenants.Store) {
	c := &crypto{}
	res := mustApply(t, st, c.opts(), simple("globex"), acme())
	if want := []tenants.ApplyResult{{ID: "globex", Created: true}, {ID: "acme", Created: true}}; !reflect.DeepEqual(res, want) {
		t.Fatalf("results = %+v, want %+v", res, want)
	}
	all, err := st.Tenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "acme" || all[1].ID != "globex" {
		t.Fatalf("Tenants() = %v, want acme and globex sorted by id", all)
	}
	got := all[0]
	if !reflect.DeepEqual(config(got), config(acme())) {
		t.Errorf("stored config differs:\n got %+v\nwant %+v", config(got), config(acme()))
	}
	if got.InternalID == "" || got.InternalID == all[1].InternalID {
		t.Errorf("internal ids %q and %q: want distinct and non-empty", got.InternalID, all[1].InternalID)
	}
	if len(got.InternalID) < 16 {
		t.Errorf("internal id %q is too short to be random", got.InternalID)
	}
	if calls := c.newKeyCalls(); !slices.Contains(calls, got.InternalID) || len(calls) != 2 {
		t.Errorf("NewKey called with %v, want once per new tenant with its internal id %q", calls, got.InternalID)
	}
	if want := []tenants.SigningKey{fakeKey(got.InternalID)}; !reflect.DeepEqual(normKeys(got.Keys), want) {
		t.Errorf("keys = %+v, want %+v", got.Keys, want)
	}
	if !got.Created.Equal(created) {
		t.Errorf("Created = %v, want %v (ApplyOptions.Now)", got.Created, created)
	}
	one := mustTenant(t, st, "acme")
	if !reflect.DeepEqual(normTenant(one), normTenant(got)) {
		t.Errorf("Tenant(acme) = %+v, differs from Tenants()[0] = %+v", one, got)
	}
	_, err = st.Tenant(ctx(t), "nope")
	wantErrIs(t, err, tenants.ErrNotFound, "Tenant(nope)")

	// A fresh store hands out fresh ids: a second tenant created later never
	// reuses one.
	mustApply(t, st, c.opts(), simple("initech"))
	if id := mustTenant(t, st, "initech").InternalID; id == got.InternalID || id == all[1].InternalID {
		t.Errorf("initech got a reused internal id %q", id)
	}
}

// normKeys makes times comparable with DeepEqual (monotonic readings and
// locations are not stored).
func normKeys(ks []tenants.SigningKey) []tenants.SigningKey {
	out := slices.Clone(ks)
	for i := range out {
		out[i].Created = out[i].Created.UTC()
	}
	return out
}

func normTenant(t tenants.Tenant) tenants.Tenant {
	t.Keys = normKeys(t.Keys)
	t.Created = t.Created.UTC()
	if t.SAMLKey != nil {
		k := *t.SAMLKey
		k.Created = k.Created.UTC()
		t.SAMLKey = &k
	}
	return t
}

func testApplyReturnsCopies(t *testing.T, st tenants.Store) {
	c := &crypto{}
	in := []tenants.Tenant{acme()}
	mustApply(t, st, c.opts(), in...)
	in[0].Domains[0] = "mutated.example"
	in[0].Roles["admin"] = tenants.Role{}

	got := mustTenant(t, st, "acme")
	if !reflect.DeepEqual(config(got), config(acme())) {
		t.Fatalf("changing the applied slice changed the store: %+v", got)
	}
	got.Domains[0] = "mutated.example"
	got.Methods[1].Sealed[0] = 'X'
	got.Methods[1].Config[0] = 'X'
	got.Keys[0].Public[0] = 'X'
	again := mustTenant(t, st, "acme")
	if again.Domains[0] != acme().Domains[0] || again.Methods[1].Sealed[0] == 'X' || again.Methods[1].Config[0] == 'X' || again.Keys[0].Public[0] == 'X' {
		t.Fatalf("changing a returned tenant changed the store: %+v", again)
	}
}

func testReapplyKeepsIdentity(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), acme())
	before := mustTenant(t, st, "acme")

	changed := acme()
	changed.Name = "Acme Renamed"
	changed.Domains = []string{"new.acme.example"}
	changed.Status = tenants.StatusSuspended
	changed.Rules = nil
	changed.Branding = tenants.Branding{AccentColor: "#fff"} // logo dropped
	changed.PassSessionCookie = false
	later := c.opts()
	later.Now = func() time.Time { return created.Add(time.Hour) }
	res := mustApply(t, st, later, changed)
	if want := []tenants.ApplyResult{{ID: "acme", Created: false}}; !reflect.DeepEqual(res, want) {
		t.Fatalf("results = %+v, want %+v", res, want)
	}
	after := mustTenant(t, st, "acme")
	if after.InternalID != before.InternalID {
		t.Errorf("InternalID changed from %q to %q", before.InternalID, after.InternalID)
	}
	if !reflect.DeepEqual(normKeys(after.Keys), normKeys(before.Keys)) {
		t.Errorf("Keys changed: %+v -> %+v", before.Keys, after.Keys)
	}
	if !after.Created.Equal(before.Created) {
		t.Errorf("Created changed: %v -> %v", before.Created, after.Created)
	}
	if len(c.newKeyCalls()) != 1 {
		t.Errorf("NewKey called %d times, want once (on creation only)", len(c.newKeyCalls()))
	}
	if !reflect.DeepEqual(config(after), config(changed)) {
		t.Errorf("fields not replaced:\n got %+v\nwant %+v", config(after), config(changed))
	}
	// The domain acme dropped is free again.
	other := simple("globex")
	other.Domains = []string{"login.acme.example"}
	mustApply(t, st, c.opts(), other)
	s := mustSnapshot(t, st)
	if got := s.ByDomain("login.acme.example"); got == nil || got.ID != "globex" {
		t.Errorf("ByDomain(login.acme.example) = %v, want globex", got)
	}
	if got := s.ByDomain("new.acme.example"); got == nil || got.ID != "acme" {
		t.Errorf("ByDomain(new.acme.example) = %v, want acme", got)
	}
}

func testApplyAllOrNothing(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	before := mustTenant(t, st, "acme")

	renamed := simple("acme")
	renamed.Name = "should not stick"
	bad := simple("initech")
	bad.Domains = []string{"acme.example"} // held by acme, which keeps it
	_, err := st.ApplyTenants(ctx(t), []tenants.Tenant{renamed, simple("globex"), bad}, c.opts())
	wantErrIs(t, err, tenants.ErrConflict, "apply with a conflict in the 3rd tenant")
	if ids := tenantIDs(t, st); !slices.Equal(ids, []string{"acme"}) {
		t.Errorf("after a failed apply, tenants = %v, want only acme", ids)
	}
	if after := mustTenant(t, st, "acme"); !reflect.DeepEqual(normTenant(after), normTenant(before)) {
		t.Errorf("failed apply changed acme: %+v", after)
	}
	// Nothing the failed batch claimed was left behind in the indexes.
	mustApply(t, st, c.opts(), simple("other"), tenants.Tenant{ID: "x", Domains: []string{"globex.example"}, EmailDomains: []string{"initech.example"}})
}

func testApplyConflicts(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	for _, tc := range []struct {
		name  string
		batch []tenants.Tenant
		words []string // the message names the tenant, the field and the value
	}{
		{"domain held by a stored tenant",
			[]tenants.Tenant{{ID: "globex", Domains: []string{"acme.example"}}},
			[]string{"globex", "domains", "acme.example"}},
		{"email domain held by a stored tenant",
			[]tenants.Tenant{{ID: "globex", EmailDomains: []string{"acme.example"}}},
			[]string{"globex", "emailDomains", "acme.example"}},
		{"domain twice in the batch",
			[]tenants.Tenant{{ID: "globex", Domains: []string{"shared.example"}}, {ID: "initech", Domains: []string{"shared.example"}}},
			[]string{"initech", "domains", "shared.example"}},
		{"email domain twice in the batch",
			[]tenants.Tenant{{ID: "globex", EmailDomains: []string{"shared.example"}}, {ID: "initech", EmailDomains: []string{"shared.example"}}},
			[]string{"initech", "emailDomains", "shared.example"}},
		{"slug twice in the batch",
			[]tenants.Tenant{simple("globex"), simple("globex")},
			[]string{"globex"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tenantIDs(t, st)
			_, err := st.ApplyTenants(ctx(t), tc.batch, c.opts())
			wantErrIs(t, err, tenants.ErrConflict, tc.name)
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if after := tenantIDs(t, st); !slices.Equal(after, before) {
				t.Errorf("tenants changed from %v to %v", before, after)
			}
		})
	}

	// An existing tenant may not take a stored tenant's domain either.
	mustApply(t, st, c.opts(), simple("globex"))
	g := simple("globex")
	g.Domains = append(g.Domains, "acme.example")
	_, err := st.ApplyTenants(ctx(t), []tenants.Tenant{g}, c.opts())
	wantErrIs(t, err, tenants.ErrConflict, "existing tenant claiming another's domain")
	if got := mustTenant(t, st, "globex"); !slices.Equal(got.Domains, []string{"globex.example"}) {
		t.Errorf("globex domains = %v after a refused update", got.Domains)
	}
	s := mustSnapshot(t, st)
	if got := s.ByDomain("acme.example"); got == nil || got.ID != "acme" {
		t.Errorf("acme.example now belongs to %v", got)
	}
}

func testApplyMovesDomainWithinBatch(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	// acme gives acme.example to globex; in either order within the batch.
	for _, order := range []string{"giver first", "taker first"} {
		t.Run(order, func(t *testing.T) {
			giver, taker := simple("acme"), simple("globex")
			giver.Domains, giver.EmailDomains = nil, nil
			taker.Domains = []string{"globex.example", "acme.example"}
			taker.EmailDomains = []string{"globex.example", "acme.example"}
			batch := []tenants.Tenant{giver, taker}
			if order == "taker first" {
				mustApply(t, st, c.opts(), simple("acme"), simple("globex")) // reset
				batch = []tenants.Tenant{taker, giver}
			}
			mustApply(t, st, c.opts(), batch...)
			s := mustSnapshot(t, st)
			if got := s.ByDomain("acme.example"); got == nil || got.ID != "globex" {
				t.Errorf("ByDomain(acme.example) = %v, want globex", got)
			}
			if got := s.ByEmailDomain("acme.example"); got == nil || got.ID != "globex" {
				t.Errorf("ByEmailDomain(acme.example) = %v, want globex", got)
			}
		})
	}
}

func testApplyCallbackFailures(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	boom := errors.New("boom")
	withSecret := simple("globex")
	withSecret.Methods = []tenants.Method{{Type: "oidc", Config: obj("issuer", "https://idp.example", "clientID", "c", "clientSecret", "s3cr3t-value")}}

	for _, tc := range []struct {
		name  string
		batch []tenants.Tenant
		opts  func(tenants.ApplyOptions) tenants.ApplyOptions
	}{
		{"NewKey fails", []tenants.Tenant{simple("globex")}, func(o tenants.ApplyOptions) tenants.ApplyOptions {
			o.NewKey = func(string) (tenants.SigningKey, error) { return tenants.SigningKey{}, boom }
			return o
		}},
		{"SealMethod fails", []tenants.Tenant{withSecret}, func(o tenants.ApplyOptions) tenants.ApplyOptions {
			o.SealMethod = func(tenants.Method, *tenants.Method, string) (tenants.Method, error) { return tenants.Method{}, boom }
			return o
		}},
		{"SealMethod missing", []tenants.Tenant{withSecret}, func(o tenants.ApplyOptions) tenants.ApplyOptions {
			o.SealMethod = nil
			return o
		}},
		{"NewKey missing", []tenants.Tenant{simple("globex")}, func(o tenants.ApplyOptions) tenants.ApplyOptions {
			o.NewKey = nil
			return o
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			renamed := simple("acme")
			renamed.Name = "should not stick"
			_, err := st.ApplyTenants(ctx(t), append([]tenants.Tenant{renamed}, tc.batch...), tc.opts(c.opts()))
			if err == nil {
				t.Fatal("ApplyTenants succeeded")
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error %q echoes the client secret", err)
			}
			if ids := tenantIDs(t, st); !slices.Equal(ids, []string{"acme"}) {
				t.Errorf("tenants = %v after a failed apply", ids)
			}
			if got := mustTenant(t, st, "acme"); got.Name != "" {
				t.Errorf("acme renamed to %q by a failed apply", got.Name)
			}
		})
	}
	// Updating tenants without secrets needs no crypto at all.
	mustApply(t, st, tenants.ApplyOptions{}, simple("acme"))
}

// testApplyCheckChange: CheckChange sees each existing tenant as stored
// and as applied (never a new one); its warnings come back in that
// tenant's ApplyResult, and its error, named after the tenant and the
// field, refuses the whole batch.
func testApplyCheckChange(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	refuse := errors.New("no")
	check := func(stored, next *tenants.Tenant) ([]string, error) {
		switch {
		case next.ID != "acme" || stored.ID != "acme":
			return nil, fmt.Errorf("CheckChange called with stored %q, next %q", stored.ID, next.ID)
		case next.Name == "refused":
			return nil, &tenants.FieldError{Field: "methods[0].x", Err: refuse}
		}
		return []string{"was " + stored.Name + ", now " + next.Name}, nil
	}
	opts := c.opts()
	opts.CheckChange = check

	renamed := simple("acme")
	renamed.Name = "refused"
	_, err := st.ApplyTenants(ctx(t), []tenants.Tenant{simple("globex"), renamed}, opts)
	if !errors.Is(err, refuse) || !strings.Contains(err.Error(), `tenant "acme": methods[0].x: no`) {
		t.Errorf("refused apply = %v, want the tenant and field named", err)
	}
	if ids := tenantIDs(t, st); !slices.Equal(ids, []string{"acme"}) {
		t.Errorf("tenants = %v after a refused apply", ids)
	}

	renamed.Name = "Acme"
	res, err := st.ApplyTenants(ctx(t), []tenants.Tenant{simple("globex"), renamed}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || len(res[0].Warnings) != 0 || !slices.Equal(res[1].Warnings, []string{"was , now Acme"}) {
		t.Errorf("ApplyTenants = %+v, want acme's warning only", res)
	}
}

func testClientSecrets(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), acme())
	got := mustTenant(t, st, "acme")
	id := got.InternalID
	wantSealed := map[int][]byte{1: fakeSeal([]byte("oidc-secret"), id), 3: fakeSeal([]byte("gh-secret"), id), 4: fakeSeal([]byte("gen-secret"), id)}
	check := func(what string, got tenants.Tenant, want map[int][]byte) {
		t.Helper()
		for i, m := range got.Methods {
			if bytes.Contains(m.Config, []byte("clientSecret")) {
				t.Errorf("%s: methods[%d] returns a plaintext client secret", what, i)
			}
			if !bytes.Equal(m.Sealed, want[i]) {
				t.Errorf("%s: methods[%d].Sealed = %q, want %q", what, i, m.Sealed, want[i])
			}
		}
	}
	check("after create", got, wantSealed)
	all, err := st.Tenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	check("Tenants()", all[0], wantSealed)
	check("Snapshot", *mustSnapshot(t, st).BySlug("acme"), wantSealed)

	// Re-applying what `tenants get` prints (no secrets) keeps them.
	printed := config(got)
	mustApply(t, st, c.opts(), printed)
	check("re-apply without secrets", mustTenant(t, st, "acme"), wantSealed)

	// A new plaintext replaces the sealed secret at that position only.
	rotated := config(got)
	rotated.Methods[1].Config = withMember(rotated.Methods[1].Config, "clientSecret", "rotated")
	mustApply(t, st, c.opts(), rotated)
	wantSealed[1] = fakeSeal([]byte("rotated"), id)
	check("rotate one secret", mustTenant(t, st, "acme"), wantSealed)

	// A method of another type at that position does not inherit the secret;
	// nor does a method that moved to another position.
	reordered := config(got)
	reordered.Methods = []tenants.Method{
		{Type: "social", Config: obj("clientID", "gh", "clientSecret", "new-gh", "provider", "github")},
		{Type: tenants.MethodPassword},
		{Type: tenants.MethodSAML, Config: obj("idpMetadataURL", "https://idp.acme.example/saml/metadata")},
		{Type: "oidc", Config: obj("issuer", "https://idp.acme.example", "clientID", "tg")},
	}
	mustApply(t, st, c.opts(), reordered)
	check("methods reordered", mustTenant(t, st, "acme"), map[int][]byte{0: fakeSeal([]byte("new-gh"), id)})

	// Sealed secrets in the input are not trusted: only SealMethod decides.
	forged := config(got)
	forged.Methods = forged.Methods[:3]
	forged.Methods[1].Sealed = []byte("forged")
	mustApply(t, st, c.opts(), forged)
	check("forged sealed secret", mustTenant(t, st, "acme"), map[int][]byte{})
}

func testDeleteTenant(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	old := mustTenant(t, st, "acme")
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@acme.example", Roles: []string{"admin"}, PasswordHash: "hash-ann"})
	mustAddMember(t, st, "globex", tenants.NewMember{Email: "ann@acme.example", Roles: []string{"viewer"}})
	ann := mustUser(t, st, "ann@acme.example")

	if err := st.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	_, err := st.Tenant(ctx(t), "acme")
	wantErrIs(t, err, tenants.ErrNotFound, "Tenant after delete")
	_, err = st.Members(ctx(t), "acme")
	wantErrIs(t, err, tenants.ErrNotFound, "Members after delete")
	_, err = st.Membership(ctx(t), old.InternalID, ann.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "Membership after delete")
	err = st.DeleteTenant(ctx(t), "acme")
	wantErrIs(t, err, tenants.ErrNotFound, "second DeleteTenant")
	if ids := tenantIDs(t, st); !slices.Equal(ids, []string{"globex"}) {
		t.Errorf("tenants = %v, want globex", ids)
	}
	s := mustSnapshot(t, st)
	if s.ByInternalID(old.InternalID) != nil || s.BySlug("acme") != nil || s.ByDomain("acme.example") != nil || s.ByEmailDomain("acme.example") != nil {
		t.Error("the snapshot still knows the deleted tenant")
	}
	// The user stays, with the membership elsewhere.
	if u := mustUser(t, st, "ann@acme.example"); u.ID != ann.ID || u.PasswordHash != "hash-ann" {
		t.Errorf("user changed by DeleteTenant: %+v", u)
	}
	if roles, err := st.Membership(ctx(t), mustTenant(t, st, "globex").InternalID, ann.ID); err != nil || !slices.Equal(roles, []string{"viewer"}) {
		t.Errorf("globex membership = %v, %v", roles, err)
	}

	// The slug and its domains can be registered again, as a new tenant.
	res := mustApply(t, st, c.opts(), simple("acme"))
	if !res[0].Created {
		t.Error("re-created tenant reported as updated")
	}
	again := mustTenant(t, st, "acme")
	if again.InternalID == old.InternalID {
		t.Fatalf("re-created tenant reuses internal id %q", old.InternalID)
	}
	if calls := c.newKeyCalls(); calls[len(calls)-1] != again.InternalID {
		t.Errorf("NewKey called with %v, want the new internal id last", calls)
	}
	if members, err := st.Members(ctx(t), "acme"); err != nil || len(members) != 0 {
		t.Errorf("re-created tenant inherits members %v (err %v)", members, err)
	}
	_, err = st.Membership(ctx(t), again.InternalID, ann.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "membership in the re-created tenant")
}

func testAddMember(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acmeID := mustTenant(t, st, "acme").InternalID
	globexID := mustTenant(t, st, "globex").InternalID

	_, err := st.AddMember(ctx(t), "acme", tenants.NewMember{Email: "ann@acme.example", Roles: []string{"admin"}})
	wantErrIs(t, err, tenants.ErrPasswordRequired, "new user without a password")
	_, err = st.UserByEmail(ctx(t), "ann@acme.example")
	wantErrIs(t, err, tenants.ErrNotFound, "user after a refused AddMember")

	_, err = st.AddMember(ctx(t), "nope", tenants.NewMember{Email: "ann@acme.example", PasswordHash: "h"})
	wantErrIs(t, err, tenants.ErrNotFound, "AddMember to a missing tenant")
	_, err = st.UserByEmail(ctx(t), "ann@acme.example")
	wantErrIs(t, err, tenants.ErrNotFound, "user after AddMember to a missing tenant")

	if !mustAddMember(t, st, "acme", tenants.NewMember{Email: "Ann@ACME.example", Roles: []string{"admin"}, PasswordHash: "hash-1"}) {
		t.Error("first AddMember did not report a created user")
	}
	ann := mustUser(t, st, "ANN@acme.EXAMPLE")
	if ann.Email != "ann@acme.example" || ann.PasswordHash != "hash-1" || ann.ID == "" || ann.Created.IsZero() {
		t.Errorf("created user = %+v", ann)
	}

	// An existing user: not created again, password untouched, whatever the
	// case of the email.
	if mustAddMember(t, st, "globex", tenants.NewMember{Email: "ann@Acme.Example", Roles: []string{"viewer"}, PasswordHash: "hash-2"}) {
		t.Error("AddMember of an existing user reported a created user")
	}
	if mustAddMember(t, st, "globex", tenants.NewMember{Email: "ann@acme.example", Roles: []string{"viewer"}}) {
		t.Error("AddMember without password for an existing user reported a created user")
	}
	if u := mustUser(t, st, "ann@acme.example"); u.ID != ann.ID || u.PasswordHash != "hash-1" {
		t.Errorf("existing user changed: %+v, was %+v", u, ann)
	}

	// Roles are replaced, per tenant.
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@acme.example", Roles: []string{"viewer", "billing"}})
	if roles, err := st.Membership(ctx(t), acmeID, ann.ID); err != nil || !slices.Equal(roles, []string{"viewer", "billing"}) {
		t.Errorf("acme roles = %v, %v; want [viewer billing]", roles, err)
	}
	if roles, err := st.Membership(ctx(t), globexID, ann.ID); err != nil || !slices.Equal(roles, []string{"viewer"}) {
		t.Errorf("globex roles = %v, %v; want [viewer]", roles, err)
	}
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@acme.example"})
	if roles, err := st.Membership(ctx(t), acmeID, ann.ID); err != nil || len(roles) != 0 {
		t.Errorf("roles after replacing with none = %v, %v", roles, err)
	}

	_, err = st.Membership(ctx(t), acmeID, "no-such-user")
	wantErrIs(t, err, tenants.ErrNotFound, "Membership of an unknown user")
	_, err = st.Membership(ctx(t), "no-such-tenant", ann.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "Membership in an unknown tenant")
	_, err = st.Membership(ctx(t), "acme", ann.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "Membership named by slug instead of internal id")
	_, err = st.UserByEmail(ctx(t), "bob@acme.example")
	wantErrIs(t, err, tenants.ErrNotFound, "UserByEmail of an unknown email")
}

func testMembersSorted(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	for _, e := range []string{"carol@x.example", "alice@x.example", "Bob@x.example"} {
		mustAddMember(t, st, "acme", tenants.NewMember{Email: e, Roles: []string{"r-" + strings.ToLower(e[:1])}, PasswordHash: "h"})
	}
	mustAddMember(t, st, "globex", tenants.NewMember{Email: "dave@x.example", PasswordHash: "h"})
	ms, err := st.Members(ctx(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.User.Email+"="+strings.Join(m.Roles, ","))
		if m.User.ID == "" || m.User.PasswordHash != "h" {
			t.Errorf("member user = %+v", m.User)
		}
	}
	if want := []string{"alice@x.example=r-a", "bob@x.example=r-b", "carol@x.example=r-c"}; !slices.Equal(got, want) {
		t.Errorf("Members = %v, want %v", got, want)
	}
	_, err = st.Members(ctx(t), "nope")
	wantErrIs(t, err, tenants.ErrNotFound, "Members of a missing tenant")
}

func testRemoveMember(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acmeID := mustTenant(t, st, "acme").InternalID
	globexID := mustTenant(t, st, "globex").InternalID
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@x.example", Roles: []string{"admin"}, PasswordHash: "h"})
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "bob@x.example", PasswordHash: "h"})
	mustAddMember(t, st, "globex", tenants.NewMember{Email: "ann@x.example"})
	ann := mustUser(t, st, "ann@x.example")

	now := time.Now()
	rev := tenants.Revocation{Key: "ignored: the store sets it", NotBefore: now, Expires: now.Add(time.Hour)}
	if err := st.RemoveMember(ctx(t), "acme", "ANN@x.example", rev); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	s := mustSnapshot(t, st)
	if !s.Revoked(acmeID, ann.ID, "sid-1", now.Add(-time.Minute)) {
		t.Error("a session issued before the removal still verifies")
	}
	if !s.Revoked(acmeID, ann.ID, "sid-1", now) {
		t.Error("a session issued at NotBefore still verifies")
	}
	if s.Revoked(acmeID, ann.ID, "sid-2", now.Add(time.Second)) {
		t.Error("a session issued after NotBefore is revoked")
	}
	if s.Revoked(globexID, ann.ID, "sid-3", now.Add(-time.Minute)) {
		t.Error("removal from acme revoked ann's globex sessions")
	}
	_, err := st.Membership(ctx(t), acmeID, ann.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "Membership after RemoveMember")
	ms, err := st.Members(ctx(t), "acme")
	if err != nil || len(ms) != 1 || ms[0].User.Email != "bob@x.example" {
		t.Errorf("acme members = %+v, %v; want only bob", ms, err)
	}
	if _, err := st.Membership(ctx(t), globexID, ann.ID); err != nil {
		t.Errorf("removal from acme removed the globex membership: %v", err)
	}
	if u := mustUser(t, st, "ann@x.example"); u.ID != ann.ID {
		t.Error("RemoveMember deleted the user")
	}

	for _, tc := range []struct{ name, tenant, email string }{
		{"removed twice", "acme", "ann@x.example"},
		{"unknown email", "acme", "nobody@x.example"},
		{"unknown tenant", "nope", "bob@x.example"},
		{"member elsewhere only", "globex", "bob@x.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := st.RemoveMember(ctx(t), tc.tenant, tc.email, rev)
			wantErrIs(t, err, tenants.ErrNotFound, tc.name)
		})
	}
	// A refused removal records no revocation.
	bob := mustUser(t, st, "bob@x.example")
	if mustSnapshot(t, st).Revoked(globexID, bob.ID, "sid", now.Add(-time.Minute)) {
		t.Error("a refused RemoveMember revoked sessions")
	}
}

func testRevoke(t *testing.T, st tenants.Store) {
	now := time.Now()
	live := tenants.Revocation{Key: tenants.SessionRevocationKey("sid-live"), NotBefore: now, Expires: now.Add(time.Hour)}
	expired := tenants.Revocation{Key: tenants.SessionRevocationKey("sid-old"), NotBefore: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}
	for _, r := range []tenants.Revocation{live, expired} {
		if err := st.Revoke(ctx(t), r); err != nil {
			t.Fatalf("Revoke(%s): %v", r.Key, err)
		}
	}
	s := mustSnapshot(t, st)
	if !s.Revoked("t", "u", "sid-live", now) {
		t.Error("revoked session still verifies")
	}
	if s.Revoked("t", "u", "sid-old", now) {
		t.Error("a revocation past its Expires is still in the snapshot")
	}
	if s.Revoked("t", "u", "sid-other", now) {
		t.Error("an unrelated session is revoked")
	}

	// Replacing by key: a user revocation moved later covers more sessions.
	userKey := tenants.UserRevocationKey("tid", "uid")
	if err := st.Revoke(ctx(t), tenants.Revocation{Key: userKey, NotBefore: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if mustSnapshot(t, st).Revoked("tid", "uid", "s", now.Add(time.Minute)) {
		t.Error("session after NotBefore revoked")
	}
	if err := st.Revoke(ctx(t), tenants.Revocation{Key: userKey, NotBefore: now.Add(2 * time.Minute), Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s = mustSnapshot(t, st)
	if !s.Revoked("tid", "uid", "s", now.Add(time.Minute)) {
		t.Error("replacing a revocation did not take effect")
	}
	// Later writes keep live revocations.
	mustApply(t, st, (&crypto{}).opts(), simple("acme"))
	if !mustSnapshot(t, st).Revoked("t", "u", "sid-live", now) {
		t.Error("a live revocation was dropped by a later write")
	}

	if err := st.Revoke(ctx(t), tenants.Revocation{Expires: now.Add(time.Hour)}); err == nil {
		t.Error("Revoke without a key succeeded")
	}
}

func testSnapshot(t *testing.T, st tenants.Store) {
	empty := mustSnapshot(t, st)
	if empty.Len() != 0 {
		t.Fatalf("empty store snapshot has %d tenants", empty.Len())
	}
	c := &crypto{}
	mustApply(t, st, c.opts(), acme(), simple("globex"))
	want := mustTenant(t, st, "acme")
	s := mustSnapshot(t, st)
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
	for name, got := range map[string]*tenants.Tenant{
		"BySlug":        s.BySlug("acme"),
		"ByInternalID":  s.ByInternalID(want.InternalID),
		"ByDomain":      s.ByDomain("login.acme.example"),
		"ByEmailDomain": s.ByEmailDomain("acme.example"),
	} {
		if got == nil || !reflect.DeepEqual(normTenant(*got), normTenant(want)) {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	if len(s.BySlug("acme").Keys) != 1 {
		t.Error("snapshot tenant has no signing key")
	}
	// A snapshot is a point in time.
	if err := st.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if s.BySlug("acme") == nil {
		t.Error("an existing snapshot changed after a write")
	}
}

func testSnapshotConsistent(t *testing.T, st tenants.Store) {
	// Tenants are written two at a time; a snapshot that saw half a write
	// would hold an odd number.
	c := &crypto{}
	const rounds = 12
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range rounds {
			if _, err := st.ApplyTenants(ctx(t), []tenants.Tenant{simple(fmt.Sprintf("a%d", i)), simple(fmt.Sprintf("b%d", i))}, c.opts()); err != nil {
				t.Errorf("ApplyTenants: %v", err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for range rounds {
				s, err := st.Snapshot(ctx(t))
				if err != nil {
					t.Errorf("Snapshot: %v", err)
					return
				}
				if s.Len()%2 != 0 {
					t.Errorf("snapshot holds %d tenants: saw half a write", s.Len())
					return
				}
			}
		})
	}
	wg.Wait()
}

// waitFor fails the test if ch has not received (or closed) in time.
func waitFor(t *testing.T, ch <-chan struct{}, what string) (closed bool) {
	t.Helper()
	select {
	case _, ok := <-ch:
		return !ok
	case <-time.After(5 * time.Second):
		t.Fatalf("no notification after %s", what)
		return false
	}
}

func testWatch(t *testing.T, st tenants.Store) {
	c := &crypto{}
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	ch := st.Watch(wctx)
	select {
	case <-ch:
		t.Fatal("notification before any write")
	default:
	}
	now := time.Now()
	writes := []struct {
		name string
		do   func() error
	}{
		{"ApplyTenants", func() error {
			_, err := st.ApplyTenants(ctx(t), []tenants.Tenant{simple("acme")}, c.opts())
			return err
		}},
		{"AddMember", func() error {
			_, err := st.AddMember(ctx(t), "acme", tenants.NewMember{Email: "a@x.example", PasswordHash: "h"})
			return err
		}},
		{"RemoveMember", func() error {
			return st.RemoveMember(ctx(t), "acme", "a@x.example", tenants.Revocation{NotBefore: now, Expires: now.Add(time.Hour)})
		}},
		{"Revoke", func() error {
			return st.Revoke(ctx(t), tenants.Revocation{Key: tenants.SessionRevocationKey("s"), NotBefore: now, Expires: now.Add(time.Hour)})
		}},
		{"DeleteTenant", func() error { return st.DeleteTenant(ctx(t), "acme") }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if waitFor(t, ch, w.name) {
			t.Fatalf("channel closed after %s", w.name)
		}
	}

	// Coalesced: many writes leave at most one notification pending, and
	// a reader that is not reading never blocks a writer.
	for i := range 5 {
		if err := st.Revoke(ctx(t), tenants.Revocation{Key: tenants.SessionRevocationKey(fmt.Sprint(i)), Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ch); n != 1 {
		t.Errorf("%d notifications pending after 5 writes, want 1", n)
	}
	waitFor(t, ch, "coalesced writes")

	// A failed write is not a change.
	if err := st.DeleteTenant(ctx(t), "nope"); err == nil {
		t.Fatal("DeleteTenant(nope) succeeded")
	}
	if n := len(ch); n != 0 {
		t.Error("a failed write notified the watchers")
	}

	// Several watchers each get their own notification.
	other := st.Watch(wctx)
	if _, err := st.ApplyTenants(ctx(t), []tenants.Tenant{simple("globex")}, c.opts()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "write with two watchers")
	waitFor(t, other, "write with two watchers")

	cancel()
	deadline := time.After(5 * time.Second)
	for _, w := range []<-chan struct{}{ch, other} {
		for closed := false; !closed; {
			select {
			case _, ok := <-w:
				closed = !ok
			case <-deadline:
				t.Fatal("Watch channel not closed after its context ended")
			}
		}
	}
	done, cancelDone := context.WithCancel(ctx(t))
	cancelDone()
	if !waitFor(t, st.Watch(done), "Watch with an ended context") {
		t.Error("Watch with an ended context delivered a value instead of closing")
	}
}

func testConcurrentDomainClaims(t *testing.T, st tenants.Store) {
	c := &crypto{}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			x := tenants.Tenant{ID: fmt.Sprintf("t%d", i), Domains: []string{"shared.example"}, EmailDomains: []string{fmt.Sprintf("t%d.example", i), "shared-mail.example"}}
			_, errs[i] = st.ApplyTenants(ctx(t), []tenants.Tenant{x}, c.opts())
		})
	}
	wg.Wait()
	var winners int
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case errors.Is(err, tenants.ErrConflict):
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d writers claimed the same domain, want exactly 1", winners)
	}
	all, err := st.Tenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("%d tenants stored, want 1", len(all))
	}
}

func testConcurrentUserCreation(t *testing.T, st tenants.Store) {
	c := &crypto{}
	const n = 8
	var batch []tenants.Tenant
	for i := range n {
		batch = append(batch, simple(fmt.Sprintf("t%d", i)))
	}
	mustApply(t, st, c.opts(), batch...)
	createdFlags := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			createdFlags[i], err = st.AddMember(ctx(t), fmt.Sprintf("t%d", i), tenants.NewMember{Email: []string{"Same@X.example", "same@x.EXAMPLE"}[i%2], PasswordHash: fmt.Sprintf("hash-%d", i)})
			if err != nil {
				t.Errorf("AddMember %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	var creators int
	for _, c := range createdFlags {
		if c {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d AddMember calls created the user, want exactly 1", creators)
	}
	u := mustUser(t, st, "same@x.example")
	for i := range n {
		ms, err := st.Members(ctx(t), fmt.Sprintf("t%d", i))
		if err != nil || len(ms) != 1 || ms[0].User.ID != u.ID {
			t.Errorf("t%d members = %+v, %v; want the one user %s", i, ms, err, u.ID)
		}
	}
}

func testCloseTwice(t *testing.T, st tenants.Store) {
	if err := st.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := st.Tenants(context.Background()); err == nil {
		t.Error("Tenants after Close succeeded")
	}
}
