package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/metrics/metricstest"
	"github.com/tenantgate/tenantgate/tenants"
)

// metricsTenants is acme (password sign-in, an anonymous /public/) and
// globex.
const metricsTenants = `tenants:
  - id: acme
    emailDomains: [acme.test]
    methods: [{type: password}]
    roles:
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
  - id: globex
    methods: [{type: password}]
`

// TestMetricsAfterSignInsAndChecks runs the real serve, signs in through
// the sign-in pages (a wrong password, then the right one), sends Checks
// of every kind and signs out, then scrapes /metrics and requires every
// counter to have moved by exactly what was done.
func TestMetricsAfterSignInsAndChecks(t *testing.T) {
	ts := startServer(t, true)
	c := ts.cli(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", metricsTenants))
	c.mustRun("alice-password-1\n", "users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "member", "--password-stdin")

	before := metricstest.Scrape(t, "http://"+ts.admin+"/metrics")
	if v := before.Value("tenantgate_tenants", nil); v != 2 {
		t.Errorf("tenantgate_tenants = %v, want 2", v)
	}

	pre, csrf := ts.authPage(t, "acme.app.test", "/_auth/login?rd=%2F")
	wrong := url.Values{"email": {"alice@acme.test"}, "password": {"wrong-password"}, "rd": {"/"}, "csrf": {csrf}}
	if resp := ts.postForm(t, "acme.app.test", "/_auth/login", wrong, pre); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %s, want 401", resp.Status)
	}
	session := signIn(t, ts, "acme.app.test", "alice@acme.test", "alice-password-1")
	cookie := map[string]string{"cookie": "tenantgate=" + session}
	for range 3 {
		if status, _ := ts.checkHTTP("acme.app.test", "/docs", cookie); status != 200 {
			t.Fatalf("Check with the session: %d", status)
		}
	}
	checks := []struct {
		host, path string
		headers    map[string]string
		want       int
	}{
		{"acme.app.test", "/public/x", nil, 200},
		{"acme.app.test", "/docs", nil, 401},
		{"acme.app.test", "/docs", map[string]string{"accept": "text/html"}, 302},
		{"nobody.app.test", "/", nil, 404},
		{"globex.app.test", "/docs", cookie, 403},
	}
	for _, tc := range checks {
		if status, _ := ts.checkHTTP(tc.host, tc.path, tc.headers); status != tc.want {
			t.Errorf("Check %s%s: %d, want %d", tc.host, tc.path, status, tc.want)
		}
	}
	ts.signOut(t, "acme.app.test", session)

	after := metricstest.Scrape(t, "http://"+ts.admin+"/metrics")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tenantgate_check_decisions_total", map[string]string{"result": "allowed", "reason": "none"}, 3},
		{"tenantgate_check_decisions_total", map[string]string{"result": "allowed_anonymous", "reason": "none"}, 1},
		{"tenantgate_check_decisions_total", map[string]string{"result": "denied", "reason": "unauthenticated"}, 1},
		{"tenantgate_check_decisions_total", map[string]string{"result": "redirected", "reason": "unauthenticated"}, 1},
		{"tenantgate_check_decisions_total", map[string]string{"result": "denied", "reason": "unknown_tenant"}, 1},
		{"tenantgate_check_decisions_total", map[string]string{"result": "denied", "reason": "tenant_mismatch"}, 1},
		{"tenantgate_check_duration_seconds", nil, 8},
		{"tenantgate_signins_total", map[string]string{"method": "password", "result": "success"}, 1},
		{"tenantgate_signins_total", map[string]string{"method": "password", "result": "wrong_password"}, 1},
		{"tenantgate_sessions_issued_total", map[string]string{"method": "password"}, 1},
		{"tenantgate_signouts_total", nil, 1},
		// The session's first Check verifies it; every later use (the
		// next Checks, the sign-out pages) finds it verified.
		{"tenantgate_token_cache_misses_total", nil, 1},
	} {
		if !after.Has(tc.name) {
			t.Errorf("no %s in /metrics", tc.name)
			continue
		}
		got := after.Value(tc.name, tc.labels) - before.Value(tc.name, tc.labels)
		if got != tc.want {
			t.Errorf("%s%v moved by %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if hits := after.Value("tenantgate_token_cache_hits_total", nil) - before.Value("tenantgate_token_cache_hits_total", nil); hits < 3 {
		t.Errorf("tenantgate_token_cache_hits_total moved by %v, want at least 3 (two more Checks of the session, one in globex)", hits)
	}
	for _, name := range []string{"tenantgate_password_hash_inflight", "tenantgate_snapshot_age_seconds", "tenantgate_store_errors_total"} {
		if v := after.Value(name, nil); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !after.Has(name) {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}
	if strings.Contains(ts.logs.String(), "alice-password-1") {
		t.Error("the password is in the log")
	}
}

// TestMetricsTenantLabel: with --metrics-tenant-label and a limit of 1,
// the first tenant seen has its own label value and the next "_other".
func TestMetricsTenantLabel(t *testing.T) {
	ts := startServer(t, true, "--metrics-tenant-label", "--metrics-tenant-limit", "1")
	c := ts.cli(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", metricsTenants))
	ts.checkHTTP("globex.app.test", "/", nil)
	ts.checkHTTP("acme.app.test", "/", nil)
	ts.checkHTTP("acme.app.test", "/", nil)
	ts.checkHTTP("nobody.app.test", "/", nil)
	got := metricstest.Scrape(t, "http://"+ts.admin+"/metrics")
	for tenant, want := range map[string]float64{"globex": 1, "_other": 2} {
		if v := got.Value("tenantgate_check_decisions_total", map[string]string{"result": "denied", "reason": "unauthenticated", "tenant": tenant}); v != want {
			t.Errorf("decisions{tenant=%q} = %v, want %v", tenant, v, want)
		}
	}
	if v := got.Value("tenantgate_check_decisions_total", map[string]string{"reason": "unknown_tenant", "tenant": "_none"}); v != 1 {
		t.Errorf("decisions{unknown_tenant,_none} = %v, want 1", v)
	}
}

// TestMetricsOff: with --metrics=false /metrics is 404 and Check still
// answers; --metrics-tenant-limit out of range is refused at start.
func TestMetricsOff(t *testing.T) {
	ts := startServer(t, true, "--metrics=false")
	if status, _ := ts.checkHTTP("acme.app.test", "/", nil); status != 404 {
		t.Errorf("Check with metrics off: %d, want 404 (no tenants)", status)
	}
	resp, err := http.Get("http://" + ts.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics with --metrics=false: %d, want 404", resp.StatusCode)
	}
	c := newCLI(t)
	if code, _, stderr := c.run("", "serve", "--metrics-tenant-limit", "0", "--db", c.dir+"/x.db"); code == 0 || !strings.Contains(stderr, "--metrics-tenant-limit") {
		t.Errorf("--metrics-tenant-limit 0: exit %d, stderr %q; want an error naming the flag", code, stderr)
	}
}

// authPage GETs path on host's sign-in pages with cookies and returns the
// cookies it set and its csrf token.
func (ts *testServer) authPage(t *testing.T, host, path string, cookies ...*http.Cookie) ([]*http.Cookie, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ts.httpAddr+path, nil)
	req.Host = host
	req.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := csrfField.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s%s: %s, csrf found: %v", host, path, resp.Status, m != nil)
	}
	return append(resp.Cookies(), cookies...), string(m[1])
}

// postForm POSTs form to path on host's sign-in pages with cookies, not
// following redirects.
func (ts *testServer) postForm(t *testing.T, host, path string, form url.Values, cookies []*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+ts.httpAddr+path, strings.NewReader(form.Encode()))
	req.Host = host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// signOut signs the session out at host's sign-out page.
func (ts *testServer) signOut(t *testing.T, host, session string) {
	t.Helper()
	sc := &http.Cookie{Name: "tenantgate", Value: session}
	cookies, csrf := ts.authPage(t, host, "/_auth/logout", sc)
	if resp := ts.postForm(t, host, "/_auth/logout", url.Values{"csrf": {csrf}}, cookies); resp.StatusCode >= 400 {
		t.Fatalf("POST /_auth/logout: %s", resp.Status)
	}
}

// pingOnlyStore is a store whose readiness is a ping: any other call,
// such as reading the whole snapshot, panics.
type pingOnlyStore struct {
	tenants.Store
	pings int
	err   error
}

func (p *pingOnlyStore) Ping(context.Context) error { p.pings++; return p.err }

// TestReadyzPingsTheStore: /readyz asks a bbolt-like store for a ping,
// never for its snapshot, and answers 503 (counted as a store error) when
// the ping fails.
func TestReadyzPingsTheStore(t *testing.T) {
	snaps := &tenants.Current{}
	if err := snaps.Refresh(context.Background(), staticSnapshot{tenants.NewSnapshot(nil, nil)}); err != nil {
		t.Fatal(err)
	}
	st := &pingOnlyStore{}
	s := &server{snapshots: snaps, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.opened.Store(&opened{store: st})
	mux := s.adminMux()
	probe := func() int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := probe(); code != 200 || st.pings != 1 {
		t.Errorf("/readyz: %d after %d pings, want 200 after 1", code, st.pings)
	}
	st.err = errors.New("disk gone")
	if code := probe(); code != 503 || s.pingFailures.Load() != 1 {
		t.Errorf("/readyz with the ping failing: %d, %d failures counted; want 503, 1", code, s.pingFailures.Load())
	}
}

type staticSnapshot struct{ s *tenants.Snapshot }

func (s staticSnapshot) Snapshot(context.Context) (*tenants.Snapshot, error) { return s.s, nil }

// confirmedStore is a distributed store (a confirmer) for snapshotAge.
type confirmedStore struct {
	tenants.Store
	fakeConfirmer
}

// TestSnapshotAge: on a store that confirms its snapshot (etcd) the age
// counts from the last confirmation; on bbolt it is 0 unless a refresh
// failed, then it counts from that failure; 0 before the store is open.
func TestSnapshotAge(t *testing.T) {
	s := &server{snapshots: &tenants.Current{}}
	if age := s.snapshotAge(); age != 0 {
		t.Errorf("before the store is open: %v, want 0", age)
	}
	etcd := &confirmedStore{}
	etcd.at = time.Now().Add(-7 * time.Second)
	s.opened.Store(&opened{store: etcd})
	if age := s.snapshotAge(); age < 7*time.Second || age > 8*time.Second {
		t.Errorf("etcd, confirmed 7s ago: %v", age)
	}
	s.opened.Store(&opened{store: &pingOnlyStore{}})
	if age := s.snapshotAge(); age != 0 {
		t.Errorf("bbolt, refreshed: %v, want 0", age)
	}
	s.snapshots.Refresh(context.Background(), failingSnapshot{})
	time.Sleep(20 * time.Millisecond)
	if age := s.snapshotAge(); age < 20*time.Millisecond {
		t.Errorf("bbolt, a refresh failed 20ms ago: %v", age)
	}
}

type failingSnapshot struct{}

func (failingSnapshot) Snapshot(context.Context) (*tenants.Snapshot, error) {
	return nil, errors.New("disk gone")
}
