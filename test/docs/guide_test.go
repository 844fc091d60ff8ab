//go:build linux

// Package docs runs the commands of tenantgate's guides as written, so that
// a guide that no longer works fails a test instead of a reader.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// keycloakGuide is the guide TestKeycloakGuide runs.
const keycloakGuide = "docs/sso-keycloak.md"

// guidePorts are the fixed ports the guide uses: Keycloak, Envoy's https
// listener, tenantgate's three and the demo app's. The test replaces each
// with a free one, so the guide can run beside anything else.
var guidePorts = []int{8180, 8443, 9001, 9002, 9003, 8081}

// guideReady is what the test's script prints once every block has run.
const guideReady = "TENANTGATE-GUIDE-DONE"

// guideTimeout bounds the whole guide: a build, Keycloak's cold start (a
// minute or more on two busy cores) and some thirty kcadm.sh runs (a JVM
// each).
const guideTimeout = 15 * time.Minute

// block is one fenced code block of a guide.
type block struct {
	line   int    // of the opening fence
	info   string // the info string: "sh", "sh server", "yaml", …
	text   string
	server bool // "sh server": runs until stopped
}

// TestKeycloakGuide runs every command of docs/sso-keycloak.md, in order,
// in one shell, as a reader would in a fresh clone (a temporary directory
// holding links to this tree, with its own .run/ and bin/, and its own
// $HOME for kcadm.sh's token): from an empty Keycloak to realms, people,
// clients, the tenant file, tenantgate and Envoy over https with the local
// CA. It then signs a person in with each method the guide sets up, over
// https trusting only that CA, as the guide's last table says: OIDC at acme,
// SAML at globex, plain OAuth2 at initech, each landing in the app with the
// identity headers the table lists. The guide's YAML excerpts must also be
// what its commands apply.
func TestKeycloakGuide(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	root := proc.RepoRoot(t)
	tools := os.Getenv("TENANTGATE_TOOLS_DIR")
	if tools == "" {
		tools = filepath.Join(root, ".tools")
	}
	proc.Tool(t, "Envoy", filepath.Join(tools, "envoy", "envoy", "_bin", "envoy"), "make tools")
	if kc, _ := filepath.Glob(filepath.Join(tools, "keycloak", "*", "bin", "kc.sh")); len(kc) == 0 {
		proc.Tool(t, "Keycloak", filepath.Join(tools, "keycloak", "<version>", "bin", "kc.sh"), keycloak.InstallHint)
	}
	doc, err := os.ReadFile(filepath.Join(root, keycloakGuide))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", keycloakGuide, err)
	}
	checkExcerpts(t, blocks)

	ports := map[int]int{}
	for _, p := range guidePorts {
		ports[p] = proc.FreePort(t)
	}
	dir := cloneLinks(t, root, tools)
	script := guideScript(blocks, ports)
	if err := os.WriteFile(filepath.Join(dir, "guide.sh"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	g := startGuide(t, dir)
	g.waitDone(t)
	t.Logf("the guide's commands ran in %s", time.Since(began).Round(time.Second))

	origin := func(tenant string) string { return fmt.Sprintf("https://%s.localhost:%d", tenant, ports[8443]) }
	users := guideUsers(t, blocks)
	client := func() *http.Client { return caClient(t, filepath.Join(dir, ".run", "tls", "ca.crt")) }
	for _, tc := range []struct {
		tenant, realm, method string
	}{
		{"acme", "acme", "oidc"},
		{"globex", "globex", "saml"},
		{"initech", "initech", "social"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			u, ok := users[tc.realm]
			if !ok {
				t.Fatalf("the guide sets no password in realm %s", tc.realm)
			}
			got := signIn(t, client(), origin(tc.tenant), u)
			want := map[string]string{
				"x-tenant-id":       tc.tenant,
				"x-user-email":      u.email,
				"x-user-roles":      "admin,member",
				"x-auth-method":     tc.method,
				"x-forwarded-proto": "https",
			}
			for h, v := range want {
				if vs := got.Values(h); len(vs) != 1 || vs[0] != v {
					t.Errorf("the app received %s %q, want %q", h, vs, v)
				}
			}
		})
	}
}

