package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// testServer is `tenantgate serve` running in-process on free 127.0.0.1
// ports.
type testServer struct {
	t                         *testing.T
	grpcAddr, httpAddr, admin string
	token, tokenFile          string
	logs                      *syncBuffer
	check                     authv3.AuthorizationClient
}

// syncBuffer is the server's stderr: its JSON log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs serve with an admin token (unless withToken is false)
// and extra flags, and stops it when the test ends.
func startServer(t *testing.T, withToken bool, extra ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{t: t, logs: &syncBuffer{}}
	args := []string{"serve",
		"--db", filepath.Join(dir, "tg.db"), "--master-key-file", filepath.Join(dir, "tg.key"),
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--base-domain", "app.test", "--insecure-cookies"}
	if withToken {
		var b [32]byte
		rand.Read(b[:])
		ts.token = hex.EncodeToString(b[:])
		ts.tokenFile = filepath.Join(dir, "admin-token")
		if err := os.WriteFile(ts.tokenFile, []byte(ts.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--admin-token-file", ts.tokenFile)
	}
	args = append(args, extra...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := newRootCmd(strings.NewReader(""), io.Discard, ts.logs)
	root.SetArgs(args)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s")
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for ts.admin == "" {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v; log:\n%s", err, ts.logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start within 15s; log:\n%s", ts.logs)
		}
		sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
		for sc.Scan() {
			var line struct{ Msg, GRPC, HTTP, Admin string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				ts.grpcAddr, ts.httpAddr, ts.admin = line.GRPC, line.HTTP, line.Admin
			}
		}
	}
	conn, err := grpc.NewClient(ts.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ts.check = authv3.NewAuthorizationClient(conn)
	return ts
}

// cli returns a CLI whose tenants and users commands go through this
// server's admin API.
func (ts *testServer) cli(t *testing.T) *cli {
	return &cli{t: t, dir: t.TempDir(), target: []string{"--server", "http://" + ts.admin, "--admin-token-file", ts.tokenFile}}
}

// do sends one admin API request with the given Authorization header
// values and returns the response and its body.
func (ts *testServer) do(method, path, body string, auth ...string) (*http.Response, string) {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+ts.admin+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp, string(b)
}

func (ts *testServer) bearer() string { return "Bearer " + ts.token }

// checkHTTP sends a Check for a browser-less GET of host+path and returns
// the HTTP status Envoy would answer with (200 when allowed) and the
// response.
func (ts *testServer) checkHTTP(host, path string, headers map[string]string) (int, *authv3.CheckResponse) {
	ts.t.Helper()
	resp, err := ts.check.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: host, Path: path, Headers: headers,
		}},
	}})
	if err != nil {
		ts.t.Fatalf("Check: %v", err)
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		return 200, resp
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), resp
}

