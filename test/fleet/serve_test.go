package fleet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// replica is one `tenantgate serve` process on the etcd store.
type replica struct {
	// tb is the test that launched the replica: a restart belongs to it
	// too, not to the subtest that restarts it.
	tb              testing.TB
	name            string
	bin             string
	args            []string
	proc            *proc.Process
	grpc, http, adm string
	check           authv3.AuthorizationClient
}

// startReplica runs serve with the given store flags (or --config file)
// on free ports and returns once /readyz answers 200.
func startReplica(t *testing.T, bin, name string, store ...string) *replica {
	t.Helper()
	r := launchReplica(t, bin, name, store...)
	r.waitReady(t, 30*time.Second)
	return r
}

// launchReplica runs serve like startReplica but returns at once, ready or
// not.
func launchReplica(t *testing.T, bin, name string, store ...string) *replica {
	t.Helper()
	r := &replica{tb: t, name: name}
	r.grpc = fmt.Sprintf("127.0.0.1:%d", proc.FreePort(t))
	r.http = fmt.Sprintf("127.0.0.1:%d", proc.FreePort(t))
	r.adm = fmt.Sprintf("127.0.0.1:%d", proc.FreePort(t))
	r.args = append([]string{"serve", "--grpc-addr", r.grpc, "--http-addr", r.http, "--admin-addr", r.adm,
		"--base-domain", "app.test", "--insecure-cookies"}, store...)
	r.bin = bin
	r.proc = proc.StartNamed(t, name, bin, r.args...)
	conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.check = authv3.NewAuthorizationClient(conn)
	return r
}

// waitReady returns once r's /readyz answers 200, failing the test after
// d or if r exits.
func (r *replica) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	r.proc.WaitUntil(t, d, proc.HTTPOK("http://"+r.adm+"/readyz"))
}

// restart starts r again, after a kill, with the same command line and
// ports, and returns at once. The process is stopped when the test that
// launched r ends.
func (r *replica) restart() {
	r.proc = proc.StartNamed(r.tb, r.name, r.bin, r.args...)
}

// answer is what Envoy would make of a Check: the HTTP status (200 when
// allowed) and the headers set upstream or on the denial.
type answer struct {
	status  int
	headers map[string]string
}

func (r *replica) ask(t *testing.T, host, token string) answer {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.check.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: host, Path: "/docs/1", Headers: h,
		}},
	}})
	if err != nil {
		t.Fatalf("%s: Check: %v", r.name, err)
	}
	a := answer{headers: map[string]string{}}
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		a.status = 200
		for _, o := range resp.GetOkResponse().GetHeaders() {
			a.headers[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
		}
		return a
	}
	a.status = int(resp.GetDeniedResponse().GetStatus().GetCode())
	for _, o := range resp.GetDeniedResponse().GetHeaders() {
		a.headers[strings.ToLower(o.GetHeader().GetKey())] = o.GetHeader().GetValue()
	}
	return a
}

// eventually polls r until want holds of its answer for host and token,
// failing the test after d; it returns how long it took.
func (r *replica) eventually(t *testing.T, d time.Duration, what, host, token string, want func(answer) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		a := r.ask(t, host, token)
		if want(a) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: %s still answers %d %v after %v", what, r.name, a.status, a.headers, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(code int) func(answer) bool { return func(a answer) bool { return a.status == code } }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// form GETs path on host at r's sign-in port, then POSTs the page's form
// with fields (and its csrf) and the cookies given and set, as a browser
// would; it returns the POST's response.
func (r *replica) form(t *testing.T, host, path string, cookies []*http.Cookie, fields url.Values) *http.Response {
	t.Helper()
	return r.openForm(t, host, path, cookies)(fields)
}

// openForm GETs path's form and returns a function that POSTs it.
func (r *replica) openForm(t *testing.T, host, path string, cookies []*http.Cookie) func(fields url.Values) *http.Response {
	t.Helper()
	post, _ := openFormAt(t, r.http, r.name, host, path, cookies, true)
	return post
}

// openFormAt GETs path's form on host at addr (a replica's sign-in port,
// or Envoy), called name in messages, and returns a function that POSTs
// it to addr, as a browser would, with its csrf and the cookies given and
// set. A GET that does not answer the form fails the test when must is
// set, and otherwise returns false.
func openFormAt(t *testing.T, addr, name, host, path string, cookies []*http.Cookie, must bool) (func(fields url.Values) *http.Response, bool) {
	t.Helper()
	get, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	get.Host = host
	get.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		get.AddCookie(c)
	}
	resp, err := noRedirects.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		if !must {
			return nil, false
		}
		t.Fatalf("GET %s at %s: %d, csrf field found: %v", path, name, resp.StatusCode, m != nil)
	}
	csrf, set := string(m[1]), resp.Cookies()
	return func(fields url.Values) *http.Response {
		t.Helper()
		fields.Set("csrf", csrf)
		post, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(fields.Encode()))
		post.Host = host
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("Sec-Fetch-Site", "same-origin")
		post.Header.Set("Origin", "http://"+host)
		post.Header.Set("Accept", "text/html")
		for _, c := range append(cookies, set...) {
			post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := noRedirects.Do(post)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}, true
}

