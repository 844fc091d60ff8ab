package otp

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 seed of RFC 6238 Appendix B.
var rfcSecret = []byte("12345678901234567890")

// TestCodeRFC6238 checks Code against RFC 6238 Appendix B's SHA-1
// vectors, cut to the six digits apps show (the last six of the eight).
func TestCodeRFC6238(t *testing.T) {
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := Code(rfcSecret, Step(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("code at %d = %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1111111109, 0)
	cur := Step(now)
	for _, tc := range []struct {
		name     string
		step     int64
		after    int64
		wantOK   bool
		wantStep int64
	}{
		{"current", cur, 0, true, cur},
		{"one step back", cur - 1, 0, true, cur - 1},
		{"one step ahead", cur + 1, 0, true, cur + 1},
		{"two steps back", cur - 2, 0, false, 0},
		{"two steps ahead", cur + 2, 0, false, 0},
		{"the step already used", cur, cur, false, 0},
		{"a step before the one used", cur - 1, cur, false, 0},
		{"a step after the one used", cur + 1, cur, true, cur + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step, ok := Verify(rfcSecret, Code(rfcSecret, tc.step), now, tc.after)
			if ok != tc.wantOK || step != tc.wantStep {
				t.Errorf("Verify = %d, %v; want %d, %v", step, ok, tc.wantStep, tc.wantOK)
			}
		})
	}
	if _, ok := Verify(rfcSecret, "000000", now, 0); ok && Code(rfcSecret, cur) != "000000" {
		t.Error("a wrong code verified")
	}
	if _, ok := Verify([]byte("another secret......"), Code(rfcSecret, cur), now, 0); ok {
		t.Error("another secret's code verified")
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]string{
		"123456": "123456", " 123 456 ": "123456", "123-456": "123456", "\t000000": "000000",
		"12345": "", "1234567": "", "12345a": "", "１２３４５６": "", "": "", "123456\n": "",
		strings.Repeat(" ", 40) + "123456": "",
	} {
		got, ok := ParseCode(in)
		if ok != (want != "") || got != want {
			t.Errorf("ParseCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodes {
		t.Fatalf("%d codes, want %d", len(codes), RecoveryCodes)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != recoveryLen+1 || c[5] != '-' {
			t.Errorf("code %q is not two groups of five", c)
		}
		n, ok := ParseRecoveryCode(c)
		if !ok {
			t.Fatalf("code %q does not parse", c)
		}
		if seen[n] {
			t.Errorf("code %q twice", c)
		}
		seen[n] = true
		if m, ok := ParseRecoveryCode(" " + strings.ToUpper(strings.ReplaceAll(c, "-", " ")) + " "); !ok || m != n {
			t.Errorf("code %q typed in upper case with spaces: %q, %v", c, m, ok)
		}
	}
	if len(recoveryAlphabet) != 32 {
		t.Fatalf("the recovery alphabet has %d characters, want 32", len(recoveryAlphabet))
	}
	for _, bad := range []string{"", "abcde", "abcde-fghij-k", "abcde-fghio", "abcdeifghj", "abcde_fghjk", strings.Repeat("a", 100)} {
		if c, ok := ParseRecoveryCode(bad); ok {
			t.Errorf("ParseRecoveryCode(%q) = %q, accepted", bad, c)
		}
	}
	if HashRecoveryCode("abcdefghjk", "t/u1") == HashRecoveryCode("abcdefghjk", "t/u2") {
		t.Error("a recovery code hashes the same for two accounts")
	}
}

func TestURIAndSecretText(t *testing.T) {
	secret := bytes.Repeat([]byte{0xff}, SecretBytes)
	u, err := url.Parse(URI("Acme Corp", "alice@acme.test", secret))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Acme Corp:alice@acme.test" ||
		q.Get("secret") != strings.Repeat("7", 32) || q.Get("issuer") != "Acme Corp" ||
		q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("URI = %s", u)
	}
	if got := SecretText(secret); got != "7777 7777 7777 7777 7777 7777 7777 7777" {
		t.Errorf("SecretText = %q", got)
	}
}

func TestNewQR(t *testing.T) {
	qr, err := NewQR(URI("Acme", "alice@acme.test", rfcSecret))
	if err != nil {
		t.Fatal(err)
	}
	// Version 5 or so plus the quiet zone; every command a unit-high run.
	if qr.Size < 21 || qr.Size > 80 || !strings.HasPrefix(qr.Path, "M") || strings.ContainsAny(qr.Path, "<>\"'&") {
		t.Errorf("QR size %d, path %.40q…", qr.Size, qr.Path)
	}
}
