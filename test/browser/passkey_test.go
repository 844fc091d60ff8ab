package browser

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// kim is a member of both passkeyTenants.
var kim = stack.User{Email: "kim@acme.test", Password: "kim-passkey-password-1"}

// passkeyTenants are password tenants on hosts of their own: acme and
// globex with an optional second step (a person without a factor signs in
// with the password alone, one with a passkey takes the second step), and
// umbrella, which requires one.
const passkeyTenants = `tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    mfa: optional
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
  - id: globex
    name: Globex Corporation
    emailDomains: [globex.test]
    mfa: optional
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
  - id: umbrella
    name: Umbrella
    emailDomains: [umbrella.test]
    mfa: required
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
`

// TestPasskeys registers a passkey on acme's account page with Chromium's
// virtual authenticator (a platform authenticator with user verification,
// driven over the DevTools WebAuthn domain), through the real Envoy with
// TLS (WebAuthn needs a secure context), and shows that globex's page
// cannot use it: the credential is bound to acme's RP ID, which the
// browser refuses to assert on globex's origin, and globex knows no
// passkey of kim's. Then kim signs out of acme and in again with the
// password and the passkey as the second step: the app gets x-auth-mfa
// true and the session's amr is pwd and hwk. On globex's second step the
// authenticator has nothing to offer. On umbrella (mfa required) kim,
// without a factor there, adds a passkey on the enrolment page instead of
// an app and is signed in with it. Screenshots of the account page's
// passkey section, the code page with its passkey and the enrolment's go
// where the other screenshots go (screenshots_test.go).
func TestPasskeys(t *testing.T) {
	chromiumPath(t)
	proc.Envoy(t)
	cert := stack.NewCertificate(t)
	st := stack.Start(t,
		stack.Tenants(func() string { return passkeyTenants },
			stack.Membership{User: kim, Tenant: "acme", Role: "member"},
			stack.Membership{User: kim, Tenant: "globex", Role: "member"},
			stack.Membership{User: kim, Tenant: "umbrella", Role: "member"}),
		stack.SecureCookies(),
		stack.Upstream(&echo.Handler{Pages: appPages}),
		stack.EnvoyConfig("envoy.yaml", withTLS(t, cert), withPublicPort(t, 443)))
	s := &harness{Stack: st, cert: cert}
	b := startBrowser(t, s)
	p := b.newTab(t)

	var auth webauthn.AddVirtualAuthenticatorResult
	err := p.bounded(actionTimeout, func(ctx context.Context) error {
		if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		var err error
		auth, err = chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
				HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return err
	})
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	credentials := func() []*webauthn.Credential {
		t.Helper()
		var res webauthn.GetCredentialsResult
		err := p.bounded(actionTimeout, func(ctx context.Context) error {
			var err error
			res, err = chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth.AuthenticatorID})
			return err
		})
		if err != nil {
			t.Fatalf("read the authenticator's credentials: %v", err)
		}
		return res.Credentials
	}

	// Register on acme.
	signInWithPassword(p, origin("acme")+"/", kim)
	p.open(origin("acme") + "/_auth/account")
	if got := p.text("#passkeys"); !strings.Contains(got, "You have no passkey yet") {
		t.Fatalf("acme's account page before: %q", got)
	}
	p.click("the passkey name", "#passkey-name")
	p.typeText("type a name", "Work laptop")
	p.click("Add a passkey", "#passkey-add button")
	p.waitFor("the account page again", actionTimeout, func(u *url.URL) bool { return u.Path == "/_auth/account" })
	p.steps("the notice", chromedp.WaitVisible(`p.note[role=status]`))
	if got := p.text(`p.note[role=status]`); got != "Your passkey was added." {
		t.Fatalf("after registering: notice %q; page: %s", got, p.bodyText())
	}
	if got := p.fieldValue(".passkey-rename input[name=name]"); got != "Work laptop" {
		t.Errorf("the listed passkey is named %q", got)
	}
	creds := credentials()
	if len(creds) != 1 || creds[0].RpID != "acme.app.test" || !creds[0].IsResidentCredential {
		t.Fatalf("authenticator credentials: %+v", creds)
	}
	if strings.Contains(string(creds[0].UserHandle), kim.Email) {
		t.Error("the user handle holds the email")
	}
	p.steps("blur", blur())
	saveScreenshot(t, p, "account-passkeys", "#passkeys")

	// Sign out, and in again: the passkey is kim's second factor on acme.
	p.open(origin("acme") + "/_auth/logout")
	p.click("press Sign out", "button")
	p.waitFor("the sign-in page", actionTimeout, atPath(origin("acme"), "/_auth/login"))
	if c := p.cookie(origin("acme")+"/", sessionCookie); c != nil {
		t.Fatal("a session cookie after signing out")
	}
	passkeyStep(p, origin("acme"), kim.Password)
	if c := p.cookie(origin("acme")+"/", sessionCookie); c != nil {
		t.Fatal("a session cookie after the password alone")
	}
	p.steps("blur", blur())
	saveScreenshot(t, p, "mfa-passkey", "main")
	p.click("Use a passkey", "#passkey-signin button")
	p.waitFor("the app", actionTimeout, atPath(origin("acme"), "/"))
	wantIdentity(p, "acme", kim.Email, "member", "password")
	if got := header(p.upstream(), "x-auth-mfa"); got != "true" {
		t.Errorf("app received x-auth-mfa %q, want true", got)
	}
	if amr := sessionAMR(t, p, origin("acme")); strings.Join(amr, ",") != "pwd,hwk" {
		t.Errorf("session amr %q, want pwd,hwk", amr)
	}
	if n := credentials()[0].SignCount; n <= creds[0].SignCount {
		t.Errorf("sign count %v after signing in with the passkey, was %v", n, creds[0].SignCount)
	}
	creds = credentials()

	// globex: kim has no passkey there, and acme's credential cannot be
	// asserted from globex's origin, for acme's RP ID or globex's.
	signInWithPassword(p, origin("globex")+"/", kim)
	p.open(origin("globex") + "/_auth/account")
	if got := p.text("#passkeys"); !strings.Contains(got, "You have no passkey yet") {
		t.Errorf("globex's account page lists a passkey: %q", got)
	}
	id := base64.RawURLEncoding.EncodeToString(creds[0].CredentialID)
	for _, rpID := range []string{"acme.app.test", "globex.app.test"} {
		got := value(p, "assert acme's credential on globex for "+rpID, chromedp.Evaluate[string](`(function () {
  var s = "`+id+`".replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  var raw = atob(s), id = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) id[i] = raw.charCodeAt(i);
  return navigator.credentials.get({ publicKey: { challenge: new Uint8Array(32), rpId: "`+rpID+`", timeout: 3000,
    allowCredentials: [{ type: "public-key", id: id }], userVerification: "preferred" } })
    .then(function () { return "asserted"; }, function (e) { return e.name; });
})()`, chromedp.EvalAwaitPromise))
		if got == "asserted" {
			t.Errorf("acme's passkey was asserted on globex's page for RP ID %s", rpID)
		}
		t.Logf("acme's credential on globex for RP ID %s: %s", rpID, got)
	}
	// globex's second step offers a passkey (to every state: here a
	// wrong password's), and the authenticator has none for globex.
	passkeyStep(p, origin("globex"), "not-"+kim.Password)
	p.click("Use a passkey", "#passkey-signin button")
	p.steps("the passkey's refusal", chromedp.WaitVisible(`#passkey-status:not(:empty)`))
	if got := p.text("#passkey-status"); !strings.Contains(got, "The passkey was not used") {
		t.Errorf("globex's second step after acme's passkey: %q", got)
	}
	if u := p.location(); u.Path != "/_auth/mfa" {
		t.Errorf("globex's second step went on to %s", u)
	}
	if n := credentials()[0].SignCount; n != creds[0].SignCount {
		t.Errorf("the credential was used on globex: sign count %v → %v", creds[0].SignCount, n)
	}

	// umbrella requires a second factor and kim has none there: the
	// enrolment page offers a passkey instead of the app.
	signInPage(p, origin("umbrella")+"/")
	typeCredentials(p, kim.Email, kim.Password)
	submitTo(p, "the enrolment", atPath(origin("umbrella"), "/_auth/mfa"))
	p.steps("the passkey form", chromedp.WaitVisible("#passkey-signin button"))
	if got := p.text("#passkey-signin button"); got != "Add a passkey" {
		t.Errorf("the enrolment's passkey button says %q", got)
	}
	p.steps("blur", blur())
	saveScreenshot(t, p, "mfa-enrol-passkey", "#passkey-signin")
	p.click("Add a passkey", "#passkey-signin button")
	p.waitFor("the app", actionTimeout, atPath(origin("umbrella"), "/"))
	wantIdentity(p, "umbrella", kim.Email, "member", "password")
	if got := header(p.upstream(), "x-auth-mfa"); got != "true" {
		t.Errorf("umbrella's app received x-auth-mfa %q, want true", got)
	}
	if amr := sessionAMR(t, p, origin("umbrella")); strings.Join(amr, ",") != "pwd,hwk" {
		t.Errorf("umbrella session amr %q, want pwd,hwk", amr)
	}
	if n := len(credentials()); n != 2 {
		t.Errorf("the authenticator holds %d credentials, want acme's and umbrella's", n)
	}

	// Nothing of it reaches tenantgate's log: no email, no credential id.
	log := st.Tenantgate.Output()
	for _, secret := range []string{kim.Email, id} {
		if strings.Contains(log, secret) {
			t.Errorf("tenantgate's log holds %q", secret)
		}
	}
	linesCarryRequestIDs(t, log, "passkey added", "passkey enrolled", "signed in", "sign-in refused")
}

