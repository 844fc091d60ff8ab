package login

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

var styleElement = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// styleSource is the CSP hash source of a page's one <style> element,
// computed as a browser computes it, or a value no policy carries when the
// page has none or several.
func styleSource(body string) string {
	m := styleElement.FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		return fmt.Sprintf("(page has %d style elements)", len(m))
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// cspFor is the exact policy a page without a logo must carry.
func cspFor(body string, extraFormTargets ...string) string {
	fa := strings.Join(append([]string{"'self'"}, extraFormTargets...), " ")
	return "default-src 'none'; style-src " + styleSource(body) + "; form-action " + fa + "; frame-ancestors 'none'; base-uri 'none'"
}

// applyTenants adds tenants to an env's store, unvalidated (as a record
// written by hand or by another version would be), and republishes.
func applyTenants(t *testing.T, e *env, ts ...tenants.Tenant) {
	t.Helper()
	sealer := e.h.Minter.Sealer
	_, err := e.store.ApplyTenants(t.Context(), ts, tenants.ApplyOptions{
		NewKey:     func(id string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, id, e.clock.Now()) },
		SealMethod: signin.SealMethods(sealer, testMethodTypes()),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.refresh()
}

var (
	inputTag  = regexp.MustCompile(`<input [^>]*>`)
	labelFor  = regexp.MustCompile(`<label for="([^"]+)">`)
	idAttr    = regexp.MustCompile(` id="([^"]+)"`)
	attrValue = func(tag, name string) string {
		m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return ""
		}
		return m[1]
	}
)

// checkAccessible asserts what every form page promises: each visible
// field has a <label for> naming its id, ids are unique, at most one
// element takes autofocus, and no inline style attribute (which the CSP
// would block) appears.
func checkAccessible(t *testing.T, body string) {
	t.Helper()
	labels := map[string]bool{}
	for _, m := range labelFor.FindAllStringSubmatch(body, -1) {
		labels[m[1]] = true
	}
	for _, tag := range inputTag.FindAllString(body, -1) {
		if attrValue(tag, "type") == "hidden" {
			continue
		}
		if id := attrValue(tag, "id"); id == "" || !labels[id] {
			t.Errorf("field without a label: %s", tag)
		}
	}
	var ids []string
	for _, m := range idAttr.FindAllStringSubmatch(body, -1) {
		if slices.Contains(ids, m[1]) {
			t.Errorf("id %q used twice", m[1])
		}
		ids = append(ids, m[1])
	}
	if n := strings.Count(body, " autofocus"); n > 1 {
		t.Errorf("%d elements take autofocus", n)
	}
	if strings.Contains(body, " style=") {
		t.Error("inline style attribute: blocked by the CSP's style hash")
	}
}

// TestPageCSPAndBranding: a branded tenant's page shows its logo (the one
// external resource, allowed by exactly its origin), its name escaped, and
// its accent in the stylesheet whose hash the policy carries.
func TestPageCSPAndBranding(t *testing.T) {
	e := newEnv(t)
	roles := map[string]tenants.Role{"member": {}}
	pw := []tenants.Method{{Type: tenants.MethodPassword}}
	applyTenants(t, e,
		tenants.Tenant{ID: "brand", Name: `Brand <b>"&"</b> Co`, Methods: pw, Roles: roles,
			Branding: tenants.Branding{LogoURL: "https://CDN.Brand.test:8443/logo.svg?v=1&h=2", AccentColor: "#FC0"}},
		// Written without validation: nothing of it may reach the page.
		tenants.Tenant{ID: "forged", Methods: pw, Roles: roles,
			Branding: tenants.Branding{LogoURL: "javascript:alert(1)", AccentColor: "red}body{display:none"}},
		tenants.Tenant{ID: "plainlogo", Methods: pw, Roles: roles,
			Branding: tenants.Branding{LogoURL: "http://cdn.brand.test/logo.png"}},
	)

	resp := e.do("GET", "brand.app.test", "/_auth/login", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := "default-src 'none'; style-src " + styleSource(body) +
		"; img-src https://cdn.brand.test:8443; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	if got := resp.Header.Get("Content-Security-Policy"); got != want {
		t.Errorf("CSP = %q\nwant  %q", got, want)
	}
	for _, want := range []string{
		`<img class="logo" src="https://CDN.Brand.test:8443/logo.svg?v=1&amp;h=2" alt="" referrerpolicy="no-referrer">`,
		`<p class="org">Brand &lt;b&gt;&#34;&amp;&#34;&lt;/b&gt; Co</p>`,
		`<title>Sign in · Brand &lt;b&gt;&#34;&amp;&#34;&lt;/b&gt; Co</title>`,
		// #FC0 is light: black text (white would be 1.5:1); too light for
		// links (1.5:1 on white) or focus rings in the light scheme, fine
		// for both on the dark card.
		"--accent:#ffcc00;--on-accent:#000000;",
		"--link:#1d4ed8;--ring:#1d4ed8;",
		"--link:#ffcc00;--ring:#ffcc00;",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Error("tenant name rendered as markup")
	}
	checkAccessible(t, body)

	for _, host := range []string{"forged.app.test", "plainlogo.app.test", "acme.app.test"} {
		resp := e.do("GET", host, "/_auth/login", nil, nil)
		body := readBody(t, resp)
		if got, want := resp.Header.Get("Content-Security-Policy"), cspFor(body); got != want {
			t.Errorf("%s: CSP = %q, want %q (no img-src)", host, got, want)
		}
		for _, bad := range []string{"<img", "javascript", "display:none", "red}", "http://"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: page contains %q", host, bad)
			}
		}
		if !strings.Contains(body, "--accent:#1d4ed8;--on-accent:#ffffff;") {
			t.Errorf("%s: not the default accent", host)
		}
	}
}

