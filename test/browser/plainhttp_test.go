package browser

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/envoyconf"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// lee signs in to plainTenants' acme.
var lee = person{"lee@acme.test", "lee-plain-http-password-1"}

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
	port := startPlainStack(t)
	b := launchChromium(t, fmt.Sprintf("MAP *.%[1]s 127.0.0.1, MAP %[1]s 127.0.0.1", baseDomain))
	apex := fmt.Sprintf("http://%s:%d", baseDomain, port)
	acme := fmt.Sprintf("http://acme.%s:%d", baseDomain, port)

	t.Run("sign-in and sign-out", func(t *testing.T) {
		p := b.newTab(t)
		signInPage(p, acme+"/reports/q3?view=full")
		typeCredentials(p, lee.email, lee.password)
		submitTo(p, "the page asked for", atPath(acme, "/reports/q3"))
		if got := p.location().RawQuery; got != "view=full" {
			t.Errorf("query after sign-in = %q, want view=full", got)
		}
		wantIdentity(p, "acme", lee.email, "member", "password")
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
		p.typeText("type the email", lee.email)
		arrived := submitTo(p, "acme's sign-in page", atPath(acme, "/_auth/login"))
		if hint := arrived.Query().Get("login_hint"); hint != lee.email {
			t.Errorf("acme's sign-in page got login_hint %q, want %q", hint, lee.email)
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

// startPlainStack starts tenantgate with --insecure-cookies, the echo
// upstream and Envoy on the shipped envoy.yaml, ports rewritten but
// otherwise unchanged (plain http), and returns Envoy's port. Everything
// stops when t ends.
func startPlainStack(t *testing.T) int {
	t.Helper()
	root := proc.RepoRoot(t)
	envoyBin := proc.Envoy(t)
	dir := t.TempDir()
	tg := proc.BuildTenantgate(t, dir)

	store := []string{"--db", filepath.Join(dir, "tenantgate.db"), "--master-key-file", filepath.Join(dir, "tenantgate.key")}
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, []byte(plainTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	proc.Run(t, "", tg, append([]string{"tenants", "apply", "-f", tenants}, store...)...)
	proc.Run(t, lee.password, tg, append([]string{"users", "add", "--tenant", "acme",
		"--email", lee.email, "--role", "member", "--password-stdin"}, store...)...)

	grpcPort, httpPort, adminPort := proc.FreePort(t), proc.FreePort(t), proc.FreePort(t)
	serve := proc.Start(t, tg, append([]string{"serve",
		"--grpc-addr", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--base-domain", baseDomain,
		"--insecure-cookies",
	}, store...)...)
	serve.WaitUntil(t, 20*time.Second, proc.HTTPOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort)))

	upstream := httptest.NewServer(&echo.Handler{})
	t.Cleanup(upstream.Close)

	envoyPort := proc.FreePort(t)
	cfg, err := os.ReadFile(filepath.Join(root, "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = envoyconf.RewritePorts(cfg, map[int]int{
		8080: envoyPort,
		9001: grpcPort,
		9002: httpPort,
		8081: upstream.Listener.Addr().(*net.TCPAddr).Port,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	envoy := proc.Start(t, envoyBin, "-c", cfgPath, "--use-dynamic-base-id", "--concurrency", "1", "-l", "warning")
	envoy.WaitUntil(t, 20*time.Second, proc.Listening(fmt.Sprintf("127.0.0.1:%d", envoyPort)))
	return envoyPort
}
