package login

import (
	"net/url"
	"strings"
)

// maxRedirectLen bounds rd; a longer value is replaced, not truncated.
const maxRedirectLen = 2048

// maxDecodeRounds is how many layers of percent-encoding SafeRedirect peels
// off while looking for a hidden "//", "\", control character or
// dot-segment. A value still holding escapes after that is refused.
const maxDecodeRounds = 3

// SafeRedirect returns rd if it is a safe place to send a browser after
// signing in or out, else the tenant's root: prefix + "/" ("/" for host
// tenancy, where prefix is ""). Safe means a path on the same host
// (CONTRACT.md, Login endpoints; security catalogue §3 item 26):
//
//   - it starts with exactly one "/" (not "//", not "/\"), so it has no
//     scheme and no authority;
//   - every byte is printable ASCII other than "\" and "#": no spaces, tabs,
//     CR/LF or other control characters, nothing a browser might strip or
//     fold into a "/";
//   - neither the path nor any percent-decoding of it (up to three layers,
//     "%252F" included) contains "//", "\", a control character or a "." or
//     ".." segment, and every escape is well-formed;
//   - the decoded query contains no control character;
//   - with a prefix ("/org/acme" for path tenancy), the path, raw and
//     decoded, is the prefix or lies under prefix + "/".
//
// rd is returned unchanged when it passes, so the query string survives.
func SafeRedirect(rd, prefix string) string {
	fallback := prefix + "/"
	if rd == "" || len(rd) > maxRedirectLen || rd[0] != '/' {
		return fallback
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			return fallback
		}
	}
	path, query, _ := strings.Cut(rd, "?")
	layer := path
	for round := 0; ; round++ {
		if !safePathLayer(layer, prefix) {
			return fallback
		}
		if !strings.Contains(layer, "%") {
			break
		}
		if round == maxDecodeRounds {
			return fallback
		}
		d, err := url.PathUnescape(layer)
		if err != nil {
			return fallback
		}
		layer = d
	}
	if query != "" {
		q, err := url.QueryUnescape(query)
		if err != nil || hasControl(q) {
			return fallback
		}
	}
	return rd
}

// safePathLayer checks one (raw or decoded) form of the path.
func safePathLayer(p, prefix string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, `\`) || hasControl(p) {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
		return false
	}
	return true
}

// hasControl reports whether s holds an ASCII control character (including
// tab, CR, LF and NUL) or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