// TestPagesShareOneLook: every page, on tenant hosts and the apex, carries
// the headers and the one hashed stylesheet, and is keyboard-usable.
func TestPagesShareOneLook(t *testing.T) {
	e := newEnv(t)
	applyTenants(t, e, tenants.Tenant{ID: "tinted", Name: "Tinted", Methods: []tenants.Method{{Type: tenants.MethodPassword}},
		Roles: map[string]tenants.Role{"member": {}}, Branding: tenants.Branding{AccentColor: "#0a66c2"}})
	wrong := func() *http.Response {
		return e.signIn("tinted.app.test", "", "nobody@tinted.test", "wrong", "/")
	}
	for _, tc := range []struct {
		name   string
		get    func() *http.Response
		status int
		wants  []string
	}{
		{"sign-in", func() *http.Response { return e.do("GET", "tinted.app.test", "/_auth/login", nil, nil) }, 200,
			[]string{`<label for="email">Email address</label>`, `<label for="password">Password</label>`, ` autofocus>`, "--accent:#0a66c2;--on-accent:#ffffff;"}},
		{"sign-in with hint", func() *http.Response {
			return e.do("GET", "tinted.app.test", "/_auth/login?login_hint=ann%40tinted.test", nil, nil)
		}, 200, []string{`value="ann@tinted.test"`, `autocomplete="current-password" required maxlength="1024" autofocus>`}},
		{"wrong password", wrong, 401,
			[]string{`<p class="alert" role="alert" id="form-error">Invalid email or password.</p>`, `aria-invalid="true" aria-describedby="form-error"`}},
		{"sign-out", func() *http.Response { return e.do("GET", "tinted.app.test", "/_auth/logout", nil, nil) }, 200,
			[]string{`<button type="submit" autofocus>Sign out</button>`, `name="csrf"`}},
		{"suspended", func() *http.Response { return e.do("GET", "frozen.app.test", "/_auth/login", nil, nil) }, 403,
			[]string{`role="alert">This organisation is suspended.</p>`, `<a href="/_auth/login">`}},
		{"no method", func() *http.Response { return e.do("GET", "sso.app.test", "/_auth/login", nil, nil) }, 501,
			[]string{`role="alert">No sign-in method is available`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.get()
			body := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if got, want := resp.Header.Get("Content-Security-Policy"), cspFor(body); got != want {
				t.Errorf("CSP = %q, want %q", got, want)
			}
			for k, want := range map[string]string{
				"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
				"Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, want := range append(tc.wants, `<meta name="viewport" content="width=device-width, initial-scale=1">`, `<html lang="en">`, "<h1>") {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			checkAccessible(t, body)
		})
	}

	// Wrong passwords over the limit get the same 401 as any other
	// failure; the rate-limited page is discovery's (and argon2
	// saturation's, TestPasswordsSaturated).
	t.Run("rate limited", func(t *testing.T) {
		e := newEnv(t, func(h *Handler) { h.Limits = Limits{DiscoveryRequests: 1} })
		f := e.getForm("app.test", "/_auth/login")
		var resp *http.Response
		for range 2 {
			resp = e.do("POST", "app.test", "/_auth/login", url.Values{"email": {"a@nowhere.test"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `<p class="alert" role="alert">Too many attempts`) {
			t.Fatalf("status %d\n%s", resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("Content-Security-Policy"), cspFor(body); got != want {
			t.Errorf("CSP = %q, want %q", got, want)
		}
		checkAccessible(t, body)
	})
}

// TestSSOOnlyPageFocus: without a password form the first available SSO
// button takes focus; an unavailable one is disabled and says why.
func TestSSOOnlyPageFocus(t *testing.T) {
	se := newSSOEnv(t)
	oidcMethod := func(label, issuer string) tenants.Method {
		return method(t, oidc.Type, label, oidc.Config{Issuer: issuer, ClientID: "tg", ClientSecret: "s"}, tenants.RoleMapping{})
	}
	applyTenants(t, se.env, tenants.Tenant{ID: "twosso", Name: "Two SSO", Roles: map[string]tenants.Role{"member": {}},
		Methods: []tenants.Method{oidcMethod("Broken IdP", "https://broken.idp.test/"), oidcMethod("Working IdP", "https://idp.test/realms/x")}})
	resp := se.do("GET", "twosso.app.test", "/_auth/login", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`<button type="submit" disabled aria-describedby="sso-0-note">Broken IdP</button>`,
		`<p class="note" id="sso-0-note">Temporarily unavailable.</p>`,
		`<button type="submit" autofocus>Working IdP</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s\n%s", want, body)
		}
	}
	if got, want := resp.Header.Get("Content-Security-Policy"), cspFor(body, se.h.ssoFormTargets()); got != want {
		t.Errorf("CSP = %q, want %q", got, want)
	}
	checkAccessible(t, body)

	// Beside a password form, SSO buttons are secondary and the email
	// field keeps the focus.
	body = readBody(t, se.do("GET", "multi.app.test", "/_auth/login", nil, nil))
	if !strings.Contains(body, `class="secondary">Acme SSO</button>`) || strings.Count(body, "autofocus") != 1 ||
		!strings.Contains(body, `maxlength="320" value="" autofocus>`) {
		t.Errorf("password and SSO page:\n%s", body)
	}
}
