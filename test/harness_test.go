// Package test holds tenantgate's end-to-end tests: a real Envoy (the shipped
// envoy/envoy.yaml, ports rewritten) in front of the echo upstream, asking a
// real `tenantgate serve` built from this tree. Requests are raw HTTP/1.1
// written to Envoy's listener, so every header name, case, duplicate and path
// byte is exactly what a hostile client would send.
package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/envoyconf"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// baseDomain is the --base-domain of the tenantgate under test: tenant acme
// lives at acme.app.test.
const baseDomain = "app.test"

// recorder is a reverse proxy in front of tenantgate's HTTP port that keeps
// the headers of every request Envoy sends there, so tests can prove what
// reached the sign-in handler.
type recorder struct {
	mu   sync.Mutex
	seen []echo.Request
}

func (r *recorder) requests() []echo.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]echo.Request(nil), r.seen...)
}

// proxy forwards every request to target through transport (nil means
// http.DefaultTransport), recording its headers first.
func (r *recorder) proxy(target *url.URL, transport http.RoundTripper) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			// Rewrite drops the X-Forwarded-* headers; hand Envoy's on
			// unchanged, as if this hop were not here.
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		Transport: transport,
	}
	return wholeBody(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen := echo.Request{Method: req.Method, Path: req.RequestURI, Host: req.Host, Headers: map[string][]string{}}
		for k, v := range req.Header {
			seen.Headers[strings.ToLower(k)] = append([]string(nil), v...)
		}
		r.mu.Lock()
		r.seen = append(r.seen, seen)
		r.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
}

// maxProxiedBody bounds the request bodies the harness's proxies hold in
// memory (wholeBody); a larger one is answered 413 by the proxy itself.
const maxProxiedBody = 8 << 20

// wholeBody reads a request's body into memory before next sees it, so that
// a reverse proxy in next sends its upstream a body of its own. Without it
// the harness's proxies now and then cut a response short that the upstream
// had sent in full (golang/go#40747): Go's HTTP/1 server closes an unread
// request body as soon as a handler starts writing its response
// (chunkWriter.writeHeader), while the proxy's http.Transport may not have
// finished with that body yet (having sent the declared Content-Length, it
// reads once more to check for extra bytes, transferWriter.writeBody). When
// that read comes after the close, it fails (http.ErrBodyReadAfterClose),
// the Transport closes its connection to the upstream mid-response, and the
// client reads an unexpected EOF; Envoy, the recorder's client, logs the
// truncated response as UPE, and the TLS front's as DC. A fast upstream (a
// sign-in page answered in a millisecond) on a loaded machine opens that
// window often enough to fail TestTenancyEndToEnd one run in four.
func wholeBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxProxiedBody+1))
			if err != nil {
				http.Error(w, "read request body: "+err.Error(), http.StatusBadGateway)
				return
			}
			if len(b) > maxProxiedBody {
				http.Error(w, "request body too large for the test proxy", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		next.ServeHTTP(w, r)
	})
}

// stack is one running Envoy + tenantgate + echo upstream.
type stack struct {
	envoyAddr  string
	tenantgate *proc.Process
	envoy      *proc.Process
	upstream   *echo.Handler
	signin     *recorder // requests Envoy routed to tenantgate's HTTP port
	// bin is the tenantgate binary under test, and admin the base URL of
	// its admin port (its admin API answers with withServeArgs'
	// --admin-token-file).
	bin, admin string
}

// user is a person the stack's database knows.
type user struct {
	email, password string
}

