package browser

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tenantgate/tenantgate/test/internal/stack"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// sessionCookie is the production session cookie's name (CONTRACT.md).
const sessionCookie = "__Host-tenantgate"

// invalidCredentials is the one answer to a failed password sign-in.
const invalidCredentials = "Invalid email or password."

// TestBrowser runs every sign-in flow a person goes through, in Chromium,
// against one stack. Each subtest has its own browser context.
func TestBrowser(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	chromiumPath(t) // skip or fail before paying for Keycloak
	began := time.Now()
	s := startHarness(t)
	b := startBrowser(t, s)
	ready := time.Since(began)
	flows := map[string]time.Duration{}
	var order []string
	run := func(name string, f func(t *testing.T, p *tab)) {
		start := time.Now()
		t.Run(name, func(t *testing.T) { f(t, b.newTab(t)) })
		flows[name] = time.Since(start)
		order = append(order, name)
	}
	defer func() {
		var lines []string
		for _, n := range order {
			lines = append(lines, n+" "+flows[n].Round(10*time.Millisecond).String())
		}
		t.Logf("timing: %s; ready after %s; flows: %s; total %s", strings.Join(s.timings, ", "),
			ready.Round(10*time.Millisecond), strings.Join(lines, ", "), time.Since(began).Round(10*time.Millisecond))
	}()

	run("password_sign-in", func(t *testing.T, p *tab) { passwordSignIn(t, p, s) })
	run("wrong_password", func(t *testing.T, p *tab) { wrongPassword(t, p) })
	run("sign-out", func(t *testing.T, p *tab) { signOut(t, p, s) })
	run("discovery", func(t *testing.T, p *tab) { discovery(t, p) })
	run("oidc", func(t *testing.T, p *tab) { oidcSignIn(t, p, s) })
	run("saml", func(t *testing.T, p *tab) { samlSignIn(t, p, s) })
	run("oauth2_button", func(t *testing.T, p *tab) { oauthButton(t, p, s) })
	run("tenant_switching", func(t *testing.T, p *tab) { switching(t, p, s) })
	run("cross-origin_guard", func(t *testing.T, p *tab) { crossOriginGuard(t, p, s) })
	run("screenshots", func(t *testing.T, p *tab) { screenshots(t, p) })
}

// signInPage opens rawURL on a tenant and expects the app to send the
// browser to that tenant's sign-in page with the password form, the email
// field focused.
func signInPage(p *tab, rawURL string) {
	p.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		p.t.Fatal(err)
	}
	o := u.Scheme + "://" + u.Host
	p.open(rawURL)
	p.waitFor("the sign-in page", actionTimeout, atPath(o, "/_auth/login"))
	p.waitFocused("the sign-in page", emailField)
}

// CSS selectors of the sign-in forms' fields (the names are CONTRACT.md's
// form fields). The apex has two forms with an email field: discovery's,
// without a password, and the global sign-in's.
const (
	emailField     = `input[name=email]`
	passwordField  = `input[name=password]`
	discoveryEmail = `form:not(:has(input[name=password])) input[name=email]`
	apexEmail      = `form:has(input[name=password]) input[name=email]`
)

// typeCredentials types an email and a password with the keyboard alone:
// the email into the focused field, Tab to the password field, and no
// submit.
func typeCredentials(p *tab, email, password string) {
	p.t.Helper()
	p.waitFocused("before typing the email", emailField)
	p.typeText("type the email", email)
	p.press("Tab to the password", kb.Tab)
	p.waitFocused("Tab from the email field", passwordField)
	p.typeText("type the password", password)
}

// discover types email into the apex's discovery form (focused on load)
// and submits it with Enter.
func discover(p *tab, email string) {
	p.t.Helper()
	p.open(origin("") + "/_auth/login")
	p.waitFocused("the discovery page", discoveryEmail)
	p.typeText("type the email", email)
	p.press("press Enter", kb.Enter)
}

