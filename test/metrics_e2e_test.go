package test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/tenantgate/tenantgate/internal/metrics/metricstest"
)

// TestEnvoyMetrics drives issue 10, item 1 through the real Envoy: after a
// refused and a successful password sign-in and requests of every kind,
// the real serve's /metrics (parsed as Prometheus parses it) shows each
// decision under its result and CONTRACT reason, the sign-ins under their
// method and result, the session issued and the token cache at work.
func TestEnvoyMetrics(t *testing.T) {
	s := startHarness(t)
	acme, globex := "acme."+baseDomain, "globex."+baseDomain
	before := metricstest.Scrape(t, s.Admin+"/metrics")

	cookies, csrf := s.loginPage(t, acme)
	wrong := url.Values{"email": {alice.Email}, "password": {"not-" + alice.Password}, "rd": {"/dashboard"}, "csrf": {csrf}}
	if resp := s.postLogin(t, acme, cookies, wrong); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: want 401, got\n%s", resp)
	}
	session := cookieHeader(s.signIn(t, acme, alice))

	for _, tc := range []struct {
		req  request
		want int
	}{
		{request{host: acme, target: "/docs/1", headers: []header{session}}, 200},
		{request{host: acme, target: "/docs/2", headers: []header{session}}, 200},
		{request{host: acme, target: "/docs/3", headers: []header{session}}, 200},
		{request{host: acme, target: "/public/x"}, 200},
		{request{host: acme, target: "/docs/1"}, 401},
		{request{host: acme, target: "/docs/1", headers: []header{{"Accept", "text/html"}}}, 302},
		{request{host: "nobody." + baseDomain, target: "/"}, 404},
		{request{host: globex, target: "/docs/1", headers: []header{session}}, 403},
		{request{host: acme, target: "/admin/", headers: []header{session}}, 403},
	} {
		if resp := s.send(t, tc.req); resp.StatusCode != tc.want {
			t.Fatalf("%s%s: want %d, got\n%s", tc.req.host, tc.req.target, tc.want, resp)
		}
	}

	after := metricstest.Scrape(t, s.Admin+"/metrics")
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
		{"tenantgate_check_decisions_total", map[string]string{"result": "denied", "reason": "forbidden"}, 1},
		{"tenantgate_check_duration_seconds", nil, 9},
		{"tenantgate_signins_total", map[string]string{"method": "password", "result": "success"}, 1},
		{"tenantgate_signins_total", map[string]string{"method": "password", "result": "wrong_password"}, 1},
		{"tenantgate_sessions_issued_total", map[string]string{"method": "password"}, 1},
		{"tenantgate_token_cache_misses_total", nil, 1},
	} {
		if !after.Has(tc.name) {
			t.Errorf("no %s in /metrics", tc.name)
			continue
		}
		if got := after.Value(tc.name, tc.labels) - before.Value(tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v moved by %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if hits := after.Value("tenantgate_token_cache_hits_total", nil) - before.Value("tenantgate_token_cache_hits_total", nil); hits < 4 {
		t.Errorf("tenantgate_token_cache_hits_total moved by %v, want at least 4 (the session's later Checks)", hits)
	}
	if n := after.Value("tenantgate_tenants", nil); n != 2 {
		t.Errorf("tenantgate_tenants = %v, want 2", n)
	}
	if !after.Has("process_resident_memory_bytes") {
		t.Error("no process collector in /metrics")
	}
}
