// Package stack runs what tenantgate's end-to-end suites test: a `tenantgate
// serve` built from this tree on a freshly provisioned database, the echo
// upstream, and a real Envoy running one of the shipped configs (envoy/) with
// its ports rewritten, all on free loopback ports. Everything stops when the
// test that started it ends.
//
// The suites share this one way of starting it and differ only in options;
// how each reaches the stack (raw HTTP/1.1, a TLS front, Chromium), its
// fixtures and its IdPs stay in the suite.
package stack

import (
	"bytes"
	"fmt"
	"io"
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

// BaseDomain is the --base-domain of the tenantgate under test: tenant acme
// lives at acme.app.test, and discovery on the apex, app.test.
const BaseDomain = "app.test"

// User is a person with a built-in (password) account.
type User struct {
	Email, Password string
}

// Membership is one `tenantgate users add`: User becomes a member of Tenant
// with Role.
type Membership struct {
	User   User
	Tenant string
	Role   string
}

// Stack is one running tenantgate, echo upstream and Envoy.
type Stack struct {
	// EnvoyAddr is Envoy's listener, 127.0.0.1:EnvoyPort.
	EnvoyAddr string
	EnvoyPort int
	// Upstream is the app behind Envoy: it records every request that
	// reaches it.
	Upstream *echo.Handler
	// SignIn holds the requests Envoy routed to tenantgate's HTTP port; it
	// is nil unless the stack was started with RecordSignIn.
	SignIn *Recorder
	// Tenantgate and Envoy are the two processes; their output is logged
	// when the test fails.
	Tenantgate, Envoy *proc.Process
	// Bin is the tenantgate binary under test, and Admin the base URL of
	// its admin port (http://127.0.0.1:port).
	Bin, Admin string
}

// config is what Start provisions and how it runs tenantgate and Envoy.
type config struct {
	tenantFile  func() string
	memberships []Membership
	// applyArgs and serveArgs are extra flags for `tenants apply` and
	// `serve`.
	applyArgs, serveArgs []string
	secureCookies        bool
	envoyListener        net.Listener
	envoyConfig          string
	envoyEdits           []func(config string) string
	serveConfig          string
	upstream             *echo.Handler
	recordSignIn         bool
}

// Option changes what Start provisions or how it runs.
type Option func(*config)

// Tenants provisions the tenant file f returns and the given memberships
// (their users get the password of their User). Start calls f once
// tenantgate is built, so f may wait for an IdP started meanwhile. Start
// fails without it.
func Tenants(f func() string, ms ...Membership) Option {
	return func(c *config) {
		c.tenantFile = f
		c.memberships = ms
	}
}

// LoopbackHTTPIdP lets tenants use http:// IdPs on loopback addresses
// (--allow-loopback-http-idp on apply and serve), for a local Keycloak.
func LoopbackHTTPIdP() Option {
	return func(c *config) {
		c.applyArgs = append(c.applyArgs, "--allow-loopback-http-idp")
		c.serveArgs = append(c.serveArgs, "--allow-loopback-http-idp")
	}
}

// ServeArgs adds flags to serve's command line.
func ServeArgs(args ...string) Option {
	return func(c *config) { c.serveArgs = append(c.serveArgs, args...) }
}

// SecureCookies runs tenantgate as in production, without
// --insecure-cookies: it then builds https URLs for its own endpoints, and
// its cookies are Secure with the __Host- prefix, so clients must reach
// Envoy through TLS. Without it tenantgate runs with --insecure-cookies.
func SecureCookies() Option {
	return func(c *config) { c.secureCookies = true }
}

// EnvoyPort runs Envoy on ln's port. Start closes ln just before Envoy
// binds the port: a test that must name the port early (in an IdP's
// redirect URIs) keeps it reserved meanwhile.
func EnvoyPort(ln net.Listener) Option {
	return func(c *config) { c.envoyListener = ln }
}

// EnvoyConfig runs Envoy with the shipped envoy/<name> instead of
// envoy.yaml, its text changed by edits, in order, before the ports are
// rewritten. A config without a route to tenantgate's HTTP port
// (envoy-inline.yaml) simply leaves that port unrouted.
func EnvoyConfig(name string, edits ...func(config string) string) Option {
	return func(c *config) { c.envoyConfig, c.envoyEdits = name, edits }
}

// ServeConfig has serve read its settings from a --config file with this
// YAML (showing that the documented keys work).
func ServeConfig(yaml string) Option {
	return func(c *config) { c.serveConfig = yaml }
}

// Upstream makes h the app behind Envoy, for pages of the test's own;
// without it the upstream is an echo.Handler with none.
func Upstream(h *echo.Handler) Option {
	return func(c *config) { c.upstream = h }
}

// RecordSignIn puts a recording reverse proxy (Recorder.Proxy) between
// Envoy and tenantgate's HTTP port, so a test can prove what reached the
// sign-in handler (Stack.SignIn). The proxy hands the X-Forwarded-* headers
// on unchanged, as if it were not there.
func RecordSignIn() Option {
	return func(c *config) { c.recordSignIn = true }
}

// Start builds tenantgate, provisions a database with the tenants and
// memberships of the Tenants option, and starts tenantgate, the upstream
// and Envoy (`--concurrency 1`, access log flushed every 50 ms) on free
// loopback ports. A missing Envoy skips or fails the test as proc.Tool
// says, before anything is built. Everything stops when tb ends.
func Start(tb testing.TB, opts ...Option) *Stack {
	tb.Helper()
	conf := config{envoyConfig: "envoy.yaml"}
	for _, o := range opts {
		o(&conf)
	}
	if conf.tenantFile == nil {
		tb.Fatal("stack.Start: no tenants; pass stack.Tenants")
	}
	if conf.upstream == nil {
		conf.upstream = &echo.Handler{}
	}
	root := proc.RepoRoot(tb)
	envoyBin := proc.Envoy(tb)
	dir := tb.TempDir()

	s := &Stack{Upstream: conf.upstream, Bin: proc.BuildTenantgate(tb, dir)}
	store := provision(tb, s.Bin, dir, conf)

	grpcPort, httpPort, adminPort := proc.FreePort(tb), proc.FreePort(tb), proc.FreePort(tb)
	s.Admin = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	serve := []string{"serve",
		"--grpc-addr", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--base-domain", BaseDomain,
	}
	if !conf.secureCookies {
		serve = append(serve, "--insecure-cookies")
	}
	if conf.serveConfig != "" {
		path := filepath.Join(dir, "serve.yaml")
		if err := os.WriteFile(path, []byte(conf.serveConfig), 0o600); err != nil {
			tb.Fatal(err)
		}
		serve = append(serve, "--config", path)
	}
	serve = append(append(serve, conf.serveArgs...), store...)
	s.Tenantgate = proc.Start(tb, s.Bin, serve...)
	s.Tenantgate.WaitUntil(tb, 20*time.Second, proc.HTTPOK(s.Admin+"/readyz"))

	upstream := httptest.NewServer(s.Upstream)
	tb.Cleanup(upstream.Close)
	signinPort := httpPort
	if conf.recordSignIn {
		s.SignIn = &Recorder{}
		signin := httptest.NewServer(s.SignIn.Proxy(&url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", httpPort)}, nil))
		tb.Cleanup(signin.Close)
		signinPort = portOf(signin)
	}

	if conf.envoyListener != nil {
		s.EnvoyPort = conf.envoyListener.Addr().(*net.TCPAddr).Port
	} else {
		s.EnvoyPort = proc.FreePort(tb)
	}
	s.EnvoyAddr = fmt.Sprintf("127.0.0.1:%d", s.EnvoyPort)
	cfgPath := writeEnvoyConfig(tb, root, dir, conf, map[int]int{
		8080: s.EnvoyPort,
		9001: grpcPort,
		9002: signinPort,
		8081: portOf(upstream),
	})
	if conf.envoyListener != nil {
		conf.envoyListener.Close() // Envoy binds the port next
	}
	s.Envoy = proc.Start(tb, envoyBin, "-c", cfgPath, "--use-dynamic-base-id", "--concurrency", "1", "-l", "warning",
		"--file-flush-interval-msec", "50") // access log lines show up at once
	s.Envoy.WaitUntil(tb, 20*time.Second, proc.Listening(s.EnvoyAddr))
	return s
}

// provision writes the tenant file, applies it and adds the memberships to
// a new database in dir, and returns the flags that name that database.
func provision(tb testing.TB, bin, dir string, conf config) (store []string) {
	tb.Helper()
	store = []string{"--db", filepath.Join(dir, "tenantgate.db"), "--master-key-file", filepath.Join(dir, "tenantgate.key")}
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, []byte(conf.tenantFile()), 0o600); err != nil {
		tb.Fatal(err)
	}
	apply := append([]string{"tenants", "apply", "-f", tenants}, store...)
	proc.Run(tb, "", bin, append(apply, conf.applyArgs...)...)
	for _, m := range conf.memberships {
		add := append([]string{"users", "add", "--tenant", m.Tenant, "--email", m.User.Email, "--role", m.Role, "--password-stdin"}, store...)
		proc.Run(tb, m.User.Password, bin, add...)
	}
	return store
}

// writeEnvoyConfig writes the shipped envoy/<conf.envoyConfig>, edited and
// its default ports rewritten to ports, into dir and returns its path.
func writeEnvoyConfig(tb testing.TB, root, dir string, conf config, ports map[int]int) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root, "envoy", conf.envoyConfig))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := string(b)
	for _, e := range conf.envoyEdits {
		cfg = e(cfg)
	}
	if !strings.Contains(cfg, "port_value: 9002") {
		delete(ports, 9002) // inline mode: no route to the HTTP port
	}
	out, err := envoyconf.RewritePorts([]byte(cfg), ports)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, conf.envoyConfig)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// portOf is the loopback port srv listens on.
