package fleet_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// readmeSection is the README section TestReadmeSeveralReplicas runs.
const readmeSection = "## Running several replicas"

// readmePorts are the fixed ports of that section: etcd's client and peer
// ports and the two replicas' three each. The test gives each a free one.
var readmePorts = regexp.MustCompile(`\b(2379|2380|9001|9002|9003|9011|9012|9013)\b`)

// readmeBlock is one fenced code block of the section.
type readmeBlock struct{ info, text string }

// TestReadmeSeveralReplicas runs the README's "Running several replicas"
// as written, in a directory of its own holding bin/tenantgate and .tools:
// etcd, the tenant and user put into it, two replicas on it. It then
// checks what the section promises: both replicas answer for acme, a
// session signed in at one is valid at the other, a sign-out at one is
// refused by the other within a second; and that its two YAML blocks are
// the Envoy clusters and retry policy TestFleetBehindEnvoy runs.
func TestReadmeSeveralReplicas(t *testing.T) {
	etcdcluster.Binary(t) // skips or fails, as the fleet tests do, without etcd
	if testing.Short() {
		t.Skip("-short: skipping the tests that start etcd")
	}
	root := proc.RepoRoot(t)
	blocks := readmeBlocks(t, filepath.Join(root, "README.md"))
	var yamls, shells []readmeBlock
	for _, b := range blocks {
		switch b.info {
		case "yaml":
			yamls = append(yamls, b)
		case "sh", "sh server":
			shells = append(shells, b)
		default:
			t.Fatalf("README %q: a block of %q; this test runs sh and sh server blocks and checks yaml ones", readmeSection, b.info)
		}
	}
	if len(yamls) != 2 {
		t.Fatalf("README %q: %d yaml blocks, want the clusters and the retry policy", readmeSection, len(yamls))
	}
	if want := strings.TrimRight(fleetClusters([]int{9001, 9011}, []int{9002, 9012}, []int{9003, 9013}, "1s"), "\n") + "\n"; yamls[0].text != want {
		t.Errorf("README's Envoy clusters are not fleetClusters' (the ones TestFleetBehindEnvoy runs):\n%s\nwant\n%s", yamls[0].text, want)
	}
	if yamls[1].text != fleetCheckRetry {
		t.Errorf("README's retry policy is not fleetCheckRetry:\n%s\nwant\n%s", yamls[1].text, fleetCheckRetry)
	}

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	proc.BuildTenantgate(t, filepath.Join(dir, "bin"))
	if err := os.Symlink(filepath.Join(root, ".tools"), filepath.Join(dir, ".tools")); err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	for _, p := range []string{"2379", "2380", "9001", "9002", "9003", "9011", "9012", "9013"} {
		ports[p] = strconv.Itoa(proc.FreePort(t))
	}
	localize := func(s string) string {
		return readmePorts.ReplaceAllStringFunc(s, func(p string) string { return ports[p] })
	}

	var servers []*proc.Process
	for i, b := range shells {
		text := localize(b.text)
		if b.info == "sh server" {
			// One command: exec it, so that stopping the shell stops it.
			p := proc.StartNamed(t, fmt.Sprintf("README block %d", i), "bash", "-c", "cd "+dir+" && exec "+text)
			servers = append(servers, p)
			if len(servers) == 1 { // etcd: serving before the next block
				p.WaitUntil(t, 30*time.Second, proc.HTTPOK("http://127.0.0.1:"+ports["2379"]+"/health"))
			}
			continue
		}
		cmd := exec.Command("bash", "-eo", "pipefail", "-c", text)
		cmd.Dir, cmd.Env = dir, proc.Env()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("README block %d: %v\n%s\n%s", i, err, text, out)
		}
	}
	if len(servers) != 3 {
		t.Fatalf("README %q: %d server blocks, want etcd and two replicas", readmeSection, len(servers))
	}
	var rs []*replica
	for i, base := range []string{"9001", "9011"} {
		n, _ := strconv.Atoi(base)
		r := &replica{tb: t, name: fmt.Sprintf("README replica %d", i+1), proc: servers[i+1],
			grpc: "127.0.0.1:" + ports[base], http: "127.0.0.1:" + ports[strconv.Itoa(n+1)], adm: "127.0.0.1:" + ports[strconv.Itoa(n+2)]}
		conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		r.check = authv3.NewAuthorizationClient(conn)
		r.waitReady(t, 30*time.Second)
		rs = append(rs, r)
	}
	for _, r := range rs {
		if a := r.ask(t, "acme.localhost", ""); a.status != 401 {
			t.Errorf("%s: acme without a session = %d, want 401", r.name, a.status)
		}
	}
	session := rs[0].signIn(t, "acme.localhost", "alice@acme.test", "acme-fleet-password")
	if a := rs[1].ask(t, "acme.localhost", session.Value); a.status != 200 || a.headers["x-user-email"] != "alice@acme.test" {
		t.Fatalf("%s: alice's session from %s = %d %v, want 200", rs[1].name, rs[0].name, a.status, a.headers)
	}
	if resp := rs[0].form(t, "acme.localhost", "/_auth/logout", []*http.Cookie{session}, url.Values{}); resp.StatusCode >= 400 {
		t.Fatalf("sign-out at %s: %d", rs[0].name, resp.StatusCode)
	}
	took := rs[1].eventually(t, revocationBound, "signed out at the other replica", "acme.localhost", session.Value, status(401))
	t.Logf("the README's commands ran; %s refuses the session %v after the sign-out at %s", rs[1].name, took.Round(time.Millisecond), rs[0].name)
}

// readmeBlocks returns the fenced code blocks of README's readmeSection.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n"+readmeSection+"\n")
	if !ok {
		t.Fatalf("README has no %q", readmeSection)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var out []readmeBlock
	var cur *readmeBlock
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{info: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("README %q: a code block is never closed", readmeSection)
	}
	return out
}
