package tenants

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// ErrBadHost is returned (wrapped) by CanonicalHost and CanonicalDomain for
// anything that is not a well-formed host name.
var ErrBadHost = errors.New("not a valid host name")

// maxRawHost bounds the input CanonicalHost looks at; anything longer cannot
// be a 253-byte name plus a port, however it is encoded.
const maxRawHost = 1024

// CanonicalHost returns the canonical form of a request's host (Envoy's
// :authority), the form tenant domains are stored in and compared as:
//
//   - ASCII letters lower-cased; nothing else is case-folded or NFKC-mapped;
//   - a port removed, which must be numeric 1-65535 (":abc", ":", ":0",
//     ":99999" are errors);
//   - one trailing dot removed ("acme.app.test." is "acme.app.test", but
//     "acme.app.test.." is an error);
//   - every label a DNS label: letters, digits and hyphens, 1-63 bytes, no
//     leading or trailing hyphen, the whole name at most 253 bytes;
//   - non-ASCII labels converted to A-labels ("xn--…") with the IDNA2008
//     registration profile (idna.Registration), which refuses characters that
//     UTS #46 would map: fullwidth "ａcme" is an error, never "acme". A
//     Cyrillic lookalike "аcme" becomes its own xn-- label and so never equals
//     "acme". Labels already in "xn--" form are checked and re-encoded the same
//     way.
//
// Userinfo ("user@host"), percent-encoding, whitespace, control characters
// and empty input are errors.
//
// IP literals are returned rather than refused, so that the resolver can
// answer them with "unknown tenant" (404) instead of "bad request": an IPv4
// address comes back as its dotted-decimal form, an IPv6 address in brackets
// in its canonical RFC 5952 text ("[::1]"), zones refused. IsIPHost reports
// whether a canonical host is one. So the output contains only [a-z0-9.-],
// except for a bracketed IPv6 literal. CanonicalHost is idempotent.
//
// Errors wrap ErrBadHost.
func CanonicalHost(raw string) (string, error) {
	return canonical(raw, true)
}

// CanonicalDomain is CanonicalHost for the domain names in a tenant file and
// in --base-domain: the same rules, but a port is an error, and so is an IP
// address or anything shaped like one (a name whose last label is all digits,
// such as "127.0.0.1" or "10.1").
func CanonicalDomain(raw string) (string, error) {
	h, err := canonical(raw, false)
	if err != nil {
		return "", err
	}
	if IsIPHost(h) {
		return "", fmt.Errorf("%w: an IP address is not a domain name", ErrBadHost)
	}
	return h, nil
}

// IsIPHost reports whether a canonical host (the output of CanonicalHost) is
// an IP literal or shaped like one: a bracketed IPv6 address, or a name whose
// last label is all digits (dotted IPv4, but also "10.1" or "2130706433",
// which some resolvers read as addresses). No tenant is ever reached at such a
// host.
func IsIPHost(canonical string) bool {
	if strings.HasPrefix(canonical, "[") {
		return true
	}
	last := canonical[strings.LastIndexByte(canonical, '.')+1:]
	if last == "" {
		return false
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}

func canonical(raw string, allowPort bool) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%w: empty", ErrBadHost)
	}
	if len(raw) > maxRawHost {
		return "", fmt.Errorf("%w: too long", ErrBadHost)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return "", fmt.Errorf("%w: contains a space or control character", ErrBadHost)
		case c == '@':
			return "", fmt.Errorf("%w: contains userinfo", ErrBadHost)
		case strings.IndexByte(`/\?#%,;"'<>`+"`", c) >= 0:
			return "", fmt.Errorf("%w: contains %q", ErrBadHost, c)
		}
	}
	host := raw
	if strings.HasPrefix(host, "[") {
		return canonicalIPv6(host, allowPort)
	}
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if !allowPort {
			return "", fmt.Errorf("%w: a port is not allowed here", ErrBadHost)
		}
		if err := checkPort(host[i+1:]); err != nil {
			return "", err
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", fmt.Errorf("%w: empty", ErrBadHost)
	}

	labels := strings.Split(host, ".")
	for i, l := range labels {
		lower, ascii := lowerASCII(l)
		if ascii && !strings.HasPrefix(lower, "xn--") {
			labels[i] = lower
			continue
		}
		// IDNA2008 registration profile: refuses (rather than maps) anything
		// UTS #46 would fold, so no lookalike is silently turned into ASCII.
		a, err := idna.Registration.ToASCII(lower)
		if err != nil {
			return "", fmt.Errorf("%w: label %d is not a valid internationalised label", ErrBadHost, i+1)
		}
		labels[i] = a
	}
	for i, l := range labels {
		if !validDNSLabel(l) {
			return "", fmt.Errorf("%w: label %d is not a DNS label (letters, digits, hyphens; 1-63 long; no hyphen at either end)", ErrBadHost, i+1)
		}
	}
	out := strings.Join(labels, ".")
	if len(out) > 253 {
		return "", fmt.Errorf("%w: longer than 253 bytes", ErrBadHost)
	}
	return out, nil
}

// canonicalIPv6 handles "[addr]" and "[addr]:port".
func canonicalIPv6(host string, allowPort bool) (string, error) {
	end := strings.IndexByte(host, ']')
	if end < 0 {
		return "", fmt.Errorf("%w: unterminated IPv6 literal", ErrBadHost)
	}
	if rest := host[end+1:]; rest != "" {
		if !allowPort {
			return "", fmt.Errorf("%w: a port is not allowed here", ErrBadHost)
		}
		if rest[0] != ':' {
			return "", fmt.Errorf("%w: junk after IPv6 literal", ErrBadHost)
		}
		if err := checkPort(rest[1:]); err != nil {
			return "", err
		}
	}
	a, err := netip.ParseAddr(host[1:end])
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", fmt.Errorf("%w: not an IPv6 address", ErrBadHost)
	}
	return "[" + a.String() + "]", nil
}

// checkPort accepts a decimal port 1-65535 (at most 5 digits).
func checkPort(p string) error {
	if p == "" || len(p) > 5 {
		return fmt.Errorf("%w: port must be a number from 1 to 65535", ErrBadHost)
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return fmt.Errorf("%w: port must be a number from 1 to 65535", ErrBadHost)
		}
		n = n*10 + int(p[i]-'0')
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("%w: port must be a number from 1 to 65535", ErrBadHost)
	}
	return nil
}

// lowerASCII lower-cases ASCII letters only and reports whether s is ASCII.
func lowerASCII(s string) (string, bool) {
	ascii, upper := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			ascii = false
		} else if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		return s, ascii
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b), ascii
}

// validDNSLabel: LDH, 1-63 bytes, no hyphen at either end, lower case.
func validDNSLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