var (
	alice = user{"alice@acme.test", "alice-password-1"}
	carol = user{"carol@acme.test", "carol-password-1"}
	bob   = user{"bob@example.test", "bob-shared-password"}
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

// membership is one `users add`: u becomes a member of tenant with role.
type membership struct {
	u      user
	tenant string
	role   string
}

// fixtureMemberships are the users of tenantFile.
var fixtureMemberships = []membership{
	{alice, "acme", "member"},
	{carol, "acme", "admin"},
	{bob, "acme", "member"},
	{bob, "globex", "member"}, // same person: the membership only
}

// stackConfig is what startStack provisions and how it runs tenantgate.
type stackConfig struct {
	// tenantFile returns the tenant file; it is called once tenantgate is
	// built.
	tenantFile  func() string
	memberships []membership
	// applyArgs and serveArgs are extra flags for `tenants apply` and
	// `serve`.
	applyArgs, serveArgs []string
	// secureCookies runs serve without --insecure-cookies: https origins,
	// __Host- cookies marked Secure (put a TLS front before Envoy).
	secureCookies bool
	// envoyListener, if set, holds the port Envoy is to listen on until
	// Envoy starts.
	envoyListener net.Listener
	// envoyConfig is the shipped config Envoy runs (a file in envoy/), and
	// envoyEdits change its text before the ports are rewritten.
	envoyConfig string
	envoyEdits  []func(config string) string
	// serveConfig, if set, is written to a file serve reads with --config.
	serveConfig string
}

// stackOption changes what startStack provisions or how it runs.
type stackOption func(*stackConfig)

// withTenants replaces the fixture tenants (and their password users) with
// the tenant file f returns and the given memberships. startStack calls f
// after building tenantgate, so f may wait for an IdP started meanwhile.
func withTenants(f func() string, ms ...membership) stackOption {
	return func(c *stackConfig) {
		c.tenantFile = f
		c.memberships = ms
	}
}

// withLoopbackHTTPIdP lets tenants use http:// IdPs on loopback addresses
// (--allow-loopback-http-idp on apply and serve), for a local Keycloak.
func withLoopbackHTTPIdP() stackOption {
	return func(c *stackConfig) {
		c.applyArgs = append(c.applyArgs, "--allow-loopback-http-idp")
		c.serveArgs = append(c.serveArgs, "--allow-loopback-http-idp")
	}
}

// withServeArgs adds flags to serve's command line.
func withServeArgs(args ...string) stackOption {
	return func(c *stackConfig) { c.serveArgs = append(c.serveArgs, args...) }
}

// withSecureCookies runs tenantgate as in production, without
// --insecure-cookies: it then builds https URLs for its own endpoints, and
// its cookies are Secure with the __Host- prefix, so clients must reach
// Envoy through TLS (tlsFront).
func withSecureCookies() stackOption {
	return func(c *stackConfig) { c.secureCookies = true }
}

// withEnvoyPort runs Envoy on ln's port. startStack closes ln just before
// Envoy binds the port: a test that must name the port early (in an IdP's
// redirect URIs) keeps it reserved meanwhile.
func withEnvoyPort(ln net.Listener) stackOption {
	return func(c *stackConfig) { c.envoyListener = ln }
}

// withEnvoyConfig runs Envoy with the shipped envoy/<name> instead of
// envoy.yaml, its text changed by edits first. A config without a route to
// tenantgate's HTTP port (envoy-inline.yaml) simply leaves the sign-in
// recorder unused.
func withEnvoyConfig(name string, edits ...func(config string) string) stackOption {
	return func(c *stackConfig) { c.envoyConfig, c.envoyEdits = name, edits }
}

// withServeConfig has serve read its settings from a --config file with
// this YAML (showing that the documented keys work).
func withServeConfig(yaml string) stackOption {
	return func(c *stackConfig) { c.serveConfig = yaml }
}

// startStack builds tenantgate, provisions a database, and starts tenantgate,
// the echo upstream and Envoy on free loopback ports. Everything stops when
// the test ends. Without options the database holds tenantFile and
// fixtureMemberships, and tenantgate runs with --insecure-cookies.
func startStack(t *testing.T, opts ...stackOption) *stack {
	t.Helper()
	conf := stackConfig{tenantFile: func() string { return tenantFile }, memberships: fixtureMemberships, envoyConfig: "envoy.yaml"}
	for _, o := range opts {
		o(&conf)
	}
	root := proc.RepoRoot(t)
	envoyBin := proc.Envoy(t)
	dir := t.TempDir()

	tg := proc.BuildTenantgate(t, dir)

	db := filepath.Join(dir, "tenantgate.db")
	key := filepath.Join(dir, "tenantgate.key")
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, []byte(conf.tenantFile()), 0o600); err != nil {
		t.Fatal(err)
	}
	store := []string{"--db", db, "--master-key-file", key}
	apply := append([]string{"tenants", "apply", "-f", tenants}, store...)
	proc.Run(t, "", tg, append(apply, conf.applyArgs...)...)
	for _, m := range conf.memberships {
		args := append([]string{"users", "add", "--tenant", m.tenant, "--email", m.u.email, "--role", m.role, "--password-stdin"}, store...)
		proc.Run(t, m.u.password, tg, args...)
	}

	s := &stack{upstream: &echo.Handler{}, signin: &recorder{}, bin: tg}

	grpcPort, httpPort, adminPort := proc.FreePort(t), proc.FreePort(t), proc.FreePort(t)
	s.admin = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	serve := []string{"serve",
		"--grpc-addr", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--base-domain", baseDomain,
	}
	if !conf.secureCookies {
		serve = append(serve, "--insecure-cookies")
	}
	if conf.serveConfig != "" {
		path := filepath.Join(dir, "serve.yaml")
		if err := os.WriteFile(path, []byte(conf.serveConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		serve = append(serve, "--config", path)
	}
	serve = append(append(serve, conf.serveArgs...), store...)
	s.tenantgate = proc.Start(t, tg, serve...)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort)
	s.tenantgate.WaitUntil(t, 20*time.Second, func() error {
		resp, err := http.Get(readyz)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})

	upstream := httptest.NewServer(s.upstream)
	t.Cleanup(upstream.Close)
	signin := httptest.NewServer(s.signin.proxy(&url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", httpPort)}, nil))
	t.Cleanup(signin.Close)

	var envoyPort int
	if conf.envoyListener != nil {
		envoyPort = conf.envoyListener.Addr().(*net.TCPAddr).Port
	} else {
		envoyPort = proc.FreePort(t)
	}
	cfg, err := os.ReadFile(filepath.Join(root, "envoy", conf.envoyConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range conf.envoyEdits {
		cfg = []byte(e(string(cfg)))
	}
	ports := map[int]int{
		8080: envoyPort,
		9001: grpcPort,
		9002: portOf(t, signin.URL),
		8081: portOf(t, upstream.URL),
	}
	if !strings.Contains(string(cfg), "port_value: 9002") {
		delete(ports, 9002) // inline mode: no route to the HTTP port
	}
	cfg, err = envoyconf.RewritePorts(cfg, ports)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, conf.envoyConfig)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	s.envoyAddr = fmt.Sprintf("127.0.0.1:%d", envoyPort)
	if conf.envoyListener != nil {
		conf.envoyListener.Close() // Envoy binds the port next
	}
	s.envoy = proc.Start(t, envoyBin, "-c", cfgPath, "--use-dynamic-base-id", "--concurrency", "1", "-l", "warning",
		"--file-flush-interval-msec", "50") // access log lines show up at once
	s.envoy.WaitUntil(t, 20*time.Second, func() error {
		c, err := net.DialTimeout("tcp", s.envoyAddr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return s
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
func (s *stack) tlsFront(t *testing.T, ln net.Listener) *http.Transport {
	t.Helper()
	cert, pool := selfSignedCert(t, baseDomain, "*."+baseDomain)
	envoy := &url.URL{Scheme: "http", Host: s.envoyAddr}
	front := httptest.NewUnstartedServer(frontProxy(envoy, &http.Transport{ResponseHeaderTimeout: 30 * time.Second}))
	front.Listener.Close()
	front.Listener = ln
	front.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
	}
}

// frontProxy is the TLS front's handler: every request to envoy through
// transport, its Host unchanged.
func frontProxy(envoy *url.URL, transport http.RoundTripper) http.Handler {
	return wholeBody(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(envoy)
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
	})
}

// selfSignedCert makes a one-day ECDSA certificate for dnsNames and a pool
// trusting it.
func selfSignedCert(t *testing.T, dnsNames ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: dnsNames[0]},
		DNSNames:              dnsNames,
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil {
		t.Fatal(err)
	}
	return n
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
func (s *stack) send(t *testing.T, req request) *response {
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
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.envoyAddr)
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
