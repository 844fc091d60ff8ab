package passkey_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/extauthz/passkey/passkeytest"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func rp(t *testing.T, host string) passkey.RP {
	t.Helper()
	r, err := passkey.RPFor(host, "https://"+host, host, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// register makes a passkey for acct on r with authenticator a.
func register(t *testing.T, r passkey.RP, acct *passkey.Account, a *passkeytest.Authenticator) (tenants.Passkey, *passkeytest.Credential) {
	t.Helper()
	opts, c, err := passkey.BeginRegistration(r, acct, now)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	for _, want := range []string{`"residentKey":"required"`, `"userVerification":"preferred"`, `"attestation":"none"`, `"id":"` + r.ID + `"`} {
		if !strings.Contains(string(opts), want) {
			t.Errorf("registration options %s lack %s", opts, want)
		}
	}
	body, cred, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := passkey.FinishRegistration(r, acct, c, body, "laptop", now)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return p, cred
}

func TestRegisterThenSignIn(t *testing.T) {
	acme := rp(t, "acme.app.example")
	acct := &passkey.Account{Handle: passkey.Handle("t-acme", "u-ann"), Name: "ann@x.example"}
	a := &passkeytest.Authenticator{Origin: "https://acme.app.example"}
	p, cred := register(t, acme, acct, a)
	if !bytes.Equal(p.ID, cred.ID) || len(p.PublicKey) == 0 || p.Name != "laptop" || !p.Created.Equal(now) {
		t.Fatalf("registered passkey = %+v", p)
	}
	if !bytes.Equal(cred.UserHandle, acct.Handle) || bytes.Contains(cred.UserHandle, []byte("ann")) {
		t.Errorf("the authenticator got user handle %x, want the opaque handle", cred.UserHandle)
	}
	acct.Passkeys = []tenants.Passkey{p}

	opts, c, err := passkey.BeginLogin(acme, acct, now)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	if !strings.Contains(string(opts), `"rpId":"acme.app.example"`) || strings.Contains(string(opts), "allowCredentials") {
		t.Errorf("login options %s do not name the tenant's RP ID, or list credentials", opts)
	}
	body, err := a.Get(opts, cred)
	if err != nil {
		t.Fatal(err)
	}
	as, err := passkey.FinishLogin(acme, acct, c, body, now)
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if !bytes.Equal(as.ID, p.ID) || as.SignCount != 1 || !as.UserVerified {
		t.Errorf("assertion = %+v", as)
	}
	stored := p
	if err := as.Update(&stored); err != nil || stored.SignCount != 1 || !stored.LastUsed.Equal(now) {
		t.Errorf("Update: %v, %+v", err, stored)
	}
	// The same assertion again (a replay, or a clone at the same count)
	// is refused by the compare the store runs.
	if err := as.Update(&stored); !errors.Is(err, passkey.ErrCloned) {
		t.Errorf("Update with a count that did not grow: %v, want ErrCloned", err)
	}
	// A login ceremony does not register, nor the reverse.
	if _, err := passkey.FinishRegistration(acme, acct, c, body, "x", now); !errors.Is(err, passkey.ErrRefused) {
		t.Errorf("FinishRegistration with a login ceremony: %v", err)
	}
}

func TestOtherTenantRefused(t *testing.T) {
	acme, globex := rp(t, "acme.app.example"), rp(t, "globex.app.example")
	acct := &passkey.Account{Handle: []byte("handle-acme"), Name: "ann@x.example"}
	a := &passkeytest.Authenticator{Origin: "https://acme.app.example"}
	p, cred := register(t, acme, acct, a)
	acct.Passkeys = []tenants.Passkey{p}

	for _, tc := range []struct {
		name   string
		origin string
	}{
		// A browser on globex's page: its origin is globex's, and the
		// credential's RP ID hash is acme's.
		{"globex origin", "https://globex.app.example"},
		// A forged client pretending to be on acme's origin still signs
		// acme's RP ID hash, which globex's RP refuses.
		{"acme origin", "https://acme.app.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, c, err := passkey.BeginLogin(globex, acct, now)
			if err != nil {
				t.Fatal(err)
			}
			a.Origin = tc.origin
			body, err := a.Get(opts, cred)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := passkey.FinishLogin(globex, acct, c, body, now); !errors.Is(err, passkey.ErrRefused) {
				t.Errorf("acme's passkey on globex: %v, want ErrRefused", err)
			}
		})
	}
}