// signIn signs in at r and returns the session cookie.
func (r *replica) signIn(t *testing.T, host, email, pw string) *http.Cookie {
	t.Helper()
	resp := r.form(t, host, "/_auth/login", nil, url.Values{"email": {email}, "password": {pw}, "rd": {"/"}})
	for _, c := range resp.Cookies() {
		if c.Name == "tenantgate" && c.Value != "" && resp.StatusCode == http.StatusSeeOther {
			return c
		}
	}
	t.Fatalf("sign-in at %s: %d, no session cookie", r.name, resp.StatusCode)
	return nil
}

const fleetTenants = `
tenants:
  - id: acme
    methods: [{type: password}]
    roles:
      admin:  {permissions: ["*"]}
      member: {permissions: ["docs:read"]}
`

const globexTenant = `
tenants:
  - id: globex
    methods: [{type: password}]
`

// TestReplicasOnEtcd runs the real binary as a fleet: the CLI applies
// tenants and adds users on etcd (--etcd-* flags), two serve replicas
// (one configured by flags, one by a --config file) share the store and
// the master key, and what happens at one replica or through the CLI is
// answered by every replica within a second: a tenant applied, a user's
// role changed, a session signed out (at once by the replica that signed
// it out). A replica with another master key refuses to start.
func TestReplicasOnEtcd(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	key := filepath.Join(dir, "tg.key")
	p := prefix(t)
	store := []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-prefix", p,
		"--etcd-ca-file", c.CAFile, "--etcd-cert-file", c.CertFile, "--etcd-key-file", c.KeyFile, "--master-key-file", key}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cli := func(stdin string, args ...string) { proc.Run(t, stdin, bin, append(args, store...)...) }

	cli("", "tenants", "apply", "-f", write("acme.yaml", fleetTenants))
	cli("correct-horse-battery\n", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin")

	one := startReplica(t, bin, "replica 1", store...)
	config := write("replica2.yaml", fmt.Sprintf("etcd-endpoints: %s\netcd-prefix: %s\netcd-ca-file: %s\netcd-cert-file: %s\netcd-key-file: %s\nmaster-key-file: %s\n",
		strings.Join(c.Endpoints(), ","), p, c.CAFile, c.CertFile, c.KeyFile, key))
	two := startReplica(t, bin, "replica 2", "--config", config)
	replicas := []*replica{one, two}

	for _, r := range replicas {
		if a := r.ask(t, "acme.app.test", ""); a.status != 401 || a.headers["www-authenticate"] != `Bearer realm="acme"` {
			t.Errorf("%s: acme without a session = %d %v, want 401 for realm acme", r.name, a.status, a.headers)
		}
		if a := r.ask(t, "globex.app.test", ""); a.status != 404 {
			t.Errorf("%s: globex before it exists = %d, want 404", r.name, a.status)
		}
	}

	t.Run("tenant applied through the CLI", func(t *testing.T) {
		cli("", "tenants", "apply", "-f", write("globex.yaml", globexTenant))
		for _, r := range replicas {
			took := r.eventually(t, time.Second, "globex applied", "globex.app.test", "", status(401))
			t.Logf("%s answers for globex %v after the apply", r.name, took.Round(time.Millisecond))
		}
	})

	session := one.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	t.Run("session from one replica at the other", func(t *testing.T) {
		a := two.ask(t, "acme.app.test", session.Value)
		if a.status != 200 || a.headers["x-user-email"] != "ann@acme.test" || a.headers["x-user-roles"] != "member" || a.headers["x-tenant-id"] != "acme" {
			t.Errorf("replica 2 = %d %v, want ann, member of acme", a.status, a.headers)
		}
	})

	t.Run("role changed through the CLI", func(t *testing.T) {
		cli("", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "admin")
		for _, r := range replicas {
			took := r.eventually(t, time.Second, "role changed", "acme.app.test", session.Value,
				func(a answer) bool { return a.status == 200 && a.headers["x-user-roles"] == "admin" })
			t.Logf("%s answers with the new role %v after the change", r.name, took.Round(time.Millisecond))
		}
	})

	t.Run("signed out at one replica", func(t *testing.T) {
		resp := one.form(t, "acme.app.test", "/_auth/logout", []*http.Cookie{session}, url.Values{})
		if resp.StatusCode >= 400 {
			t.Fatalf("POST /_auth/logout at replica 1: %d", resp.StatusCode)
		}
		if a := one.ask(t, "acme.app.test", session.Value); a.status != 401 {
			t.Errorf("replica 1 right after it answered the logout: %d, want 401", a.status)
		}
		took := two.eventually(t, time.Second, "signed out", "acme.app.test", session.Value, status(401))
		t.Logf("replica 2 refuses the session %v after the logout", took.Round(time.Millisecond))
	})

	t.Run("another master key refuses to start", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, store...)
		args[len(args)-1] = filepath.Join(dir, "other.key")
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = proc.Env()
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatal("serve with another master key was still running after 30s")
		}
		if err == nil {
			t.Fatal("serve with another master key exited 0")
		}
		last := strings.TrimSpace(string(out))
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		if !strings.HasPrefix(last, "tenantgate: master key ") || !strings.Contains(last, "does not open") {
			t.Errorf("last line %q, want the one-line master key error", last)
		}
	})
}

