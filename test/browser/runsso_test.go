//go:build linux

package browser

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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

	"github.com/chromedp/chromedp"

	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// runSSOReady is the last line `make run-sso` prints once everything
// answers.
const runSSOReady = "Press Ctrl-C to stop."

// runSSOStartTimeout bounds the wait for that line: Keycloak's cold start
// dominates (a minute or more on two busy cores; see docs/keycloak-notes.md).
const runSSOStartTimeout = 8 * time.Minute

// TestRunSSO walks `make run-sso` as a newcomer would: it runs
// scripts/run-sso.sh (on free ports, in a temporary directory, with this
// tree's binaries), reads the URLs, accounts and CA path it prints, trusts
// that CA the way the script says (certutil into the NSS database of the
// browser's $HOME) and signs in with each of the three methods in Chromium:
// a password at acme, Keycloak OIDC at acme and Keycloak SAML at globex,
// all over https with production cookies. Chromium is given no certificate
// exception: it trusts Envoy's certificate because the printed CA signed it
// for the printed host. When the test ends the script is stopped and no
// process of it may be left.
func TestRunSSO(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	chromiumPath(t) // skip or fail before paying for Keycloak
	certutil := certutilPath(t)
	envoy := proc.Envoy(t)
	kcHome, err := keycloak.FindInstall("")
	if err != nil {
		if errors.Is(err, keycloak.ErrNotInstalled) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	began := time.Now()
	root := proc.RepoRoot(t)
	dir := t.TempDir()
	tg := proc.BuildTenantgate(t, dir)
	upstream := filepath.Join(dir, "demo-upstream")
	build := exec.Command("go", "build", "-o", upstream, "./test/echo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./test/echo: %v\n%s", err, out)
	}

	ports := map[string]int{}
	for _, name := range []string{"HTTPS", "KEYCLOAK", "GRPC", "HTTP", "ADMIN", "UPSTREAM"} {
		ports[name] = proc.FreePort(t)
	}
	run := startRunSSO(t, root, map[string]string{
		"RUN_SSO_DIR":              filepath.Join(dir, "run"),
		"RUN_SSO_TLS_DIR":          filepath.Join(dir, "tls"),
		"RUN_SSO_TENANTGATE":       tg,
		"RUN_SSO_UPSTREAM":         upstream,
		"TENANTGATE_ENVOY":         envoy,
		"TENANTGATE_KEYCLOAK_HOME": kcHome,
	}, ports)
	banner := run.waitReady(t)
	t.Logf("make run-sso ready after %s", time.Since(began).Round(time.Second))
	d := parseRunSSO(t, banner)
	for _, o := range []string{d.acme, d.globex} {
		if !strings.HasSuffix(o, ".localhost:"+strconv.Itoa(ports["HTTPS"])) {
			t.Fatalf("printed origin %s, want one on the https port %d", o, ports["HTTPS"])
		}
	}

	// Outside the browser first: the printed CA, and it alone, vouches for
	// each printed origin.
	client := caClient(t, d.ca)
	for _, o := range []string{d.acme, d.globex} {
		resp, err := client.Get(o + "/_auth/login")
		if err != nil {
			t.Fatalf("GET %s/_auth/login with only the printed CA trusted: %v", o, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s/_auth/login: %d", o, resp.StatusCode)
		}
	}

	// Trust the CA as the script says to, in the browser's own $HOME.
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	trust := exec.Command("bash", "-c", d.trustCommand)
	trust.Env = append(proc.Env(), "HOME="+home, "PATH="+filepath.Dir(certutil)+":"+os.Getenv("PATH"))
	if out, err := trust.CombinedOutput(); err != nil {
		t.Fatalf("the printed trust command %q: %v\n%s", d.trustCommand, err, out)
	}
	// *.localhost is loopback to Chromium anyway; the rule only says so.
	b := launchChromium(t, "MAP *.localhost 127.0.0.1", chromedp.Env("HOME="+home))

	kc := "http://127.0.0.1:" + strconv.Itoa(ports["KEYCLOAK"])
	t.Run("password", func(t *testing.T) {
		p := b.newTab(t)
		signInWithPassword(p, d.acme+"/", stack.User{Email: d.passwords[0][0], Password: d.passwords[0][1]})
		p.shot("signed-in")
		wantIdentity(p, "acme", d.passwords[0][0], "admin", "password")
		if c := p.cookie(d.acme+"/", sessionCookie); c == nil || !c.Secure {
			t.Errorf("no Secure %s cookie after the password sign-in", sessionCookie)
		}
	})
	t.Run("oidc", func(t *testing.T) {
		p := b.newTab(t)
		signInBySSO(p, d.acme, d.labels[0], kc+"/realms/"+keycloak.RealmOIDC+"/", d.sso[0])
		wantIdentity(p, "acme", keycloakUser(t, keycloak.RealmOIDC, d.sso[0][0]).Email, "admin,member", "oidc")
	})
	t.Run("saml", func(t *testing.T) {
		p := b.newTab(t)
		signInBySSO(p, d.globex, d.labels[1], kc+"/realms/"+keycloak.RealmSAML+"/", d.sso[1])
		wantIdentity(p, "globex", keycloakUser(t, keycloak.RealmSAML, d.sso[1][0]).Email, "admin,member", "saml")
	})
	t.Logf("make run-sso walked in %s", time.Since(began).Round(time.Second))
}

// signInBySSO opens origin's app, presses the SSO button labelled label on
// its sign-in page, signs in at Keycloak (whose realm URLs start with
// realm) as who, and waits to be back at the app.
func signInBySSO(p *tab, origin, label, realm string, who [2]string) {
	p.t.Helper()
	signInPage(p, origin+"/")
	if got := p.text(`form.sso button`); got != label {
		p.t.Errorf("SSO button says %q, want the printed %q", got, label)
	}
	p.click("press "+label, `form.sso button`)
	p.waitFor("Keycloak's login form", idpTimeout, func(u *url.URL) bool { return strings.HasPrefix(u.String(), realm) })
	p.steps("wait for the form", waitVisible(`#kc-form-login`))
	p.shot("keycloak-login")
	signInAtKeycloak(p, who[0], who[1])
	p.waitFor("the app", idpTimeout, atPath(origin, "/"))
	p.shot("signed-in")
}

// certutilPath is NSS's certutil (Debian's libnss3-tools), which the test
// uses to make Chromium trust the printed CA as a person would.
func certutilPath(t *testing.T) string {
	p, err := exec.LookPath("certutil")
	if err != nil {
		p = "/usr/bin/certutil"
	}
	return proc.Tool(t, "certutil", p, "make tools (or: apt-get install -y --no-install-recommends libnss3-tools)")
}

// runSSO is scripts/run-sso.sh running in its own process group.
type runSSO struct {
	cmd       *exec.Cmd
	out, errs *syncOutput
	done      chan struct{}
	stateDir  string
}

// syncOutput is a child's output, safe to read while it writes.
type syncOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *syncOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *syncOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// startRunSSO starts the script with env and the ports, and stops it when
// t ends: SIGTERM to the script (whose trap stops its children), then,
// after 30 s, SIGKILL to its whole process group. Any process of the group
// still alive after that is an error: the script must not leave processes
// behind.
func startRunSSO(t *testing.T, root string, env map[string]string, ports map[string]int) *runSSO {
	t.Helper()
	r := &runSSO{out: &syncOutput{}, errs: &syncOutput{}, done: make(chan struct{}), stateDir: filepath.Join(env["RUN_SSO_DIR"], "state")}
	r.cmd = exec.Command("bash", filepath.Join(root, "scripts", "run-sso.sh"))
	r.cmd.Dir = root
	r.cmd.Env = proc.Env()
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	for name, port := range ports {
		r.cmd.Env = append(r.cmd.Env, fmt.Sprintf("RUN_SSO_%s_PORT=%d", name, port))
	}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.errs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start scripts/run-sso.sh: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	pgid := r.cmd.Process.Pid
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("scripts/run-sso.sh did not stop within 30s of SIGTERM")
		}
		// The script waits for its children, but a child that ignored it
		// would still be in the group.
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(-pgid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("processes of scripts/run-sso.sh left behind after it stopped: %s", groupMembers(pgid))
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for name, port := range ports {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				t.Errorf("the %s port %d still accepts connections after run-sso stopped", name, port)
			}
		}
		if t.Failed() {
			t.Logf("run-sso stderr:\n%s", r.errs)
			for _, log := range []string{"keycloak.log", "tenantgate.log", "envoy.log"} {
				if b, err := os.ReadFile(filepath.Join(r.stateDir, log)); err == nil {
					t.Logf("--- %s (end) ---\n%s", log, tail(string(b), 40))
				}
			}
		}
	})
	return r
}

