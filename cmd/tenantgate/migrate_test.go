package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/social"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// fixtureDir is a database, its master key and what the release printed
// and minted, written by tenantgate at commit aab787b (schema 1; its
// README.md says how).
var fixtureDir = filepath.Join("..", "..", "tenants", "boltstore", "testdata", "aab787b")

// copyFixture copies the fixture database and master key (0600, as the
// key must be) to a temporary directory and returns a cli on them.
func copyFixture(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t)
	for from, to := range map[string]string{"tenantgate.db": c.db, "tenantgate.key": c.key} {
		b, err := os.ReadFile(filepath.Join(fixtureDir, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestUpgradeFromAab787b: the release's database opens with this build.
// tenants get prints every tenant byte for byte as that release did (but
// for the saml method's nameIDFormat unspecified, the format it had); the
// session it minted still verifies (at its issue time); alice still signs
// in with her password; the sealed client secrets and the SAML SP key still
// open with the master key, and the methods open.
func TestUpgradeFromAab787b(t *testing.T) {
	c := copyFixture(t)
	for _, tc := range []struct{ id, format, file string }{
		{"acme", "yaml", "acme.get.yaml"},
		{"globex", "yaml", "globex.get.yaml"},
		{"globex", "json", "globex.get.json"},
		{"initech", "yaml", "initech.get.yaml"},
	} {
		b, err := os.ReadFile(filepath.Join(fixtureDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		// acme's saml method states the format it had (schema 3).
		want := strings.Replace(string(b), "        emailAttribute: mail\n", "        emailAttribute: mail\n        nameIDFormat: unspecified\n", 1)
		if got := c.mustRun("", "tenants", "get", tc.id, "-o", tc.format); got != want {
			t.Errorf("tenants get %s -o %s:\n%s\nwant (as aab787b printed it, saml stating unspecified):\n%s", tc.id, tc.format, got, want)
		}
	}

	sealer, err := seal.LoadOrCreateMasterKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(c.db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	acme := snap.BySlug("acme")
	alice, err := st.UserByEmail(t.Context(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}

	// The session the release minted, verified at its issue time.
	raw, err := os.ReadFile(filepath.Join(fixtureDir, "session-acme-alice.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	iat := issuedAt(t, token)
	v := &session.Verifier{Now: func() time.Time { return iat }}
	claims, err := v.VerifyFor(snap, acme, token)
	if err != nil {
		t.Fatalf("the release's session does not verify: %v", err)
	}
	if claims.Subject != alice.ID || claims.Method != session.MethodPassword || strings.Join(claims.Roles, ",") != "admin" {
		t.Errorf("session claims %+v, want alice's admin password session", claims)
	}

	// Sealed secrets open with the master key, and the methods with them.
	plaintexts := map[string]string{"acme": "oidc-secret-fixture", "globex": "social-secret-fixture", "initech": "google-secret-fixture"}
	openers := map[string]signin.Opener{
		oidc.Type:   oidc.NewOpener(oidc.Options{Sealer: sealer}),
		social.Type: social.NewOpener(social.Options{Sealer: sealer}),
	}
	for id, want := range plaintexts {
		tn := snap.BySlug(id)
		opened := 0
		for i, m := range tn.Methods {
			if len(m.Sealed) == 0 {
				continue
			}
			pt, err := seal.OpenSecret(sealer, m.Sealed, tn.InternalID)
			if err != nil || string(pt) != want {
				t.Errorf("%s methods[%d]: sealed secret opens to %q, %v", id, i, pt, err)
			}
			if _, err := openers[m.Type](t.Context(), tn, i); err != nil {
				t.Errorf("%s methods[%d] (%s) does not open: %v", id, i, m.Type, err)
			}
			opened++
		}
		if opened != 1 {
			t.Errorf("%s: %d methods with a sealed secret, want 1", id, opened)
		}
	}
	if _, err := sealer.Open(acme.SAMLKey.SealedPrivate, saml.KeyContext(acme.InternalID)); err != nil {
		t.Errorf("acme's SAML SP key does not open: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Alice signs in with her password on a server of this build serving
	// the migrated database, and her new session is acme's.
	ts := startServer(t, false, "--db", c.db, "--master-key-file", c.key)
	token = signIn(t, ts, "acme.app.test", "alice@acme.test", "correct horse battery staple")
	if got, err := session.NewVerifier().VerifyFor(snap, acme, token); err != nil || got.Subject != alice.ID {
		t.Errorf("alice's new session: %+v, %v", got, err)
	}
}

// issuedAt reads a token's iat claim (unverified: only to set the clock).
func issuedAt(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		IAT int64 `json:"iat"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.IAT == 0 {
		t.Fatalf("no iat: %v", err)
	}
	return time.Unix(c.IAT, 0)
}
