package browser

import (
	"encoding/base32"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// sam signs in to mfaTenants' vault, which requires a second factor.
var sam = stack.User{Email: "sam@vault.test", Password: "sam-second-factor-password-1"}

// mfaTenants is the second-factor stack's one tenant: password sign-in
// with mfa required.
const mfaTenants = `tenants:
  - id: vault
    name: Vault Inc
    emailDomains: [vault.test]
    mfa: required
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
`

// invalidOrCode is what a failed sign-in with a second step says.
const invalidOrCode = "Invalid email, password or code."

// TestMFASignIn is TOTP in a real browser through the real Envoy: under
// mfa required a person without a factor is shown the enrolment right
// after the password, and has no session until the app's first code is
// confirmed (the secret read off the page, the code computed here); the
// recovery codes are shown once; the next sign-in takes a code, the same
// code again is refused, and a recovery code works once. With
// TENANTGATE_SCREENSHOTS set, the new pages are saved there
// (docs/screenshots).
func TestMFASignIn(t *testing.T) {
	chromiumPath(t)
	st := stack.Start(t, stack.Tenants(func() string { return mfaTenants },
		stack.Membership{User: sam, Tenant: "vault", Role: "member"}))
	port := st.EnvoyPort
	b := launchChromium(t, fmt.Sprintf("MAP *.%[1]s 127.0.0.1, MAP %[1]s 127.0.0.1", baseDomain))
	vault := fmt.Sprintf("http://vault.%s:%d", baseDomain, port)
	save := mfaScreenshots(t)

	// passwordStep signs sam in up to the second step on a new tab.
	passwordStep := func(t *testing.T, pw string) *tab {
		p := b.newTab(t)
		p.steps("desktop size", chromedp.EmulateViewport(docsWidth, docsHeight))
		signInPage(p, vault+"/docs")
		typeCredentials(p, sam.Email, pw)
		submitTo(p, "the second step", atPath(vault, "/_auth/mfa"))
		if c := p.cookie(vault+"/", "tenantgate"); c != nil {
			t.Fatal("a session cookie after the password alone")
		}
		return p
	}
	// code types c into the code field (focused on load; a screenshot
	// blurs it, so it is clicked).
	code := func(p *tab, c string) {
		p.click("the code field", "#code")
		p.waitFocused("the code field", "#code")
		p.typeText("type the code", c)
	}

	// recovery are the codes shown at enrolment; next is the code of the
	// step after the enrolment's (spent), accepted while it is within the
	// window.
	var recovery []string
	var next, secretText string
	t.Run("enrolment before any session", func(t *testing.T) {
		p := passwordStep(t, sam.Password)
		p.open(vault + "/docs")
		p.waitFor("the sign-in page: no session yet", actionTimeout, atPath(vault, "/_auth/login"))
		p.open(vault + "/_auth/mfa")
		text := p.text("#totp-secret")
		secretText = text
		secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(text, " ", ""))
		if err != nil || len(secret) != otp.SecretBytes {
			t.Fatalf("secret on the page %q: %v", text, err)
		}
		if n := value(p, "the QR code", chromedp.Evaluate[int](`document.querySelectorAll("svg.qr path").length`)); n != 1 {
			t.Fatalf("the enrolment page has %d QR paths", n)
		}
		save(p, "mfa-enrol")
		step := otp.Step(time.Now())
		code(p, otp.Code(secret, step))
		submitTo(p, "the recovery codes", atPath(vault, "/_auth/mfa"))
		recovery = strings.Fields(p.text("#recovery-codes"))
		if len(recovery) != otp.RecoveryCodes {
			t.Fatalf("recovery codes shown: %q", recovery)
		}
		if p.cookie(vault+"/", "tenantgate") == nil {
			t.Fatal("no session after the enrolment")
		}
		save(p, "mfa-recovery-codes")
		p.click("Continue", "main a")
		p.waitFor("the app", actionTimeout, atPath(vault, "/docs"))
		wantIdentity(p, "vault", sam.Email, "member", "password")
		if got := header(p.upstream(), "x-auth-mfa"); got != "true" {
			t.Errorf("app received x-auth-mfa %q, want true", got)
		}
		next = otp.Code(secret, step+1)
	})
	if next == "" {
		t.FailNow()
	}

	t.Run("a code, then the same code refused", func(t *testing.T) {
		p := passwordStep(t, sam.Password)
		save(p, "mfa-code")
		code(p, next)
		submitTo(p, "the app", atPath(vault, "/docs"))
		if got := header(p.upstream(), "x-auth-mfa"); got != "true" {
			t.Errorf("app received x-auth-mfa %q, want true", got)
		}
		// The account page lists this session with its factor, beside the
		// second-factor section.
		p.open(vault + "/_auth/account")
		if got := p.text("#mfa-heading"); got != "Two-step verification" {
			t.Errorf("the account page's second-factor heading is %q", got)
		}
		if got := p.text(".sessions li"); !strings.Contains(got, "Password and a one-time code") {
			t.Errorf("the account page lists the newest session as %q", got)
		}
		p = passwordStep(t, sam.Password)
		code(p, next)
		submitTo(p, "the sign-in form again, refused", atPath(vault, "/_auth/mfa"))
		if got := p.text("[role=alert]"); got != invalidOrCode {
			t.Errorf("a reused code shows %q", got)
		}
	})
	t.Run("a wrong password looks the same until the code", func(t *testing.T) {
		p := passwordStep(t, "not-"+sam.Password)
		code(p, "123456")
		submitTo(p, "the sign-in form again, refused", atPath(vault, "/_auth/mfa"))
		if got := p.text("[role=alert]"); got != invalidOrCode {
			t.Errorf("a wrong password shows %q", got)
		}
	})
	t.Run("a recovery code works once", func(t *testing.T) {
		p := passwordStep(t, sam.Password)
		code(p, recovery[0])
		submitTo(p, "the app", atPath(vault, "/docs"))
		p = passwordStep(t, sam.Password)
		code(p, recovery[0])
		submitTo(p, "the sign-in form again, refused", atPath(vault, "/_auth/mfa"))
		if got := p.text("[role=alert]"); got != invalidOrCode {
			t.Errorf("a reused recovery code shows %q", got)
		}
	})

	// Nothing of the second step reaches tenantgate's log: no email, no
	// secret, no recovery code (six digits could be in any timestamp, so
	// TOTP codes are not looked for).
	log := st.Tenantgate.Output()
	for _, secret := range append([]string{sam.Email, strings.ReplaceAll(secretText, " ", "")}, recovery...) {
		if secret != "" && strings.Contains(log, secret) {
			t.Errorf("tenantgate's log holds %q", secret)
		}
	}
	linesCarryRequestIDs(t, log, "totp enrolled", "signed in", "sign-in refused")
}

// mfaScreenshots returns what saves a page as name.png: into
// $TENANTGATE_SCREENSHOTS (docs/screenshots) when set, else the test's
// artifact directory.
func mfaScreenshots(t *testing.T) func(p *tab, name string) {
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
	return func(p *tab, name string) {
		p.t.Helper()
		p.steps("blur the form", blur())
		value(p, "scroll to the top", chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`))
		png := value(p, "screenshot "+name, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}
