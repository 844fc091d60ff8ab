package test

import (
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/otlpsink"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestLogsCarryIDsAndNoSecrets runs tenantgate with --log-level debug and
// tracing on behind envoy-tracing.yaml through password sign-ins (good,
// wrong and unknown), cookie and bearer requests (allowed, refused, from
// another tenant), a session signed out from the account page's list, a
// sign-out and admin API calls, then reads everything tenantgate wrote: no
// password, session token, cookie value, CSRF token, TOTP secret, recovery
// code or admin token appears in it, and every line about a request carries the request id Envoy gave
// it and, where the request was traced, its trace id. (TestSSOEndToEnd
// does the same for the SSO methods' client secrets and Keycloak
// passwords.)
func TestLogsCarryIDsAndNoSecrets(t *testing.T) {
	sink := otlpsink.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.HTTPAddr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	_, sinkPort, _ := strings.Cut(sink.GRPCAddr, ":")
	adminToken := "logs-e2e-admin-token-5f1c0d9e8b7a6f5e4d3c"
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startHarness(t, stack.ServeArgs("--log-level", "debug", "--admin-token-file", tokenFile),
		stack.Tenants(func() string { return tenantFile + vaultTenant }, append(slices.Clone(fixtureMemberships),
			stack.Membership{User: carol, Tenant: "vault", Role: "member"})...),
		stack.EnvoyConfig("envoy-tracing.yaml", func(cfg string) string {
			return strings.Replace(cfg, "port_value: 4317", "port_value: "+sinkPort, 1)
		}))
	acme, globex := "acme."+baseDomain, "globex."+baseDomain
	secrets := []string{alice.Password, bob.Password, adminToken}

	// Password sign-ins: good, wrong password, unknown account.
	session := s.signIn(t, acme, alice)
	bobGlobex := s.signIn(t, globex, bob)
	secrets = append(secrets, session.Value, bobGlobex.Value)
	for _, form := range []url.Values{
		{"email": {alice.Email}, "password": {"wrong-password-for-alice-77"}},
		{"email": {"nobody@acme.test"}, "password": {"password-of-nobody-42"}},
	} {
		cookies, csrf := s.loginPage(t, acme)
		for _, c := range cookies {
			secrets = append(secrets, c.Value)
		}
		form.Set("csrf", csrf)
		form.Set("rd", "/")
		secrets = append(secrets, form.Get("password"), csrf)
		if resp := s.postLogin(t, acme, cookies, form); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a wrong sign-in: want 401, got\n%s", resp)
		}
	}

	// Requests: cookie and bearer, allowed and refused.
	bogus := "eyJhbGciOiJFUzI1NiJ9.bm90LWEtdG9rZW4.c2lnbmF0dXJl"
	secrets = append(secrets, bogus)
	for _, tc := range []struct {
		host   string
		header header
		status int
	}{
		{acme, cookieHeader(session), http.StatusOK},
		{acme, header{"Authorization", "Bearer " + session.Value}, http.StatusOK},
		{acme, header{"Authorization", "Bearer " + bogus}, http.StatusUnauthorized},
		{acme, header{"Authorization", "Bearer " + bobGlobex.Value}, http.StatusForbidden},
		{acme, cookieHeader(session), http.StatusForbidden}, // /admin/ needs admin:access
	} {
		target := "/docs/1"
		if tc.status == http.StatusForbidden && strings.HasPrefix(tc.header.value, "tenantgate=") {
			target = "/admin/users"
		}
		if resp := s.send(t, request{host: tc.host, target: target, headers: []header{tc.header}}); resp.StatusCode != tc.status {
			t.Errorf("GET %s%s: want %d, got\n%s", tc.host, target, tc.status, resp)
		}
	}

	// The account page: a second session of alice's signed out from the
	// first one's list (a revoke_session store write, traced).
	second := s.signIn(t, acme, alice)
	secrets = append(secrets, second.Value)
	page := s.send(t, request{host: acme, target: "/_auth/account", headers: []header{cookieHeader(session), {"Accept", "text/html"}}})
	handles := sessionHandle.FindAllStringSubmatch(string(page.body), -1)
	if page.StatusCode != http.StatusOK || len(handles) != 1 {
		t.Fatalf("GET /_auth/account: want 200 with one other session, got %d forms in\n%s", len(handles), page)
	}
	pageCSRF := csrfToken(t, page)
	secrets = append(secrets, pageCSRF)
	revoked := s.send(t, request{method: http.MethodPost, host: acme, target: "/_auth/account",
		body: url.Values{"csrf": {pageCSRF}, "action": {"revoke-session"}, "session": {handles[0][1]}}.Encode(),
		headers: []header{cookieHeader(append(page.Cookies(), session)...), {"Content-Type", "application/x-www-form-urlencoded"},
			{"Origin", "http://" + acme}, {"Sec-Fetch-Site", "same-origin"}, {"Accept", "text/html"}}})
	if revoked.StatusCode != http.StatusOK {
		t.Errorf("POST /_auth/account revoke-session: want 200, got\n%s", revoked)
	}
	for _, name := range []string{telemetry.SpanStorePrefix + "record_session", telemetry.SpanStorePrefix + "revoke_session"} {
		sink.WaitFor(t, 10*time.Second, name, func(sp otlpsink.Span) bool { return sp.Name == name })
	}

	// The second step (vault has mfa: required): carol enrols an
	// authenticator app right after her password, then signs in again with
	// a code. Her factors' writes and the state's spend are traced; the
	// lines of the step carry the ids.
	secrets = append(secrets, carol.Password)
	secrets = append(secrets, s.totpSignIns(t, "vault."+baseDomain, carol)...)
	for _, name := range []string{telemetry.SpanStorePrefix + "update_second_factors", telemetry.SpanStorePrefix + "use_assertion_id"} {
		sink.WaitFor(t, 10*time.Second, name, func(sp otlpsink.Span) bool { return sp.Name == name && sp.Attrs["tenantgate.outcome"] == "ok" })
	}

	// Sign-out.
	confirm := s.send(t, request{host: acme, target: "/_auth/logout", headers: []header{cookieHeader(session), {"Accept", "text/html"}}})
	csrf := csrfToken(t, confirm)
	secrets = append(secrets, csrf)
	out := s.send(t, request{method: http.MethodPost, host: acme, target: "/_auth/logout", body: url.Values{"csrf": {csrf}}.Encode(),
		headers: []header{cookieHeader(append(confirm.Cookies(), session)...), {"Content-Type", "application/x-www-form-urlencoded"},
			{"Origin", "http://" + acme}, {"Sec-Fetch-Site", "same-origin"}}})
	if out.StatusCode != http.StatusSeeOther {
		t.Errorf("POST /_auth/logout: want 303, got\n%s", out)
	}

	// The admin API: a refused call and an accepted one, with a request id.
	for _, auth := range []string{"Bearer wrong-admin-token-1234", "Bearer " + adminToken} {
		req, _ := http.NewRequest(http.MethodGet, s.Admin+"/admin/v1/tenants", nil)
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Request-Id", "admin-req-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	secrets = append(secrets, "wrong-admin-token-1234")

	// The admin API logs a request once it has answered it.
	logs := s.Tenantgate.Output()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs, `"msg":"admin request",`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		logs = s.Tenantgate.Output()
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("tenantgate's output holds a secret (%d bytes, starting %.6q)", len(secret), secret)
		}
	}

	// Lines about a request carry its ids.
	seen := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			TraceID   string `json:"trace_id"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		traced := true
		switch l.Msg {
		case "sign-in refused", "signed in", "signed out", "check denied", "session revoked by its holder", "totp enrolled":
		case "admin request", "admin request refused":
			traced = false // not routed through Envoy: no span, the caller's request id
		default:
			continue
		}
		seen[l.Msg]++
		if l.RequestID == "" || (traced && len(l.TraceID) != 32) || (!traced && l.RequestID != "admin-req-1") {
			t.Errorf("log line without its request id or trace id: %s", line)
		}
	}
	for _, msg := range []string{"sign-in refused", "signed in", "signed out", "check denied", "session revoked by its holder", "totp enrolled", "admin request", "admin request refused"} {
		if seen[msg] == 0 {
			t.Errorf("no %q line in tenantgate's output:\n%s", msg, logs)
		}
	}
}

// vaultTenant is a password tenant with mfa: required, added to tenantFile
// for the second step.
const vaultTenant = `  - id: vault
    name: Vault
    mfa: required
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
`

// totpSecret and recoveryCode read the enrolment page and the recovery
// codes page.
var (
	totpSecret   = regexp.MustCompile(`id="totp-secret">([^<]+)<`)
	recoveryCode = regexp.MustCompile(`<li>([0-9a-z]{5}-[0-9a-z]{5})</li>`)
)

// totpSignIns signs u in to host, whose tenant requires a second factor,
// twice through Envoy: first enrolling an authenticator app (the secret
// read off the page, the code computed here), then with the next step's
// code. It returns what must never be logged: the secret, the recovery
// codes and the sessions.
func (s *harness) totpSignIns(t *testing.T, host string, u stack.User) []string {
	t.Helper()
	firstStep := func() []*http.Cookie {
		t.Helper()
		cookies, csrf := s.loginPage(t, host)
		resp := s.postLogin(t, host, cookies, url.Values{"email": {u.Email}, "password": {u.Password}, "rd": {"/"}, "csrf": {csrf}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/_auth/mfa") {
			t.Fatalf("POST %s/_auth/login: want 303 to the second step, got\n%s", host, resp)
		}
		return resp.Cookies()
	}
	state := firstStep()
	page := s.send(t, request{host: host, target: "/_auth/mfa", headers: []header{cookieHeader(state...), {"Accept", "text/html"}}})
	m := totpSecret.FindSubmatch(page.body)
	if page.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s/_auth/mfa: want the enrolment page, got\n%s", host, page)
	}
	text := strings.ReplaceAll(string(m[1]), " ", "")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(text)
	if err != nil {
		t.Fatalf("the secret on the page: %v", err)
	}
	step := otp.Step(time.Now())
	enrolled := s.postPage(t, host, "/_auth/mfa", url.Values{"code": {otp.Code(secret, step)}}, state...)
	codes := recoveryCode.FindAllSubmatch(enrolled.body, -1)
	first := enrolled.cookie("tenantgate")
	if enrolled.StatusCode != http.StatusOK || len(codes) != otp.RecoveryCodes || first == nil {
		t.Fatalf("POST %s/_auth/mfa (enrolment): want the recovery codes and a session, got %d codes in\n%s", host, len(codes), enrolled)
	}
	again := s.postPage(t, host, "/_auth/mfa", url.Values{"code": {otp.Code(secret, step+1)}}, firstStep()...)
	second := again.cookie("tenantgate")
	if again.StatusCode != http.StatusSeeOther || second == nil {
		t.Fatalf("POST %s/_auth/mfa (a code): want 303 with a session, got\n%s", host, again)
	}
	out := []string{text, first.Value, second.Value}
	for _, c := range codes {
		out = append(out, string(c[1]), strings.ReplaceAll(string(c[1]), "-", ""))
	}
	return out
}