// signInWithPassword goes from rawURL (a page of the app on a tenant) to
// signed in, by keyboard, and returns what the app received.
func signInWithPassword(p *tab, rawURL string, who stack.User) {
	p.t.Helper()
	signInPage(p, rawURL)
	typeCredentials(p, who.Email, who.Password)
	p.press("press Enter", kb.Enter)
	u, _ := url.Parse(rawURL)
	p.waitFor("the app at "+u.Path, actionTimeout, atPath(u.Scheme+"://"+u.Host, u.Path))
}

// wantIdentity checks the identity headers the app received.
func wantIdentity(p *tab, tenant, email, roles, method string) {
	p.t.Helper()
	got := p.upstream()
	for _, h := range []struct{ name, want string }{
		{"x-tenant-id", tenant},
		{"x-user-email", email},
		{"x-user-roles", roles},
		{"x-auth-method", method},
	} {
		if v := header(got, h.name); v != h.want {
			p.t.Errorf("app received %s %q, want %q", h.name, v, h.want)
		}
	}
	if header(got, "x-user-id") == "" {
		p.t.Errorf("app received no x-user-id")
	}
}

func passwordSignIn(t *testing.T, p *tab, s *harness) {
	signInPage(p, origin("initech")+"/reports/q3?view=full")
	if got := p.text("main"); !strings.Contains(got, "Initech") {
		t.Errorf("sign-in page does not name the tenant: %q", got)
	}
	p.shot("sign-in-page")
	// The page's stylesheet applies under its CSP (a hashed inline style),
	// with initech's branding.
	if bg := value(p, "read the button colour", evalString(
		`getComputedStyle(document.querySelector("form:has(input[name=password]) button")).backgroundColor`)); bg != initechAccentRGB {
		t.Errorf("sign-in button background is %s, want initech's accent %s (%s)", bg, initechAccent, initechAccentRGB)
	}
	typeCredentials(p, mia.Email, mia.Password)
	p.shot("filled-in")
	if got := p.fieldValue(passwordField); got != mia.Password {
		t.Fatalf("password field holds %d characters, want what was typed", len(got))
	}
	p.press("press Enter", kb.Enter)
	p.waitFor("the page asked for", actionTimeout, atPath(origin("initech"), "/reports/q3"))
	p.shot("signed-in")
	if got := p.location().RawQuery; got != "view=full" {
		t.Errorf("query after sign-in = %q, want view=full", got)
	}
	wantIdentity(p, "initech", mia.Email, "member", "password")

	c := p.cookie(origin("initech")+"/", sessionCookie)
	if c == nil {
		t.Fatalf("no %s cookie after sign-in; cookies: %v", sessionCookie, cookieNames(p.cookies(origin("initech")+"/")))
	}
	if c.Domain != "initech.app.test" || c.Path != "/" || !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("session cookie: domain %q path %q HttpOnly %v Secure %v SameSite %q; want host-only initech.app.test, /, HttpOnly, Secure, Lax",
			c.Domain, c.Path, c.HTTPOnly, c.Secure, c.SameSite)
	}
	if js := value(p, "read document.cookie", evalString(`document.cookie`)); strings.Contains(js, "tenantgate") {
		t.Errorf("the page's script can read the session cookie: %q", js)
	}

	// The session is initech's alone: hooli (a sibling subdomain) neither
	// receives it nor lets the browser in.
	if c := p.cookie(origin("hooli")+"/", sessionCookie); c != nil {
		t.Errorf("the browser would send initech's session to hooli")
	}
	p.open(origin("hooli") + "/")
	p.waitFor("hooli's sign-in page", actionTimeout, atPath(origin("hooli"), "/_auth/login"))
	p.shot("sibling-tenant-asks-to-sign-in")
}

