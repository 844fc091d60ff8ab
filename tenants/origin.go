package tenants

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadOrigin is returned (wrapped) by ParseOrigin for anything that is not
// a serialised web origin.
var ErrBadOrigin = errors.New("not an origin")

// maxTrustedOrigins bounds a tenant's trustedOrigins.
const maxTrustedOrigins = 64

// Origin is a web origin (RFC 6454): a scheme, a canonical host and a port,
// the triple browsers compare to decide whether two URLs are same-origin.
type Origin struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is canonical (CanonicalHost): lower case, A-labels, IPv6 in
	// brackets.
	Host string
	// Port is the decimal port without leading zeros, or "" for the
	// scheme's default port (80 for http, 443 for https).
	Port string
}

// String is the origin's serialisation (RFC 6454 §6.2), the form of the
// Origin header and of trustedOrigins: "https://admin.acme.test",
// "http://localhost:3000".
func (o Origin) String() string {
	if o.Port == "" {
		return o.Scheme + "://" + o.Host
	}
	return o.Scheme + "://" + o.Host + ":" + o.Port
}

// ParseOrigin reads a serialised origin: "scheme://host[:port]" with scheme
// http or https (any case), a host as CanonicalHost accepts it (a domain or
// an IP literal) and an optional port 1-65535. The scheme's default port is
// dropped, so "https://Acme.Test:443" is https://acme.test. A path (even
// "/"), query, fragment, userinfo, wildcard and the opaque origin "null"
// are errors wrapping ErrBadOrigin.
func ParseOrigin(raw string) (Origin, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if raw == "null" {
			return Origin{}, fmt.Errorf("%w: the opaque origin null names no site", ErrBadOrigin)
		}
		return Origin{}, fmt.Errorf("%w: must look like https://host[:port]", ErrBadOrigin)
	}
	scheme, _ = lowerASCII(scheme)
	if scheme != "http" && scheme != "https" {
		return Origin{}, fmt.Errorf("%w: scheme must be http or https", ErrBadOrigin)
	}
	if strings.ContainsAny(rest, "/?#") {
		return Origin{}, fmt.Errorf("%w: an origin has no path, query or fragment (not even a trailing /)", ErrBadOrigin)
	}
	if strings.Contains(rest, "*") {
		return Origin{}, fmt.Errorf("%w: wildcards are not allowed; list each origin", ErrBadOrigin)
	}
	host, err := CanonicalHost(rest)
	if err != nil {
		return Origin{}, fmt.Errorf("%w: %w", ErrBadOrigin, err)
	}
	port := ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		port = strings.TrimLeft(rest[i+1:], "0") // CanonicalHost checked it is 1-65535
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	return Origin{Scheme: scheme, Host: host, Port: port}, nil
}

// trustedOrigins checks a tenant's trustedOrigins and stores each in its
// canonical form (Origin.String), which is how Check compares them.
func (v *validator) trustedOrigins(list []string) {
	if len(list) > maxTrustedOrigins {
		v.add("trustedOrigins: more than %d origins", maxTrustedOrigins)
		return
	}
	seen := map[string]int{}
	for i, raw := range list {
		o, err := ParseOrigin(raw)
		if err != nil {
			if len(raw) > maxURLLen {
				v.add("trustedOrigins[%d]: %v", i, err)
			} else {
				v.add("trustedOrigins[%d] %q: %v", i, raw, err)
			}
			continue
		}
		c := o.String()
		if j, dup := seen[c]; dup {
			v.add("trustedOrigins[%d] %q: duplicates trustedOrigins[%d]", i, raw, j)
			continue
		}
		seen[c] = i
		list[i] = c
	}
}

// mfa checks the second-factor policy: off (or empty), optional or
// required.
func (v *validator) mfa(policy string) {
	switch policy {
	case "", MFAOff, MFAOptional, MFARequired:
	default:
		v.add("mfa %q: must be off, optional or required", policy)
	}
}
