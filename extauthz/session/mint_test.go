package session

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

func TestMintRefuses(t *testing.T) {
	f := newFixture(t)
	good := Claims{Subject: "u-1", Method: MethodPassword}
	suspended := f.acme
	suspended.Status = tenants.StatusSuspended
	noKeys := f.acme
	noKeys.Keys = nil
	noID := f.acme
	noID.InternalID = ""
	// acme's key record copied into globex: sealed for acme, it must not
	// open for globex.
	stolen := f.globex
	stolen.Keys = []tenants.SigningKey{f.acme.Keys[0]}
	otherMaster, _ := seal.NewSealer(bytes.Repeat([]byte{9}, seal.MasterKeySize))
	mismatched := f.acme
	mismatched.Keys = []tenants.SigningKey{f.acme.Keys[0]}
	mismatched.Keys[0].Public = f.globex.Keys[0].Public
	swapped := f.acme
	swapped.Keys = []tenants.SigningKey{f.acme.Keys[0]}
	otherEd, _ := x509.MarshalPKIXPublicKey(ed25519.NewKeyFromSeed(make([]byte, 32)).Public())
	swapped.Keys[0].Public = otherEd
	badAlg := f.acme
	badAlg.Keys = []tenants.SigningKey{f.acme.Keys[0]}
	badAlg.Keys[0].Alg = "HS256"

	cases := []struct {
		name   string
		m      *Minter
		t      *tenants.Tenant
		c      Claims
		substr string
	}{
		{"nil tenant", f.minter, nil, good, "internal id"},
		{"no internal id", f.minter, &noID, good, "internal id"},
		{"suspended", f.minter, &suspended, good, "suspended"},
		{"no keys", f.minter, &noKeys, good, "no signing key"},
		{"empty subject", f.minter, &f.acme, Claims{Method: MethodPassword}, "empty subject"},
		{"no method", f.minter, &f.acme, Claims{Subject: "u"}, "sign-in method"},
		{"unknown method", f.minter, &f.acme, Claims{Subject: "u", Method: "magic"}, "sign-in method"},
		{"ttl over max", &Minter{Sealer: f.sealer, TTL: MaxTTL + time.Second}, &f.acme, good, "ttl"},
		{"negative ttl", &Minter{Sealer: f.sealer, TTL: -time.Hour}, &f.acme, good, "ttl"},
		{"no sealer", &Minter{}, &f.acme, good, "no sealer"},
		{"key sealed for another tenant", f.minter, &stolen, good, "cannot open"},
		{"another master key", &Minter{Sealer: otherMaster}, &f.acme, good, "cannot open"},
		{"private key does not match public key", &Minter{Sealer: f.sealer}, &mismatched, good, "does not fit"},
		{"private key of another Ed25519 key", &Minter{Sealer: f.sealer}, &swapped, good, "does not match"},
		{"unsupported algorithm", &Minter{Sealer: f.sealer}, &badAlg, good, "unsupported algorithm"},
		{"broken randomness", &Minter{Sealer: f.sealer, Rand: iotest.ErrReader(io.ErrUnexpectedEOF)}, &f.acme, good, "session id"},
		{"too many roles", f.minter, &f.acme, Claims{Subject: "u", Method: MethodPassword, Roles: manyRoles(1000)}, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, _, err := c.m.Mint(c.t, c.c)
			if err == nil {
				t.Fatal("minted")
			}
			if tok != "" {
				t.Error("token returned with an error")
			}
			if !strings.Contains(err.Error(), c.substr) {
				t.Errorf("error %q does not say %q", err, c.substr)
			}
		})
	}
	if _, _, err := f.minter.Mint(&suspended, good); !errors.Is(err, ErrTenantSuspended) {
		t.Errorf("suspended: %v does not wrap ErrTenantSuspended", err)
	}
}

func manyRoles(n int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = "role-with-a-long-name-" + strings.Repeat("x", 3) + string(rune('a'+i%26)) + big.NewInt(int64(i)).String()
	}
	return r
}

