// Package test holds tenantgate's end-to-end tests: a real Envoy (the shipped
// envoy/envoy.yaml, ports rewritten) in front of the echo upstream, asking a
// real `tenantgate serve` built from this tree, as test/internal/stack starts
// them. Requests are raw HTTP/1.1 written to Envoy's listener, so every
// header name, case, duplicate and path byte is exactly what a hostile
// client would send.
package test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// baseDomain is the --base-domain of the tenantgate under test: tenant acme
// lives at acme.app.test.
const baseDomain = stack.BaseDomain

// Fixture users of tenantFile.
var (
	alice = stack.User{Email: "alice@acme.test", Password: "alice-password-1"}
	carol = stack.User{Email: "carol@acme.test", Password: "carol-password-1"}
	bob   = stack.User{Email: "bob@example.test", Password: "bob-shared-password"}
)

// tenantFile is the fixture: two password tenants, each with an anonymous
// /public/ area and an admins-only /admin/ area.
const tenantFile = `tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods:
      - type: password
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, permission: "admin:access"}
  - id: globex
    name: Globex Corporation
    emailDomains: [globex.test]
    methods:
      - type: password
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, permission: "admin:access"}
`

// fixtureMemberships are the users of tenantFile.
var fixtureMemberships = []stack.Membership{
	{User: alice, Tenant: "acme", Role: "member"},
	{User: carol, Tenant: "acme", Role: "admin"},
	{User: bob, Tenant: "acme", Role: "member"},
	{User: bob, Tenant: "globex", Role: "member"}, // same person: the membership only
}

// harness is one running stack as this package's tests drive it: raw
// HTTP/1.1 to Envoy (send) and a TLS front before it (tlsFront).
type harness struct {
	*stack.Stack
}

// startHarness starts a stack (stack.Start) with opts, recording what Envoy
// routes to tenantgate's HTTP port (Stack.SignIn). Unless opts name other
// tenants (stack.Tenants), the database holds tenantFile and
// fixtureMemberships; unless they say stack.SecureCookies, tenantgate runs
// with --insecure-cookies.
func startHarness(t *testing.T, opts ...stack.Option) *harness {
	t.Helper()
	fixture := []stack.Option{stack.Tenants(func() string { return tenantFile }, fixtureMemberships...), stack.RecordSignIn()}
	return &harness{stack.Start(t, append(fixture, opts...)...)}
}

// tlsFront terminates TLS on ln (a 127.0.0.1 listener) for baseDomain and
// every host under it, handing each request to Envoy with its Host
// unchanged, as a load balancer in front of Envoy would. It stops when the
// test ends. The returned transport trusts only the front's certificate and
// dials the front for those hosts whatever port a URL names, and
// everything else (an IdP on 127.0.0.1) directly. Envoy tells tenantgate
// the port it was reached on (x-forwarded-port, its own), which tenantgate
// puts in the URLs it builds (redirect_uri, SAML ACS): clients that follow
// those should name Envoy's port, as behind a balancer on the same port.
func (s *harness) tlsFront(t *testing.T, ln net.Listener) *http.Transport {
	t.Helper()
	cert := stack.NewCertificate(t)
	envoy := &url.URL{Scheme: "http", Host: s.EnvoyAddr}
	front := httptest.NewUnstartedServer(frontProxy(envoy, &http.Transport{ResponseHeaderTimeout: 30 * time.Second}))
	front.Listener.Close()
	front.Listener = ln
	front.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
	front.StartTLS()
	t.Cleanup(front.Close)

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == baseDomain || strings.HasSuffix(host, "."+baseDomain) {
				addr = ln.Addr().String()
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
	}
}

// frontProxy is the TLS front's handler: every request to envoy through
// transport, its Host unchanged.
func frontProxy(envoy *url.URL, transport http.RoundTripper) http.Handler {
	return stack.WholeBody(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(envoy)
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
	})
}

// header is one request header line, sent exactly as written.
type header struct{ name, value string }

// request is a raw HTTP/1.1 request to Envoy.
type request struct {
	method  string // default GET
	host    string // the Host header; "" sends none
	target  string // the request target, byte for byte
	headers []header
	body    string
}

// response is what came back, with the body read.
type response struct {
	*http.Response
	body []byte
}

// json decodes the body into v, failing the test if it is not JSON.
func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not JSON (%v): %q", err, r.body)
	}
}

// errorCode returns the "error" field of a JSON error body, or "" if the body
// is not one.
func (r *response) errorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(r.body, &e) != nil {
		return ""
	}
	return e.Error
}

// cookie returns the Set-Cookie of that name, or nil.
func (r *response) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (r *response) String() string {
	body := r.body
	if len(body) > 600 {
		body = append(body[:600:600], "…"...)
	}
	var h strings.Builder
	_ = r.Header.Write(&h)
	return fmt.Sprintf("%s\n%s\n%s", r.Status, h.String(), body)
}

// send writes req to Envoy on a fresh connection and reads the response.
func (s *harness) send(t *testing.T, req request) *response {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, req.target)
	if req.host != "" {
		fmt.Fprintf(&b, "Host: %s\r\n", req.host)
	}
	for _, h := range req.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h.name, h.value)
	}
	if req.body != "" || method == http.MethodPost {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(req.body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(req.body)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.EnvoyAddr)
	if err != nil {
		t.Fatalf("dial envoy: %v", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// Envoy may answer (431, 400) and close before it has read everything;
	// its answer is what counts, so a failed write is reported only if no
	// response can be read either.
	_, werr := io.WriteString(conn, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s (Host %s): read response: %v (write: %v)", method, req.target, req.host, err, werr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s %s: read body: %v", method, req.target, err)
	}
	return &response{Response: resp, body: body}
}
