package session

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestVerifyAfterRotation: after a rotation, a session signed with the
// previous key verifies (fresh and from the cache) until the key's
// RetireAt and is refused from then on; a session of the new key carries
// its kid; the JWKS lists both keys until the old one retires.
func TestVerifyAfterRotation(t *testing.T) {
	f := newFixture(t)
	oldToken, _ := f.mint(t, &f.acme)

	newKey, err := NewSigningKey(f.sealer, "iacme", f.now)
	if err != nil {
		t.Fatal(err)
	}
	retire := f.now.Add(time.Hour)
	rotated := f.acme
	old := f.acme.Keys[0]
	old.RetireAt = retire
	rotated.Keys = []tenants.SigningKey{newKey, old}
	snap := fixtureSnapshot([]tenants.Tenant{rotated, f.globex}, nil)

	newToken, _ := f.mint(t, &rotated)
	h, err := decodeJWS(base64.RawURLEncoding, newToken)
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Kid string }
	if err := json.Unmarshal([]byte(h.header), &header); err != nil || header.Kid != newKey.KID {
		t.Fatalf("new session's kid = %q, want the new key's %q", header.Kid, newKey.KID)
	}

	for _, tc := range []struct {
		name     string
		at       time.Time
		token    string
		wantErr  error
		jwksKids []string
	}{
		{"old session before retirement", retire.Add(-time.Second), oldToken, nil, []string{newKey.KID, old.KID}},
		{"new session before retirement", retire.Add(-time.Second), newToken, nil, []string{newKey.KID, old.KID}},
		{"old session at retirement", retire, oldToken, errKeyRetired, []string{newKey.KID}},
		{"new session at retirement", retire, newToken, nil, []string{newKey.KID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cacheSize := range []int{-1, 16} {
				now := f.now
				v := &Verifier{Now: func() time.Time { return now }, CacheSize: cacheSize}
				// Verified (and, with a cache, remembered) while both keys
				// verify, then asked again at tc.at.
				for range 2 {
					if _, err := v.VerifyFor(snap, &rotated, tc.token); err != nil {
						t.Fatalf("cache %d: verify at rotation: %v", cacheSize, err)
					}
				}
				now = tc.at
				_, err := v.VerifyFor(snap, &rotated, tc.token)
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Errorf("cache %d: VerifyFor at %s = %v, want %v", cacheSize, tc.at, err, tc.wantErr)
				}
				fresh := &Verifier{Now: func() time.Time { return tc.at }}
				if _, err := fresh.VerifyFor(snap, &rotated, tc.token); (tc.wantErr == nil) != (err == nil) {
					t.Errorf("fresh verifier at %s = %v, want %v", tc.at, err, tc.wantErr)
				}
			}
			b, err := JWKS(&rotated, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			var set struct{ Keys []struct{ Kid string } }
			if err := json.Unmarshal(b, &set); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range set.Keys {
				got = append(got, k.Kid)
			}
			if len(got) != len(tc.jwksKids) || got[0] != tc.jwksKids[0] || len(got) == 2 && got[1] != tc.jwksKids[1] {
				t.Errorf("JWKS kids = %v, want %v", got, tc.jwksKids)
			}
		})
	}
}

// TestMintRefusesRetiredKey: a tenant whose newest key has retired (only a
// damaged record) mints nothing rather than tokens that do not verify.
func TestMintRefusesRetiredKey(t *testing.T) {
	f := newFixture(t)
	tn := f.acme
	k := tn.Keys[0]
	k.RetireAt = f.now
	tn.Keys = []tenants.SigningKey{k}
	if _, _, err := f.minter.Mint(&tn, Claims{Subject: "u-1", Method: MethodPassword}); err == nil {
		t.Fatal("Mint signed with a retired key")
	}
}