func TestMintDefaults(t *testing.T) {
	f := newFixture(t)
	m := &Minter{Sealer: f.sealer, Now: f.clock}
	tok, c, err := m.Mint(&f.acme, Claims{Subject: "u-1", Method: MethodSAML, SID: "given-sid"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Expires.Sub(c.IssuedAt) != DefaultTTL {
		t.Errorf("lifetime %s, want %s", c.Expires.Sub(c.IssuedAt), DefaultTTL)
	}
	if c.SID != "given-sid" {
		t.Errorf("given SID replaced by %q", c.SID)
	}
	if c.Roles != nil {
		t.Errorf("roles %v, want none", c.Roles)
	}
	hdr, payload := decodeParts(t, tok)
	if len(hdr) != 3 || hdr["typ"] != TokenType || hdr["alg"] != AlgEdDSA || hdr["kid"] != f.acme.Keys[0].KID {
		t.Errorf("header %v", hdr)
	}
	for k, want := range map[string]any{
		"iss": Issuer("iacme"), "tid": "iacme", "tenant": "acme", "sub": "u-1", "sid": "given-sid", "method": MethodSAML,
	} {
		if payload[k] != want {
			t.Errorf("claim %s = %v, want %v", k, payload[k], want)
		}
	}
	if aud, _ := payload["aud"].([]any); len(aud) != 1 || aud[0] != Audience("iacme") {
		t.Errorf("aud %v", payload["aud"])
	}
}

// TestMintSIDs: session ids are fresh per sign-in, 128 bits, URL-safe.
func TestMintSIDs(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{}
	for range 100 {
		_, c := f.mint(t, &f.acme)
		raw, err := base64.RawURLEncoding.DecodeString(c.SID)
		if err != nil || len(raw) != 16 {
			t.Fatalf("SID %q is not 16 bytes of base64url", c.SID)
		}
		if seen[c.SID] {
			t.Fatalf("SID %q repeated", c.SID)
		}
		seen[c.SID] = true
	}
	sid, err := NewSID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil || sid != "_____________________w" {
		t.Fatalf("NewSID did not use the given reader: %q, %v", sid, err)
	}
	if _, err := NewSID(iotest.ErrReader(io.ErrUnexpectedEOF)); err == nil {
		t.Fatal("NewSID ignored a read error")
	}
}

// TestMintSignsWithNewestKey: during rotation, new sessions use Keys[0] and
// sessions signed with the older key keep verifying.
func TestMintSignsWithNewestKey(t *testing.T) {
	f := newFixture(t)
	oldTok, _ := f.mint(t, &f.acme)
	nk, err := NewSigningKey(f.sealer, "iacme", f.now)
	if err != nil {
		t.Fatal(err)
	}
	rotated := f.acme
	rotated.Keys = []tenants.SigningKey{nk, f.acme.Keys[0]}
	snap := fixtureSnapshot([]tenants.Tenant{rotated}, nil)
	newTok, _ := f.mint(t, &rotated)
	if hdr, _ := decodeParts(t, newTok); hdr["kid"] != nk.KID {
		t.Fatalf("minted with kid %v, want the newest %s", hdr["kid"], nk.KID)
	}
	v := f.verifier()
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.verifyAny(snap, tok); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}
}

// TestMintUnsealsOnce: the private key is unsealed once per (tenant, kid)
// and unsealed again when the key under that kid changes.
func TestMintUnsealsOnce(t *testing.T) {
	f := newFixture(t)
	m := &Minter{Sealer: f.sealer, Now: f.clock}
	a := f.acme
	a.Keys = []tenants.SigningKey{f.acme.Keys[0]}
	if _, _, err := m.Mint(&a, Claims{Subject: "u", Method: MethodPassword}); err != nil {
		t.Fatal(err)
	}
	a.Keys[0].SealedPrivate = []byte("garbage that would not open")
	if _, _, err := m.Mint(&a, Claims{Subject: "u", Method: MethodPassword}); err != nil {
		t.Fatalf("key was unsealed again: %v", err)
	}
	a.Keys[0].Public = f.globex.Keys[0].Public
	if _, _, err := m.Mint(&a, Claims{Subject: "u", Method: MethodPassword}); err == nil {
		t.Fatal("changed key under the same kid served from the cache")
	}
}

func decodeParts(t *testing.T, tok string) (hdr, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%d segments", len(parts))
	}
	for i, dst := range []*map[string]any{&hdr, &payload} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, payload
}

