package keycloak

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
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

	"github.com/tenantgate/tenantgate/test/internal/freeport"
)

// ErrNotInstalled is wrapped by Launch's error when no usable Keycloak
// install is found; the message says how to install one.
var ErrNotInstalled = errors.New("keycloak is not installed")

// InstallHint is the command that installs the pinned Keycloak.
const InstallHint = "make tools (or: bash scripts/keycloak.sh)"

// DefaultStartTimeout bounds how long Launch waits for Keycloak to serve
// every realm. A cold start measured 15-40 s on a moderately loaded 2-core
// machine, and 1-3 min with load average 10 (three test binaries each
// starting a Keycloak while other builds run); 3 min was seen to time out.
const DefaultStartTimeout = 5 * time.Minute

// Origins are the scheme://host[:port] origins at which the tests' tenants
// are reached through Envoy. They become the realms' redirect URIs, web
// origins, SAML entity id and ACS. An empty field takes its default.
type Origins struct {
	Acme    string // RealmOIDC's client; default http://acme.app.test:8080
	Globex  string // RealmSAML's client; default http://globex.app.test:8080
	Initech string // RealmOAuth's client; default http://initech.app.test:8080
}

func (o Origins) withDefaults() Origins {
	if o.Acme == "" {
		o.Acme = "http://acme.app.test:8080"
	}
	if o.Globex == "" {
		o.Globex = "http://globex.app.test:8080"
	}
	if o.Initech == "" {
		o.Initech = "http://initech.app.test:8080"
	}
	return o
}

// Options configure Launch and Start. The zero value is usable.
type Options struct {
	// Origins of the tenants the realms' clients redirect to.
	Origins Origins
	// Home is the Keycloak install; empty means TENANTGATE_KEYCLOAK_HOME, or
	// else <repo>/.tools/keycloak/<pin from scripts/keycloak.sh>.
	Home string
	// StartTimeout bounds the wait for readiness; 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// JavaOpts are extra JVM options (JAVA_OPTS_APPEND); empty means
	// TENANTGATE_KEYCLOAK_JAVA_OPTS, or else DefaultJavaOpts.
	JavaOpts string
	// Log, if set, also receives Keycloak's console output (it always goes
	// to the file LogPath names).
	Log io.Writer
}

// DefaultJavaOpts swap kc.sh's G1 for the serial collector: fewer GC
// threads on 2 cores and about 40 MB less memory, at the same start time.
// C1-only JIT (-XX:TieredStopAtLevel=1) was measured slower: realm import
// generates RSA keys, whose BigInteger intrinsics only C2 has.
const DefaultJavaOpts = "-XX:-UseG1GC -XX:+UseSerialGC"

// Heap keeps Keycloak to a bounded footprint (it otherwise sizes its heap
// from the machine's memory).
const heapOpts = "-Xms128m -Xmx512m"

// Server is a running Keycloak. Its methods are safe for concurrent use.
type Server struct {
	url      string
	origins  Origins
	dir      string
	logPath  string
	adminPW  string
	startDur time.Duration

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	logf   *os.File

	closeOnce sync.Once
	closeErr  error
}

// URL returns the server's base URL, http://127.0.0.1:<port>, with no
// trailing slash.
func (s *Server) URL() string { return s.url }

// Issuer returns the OIDC issuer of realm: URL()/realms/<realm>. It is also
// the SAML IdP entity id of the realm.
func (s *Server) Issuer(realm string) string { return s.url + "/realms/" + realm }

// DiscoveryURL returns realm's OpenID Provider configuration URL.
func (s *Server) DiscoveryURL(realm string) string {
	return s.Issuer(realm) + "/.well-known/openid-configuration"
}

// SAMLDescriptorURL returns realm's SAML IdP metadata URL.
func (s *Server) SAMLDescriptorURL(realm string) string {
	return s.Issuer(realm) + "/protocol/saml/descriptor"
}

// SAMLEndpoint returns realm's SAML SSO endpoint (HTTP-Redirect and
// HTTP-POST bindings).
func (s *Server) SAMLEndpoint(realm string) string { return s.Issuer(realm) + "/protocol/saml" }

// Origins returns the tenant origins the realms were imported with.
func (s *Server) Origins() Origins { return s.origins }

// Admin returns the master realm's bootstrap administrator, for tests that
// need Keycloak's admin API. The password is random per server.
func (s *Server) Admin() (username, password string) { return "admin", s.adminPW }

// LogPath returns the file holding Keycloak's console output.
func (s *Server) LogPath() string { return s.logPath }

// StartupDuration returns how long Keycloak took from exec to serving every
// realm.
func (s *Server) StartupDuration() time.Duration { return s.startDur }

