package login

import (
	"net/http"
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