func TestNewSigningKey(t *testing.T) {
	f := newFixture(t)
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			k, err := NewSigningKeyAlg(f.sealer, "iacme", alg, f.now)
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg != alg || k.KID == "" || !k.Created.Equal(f.now) {
				t.Fatalf("key %+v", k)
			}
			pub, err := x509.ParsePKIXPublicKey(k.Public)
			if err != nil {
				t.Fatal(err)
			}
			switch pub.(type) {
			case ed25519.PublicKey:
				if alg != AlgEdDSA {
					t.Fatalf("%s key is %T", alg, pub)
				}
			case *ecdsa.PublicKey:
				if alg != AlgES256 {
					t.Fatalf("%s key is %T", alg, pub)
				}
			}
			if _, err := openPrivateKey(f.sealer, "iacme", &k); err != nil {
				t.Fatalf("does not open for its tenant: %v", err)
			}
			if _, err := openPrivateKey(f.sealer, "iglobex", &k); !errors.Is(err, seal.ErrOpen) {
				t.Fatalf("opened for another tenant: %v", err)
			}
			k2, _ := NewSigningKeyAlg(f.sealer, "iacme", alg, f.now)
			if k2.KID == k.KID {
				t.Fatal("two keys share a kid")
			}
		})
	}
	if _, err := NewSigningKeyAlg(f.sealer, "iacme", "HS256", f.now); err == nil {
		t.Fatal("HS256 key made")
	}
	if _, err := NewSigningKey(f.sealer, "", f.now); err == nil {
		t.Fatal("key made for an empty tenant id")
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t)
	both := f.acme
	both.Keys = []tenants.SigningKey{f.acme.Keys[0], f.globex.Keys[0]}
	b, err := JWKS(&both, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"d"`) {
		t.Fatal("JWKS contains a private member")
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	ed, ec := set.Keys[0], set.Keys[1]
	x, _ := base64.RawURLEncoding.DecodeString(ed["x"])
	if ed["kty"] != "OKP" || ed["crv"] != "Ed25519" || ed["alg"] != AlgEdDSA || ed["use"] != "sig" ||
		ed["kid"] != f.acme.Keys[0].KID || !bytes.Equal(x, f.acmePriv.Public().(ed25519.PublicKey)) || len(ed) != 6 {
		t.Errorf("Ed25519 JWK %v", ed)
	}
	ex, _ := base64.RawURLEncoding.DecodeString(ec["x"])
	ey, _ := base64.RawURLEncoding.DecodeString(ec["y"])
	if ec["kty"] != "EC" || ec["crv"] != "P-256" || ec["alg"] != AlgES256 || ec["use"] != "sig" ||
		ec["kid"] != f.globex.Keys[0].KID || len(ec) != 7 ||
		new(big.Int).SetBytes(ex).Cmp(f.globexPriv.X) != 0 || new(big.Int).SetBytes(ey).Cmp(f.globexPriv.Y) != 0 {
		t.Errorf("EC JWK %v", ec)
	}
	// The kid is the RFC 7638 thumbprint of the key as published.
	for _, j := range set.Keys {
		if tp := (jwk{Kty: j["kty"], Crv: j["crv"], X: j["x"], Y: j["y"]}).thumbprint(); tp != j["kid"] {
			t.Errorf("kid %s is not the thumbprint %s", j["kid"], tp)
		}
	}

	empty, err := JWKS(&tenants.Tenant{ID: "x"}, f.now)
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Errorf("JWKS of a keyless tenant = %s, %v", empty, err)
	}
	broken := f.acme
	broken.Keys = []tenants.SigningKey{{KID: "k", Alg: AlgEdDSA, Public: []byte("junk")}}
	if _, err := JWKS(&broken, f.now); err == nil {
		t.Error("JWKS of an undecodable key")
	}
}

// TestThumbprintRFC7638 checks the thumbprint against RFC 8037 appendix A.3.
func TestThumbprintRFC7638(t *testing.T) {
	j := jwk{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
	if got, want := j.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("thumbprint %s, want %s", got, want)
	}
}

func TestNamesAndCookies(t *testing.T) {
	if Issuer("abc") != "urn:tenantgate:tenant:abc" || Audience("abc") != "urn:tenantgate:session:abc" {
		t.Error("issuer/audience format changed")
	}
	if CookieName(false) != "__Host-tenantgate" || CookieName(true) != "tenantgate" {
		t.Error("cookie names changed")
	}
}

func TestPathCookieName(t *testing.T) {
	tests := []struct{ host, tenant, want string }{
		{CookieName(false), "acme", "__Secure-tenantgate.acme"},
		{CookieName(true), "acme", "tenantgate.acme"},
		{"__Host-tenantgate-csrf", "a-b", "__Secure-tenantgate-csrf.a-b"},
		// Only a leading __Host- is a prefix.
		{"x__Host-y", "acme", "x__Host-y.acme"},
	}
	for _, tc := range tests {
		if got := PathCookieName(tc.host, tc.tenant); got != tc.want {
			t.Errorf("PathCookieName(%q, %q) = %q, want %q", tc.host, tc.tenant, got, tc.want)
		}
		if c := (&http.Cookie{Name: PathCookieName(tc.host, tc.tenant), Value: "v"}); c.Valid() != nil {
			t.Errorf("%q is not a valid cookie name: %v", c.Name, c.Valid())
		}
	}
}

// TestAMR: the amr a sign-in is minted with comes back from VerifyFor and
// decides MFA; an unknown or repeated reference is refused at minting, and
// a session without amr (SSO, or minted before second factors) is not MFA.
func TestAMR(t *testing.T) {
	f := newFixture(t)
	m := &Minter{Sealer: f.sealer, Now: f.clock}
	for _, tc := range []struct {
		amr     []string
		wantMFA bool
	}{
		{nil, false},
		{[]string{AMRPassword}, false},
		{[]string{AMRPassword, AMROTP}, true},
		{[]string{AMRPassword, AMRHardware}, true},
		{[]string{AMRMFA}, true},                      // an SSO provider's MFA, by acr or class
		{[]string{AMRPassword, AMROTP, AMRMFA}, true}, // and with the provider's own amr
	} {
		tok, minted, err := m.Mint(&f.acme, Claims{Subject: "u-1", Method: MethodPassword, AMR: tc.amr})
		if err != nil {
			t.Fatalf("mint amr %v: %v", tc.amr, err)
		}
		_, payload := decodeParts(t, tok)
		if _, has := payload["amr"]; has != (len(tc.amr) > 0) {
			t.Errorf("amr %v: payload amr %v", tc.amr, payload["amr"])
		}
		c, err := f.verifier().VerifyFor(f.snap, &f.acme, tok)
		if err != nil {
			t.Fatalf("verify amr %v: %v", tc.amr, err)
		}
		if !slices.Equal(c.AMR, tc.amr) || !slices.Equal(minted.AMR, tc.amr) || c.MFA() != tc.wantMFA {
			t.Errorf("amr %v: verified %v (minted %v), MFA %v", tc.amr, c.AMR, minted.AMR, c.MFA())
		}
	}
	for _, bad := range [][]string{{"sms"}, {AMRPassword, AMRPassword}, {""}, {AMRMFA, AMRMFA}} {
		if _, _, err := m.Mint(&f.acme, Claims{Subject: "u-1", Method: MethodPassword, AMR: bad}); err == nil {
			t.Errorf("minted a session with amr %q", bad)
		}
	}
}
