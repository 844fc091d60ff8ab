package login

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/extauthz/passkey/passkeytest"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestPasskeyFactor drives the two functions the second sign-in step
// calls, with a passkey registered through the account page.
func TestPasskeyFactor(t *testing.T) {
	e := newEnv(t, withSealer)
	const host = "acme.app.test"
	alice := cookieNamed(e.signIn(host, "", "alice@acme.test", alicePassword, "/"), "__Host-tenantgate")
	auth := &passkeytest.Authenticator{Origin: "https://" + host}
	opts, ceremony := e.passkeyOptions(host, alice)
	body, cred, err := auth.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "register", e.postForm(host, "/_auth/account", url.Values{"action": {"passkey-register"}, "credential": {string(body)}}, alice, ceremony), 200)

	ctx := context.Background()
	e.h.init()
	snap := e.snaps.Load()
	acme, globex := snap.BySlug("acme"), snap.BySlug("globex")
	aliceID, bobID := mustUser(t, e, "alice@acme.test").ID, mustUser(t, e, "bob@globex.test").ID
	rpAcme, _ := passkey.RPFor(host, "https://"+host, "Acme", false)
	rpGlobex, _ := passkey.RPFor("globex.app.test", "https://globex.app.test", "Globex", false)

	// step is the second step's state id the ceremonies are begun for.
	const step = "state-1"
	begin := func(t *testing.T, rp passkey.RP, tn *tenants.Tenant, user string) ([]byte, string) {
		t.Helper()
		o, c, err := e.h.beginPasskeyFactor(rp, tn, user, "alice@acme.test", step)
		if err != nil {
			t.Fatalf("beginPasskeyFactor: %v", err)
		}
		return o, c
	}

	o, c := begin(t, rpAcme, acme, aliceID)
	if !strings.Contains(string(o), `"rpId":"acme.app.test"`) {
		t.Errorf("options %s", o)
	}
	answer, err := auth.Get(o, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, aliceID, step, c, answer); err != nil {
		t.Fatalf("checkPasskeyFactor: %v", err)
	}
	ps, _ := e.store.Passkeys(ctx, acme.InternalID, aliceID)
	if len(ps) != 1 || ps[0].SignCount != 1 || ps[0].LastUsed.IsZero() {
		t.Errorf("after sign-in: %+v", ps)
	}
	t.Run("replayed", func(t *testing.T) {
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, aliceID, step, c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("the same ceremony and answer again: %v", err)
		}
	})
	t.Run("cloned authenticator", func(t *testing.T) {
		o, c := begin(t, rpAcme, acme, aliceID)
		cred.Count = 0 // a copy of the key that has not counted the first use
		answer, _ := auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, aliceID, step, c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("a sign count that did not grow: %v", err)
		}
		if !strings.Contains(e.logs.String(), "may be cloned") {
			t.Error("no warning logged")
		}
		cred.Count = 5
	})
	t.Run("another person's ceremony", func(t *testing.T) {
		o, c := begin(t, rpAcme, acme, aliceID)
		answer, _ := auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, bobID, step, c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("alice's ceremony for bob: %v", err)
		}
	})
	t.Run("another step's ceremony", func(t *testing.T) {
		// Begun for one second step, answered in another (of the same
		// person): the ceremony is bound to the state it was begun for.
		o, c := begin(t, rpAcme, acme, aliceID)
		answer, _ := auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, aliceID, "state-2", c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("a ceremony of another step: %v", err)
		}
	})
	t.Run("another tenant", func(t *testing.T) {
		// Begun for globex (where alice has no passkey, which the options
		// do not tell), answered with acme's passkey: refused.
		o, c := begin(t, rpGlobex, globex, aliceID)
		answer, _ := auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpGlobex, globex, aliceID, step, c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("acme's passkey on globex: %v", err)
		}
		o, c = begin(t, rpAcme, acme, aliceID)
		answer, _ = auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpGlobex, globex, aliceID, step, c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("acme's ceremony and passkey on globex: %v", err)
		}
	})
	t.Run("options say nothing about the person", func(t *testing.T) {
		shape := func(o []byte) string {
			return regexp.MustCompile(`"challenge":"[^"]*"`).ReplaceAllString(string(o), `"challenge":"…"`)
		}
		withPasskey, _ := begin(t, rpAcme, acme, aliceID)
		failedFirstStep, _ := begin(t, rpAcme, acme, strings.Repeat("0", 32))
		if shape(withPasskey) != shape(failedFirstStep) || strings.Contains(string(withPasskey), "allowCredentials") {
			t.Errorf("options differ: %s\n%s", withPasskey, failedFirstStep)
		}
	})
	t.Run("failed first step", func(t *testing.T) {
		random := strings.Repeat("0", 32)
		o, c := begin(t, rpAcme, acme, random)
		answer, _ := auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, random, step, c, answer); !errors.Is(err, errWrongPasskey) {
			t.Errorf("a passkey for a state of no real user: %v", err)
		}
	})
	t.Run("tampered answer", func(t *testing.T) {
		o, c := begin(t, rpAcme, acme, aliceID)
		answer, _ := auth.Get(o, cred)
		bad := strings.Replace(string(answer), `"signature":"`, `"signature":"AA`, 1)
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, aliceID, step, c, []byte(bad)); !errors.Is(err, errWrongPasskey) {
			t.Errorf("tampered signature: %v", err)
		}
	})
	t.Run("after a master-key rotation", func(t *testing.T) {
		// A process started with another master key derives other keys;
		// the passkey, whose authenticator keeps its user handle, still
		// signs in.
		old := e.h.passkeys
		defer func() { e.h.passkeys = old }()
		rotated, err := seal.NewSealer(bytes.Repeat([]byte{7}, seal.MasterKeySize))
		if err != nil {
			t.Fatal(err)
		}
		e.h.passkeys = &passkeyKeys{ceremony: mfaSealerFor(rotated)}
		o, c := begin(t, rpAcme, acme, aliceID)
		answer, _ := auth.Get(o, cred)
		if err := e.h.checkPasskeyFactor(ctx, rpAcme, acme, aliceID, step, c, answer); err != nil {
			t.Errorf("the passkey after a master-key rotation: %v", err)
		}
	})
	if strings.Contains(e.logs.String(), "alice@acme.test") {
		t.Error("an email is in the logs")
	}
}

// TestPasskeyScriptHashes: the CSP sources are the hashes of the scripts
// as served (a script edited without its hash would be blocked).
func TestPasskeyScriptHashes(t *testing.T) {
	for _, tc := range []struct{ script, hash string }{
		{passkeyScript, passkeyScriptHash}, {passkeySignInScript, passkeySignInScriptHash},
	} {
		sum := sha256.Sum256([]byte(tc.script))
		if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; tc.hash != want {
			t.Errorf("hash %s, want %s", tc.hash, want)
		}
	}
}