// Start launches a Keycloak for the test and stops it in tb.Cleanup. When
// no install is found it fails the test if the CI environment variable is
// set and skips it, naming InstallHint, otherwise. When tb has failed by
// cleanup time, the tail of Keycloak's log is logged.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	return StartAsync(tb, opts)()
}

// StartAsync begins launching Keycloak in the background, so a test can do
// other slow work (build and start the system under test) meanwhile, and
// returns a function that waits for it with Start's outcome: the server, or
// the test skipped or failed. Call that function from the test's goroutine.
// The server is stopped in tb.Cleanup, and a launch still in progress is
// abandoned, whether or not the function was called.
func StartAsync(tb testing.TB, opts Options) (wait func() *Server) {
	tb.Helper()
	type launched struct {
		s   *Server
		err error
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan launched, 1)
	go func() {
		s, err := Launch(ctx, opts)
		done <- launched{s, err}
	}()
	var (
		once sync.Once
		res  launched
	)
	result := func() launched {
		once.Do(func() { res = <-done })
		return res
	}
	tb.Cleanup(func() {
		cancel()
		r := result()
		if r.s == nil {
			return
		}
		if tb.Failed() {
			tb.Logf("keycloak log tail:\n%s", r.s.LogTail(80))
		}
		if err := r.s.Close(); err != nil {
			tb.Errorf("stop keycloak: %v", err)
		}
	})
	return func() *Server {
		tb.Helper()
		r := result()
		if errors.Is(r.err, ErrNotInstalled) && os.Getenv("CI") == "" {
			tb.Skipf("%v", r.err)
		}
		if r.err != nil {
			tb.Fatalf("start keycloak: %v", r.err)
		}
		tb.Logf("keycloak at %s, ready in %s (log: %s)", r.s.URL(), r.s.StartupDuration().Round(time.Millisecond), r.s.LogPath())
		return r.s
	}
}

// SkipIfDisabled skips tb when the live Keycloak tests are switched off:
// with -short, or with TENANTGATE_KEYCLOAK_TESTS=0 (which fails the test
// instead when CI is set). Otherwise they run (`make
// test` installs Keycloak first), and Start fails when CI is set and
// Keycloak is missing, or skips naming InstallHint elsewhere.
func SkipIfDisabled(tb testing.TB) {
	tb.Helper()
	switch {
	case os.Getenv("TENANTGATE_KEYCLOAK_TESTS") == "0":
		if os.Getenv("CI") != "" {
			// CI must prove what these tests prove; an environment
			// variable left over must not turn them into a silent pass.
			tb.Fatal("TENANTGATE_KEYCLOAK_TESTS=0 with CI set: the Keycloak tests may not be skipped in CI")
		}
		tb.Skip("TENANTGATE_KEYCLOAK_TESTS=0")
	case testing.Short():
		tb.Skip("-short: skipping the Keycloak tests")
	}
}

