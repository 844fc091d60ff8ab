package session

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// fixture is two tenants with known private keys: acme (Ed25519, internal id
// "iacme") and globex (ES256, "iglobex"), a fixed clock, a Minter and a
// snapshot holding both.
type fixture struct {
	now        time.Time
	sealer     *seal.Sealer
	acme       tenants.Tenant
	globex     tenants.Tenant
	acmePriv   ed25519.PrivateKey
	globexPriv *ecdsa.PrivateKey
	minter     *Minter
	snap       *tenants.Snapshot
}

// fixedMasterKey is the master key of every fixture (and of the committed
// fuzz corpus).
const fixedMasterKey = "tenantgate-test-master-key-32by!"

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	s, err := seal.NewSealer([]byte(fixedMasterKey))
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), sealer: s}

	seed := sha256.Sum256([]byte("acme signing key seed, tests only"))
	f.acmePriv = ed25519.NewKeyFromSeed(seed[:])
	ak, err := sealSigningKey(s, "iacme", AlgEdDSA, f.acmePriv, f.now)
	if err != nil {
		tb.Fatal(err)
	}
	f.globexPriv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	gk, err := sealSigningKey(s, "iglobex", AlgES256, f.globexPriv, f.now)
	if err != nil {
		tb.Fatal(err)
	}
	f.acme = tenants.Tenant{ID: "acme", InternalID: "iacme", Keys: []tenants.SigningKey{ak}}
	f.globex = tenants.Tenant{ID: "globex", InternalID: "iglobex", Keys: []tenants.SigningKey{gk}}
	f.minter = &Minter{Sealer: s, TTL: time.Hour, Now: f.clock}
	f.snap = fixtureSnapshot([]tenants.Tenant{f.acme, f.globex}, nil)
	return f
}

// fixtureSnapshot indexes ts and revs like tenants.NewSnapshot, with the
// members the fixture's sessions belong to: u-1 (whose sessions most tests
// mint) and u-42, in acme and globex, holding the roles their tokens carry.
func fixtureSnapshot(ts []tenants.Tenant, revs []tenants.Revocation) *tenants.Snapshot {
	var c tenants.SnapshotChange
	for _, tid := range []string{"iacme", "iglobex"} {
		c.PutMembership(tid, "u-1", []string{"admin", "member"})
		c.PutMembership(tid, "u-42", []string{"admin", "viewer"})
	}
	return tenants.NewSnapshot(ts, revs).With(&c)
}

func (f *fixture) clock() time.Time { return f.now }

// verifier returns a Verifier on the fixture's clock.
func (f *fixture) verifier() *Verifier { return &Verifier{Now: f.clock} }

// mint mints a session for tenant t and fails the test on error.
func (f *fixture) mint(tb testing.TB, t *tenants.Tenant) (string, Claims) {
	tb.Helper()
	tok, c, err := f.minter.Mint(t, Claims{Subject: "u-1", Email: "alice@example.test", Roles: []string{"member", "admin"}, Method: MethodPassword})
	if err != nil {
		tb.Fatal(err)
	}
	return tok, c
}

// acmeHeader is a correct header for a token signed with acme's key.
func (f *fixture) acmeHeader() map[string]any {
	return map[string]any{"alg": AlgEdDSA, "typ": TokenType, "kid": f.acme.Keys[0].KID}
}

// claimsFor is a correct payload for a session of the tenant with internal
// id tid, issued now for an hour.
func (f *fixture) claimsFor(tid string) map[string]any {
	return map[string]any{
		"iss": Issuer(tid), "aud": []string{Audience(tid)}, "sub": "u-1", "sid": "sid-1", "tid": tid,
		"iat": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix(), "method": MethodPassword,
	}
}

// with returns a copy of m with the given changes; a nil value deletes.
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// forge builds a compact JWS by hand, signing the signing input with sign
// (nil: empty signature).
func forge(tb testing.TB, hdr, claims map[string]any, sign func([]byte) []byte) string {
	tb.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := b64(h) + "." + b64(p)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func edSigner(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(priv, in) }
}

func esSigner(tb testing.TB, priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func hsSigner(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}
