package fleet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/envoyconf"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// fleetMaxStaleness is the replicas' --store-max-staleness: short, so that
// the outage of every etcd member outlasts it quickly.
const fleetMaxStaleness = 3 * time.Second

// revocationBound is how long after a sign-out answered every replica
// must refuse the session (issue 9: within 1 s).
const revocationBound = time.Second

// fleetAdminToken is the replicas' admin API bearer token.
const fleetAdminToken = "fleet-admin-token-0123456789abcdef"

// loadTenants are the password tenants the load generator signs in to.
var loadTenants = []string{"acme", "globex", "initech"}

// fleetTenantFile is the tenant file of the fleet: three password tenants
// and umbrella, which signs in with SAML at idpMetadata. crewjam's IdP
// sends only transient NameIDs, which never key an account: umbrella keys
// them by the uid attribute it sets (the IdP's user name).
func fleetTenantFile(idpMetadata string) string {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, id := range loadTenants {
		fmt.Fprintf(&b, "  - id: %s\n    methods: [{type: password}]\n    roles: {member: {permissions: [\"docs:read\"]}}\n", id)
	}
	fmt.Fprintf(&b, `  - id: umbrella
    methods:
      - type: saml
        idpMetadataURL: %s
        emailAttribute: %s
        nameIDFormat: transient
        subjectAttribute: %s
        defaultRoles: [member]
    roles: {member: {permissions: ["docs:read"]}}
`, idpMetadata, crewMailAttribute, crewUIDAttribute)
	return b.String()
}

// userOf is the password user of a load tenant.
func userOf(tenant string) (email, password string) {
	return "ann@" + tenant + ".test", "correct-horse-battery-" + tenant
}

// fleet is three tenantgate replicas on one three-member etcd cluster
// behind one Envoy, with the echo upstream and a SAML IdP.
type fleet struct {
	etcd     *etcdcluster.Cluster
	bin      string
	store    []string // the store flags every replica and command gets
	replicas []*replica
	envoy    *proc.Process
	// envoyAddr is Envoy's listener, and envoyPort its port.
	envoyAddr string
	envoyPort int
	upstream  *upstream
	idp       *crewIDP
}

