package browser

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}

// blur takes focus off the page's element so a screenshot shows no focus
// ring or caret.
func blur() chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`)
}