// TestAdminAPIMatchesDBMode runs one script of tenants and users commands
// against a database (--db) and against a running server (--server), and
// requires the same exit code, stdout and stderr from both, step by step.
func TestAdminAPIMatchesDBMode(t *testing.T) {
	ts := startServer(t, true)
	local, remote := newCLI(t), ts.cli(t)
	files := t.TempDir()
	local.dir, remote.dir = files, files
	local.writeFile("two.yaml", twoTenants)
	local.writeFile("bad.yaml", "tenants:\n  - id: Bad_Id\n    colour: red\n  - id: acme\n    methods: [{type: oidc}]\n")
	local.writeFile("invalid.yaml", "tenants:\n  - id: hooli\n    emailDomains: [acme.test]\n    methods: [{type: oidc}]\n    roles:\n      a: {inherits: [b]}\n      b: {inherits: [a]}\n")
	local.writeFile("conflict.yaml", "tenants:\n  - id: hooli\n    domains: [login.acme.test]\n    methods: [{type: password}]\n")
	contract := filepath.Join("..", "..", "tenants", "testdata", "contract-example.yaml")

	// User ids are random; each mode has its own.
	userID := regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"tenants", "list"}},
		{"", []string{"tenants", "list", "-o", "json"}},
		{"", []string{"tenants", "apply", "-f", filepath.Join(files, "bad.yaml")}},
		{"", []string{"tenants", "apply", "-f", filepath.Join(files, "invalid.yaml")}},
		{"", []string{"tenants", "apply", "-f", filepath.Join(files, "two.yaml")}},
		{"", []string{"tenants", "apply", "-f", filepath.Join(files, "two.yaml")}},
		{"", []string{"tenants", "apply", "-f", filepath.Join(files, "conflict.yaml")}},
		{"", []string{"tenants", "apply", "-f", filepath.Join(files, "missing.yaml")}},
		{twoTenants, []string{"tenants", "apply", "-f", "-"}},
		{"", []string{"tenants", "list"}},
		{"", []string{"tenants", "list", "-o", "json"}},
		{"", []string{"tenants", "get", "acme"}},
		{"", []string{"tenants", "get", "acme", "-o", "json"}},
		{"", []string{"tenants", "get", "acme", "-o", "xml"}},
		{"", []string{"tenants", "get", "nope"}},
		{"", []string{"tenants", "get", "../acme"}},
		{"", []string{"users", "list", "--tenant", "acme"}},
		{"", []string{"users", "list", "--tenant", "nope"}},
		{"", []string{"users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "member"}},
		{"short\n", []string{"users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--password-stdin"}},
		{"", []string{"users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--password-stdin"}},
		{"a-long-enough-password\n", []string{"users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "owner", "--password-stdin"}},
		{"a-long-enough-password\n", []string{"users", "add", "--tenant", "nope", "--email", "alice@acme.test", "--password-stdin"}},
		{"a-long-enough-password\n", []string{"users", "add", "--tenant", "acme", "--email", "Alice@Acme.Test", "--role", "member", "--role", "admin", "--role", "member", "--password-stdin"}},
		{"", []string{"users", "add", "--tenant", "globex", "--email", "alice@acme.test"}},
		{"", []string{"users", "add", "--tenant", "globex", "--email", "alice@acme.test", "--password-stdin"}},
		{"a-long-enough-password\r\n", []string{"users", "add", "--tenant", "globex", "--email", "bob+x/y@acme.test", "--password-stdin"}},
		{"", []string{"users", "list", "--tenant", "acme"}},
		{"", []string{"users", "list", "--tenant", "globex", "-o", "json"}},
		{"", []string{"users", "delete", "--tenant", "globex", "--email", "bob+x/y@acme.test"}},
		{"", []string{"users", "delete", "--tenant", "acme", "--email", "alice@acme.test"}},
		{"", []string{"users", "delete", "--tenant", "acme", "--email", "alice@acme.test"}},
		{"", []string{"users", "list", "--tenant", "globex"}},
		{"", []string{"tenants", "delete", "globex"}},
		{"", []string{"tenants", "delete", "globex"}},
		{"", []string{"tenants", "apply", "-f", contract}},
		{"", []string{"tenants", "get", "acme"}},
		{"", []string{"tenants", "list", "-o", "json"}},
	}
	for i, st := range steps {
		lc, lout, lerr := local.run(st.stdin, st.args...)
		rc, rout, rerr := remote.run(st.stdin, st.args...)
		lout, rout = userID.ReplaceAllString(lout, "ID"), userID.ReplaceAllString(rout, "ID")
		if lc != rc || lout != rout || lerr != rerr {
			t.Errorf("step %d %v:\n--db:     exit %d\n%s%s\n--server: exit %d\n%s%s", i, st.args, lc, lout, lerr, rc, rout, rerr)
		}
		for _, secret := range []string{"s3cr3t", "a-long-enough-password", ts.token} {
			if strings.Contains(rout+rerr, secret) {
				t.Errorf("step %d %v printed a secret: %s%s", i, st.args, rout, rerr)
			}
		}
	}
	for _, secret := range []string{"s3cr3t", "a-long-enough-password", "short", ts.token} {
		if strings.Contains(ts.logs.String(), secret) {
			t.Errorf("the server's log holds %q:\n%s", secret, ts.logs)
		}
	}
}

// TestAdminAPIWritesTakeEffectAtOnce: what the admin API changes is what the
// very next Check and sign-in see: a tenant applied resolves, a user added
// signs in with the password sent, a removed user's session stops working,
// and a deleted tenant is unknown.
func TestAdminAPIWritesTakeEffectAtOnce(t *testing.T) {
	ts := startServer(t, true)
	c := ts.cli(t)
	if code, _ := ts.checkHTTP("acme.app.test", "/docs", nil); code != 404 {
		t.Fatalf("before apply: %d, want 404 unknown_tenant", code)
	}

	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	if code, resp := ts.checkHTTP("acme.app.test", "/docs", nil); code != 401 {
		t.Fatalf("right after apply: %d %s, want 401 (tenant known, not signed in)", code, resp.GetDeniedResponse().GetBody())
	}
	if code, _ := ts.checkHTTP("login.acme.test", "/public/x", nil); code != 200 {
		t.Errorf("custom domain, anonymous rule, right after apply: %d, want 200", code)
	}
	resp, err := (&http.Client{}).Do(&http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: ts.httpAddr, Path: "/_auth/login"}, Host: "acme.app.test", Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Acme Corp") {
		t.Errorf("sign-in page right after apply: %d", resp.StatusCode)
	}

	c.mustRun("correct-horse-battery\n", "users", "add", "--tenant", "acme", "--email", "carol@acme.test", "--role", "admin", "--password-stdin")
	token := signIn(t, ts, "acme.app.test", "carol@acme.test", "correct-horse-battery")
	code, ok := ts.checkHTTP("acme.app.test", "/admin/x", map[string]string{"authorization": "Bearer " + token})
	if code != 200 {
		t.Fatalf("signed-in admin: %d %s", code, ok.GetDeniedResponse().GetBody())
	}
	if h := okHeaders(ok); h["x-user-email"] != "carol@acme.test" || h["x-tenant-id"] != "acme" || h["x-user-roles"] != "admin" {
		t.Errorf("identity headers %v", h)
	}

	c.mustRun("", "users", "delete", "--tenant", "acme", "--email", "carol@acme.test")
	if code, _ := ts.checkHTTP("acme.app.test", "/admin/x", map[string]string{"authorization": "Bearer " + token}); code != 401 {
		t.Errorf("session right after users delete: %d, want 401 (revoked)", code)
	}

	c.mustRun("", "tenants", "delete", "acme")
	if code, _ := ts.checkHTTP("acme.app.test", "/docs", nil); code != 404 {
		t.Errorf("right after tenants delete: %d, want 404", code)
	}
	if code, _ := ts.checkHTTP("globex.app.test", "/docs", nil); code != 401 {
		t.Errorf("other tenant after delete: %d, want 401", code)
	}

	// CONTRACT's example, applied through the API, answers at once on its
	// custom domain: its anonymous rule and its sign-in redirect.
	c.mustRun("", "tenants", "apply", "-f", filepath.Join("..", "..", "tenants", "testdata", "contract-example.yaml"))
	if code, _ := ts.checkHTTP("login.acme.test", "/public/x", nil); code != 200 {
		t.Errorf("contract example, anonymous rule: %d, want 200", code)
	}
	code, resp302 := ts.checkHTTP("login.acme.test", "/admin/", map[string]string{"accept": "text/html"})
	if loc := deniedHeader(resp302, "location"); code != 302 || loc != "/_auth/login?rd=%2Fadmin%2F" {
		t.Errorf("contract example, browser without a session: %d %q, want 302 to the sign-in page", code, loc)
	}
	if strings.Contains(ts.logs.String(), "correct-horse-battery") || strings.Contains(ts.logs.String(), token) {
		t.Error("the server's log holds the password or the session token")
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// signIn signs in through the server's sign-in endpoint as a browser would
// and returns the session token. Both requests carry the headers of extra
// (as Envoy's x-request-id and trace headers).
func signIn(t *testing.T, ts *testServer, host, email, pw string, extra ...http.Header) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get, err := http.NewRequest("GET", "http://"+ts.httpAddr+"/_auth/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	get.Host = host
	for _, h := range extra {
		maps.Copy(get.Header, h)
	}
	resp, err := client.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("sign-in page: %d, csrf field found: %v", resp.StatusCode, m != nil)
	}
	form := url.Values{"email": {email}, "password": {pw}, "rd": {"/"}, "csrf": {string(m[1])}}
	post, err := http.NewRequest("POST", "http://"+ts.httpAddr+"/_auth/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	post.Host = host
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, h := range extra {
		maps.Copy(post.Header, h)
	}
	for _, ck := range resp.Cookies() {
		post.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err = client.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "tenantgate" && ck.Value != "" {
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", resp.StatusCode)
			}
			return ck.Value
		}
	}
	t.Fatalf("sign-in: %d, no session cookie", resp.StatusCode)
	return ""
}

func deniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, o := range resp.GetDeniedResponse().GetHeaders() {
		if strings.EqualFold(o.GetHeader().GetKey(), name) {
			return o.GetHeader().GetValue()
		}
	}
	return ""
}

func okHeaders(resp *authv3.CheckResponse) map[string]string {
	m := map[string]string{}
	for _, o := range resp.GetOkResponse().GetHeaders() {
		m[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return m
}

// TestAdminAPIAuthentication: every admin API request needs the bearer
// token; without it the answer is 401 JSON, whatever the path.
func TestAdminAPIAuthentication(t *testing.T) {
	ts := startServer(t, true)
	cases := []struct {
		name, method, path string
		auth               []string
	}{
		{"no token", "GET", "/admin/v1/tenants", nil},
		{"wrong token", "GET", "/admin/v1/tenants", []string{"Bearer " + strings.Repeat("0", 64)}},
		{"token prefix", "GET", "/admin/v1/tenants", []string{"Bearer " + ts.token[:32]}},
		{"token plus more", "GET", "/admin/v1/tenants", []string{"Bearer " + ts.token + "0"}},
		{"other scheme", "GET", "/admin/v1/tenants", []string{"Basic " + ts.token}},
		{"no scheme", "GET", "/admin/v1/tenants", []string{ts.token}},
		{"two headers", "GET", "/admin/v1/tenants", []string{"Bearer " + ts.token, "Bearer " + ts.token}},
		{"write without token", "DELETE", "/admin/v1/tenants/acme", nil},
		{"unknown path without token", "GET", "/admin/v2/anything", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(tc.method, tc.path, "", tc.auth...)
			if resp.StatusCode != 401 || body != `{"error":"unauthenticated"}`+"\n" {
				t.Errorf("%d %q, want 401 unauthenticated", resp.StatusCode, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	if resp, body := ts.do("GET", "/admin/v1/tenants", "", "bearer "+ts.token); resp.StatusCode != 200 || body != "[]\n" {
		t.Errorf("right token: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(ts.logs.String(), ts.token) || strings.Contains(ts.logs.String(), ts.token[:32]) {
		t.Error("the server's log holds the token")
	}

	// The CLI with the wrong token, and with no token file at all.
	c := ts.cli(t)
	c.target = []string{"--server", "http://" + ts.admin, "--admin-token-file", c.writeFile("wrong-token", strings.Repeat("x", 40)+"\n")}
	code, _, errs := c.run("", "tenants", "list")
	if code == 0 || !strings.Contains(errs, "401") || strings.Count(errs, "\n") != 1 {
		t.Errorf("wrong token: exit %d %q", code, errs)
	}
	c.target = []string{"--server", "http://" + ts.admin}
	code, _, errs = c.run("", "tenants", "list")
	if code == 0 || !strings.Contains(errs, "--admin-token-file") || strings.Count(errs, "\n") != 1 {
		t.Errorf("no token file: exit %d %q", code, errs)
	}
}

// TestAdminAPIAnswers covers what scripts see: JSON bodies, statuses,
// no-store, the size limit, and that no answer carries a secret.
func TestAdminAPIAnswers(t *testing.T) {
	ts := startServer(t, true, "--allow-loopback-http-idp")
	auth := ts.bearer()
	for _, file := range []string{twoTenants, ssoTenants} {
		resp, body := ts.do("POST", "/admin/v1/tenants", file, auth)
		if resp.StatusCode != 200 {
			t.Fatalf("apply: %d %s", resp.StatusCode, body)
		}
		var report applyReport
		if err := json.Unmarshal([]byte(body), &report); err != nil || len(report.Tenants) != 2 || report.Tenants[0].ID == "" || len(report.Warnings) != 0 {
			t.Errorf("apply answer %s (%v)", body, err)
		}
	}

	resp, body := ts.do("POST", "/admin/v1/tenants/acme/users", `{"email":"dave@acme.test","roles":["member"],"password":"dave-password-123\n"}`, auth)
	if resp.StatusCode != 200 || !strings.Contains(body, `"created":true`) {
		t.Errorf("users add: %d %s", resp.StatusCode, body)
	}
	if tok := signIn(t, ts, "acme.app.test", "dave@acme.test", "dave-password-123"); tok == "" {
		t.Error("no session for a user added through the API")
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"list", "GET", "/admin/v1/tenants", "", 200, `"id":"initech"`},
		{"get json", "GET", "/admin/v1/tenants/acme", "", 200, `"clientID": "tenantgate"`},
		{"get yaml", "GET", "/admin/v1/tenants/initech?format=yaml", "", 200, "clientID: tg"},
		{"get saml", "GET", "/admin/v1/tenants/globex", "", 200, `"idpMetadataXML"`},
		{"get bad format", "GET", "/admin/v1/tenants/acme?format=xml", "", 400, `"error":"bad_request"`},
		{"get unknown", "GET", "/admin/v1/tenants/nope", "", 404, `"message":"tenant \"nope\" not found"`},
		{"users", "GET", "/admin/v1/tenants/acme/users", "", 200, `"password":true`},
		{"users of unknown", "GET", "/admin/v1/tenants/nope/users", "", 404, `"error":"not_found"`},
		{"apply invalid", "POST", "/admin/v1/tenants", "tenants:\n  - id: X\n", 422, "nothing applied"},
		{"apply unparsable", "POST", "/admin/v1/tenants", "tenants: [", 400, `"error":"bad_request"`},
		{"apply conflict", "POST", "/admin/v1/tenants", "tenants:\n  - id: hooli\n    emailDomains: [acme.test]\n    methods: [{type: password}]\n", 409, `already belongs to tenant \"acme\"`},
		{"apply too large", "POST", "/admin/v1/tenants", strings.Repeat("#", 4<<20+1), 413, "larger than 4 MiB"},
		{"user body unknown field", "POST", "/admin/v1/tenants/acme/users", `{"email":"e@acme.test","password":"pw-secret-value-1","admin":true}`, 400, "one JSON object"},
		{"user body not JSON", "POST", "/admin/v1/tenants/acme/users", `email=e@acme.test&password=pw-secret-value-2`, 400, "one JSON object"},
		{"user body too large", "POST", "/admin/v1/tenants/acme/users", `{"email":"` + strings.Repeat("a", 64<<10) + `"}`, 413, "larger than 64 KiB"},
		{"user weak password", "POST", "/admin/v1/tenants/acme/users", `{"email":"e@acme.test","password":"short"}`, 422, "at least 12"},
		{"user no password", "POST", "/admin/v1/tenants/acme/users", `{"email":"e@acme.test"}`, 422, "new user"},
		{"user bad email", "POST", "/admin/v1/tenants/acme/users", `{"email":"Eve <e@acme.test>"}`, 400, "plain address"},
		{"user unknown role", "POST", "/admin/v1/tenants/acme/users", `{"email":"dave@acme.test","roles":["root"]}`, 422, "has no role root"},
		{"remove non-member", "DELETE", "/admin/v1/tenants/globex/users/dave@acme.test", "", 404, "not a member"},
		{"method not allowed", "PUT", "/admin/v1/tenants", "", 405, `"error":"method_not_allowed"`},
		{"unknown endpoint", "GET", "/admin/v1/nothing", "", 404, `"error":"not_found"`},
		{"remove member", "DELETE", "/admin/v1/tenants/acme/users/dave@acme.test", "", 200, `"removed":true`},
		{"delete tenant", "DELETE", "/admin/v1/tenants/initech", "", 200, `"deleted":true`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(tc.method, tc.path, tc.body, auth)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, truncate(body), tc.status, tc.contains)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			for _, secret := range []string{"s3cr3t", "pw-secret-value", "argon2", "BEGIN", "sealed", "Sealed", "dave-password"} {
				if strings.Contains(body, secret) {
					t.Errorf("answer holds %q: %s", secret, truncate(body))
				}
			}
		})
	}
	for _, secret := range []string{"s3cr3t", "pw-secret-value", "dave-password", ts.token} {
		if strings.Contains(ts.logs.String(), secret) {
			t.Errorf("the server's log holds %q", secret)
		}
	}
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestAdminAPIUsesTheServersLoopbackSetting: apply through the API validates
// with the server's --allow-loopback-http-idp, and the CLI flag is refused
// with --server.
func TestAdminAPIUsesTheServersLoopbackSetting(t *testing.T) {
	strict, lax := startServer(t, true), startServer(t, true, "--allow-loopback-http-idp")
	c := strict.cli(t)
	f := c.writeFile("sso.yaml", ssoTenants)
	if code, _, errs := c.run("", "tenants", "apply", "-f", f); code == 0 || !strings.Contains(errs, "loopback") {
		t.Errorf("strict server accepted a loopback IdP: %d %q", code, errs)
	}
	code, _, errs := c.run("", "tenants", "apply", "-f", f, "--allow-loopback-http-idp")
	if code == 0 || !strings.Contains(errs, "server's own") {
		t.Errorf("--allow-loopback-http-idp with --server: %d %q", code, errs)
	}
	c = lax.cli(t)
	if out := c.mustRun("", "tenants", "apply", "-f", c.writeFile("sso.yaml", ssoTenants)); out != "tenant globex created\ntenant initech created\n" {
		t.Errorf("lax server: %q", out)
	}
	// With usable IdP metadata, the SAML tenant's SP metadata (holding the
	// SP certificate the apply made) is served at once.
	usable := strings.Replace(ssoTenants, `'<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/saml"/>'`,
		"'"+idpMetadata(t)+"'", 1)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("sso2.yaml", usable))
	resp, err := (&http.Client{}).Do(&http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: lax.httpAddr, Path: "/_auth/saml/metadata"}, Host: "globex.app.test", Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(md), "X509Certificate") {
		t.Errorf("SP metadata right after apply: %d %s\n%s", resp.StatusCode, md, lax.logs)
	}
}

// TestAdminAPIOff: without --admin-token-file the admin API answers 404
// while health, readiness and metrics stay.
func TestAdminAPIOff(t *testing.T) {
	ts := startServer(t, false)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := ts.do("GET", p, ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	resp, body := ts.do("GET", "/admin/v1/tenants", "", "Bearer "+strings.Repeat("a", 64))
	if resp.StatusCode != 404 || !strings.Contains(body, "admin API is off") {
		t.Errorf("admin API without a token file: %d %s", resp.StatusCode, body)
	}
	c := newCLI(t)
	c.target = []string{"--server", "http://" + ts.admin, "--admin-token-file", c.writeFile("token", strings.Repeat("a", 64))}
	code, _, errs := c.run("", "tenants", "list")
	if code == 0 || !strings.Contains(errs, "admin API is off") || strings.Count(errs, "\n") != 1 {
		t.Errorf("CLI against a server without the admin API: %d %q", code, errs)
	}
}

// TestServerFlagErrors: --server's mistakes are one line and exit 1, and
// nothing is sent where the token could leak.
func TestServerFlagErrors(t *testing.T) {
	c := newCLI(t)
	good := c.writeFile("token", strings.Repeat("t", 40)+"\n")
	open := c.writeFile("open-token", strings.Repeat("t", 40)+"\n")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"db and server", []string{"tenants", "list", "--db", c.db, "--server", "http://127.0.0.1:1", "--admin-token-file", good}, nil, "mutually exclusive"},
		{"db from environment", []string{"tenants", "list", "--server", "http://127.0.0.1:1", "--admin-token-file", good}, map[string]string{"TENANTGATE_DB": c.db}, "mutually exclusive"},
		{"server without token", []string{"users", "list", "--tenant", "acme", "--server", "http://127.0.0.1:1"}, nil, "--server needs --admin-token-file"},
		{"token without server", []string{"tenants", "list", "--admin-token-file", good}, nil, "goes with --server"},
		{"token file missing", []string{"tenants", "list", "--server", "http://127.0.0.1:1", "--admin-token-file", filepath.Join(c.dir, "nope")}, nil, "no such file"},
		{"token file open to others", []string{"tenants", "list", "--server", "http://127.0.0.1:1", "--admin-token-file", open}, nil, "chmod 600"},
		{"http to another host", []string{"tenants", "list", "--server", "http://192.0.2.1:9003", "--admin-token-file", good}, nil, "use https://"},
		{"http to a name", []string{"tenants", "list", "--server", "http://tenantgate.internal:9003", "--admin-token-file", good}, nil, "use https://"},
		{"credentials in URL", []string{"tenants", "list", "--server", "https://admin:pw@tg.example", "--admin-token-file", good}, nil, "must not hold credentials"},
		{"not a URL", []string{"tenants", "list", "--server", "127.0.0.1:9003", "--admin-token-file", good}, nil, "--server"},
		{"nothing listening", []string{"tenants", "list", "--server", "http://127.0.0.1:1", "--admin-token-file", good}, nil, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(tc.args, strings.NewReader(""), &out, &errb)
			errs := errb.String()
			if code == 0 || !strings.Contains(errs, tc.want) || !strings.HasPrefix(errs, "tenantgate: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, errs, tc.want)
			}
			if strings.Contains(errs, strings.Repeat("t", 40)) {
				t.Errorf("stderr holds the token: %q", errs)
			}
		})
	}
}

// TestServeAdminTokenFile: serve refuses a token file it should not trust,
// with one line saying what to fix, before it listens.
func TestServeAdminTokenFile(t *testing.T) {
	c := newCLI(t)
	cases := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"readable by others", strings.Repeat("a", 64) + "\n", 0o644, "chmod 600"},
		{"readable by group", strings.Repeat("a", 64), 0o640, "chmod 600"},
		{"empty", "", 0o600, "empty"},
		{"only a newline", "\n", 0o600, "empty"},
		{"short", strings.Repeat("a", 31) + "\n", 0o600, "at least 32"},
		{"two lines", strings.Repeat("a", 40) + "\n" + strings.Repeat("b", 40) + "\n", 0o600, "one line"},
		{"spaces", strings.Repeat("a", 20) + " " + strings.Repeat("b", 20), 0o600, "without spaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := c.writeFile("token", tc.content)
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			code, _, errs := c.run("", "serve", "--admin-token-file", p, "--db", c.db, "--master-key-file", c.key,
				"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
			if code == 0 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, p) || strings.Count(errs, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q and the path", code, errs, tc.want)
			}
			if strings.Contains(errs, "aaaaaaaaaaaaaaaaaaaa") {
				t.Errorf("stderr holds the token: %q", errs)
			}
		})
	}
	if _, err := os.Stat(c.db); err == nil {
		t.Error("serve opened the database before checking the token file")
	}
}

// idpMetadata is IdP metadata with a fresh self-signed signing certificate.
func idpMetadata(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/saml">` +
		`<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		`<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(der) +
		`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
		`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/saml/sso"/>` +
		`</md:IDPSSODescriptor></md:EntityDescriptor>`
}