// TestFleetBehindEnvoy is issue 9's proof, end to end: a real etcd cluster
// of three members (TLS, client certificates), three `tenantgate serve`
// replicas on it, one real Envoy in front whose tenantgate clusters list
// the three with gRPC and /readyz health checks (failure_mode_allow:
// false), the echo upstream, and a load generator that sends signed-in,
// signed-out, forged, cross-tenant and signed-out-since requests for three
// tenants through Envoy the whole time. The scenarios share that fleet and
// run in order; each prints what it measured. What no scenario may ever
// see, checked on every response and on every request the upstream
// received, is a request wrongly allowed (see loadResult.wronglyAllowed).
func TestFleetBehindEnvoy(t *testing.T) {
	began := time.Now()
	f := startFleet(t)
	t.Logf("fleet up in %v: etcd %v, replicas %s, Envoy %s", time.Since(began).Round(time.Millisecond),
		f.etcd.Endpoints(), f.replicaNames(), f.envoyAddr)

	lg := newLoad(f)
	for _, tenant := range loadTenants {
		email, pw := userOf(tenant)
		lg.addLive(tenant, email, f.signInThroughEnvoy(t, tenant, email, pw).Value)
	}
	// A session signed out before the load starts: refused from the start.
	email, pw := userOf("acme")
	old := f.signInThroughEnvoy(t, "acme", email, pw)
	f.signOutThroughEnvoy(t, "acme", old)
	lg.addRevoked("acme", email, old.Value, time.Now())
	lg.start(t)

	// phases delimit the scenarios in the load's record.
	phase := func(name string, run func(t *testing.T) (faultFrom, faultTo time.Time)) {
		t.Run(name, func(t *testing.T) {
			from := time.Now()
			faultFrom, faultTo := run(t)
			lg.phase(name, from, time.Now(), faultFrom, faultTo)
			t.Log(lg.summary(name))
		})
	}

	phase("tenant applied at replica A answered by B and C", func(t *testing.T) (time.Time, time.Time) {
		applied := f.replicas[0].adminApply(t, "tenants:\n  - id: hooli\n    methods: [{type: password}]\n")
		for _, r := range f.replicas[1:] {
			r.eventually(t, time.Second, "hooli applied at replica A", "hooli.app.test", "", status(401))
			t.Logf("%s answers for hooli within %v of replica A's admin API answering the apply", r.name, time.Since(applied).Round(time.Millisecond))
		}
		return time.Time{}, time.Time{}
	})

	phase("signed out through Envoy refused by every replica", func(t *testing.T) (time.Time, time.Time) {
		email, pw := userOf("globex")
		s := f.signInThroughEnvoy(t, "globex", email, pw)
		lg.addLive("globex", email, s.Value)
		time.Sleep(300 * time.Millisecond) // the load uses it meanwhile
		for _, r := range f.replicas {
			if a := r.ask(t, "globex.app.test", s.Value); a.status != 200 || a.headers["x-user-email"] != email {
				t.Fatalf("%s before the sign-out: %d %v", r.name, a.status, a.headers)
			}
		}
		lg.removeLive(s.Value)
		f.signOutThroughEnvoy(t, "globex", s)
		out := time.Now()
		lg.addRevoked("globex", email, s.Value, out)
		for _, r := range f.replicas {
			took := r.eventually(t, revocationBound, "signed out through Envoy", "globex.app.test", s.Value, status(401))
			t.Logf("%s refuses the signed-out session %v after the sign-out answered", r.name, took.Round(time.Millisecond))
		}
		if took := time.Since(out); took > revocationBound {
			t.Errorf("the last replica refused the session %v after the sign-out, want within %v", took, revocationBound)
		}
		return time.Time{}, time.Time{}
	})

	phase("SAML response replayed to another replica refused", func(t *testing.T) (time.Time, time.Time) {
		f.samlReplay(t)
		return time.Time{}, time.Time{}
	})

	phase("replica killed under load", func(t *testing.T) (time.Time, time.Time) {
		victim := f.replicas[1]
		killed := time.Now()
		victim.proc.Kill()
		time.Sleep(2 * time.Second) // load meanwhile, on the two left
		settled := time.Now()
		victim.restart()
		victim.waitReady(t, 30*time.Second)
		ready := time.Since(settled)
		// Envoy's health check puts it back: Checks reach it again.
		before := victim.checks(t)
		deadline := time.Now().Add(10 * time.Second)
		for victim.checks(t) == before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no Check from Envoy 10 s after it was ready again", victim.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s killed (SIGKILL); restarted ready in %v; Envoy sends it Checks again %v after it was ready",
			victim.name, ready.Round(time.Millisecond), time.Since(settled.Add(ready)).Round(time.Millisecond))
		return killed, settled
	})

	phase("etcd leader killed under load", func(t *testing.T) (time.Time, time.Time) {
		c := f.etcd.For(t)
		// Committed before the kill, through the admin API.
		f.replicas[0].adminApply(t, "tenants:\n  - id: durable\n    methods: [{type: password}]\n    roles: {member: {permissions: [\"docs:read\"]}}\n")
		f.replicas[0].adminAddUser(t, "durable", "dora@durable.test", "correct-horse-battery-dora")
		leader := c.Leader()
		killed := time.Now()
		c.Kill(leader)
		// Sign-ins need etcd (the user's record): they work again once a
		// new leader is elected.
		email, pw := userOf("initech")
		var s *http.Cookie
		for s == nil {
			if time.Since(killed) > 30*time.Second {
				t.Fatal("no sign-in through Envoy 30 s after the etcd leader was killed")
			}
			s = f.trySignInThroughEnvoy(t, "initech", email, pw)
		}
		signIn := time.Since(killed)
		lg.addLive("initech", email, s.Value)
		settled := time.Now()
		c.Restart(leader)
		for _, r := range f.replicas {
			r.eventually(t, 10*time.Second, "durable after the leader was killed", "durable.app.test", "", status(401))
		}
		f.replicas[2].adminGet(t, "/admin/v1/tenants/durable", 200)
		f.replicas[1].adminGet(t, "/admin/v1/tenants/durable/users", 200, "dora@durable.test")
		d := f.replicas[2].signIn(t, "durable.app.test", "dora@durable.test", "correct-horse-battery-dora")
		if a := f.replicas[1].ask(t, "durable.app.test", d.Value); a.status != 200 {
			t.Errorf("dora's session at %s: %d", f.replicas[1].name, a.status)
		}
		t.Logf("etcd leader %s killed: sign-in through Envoy works again %v later; the tenant and user written before are there",
			c.Name(leader), signIn.Round(time.Millisecond))
		return killed, settled
	})

	phase("every etcd member down past the staleness bound", func(t *testing.T) (time.Time, time.Time) {
		c := f.etcd.For(t)
		for i := range c.Size() {
			c.Kill(i)
		}
		down := time.Now()
		bound := down.Add(fleetMaxStaleness + 500*time.Millisecond)
		lg.markBlackout(bound)
		time.Sleep(time.Until(bound))
		email, _ := userOf("acme")
		session := lg.liveToken("acme", email)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, r := range f.replicas {
				if a := r.ask(t, "acme.app.test", session); a.status != 503 {
					t.Fatalf("%s %v after every etcd member was killed (--store-max-staleness %v): %d, want 503",
						r.name, time.Since(down).Round(time.Millisecond), fleetMaxStaleness, a.status)
				}
				if h := r.healthOf(t); h != healthpb.HealthCheckResponse_NOT_SERVING {
					t.Fatalf("%s: health %v while stale, want NOT_SERVING", r.name, h)
				}
			}
		}
		restarting := time.Now()
		lg.markBlackoutEnd(restarting)
		c.RestartAll()
		healthy := time.Since(restarting)
		// Service resumes without restarting tenantgate: a signed-in
		// request through Envoy is allowed again.
		back := lg.waitAllowed(t, restarting, 60*time.Second)
		for _, r := range f.replicas {
			r.waitReady(t, 30*time.Second)
		}
		allReady := time.Since(restarting)
		t.Logf("every etcd member killed: each replica answered 503 once --store-max-staleness %v had passed; members restarted (healthy after %v), Envoy allows signed-in requests again %v and every replica is ready %v after the restart began, no replica restarted",
			fleetMaxStaleness, healthy.Round(time.Millisecond), back.Round(time.Millisecond), allReady.Round(time.Millisecond))
		// The fault lasts until every replica serves again: one that has
		// not reconnected yet still answers 503 (fail closed), and Envoy
		// sends it its share of the load meanwhile.
		return down, restarting.Add(allReady)
	})

	res := lg.stop(t)
	t.Log(res.String())
	res.check(t)
	t.Logf("TestFleetBehindEnvoy: %v in all", time.Since(began).Round(time.Millisecond))
}

