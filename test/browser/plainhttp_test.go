package browser

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// lee signs in to plainTenants' acme.
var lee = stack.User{Email: "lee@acme.test", Password: "lee-plain-http-password-1"}

// plainTenants is the plain-http stack's one tenant: password sign-in.
const plainTenants = `tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
`

// TestPlainHTTPSignIn is local development as the README describes it: the
// shipped envoy.yaml as it is (a plain-http listener), `tenantgate serve
// --insecure-cookies`, and Chromium at http://acme.app.test:<port>, a name
// that is not localhost (as lvh.me, an /etc/hosts entry or a dev cluster's
// ingress would be). Chromium sends no Sec-Fetch-Site to such an origin,
// so the sign-in forms' cross-origin check has only the Origin header to go
// by: under the pages' former Referrer-Policy: no-referrer that was "null",
// and every discovery, sign-in and sign-out was refused as "This form has
// expired or was sent from another site".
func TestPlainHTTPSignIn(t *testing.T) {
	chromiumPath(t)
	// stack.Start's defaults: the shipped envoy.yaml, its ports rewritten
	// but otherwise unchanged (plain http), and --insecure-cookies.
	port := stack.Start(t, stack.Tenants(func() string { return plainTenants },
		stack.Membership{User: lee, Tenant: "acme", Role: "member"})).EnvoyPort
	b := launchChromium(t, fmt.Sprintf("MAP *.%[1]s 127.0.0.1, MAP %[1]s 127.0.0.1", baseDomain))
	apex := fmt.Sprintf("http://%s:%d", baseDomain, port)
	acme := fmt.Sprintf("http://acme.%s:%d", baseDomain, port)

	t.Run("sign-in and sign-out", func(t *testing.T) {
		p := b.newTab(t)
		signInPage(p, acme+"/reports/q3?view=full")
		typeCredentials(p, lee.Email, lee.Password)
		submitTo(p, "the page asked for", atPath(acme, "/reports/q3"))
		if got := p.location().RawQuery; got != "view=full" {
			t.Errorf("query after sign-in = %q, want view=full", got)
		}
		wantIdentity(p, "acme", lee.Email, "member", "password")
		c := p.cookie(acme+"/", "tenantgate")
		if c == nil {
			t.Fatalf("no tenantgate cookie after sign-in; cookies: %v", cookieNames(p.cookies(acme+"/")))
		}
		if c.Domain != "acme."+baseDomain || c.Path != "/" || !c.HTTPOnly || c.Secure || c.SameSite != network.CookieSameSiteLax {
			t.Errorf("session cookie: domain %q path %q HttpOnly %v Secure %v SameSite %q; want host-only acme.%s, /, HttpOnly, not Secure (plain http), Lax",
				c.Domain, c.Path, c.HTTPOnly, c.Secure, c.SameSite, baseDomain)
		}

		p.open(acme + "/_auth/logout")
		p.waitFocused("the sign-out page", "button")
		submitTo(p, "the sign-in page after signing out", atPath(acme, "/_auth/login"))
		if c := p.cookie(acme+"/", "tenantgate"); c != nil {
			t.Error("session cookie still in the browser after sign-out")
		}
		p.open(acme + "/reports")
		p.waitFor("the sign-in page", actionTimeout, atPath(acme, "/_auth/login"))
	})

	t.Run("discovery on the apex", func(t *testing.T) {
		p := b.newTab(t)
		p.open(apex + "/_auth/login")
		p.waitFocused("the discovery page", discoveryEmail)
		p.typeText("type the email", lee.Email)
		arrived := submitTo(p, "acme's sign-in page", atPath(acme, "/_auth/login"))
		if hint := arrived.Query().Get("login_hint"); hint != lee.Email {
			t.Errorf("acme's sign-in page got login_hint %q, want %q", hint, lee.Email)
		}
		// same-origin, not strict-origin-when-cross-origin: another origin
		// (here a tenant host) learns nothing of the page the person left.
		if ref := value(p, "read document.referrer", evalString(`document.referrer`)); ref != "" {
			t.Errorf("acme's sign-in page has referrer %q from the apex, want none", ref)
		}
	})
}

// submitTo presses Enter in the focused form field and waits for the
// document that answers the POST, failing with what that page says unless
// its URL satisfies at. It returns that URL.
func submitTo(p *tab, what string, at func(*url.URL) bool) *url.URL {
	p.t.Helper()
	// A mark on the form's document tells it from the answer's, which may
	// have the same URL (a refused form).
	value(p, "mark the form's page", chromedp.Evaluate[bool](`window.tgSubmitted = true`))
	p.press("press Enter", kb.Enter)
	deadline := time.Now().Add(actionTimeout)
	var href string
	for {
		var state string
		_ = p.bounded(2*time.Second, func(ctx context.Context) error {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(window.tgSubmitted ? "form" : document.readyState) + " " + location.href`))
			if err == nil {
				state, href, _ = strings.Cut(s, " ")
			}
			return err
		})
		if state == "complete" {
			break
		}
		if time.Now().After(deadline) {
			p.fail("waited %s for the answer to the form on %s", actionTimeout, href)
		}
		time.Sleep(50 * time.Millisecond)
	}
	u, err := url.Parse(href)
	if err != nil || !at(u) {
		p.fail("submitted the form, wanted %s, got %s saying %.300q", what, href, p.bodyText())
	}
	return u
}
