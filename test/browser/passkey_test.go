package browser

import (
	"context"
	"encoding/base64"
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

// passkeyTenants are two password tenants on hosts of their own.
const passkeyTenants = `tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
  - id: globex
    name: Globex Corporation
    emailDomains: [globex.test]
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
// passkey of kim's. Screenshots of the account page's passkey section
// go where the other screenshots go (screenshots_test.go).
func TestPasskeys(t *testing.T) {
	chromiumPath(t)
	proc.Envoy(t)
	cert := stack.NewCertificate(t)
	st := stack.Start(t,
		stack.Tenants(func() string { return passkeyTenants },
			stack.Membership{User: kim, Tenant: "acme", Role: "member"},
			stack.Membership{User: kim, Tenant: "globex", Role: "member"}),
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
	saveScreenshot(t, p, "account-passkeys")

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
	if n := credentials()[0].SignCount; n != creds[0].SignCount {
		t.Errorf("the credential was used on globex: sign count %v → %v", creds[0].SignCount, n)
	}
}

// saveScreenshot saves the page as name.png where screenshots() saves
// its own ($TENANTGATE_SCREENSHOTS or the test's artifact directory).
// The view is scrolled to the passkey section.
func saveScreenshot(t *testing.T, p *tab, name string) {
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
	p.steps("screenshot size", chromedp.EmulateViewport(docsWidth, docsHeight), chromedp.ScrollIntoView("#passkeys"))
	png := value(p, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
