package test

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/metrics/metricstest"
	"github.com/tenantgate/tenantgate/internal/otlpsink"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// mfaAtKeycloak is TestSSOEndToEnd's last part, since it re-applies acme:
// with requireMFA on its oidc method, alice's password-only sign-in at
// Keycloak comes back to the "did not confirm a second factor" page (400,
// no session, the upstream untouched, reason mfa_missing in the audit
// trail, tenantgate_signins_total and the sign-in span); then acme
// says mfa: required and signs in through keycloak.OIDCMFAClientID, and
// olivia, giving Keycloak her password and her TOTP code, reaches the
// upstream with x-auth-mfa: true. acme's tenant file is restored after.
func (e *ssoEnv) mfaAtKeycloak(t *testing.T, tokenFile string, sink *otlpsink.Sink) {
	server := []string{"--server", e.stack.Admin, "--admin-token-file", tokenFile}
	tenantgate := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(e.stack.Bin, append(args, server...)...)
		cmd.Env = proc.Env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tenantgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	original := ssoTenantFile(e.kc)
	apply := func(file string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "tenants.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		tenantgate("tenants", "apply", "-f", path)
	}
	acmeClient := "        clientID: " + keycloak.OIDCClientID + "\n        clientSecret: " + keycloak.OIDCClientSecret + "\n"
	if !strings.Contains(original, acmeClient) {
		t.Fatalf("acme's oidc method is not as this test expects:\n%s", original)
	}
	t.Cleanup(func() { apply(original) })

	apply(strings.Replace(original, acmeClient, acmeClient+"        requireMFA: true\n", 1))
	alice := kcUser(t, keycloak.RealmOIDC, "alice")
	mfaMissing := map[string]string{"method": "oidc", "result": signin.ReasonMFAMissing}
	before := metricstest.Scrape(t, e.stack.Admin+"/metrics").Value("tenantgate_signins_total", mfaMissing)
	b := e.newBrowser(t)
	_, page := e.toIdP(t, b, "acme", "/docs", keycloak.RealmOIDC)
	refused := b.get(t, e.callbackURL(t, e.loginAtIdP(t, b, page, alice), "acme").String())
	e.wantRefusal(t, refused, "alice's password-only sign-in to a method that requires MFA")
	if !strings.Contains(string(refused.body), "did not confirm a second factor") {
		t.Errorf("the refusal page does not say why:\n%s", refused.body)
	}
	var evs []struct{ Outcome, Reason string }
	if err := json.Unmarshal([]byte(tenantgate("audit", "list", "--tenant", "acme", "--since", "1h", "--event", "signin", "-o", "json")), &evs); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(ev struct{ Outcome, Reason string }) bool {
		return ev.Outcome == "refused" && ev.Reason == "mfa_missing"
	}) {
		t.Errorf("no refused sign-in with reason mfa_missing in acme's audit trail: %+v", evs)
	}
	// Counted and traced like every refused sign-in: the metric's result
	// and the sign-in span's reason are the audit trail's reason.
	if got := metricstest.Scrape(t, e.stack.Admin+"/metrics").Value("tenantgate_signins_total", mfaMissing) - before; got != 1 {
		t.Errorf("tenantgate_signins_total%v moved by %v, want 1", mfaMissing, got)
	}
	sink.WaitFor(t, 10*time.Second, "the sign-in span of the mfa_missing refusal", func(sp otlpsink.Span) bool {
		return sp.Name == telemetry.SpanSignIn && sp.Attrs["tenantgate.reason"] == signin.ReasonMFAMissing &&
			sp.Attrs["tenantgate.tenant_id"] == "acme"
	})

	mfaClient := "        clientID: " + keycloak.OIDCMFAClientID + "\n        clientSecret: " + keycloak.OIDCMFAClientSecret + "\n"
	apply(strings.Replace(strings.Replace(original, acmeClient, mfaClient, 1), "    name: Acme Corp\n", "    name: Acme Corp\n    mfa: required\n", 1))
	olivia := kcUser(t, keycloak.RealmOIDC, "olivia")
	key, err := base32.StdEncoding.DecodeString(olivia.OTPSecret)
	if err != nil {
		t.Fatal(err)
	}
	b = e.newBrowser(t)
	_, page = e.toIdP(t, b, "acme", "/docs", keycloak.RealmOIDC)
	codePage := e.loginAtIdP(t, b, page, olivia)
	f := codePage.form(t, func(f keycloak.Form) bool { return f.Values.Has("otp") })
	f.Values.Set("otp", otp.Code(key, otp.Step(time.Now())))
	resp, err := f.Submit(context.Background(), b.c)
	if err != nil {
		t.Fatal(err)
	}
	back := e.followIdP(t, b, b.read(t, resp))
	e.signedIn(t, b.get(t, e.callbackURL(t, back, "acme").String()), "/docs")
	seen := e.reachAs(t, b, "acme", "/docs", ssoIdentity{"acme", olivia.Email, "engineer,member", "oidc"})
	if got := seen.Values("x-auth-mfa"); !slices.Equal(got, []string{"true"}) {
		t.Errorf("upstream got x-auth-mfa %q, want exactly [true]", got)
	}
}