// startFleet starts the IdP, the etcd cluster, provisions the tenants and
// users through the CLI, starts three replicas, the upstream and Envoy.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	envoyBin := proc.Envoy(t)
	f := &fleet{}
	f.idp = startCrewIDP(t)
	f.etcd = etcdcluster.Start(t, etcdcluster.Options{ClientCertAuth: true})
	dir := t.TempDir()
	f.bin = proc.BuildTenantgate(t, dir)
	f.store = []string{"--etcd-endpoints", strings.Join(f.etcd.Endpoints(), ","), "--etcd-prefix", prefix(t),
		"--etcd-ca-file", f.etcd.CAFile, "--etcd-cert-file", f.etcd.CertFile, "--etcd-key-file", f.etcd.KeyFile,
		"--master-key-file", filepath.Join(dir, "tg.key")}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	proc.Run(t, "", f.bin, append([]string{"tenants", "apply", "--allow-loopback-http-idp", "-f",
		write("tenants.yaml", fleetTenantFile(f.idp.metadataURL()))}, f.store...)...)
	for _, tenant := range loadTenants {
		email, pw := userOf(tenant)
		proc.Run(t, pw+"\n", f.bin, append([]string{"users", "add", "--tenant", tenant, "--email", email, "--role", "member", "--password-stdin"}, f.store...)...)
	}
	serve := append([]string{"--allow-loopback-http-idp", "--admin-token-file", write("admin.token", fleetAdminToken+"\n"),
		"--store-max-staleness", fleetMaxStaleness.String()}, f.store...)
	for _, name := range []string{"replica A", "replica B", "replica C"} {
		f.replicas = append(f.replicas, launchReplica(t, f.bin, name, serve...))
	}
	for _, r := range f.replicas {
		r.waitReady(t, 30*time.Second)
	}

	f.upstream = &upstream{}
	up := httptest.NewServer(f.upstream)
	t.Cleanup(up.Close)
	f.envoyPort = proc.FreePort(t)
	f.envoyAddr = fmt.Sprintf("127.0.0.1:%d", f.envoyPort)
	cfg := fleetEnvoyConfig(t, f.replicas, f.envoyPort, up.Listener.Addr().(*net.TCPAddr).Port)
	f.envoy = proc.Start(t, envoyBin, "-c", write("envoy.yaml", cfg), "--use-dynamic-base-id", "--concurrency", "1", "-l", "warning",
		"--file-flush-interval-msec", "50")
	f.envoy.WaitUntil(t, 20*time.Second, proc.Listening(f.envoyAddr))
	// Envoy's first health checks passed when Envoy sends each replica
	// Checks (round robin over the healthy ones).
	f.envoy.WaitUntil(t, 20*time.Second, func() error {
		req, _ := http.NewRequest("GET", f.envoyURL("/"), nil)
		req.Host = "acme.app.test"
		if resp, err := noRedirects.Do(req); err == nil {
			resp.Body.Close()
		}
		for _, r := range f.replicas {
			if r.checksNow() == 0 {
				return fmt.Errorf("Envoy has sent %s no Check yet", r.name)
			}
		}
		return nil
	})

	f.registerSAML(t)
	return f
}

