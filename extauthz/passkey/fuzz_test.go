package passkey_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/extauthz/passkey/passkeytest"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// FuzzOpen: a ceremony cookie is client input; Open never panics and
// accepts only what Seal made for the same tenant, user and kind.
func FuzzOpen(f *testing.F) {
	s, err := seal.NewSealer(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	v, err := passkey.Seal(s, passkey.Ceremony{ID: "x", Kind: passkey.KindLogin, Expires: now.Add(time.Minute)}, "t", "u")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := passkey.Open(s, in, "t", "u", passkey.KindLogin, now)
		// Each fuzz worker seals its own seed (a fresh nonce), so what
		// opens is checked by content.
		if err == nil && (c.ID != "x" || c.Kind != passkey.KindLogin) {
			t.Fatalf("Open accepted %q", in)
		}
	})
}

// FuzzFinishLogin: the second step's "passkey" field is the browser's
// answer, client input parsed by go-webauthn through FinishLogin. It never
// panics, and whatever it accepts names the one registered passkey.
func FuzzFinishLogin(f *testing.F) {
	acme, err := passkey.RPFor("acme.app.example", "https://acme.app.example", "Acme", false)
	if err != nil {
		f.Fatal(err)
	}
	acct := &passkey.Account{Handle: passkey.Handle("t-acme", "u-ann"), Name: "ann@x.example"}
	a := &passkeytest.Authenticator{Origin: "https://acme.app.example"}
	opts, reg, err := passkey.BeginRegistration(acme, acct, now)
	if err != nil {
		f.Fatal(err)
	}
	created, cred, err := a.Create(opts)
	if err != nil {
		f.Fatal(err)
	}
	p, err := passkey.FinishRegistration(acme, acct, reg, created, "laptop", now)
	if err != nil {
		f.Fatal(err)
	}
	acct.Passkeys = []tenants.Passkey{p}
	opts, c, err := passkey.BeginLogin(acme, acct, now)
	if err != nil {
		f.Fatal(err)
	}
	answer, err := a.Get(opts, cred)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(answer)
	f.Add([]byte(""))
	f.Add([]byte("{}"))
	f.Add(created)
	f.Add(bytes.Replace(answer, []byte(`"signature":"`), []byte(`"signature":"AA`), 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		as, err := passkey.FinishLogin(acme, acct, c, in, now)
		if err == nil && !bytes.Equal(as.ID, p.ID) {
			t.Fatalf("FinishLogin accepted an answer for credential %x", as.ID)
		}
	})
}
