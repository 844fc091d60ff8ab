package login

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeRedirect(t *testing.T) {
	tests := []struct {
		name, rd, prefix, want string
	}{
		// Kept as they are.
		{"root", "/", "", "/"},
		{"path", "/docs/a", "", "/docs/a"},
		{"query kept", "/search?q=a%20b&x=1", "", "/search?q=a%20b&x=1"},
		{"encoded letter", "/%61dmin", "", "/%61dmin"},
		{"encoded space", "/a%20b", "", "/a%20b"},
		{"query with slashes", "/a?next=//x", "", "/a?next=//x"},
		{"dots inside a name", "/a..b/.c", "", "/a..b/.c"},
		{"prefix itself", "/org/acme", "/org/acme", "/org/acme"},
		{"under prefix", "/org/acme/docs?x=1", "/org/acme", "/org/acme/docs?x=1"},

		// Security catalogue §3 item 26: each replaced by the root.
		{"protocol-relative", "//evil.com", "", "/"},
		{"slash backslash", `/\evil.com`, "", "/"},
		{"absolute https", "https://evil.com", "", "/"},
		{"sibling host lookalike", "https://acme.app.example.com.evil.test", "", "/"},
		{"javascript", "javascript:alert(1)", "", "/"},
		{"encoded double slash", "%2F%2Fevil.com", "", "/"},
		{"slash encoded tab", "/%09/evil.com", "", "/"},

		// More of the same family.
		{"empty", "", "", "/"},
		{"relative", "docs", "", "/"},
		{"triple slash", "///evil.com", "", "/"},
		{"backslash anywhere", `/a\b`, "", "/"},
		{"backslash backslash", `\\evil.com`, "", "/"},
		{"raw tab", "/\t/evil.com", "", "/"},
		{"raw CR LF", "/a\r\nSet-Cookie: x=y", "", "/"},
		{"raw NUL", "/a\x00", "", "/"},
		{"space", "/a b", "", "/"},
		{"non-ascii", "/ä", "", "/"},
		{"fragment", "/a#b", "", "/"},
		{"slash then encoded slash", "/%2Fevil.com", "", "/"},
		{"encoded slashes mid-path", "/a%2F%2Fb", "", "/"},
		{"lower-case encoded", "/%2f%2fevil.com", "", "/"},
		{"encoded backslash", "/%5Cevil.com", "", "/"},
		{"double-encoded slashes", "/%252F%252Fevil.com", "", "/"},
		{"triple-encoded slashes", "/%25252F%25252Fevil.com", "", "/"},
		{"quadruple-encoded", "/%2525252F%2525252Fevil.com", "", "/"},
		{"encoded CR LF", "/a%0d%0aSet-Cookie:x", "", "/"},
		{"encoded NUL", "/a%00", "", "/"},
		{"encoded DEL", "/a%7f", "", "/"},
		{"malformed escape", "/a%zz", "", "/"},
		{"truncated escape", "/a%2", "", "/"},
		{"dot segment", "/a/../b", "", "/"},
		{"single dot segment", "/./a", "", "/"},
		{"trailing dot-dot", "/a/..", "", "/"},
		{"encoded dot-dot", "/a/%2e%2e/b", "", "/"},
		{"encoded dot", "/%2e/a", "", "/"},
		{"control in query", "/a?x=%0d%0a", "", "/"},
		{"malformed query escape", "/a?x=%zz", "", "/"},
		{"too long", "/" + strings.Repeat("a", 3000), "", "/"},
		{"data url", "data:text/html,x", "", "/"},
		{"scheme-relative with creds", "//user@evil.com", "", "/"},

		// Path tenancy: stay under the prefix.
		{"other tenant", "/org/globex/docs", "/org/acme", "/org/acme/"},
		{"prefix lookalike", "/org/acmex/docs", "/org/acme", "/org/acme/"},
		{"apex root", "/", "/org/acme", "/org/acme/"},
		{"escape by dot-dot", "/org/acme/../globex", "/org/acme", "/org/acme/"},
		{"escape by encoded dot-dot", "/org/acme/%2e%2e/globex", "/org/acme", "/org/acme/"},
		{"escape by encoded slash", "/org/acme%2F..%2Fglobex", "/org/acme", "/org/acme/"},
		{"prefixed protocol-relative", "//org/acme", "/org/acme", "/org/acme/"},
		{"prefix then absolute", "https://evil.com/org/acme", "/org/acme", "/org/acme/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SafeRedirect(tc.rd, tc.prefix); got != tc.want {
				t.Fatalf("SafeRedirect(%q, %q) = %q, want %q", tc.rd, tc.prefix, got, tc.want)
			}
		})
	}
}

// FuzzSafeRedirect checks the promise whatever the input: the result is a
// same-host path under the prefix that no decoding turns into anything else.
func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "/docs?x=1", "//evil.com", `/\evil.com`, "https://evil.com",
		"javascript:alert(1)", "%2F%2Fevil.com", "/%09/evil.com", "/%252F%252Fevil.com", "/a/../b",
		"/org/acme/x", "/org/acme/%2e%2e/globex"} {
		f.Add(s, "")
		f.Add(s, "/org/acme")
	}
	f.Fuzz(func(t *testing.T, rd, prefix string) {
		if prefix != "" && prefix != "/org/acme" {
			prefix = "/org/acme"
		}
		got := SafeRedirect(rd, prefix)
		if got == prefix+"/" {
			return
		}
		if got != rd {
			t.Fatalf("SafeRedirect(%q) = %q: neither rd nor the fallback", rd, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", got, err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q, which leaves the host: %#v", got, u)
		}
		if got[0] != '/' || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n\x00#") {
			t.Fatalf("accepted %q", got)
		}
		p := u.Path
		for range maxDecodeRounds + 1 {
			if strings.Contains(p, "//") || strings.Contains(p, `\`) || hasControl(p) {
				t.Fatalf("accepted %q, which decodes to %q", got, p)
			}
			if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
				t.Fatalf("accepted %q, which leaves %s", got, prefix)
			}
			d, err := url.PathUnescape(p)
			if err != nil {
				break
			}
			p = d
		}
	})
}