func wrongPassword(t *testing.T, p *tab) {
	// A wrong password and an address nobody has get the same answer.
	var answers []string
	for _, who := range []stack.User{{Email: mia.Email, Password: "not-" + mia.Password}, {Email: "nobody@initech.test", Password: mia.Password}} {
		signInPage(p, origin("initech")+"/")
		typeCredentials(p, who.Email, who.Password)
		p.press("press Enter", kb.Enter)
		alert := p.text(`[role=alert]`)
		answers = append(answers, alert)
		if alert != invalidCredentials {
			t.Errorf("sign-in as %s shows %q, want %q", who.Email, alert, invalidCredentials)
		}
		p.waitFor("the sign-in page again", actionTimeout, atPath(origin("initech"), "/_auth/login"))
		if body := p.bodyText(); strings.Contains(body, who.Password) {
			t.Errorf("the error page shows the password")
		}
		if c := p.cookie(origin("initech")+"/", sessionCookie); c != nil {
			t.Errorf("a failed sign-in left a session cookie")
		}
	}
	p.shot("generic-error")
	if answers[0] != answers[1] {
		t.Errorf("wrong password says %q, unknown user says %q: they must not differ", answers[0], answers[1])
	}
	// Trying again works from the error page.
	p.steps("clear the form", clearField(emailField), clearField(passwordField))
	p.click("focus the email field", emailField)
	typeCredentials(p, mia.Email, mia.Password)
	p.press("press Enter", kb.Enter)
	p.waitFor("the app", actionTimeout, atPath(origin("initech"), "/"))
	wantIdentity(p, "initech", mia.Email, "member", "password")
}

func signOut(t *testing.T, p *tab, s *harness) {
	signInWithPassword(p, origin("initech")+"/", dana)
	wantIdentity(p, "initech", dana.Email, "admin", "password")
	c := p.cookie(origin("initech")+"/", sessionCookie)
	if c == nil {
		t.Fatal("no session cookie after sign-in")
	}
	token := c.Value

	p.open(origin("initech") + "/_auth/logout")
	p.shot("sign-out-confirmation")
	if got := p.text("button"); !strings.Contains(got, "Sign out") {
		t.Errorf("sign-out page button says %q", got)
	}
	// Merely visiting the confirmation page signs nobody out.
	if s.status(t, origin("initech")+"/", token) != http.StatusOK {
		t.Fatal("the session stopped working before the sign-out button was pressed")
	}
	p.click("press Sign out", "button")
	p.waitFor("the sign-in page", actionTimeout, atPath(origin("initech"), "/_auth/login"))
	p.shot("signed-out")
	if c := p.cookie(origin("initech")+"/", sessionCookie); c != nil {
		t.Errorf("session cookie still in the browser after sign-out")
	}
	p.open(origin("initech") + "/reports")
	p.waitFor("the sign-in page", actionTimeout, atPath(origin("initech"), "/_auth/login"))
	if rd := p.location().Query().Get("rd"); rd != "/reports" {
		t.Errorf("after sign-out the app sends the browser to sign in with rd %q, want /reports", rd)
	}
	// The token itself is revoked, not only dropped by the browser.
	if got := s.status(t, origin("initech")+"/", token); got != http.StatusUnauthorized {
		t.Errorf("the signed-out session token still gets %d from the app, want 401", got)
	}
}