// waitReady waits for the script's ready line and returns what it printed
// on stdout.
func (r *runSSO) waitReady(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(runSSOStartTimeout)
	for !strings.Contains(r.out.String(), runSSOReady) {
		select {
		case <-r.done:
			t.Fatalf("scripts/run-sso.sh exited (%v) before it was ready:\n%s\n%s", r.cmd.ProcessState, r.out, r.errs)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("scripts/run-sso.sh not ready after %s:\n%s", runSSOStartTimeout, r.errs)
		}
	}
	return r.out.String()
}

// runSSODemo is what the script printed.
type runSSODemo struct {
	acme, globex string      // the tenants' origins
	passwords    [][2]string // email and password, acme's then globex's
	labels       []string    // the SSO buttons, acme's (OIDC) then globex's (SAML)
	sso          [][2]string // Keycloak user and password, OIDC then SAML
	ca           string      // the CA certificate's path
	trustCommand string      // the printed command that trusts it in Chromium on Linux
}

var (
	originLine   = regexp.MustCompile(`(?m)^  (https://(acme|globex)\.localhost:[0-9]+)/ `)
	passwordLine = regexp.MustCompile(`(?m)^ +password: +(\S+@\S+) / (\S+)`)
	ssoLine      = regexp.MustCompile(`(?m)^ +"([^"]+)": Keycloak (OIDC|SAML), user (\S+) / (\S+)`)
	caLine       = regexp.MustCompile(`(?m)^ +CA certificate: (\S+)$`)
	trustLine    = regexp.MustCompile(`(?m)^ +(mkdir -p \$HOME/\.pki/nssdb && certutil .*)$`)
)

