package tenants

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want "" means an error
	}{
		{"plain", "acme.app.test", "acme.app.test"},
		{"upper case", "ACME.App.Test", "acme.app.test"},
		{"port 443", "acme.app.test:443", "acme.app.test"},
		{"port 8443", "acme.app.test:8443", "acme.app.test"},
		{"port 65535", "acme.app.test:65535", "acme.app.test"},
		{"port 1", "acme.app.test:1", "acme.app.test"},
		{"trailing dot", "acme.app.test.", "acme.app.test"},
		{"trailing dot and port", "acme.app.test.:443", "acme.app.test"},
		{"single label", "localhost", "localhost"},
		{"digits and hyphens", "a-1.b2.test", "a-1.b2.test"},
		{"63-byte label", strings.Repeat("a", 63) + ".test", strings.Repeat("a", 63) + ".test"},
		{"IDN to A-label", "bücher.test", "xn--bcher-kva.test"},
		{"A-label kept", "xn--bcher-kva.test", "xn--bcher-kva.test"},
		{"A-label lower-cased", "XN--BCHER-KVA.test", "xn--bcher-kva.test"},
		{"cyrillic lookalike is its own label", "\u0430cme.app.test", "xn--cme-5cd.app.test"},
		{"IPv4 literal passes through", "127.0.0.1", "127.0.0.1"},
		{"IPv4 literal with port", "10.0.0.1:8080", "10.0.0.1"},
		{"IPv6 literal canonical", "[0:0::1]", "[::1]"},
		{"IPv6 literal with port", "[2001:DB8::1]:443", "[2001:db8::1]"},

		{"empty", "", ""},
		{"only a port", ":443", ""},
		{"port letters", "acme.app.test:abc", ""},
		{"empty port", "acme.app.test:", ""},
		{"port zero", "acme.app.test:0", ""},
		{"port too big", "acme.app.test:99999", ""},
		{"port 65536", "acme.app.test:65536", ""},
		{"port with sign", "acme.app.test:+443", ""},
		{"long port", "acme.app.test:000443", ""},
		{"two ports", "acme.app.test:443:443", ""},
		{"two trailing dots", "acme.app.test..", ""},
		{"empty label", "acme..app.test", ""},
		{"leading dot", ".acme.app.test", ""},
		{"only a dot", ".", ""},
		{"userinfo", "user@acme.app.test", ""},
		{"userinfo with password", "u:p@acme.app.test", ""},
		{"underscore", "ac_me.app.test", ""},
		{"leading hyphen", "-acme.app.test", ""},
		{"trailing hyphen", "acme-.app.test", ""},
		{"64-byte label", strings.Repeat("a", 64) + ".test", ""},
		{"longer than 253", strings.Repeat(strings.Repeat("a", 50)+".", 5) + "test", ""},
		{"space", "acme .app.test", ""},
		{"tab", "acme\t.app.test", ""},
		{"NUL", "acme\x00.app.test", ""},
		{"CRLF", "acme.app.test\r\nx", ""},
		{"slash", "acme.app.test/x", ""},
		{"backslash", "acme.app.test\\x", ""},
		{"percent-encoded", "acme%2eapp.test", ""},
		{"fullwidth letter", "\uff41cme.app.test", ""},
		{"fullwidth dot", "acme\uff0eapp.test", ""},
		{"ideographic dot", "acme\u3002app.test", ""},
		{"upper-case non-ASCII", "\u0410cme.app.test", ""},
		{"ASCII-only A-label", "xn--acme-.app.test", ""},
		{"bogus A-label", "xn--.app.test", ""},
		{"sharp s is not folded", "stra\u00dfe.test", "xn--strae-oqa.test"},
		{"zero-width joiner", "ac\u200dme.test", ""},
		{"invalid UTF-8", "ac\xffme.test", ""},
		{"bare IPv6", "::1", ""},
		{"unterminated IPv6", "[::1", ""},
		{"IPv6 zone", "[fe80::1%25eth0]", ""},
		{"IPv4 in brackets", "[127.0.0.1]", ""},
		{"junk after IPv6", "[::1]x", ""},
		{"IPv6 bad port", "[::1]:0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalHost(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("CanonicalHost(%q) = %q, want an error", tc.in, got)
				}
				if !errors.Is(err, ErrBadHost) {
					t.Errorf("error %v does not wrap ErrBadHost", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CanonicalHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if again, err := CanonicalHost(got); err != nil || again != got {
				t.Errorf("not idempotent: CanonicalHost(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalHostLookalikesDiffer(t *testing.T) {
	acme, _ := CanonicalHost("acme.app.test")
	for _, in := range []string{"\u0430cme.app.test", "\uff41cme.app.test", "ACME\u0307.app.test", "acm\u0435.app.test"} {
		got, err := CanonicalHost(in)
		if err == nil && got == acme {
			t.Errorf("CanonicalHost(%q) = %q, the same as acme", in, got)
		}
	}
}

func TestCanonicalDomain(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "Login.Acme.Test.", "login.acme.test"},
		{"IDN", "BÜcher.test", ""}, // Ü is not lower-cased: only ASCII is
		{"IDN lower", "bücher.test", "xn--bcher-kva.test"},
		{"port refused", "acme.test:443", ""},
		{"IPv4 refused", "127.0.0.1", ""},
		{"numeric last label refused", "10.1", ""},
		{"IPv6 refused", "[::1]", ""},
		{"bad", "bad..host", ""},
		{"numeric first label allowed", "1password.test", "1password.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalDomain(tc.in)
			if tc.want == "" {
				if err == nil || !errors.Is(err, ErrBadHost) {
					t.Fatalf("CanonicalDomain(%q) = %q, %v; want ErrBadHost", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CanonicalDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIsIPHost(t *testing.T) {
	for in, want := range map[string]bool{
		"127.0.0.1": true, "[::1]": true, "2130706433": true, "10.1": true,
		"acme.test": false, "1password.test": false, "a.b1": false, "localhost": false,
	} {
		if got := IsIPHost(in); got != want {
			t.Errorf("IsIPHost(%q) = %v, want %v", in, got, want)
		}
	}
}