var fence = regexp.MustCompile("^```(.*)$")

// parseBlocks returns the fenced code blocks of a Markdown document. Shell
// blocks must be marked "sh" (run to completion) or "sh server" (started
// in the background): any other shell spelling is an error, so that no
// command escapes the test.
func parseBlocks(doc string) ([]block, error) {
	var (
		out  []block
		cur  *block
		text strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := fence.FindStringSubmatch(line)
		switch {
		case cur == nil && m != nil:
			cur = &block{line: n, info: strings.TrimSpace(m[1])}
			text.Reset()
		case cur != nil && line == "```":
			cur.text = text.String()
			switch lang, _, _ := strings.Cut(cur.info, " "); {
			case cur.info == "sh server":
				cur.server = true
			case cur.info == "sh":
			case lang == "sh" || lang == "bash" || lang == "shell" || lang == "console":
				return nil, fmt.Errorf("line %d: a shell block must be ```sh or ```sh server, not ```%s", cur.line, cur.info)
			}
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			text.WriteString(line)
			text.WriteByte('\n')
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the code block is never closed", cur.line)
	}
	return out, sc.Err()
}

// portNumber matches the guide's fixed ports.
var portNumber = regexp.MustCompile(`\b(8180|8443|9001|9002|9003|8081)\b`)

// guideScript joins the shell blocks into one script: each "sh" block as
// it is, each "sh server" block started in the background with its output
// in .run/guide-logs/, the ports replaced. It stops at the first failing
// command (set -e), tracing each (set -x), and stops the servers on exit.
func guideScript(blocks []block, ports map[int]int) string {
	var b strings.Builder
	b.WriteString("set -eo pipefail\nmkdir -p .run/guide-logs\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\nset -x\n")
	for _, bl := range blocks {
		if bl.info != "sh" && !bl.server {
			continue
		}
		text := portNumber.ReplaceAllStringFunc(bl.text, func(s string) string {
			n, _ := strconv.Atoi(s)
			return strconv.Itoa(ports[n])
		})
		fmt.Fprintf(&b, "\n# %s:%d\n", keycloakGuide, bl.line)
		if bl.server {
			fmt.Fprintf(&b, "(\n%s) >.run/guide-logs/server-%d.log 2>&1 &\n", text, bl.line)
		} else {
			b.WriteString(text)
		}
	}
	fmt.Fprintf(&b, "\nset +x\necho %s\nwait\n", guideReady)
	return b.String()
}

// tenantEntry matches a YAML excerpt that is one tenant of a tenant file.
var tenantEntry = regexp.MustCompile(`(?m)^  - id: `)

// checkExcerpts fails the test unless every YAML excerpt of one tenant
// ("  - id: …") is, line for line and comments aside, part of the tenant
// file a shell block writes: the excerpts explain what the commands apply.
func checkExcerpts(t *testing.T, blocks []block) {
	t.Helper()
	var shell strings.Builder
	for _, bl := range blocks {
		if bl.info == "sh" {
			shell.WriteString(bl.text)
		}
	}
	applied := stripComments(shell.String())
	n := 0
	for _, bl := range blocks {
		if bl.info != "yaml" || !tenantEntry.MatchString(bl.text) {
			continue
		}
		n++
		if ex := stripComments(bl.text); !strings.Contains(applied, ex) {
			t.Errorf("%s:%d: the YAML excerpt is not what the commands apply:\n%s", keycloakGuide, bl.line, ex)
		}
	}
	if n == 0 {
		t.Errorf("%s: no tenant excerpts found", keycloakGuide)
	}
}

// stripComments drops YAML comments and trailing spaces from each line.
func stripComments(s string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		l = strings.TrimRight(l, "\n")
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(strings.TrimRight(l, " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// cloneLinks makes a directory that looks like a fresh clone of the tree at
// root: a link to each of its top-level entries but what a clone lacks
// (.git, bin, .run, .tools, build output), and .tools linked to tools.
func cloneLinks(t *testing.T, root, tools string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ".git", "bin", ".run", ".tools", "tenantgate", "tenantgate.db", "tenantgate.key":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(tools, filepath.Join(dir, ".tools")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// guide is the guide's script running in a process group of its own.
type guide struct {
	cmd       *exec.Cmd
	out, errs *syncBuffer
	done      chan struct{}
	dir       string
}

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

// startGuide runs dir/guide.sh with $HOME in dir/home, and kcadm.sh's
// user.home there too: Java takes user.home from the password database,
// not from $HOME, so without KC_OPTS (which kcadm.sh passes to java) every
// run shared ~/.keycloak/kcadm.config with any other guide run on the
// machine, and one run's `config credentials` sent the other's commands to
// its Keycloak (a 404 for a realm the first had just created). When t ends, the
// whole process group gets SIGTERM, then SIGKILL after 20 s; if t failed,
// the trace and the servers' logs are logged.
func startGuide(t *testing.T, dir string) *guide {
	t.Helper()
	g := &guide{out: &syncBuffer{}, errs: &syncBuffer{}, done: make(chan struct{}), dir: dir}
	g.cmd = exec.Command("bash", "guide.sh")
	g.cmd.Dir = dir
	home := filepath.Join(dir, "home")
	g.cmd.Env = append(proc.Env(), "HOME="+home, "KC_OPTS=-Duser.home="+home)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.errs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("run the guide: %v", err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	pgid := g.cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		deadline := time.Now().Add(20 * time.Second)
		for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-g.done
		if t.Failed() {
			t.Logf("--- the guide's trace (end) ---\n%s", tail(g.errs.String(), 60))
			logs, _ := filepath.Glob(filepath.Join(dir, ".run", "guide-logs", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					t.Logf("--- %s (end) ---\n%s", filepath.Base(l), tail(string(b), 30))
				}
			}
		}
	})
	return g
}

// waitDone waits until every block has run, failing the test if the script
// stops first or guideTimeout passes.
func (g *guide) waitDone(t *testing.T) {
	t.Helper()
	deadline := time.After(guideTimeout)
	for !strings.Contains(g.out.String(), guideReady) {
		select {
		case <-g.done:
			t.Fatalf("the guide stopped (%v) before its last command", g.cmd.ProcessState)
		case <-deadline:
			t.Fatalf("the guide did not finish within %s", guideTimeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// guideUser is a person the guide creates in a realm.
type guideUser struct {
	username, password, email string
}

var (
	setPassword = regexp.MustCompile(`kcadm\.sh set-password -r (\S+) --username (\S+) --new-password (\S+)`)
	createUser  = regexp.MustCompile(`kcadm\.sh create users -r (\S+) -s username=(\S+) -s email=(\S+)`)
)

// guideUsers reads, from the guide's commands, each realm's person: the
// username, the email and the password it sets.
func guideUsers(t *testing.T, blocks []block) map[string]guideUser {
	t.Helper()
	users := map[string]guideUser{}
	for _, bl := range blocks {
		if bl.info != "sh" {
			continue
		}
		for _, m := range createUser.FindAllStringSubmatch(bl.text, -1) {
			u := users[m[1]]
			u.username, u.email = m[2], m[3]
			users[m[1]] = u
		}
		for _, m := range setPassword.FindAllStringSubmatch(bl.text, -1) {
			u := users[m[1]]
			if u.username != m[2] {
				t.Fatalf("the guide sets a password for %s in realm %s, but created %q there", m[2], m[1], u.username)
			}
			u.password = m[3]
			users[m[1]] = u
		}
	}
	return users
}

// caClient trusts only the CA in caFile, keeps cookies like a browser and
// reaches every *.localhost host at 127.0.0.1, as browsers do.
func caClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("no certificate in %s", caFile)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: time.Minute,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if strings.HasSuffix(host, ".localhost") {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		},
	}
}

// signIn opens origin's app as a browser would, follows it to Keycloak,
// signs in as u, follows Keycloak back (posting its SAML form when it
// answers with one) and returns what the app received.
func signIn(t *testing.T, c *http.Client, origin string, u guideUser) echo.Request {
	t.Helper()
	ctx := t.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, origin+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("open %s/: %v", origin, err)
	}
	if !strings.Contains(resp.Request.URL.Path, "/realms/") {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("opening %s/ ended at %s (%d), not at Keycloak:\n%.2000s", origin, resp.Request.URL, resp.StatusCode, body)
	}
	resp, err = keycloak.SubmitLogin(ctx, c, resp, u.username, u.password)
	if err != nil {
		t.Fatalf("sign in at Keycloak as %s: %v", u.username, err)
	}
	// SAML: Keycloak answers with a form that posts itself to the ACS.
	if strings.Contains(resp.Request.URL.String(), "/realms/") {
		f, err := keycloak.ReadForm(resp, func(f keycloak.Form) bool { return f.Values.Has("SAMLResponse") })
		if err != nil {
			t.Fatalf("after signing in, Keycloak's page at %s: %v", resp.Request.URL, err)
		}
		if resp, err = f.Submit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var got echo.Request
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != origin+"/" || json.Unmarshal(body, &got) != nil {
		t.Fatalf("after signing in: %d at %s, want the app at %s/:\n%.2000s", resp.StatusCode, resp.Request.URL, origin, body)
	}
	if got.Path != "/" {
		t.Errorf("the app was asked for %q, want /", got.Path)
	}
	return got
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestGuideBlocks checks the guide without running it (so also under
// -short): its shell blocks are marked as the runner expects and are valid
// bash once joined, its tenant excerpts are what its commands apply, and
// the people it creates all get passwords.
func TestGuideBlocks(t *testing.T) {
	root := proc.RepoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, keycloakGuide))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", keycloakGuide, err)
	}
	checkExcerpts(t, blocks)
	servers := 0
	for _, b := range blocks {
		if b.server {
			servers++
		}
	}
	if servers == 0 {
		t.Errorf("%s has no server blocks", keycloakGuide)
	}
	ports := map[int]int{}
	for _, p := range guidePorts {
		ports[p] = p + 10000
	}
	check := exec.Command("bash", "-n")
	check.Stdin = strings.NewReader(guideScript(blocks, ports))
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("the guide's commands are not valid bash: %v\n%s", err, out)
	}
	for realm, u := range guideUsers(t, blocks) {
		if u.username == "" || u.password == "" || u.email == "" {
			t.Errorf("realm %s: the guide's person %+v lacks a name, an email or a password", realm, u)
		}
	}
}

// TestParseBlocks: the runner takes "sh" and "sh server" blocks and refuses
// any other spelling of a shell block, so none is skipped unnoticed.
func TestParseBlocks(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []block // line, info, server
		err       string
	}{
		{"sh and server", "text\n```sh\necho a\n```\n```sh server\nsleep 1\n```\n```yaml\nk: v\n```\n", []block{
			{line: 2, info: "sh", text: "echo a\n"},
			{line: 5, info: "sh server", text: "sleep 1\n", server: true},
			{line: 8, info: "yaml", text: "k: v\n"},
		}, ""},
		{"bash refused", "```bash\necho a\n```\n", nil, "must be ```sh or ```sh server"},
		{"sh with another word refused", "```sh background\necho a\n```\n", nil, "must be ```sh or ```sh server"},
		{"unclosed", "```sh\necho a\n", nil, "never closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBlocks(tc.doc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
