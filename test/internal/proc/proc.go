// Package proc runs the child processes of tenantgate's end-to-end tests
// (tenantgate itself, Envoy, the CLI commands that provision a database) and
// finds what they need: the repository root, free loopback ports, installed
// tools.
//
// Children get the test's environment without any TENANTGATE_* or ETCD_*
// variable, which would silently change tenantgate's or etcd's flags. A
// started process is
// stopped when the test ends (SIGTERM, then SIGKILL after five seconds), and
// its output is logged if the test failed. Every wait is bounded.
package proc

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/freeport"
)

// RepoRoot returns the module root: the nearest directory at or above the
// working directory that holds go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = up
	}
}

// FreePort returns a TCP port on 127.0.0.1 for a server started later: free
// now, and handed to nothing else on the machine while this test process
// runs (freeport).
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := freeport.Get()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Env is the environment for child processes: the test's, without any
// TENANTGATE_* or ETCD_* variable (etcd reads every flag from ETCD_<FLAG>).
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TENANTGATE_") && !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// Tool returns path if it is an executable file. Otherwise the test fails
// when the CI environment variable is set, and is skipped, naming install
// (the command that installs it), when not: a test never passes without
// its tool.
func Tool(tb testing.TB, what, path, install string) string {
	tb.Helper()
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s not found at %s; install it with: %s", what, path, install)
	}
	tb.Skipf("%s not found at %s; install it with: %s", what, path, install)
	return ""
}

// Envoy returns the Envoy binary: $TENANTGATE_ENVOY, else the one `make
// tools` installs under the repository's .tools/ (see Tool for a missing
// one).
func Envoy(tb testing.TB) string {
	tb.Helper()
	path := os.Getenv("TENANTGATE_ENVOY")
	if path == "" {
		path = filepath.Join(RepoRoot(tb), ".tools", "envoy", "envoy", "_bin", "envoy")
	}
	return Tool(tb, "Envoy", path, "make tools (or set TENANTGATE_ENVOY)")
}

// BuildTenantgate builds ./cmd/tenantgate from this tree into dir and
// returns the binary's path.
func BuildTenantgate(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "tenantgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tenantgate")
	build.Dir = RepoRoot(tb)
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/tenantgate: %v\n%s", err, out)
	}
	return bin
}

// Run runs name with args to completion, stdin as its input, and fails the
// test with its output unless it exits 0.
func Run(tb testing.TB, stdin, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = Env()
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// output collects a child's stdout and stderr.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// maxLogged bounds how much of a failed test's child output is logged: the
// end, where the error is.
const maxLogged = 16 << 10

// Process is a child process started for a test.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, set before done closes
}

// Start runs name with args in the background. It is stopped when the test
// ends, and its output is logged if the test failed.
func Start(tb testing.TB, name string, args ...string) *Process {
	tb.Helper()
	return StartNamed(tb, filepath.Base(name), name, args...)
}

// StartNamed is Start for a process that messages and the logged output
// call label, so that several children of one binary (the members of an
// etcd cluster) can be told apart.
func StartNamed(tb testing.TB, label, name string, args ...string) *Process {
	tb.Helper()
	p := &Process{name: label, out: &output{}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = Env()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			out := p.out.String()
			if len(out) > maxLogged {
				out = "…" + out[len(out)-maxLogged:]
			}
			tb.Logf("--- output of %s ---\n%s", p.name, out)
		}
	})
	return p
}

// Stop ends the process: SIGTERM, and SIGKILL if it still runs five
// seconds later. It returns once the process has exited; calling it again
// does nothing.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL, as a crash would: no signal handler
// runs and nothing is flushed. It returns once the process has been reaped;
// calling it on an ended process does nothing.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns everything the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// WaitUntil calls ready every 20ms until it returns nil. It fails the test,
// with the last error, if the process exits first or timeout passes.
func (p *Process) WaitUntil(tb testing.TB, timeout time.Duration, ready func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		if p.Exited() {
			tb.Fatalf("%s exited before it was ready (%v): %v\n%s", p.name, p.err, err, p.Output())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %v: %v", p.name, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HTTPOK is a readiness check for WaitUntil: a GET of url answers 200.
func HTTPOK(url string) func() error {
	client := &http.Client{Timeout: time.Second}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// Listening is a readiness check for WaitUntil: addr accepts TCP
// connections.
func Listening(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