func discovery(t *testing.T, p *tab) {
	p.open(origin("") + "/_auth/login")
	p.waitFocused("the discovery page", discoveryEmail)
	p.shot("discovery-form")

	// Addresses no tenant owns, lookalikes included, all get one neutral
	// notice and stay on the apex.
	var notices []string
	for _, email := range []string{"someone@nowhere.test", "mia@initech.test.evil.test", "mia@sub.initech.test", "not an address"} {
		discover(p, email)
		notices = append(notices, p.text(`[role=status]`))
		p.waitFor("the apex", actionTimeout, atPath(origin(""), "/_auth/login"))
		if body := p.bodyText(); strings.Contains(body, email) {
			t.Errorf("discovery echoes the input %q", email)
		}
	}
	p.shot("discovery-neutral-notice")
	for i, n := range notices[1:] {
		if n != notices[0] {
			t.Errorf("notice %d differs from the first: %q vs %q", i+1, n, notices[0])
		}
	}

	discover(p, mia.Email)
	u := p.waitFor("initech's sign-in page", actionTimeout, atPath(origin("initech"), "/_auth/login"))
	p.shot("tenant-sign-in-with-hint")
	if got := u.Query().Get("login_hint"); got != mia.Email {
		t.Errorf("login_hint = %q, want %q", got, mia.Email)
	}
	if got := p.fieldValue(emailField); got != mia.Email {
		t.Errorf("email field holds %q, want the address typed at the apex", got)
	}
	p.waitFocused("the email is filled in", passwordField)
	p.typeText("type the password", mia.Password)
	p.press("press Enter", kb.Enter)
	p.waitFor("the app", actionTimeout, atPath(origin("initech"), "/"))
	wantIdentity(p, "initech", mia.Email, "member", "password")
	// The apex got no session: discovery is not a sign-in.
	if cs := p.cookies(origin("") + "/"); len(cookieNamed(cs, sessionCookie)) != 0 {
		t.Errorf("the apex holds a session cookie after discovery")
	}
}

// atKeycloak waits for Keycloak's login form for realm and returns its URL.
func atKeycloak(p *tab, s *harness, realm string) *url.URL {
	p.t.Helper()
	u := p.waitFor("Keycloak's login form", idpTimeout, func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), s.kc.Issuer(realm)+"/")
	})
	p.steps("wait for the form", waitVisible(`#kc-form-login`))
	return u
}

// keycloakUser is a fixture account, failing the test if it is missing.
func keycloakUser(t *testing.T, realm, name string) keycloak.User {
	t.Helper()
	u, ok := keycloak.UserByName(realm, name)
	if !ok {
		t.Fatalf("no user %s in realm %s", name, realm)
	}
	return u
}

// signInAtKeycloak fills Keycloak's own form by keyboard. An empty
// username keeps what Keycloak pre-filled (login_hint).
func signInAtKeycloak(p *tab, username, password string) {
	p.t.Helper()
	if username != "" {
		p.click("focus the username", `#username`)
		p.waitFocused("Keycloak's username", `#username`)
		p.typeText("type the username", username)
	}
	p.click("focus the password", `#password`)
	p.waitFocused("Keycloak's password", `#password`)
	p.typeText("type the password", password)
	p.press("press Enter", kb.Enter)
}

func oidcSignIn(t *testing.T, p *tab, s *harness) {
	alice := keycloakUser(t, keycloak.RealmOIDC, "alice")
	// Discovery on the apex sends alice@acme.test to acme, whose only
	// method is OIDC: its sign-in page goes straight on to Keycloak, with
	// the address as login_hint. Browsers apply the apex page's CSP
	// form-action to that whole redirect chain (a violation fails the test).
	discover(p, alice.Email)
	u := atKeycloak(p, s, keycloak.RealmOIDC)
	p.shot("keycloak-login")
	if got := u.Query().Get("login_hint"); got != alice.Email {
		t.Errorf("Keycloak got login_hint %q, want %q", got, alice.Email)
	}
	if got := p.fieldValue(`#username`); got != alice.Email {
		t.Errorf("Keycloak's username field holds %q, want the address typed at the apex", got)
	}
	signInAtKeycloak(p, "", alice.Password)
	p.waitFor("acme's app", idpTimeout, atPath(origin("acme"), "/"))
	p.shot("signed-in")
	wantIdentity(p, "acme", alice.Email, "admin,member", "oidc")
	if c := p.cookie(origin("acme")+"/", sessionCookie); c == nil || c.Domain != "acme.app.test" {
		t.Errorf("no host-only session cookie on acme after OIDC sign-in")
	}

	// Signing out of acme signs out at Keycloak too and comes back.
	p.open(origin("acme") + "/_auth/logout")
	p.click("press Sign out", "button")
	p.waitFor("acme's signed-out page", idpTimeout, atPath(origin("acme"), "/_auth/signed-out"))
	p.shot("signed-out-at-keycloak-too")
	if got := p.text("main"); !strings.Contains(got, "signed out") {
		t.Errorf("signed-out page says %q", got)
	}
	// Keycloak's session is gone as well: signing in again asks for the
	// password.
	p.open(origin("acme") + "/")
	atKeycloak(p, s, keycloak.RealmOIDC)
}

