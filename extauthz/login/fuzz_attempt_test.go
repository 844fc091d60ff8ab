package login

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/seal"
)

// FuzzOpenAttempt feeds arbitrary cookie names and values to the attempt
// cookie reader: it must never panic, and nothing it was not given by
// setAttemptCookie may open.
func FuzzOpenAttempt(f *testing.F) {
	f.Add("__Host-tg-attempt-AAAAAAAAAAAAAAAAAAAAAA", "AQ")
	f.Add("__Host-tg-attempt-", "")
	f.Add("__Host-tg-attempt-AAAAAAAAAAAAAAAAAAAAAA", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	sealer, err := seal.NewSealer(bytes.Repeat([]byte{1}, seal.MasterKeySize))
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{Sealer: sealer}
	h.init()
	f.Fuzz(func(t *testing.T, name, value string) {
		if a, ok := h.openAttempt(&http.Cookie{Name: name, Value: value}); ok || a != nil {
			t.Fatalf("forged attempt opened: %+v", a)
		}
	})
}
