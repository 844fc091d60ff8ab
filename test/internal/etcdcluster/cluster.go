package etcdcluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tenantgate/tenantgate/test/internal/proc"
)

const (
	// Timeout bounds each wait of the harness: for a cluster to become
	// healthy, for a leader to be elected, for a restarted member to catch
	// up. It is generous because the test machines have two cores shared by
	// several test binaries; on an idle machine a 3-member cluster is healthy
	// in about a second and an election takes one to two.
	Timeout = 60 * time.Second

	// callTimeout bounds one Status or Get the harness sends while it waits.
	callTimeout = 2 * time.Second

	// pollInterval is how long the harness sleeps between two looks at the
	// cluster while it waits.
	pollInterval = 50 * time.Millisecond

	defaultMembers = 3

	// healthKey is the key the harness reads to prove that a member serves
	// linearizable reads (has a leader and a quorum, and has caught up).
	healthKey = "etcdcluster-health"
)

// Options configures Start.
type Options struct {
	// Members is the number of members; zero means three.
	Members int

	// ClientCertAuth makes every member require a client certificate signed
	// by the cluster's CA (the client's is CertFile and KeyFile). Without it
	// members ask for none: etcd turns client-certificate checks on whenever
	// --trusted-ca-file is given, so it is given only with
	// --client-cert-auth. Peers always authenticate each other.
	ClientCertAuth bool
}

// Cluster is a running etcd cluster of separate processes. Its methods fail
// the test on error, so they must be called from the goroutine of the test
// that called Start (not from a subtest's); they are not safe for
// concurrent use. Clients it returns may be used from any goroutine.
type Cluster struct {
	// CAFile is the CA certificate (PEM) that signed every member's
	// certificate and the client's: the one clients must trust.
	CAFile string
	// CertFile and KeyFile are a client certificate (CN
	// tenantgate-test-client) and its key, signed by CAFile's CA.
	CertFile, KeyFile string

	tb testing.TB
	// owner is the test that called Start: every member process is
	// stopped when it ends, whichever view (For) started it.
	owner   testing.TB
	bin     string
	members []*member
	admin   *clientv3.Client // for Status calls to any member
}

// member is one etcd process's configuration and state.
type member struct {
	index     int
	name      string
	clientURL string
	args      []string         // the whole command line; the same on every start
	proc      *proc.Process    // the latest start
	down      bool             // stopped or killed by the test, not yet restarted
	client    *clientv3.Client // talks to this member only
}

// Binary returns the etcd server binary: $TENANTGATE_ETCD, else the one
// `make tools` builds into the repository's .tools/etcd/. A missing binary,
// or one that does not report the version of the etcd client this module
// requires, fails the test when CI is set and skips it otherwise (see
// proc.Tool).
func Binary(tb testing.TB) string {
	tb.Helper()
	path := os.Getenv("TENANTGATE_ETCD")
	if path == "" {
		path = filepath.Join(proc.RepoRoot(tb), ".tools", "etcd", "etcd")
	}
	const install = "make tools (or set TENANTGATE_ETCD)"
	bin := proc.Tool(tb, "etcd", path, install)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Env = proc.Env()
	out, err := cmd.Output()
	if want := "etcd Version: " + version.Version + "\n"; err != nil || !strings.HasPrefix(string(out), want) {
		msg := fmt.Sprintf("%s --version = %q (%v), want %q: the etcd client in go.mod and the pin in tools/etcd/go.mod differ, or the binary is stale; install it with: %s",
			bin, out, err, strings.TrimSpace(want), install)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return bin
}

// Start starts an etcd cluster of opts.Members members on free 127.0.0.1
// ports, all of them speaking TLS to clients and to each other, and returns
// once every member serves linearizable reads. The members are stopped, and
// their output logged if the test failed, when the test ends. Start skips
// the test with -short, and when the etcd binary is missing outside CI (see
// Binary).
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping the tests that start etcd")
	}
	bin := Binary(tb)
	n := opts.Members
	if n == 0 {
		n = defaultMembers
	}
	if n < 0 {
		tb.Fatalf("etcdcluster: %d members", n)
	}
	dir := tb.TempDir()
	ca, err := newAuthority(dir)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{CAFile: ca.file, tb: tb, owner: tb, bin: bin}
	c.CertFile, c.KeyFile, err = ca.issue(dir, "client", "tenantgate-test-client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		tb.Fatal(err)
	}
	token, err := clusterToken()
	if err != nil {
		tb.Fatal(err)
	}

	ports := freePorts(tb, 2*n)
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=https://127.0.0.1:%d", i, ports[2*i+1]))
	}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		// One certificate per member serves both sides of TLS: clients and
		// peers connect to it, and it connects to peers.
		cert, key, err := ca.issue(dir, name, name, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
		if err != nil {
			tb.Fatal(err)
		}
		clientURL := fmt.Sprintf("https://127.0.0.1:%d", ports[2*i])
		peerURL := fmt.Sprintf("https://127.0.0.1:%d", ports[2*i+1])
		args := []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, name+".etcd"),
			"--listen-client-urls", clientURL,
			"--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL,
			"--initial-advertise-peer-urls", peerURL,
			// The --initial-* flags bootstrap the cluster; on a restart
			// the member reads its membership from its data directory and
			// ignores them.
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--cert-file", cert,
			"--key-file", key,
			"--peer-cert-file", cert,
			"--peer-key-file", key,
			"--peer-trusted-ca-file", ca.file,
			"--peer-client-cert-auth",
		}
		if opts.ClientCertAuth {
			args = append(args, "--client-cert-auth", "--trusted-ca-file", ca.file)
		}
		c.members = append(c.members, &member{index: i, name: name, clientURL: clientURL, args: args})
	}

	c.admin = c.Client()
	for _, m := range c.members {
		m.client = c.Client(m.clientURL)
	}
	for _, m := range c.members {
		c.start(m)
	}
	c.WaitHealthy()
	return c
}