func samlSignIn(t *testing.T, p *tab, s *harness) {
	carol := keycloakUser(t, keycloak.RealmSAML, "carol")
	p.open(origin("globex") + "/ledger?year=2026")
	atKeycloak(p, s, keycloak.RealmSAML)
	p.shot("keycloak-login")
	var attempt *network.Cookie
	for _, c := range p.cookies(origin("globex") + "/") {
		if strings.HasPrefix(c.Name, "__Host-tg-attempt-") {
			attempt = c
		}
	}
	if attempt == nil || attempt.SameSite != network.CookieSameSiteNone || !attempt.Secure || !attempt.HTTPOnly {
		t.Fatalf("SAML attempt cookie = %+v, want one that is SameSite=None, Secure, HttpOnly", attempt)
	}
	signInAtKeycloak(p, carol.Username, carol.Password)
	// Keycloak answers with a form that posts itself, cross-site, to
	// globex's ACS; the attempt cookie rides along, and globex sends the
	// browser back to the page asked for.
	p.waitFor("globex's app", idpTimeout, atPath(origin("globex"), "/ledger"))
	p.shot("signed-in")
	if got := p.location().RawQuery; got != "year=2026" {
		t.Errorf("query after SAML sign-in = %q, want year=2026", got)
	}
	wantIdentity(p, "globex", carol.Email, "admin,member", "saml")
	for _, c := range p.cookies(origin("globex") + "/") {
		if strings.HasPrefix(c.Name, "__Host-tg-attempt-") {
			t.Errorf("attempt cookie %s left after sign-in", c.Name)
		}
	}
}

func oauthButton(t *testing.T, p *tab, s *harness) {
	erin := keycloakUser(t, keycloak.RealmOAuth, "erin")
	signInPage(p, origin("initech")+"/")
	p.click("press the SSO button", `form.sso button`)
	atKeycloak(p, s, keycloak.RealmOAuth)
	signInAtKeycloak(p, erin.Username, erin.Password)
	p.waitFor("initech's app", idpTimeout, atPath(origin("initech"), "/"))
	p.shot("signed-in")
	wantIdentity(p, "initech", erin.Email, "member", "social")
}