// parseRunSSO reads the banner, failing the test if any part is missing.
func parseRunSSO(t *testing.T, banner string) runSSODemo {
	t.Helper()
	var d runSSODemo
	for _, m := range originLine.FindAllStringSubmatch(banner, -1) {
		if m[2] == "acme" {
			d.acme = m[1]
		} else {
			d.globex = m[1]
		}
	}
	for _, m := range passwordLine.FindAllStringSubmatch(banner, -1) {
		d.passwords = append(d.passwords, [2]string{m[1], m[2]})
	}
	for _, m := range ssoLine.FindAllStringSubmatch(banner, -1) {
		d.labels = append(d.labels, m[1])
		d.sso = append(d.sso, [2]string{m[3], m[4]})
	}
	if m := caLine.FindStringSubmatch(banner); m != nil {
		d.ca = m[1]
	}
	if m := trustLine.FindStringSubmatch(banner); m != nil {
		d.trustCommand = m[1]
	}
	if d.acme == "" || d.globex == "" || len(d.passwords) != 2 || len(d.sso) != 2 || d.ca == "" || d.trustCommand == "" {
		t.Fatalf("make run-sso did not print two origins, two password accounts, two SSO accounts, the CA and how to trust it:\n%s", banner)
	}
	return d
}

// caClient trusts only the CA in caFile and dials every host at 127.0.0.1
// (the port from the URL): *.localhost is loopback, whatever the resolver.
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
	return &http.Client{
		Timeout: actionTimeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
		},
	}
}

// groupMembers lists the processes of process group pgid, for a failure
// message.
func groupMembers(pgid int) string {
	out, err := exec.Command("ps", "-eo", "pgid=,pid=,args=").Output()
	if err != nil {
		return fmt.Sprintf("(ps: %v)", err)
	}
	var members []string
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == strconv.Itoa(pgid) {
			members = append(members, strings.Join(f[1:], " "))
		}
	}
	return strings.Join(members, "; ")
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
