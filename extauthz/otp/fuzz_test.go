package otp

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseCode: whatever is typed, ParseCode accepts only six ASCII
// digits after dropping spaces, tabs and dashes, and what it returns
// verifies exactly as the digits would.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"123456", " 123 456", "123-456", "12345", "1234567", "abcdef", "１２３４５６", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := ParseCode(s)
		if !ok {
			return
		}
		if len(s) > maxCodeInput || len(code) != Digits {
			t.Fatalf("ParseCode(%q) = %q", s, code)
		}
		for _, c := range []byte(code) {
			if c < '0' || c > '9' {
				t.Fatalf("ParseCode(%q) = %q holds a non-digit", s, code)
			}
		}
		if stripped := strings.NewReplacer(" ", "", "\t", "", "-", "").Replace(s); stripped != code {
			t.Fatalf("ParseCode(%q) = %q, want %q", s, code, stripped)
		}
		now := time.Unix(1_700_000_000, 0)
		if _, ok := Verify(rfcSecret, code, now, 0); ok != (code == Code(rfcSecret, Step(now)) ||
			code == Code(rfcSecret, Step(now)-1) || code == Code(rfcSecret, Step(now)+1)) {
			t.Fatalf("Verify(%q) = %v", code, ok)
		}
	})
}

// FuzzParseRecoveryCode: what ParseRecoveryCode accepts is ten
// characters of the alphabet, the same for every spelling of it, and
// formats back to a code that parses to itself.
func FuzzParseRecoveryCode(f *testing.F) {
	for _, s := range []string{"abcde-fghjk", "ABCDE FGHJK", "0123456789", "abcde-fghio", "", "-----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := ParseRecoveryCode(s)
		if !ok {
			return
		}
		if len(code) != recoveryLen || strings.Trim(code, recoveryAlphabet) != "" {
			t.Fatalf("ParseRecoveryCode(%q) = %q", s, code)
		}
		again, ok := ParseRecoveryCode(FormatRecoveryCode(code))
		if !ok || again != code {
			t.Fatalf("code %q formatted and parsed again: %q, %v", code, again, ok)
		}
	})
}