// cookieNames lists the names of cs.
func cookieNames(cs []*network.Cookie) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// cookieNamed returns the cookies in cs called name.
func cookieNamed(cs []*network.Cookie, name string) []*network.Cookie {
	var out []*network.Cookie
	for _, c := range cs {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// status sends GET rawURL through Envoy's TLS listener, outside the
// browser, with token as the session cookie and asking for JSON, and
// returns the status code.
func (s *harness) status(t *testing.T, rawURL, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	resp, err := s.client(t).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// client is an HTTP client that reaches every app.test host at Envoy's
// TLS port and trusts only the stack's certificate.
func (s *harness) client(t *testing.T) *http.Client {
	t.Helper()
	envoy := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.EnvoyPort))
	return &http.Client{
		Timeout: actionTimeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: s.cert.Pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, envoy)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// chooserTenants are the organisations the apex's chooser offers to switch
// into, by button text.
func chooserTenants(p *tab) []string {
	p.t.Helper()
	p.steps("wait for the chooser", waitVisible(switchButtons))
	return value(p, "read the chooser", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(`+"`"+switchButtons+"`"+`)).map(b => b.textContent.trim())`))
}

// switchButtons are the chooser's buttons that switch into a tenant.
const switchButtons = `form[action="/_auth/switch"] button`

// choose presses the chooser's button for tenant.
func choose(p *tab, tenant string) {
	p.t.Helper()
	p.click("choose "+tenant, `form[action="/_auth/switch"]:has(input[name=tenant][value="`+tenant+`"]) button`)
}

// signInAtApex signs in to the apex's global session with the password
// form, by keyboard, and waits for the chooser.
func signInAtApex(p *tab, who stack.User) {
	p.t.Helper()
	p.open(origin("") + "/_auth/login")
	p.click("focus the global sign-in email", apexEmail)
	typeCredentials(p, who.Email, who.Password)
	p.press("press Enter", kb.Enter)
	p.waitFor("the chooser", actionTimeout, atPath(origin(""), "/_auth/login"))
}

// onlyHostCookies fails the test if the browser would send any cookie to
// rawURL's host that is not host-only on that host.
func onlyHostCookies(p *tab, rawURL string) {
	p.t.Helper()
	u, _ := url.Parse(rawURL)
	for _, c := range p.cookies(rawURL) {
		if c.Domain != u.Hostname() {
			p.t.Errorf("the browser sends cookie %s (Domain %q) to %s: cookies must be host-only", c.Name, c.Domain, u.Hostname())
		}
	}
}

func switching(t *testing.T, p *tab, s *harness) {
	signInAtApex(p, dana)
	got := chooserTenants(p)
	p.shot("chooser")
	if strings.Join(got, ",") != "Hooli,Initech" {
		t.Errorf("chooser offers %q, want Hooli and Initech", got)
	}
	if body := p.bodyText(); !strings.Contains(body, dana.Email) {
		t.Errorf("chooser does not say who is signed in")
	}

	// Into initech, and then hooli, without typing a password again.
	choose(p, "initech")
	p.waitFor("initech's app", actionTimeout, atPath(origin("initech"), "/"))
	p.shot("switched-to-initech")
	wantIdentity(p, "initech", dana.Email, "admin", "password")

	p.open(origin("") + "/_auth/login")
	chooserTenants(p)
	choose(p, "hooli")
	p.waitFor("hooli's app", actionTimeout, atPath(origin("hooli"), "/"))
	p.shot("switched-to-hooli")
	wantIdentity(p, "hooli", dana.Email, "member", "password")

	// Each host holds its own session; nothing is shared across
	// subdomains, and initech's session still opens initech only.
	for _, o := range []string{origin(""), origin("initech"), origin("hooli")} {
		onlyHostCookies(p, o+"/")
	}
	p.open(origin("initech") + "/")
	wantIdentity(p, "initech", dana.Email, "admin", "password")

	// A switch a tenant's own page starts (say, an app's "switch
	// organisation" link) asks on the apex first, then signs in.
	p.open(origin("hooli") + "/_auth/logout")
	p.click("press Sign out", "button")
	p.waitFor("hooli's sign-in page", actionTimeout, atPath(origin("hooli"), "/_auth/login"))
	p.open(origin("hooli") + "/_auth/switch?rd=%2Fdocs")
	p.waitFor("the apex's confirmation", actionTimeout, atPath(origin(""), "/_auth/switch"))
	p.shot("confirm-switch")
	if body := p.bodyText(); !strings.Contains(body, "Hooli") || !strings.Contains(body, dana.Email) {
		t.Errorf("confirmation does not name the tenant and the person: %q", body)
	}
	p.click("press Continue", `form[action="/_auth/switch"] button`)
	p.waitFor("hooli's app", actionTimeout, atPath(origin("hooli"), "/docs"))
	wantIdentity(p, "hooli", dana.Email, "member", "password")

	// Signing out of the apex ends switching: the next switch asks for the
	// password again.
	p.open(origin("") + "/_auth/logout")
	p.click("press Sign out", "button")
	p.waitFor("the apex sign-in page", actionTimeout, atPath(origin(""), "/_auth/login"))
	if n := value(p, "count switch buttons", chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+switchButtons+"`"+`).length`)); n != 0 {
		t.Errorf("the apex still shows the chooser after sign-out")
	}
	p.open(origin("initech") + "/_auth/switch")
	p.waitFor("the apex sign-in page", actionTimeout, atPath(origin(""), "/_auth/login"))
	p.shot("switch-after-apex-sign-out")
}
