package login

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// HeaderForwardedPort carries the port the browser connected to. Envoy's
// strip_any_host_port (envoy/envoy.yaml) takes the port off the Host header
// so tenants resolve on the host alone, and the /_auth/ routes send it here
// instead (%DOWNSTREAM_LOCAL_PORT%, overwriting a client's copy); inline mode
// sets it from the Check's destination port.
const HeaderForwardedPort = "X-Forwarded-Port"

// withForwardedPort returns r with the port of HeaderForwardedPort put back
// on its Host, so the URLs the handler builds from the Host (redirect_uri,
// SAML ACS and entity id, the apex's links) send the browser back to the
// port it used. It changes nothing when the Host already has a port, when
// the header is absent, repeated or not a port number, or when the port is
// the scheme's default (those URLs leave it out). Tenant resolution is not
// affected: the resolver drops ports.
func withForwardedPort(r *http.Request, scheme string) *http.Request {
	vals := r.Header.Values(HeaderForwardedPort)
	if len(vals) != 1 || strings.ContainsAny(r.Host, ":[") {
		return r
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != vals[0] {
		return r
	}
	if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
		return r
	}
	r2 := r.WithContext(r.Context()) // a shallow copy; the caller's r is not changed
	r2.Host = r.Host + ":" + vals[0]
	return r2
}

// HeaderExternalAddress carries the address Envoy saw the client at.
// Envoy (use_remote_address: true) sets x-envoy-external-address to its
// trusted client address on every request it counts as external, but passes
// a client's copy on unchanged when it counts the request as internal
// (internal_address_config) or does not use the remote address at all; so
// envoy.yaml's /_auth/ routes also overwrite it with
// %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, the same address, whatever the
// client sent. Inline mode sets it from the Check's source address.
const HeaderExternalAddress = "X-Envoy-External-Address"

// headerForwardedFor is the X-Forwarded-For header: one entry per proxy
// hop, appended from the left, each the address that hop saw.
const headerForwardedFor = "X-Forwarded-For"

// clientAddress returns the address of the client r came from, for rate
// limits and logs, or the zero Addr when no usable address is found. hops
// is --trusted-proxy-hops: how many trusted proxies stand in front of
// Envoy.
//
// With hops 0 Envoy is the edge, and the client is the address Envoy saw:
// HeaderExternalAddress when r carries exactly one, else r.RemoteAddr's
// host. X-Forwarded-For is not read: every entry in it but Envoy's own may
// come from the client.
//
// With hops N > 0 each of the N proxies appends the address it saw to
// X-Forwarded-For, and Envoy appends the address of the last of them, so the
// N rightmost entries (all lines joined in order) are the proxies' own
// addresses and the client is the entry before them: the (N+1)th from the
// right. It is the address Envoy itself takes as the client with
// xff_num_trusted_hops: N, and the one Istio's
// gatewayTopology.numTrustedProxies: N puts in x-envoy-external-address.
// When X-Forwarded-For has fewer entries, or that entry is not an IP
// address (optionally with a port), the request did not come through the
// proxies as configured, and the client is the address Envoy saw, as with
// hops 0 (Envoy too falls back to the connection's address then).
func clientAddress(r *http.Request, hops int) netip.Addr {
	if hops > 0 {
		var entries []string
		for _, line := range r.Header.Values(headerForwardedFor) {
			entries = append(entries, strings.Split(line, ",")...)
		}
		if i := len(entries) - 1 - hops; i >= 0 {
			if a, ok := parseAddr(entries[i]); ok {
				return a
			}
		}
	}
	if vals := r.Header.Values(HeaderExternalAddress); len(vals) == 1 {
		if a, ok := parseAddr(vals[0]); ok {
			return a
		}
	}
	a, _ := parseAddr(r.RemoteAddr)
	return a
}

// parseAddr parses an IP address written alone or with a port ("192.0.2.1",
// "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]:443"), around spaces, with
// an IPv4-mapped IPv6 address unmapped and any zone dropped.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// addressKey is the rate-limit key of a client address: an IPv4 address as
// itself, an IPv6 address widened to its /64, which one client usually
// holds whole (and can change within at will), and "unknown" for no address.
func addressKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