// clusterToken returns a random --initial-cluster-token, so that members
// of two clusters can never join each other, even if one reuses a port
// the other had.
func clusterToken() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate cluster token: %w", err)
	}
	return "tenantgate-test-" + hex.EncodeToString(b), nil
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment
// ago.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	seen := make(map[int]bool)
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*n {
			tb.Fatalf("no %d distinct free ports after %d tries", n, tries)
		}
		if p := proc.FreePort(tb); !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

func (c *Cluster) start(m *member) {
	c.tb.Helper()
	m.proc = proc.StartNamed(c.owner, "etcd "+m.name, c.bin, m.args...)
	m.down = false
}

// For returns a view of the cluster whose methods fail tb instead of the
// test that called Start, for use from a subtest's goroutine. Both views
// share the members; neither may be used while the other is. Members it
// restarts still belong to the test that called Start: they run until
// that test ends, not tb.
func (c *Cluster) For(tb testing.TB) *Cluster {
	v := *c
	v.tb = tb
	return &v
}

// Size returns the number of members, running or not.
func (c *Cluster) Size() int { return len(c.members) }

// Endpoints returns every member's client URL (https://127.0.0.1:port), in
// member order, running or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.clientURL
	}
	return eps
}

// Endpoint returns member i's client URL.
func (c *Cluster) Endpoint(i int) string { return c.member(i).clientURL }

// Name returns member i's name (m0, m1, …): its --name, and the label of
// its output in a failed test's log.
func (c *Cluster) Name(i int) string { return c.member(i).name }

// TLS returns the client TLS configuration: it trusts CAFile's CA only
// and presents CertFile.
func (c *Cluster) TLS() *tls.Config {
	c.tb.Helper()
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		c.tb.Fatalf("etcd client certificate: %v", err)
	}
	return &tls.Config{RootCAs: c.CAPool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// CAPool returns a pool holding CAFile's CA alone.
func (c *Cluster) CAPool() *x509.CertPool {
	c.tb.Helper()
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		c.tb.Fatalf("etcd CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		c.tb.Fatalf("etcd CA: no certificate in %s", c.CAFile)
	}
	return pool
}

// Client returns a client of endpoints (all members when none are given)
// with TLS (see TLS); it is closed when the test ends. It does not wait for
// a connection: calls fail or wait as their context says.
func (c *Cluster) Client(endpoints ...string) *clientv3.Client {
	c.tb.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: callTimeout,
		TLS:         c.TLS(),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.tb.Fatalf("etcd client for %v: %v", endpoints, err)
	}
	c.tb.Cleanup(func() { cli.Close() })
	return cli
}

// Running reports whether member i runs: started and neither stopped nor
// killed by the test. A member that died by itself still counts as
// running, so the next wait fails with its output.
func (c *Cluster) Running(i int) bool { return !c.member(i).down }

// Kill ends member i with SIGKILL, as a crash would, and returns once the
// process is gone.
func (c *Cluster) Kill(i int) {
	c.tb.Helper()
	m := c.member(i)
	m.proc.Kill()
	m.down = true
}