// Launch starts Keycloak and returns once every realm serves its OpenID
// configuration with the expected issuer, or with an error (wrapping
// ErrNotInstalled when there is no usable install) after the process exited,
// ctx ended or opts.StartTimeout passed; the error then carries the log
// tail. The caller must Close the server. Launch is meant for TestMain; tests
// use Start.
func Launch(ctx context.Context, opts Options) (*Server, error) {
	home, err := findHome(opts.Home)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// A free port can be taken between probing and Keycloak binding it;
	// try a fresh one a few times when that is why Keycloak stopped.
	var lastErr error
	for range 3 {
		s, err := launchOnce(ctx, home, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port already in use")

func launchOnce(ctx context.Context, home string, opts Options) (_ *Server, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tenantgate-keycloak-")
	if err != nil {
		return nil, fmt.Errorf("create keycloak run directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := prepareRunHome(home, dir); err != nil {
		return nil, err
	}
	pw, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	s := &Server{
		url:     "http://127.0.0.1:" + strconv.Itoa(port),
		origins: opts.Origins.withDefaults(),
		dir:     dir,
		logPath: filepath.Join(dir, "keycloak.log"),
		adminPW: pw,
		exited:  make(chan struct{}),
	}
	if s.logf, err = os.Create(s.logPath); err != nil {
		return nil, fmt.Errorf("create keycloak log: %w", err)
	}
	var out io.Writer = s.logf
	if opts.Log != nil {
		out = io.MultiWriter(s.logf, opts.Log)
	}
	javaOpts := opts.JavaOpts
	if javaOpts == "" {
		javaOpts = os.Getenv("TENANTGATE_KEYCLOAK_JAVA_OPTS")
	}
	if javaOpts == "" {
		javaOpts = DefaultJavaOpts
	}
	realJava, err := javaPath()
	if err != nil {
		s.logf.Close()
		return nil, err
	}

	cmd := exec.Command(filepath.Join(dir, "bin", "kc.sh"), "start-dev",
		"--db=dev-mem", // the option the install was built with
		"--http-host=127.0.0.1", "--http-port="+strconv.Itoa(port),
		"--import-realm",
		"--log-console-color=false",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(cleanEnv(os.Environ()),
		// The wrapper skips kc.sh's pre-build JVM, whose only job is a
		// Quarkus build that scripts/keycloak.sh already did for these
		// options (findHome checked).
		"JAVA="+filepath.Join(dir, "bin", "java-no-prebuild"),
		"TENANTGATE_REAL_JAVA="+realJava,
		"JAVA_OPTS_KC_HEAP="+heapOpts,
		"JAVA_OPTS_APPEND="+javaOpts,
		"KC_BOOTSTRAP_ADMIN_USERNAME=admin",
		"KC_BOOTSTRAP_ADMIN_PASSWORD="+pw,
		"KC_CACHE=local",
		"TG_ACME_ORIGIN="+s.origins.Acme,
		"TG_GLOBEX_ORIGIN="+s.origins.Globex,
		"TG_INITECH_ORIGIN="+s.origins.Initech,
	)
	setProcAttr(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		s.logf.Close()
		return nil, fmt.Errorf("exec %s: %w", cmd.Path, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(ctx); err != nil {
		tail := s.LogTail(60)
		_ = s.Close()
		if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "Port already bound") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return nil, fmt.Errorf("keycloak at %s did not become ready: %w\n--- log tail (%s) ---\n%s", s.url, err, s.logPath, tail)
	}
	s.startDur = time.Since(start)
	return s, nil
}

// waitReady polls every realm's discovery document until each names the
// expected issuer. The issuer check matters: a stray server on a reused
// port answers 200 too.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	pending := []string{RealmOIDC, RealmSAML, RealmOAuth}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var still []string
		for _, realm := range pending {
			if err := s.checkIssuer(ctx, client, realm); err != nil {
				still = append(still, realm)
			}
		}
		if pending = still; len(pending) == 0 {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("process exited (%v) before serving realms %v", s.cmd.ProcessState, pending)
		case <-ctx.Done():
			return fmt.Errorf("realms %v not served: %w", pending, ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Server) checkIssuer(ctx context.Context, client *http.Client, realm string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.DiscoveryURL(realm), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return err
	}
	if doc.Issuer != s.Issuer(realm) {
		return fmt.Errorf("issuer %q, want %q", doc.Issuer, s.Issuer(realm))
	}
	return nil
}

// Close stops Keycloak: SIGTERM to its process group, SIGKILL after 15 s,
// then removes its run directory. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			pid := s.cmd.Process.Pid
			_ = signalGroup(pid, syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(15 * time.Second):
				_ = signalGroup(pid, syscall.SIGKILL)
				select {
				case <-s.exited:
				case <-time.After(5 * time.Second):
					s.closeErr = fmt.Errorf("keycloak (pid %d) did not exit after SIGKILL", pid)
				}
			}
		}
		if s.logf != nil {
			s.logf.Close()
		}
		if s.closeErr == nil && os.Getenv("TENANTGATE_KEYCLOAK_KEEP") == "" {
			s.closeErr = os.RemoveAll(s.dir)
		}
	})
	return s.closeErr
}

// LogTail returns the last n lines of Keycloak's console output.
func (s *Server) LogTail(n int) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", s.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FindInstall returns the Keycloak install Launch would run for
// Options.Home home: home itself, else TENANTGATE_KEYCLOAK_HOME, else
// <repo>/.tools/keycloak/<pin>, checked to be complete and built for the
// options Launch uses. When there is none its error wraps ErrNotInstalled
// and names InstallHint. Tests that start Keycloak some other way (make
// run-sso) use it to skip or fail as Start does.
func FindInstall(home string) (string, error) { return findHome(home) }

// findHome returns the Keycloak install to run, checked to be complete and
// built for the options Launch uses.
func findHome(home string) (string, error) {
	if home == "" {
		home = os.Getenv("TENANTGATE_KEYCLOAK_HOME")
	}
	if home == "" {
		root, err := repoRoot()
		if err != nil {
			return "", fmt.Errorf("%w: %v; set TENANTGATE_KEYCLOAK_HOME or run: %s", ErrNotInstalled, err, InstallHint)
		}
		version, err := pinnedVersion(filepath.Join(root, "scripts", "keycloak.sh"))
		if err != nil {
			return "", err
		}
		home = filepath.Join(root, ".tools", "keycloak", version)
	}
	if _, err := os.Stat(filepath.Join(home, ".tenantgate-installed")); err != nil {
		return "", fmt.Errorf("%w at %s (no install marker); run: %s", ErrNotInstalled, home, InstallHint)
	}
	if err := checkBuild(home); err != nil {
		return "", fmt.Errorf("%w: %s: %w; run: %s", ErrNotInstalled, home, err, InstallHint)
	}
	return home, nil
}

// wantBuild are the build-time properties scripts/keycloak.sh builds with
// and Launch relies on (it skips kc.sh's rebuild check).
var wantBuild = map[string]string{"kc.profile": "dev", "kc.db": "dev-mem"}

// checkBuild reads the build-time options Keycloak persisted in its
// augmented jar and compares them with wantBuild.
func checkBuild(home string) error {
	zr, err := zip.OpenReader(filepath.Join(home, "lib", "quarkus", "generated-bytecode.jar"))
	if err != nil {
		return fmt.Errorf("server not built: %w", err)
	}
	defer zr.Close()
	f, err := zr.Open("META-INF/keycloak-persisted.properties")
	if err != nil {
		return fmt.Errorf("server not built: %w", err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(k, "#") {
			got[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read persisted build options: %w", err)
	}
	var errs []error
	for k, v := range wantBuild {
		if got[k] != v {
			errs = append(errs, fmt.Errorf("built with %s=%q, want %q", k, got[k], v))
		}
	}
	return errors.Join(errs...)
}

// prepareRunHome lays out a private Keycloak home in dir: a copy of
// bin/kc.sh (kc.sh takes its home from its own real path), links to the
// install's read-only lib, conf, themes and providers, and data/import
// holding the realm files.
func prepareRunHome(home, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return fmt.Errorf("prepare keycloak home: %w", err)
	}
	kc, err := os.ReadFile(filepath.Join(home, "bin", "kc.sh"))
	if err != nil {
		return fmt.Errorf("prepare keycloak home: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "kc.sh"), kc, 0o755); err != nil {
		return fmt.Errorf("prepare keycloak home: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "java-no-prebuild"), []byte(javaWrapper), 0o755); err != nil {
		return fmt.Errorf("prepare keycloak home: %w", err)
	}
	for _, name := range []string{"lib", "conf", "themes", "providers"} {
		if err := os.Symlink(filepath.Join(home, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("prepare keycloak home: %w", err)
		}
	}
	imp := filepath.Join(dir, "data", "import")
	if err := os.MkdirAll(imp, 0o755); err != nil {
		return fmt.Errorf("prepare keycloak home: %w", err)
	}
	err = fs.WalkDir(RealmFiles(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(RealmFiles(), path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(imp, filepath.Base(path)), data, 0o644)
	})
	if err != nil {
		return fmt.Errorf("copy realm files: %w", err)
	}
	return nil
}

// javaWrapper stands in for java in kc.sh: kc.sh first runs the JVM with
// -Dkc.config.build-and-exit=true to rebuild the server if its build
// options changed, then again to start it. The install is built for exactly
// our options, so the first run is a wasted JVM start (2-6 s) and, were it
// ever to rebuild, a write into the shared install.
const javaWrapper = `#!/bin/sh
if [ "$1" = "-Dkc.config.build-and-exit=true" ]; then exit 0; fi
exec "$TENANTGATE_REAL_JAVA" "$@"
`

// cleanEnv drops variables that would change how Keycloak or its JVM run.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "KC_"), strings.HasPrefix(k, "KEYCLOAK_"),
			strings.HasPrefix(k, "QUARKUS_"), strings.HasPrefix(k, "JAVA_OPTS"),
			strings.HasPrefix(k, "TG_"), k == "JAVA", k == "DEBUG", k == "PRINT_ENV":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func javaPath() (string, error) {
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		return filepath.Join(jh, "bin", "java"), nil
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("%w: no java on PATH (Keycloak needs Java 17 or 21)", ErrNotInstalled)
	}
	return p, nil
}

var pinRE = regexp.MustCompile(`(?m)^KEYCLOAK_VERSION=([0-9A-Za-z.\-]+)\s*$`)

// pinnedVersion reads the one pin, KEYCLOAK_VERSION=, from
// scripts/keycloak.sh.
func pinnedVersion(script string) (string, error) {
	data, err := os.ReadFile(script)
	if err != nil {
		return "", fmt.Errorf("read keycloak pin: %w", err)
	}
	m := pinRE.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("read keycloak pin: no KEYCLOAK_VERSION= line in %s", script)
	}
	return string(m[1]), nil
}

// repoRoot walks up from the working directory (a test runs in its
// package's directory) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module github.com/tenantgate/tenantgate")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no tenantgate go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) { return freeport.Get() }

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
