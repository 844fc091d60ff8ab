package account

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
)

func newLinks(t testing.TB, now *time.Time) *Links {
	master, err := seal.NewSealer([]byte(strings.Repeat("m", seal.MasterKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLinks(master)
	if err != nil {
		t.Fatal(err)
	}
	l.Now = func() time.Time { return *now }
	return l
}

func TestLinkOpen(t *testing.T) {
	now := time.Now()
	l := newLinks(t, &now)
	tok, _, err := l.Issue(Link{Kind: KindReset, UserID: "u1", Email: "a@x.test", Password: l.PasswordFingerprint("h")}, "T1", ResetTTL)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := l.Open(tok, KindReset, "T1"); err != nil || k.UserID != "u1" {
		t.Fatalf("Open = %+v, %v", k, err)
	}
	for _, tc := range []struct{ name, tok, kind, tenant string }{
		{"other tenant", tok, KindReset, "T2"},
		{"other kind", tok, KindInvite, "T1"},
		{"altered", tok[:len(tok)-2] + "AA", KindReset, "T1"},
		{"empty", "", KindReset, "T1"},
		{"not base64url", "a+b/c=", KindReset, "T1"},
		{"too long", strings.Repeat("A", MaxTokenLen+1), KindReset, "T1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Open(tc.tok, tc.kind, tc.tenant); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Open = %v, want ErrInvalid", err)
			}
		})
	}
	now = now.Add(ResetTTL)
	if _, err := l.Open(tok, KindReset, "T1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open after expiry = %v", err)
	}
	if l.PasswordFingerprint("h") == l.PasswordFingerprint("h2") || strings.Contains(UseID(tok), tok) {
		t.Fatal("fingerprints or use ids leak their input")
	}
}

// FuzzOpen: no input makes Open panic or accept anything but a token it
// issued.
func FuzzOpen(f *testing.F) {
	now := time.Now()
	l := newLinks(f, &now)
	tok, _, _ := l.Issue(Link{Kind: KindInvite, Email: "a@x.test", Roles: []string{"member"}}, "T1", time.Hour)
	f.Add(tok)
	f.Add("")
	f.Add("AAAA")
	f.Add(tok[:20])
	f.Fuzz(func(t *testing.T, s string) {
		k, err := l.Open(s, KindInvite, "T1")
		if err == nil && s != tok {
			t.Fatalf("Open accepted a token it did not issue: %+v", k)
		}
	})
}

func FuzzDecodeToken(f *testing.F) {
	f.Add("abc_-")
	f.Add("a=b")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeToken(s)
		if err == nil && (len(s) > MaxTokenLen || len(b) == 0) {
			t.Fatalf("DecodeToken(%d bytes) accepted", len(s))
		}
	})
}