func (f *fleet) replicaNames() string {
	var s []string
	for _, r := range f.replicas {
		s = append(s, r.name+" "+r.grpc)
	}
	return strings.Join(s, ", ")
}

// fleetEnvoyConfig is the shipped envoy/envoy.yaml with its two tenantgate
// clusters listing every replica (fleetClusters), its listener on
// envoyPort and its app on upstreamPort.
func fleetEnvoyConfig(t *testing.T, rs []*replica, envoyPort, upstreamPort int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(proc.RepoRoot(t), "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	from := strings.Index(cfg, "    # tenantgate's ext_authz gRPC port.")
	to := strings.Index(cfg, "    # Your application.")
	if from < 0 || to < from {
		t.Fatal("envoy/envoy.yaml: the tenantgate clusters are not where the fleet test looks for them")
	}
	var grpcPorts, httpPorts, adminPorts []int
	for _, r := range rs {
		grpcPorts = append(grpcPorts, portOf(t, r.grpc))
		httpPorts = append(httpPorts, portOf(t, r.http))
		adminPorts = append(adminPorts, portOf(t, r.adm))
	}
	cfg = cfg[:from] + fleetClusters(grpcPorts, httpPorts, adminPorts, "0.25s") + cfg[to:]
	const timeout = "                        timeout: 2s\n"
	if strings.Count(cfg, timeout) != 1 {
		t.Fatalf("envoy/envoy.yaml: %d lines %q, want the ext_authz call's one", strings.Count(cfg, timeout), timeout)
	}
	cfg = strings.Replace(cfg, timeout, timeout+fleetCheckRetry, 1)
	out, err := envoyconf.RewritePorts([]byte(cfg), map[int]int{8080: envoyPort, 8081: upstreamPort})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// fleetCheckRetry is the retry policy of Envoy's Check call in a fleet: a
// Check whose replica is gone (connection refused or reset, or gRPC
// UNAVAILABLE, never a decision) is asked again of another replica, so a
// replica that dies costs no request. Check is read-only, so asking twice
// is safe.
const fleetCheckRetry = `                        retry_policy:
                          num_retries: 2
                          retry_on: connect-failure,reset,unavailable
                          retry_back_off: {base_interval: 0.01s, max_interval: 0.1s}
                          retry_host_predicate:
                            - name: envoy.retry_host_predicates.previous_hosts
                              typed_config:
                                "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
                          host_selection_retry_max_attempts: 3
`

// fleetClusters are Envoy's two tenantgate clusters for a fleet: Check on
// every replica's gRPC port, health-checked with gRPC health (the
// Authorization service: NOT_SERVING while a replica has no fresh
// snapshot), and the sign-in pages on every replica's HTTP port,
// health-checked with /readyz on its admin port. With no replica healthy
// Envoy sends nothing to them (healthy_panic_threshold 0): Check then
// fails, and failure_mode_allow: false makes that a 503.
func fleetClusters(grpcPorts, httpPorts, adminPorts []int, interval string) string {
	var b strings.Builder
	hc := func(check string) {
		fmt.Fprintf(&b, `      common_lb_config:
        healthy_panic_threshold: {value: 0}
      health_checks:
        - timeout: 1s
          interval: %[1]s
          no_traffic_interval: %[1]s
          unhealthy_threshold: 1
          healthy_threshold: 1
%[2]s`, interval, check)
	}
	b.WriteString(`    # tenantgate's ext_authz gRPC port, on every replica. gRPC needs HTTP/2.
    - name: tenantgate_grpc
      type: STATIC
      connect_timeout: 1s
      per_connection_buffer_limit_bytes: 32768
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {}
`)
	hc("          grpc_health_check: {service_name: envoy.service.auth.v3.Authorization}\n")
	b.WriteString(`      load_assignment:
        cluster_name: tenantgate_grpc
        endpoints:
          - lb_endpoints:
`)
	for _, p := range grpcPorts {
		fmt.Fprintf(&b, "              - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}\n", p)
	}
	b.WriteString(`
    # tenantgate's sign-in pages (/_auth/), on every replica; /readyz on
    # each one's admin port says whether it can answer.
    - name: tenantgate_http
      type: STATIC
      connect_timeout: 1s
      per_connection_buffer_limit_bytes: 32768
`)
	hc("          http_health_check: {path: /readyz}\n")
	b.WriteString(`      load_assignment:
        cluster_name: tenantgate_http
        endpoints:
          - lb_endpoints:
`)
	for i, p := range httpPorts {
		fmt.Fprintf(&b, "              - endpoint:\n                  address: {socket_address: {address: 127.0.0.1, port_value: %d}}\n                  health_check_config: {port_value: %d}\n", p, adminPorts[i])
	}
	b.WriteString("\n")
	return b.String()
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

// envoyURL is path on tenant's host through Envoy.
func (f *fleet) envoyURL(path string) string { return "http://" + f.envoyAddr + path }

// signInThroughEnvoy signs in at tenant's sign-in page through Envoy
// (whichever replicas Envoy picks for the form and the POST) and returns
// the session cookie.
func (f *fleet) signInThroughEnvoy(t *testing.T, tenant, email, pw string) *http.Cookie {
	t.Helper()
	c := f.trySignInThroughEnvoy(t, tenant, email, pw)
	if c == nil {
		t.Fatalf("sign-in through Envoy at %s failed", tenant)
	}
	return c
}

// trySignInThroughEnvoy is signInThroughEnvoy returning nil when the
// sign-in is refused (a 503 while etcd elects a leader).
func (f *fleet) trySignInThroughEnvoy(t *testing.T, tenant, email, pw string) *http.Cookie {
	t.Helper()
	post, ok := openFormAt(t, f.envoyAddr, "Envoy", fmt.Sprintf("%s.app.test:%d", tenant, f.envoyPort), "/_auth/login", nil, false)
	if !ok {
		return nil
	}
	resp := post(url.Values{"email": {email}, "password": {pw}, "rd": {"/"}})
	for _, c := range resp.Cookies() {
		if c.Name == "tenantgate" && c.Value != "" && resp.StatusCode == http.StatusSeeOther {
			return c
		}
	}
	return nil
}

// signOutThroughEnvoy signs session out of tenant through Envoy.
func (f *fleet) signOutThroughEnvoy(t *testing.T, tenant string, session *http.Cookie) {
	t.Helper()
	post, _ := openFormAt(t, f.envoyAddr, "Envoy", fmt.Sprintf("%s.app.test:%d", tenant, f.envoyPort), "/_auth/logout", []*http.Cookie{session}, true)
	if resp := post(url.Values{}); resp.StatusCode >= 400 {
		t.Fatalf("sign-out through Envoy at %s: %d", tenant, resp.StatusCode)
	}
}

// adminDo sends an admin API request to r and returns the status and body.
func (r *replica) adminDo(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+r.adm+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fleetAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", r.name, method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// adminApply applies a tenant file through r's admin API and returns when
// the API answered.
func (r *replica) adminApply(t *testing.T, file string) time.Time {
	t.Helper()
	if code, body := r.adminDo(t, "POST", "/admin/v1/tenants", []byte(file)); code != 200 {
		t.Fatalf("%s: apply through the admin API: %d %s", r.name, code, body)
	}
	return time.Now()
}

// adminAddUser adds a password user to tenant through r's admin API.
func (r *replica) adminAddUser(t *testing.T, tenant, email, pw string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"email": email, "roles": []string{"member"}, "password": pw})
	if code, out := r.adminDo(t, "POST", "/admin/v1/tenants/"+tenant+"/users", body); code != 200 {
		t.Fatalf("%s: add user through the admin API: %d %s", r.name, code, out)
	}
}

// adminGet GETs path from r's admin API, wanting status and a body that
// holds every string of want.
func (r *replica) adminGet(t *testing.T, path string, status int, want ...string) {
	t.Helper()
	code, body := r.adminDo(t, "GET", path, nil)
	if code != status {
		t.Fatalf("%s: GET %s: %d %s, want %d", r.name, path, code, body, status)
	}
	for _, w := range want {
		if !bytes.Contains(body, []byte(w)) {
			t.Errorf("%s: GET %s: %s does not hold %q", r.name, path, body, w)
		}
	}
}

// checks is how many Checks r has answered (its /metrics).
func (r *replica) checks(t *testing.T) int {
	t.Helper()
	n, err := r.checkCount()
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	return n
}

// checksNow is checks without failing: 0 when r does not answer.
func (r *replica) checksNow() int {
	n, _ := r.checkCount()
	return n
}

func (r *replica) checkCount() (int, error) {
	resp, err := noRedirects.Get("http://" + r.adm + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "tenantgate_check_total{") {
			var n int
			fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &n)
			total += n
		}
	}
	return total, nil
}

// upstream is the app behind Envoy: the echo handler, recording the
// identity headers of every request it receives, keyed by the load
// generator's request id.
type upstream struct {
	echo echo.Handler
	seen syncMap[string, seenRequest]
}

// seenRequest is what the upstream received of one request.
type seenRequest struct {
	tenant, email, userID, method string
	at                            time.Time
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get(loadIDHeader); id != "" {
		u.seen.store(id, seenRequest{
			tenant: strings.Join(r.Header.Values("X-Tenant-Id"), ","),
			email:  strings.Join(r.Header.Values("X-User-Email"), ","),
			userID: strings.Join(r.Header.Values("X-User-Id"), ","),
			method: strings.Join(r.Header.Values("X-Auth-Method"), ","),
			at:     time.Now(),
		})
	}
	u.echo.ServeHTTP(w, r)
}