// Stop stops member i gracefully (SIGTERM; SIGKILL after five seconds), as
// a rolling restart does: a leader hands its leadership over first. It
// returns once the process is gone.
func (c *Cluster) Stop(i int) {
	c.tb.Helper()
	m := c.member(i)
	m.proc.Stop()
	m.down = true
}

// StopAll stops every running member gracefully (SIGTERM; SIGKILL after
// five seconds) and returns once they are all gone.
func (c *Cluster) StopAll() {
	c.tb.Helper()
	for _, m := range c.members {
		m.proc.Stop()
		m.down = true
	}
}

// Restart starts member i again on its data directory, where it finds its
// identity and the cluster's membership, and returns once it serves
// linearizable reads: it has rejoined and caught up with the leader. The
// member must be down (Kill, Stop or StopAll).
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	m := c.member(i)
	if !m.down {
		c.tb.Fatalf("etcd %s: Restart of a member that runs", m.name)
	}
	c.start(m)
	c.WaitHealthy()
}

// RestartAll starts every member that is down, all at once (none can serve
// until a quorum is back), and returns once the cluster is healthy (see
// WaitHealthy).
func (c *Cluster) RestartAll() {
	c.tb.Helper()
	for _, m := range c.members {
		if m.down {
			c.start(m)
		}
	}
	c.WaitHealthy()
}

// WaitHealthy returns once the running members agree on a leader that is
// one of them, and each of them serves a linearizable read, which takes a
// quorum and a member that has applied everything committed before the
// read. It fails the test with the reason if a running member exits, or
// after Timeout.
func (c *Cluster) WaitHealthy() {
	c.tb.Helper()
	c.wait("healthy", func(ctx context.Context) error {
		if _, err := c.leader(ctx); err != nil {
			return err
		}
		for _, m := range c.running() {
			if _, err := m.client.Get(ctx, healthKey); err != nil {
				return fmt.Errorf("linearizable read from %s: %w", m.name, err)
			}
		}
		return nil
	})
}

// Leader returns the index of the leader that the running members agree
// on, once they agree on one of them (an election may be under way). It
// fails the test if none is agreed within Timeout.
func (c *Cluster) Leader() int {
	c.tb.Helper()
	var leader int
	c.wait("agreed on a leader", func(ctx context.Context) error {
		var err error
		leader, err = c.leader(ctx)
		return err
	})
	return leader
}

// leader asks every running member for its status and returns the index of
// the running member that all of them name as leader, or an error saying
// why there is none.
func (c *Cluster) leader(ctx context.Context) (int, error) {
	running := c.running()
	if len(running) == 0 {
		return 0, errors.New("no member runs")
	}
	ids := make(map[uint64]int) // member id → index, of the running members
	var agreed uint64
	for _, m := range running {
		st, err := c.admin.Status(ctx, m.clientURL)
		if err != nil {
			return 0, fmt.Errorf("status of %s: %w", m.name, err)
		}
		if st.Leader == 0 {
			return 0, fmt.Errorf("%s has no leader", m.name)
		}
		if agreed != 0 && st.Leader != agreed {
			return 0, fmt.Errorf("members disagree on the leader: %x and %x", agreed, st.Leader)
		}
		agreed = st.Leader
		ids[st.Header.MemberId] = m.index
	}
	i, ok := ids[agreed]
	if !ok {
		return 0, fmt.Errorf("the leader %x is not a running member", agreed)
	}
	return i, nil
}

// wait calls check, with a context bounded by callTimeout, until it
// returns nil. It fails the test if a running member's process exits, or
// with check's last error after Timeout.
func (c *Cluster) wait(what string, check func(ctx context.Context) error) {
	c.tb.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		for _, m := range c.running() {
			if m.proc.Exited() {
				c.tb.Fatalf("etcd %s exited while waiting for the cluster to be %s:\n%s", m.name, what, m.proc.Output())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("etcd cluster not %s after %v: %v", what, Timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

func (c *Cluster) running() []*member {
	var ms []*member
	for _, m := range c.members {
		if !m.down {
			ms = append(ms, m)
		}
	}
	return ms
}

func (c *Cluster) member(i int) *member {
	c.tb.Helper()
	if i < 0 || i >= len(c.members) {
		c.tb.Fatalf("etcd member %d of %d", i, len(c.members))
	}
	return c.members[i]
}
