// Package idpclient builds the HTTP client tenantgate uses to talk to
// tenants' identity providers: OIDC discovery and JWKS, token and userinfo
// endpoints, SAML metadata.
//
// Every IdP URL comes from a tenant file, so a tenant administrator (or
// whoever can write a tenant's method) chooses where tenantgate connects.
// Without limits that is server-side request forgery: an "issuer" of
// http://169.254.169.254/ reads the cloud metadata service, one of
// https://10.0.0.5/ probes the private network. The client therefore refuses,
// for every connection it opens, including each redirect hop:
//
//   - any scheme but https; plain http only when AllowLoopbackHTTP is set and
//     the connection goes to a loopback address (tests, local development);
//   - unspecified, link-local (169.254.0.0/16, fe80::/10), multicast,
//     broadcast and reserved addresses, and the known cloud metadata
//     addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200,
//     168.63.129.16), always;
//   - loopback (127.0.0.0/8, ::1) unless AllowLoopbackHTTP;
//   - private and shared address space (10/8, 172.16/12, 192.168/16,
//     100.64/10, fc00::/7) unless AllowPrivateNetworks. Enterprise IdPs on
//     private networks exist, but a default that lets every tenant probe the
//     deployment's own network is worse; operators who need it opt in.
//
// The address check runs at dial time, on the address actually connected to
// (net.Dialer.Control), not on the URL: a host name that resolves to a public
// address when checked and to 169.254.169.254 when dialled (DNS rebinding) is
// still refused. Proxies from the environment are ignored for the same
// reason.
//
// Responses are bounded: a whole-request timeout (default 10 s) and a body
// limit (default 1 MiB); reading past the limit is an error wrapping
// ErrBodyTooLarge, never a silent truncation. At most 3 redirects are
// followed, never from https to http.
package idpclient