// healthOf is the gRPC health status replica r reports for Check.
func (r *replica) healthOf(t *testing.T) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil {
		t.Fatalf("%s: health: %v", r.name, err)
	}
	return resp.GetStatus()
}

// readyz is the status of replica r's /readyz.
func (r *replica) readyz(t *testing.T) int {
	t.Helper()
	resp, err := noRedirects.Get("http://" + r.adm + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStalenessOnEtcd: with etcd gone, a replica answers Check from its
// last snapshot for --store-max-staleness, then denies everything with 503
// and reports itself not ready (gRPC health NOT_SERVING, /readyz 503) until
// etcd is back, when it catches up and serves again.
func TestStalenessOnEtcd(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	store := []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-prefix", prefix(t),
		"--etcd-ca-file", c.CAFile, "--etcd-cert-file", c.CertFile, "--etcd-key-file", c.KeyFile,
		"--master-key-file", filepath.Join(dir, "tg.key")}
	file := filepath.Join(dir, "acme.yaml")
	if err := os.WriteFile(file, []byte(fleetTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	proc.Run(t, "", bin, append([]string{"tenants", "apply", "-f", file}, store...)...)
	proc.Run(t, "correct-horse-battery\n", bin, append([]string{"users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin"}, store...)...)
	const maxStaleness = 4 * time.Second
	r := startReplica(t, bin, "replica", append(store, "--store-max-staleness", maxStaleness.String())...)
	session := r.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	if a := r.ask(t, "acme.app.test", session.Value); a.status != 200 {
		t.Fatalf("before the outage: %d, want 200", a.status)
	}

	logout := r.openForm(t, "acme.app.test", "/_auth/logout", []*http.Cookie{session})

	c.Kill(0) // at once: a graceful stop takes seconds of the budget
	down := time.Now()
	for time.Since(down) < maxStaleness/2 {
		if a := r.ask(t, "acme.app.test", session.Value); a.status != 200 {
			t.Fatalf("%v into the outage: %d, want 200 from the last snapshot", time.Since(down).Round(time.Millisecond), a.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.eventually(t, maxStaleness+3*time.Second, "stale", "acme.app.test", session.Value, status(503))
	t.Logf("Check answers 503 %v after etcd stopped (--store-max-staleness %v)", time.Since(down).Round(time.Millisecond), maxStaleness)
	if a := r.ask(t, "acme.app.test", ""); a.status != 503 {
		t.Errorf("stale, without a session: %d, want 503", a.status)
	}
	if got := r.readyz(t); got != 503 {
		t.Errorf("stale: /readyz %d, want 503", got)
	}
	if got := r.healthOf(t); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("stale: health %v, want NOT_SERVING", got)
	}
	if resp := logout(url.Values{}); resp.StatusCode != 503 {
		t.Errorf("sign-out during the outage: %d, want 503", resp.StatusCode)
	} else if c := resp.Cookies(); len(c) > 0 {
		for _, ck := range c {
			if ck.Name == session.Name {
				t.Errorf("the refused sign-out cleared the session cookie: %v", ck)
			}
		}
	}

	c.Restart(0)
	back := time.Now()
	r.eventually(t, 30*time.Second, "etcd back", "acme.app.test", session.Value, status(200))
	t.Logf("Check answers 200 again %v after etcd was back", time.Since(back).Round(time.Millisecond))
	if got := r.readyz(t); got != 200 {
		t.Errorf("etcd back: /readyz %d, want 200", got)
	}
	if got := r.healthOf(t); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("etcd back: health %v, want SERVING", got)
	}
	// The refused sign-out changed nothing: the session is neither
	// revoked nor gone, and signing out now works.
	if resp := logout(url.Values{}); resp.StatusCode >= 400 {
		t.Errorf("sign-out once etcd is back: %d", resp.StatusCode)
	}
	if a := r.ask(t, "acme.app.test", session.Value); a.status != 401 {
		t.Errorf("after the sign-out: %d, want 401", a.status)
	}
}
