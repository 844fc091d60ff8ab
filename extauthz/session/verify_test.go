package session

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	for _, tn := range []*tenants.Tenant{&f.acme, &f.globex} {
		t.Run(tn.ID, func(t *testing.T) {
			tok, minted, err := f.minter.Mint(tn, Claims{
				Subject: "u-42", Email: "bob@example.test", Roles: []string{"viewer", "admin", "viewer"}, Method: MethodOIDC,
				Tenant: "ignored", TenantID: "ignored", IssuedAt: time.Unix(1, 0), Expires: time.Unix(2, 0),
			})
			if err != nil {
				t.Fatal(err)
			}
			want := Claims{
				Subject: "u-42", TenantID: tn.InternalID, Tenant: tn.ID, Email: "bob@example.test",
				Roles: []string{"admin", "viewer"}, SID: minted.SID, Method: MethodOIDC,
				IssuedAt: f.now, Expires: f.now.Add(time.Hour),
			}
			if !reflect.DeepEqual(minted, want) {
				t.Fatalf("minted claims\n got %+v\nwant %+v", minted, want)
			}
			got, err := f.verifier().verifyAny(f.snap, tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("verified claims\n got %+v\nwant %+v", *got, want)
			}
		})
	}
}

// TestVerifyRefuses is security-catalogue.md §2, items 14-20: each forged or
// unacceptable token is refused, for the reason it was built to trigger.
func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	acmeSign := edSigner(f.acmePriv)
	hdr := f.acmeHeader()
	cl := f.claimsFor("iacme")
	otherPriv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pubDER := f.acme.Keys[0].Public
	valid := forge(t, hdr, cl, acmeSign)
	parts := strings.Split(valid, ".")

	type tc struct {
		name  string
		token string
		want  error // nil: accepted
	}
	cases := []tc{
		{"hand-built valid token (control)", valid, nil},
		{"aud as a single string (control)", forge(t, hdr, with(cl, "aud", Audience("iacme")), acmeSign), nil},
		{"aud with another audience too (control)", forge(t, hdr, with(cl, "aud", []string{"x", Audience("iacme")}), acmeSign), nil},
		{"exp just past, within leeway (control)", forge(t, hdr, with(cl, "iat", f.now.Add(-time.Hour).Unix(), "exp", f.now.Add(-10*time.Second).Unix()), acmeSign), nil},
		{"iat just ahead, within leeway (control)", forge(t, hdr, with(cl, "iat", f.now.Add(10*time.Second).Unix()), acmeSign), nil},

		// 14: alg none.
		{"alg none, empty signature", forge(t, with(hdr, "alg", "none"), cl, nil), errAlg},
		{"alg none with a signature", forge(t, with(hdr, "alg", "none"), cl, acmeSign), errAlg},
		{"alg None", forge(t, with(hdr, "alg", "None"), cl, nil), errAlg},
		{"valid header, signature stripped", parts[0] + "." + parts[1] + ".", errSignature},
		// 15: algorithm confusion.
		{"HS256 keyed with the public key DER", forge(t, with(hdr, "alg", "HS256"), cl, hsSigner(pubDER)), errAlg},
		{"HS256 keyed with the raw public key", forge(t, with(hdr, "alg", "HS256"), cl, hsSigner(f.acmePriv.Public().(ed25519.PublicKey))), errAlg},
		{"HS512", forge(t, with(hdr, "alg", "HS512"), cl, hsSigner(pubDER)), errAlg},
		{"RS256", forge(t, with(hdr, "alg", "RS256"), cl, acmeSign), errAlg},
		{"PS256", forge(t, with(hdr, "alg", "PS256"), cl, acmeSign), errAlg},
		{"ES256 header on an Ed25519 key", forge(t, with(hdr, "alg", AlgES256), cl, esSigner(t, f.globexPriv)), errAlg},
		{"unknown alg", forge(t, with(hdr, "alg", "XX999"), cl, acmeSign), errAlg},
		{"alg missing", forge(t, with(hdr, "alg", nil), cl, acmeSign), errAlg},
		// 16: kid.
		{"kid missing", forge(t, with(hdr, "kid", nil), cl, acmeSign), errUnknownKey},
		{"kid empty", forge(t, with(hdr, "kid", ""), cl, acmeSign), errUnknownKey},
		{"kid path traversal", forge(t, with(hdr, "kid", "../../dev/null"), cl, acmeSign), errUnknownKey},
		{"kid SQL injection", forge(t, with(hdr, "kid", "' OR 1=1--"), cl, acmeSign), errUnknownKey},
		{"kid unknown", forge(t, with(hdr, "kid", "no-such-key"), cl, acmeSign), errUnknownKey},
		{"kid of another tenant's key", forge(t, with(hdr, "kid", f.globex.Keys[0].KID, "alg", AlgES256), cl, esSigner(t, f.globexPriv)), errUnknownKey},
		{"tid names another tenant than the key", forge(t, hdr, with(f.claimsFor("iglobex")), acmeSign), errUnknownKey},
		{"tid unknown", forge(t, hdr, f.claimsFor("inope"), acmeSign), errUnknownKey},
		{"tid missing", forge(t, hdr, with(cl, "tid", nil), acmeSign), errUnknownKey},
		{"tid is the slug", forge(t, hdr, f.claimsFor("acme"), acmeSign), errUnknownKey},
		// 17: key material or processing rules in the header.
		{"jku", forge(t, with(hdr, "jku", "https://evil.test/jwks.json"), cl, acmeSign), errHeader},
		{"x5u", forge(t, with(hdr, "x5u", "https://evil.test/cert.pem"), cl, acmeSign), errHeader},
		{"jwk", forge(t, with(hdr, "jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(otherPriv.Public().(ed25519.PublicKey))}), cl, edSigner(otherPriv)), errHeader},
		{"x5c", forge(t, with(hdr, "x5c", []string{"MIIB"}), cl, acmeSign), errHeader},
		{"x5t", forge(t, with(hdr, "x5t", "abc"), cl, acmeSign), errHeader},
		{"crit", forge(t, with(hdr, "crit", []string{"exp"}), cl, acmeSign), errHeader},
		{"unknown header parameter", forge(t, with(hdr, "b64", false), cl, acmeSign), errHeader},
		// 18: time.
		{"exp missing", forge(t, hdr, with(cl, "exp", nil), acmeSign), errExpired},
		{"exp past beyond leeway", forge(t, hdr, with(cl, "iat", f.now.Add(-time.Hour).Unix(), "exp", f.now.Add(-31*time.Second).Unix()), acmeSign), errExpired},
		{"exp long past", forge(t, hdr, with(cl, "iat", f.now.Add(-48*time.Hour).Unix(), "exp", f.now.Add(-47*time.Hour).Unix()), acmeSign), errExpired},
		{"exp not a number", forge(t, hdr, with(cl, "exp", "tomorrow"), acmeSign), errMalformed},
		{"iat in the future", forge(t, hdr, with(cl, "iat", f.now.Add(time.Minute).Unix()), acmeSign), errNotYetValid},
		{"iat missing", forge(t, hdr, with(cl, "iat", nil), acmeSign), errClaims},
		{"nbf in the future", forge(t, hdr, with(cl, "nbf", f.now.Add(time.Minute).Unix()), acmeSign), errNotYetValid},
		{"exp before iat", forge(t, hdr, with(cl, "iat", f.now.Add(20*time.Second).Unix(), "exp", f.now.Add(10*time.Second).Unix()), acmeSign), errClaims},
		{"lifetime over MaxTTL", forge(t, hdr, with(cl, "exp", f.now.Add(MaxTTL+time.Hour).Unix()), acmeSign), errClaims},
		// 19: iss, aud, typ.
		{"iss missing", forge(t, hdr, with(cl, "iss", nil), acmeSign), errClaims},
		{"iss of another tenant", forge(t, hdr, with(cl, "iss", Issuer("iglobex")), acmeSign), errClaims},
		{"iss of an IdP", forge(t, hdr, with(cl, "iss", "https://idp.example/realms/acme"), acmeSign), errClaims},
		{"aud missing", forge(t, hdr, with(cl, "aud", nil), acmeSign), errClaims},
		{"aud of another tenant", forge(t, hdr, with(cl, "aud", []string{Audience("iglobex")}), acmeSign), errClaims},
		{"aud is a client id", forge(t, hdr, with(cl, "aud", "tenantgate"), acmeSign), errClaims},
		{"typ missing", forge(t, with(hdr, "typ", nil), cl, acmeSign), errHeader},
		{"typ JWT", forge(t, with(hdr, "typ", "JWT"), cl, acmeSign), errHeader},
		{"typ of an access token", forge(t, with(hdr, "typ", "at+jwt"), cl, acmeSign), errHeader},
		{"typ differs in case", forge(t, with(hdr, "typ", strings.ToUpper(TokenType)), cl, acmeSign), errHeader},
		{"typ not a string", forge(t, with(hdr, "typ", 1), cl, acmeSign), errMalformed},
		{"id_token pasted as a session", forge(t, map[string]any{"alg": AlgEdDSA, "typ": "JWT", "kid": f.acme.Keys[0].KID},
			map[string]any{"iss": "https://idp.example", "aud": "tenantgate", "sub": "u-1", "exp": f.now.Add(time.Hour).Unix(), "iat": f.now.Unix(), "nonce": "n"}, acmeSign), errHeader},
		// Identity claims.
		{"sub missing", forge(t, hdr, with(cl, "sub", nil), acmeSign), errClaims},
		{"sid missing", forge(t, hdr, with(cl, "sid", nil), acmeSign), errClaims},
		{"sub not a string", forge(t, hdr, with(cl, "sub", 7), acmeSign), errMalformed},
		// Signature.
		{"payload tampered (roles added)", parts[0] + "." + b64(mustJSON(t, with(cl, "roles", []string{"admin"}))) + "." + parts[2], errSignature},
		{"payload of another token", parts[0] + "." + b64(mustJSON(t, with(cl, "sub", "u-2"))) + "." + parts[2], errSignature},
		{"signature flipped", parts[0] + "." + parts[1] + "." + flipLast(parts[2]), errSignature},
		{"signed by another key under acme's kid", forge(t, hdr, cl, edSigner(otherPriv)), errSignature},
		// 20: size and shape.
		{"1 MB token", strings.Repeat("a", 1<<20), errTooLarge},
		{"1 MB of dots", strings.Repeat(".", 1<<20), errTooLarge},
		{"just over the limit", valid + strings.Repeat("A", MaxTokenSize-len(valid)+1), errTooLarge},
		{"empty", "", errMalformed},
		{"two segments", parts[0] + "." + parts[1], errMalformed},
		{"four segments", valid + ".x", errMalformed},
		{"header with padding", parts[0] + "=." + parts[1] + "." + parts[2], errMalformed},
		{"header not base64url", "!!!." + parts[1] + "." + parts[2], errMalformed},
		{"header is null", b64([]byte("null")) + "." + parts[1] + "." + parts[2], errMalformed},
		{"header is an array", b64([]byte("[]")) + "." + parts[1] + "." + parts[2], errMalformed},
		{"payload not JSON", parts[0] + "." + b64([]byte("{")) + "." + parts[2], errMalformed},
		{"signature not base64url", parts[0] + "." + parts[1] + ".@@", errMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := f.verifier()
			got, err := v.verifyAny(f.snap, c.token)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify refused a valid token: %v", err)
				}
				if got.TenantID != "iacme" || got.Subject != "u-1" {
					t.Fatalf("claims %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("refused for the wrong reason: got %v, want %v", err, c.want)
			}
			if got != nil {
				t.Errorf("claims returned with an error")
			}
			if len(c.token) > MaxTokenSize {
				// Refused before anything reads it: a handful of small
				// allocations, never a copy or decode of the megabyte.
				// Counted, not timed, so a busy machine cannot fail it.
				if n := testing.AllocsPerRun(20, func() { _, _ = v.verifyAny(f.snap, c.token) }); n > 4 {
					t.Errorf("refusing an oversized token allocated %.0f times per call, want at most 4", n)
				}
			}
			// A refused token is not remembered as valid.
			if _, err := v.verifyAny(f.snap, c.token); err == nil {
				t.Errorf("second Verify accepted it")
			}
			if s := v.Stats(); s.Hits != 0 {
				t.Errorf("a refused token was served from the cache: %+v", s)
			}
		})
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// flipLast changes the last base64url character of s to another valid one
// that keeps the encoding canonical.
func flipLast(s string) string {
	last := s[len(s)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'Q'
	}
	return s[:len(s)-1] + string(repl)
}

// TestVerifyReportsTokenTenant: Verify accepts a good token of any tenant
// and reports that tenant; binding it to the request's tenant is the
// caller's job.
func TestVerifyReportsTokenTenant(t *testing.T) {
	f := newFixture(t)
	v := f.verifier()
	for _, tn := range []*tenants.Tenant{&f.acme, &f.globex} {
		tok, _ := f.mint(t, tn)
		c, err := v.verifyAny(f.snap, tok)
		if err != nil {
			t.Fatal(err)
		}
		if c.TenantID != tn.InternalID || c.Tenant != tn.ID {
			t.Errorf("token of %s reported as tenant %q (%q)", tn.ID, c.TenantID, c.Tenant)
		}
	}
}

func TestVerifyCacheHitSkipsSignature(t *testing.T) {
	f := newFixture(t)
	v := f.verifier()
	tok, minted := f.mint(t, &f.acme)
	for range 10 {
		c, err := v.verifyAny(f.snap, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*c, minted) {
			t.Fatalf("claims %+v, want %+v", *c, minted)
		}
	}
	if s := v.Stats(); s.SignatureChecks != 1 || s.Hits != 9 || s.Misses != 1 {
		t.Fatalf("stats %+v: want one signature check and nine hits", s)
	}

	// The returned claims are the caller's: changing them changes nothing
	// for the next caller.
	c, _ := v.verifyAny(f.snap, tok)
	c.Subject, c.TenantID = "mallory", "iglobex"
	c2, err := v.verifyAny(f.snap, tok)
	if err != nil || c2.Subject != "u-1" || c2.TenantID != "iacme" {
		t.Fatalf("cached claims were changed through a returned pointer: %+v, %v", c2, err)
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	f := newFixture(t)
	v := &Verifier{Now: f.clock, CacheSize: -1}
	tok, _ := f.mint(t, &f.acme)
	for range 3 {
		if _, err := v.verifyAny(f.snap, tok); err != nil {
			t.Fatal(err)
		}
	}
	if s := v.Stats(); s.SignatureChecks != 3 || s.Hits != 0 {
		t.Fatalf("stats %+v: want three signature checks", s)
	}
}

// TestVerifyCacheTinyEvicts: a cache smaller than the working set still
// gives correct answers.
func TestVerifyCacheTinyEvicts(t *testing.T) {
	f := newFixture(t)
	v := &Verifier{Now: f.clock, CacheSize: 1}
	var toks []string
	for range 40 {
		tok, _ := f.mint(t, &f.acme)
		toks = append(toks, tok)
	}
	for range 2 {
		for _, tok := range toks {
			if _, err := v.verifyAny(f.snap, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := v.Stats(); s.SignatureChecks < 40 {
		t.Fatalf("stats %+v", s)
	}
}

// TestVerifyStateChanges runs every change that must invalidate a session
// against both paths: a fresh Verifier (signature checked) and one that
// already has the token cached (no signature check).
func TestVerifyStateChanges(t *testing.T) {
	f := newFixture(t)
	tok, minted := f.mint(t, &f.acme)

	// Another Ed25519 key for acme.
	_, newPriv, _ := ed25519.GenerateKey(rand.Reader)
	newKey, err := sealSigningKey(f.sealer, "iacme", AlgEdDSA, newPriv, f.now)
	if err != nil {
		t.Fatal(err)
	}
	// acme's kid, but different key bytes.
	replaced := f.acme.Keys[0]
	replaced.Public, _ = x509.MarshalPKIXPublicKey(newPriv.Public())

	acmeWith := func(keys ...tenants.SigningKey) tenants.Tenant {
		a := f.acme
		a.Keys = keys
		return a
	}
	old := f.acme.Keys[0]
	recreated := f.acme
	recreated.InternalID = "iacme2"
	recreated.Keys = []tenants.SigningKey{newKey}

	cases := []struct {
		name   string
		snap   *tenants.Snapshot
		fresh  error // nil: accepted
		cached error
	}{
		{"unchanged", fixtureSnapshot([]tenants.Tenant{f.acme}, nil), nil, nil},
		{"new key added, old one kept (rotation overlap)", fixtureSnapshot([]tenants.Tenant{acmeWith(newKey, old)}, nil), nil, nil},
		{"tenant deleted", fixtureSnapshot([]tenants.Tenant{f.globex}, nil), errUnknownKey, errKeyRetired},
		{"slug re-registered by someone else", fixtureSnapshot([]tenants.Tenant{recreated}, nil), errUnknownKey, errKeyRetired},
		{"key retired", fixtureSnapshot([]tenants.Tenant{acmeWith(newKey)}, nil), errUnknownKey, errKeyRetired},
		{"key bytes replaced under the same kid", fixtureSnapshot([]tenants.Tenant{acmeWith(replaced)}, nil), errSignature, errKeyRetired},
		{"session revoked", fixtureSnapshot([]tenants.Tenant{f.acme}, []tenants.Revocation{
			{Key: tenants.SessionRevocationKey(minted.SID), Expires: f.now.Add(MaxTTL)}}), errRevoked, errRevoked},
		{"user's sessions revoked at issue time", fixtureSnapshot([]tenants.Tenant{f.acme}, []tenants.Revocation{
			{Key: tenants.UserRevocationKey("iacme", "u-1"), NotBefore: minted.IssuedAt, Expires: f.now.Add(MaxTTL)}}), errRevoked, errRevoked},
		{"user's sessions revoked later", fixtureSnapshot([]tenants.Tenant{f.acme}, []tenants.Revocation{
			{Key: tenants.UserRevocationKey("iacme", "u-1"), NotBefore: f.now.Add(time.Minute), Expires: f.now.Add(MaxTTL)}}), errRevoked, errRevoked},
		{"user revoked before this sign-in", fixtureSnapshot([]tenants.Tenant{f.acme}, []tenants.Revocation{
			{Key: tenants.UserRevocationKey("iacme", "u-1"), NotBefore: f.now.Add(-time.Second), Expires: f.now.Add(MaxTTL)}}), nil, nil},
		{"same user revoked in another tenant", fixtureSnapshot([]tenants.Tenant{f.acme}, []tenants.Revocation{
			{Key: tenants.UserRevocationKey("iglobex", "u-1"), NotBefore: f.now.Add(time.Minute), Expires: f.now.Add(MaxTTL)}}), nil, nil},
		{"another session revoked", fixtureSnapshot([]tenants.Tenant{f.acme}, []tenants.Revocation{
			{Key: tenants.SessionRevocationKey("other"), Expires: f.now.Add(MaxTTL)}}), nil, nil},
		{"member removed from the tenant", tenants.NewSnapshot([]tenants.Tenant{f.acme}, nil), errNotMember, errNotMember},
		{"member of another tenant only", withMembership(tenants.NewSnapshot([]tenants.Tenant{f.acme}, nil), "iglobex", "u-1", "admin"), errNotMember, errNotMember},
		{"another user removed", withMembership(tenants.NewSnapshot([]tenants.Tenant{f.acme}, nil), "iacme", "u-1", "admin"), nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := func(path string, v *Verifier, want error) {
				t.Helper()
				_, err := v.verifyAny(c.snap, tok)
				switch {
				case want == nil && err != nil:
					t.Errorf("%s: refused: %v", path, err)
				case want != nil && !errors.Is(err, want):
					t.Errorf("%s: got %v, want %v", path, err, want)
				}
			}
			check("fresh", f.verifier(), c.fresh)

			warm := f.verifier()
			if _, err := warm.verifyAny(f.snap, tok); err != nil {
				t.Fatal(err)
			}
			check("cached", warm, c.cached)
			if s := warm.Stats(); s.SignatureChecks != 1 || s.Hits != 1 {
				t.Errorf("cached path did signature work: %+v", s)
			}
			// A refusal on the cached path is final: the token is not
			// accepted from the cache again with the old snapshot either,
			// unless it verifies afresh.
			if c.cached != nil {
				if _, err := warm.verifyAny(f.snap, tok); err != nil {
					t.Fatalf("after eviction, the original snapshot should verify it afresh: %v", err)
				}
				if s := warm.Stats(); s.SignatureChecks != 2 {
					t.Errorf("evicted token was not verified afresh: %+v", s)
				}
			}
		})
	}
}

func TestVerifyCachedExpiry(t *testing.T) {
	f := newFixture(t)
	now := f.now
	v := &Verifier{Now: func() time.Time { return now }}
	tok, minted := f.mint(t, &f.acme)
	if _, err := v.verifyAny(f.snap, tok); err != nil {
		t.Fatal(err)
	}
	now = minted.Expires.Add(DefaultLeeway - time.Second)
	if _, err := v.verifyAny(f.snap, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	now = minted.Expires.Add(DefaultLeeway)
	if _, err := v.verifyAny(f.snap, tok); !errors.Is(err, errExpired) {
		t.Fatalf("after expiry: got %v, want expired", err)
	}
	if s := v.Stats(); s.SignatureChecks != 1 || s.Hits != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestVerifyLeewayCapped(t *testing.T) {
	f := newFixture(t)
	now := f.now
	v := &Verifier{Now: func() time.Time { return now }, Leeway: time.Hour}
	tok, minted := f.mint(t, &f.acme)
	now = minted.Expires.Add(MaxLeeway)
	if _, err := v.verifyAny(f.snap, tok); !errors.Is(err, errExpired) {
		t.Fatalf("leeway was not capped at %s: %v", MaxLeeway, err)
	}
}

func TestVerifyNilSnapshot(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.mint(t, &f.acme)
	if _, err := f.verifier().verifyAny(nil, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyZeroValue(t *testing.T) {
	f := newFixture(t)
	f.minter.Now = nil // wall clock, as the zero Verifier uses
	tok, _ := f.mint(t, &f.acme)
	var v Verifier
	if _, err := v.verifyAny(f.snap, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier().verifyAny(f.snap, tok); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	v := &Verifier{Now: f.clock, CacheSize: 64}
	var toks []string
	for range 20 {
		tok, _ := f.mint(t, &f.acme)
		toks = append(toks, tok)
		tok, _ = f.mint(t, &f.globex)
		toks = append(toks, tok)
	}
	revoked := fixtureSnapshot([]tenants.Tenant{f.acme}, nil) // globex gone
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := toks[(g+i)%len(toks)]
				snap := f.snap
				if i%3 == 0 {
					snap = revoked
				}
				c, err := v.verifyAny(snap, tok)
				if snap == revoked && err == nil && c.TenantID == "iglobex" {
					t.Errorf("token of a deleted tenant accepted")
					return
				}
				if snap == f.snap && err != nil {
					t.Errorf("valid token refused: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b)
	v := f.verifier()
	tok, _ := f.mint(b, &f.acme)
	if _, err := v.verifyAny(f.snap, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.verifyAny(f.snap, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyFresh(b *testing.B) {
	f := newFixture(b)
	for _, tn := range []*tenants.Tenant{&f.acme, &f.globex} {
		b.Run(tn.Keys[0].Alg, func(b *testing.B) {
			v := &Verifier{Now: f.clock, CacheSize: -1}
			tok, _ := f.mint(b, tn)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.verifyAny(f.snap, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMint(b *testing.B) {
	f := newFixture(b)
	for _, tn := range []*tenants.Tenant{&f.acme, &f.globex} {
		b.Run(tn.Keys[0].Alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.minter.Mint(tn, Claims{Subject: "u-1", Roles: []string{"admin"}, Method: MethodPassword}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// withMembership is s with one more membership.
func withMembership(s *tenants.Snapshot, tid, uid string, roles ...string) *tenants.Snapshot {
	var c tenants.SnapshotChange
	c.PutMembership(tid, uid, roles)
	return s.With(&c)
}

// TestVerifyTakesRolesFromSnapshot: the roles Verify returns are the ones
// the snapshot holds now, on both paths, whatever the token says (security
// catalogue item 45: a token's roles are a cache, not the truth).
func TestVerifyTakesRolesFromSnapshot(t *testing.T) {
	f := newFixture(t)
	tok, minted := f.mint(t, &f.acme)
	if !reflect.DeepEqual(minted.Roles, []string{"admin", "member"}) {
		t.Fatalf("minted roles %q", minted.Roles)
	}
	bare := tenants.NewSnapshot([]tenants.Tenant{f.acme, f.globex}, nil)
	for _, tc := range []struct {
		name  string
		snap  *tenants.Snapshot
		roles []string
	}{
		{"demoted", withMembership(bare, "iacme", "u-1", "member"), []string{"member"}},
		{"promoted", withMembership(bare, "iacme", "u-1", "member", "auditor", "admin"), []string{"admin", "auditor", "member"}},
		{"every role taken away", withMembership(bare, "iacme", "u-1"), []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warm := f.verifier()
			if c, err := warm.verifyAny(f.snap, tok); err != nil || !reflect.DeepEqual(c.Roles, minted.Roles) {
				t.Fatalf("before: %v, %v", c, err)
			}
			for path, v := range map[string]*Verifier{"fresh": f.verifier(), "cached": warm} {
				c, err := v.verifyAny(tc.snap, tok)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if !reflect.DeepEqual(c.Roles, tc.roles) {
					t.Errorf("%s: roles %q, want %q", path, c.Roles, tc.roles)
				}
			}
		})
	}
}

// TestRevocationOutlivesLeeway: a revocation written with
// Claims.Revocation is kept past the last instant any Verifier, at any
// Leeway, still accepts the token, so a signed-out token never works again
// once its revocation is dropped (security catalogue item 47).
func TestRevocationOutlivesLeeway(t *testing.T) {
	f := newFixture(t)
	tok, minted := f.mint(t, &f.acme)
	rev := minted.Revocation(f.now)
	if rev.Key != tenants.SessionRevocationKey(minted.SID) || !rev.NotBefore.Equal(f.now) {
		t.Fatalf("revocation %+v", rev)
	}
	for _, leeway := range []time.Duration{0, DefaultLeeway, MaxLeeway, time.Hour} {
		// The revocation is dropped when its Expires has passed.
		now := rev.Expires.Add(time.Nanosecond)
		v := &Verifier{Now: func() time.Time { return now }, Leeway: leeway}
		if _, err := v.verifyAny(f.snap, tok); !errors.Is(err, errExpired) {
			t.Errorf("leeway %s: once the revocation may be dropped the token is %v, want expired", leeway, err)
		}
	}
}
