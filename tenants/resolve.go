package tenants

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors Resolve returns (wrapped). Callers compare with errors.Is.
var (
	// ErrBadRequest: the host or path is malformed or ambiguous (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownTenant: the request is well-formed but names no tenant (404).
	ErrUnknownTenant = errors.New("unknown tenant")
)

// DefaultPathPrefix is the path prefix of path tenancy when
// Resolver.PathPrefix is empty.
const DefaultPathPrefix = "/org"

// Resolver maps a request's host and path to exactly one tenant. The zero
// value has no base domains (only custom domains resolve) and the default path
// prefix. A Resolver is read-only once in use and safe for concurrent use.
type Resolver struct {
	// BaseDomains are canonical (CanonicalDomain) domains D for which
	// "<id>.D" is tenant <id> and D itself is the apex host. When they nest
	// ("app.test" and "eu.app.test"), the longest one a host is equal to or
	// under decides, so "eu.app.test" is an apex, never tenant "eu".
	BaseDomains []string
	// PathPrefix is the one-segment prefix of path tenancy on an apex host,
	// like "/org"; empty means DefaultPathPrefix.
	PathPrefix string
}

// Resolution is where Resolve placed a request.
type Resolution struct {
	// Tenant is the resolved tenant; nil exactly when Apex is true.
	Tenant *Tenant
	// Host is the canonical host.
	Host string
	// Apex: the host is a base domain and the path names no tenant.
	Apex bool
	// Prefix is "/org/<id>" when the tenant was resolved by path on an apex
	// host, else "". The tenant's own paths (rules, /_auth/) are below it.
	Prefix string
}

// Resolve finds the tenant a request is for, from its host (Envoy's
// :authority) and raw path (Envoy's :path, query included), and nothing else.
// In order:
//
//  1. The path is checked whatever the host: it must start with "/", and may
//     not contain dot-segments ("." or ".."), empty segments ("//"), a
//     backslash, ";", control characters, spaces or non-ASCII bytes, a
//     malformed %-escape, or an escape of "/", "\", ".", ";", "%", NUL or a
//     control character; once decoded it must be UTF-8 (so overlong forms
//     such as "%c0%ae" are refused). Rules match path prefixes, so a path the
//     upstream could read differently from tenantgate is refused outright
//     (ErrBadRequest). Only the NUL/control check applies to the query.
//  2. The host is canonicalised (CanonicalHost); failure is ErrBadRequest. An
//     IP literal (IsIPHost) resolves to no tenant: ErrUnknownTenant.
//  3. A host that is not a base domain and not under one is looked up as an
//     exact custom domain.
//  4. A host under a base domain resolves only by its label: "<id>.<base>"
//     with exactly one label that is an existing tenant id. Custom domains
//     are never consulted for such hosts, so no tenant can take over another
//     tenant's subdomain by registering it as its custom domain.
//  5. On an apex host (equal to a base domain) a path "<prefix>/<id>" or
//     "<prefix>/<id>/…" resolves to tenant <id> (Prefix "<prefix>/<id>").
//     The segment must be a tenant id exactly as written (no case folding,
//     no decoding): anything else is ErrBadRequest; an id that names no
//     tenant, or "<prefix>/" alone, is ErrUnknownTenant. Any other path is
//     Resolution{Apex: true}.
//
// Everything else (unknown hosts, "x.acme.<base>", "<base>.evil.test") is
// ErrUnknownTenant. Resolve never guesses and never falls back to a default
// tenant.
func (r *Resolver) Resolve(s *Snapshot, host, path string) (Resolution, error) {
	p, err := checkPath(path)
	if err != nil {
		return Resolution{}, err
	}
	h, err := CanonicalHost(host)
	if err != nil {
		return Resolution{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if IsIPHost(h) {
		return Resolution{}, fmt.Errorf("%w: host is an IP address", ErrUnknownTenant)
	}
	if s == nil {
		return Resolution{}, fmt.Errorf("%w: no tenants loaded", ErrUnknownTenant)
	}

	base := r.baseOf(h)
	if base == "" {
		if t := s.ByDomain(h); t != nil {
			return Resolution{Tenant: t, Host: h}, nil
		}
		return Resolution{}, fmt.Errorf("%w: no tenant has this domain", ErrUnknownTenant)
	}
	if h != base {
		label := h[:len(h)-len(base)-1]
		if !ValidTenantID(label) { // more than one label, or not an id
			return Resolution{}, fmt.Errorf("%w: not <id>.<base-domain>", ErrUnknownTenant)
		}
		if t := s.BySlug(label); t != nil {
			return Resolution{Tenant: t, Host: h}, nil
		}
		return Resolution{}, fmt.Errorf("%w: no tenant with this id", ErrUnknownTenant)
	}

	// The apex host: path tenancy.
	prefix := r.PathPrefix
	if prefix == "" {
		prefix = DefaultPathPrefix
	}
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok || rest == "" {
		return Resolution{Host: h, Apex: true}, nil
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok { // "/orgx/…" is not under "/org"
		return Resolution{Host: h, Apex: true}, nil
	}
	seg, _, _ := strings.Cut(rest, "/")
	if seg == "" {
		return Resolution{}, fmt.Errorf("%w: no tenant id after %s/", ErrUnknownTenant, prefix)
	}
	if !ValidTenantID(seg) {
		return Resolution{}, fmt.Errorf("%w: %s/ is not followed by a tenant id", ErrBadRequest, prefix)
	}
	t := s.BySlug(seg)
	if t == nil {
		return Resolution{}, fmt.Errorf("%w: no tenant with this id", ErrUnknownTenant)
	}
	return Resolution{Tenant: t, Host: h, Prefix: prefix + "/" + seg}, nil
}

// baseOf returns the longest base domain h equals or lies under, or "".
func (r *Resolver) baseOf(h string) string {
	best := ""
	for _, b := range r.BaseDomains {
		if b == "" || len(b) <= len(best) {
			continue
		}
		if h == b || (len(h) > len(b) && h[len(h)-len(b)-1] == '.' && strings.HasSuffix(h, b)) {
			best = b
		}
	}
	return best
}

// checkPath validates a raw :path (see Resolve) and returns its path part,
// without the query.
func checkPath(raw string) (string, error) {
	bad := func(why string) error { return fmt.Errorf("%w: path %s", ErrBadRequest, why) }
	if !strings.HasPrefix(raw, "/") {
		return "", bad("does not start with /")
	}
	p, query, _ := strings.Cut(raw, "?")
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < 0x20 || c == 0x7f {
			return "", bad("query contains a control character")
		}
	}
	decoded := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return "", bad("contains a space, control or non-ASCII byte")
		case c == '\\' || c == ';' || c == '#':
			return "", bad("contains a backslash, ';' or '#'")
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", bad("contains a malformed %-escape")
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if d < 0x20 || d == 0x7f || strings.IndexByte(`/\.;%`, d) >= 0 {
				return "", bad("contains an encoded separator, dot, percent or control character")
			}
			decoded = true
			i += 2
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return "", bad("contains a dot-segment")
		}
	}
	if strings.Contains(p, "//") {
		return "", bad("contains an empty segment")
	}
	if decoded && !utf8.ValidString(percentDecode(p)) {
		return "", bad("does not decode to UTF-8")
	}
	return p, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// percentDecode decodes a path whose escapes checkPath has already checked.
func percentDecode(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// ValidTenantID reports whether id is a well-formed tenant id (and role
// name): [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?, so 1-63 bytes, usable as a DNS
// label and a path segment as is.
func ValidTenantID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
