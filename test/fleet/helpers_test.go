package fleet_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// openWith opens a store under prefix p with options changed by edit.
func (o *opener) openWith(t *testing.T, p string, edit func(*etcdstore.Options)) *etcdstore.Store {
	t.Helper()
	opts := o.opts
	opts.Prefix = p
	edit(&opts)
	st, err := etcdstore.Open(opts)
	if err != nil {
		t.Fatalf("etcdstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// testNow is the fixed clock of the tests that compare stored bytes.
var testNow = time.Now().UTC().Truncate(time.Second)

func fixedClock() time.Time { return testNow }

// fixedRand is a source of ids that gives every store the same ones.
func fixedRand() *rand.ChaCha8 { return rand.NewChaCha8([32]byte{1}) }

// testOpts is fake cryptography that gives the same bytes every time.
var testOpts = tenants.ApplyOptions{
	NewKey: func(id string) (tenants.SigningKey, error) {
		return tenants.SigningKey{KID: "k-" + id, Alg: "EdDSA", Public: []byte("pub-" + id), SealedPrivate: []byte("sealed-" + id), Created: testNow}, nil
	},
	NewSAMLKey: func(id string) (tenants.SAMLKey, error) {
		return tenants.SAMLKey{Certificate: []byte("cert-" + id), SealedPrivate: []byte("sealed-saml-" + id), Created: testNow}, nil
	},
	SealMethod: func(m tenants.Method, prev *tenants.Method, id string) (tenants.Method, error) {
		var cfg map[string]any
		if len(m.Config) == 0 {
			return m, nil
		}
		if err := json.Unmarshal(m.Config, &cfg); err != nil {
			return tenants.Method{}, err
		}
		if secret, ok := cfg["clientSecret"].(string); ok {
			m.Sealed = []byte("sealed:" + id + ":" + secret)
			delete(cfg, "clientSecret")
		}
		var err error
		m.Config, err = json.Marshal(cfg)
		return m, err
	},
	Now: fixedClock,
}

// populate writes one of everything a store keeps, the same way every
// time.
func populate(t *testing.T, st tenants.Store) {
	t.Helper()
	ctx := t.Context()
	acme := tenants.Tenant{
		ID: "acme", Name: "Acme", Domains: []string{"login.acme.example"}, EmailDomains: []string{"acme.example"},
		Status: tenants.StatusActive,
		Methods: []tenants.Method{
			{Type: tenants.MethodPassword},
			{Type: "oidc", Config: json.RawMessage(`{"issuer":"https://idp.example","clientID":"tg","clientSecret":"s3cret"}`)},
			{Type: tenants.MethodSAML, Config: json.RawMessage(`{"idpMetadataURL":"https://idp.example/md"}`)},
		},
		Roles: map[string]tenants.Role{"admin": {Permissions: []string{"*"}}},
		Rules: []tenants.Rule{{Path: "/public/", Access: "anonymous"}},
	}
	if _, err := st.ApplyTenants(ctx, []tenants.Tenant{acme, {ID: "globex"}}, testOpts); err != nil {
		t.Fatal(err)
	}
	a, err := st.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []tenants.NewMember{
		{Email: "Ann@X.example", Roles: []string{"admin"}, PasswordHash: "hash-ann"},
		{Email: "bob@x.example", Roles: []string{"member"}, PasswordHash: "hash-bob"},
	} {
		if _, err := st.AddMember(ctx, "acme", m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AddMember(ctx, "globex", tenants.NewMember{Email: "ann@x.example"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertExternalUser(ctx, a.InternalID, tenants.ExternalIdentity{
		Method: "saml#2", Issuer: "https://idp.example", Subject: "s1", Email: "sso@x.example", Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(24 * time.Hour)
	if err := st.Revoke(ctx, tenants.Revocation{Key: tenants.SessionRevocationKey("sid-1"), NotBefore: testNow, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveMember(ctx, "acme", "bob@x.example", tenants.Revocation{NotBefore: testNow, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := st.UseAssertionID(ctx, a.InternalID, "_assertion-1", exp); err != nil {
		t.Fatal(err)
	}
	ann, err := st.UserByEmail(ctx, "ann@x.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSession(ctx, tenants.Session{TenantInternalID: a.InternalID, UserID: ann.ID, SID: "sid-2",
		Issued: testNow, Expires: exp, Device: "Firefox on Linux", Address: "192.0.2.1", Method: "password"},
		tenants.Revocation{NotBefore: testNow, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddPasskey(ctx, a.InternalID, ann.ID, tenants.Passkey{ID: []byte("cred-1"), PublicKey: []byte("cose"),
		Transports: []string{"internal"}, Name: "laptop", Created: testNow}); err != nil {
		t.Fatal(err)
	}
	// Audit events, dated by the fixed clock so both backends write the
	// very same bytes: two chained for acme, one for globex.
	var events []tenants.AuditEvent
	for _, e := range []struct{ tenant, event string }{{"acme", tenants.AuditSignIn}, {"acme", tenants.AuditSignOut}, {"globex", tenants.AuditSignIn}} {
		events = append(events, tenants.AuditEvent{Time: testNow, Tenant: e.tenant, Event: e.event, Actor: "u1", Outcome: tenants.OutcomeSuccess})
	}
	if _, err := st.(tenants.AuditLog).AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
}

// wantAuditIntact fails the test unless acme's audit chain, as populate
// wrote it, holds in st.
func wantAuditIntact(t *testing.T, what string, st tenants.Store) {
	t.Helper()
	v, err := st.(tenants.AuditLog).VerifyAudit(t.Context(), "acme")
	if err != nil || v.Break != nil || v.Events != 2 {
		t.Errorf("%s: acme's audit chain: %+v, %v (break %v), want 2 events intact", what, v, err, v.Break)
	}
}

// boltRecords returns every record of a bbolt file by the name the etcd
// backend gives it ("schema", "<bucket>/<key>"), without bbolt's own
// expiry indexes.
func boltRecords(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if strings.HasSuffix(string(name), "Expiry") {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if string(name) == "meta" {
					out[string(k)] = string(v)
				} else {
					out[string(name)+"/"+string(k)] = string(v)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// etcdRecords returns every key under prefix p, without the prefix.
func etcdRecords(t *testing.T, cli *clientv3.Client, p string) map[string]string {
	t.Helper()
	resp, err := cli.Get(t.Context(), p, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), p)] = string(kv.Value)
	}
	return out
}

func mustApplySimple(t *testing.T, st tenants.Store, id string) {
	t.Helper()
	if _, err := st.ApplyTenants(t.Context(), []tenants.Tenant{{ID: id}}, testOpts); err != nil {
		t.Fatal(err)
	}
}

func mustInternalID(t *testing.T, st tenants.Store, id string) string {
	t.Helper()
	tn, err := st.Tenant(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn.InternalID
}

func wantErrIs(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: %v, want an error wrapping %v", what, err, target)
	}
}
