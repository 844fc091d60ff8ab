package browser

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// Size of the committed screenshots, in CSS pixels.
const (
	docsWidth  = 960
	docsHeight = 640
)

// screenshots takes the representative pictures shown in README.md, under
// fixed names, into $TENANTGATE_SCREENSHOTS (relative to the repository
// root) or the test's artifact directory. Regenerate the committed ones
// with
//
//	TENANTGATE_SCREENSHOTS=docs/screenshots go test -count=1 ./test/browser -run 'TestBrowser/screenshots'
func screenshots(t *testing.T, p *tab) {
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
	save := func(name string) {
		t.Helper()
		png := value(p, "screenshot "+name, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	desktop := chromedp.EmulateViewport(docsWidth, docsHeight)
	p.steps("desktop size", desktop)

	// A tenant with a password and one SSO method.
	signInPage(p, origin("initech")+"/")
	save("sign-in")

	typeCredentials(p, mia.Email, "not-"+mia.Password)
	p.press("press Enter", kb.Enter)
	if got := p.text(`[role=alert]`); got != invalidCredentials {
		t.Errorf("error state shows %q", got)
	}
	p.steps("blur the form", blur())
	save("sign-in-error")

	p.open(origin("") + "/_auth/login")
	p.waitFocused("the discovery page", discoveryEmail)
	p.typeText("type the email", mia.Email)
	save("discovery")

	p.steps("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1), chromedp.EmulateMobile))
	signInPage(p, origin("initech")+"/")
	p.steps("blur the form", blur())
	save("sign-in-mobile")
	if w := value(p, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("sign-in page is %dpx wide on a 390px phone: it scrolls sideways", w)
	}

	p.steps("desktop size", desktop)
	signInAtApex(p, dana)
	chooserTenants(p)
	p.steps("blur the form", blur())
	save("chooser")

	signInWithPassword(p, origin("initech")+"/", mia)
	p.open(origin("initech") + "/_auth/logout")
	if !strings.Contains(p.text("button"), "Sign out") {
		t.Errorf("no sign-out button")
	}
	save("sign-out")

	// The account page's sessions: mia, signed in above, signs in again
	// as from a phone and from a desktop (the User-Agents are overridden,
	// so the labels read as a person's devices would).
	signInAgain := func() {
		t.Helper()
		p.open(origin("initech") + "/_auth/login?rd=%2F")
		p.waitFocused("the sign-in page", emailField)
		typeCredentials(p, mia.Email, mia.Password)
		p.press("press Enter", kb.Enter)
		p.waitFor("the app", actionTimeout, atPath(origin("initech"), "/"))
	}
	p.userAgent(phoneUA)
	signInAgain()
	p.userAgent(desktopUA)
	signInAgain()
	p.open(origin("initech") + "/_auth/account")
	if got := p.text(".sessions .current"); got != "This session" {
		t.Errorf("the account page marks %q as this session", got)
	}
	if body := p.bodyText(); !strings.Contains(body, "Safari on iOS") || !strings.Contains(body, "Edge on Windows") {
		t.Errorf("the account page does not list both devices:\n%s", body)
	}
	p.steps("show the sessions", blur(),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("sessions-heading").scrollIntoView({block: "start"})`))
	save("account-sessions")
}

// User-Agents the account page screenshot signs in with.
const (
	phoneUA   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)

// userAgent makes the tab send ua as its User-Agent from now on.
func (p *tab) userAgent(ua string) {
	p.t.Helper()
	err := p.bounded(actionTimeout, func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua})
		return err
	})
	if err != nil {
		p.fail("override the User-Agent: %v", err)
	}
}

// blur takes focus off the page's element so a screenshot shows no focus
// ring or caret.
func blur() chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`)
}