// passkeyStep signs kim in at o up to the second step with password pw
// (from the sign-in page itself: kim may be signed in there already), and
// waits for the code page's passkey form (shown by its script).
func passkeyStep(p *tab, o, pw string) {
	p.t.Helper()
	signInPage(p, o+"/_auth/login?rd=%2F")
	typeCredentials(p, kim.Email, pw)
	submitTo(p, "the second step", atPath(o, "/_auth/mfa"))
	p.steps("the passkey form", chromedp.WaitVisible("#passkey-signin button"))
}

// sessionAMR is the amr claim of the session cookie the browser holds for
// o (the token's payload, read without verifying: the app's own check is
// the headers).
func sessionAMR(t *testing.T, p *tab, o string) []string {
	t.Helper()
	c := p.cookie(o+"/", sessionCookie)
	if c == nil {
		t.Fatal("no session cookie")
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		t.Fatalf("session cookie is not a JWS: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.AMR
}

// saveScreenshot saves the page as name.png where screenshots() saves
// its own ($TENANTGATE_SCREENSHOTS or the test's artifact directory).
// The view is scrolled to the element sel.
func saveScreenshot(t *testing.T, p *tab, name, sel string) {
	t.Helper()
	dir := t.ArtifactDir()
	if base := os.Getenv("TENANTGATE_SCREENSHOTS"); base != "" {
		dir = base
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(proc.RepoRoot(t), dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.steps("screenshot size", chromedp.EmulateViewport(docsWidth, docsHeight), chromedp.ScrollIntoView(sel))
	png := value(p, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