func TestUnknownCredentialRefused(t *testing.T) {
	acme := rp(t, "acme.app.example")
	a := &passkeytest.Authenticator{Origin: "https://acme.app.example"}
	ann := &passkey.Account{Handle: []byte("h-ann"), Name: "ann@x.example"}
	bob := &passkey.Account{Handle: []byte("h-bob"), Name: "bob@x.example"}
	pa, _ := register(t, acme, ann, a)
	pb, credB := register(t, acme, bob, a)
	ann.Passkeys, bob.Passkeys = []tenants.Passkey{pa}, []tenants.Passkey{pb}
	opts, c, err := passkey.BeginLogin(acme, ann, now)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := a.Get(opts, credB)
	if _, err := passkey.FinishLogin(acme, ann, c, body, now); !errors.Is(err, passkey.ErrRefused) {
		t.Errorf("bob's passkey for ann's sign-in: %v, want ErrRefused", err)
	}
}

func TestRPFor(t *testing.T) {
	if _, err := passkey.RPFor("app.example", "https://app.example", "Acme", true); !errors.Is(err, passkey.ErrPathTenancy) {
		t.Errorf("path tenancy: %v, want ErrPathTenancy", err)
	}
	if _, err := passkey.RPFor("acme.app.example", "https://globex.app.example", "Acme", false); err == nil {
		t.Error("an origin of another host was accepted")
	}
	if r, err := passkey.RPFor("acme.app.example", "https://acme.app.example:8443", "Acme", false); err != nil || r.ID != "acme.app.example" {
		t.Errorf("RPFor with a port: %+v, %v", r, err)
	}
}

// TestHandle: a stable 32-byte value per tenant and user, the same
// whatever key the process holds (a master-key rotation must not change
// what every authenticator keeps).
func TestHandle(t *testing.T) {
	h := passkey.Handle("t1", "u1")
	if len(h) != 32 || !bytes.Equal(h, passkey.Handle("t1", "u1")) {
		t.Fatalf("Handle is not a stable 32-byte value: %x", h)
	}
	if bytes.Contains(h, []byte("t1")) || bytes.Contains(h, []byte("u1")) {
		t.Errorf("Handle holds an id: %x", h)
	}
	for _, other := range [][]byte{passkey.Handle("t2", "u1"), passkey.Handle("t1", "u2"), passkey.Handle("t1u", "1")} {
		if bytes.Equal(h, other) {
			t.Errorf("Handle collides: %x", other)
		}
	}
}

func TestCeremonySealing(t *testing.T) {
	s, err := seal.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	acct := &passkey.Account{Handle: []byte("h"), Name: "ann@x.example"}
	_, c, err := passkey.BeginRegistration(rp(t, "acme.app.example"), acct, now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := passkey.Seal(s, c, "t-acme", "u-ann")
	if err != nil {
		t.Fatal(err)
	}
	got, err := passkey.Open(s, v, "t-acme", "u-ann", passkey.KindRegister, now)
	if err != nil || got.ID != c.ID || got.Session.Challenge != c.Session.Challenge || !strings.HasPrefix(got.UseID(), "tg-passkey/") {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	tampered := []byte(v)
	tampered[len(tampered)/2] ^= 1
	for _, tc := range []struct {
		name, v, tenant, user, kind string
		at                          time.Time
	}{
		{"other tenant", v, "t-globex", "u-ann", passkey.KindRegister, now},
		{"other user", v, "t-acme", "u-bob", passkey.KindRegister, now},
		{"other kind", v, "t-acme", "u-ann", passkey.KindLogin, now},
		{"expired", v, "t-acme", "u-ann", passkey.KindRegister, now.Add(passkey.CeremonyTTL)},
		{"tampered", string(tampered), "t-acme", "u-ann", passkey.KindRegister, now},
		{"garbage", "%%%", "t-acme", "u-ann", passkey.KindRegister, now},
		{"empty", "", "t-acme", "u-ann", passkey.KindRegister, now},
		{"huge", strings.Repeat("A", 9000), "t-acme", "u-ann", passkey.KindRegister, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := passkey.Open(s, tc.v, tc.tenant, tc.user, tc.kind, tc.at); !errors.Is(err, passkey.ErrCeremony) {
				t.Errorf("Open: %v, want ErrCeremony", err)
			}
		})
	}
}
