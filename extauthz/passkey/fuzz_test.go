package passkey_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/extauthz/seal"
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