func portOf(srv *httptest.Server) int {
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// Recorder is a reverse proxy in front of tenantgate's HTTP port that keeps
// the headers of every request Envoy sends there (RecordSignIn).
type Recorder struct {
	mu   sync.Mutex
	seen []echo.Request
}

// Requests returns what reached tenantgate's HTTP port so far, oldest
// first; header names are lower case.
func (r *Recorder) Requests() []echo.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]echo.Request(nil), r.seen...)
}

// Proxy forwards every request to target through transport (nil means
// http.DefaultTransport), recording its headers first. Start puts it
// between Envoy and tenantgate's HTTP port.
func (r *Recorder) Proxy(target *url.URL, transport http.RoundTripper) http.Handler {
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
	return WholeBody(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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

// maxProxiedBody bounds the request bodies the test proxies hold in memory
// (WholeBody); a larger one is answered 413 by the proxy itself.
const maxProxiedBody = 8 << 20

// WholeBody reads a request's body into memory before next sees it, so that
// a reverse proxy in next sends its upstream a body of its own. Every
// reverse proxy of the end-to-end tests (the Recorder, a TLS front) needs
// it. Without it they now and then cut a response short that the upstream
// had sent in full (golang/go#40747): Go's HTTP/1 server closes an unread
// request body as soon as a handler starts writing its response
// (chunkWriter.writeHeader), while the proxy's http.Transport may not have
// finished with that body yet (having sent the declared Content-Length, it
// reads once more to check for extra bytes, transferWriter.writeBody). When
// that read comes after the close, it fails (http.ErrBodyReadAfterClose),
// the Transport closes its connection to the upstream mid-response, and the
// client reads an unexpected EOF; Envoy, the recorder's client, logs the
// truncated response as UPE, and a TLS front's as DC. A fast upstream (a
// sign-in page answered in a millisecond) on a loaded machine opens that
// window often enough to fail TestTenancyEndToEnd one run in four.
func WholeBody(next http.Handler) http.Handler {
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
