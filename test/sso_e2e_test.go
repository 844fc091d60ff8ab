package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/otlpsink"
	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// Cookie names of tenantgate in its production mode (no --insecure-cookies).
const (
	sessionCookie       = "__Host-tenantgate"
	attemptCookiePrefix = "__Host-tg-attempt-"
)

// ssoTenantFile is the SSO fixture: each tenant signs in through its own
// Keycloak realm, its groups mapped to roles. umbrella trusts the same SAML
// IdP as globex (one IdP serving two customers, as a shared Okta or Entra
// would) but is no SP Keycloak knows: it exists to receive globex's
// assertions.
func ssoTenantFile(kc *keycloak.Server) string {
	oauth := kc.Issuer(keycloak.RealmOAuth) + "/protocol/openid-connect"
	return fmt.Sprintf(`tenants:
  - id: acme
    name: Acme Corp
    methods:
      - type: oidc
        issuer: %[1]s
        clientID: %[2]s
        clientSecret: %[3]s
        groupRoles:
          admins: [admin]
          engineering: [engineer]
          support: [support]
        defaultRoles: [member]
    roles:
      admin:    {permissions: ["*"], inherits: [member]}
      engineer: {permissions: ["code:write"]}
      support:  {permissions: ["tickets:read"]}
      member:   {permissions: ["docs:read"]}
    rules:
      - {path: /admin/, permission: "admin:access"}
  - id: globex
    name: Globex Corporation
    methods:
      - type: saml
        idpMetadataURL: %[4]s
        groupRoles:
          admins: [admin]
          finance: [finance]
        defaultRoles: [member]
    roles:
      admin:   {permissions: ["*"], inherits: [member]}
      finance: {permissions: ["ledger:read"]}
      member:  {permissions: ["docs:read"]}
  - id: initech
    name: Initech
    methods:
      - type: social
        provider: generic
        clientID: %[5]s
        clientSecret: %[6]s
        authURL: %[7]s/auth
        tokenURL: %[7]s/token
        userinfoURL: %[7]s/userinfo
        idField: sub
        emailField: email
        emailVerifiedField: email_verified
        scopes: [openid, email, profile]
        groupsClaim: groups
        groupRoles:
          managers: [manager]
          staff: [staff]
    roles:
      manager: {permissions: ["reports:read"], inherits: [staff]}
      staff:   {permissions: ["docs:read"]}
  - id: umbrella
    name: Umbrella Corporation
    methods:
      - type: saml
        idpMetadataURL: %[4]s
        groupRoles:
          admins: [admin]
        defaultRoles: [member]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
`, kc.Issuer(keycloak.RealmOIDC), keycloak.OIDCClientID, keycloak.OIDCClientSecret,
		kc.SAMLDescriptorURL(keycloak.RealmSAML),
		keycloak.OAuthClientID, keycloak.OAuthClientSecret, oauth)
}

// ssoEnv is one Keycloak, one stack in production cookie mode and the TLS
// front before its Envoy.
type ssoEnv struct {
	stack     *harness
	kc        *keycloak.Server
	transport *http.Transport
	port      int // Envoy's, named in every tenant origin
}

// origin is tenant's origin as a browser sees it: https, on Envoy's port
// (the browser's transport dials the TLS front for it). Envoy passes that
// port to tenantgate, which puts it in its callback, ACS and entity id.
func (e *ssoEnv) origin(tenant string) string {
	return fmt.Sprintf("https://%s.%s:%d", tenant, baseDomain, e.port)
}

// ssoIdentity is what the upstream must receive for an SSO session.
type ssoIdentity struct {
	tenant, email, roles, method string
}

// TestSSOEndToEnd signs people in to three tenants through a real Keycloak
// (OIDC, SAML 2.0 and generic OAuth2 realms) behind the real Envoy and a
// real `tenantgate serve`, with a cookie-jar client filling in Keycloak's
// own login form, and then tries to carry codes, assertions and sessions
// from one tenant to another. Keycloak starts once for all of it.
//
// tenantgate runs as in production (Secure, __Host- cookies, https
// origins) behind a TLS front: with --insecure-cookies the SAML attempt
// cookie is SameSite=Lax, which a browser withholds from Keycloak's
// cross-site POST to the ACS, while Go's cookie jar ignores SameSite, so a
// plain-http run would pass where a browser fails. In production mode the
// jar and a browser agree: the SAML attempt cookie is SameSite=None;
// Secure, every other cookie rides a same-site request or a top-level GET.
func TestSSOEndToEnd(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	proc.Envoy(t) // skip or fail before paying for Keycloak
	began := time.Now()

	// Envoy's port is in the realms' redirect URIs, so it is reserved
	// before Keycloak imports them. Keycloak boots while tenantgate
	// builds; the tenant file, which names Keycloak's URL, is written once
	// it is up.
	envoyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { envoyLn.Close() })
	e := &ssoEnv{port: envoyLn.Addr().(*net.TCPAddr).Port}
	waitKeycloak := keycloak.StartAsync(t, keycloak.Options{Origins: keycloak.Origins{
		Acme: e.origin("acme"), Globex: e.origin("globex"), Initech: e.origin("initech"),
	}})
	var kcReady time.Duration
	tenants := func() string {
		e.kc = waitKeycloak()
		kcReady = time.Since(began)
		return ssoTenantFile(e.kc)
	}
	// An admin token, for `tenantgate audit list --server` below.
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte("e2e-audit-admin-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Debug logs and traces on, for the last subtest: neither may hold a
	// client secret, password or session.
	sink := otlpsink.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.HTTPAddr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	e.stack = startHarness(t, stack.Tenants(tenants), stack.LoopbackHTTPIdP(), stack.SecureCookies(), stack.EnvoyPort(envoyLn),
		stack.ServeArgs("--admin-token-file", tokenFile, "--log-level", "debug"))
	frontLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.transport = e.stack.tlsFront(t, frontLn)
	stackReady := time.Since(began)
	defer func() {
		t.Logf("timing: keycloak ready after %s (tenantgate built meanwhile), stack up %s later, sign-in flows %s, total %s",
			kcReady.Round(time.Millisecond), (stackReady - kcReady).Round(time.Millisecond),
			(time.Since(began) - stackReady).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	}()

	alice := kcUser(t, keycloak.RealmOIDC, "alice")
	carol := kcUser(t, keycloak.RealmSAML, "carol")
	erin := kcUser(t, keycloak.RealmOAuth, "erin")
	sessions := map[string]*http.Cookie{} // tenant → a session signed in there

	t.Run("oidc: acme signs in through Keycloak, a code taken to initech is refused", func(t *testing.T) {
		b := e.newBrowser(t)
		start, page := e.toIdP(t, b, "acme", "/admin/reports", keycloak.RealmOIDC)
		if c := attemptCookie(t, start); c.SameSite != http.SameSiteLaxMode {
			t.Errorf("oidc attempt cookie SameSite = %v, want Lax (the provider comes back with a top-level GET)", c.SameSite)
		}
		back := e.loginAtIdP(t, b, page, alice)
		callback := e.callbackURL(t, back, "acme")
		stolen := e.attempts(b, "acme")

		// The same code and state at initech's callback, in a browser that
		// has an initech attempt of its own, and in that browser's attempt
		// with acme's code swapped in: neither signs anyone in.
		x := e.newBrowser(t)
		xStart, _ := e.toIdP(t, x, "initech", "/", keycloak.RealmOAuth)
		xState := queryOf(t, xStart, "state")
		e.refused(t, x, rehost(t, callback, e.origin("initech")), "acme's callback query at initech")
		swapped := rehost(t, callback, e.origin("initech"))
		swapped.RawQuery = withParam(swapped.Query(), "state", xState).Encode()
		e.refused(t, x, swapped, "acme's code with initech's own attempt state")
		e.refused(t, b, rehost(t, callback, e.origin("initech")), "acme's callback at initech in the same browser")

		// The code was not spent by those attempts: acme still accepts it.
		session := e.signedIn(t, b.get(t, callback.String()), "/admin/reports")
		e.reachAs(t, b, "acme", "/admin/reports", ssoIdentity{"acme", alice.Email, "admin,engineer,member", "oidc"})
		sessions["acme"] = session

		// Delivered again: the attempt is gone from the browser, and with
		// a copy of it the code is spent at Keycloak.
		e.refused(t, b, callback, "the same callback again")
		e.refused(t, e.browserWith(t, "acme", stolen), callback, "the same callback with a copy of the attempt cookie")
	})

	t.Run("audit: the Keycloak sign-in is in tenantgate audit list, its chain intact", func(t *testing.T) {
		server := []string{"--server", e.stack.Admin, "--admin-token-file", tokenFile}
		cmd := exec.Command(e.stack.Bin, append([]string{"audit", "list", "--tenant", "acme", "--since", "1h", "--event", "signin", "-o", "json"}, server...)...)
		cmd.Env = proc.Env()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tenantgate audit list: %v\n%s", err, out)
		}
		var evs []struct {
			Event, Actor, Subject, Email, Method, Client, Outcome, Hash string
		}
		if err := json.Unmarshal(out, &evs); err != nil {
			t.Fatalf("audit list -o json: %v\n%s", err, out)
		}
		var found bool
		for _, ev := range evs {
			if ev.Outcome == "success" && ev.Method == "oidc" && ev.Email == alice.Email {
				found = ev.Actor != "" && ev.Actor == ev.Subject && ev.Client != "" && ev.Hash != ""
			}
		}
		if !found {
			t.Fatalf("no successful oidc sign-in of %s in acme's audit trail:\n%s", alice.Email, out)
		}
		// A refused callback (the code carried to initech) is initech's
		// event, with its reason.
		cmd = exec.Command(e.stack.Bin, append([]string{"audit", "list", "--tenant", "initech", "--event", "signin", "-o", "json"}, server...)...)
		cmd.Env = proc.Env()
		if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), `"outcome": "refused"`) {
			t.Errorf("initech's refused sign-ins (%v):\n%s", err, out)
		}
		cmd = exec.Command(e.stack.Bin, append([]string{"audit", "verify", "--tenant", "acme"}, server...)...)
		cmd.Env = proc.Env()
		if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: tenant acme:") {
			t.Errorf("tenantgate audit verify: %v: %s", err, out)
		}
	})

	t.Run("oidc: groups decide what a person may reach", func(t *testing.T) {
		bob := kcUser(t, keycloak.RealmOIDC, "bob")
		b := e.newBrowser(t)
		_, page := e.toIdP(t, b, "acme", "/docs", keycloak.RealmOIDC)
		e.signedIn(t, b.get(t, e.callbackURL(t, e.loginAtIdP(t, b, page, bob), "acme").String()), "/docs")
		e.reachAs(t, b, "acme", "/docs", ssoIdentity{"acme", bob.Email, "member,support", "oidc"})

		hits := e.stack.Upstream.Hits()
		resp := b.get(t, e.origin("acme")+"/admin/users")
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "forbidden" {
			t.Errorf("support member on /admin/: want 403 forbidden, got\n%s", resp)
		}
		noUpstream(t, e.stack, hits)
	})

	t.Run("oidc: an unverified email never reaches the upstream", func(t *testing.T) {
		mallory := kcUser(t, keycloak.RealmOIDC, "mallory")
		b := e.newBrowser(t)
		_, page := e.toIdP(t, b, "acme", "/docs", keycloak.RealmOIDC)
		e.signedIn(t, b.get(t, e.callbackURL(t, e.loginAtIdP(t, b, page, mallory), "acme").String()), "/docs")
		// The spoofed header is dropped too: tenantgate sets no email.
		seen := e.reachAs(t, b, "acme", "/docs", ssoIdentity{"acme", "", "admin,member", "oidc"},
			header{"X-User-Email", mallory.Email})
		if v := seen.Values("x-user-email"); len(v) != 0 {
			t.Errorf("upstream got x-user-email %q for an unverified email", v)
		}
	})

	t.Run("saml: globex signs in through Keycloak, the assertion is refused at umbrella and when replayed", func(t *testing.T) {
		b := e.newBrowser(t)
		start, page := e.toIdP(t, b, "globex", "/ledger", keycloak.RealmSAML)
		if c := attemptCookie(t, start); c.SameSite != http.SameSiteNoneMode || !c.Secure {
			t.Errorf("saml attempt cookie SameSite=%v Secure=%v, want None and Secure (the ACS POST is cross-site)", c.SameSite, c.Secure)
		}
		post := e.loginAtIdP(t, b, page, carol)
		form := post.form(t, func(f keycloak.Form) bool { return f.Values.Has("SAMLResponse") })
		if got, want := form.Action.String(), e.origin("globex")+keycloak.SAMLACSPath; got != want {
			t.Fatalf("Keycloak posts the response to %s, want %s", got, want)
		}
		relay := form.Values.Get("RelayState")
		if relay != queryOf(t, start, "RelayState") {
			t.Errorf("RelayState %q is not the one tenantgate sent", relay)
		}
		stolen := e.attempts(b, "globex")
		response := form.Values.Get("SAMLResponse")

		// umbrella trusts the same IdP certificate; the assertion is still
		// not for it: not with umbrella's own attempt, not with globex's
		// RelayState, not unsolicited.
		x := e.newBrowser(t)
		xStart := x.get(t, e.origin("umbrella")+"/_auth/login?rd=%2F")
		if xStart.StatusCode != http.StatusFound {
			t.Fatalf("umbrella sign-in: want 302 to Keycloak, got\n%s", xStart)
		}
		umbrellaACS := e.origin("umbrella") + keycloak.SAMLACSPath
		for name, v := range map[string]url.Values{
			"with umbrella's own attempt":     {"SAMLResponse": {response}, "RelayState": {queryOf(t, xStart, "RelayState")}},
			"with globex's RelayState":        {"SAMLResponse": {response}, "RelayState": {relay}},
			"unsolicited (IdP-initiated off)": {"SAMLResponse": {response}},
		} {
			e.refusedPost(t, x, umbrellaACS, v, "globex's assertion at umbrella "+name)
		}
		e.refusedPost(t, b, umbrellaACS, url.Values{"SAMLResponse": {response}, "RelayState": {relay}},
			"globex's assertion at umbrella, from carol's browser")

		// Posted where it belongs, it signs carol in: the refusals above
		// did not burn it.
		resp, err := form.Submit(context.Background(), b.c)
		if err != nil {
			t.Fatal(err)
		}
		session := e.signedIn(t, b.read(t, resp), "/ledger")
		e.reachAs(t, b, "globex", "/ledger", ssoIdentity{"globex", carol.Email, "admin,finance,member", "saml"})
		sessions["globex"] = session

		// The same response again: from carol's browser (attempt used up),
		// and from one holding a copy of the attempt cookie (the assertion
		// id is remembered).
		again := url.Values{"SAMLResponse": {response}, "RelayState": {relay}}
		e.refusedPost(t, b, form.Action.String(), again, "the same SAML response again")
		e.refusedPost(t, e.browserWith(t, "globex", stolen), form.Action.String(), again,
			"the same SAML response with a copy of the attempt cookie")
	})

	t.Run("oauth2: initech signs in through Keycloak, a code taken to acme is refused", func(t *testing.T) {
		b := e.newBrowser(t)
		_, page := e.toIdP(t, b, "initech", "/reports", keycloak.RealmOAuth)
		callback := e.callbackURL(t, e.loginAtIdP(t, b, page, erin), "initech")

		x := e.newBrowser(t)
		xStart, _ := e.toIdP(t, x, "acme", "/", keycloak.RealmOIDC)
		swapped := rehost(t, callback, e.origin("acme"))
		swapped.RawQuery = withParam(swapped.Query(), "state", queryOf(t, xStart, "state")).Encode()
		e.refused(t, x, swapped, "initech's code with acme's own attempt state")

		session := e.signedIn(t, b.get(t, callback.String()), "/reports")
		sessions["initech"] = session
		// Roles come from Keycloak's groups at userinfo via groupsClaim and
		// groupRoles.
		e.reachAs(t, b, "initech", "/reports", ssoIdentity{"initech", erin.Email, "manager,staff", "social"})
	})

	t.Run("a session of one tenant is refused on every other tenant's host", func(t *testing.T) {
		if len(sessions) != 3 {
			t.Fatalf("needs the three sign-ins above; have %d", len(sessions))
		}
		for from, c := range sessions {
			for _, to := range []string{"acme", "globex", "initech", "umbrella"} {
				if to == from {
					continue
				}
				host := to + "." + baseDomain
				for _, creds := range []header{cookieHeader(c), {"Authorization", "Bearer " + c.Value}} {
					hits := e.stack.Upstream.Hits()
					resp := e.stack.send(t, request{host: host, target: "/docs", headers: []header{creds, {"x-tenant-id", from}}})
					if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_mismatch" {
						t.Errorf("%s session (%s) on %s: want 403 tenant_mismatch, got\n%s", from, creds.name, host, resp)
					}
					jsonDenial(t, resp)
					noUpstream(t, e.stack, hits)
				}
			}
		}
	})

	t.Run("oidc: sign-out ends the session here and at Keycloak", func(t *testing.T) {
		b := e.newBrowser(t)
		_, page := e.toIdP(t, b, "acme", "/docs", keycloak.RealmOIDC)
		session := e.signedIn(t, b.get(t, e.callbackURL(t, e.loginAtIdP(t, b, page, alice), "acme").String()), "/docs")

		// Keycloak's SSO session is live: another sign-in skips the form.
		login := mustParseURL(t, e.origin("acme")+"/_auth/login?rd=%2Fdocs")
		if _, again := e.startAt(t, b, login, keycloak.RealmOIDC); again.StatusCode != http.StatusFound {
			t.Fatalf("second sign-in before sign-out: want Keycloak's 302 straight back, got\n%s", again)
		}

		confirm := b.get(t, e.origin("acme")+"/_auth/logout")
		if confirm.StatusCode != http.StatusOK {
			t.Fatalf("GET /_auth/logout: want 200, got\n%s", confirm)
		}
		out := b.postForm(t, e.origin("acme")+"/_auth/logout", url.Values{"csrf": {csrfToken(t, confirm)}},
			header{"Origin", e.origin("acme")})
		if out.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /_auth/logout: want 303, got\n%s", out)
		}
		if c := out.cookie(sessionCookie); c == nil || c.MaxAge >= 0 {
			t.Errorf("POST /_auth/logout does not clear the session cookie: %q", out.Header["Set-Cookie"])
		}
		endSession := location(t, out)
		q := endSession.Query()
		if !strings.HasPrefix(endSession.String(), e.kc.Issuer(keycloak.RealmOIDC)+"/") || q.Get("id_token_hint") == "" ||
			q.Get("post_logout_redirect_uri") != e.origin("acme")+"/_auth/signed-out" {
			t.Fatalf("after sign-out, Location %s: want Keycloak's end_session_endpoint with id_token_hint and post_logout_redirect_uri", endSession.Redacted())
		}
		back := e.followIdP(t, b, b.get(t, endSession.String()))
		if back.StatusCode != http.StatusFound || !strings.HasPrefix(location(t, back).String(), e.origin("acme")+"/_auth/signed-out") {
			t.Fatalf("Keycloak's logout: want a 302 back to /_auth/signed-out, got\n%s", back)
		}
		if done := b.get(t, location(t, back).String()); done.StatusCode != http.StatusOK {
			t.Errorf("GET /_auth/signed-out: want 200, got\n%s", done)
		}

		hits := e.stack.Upstream.Hits()
		if resp := e.stack.send(t, request{host: "acme." + baseDomain, target: "/docs",
			headers: []header{{"Authorization", "Bearer " + session.Value}}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("signed-out session as bearer: want 401, got\n%s", resp)
		}
		noUpstream(t, e.stack, hits)
		// The browser is signed out here, and Keycloak asks for the
		// password again.
		if _, page := e.toIdP(t, b, "acme", "/docs", keycloak.RealmOIDC); page.StatusCode != http.StatusOK {
			t.Errorf("sign-in after sign-out: want Keycloak's login form, got\n%s", page)
		} else {
			page.form(t, keycloak.IsLoginForm)
		}
	})

	t.Run("oidc mfa: Keycloak's password-only sign-in refused, password and TOTP code accepted", func(t *testing.T) {
		e.mfaAtKeycloak(t, tokenFile, sink)
	})

	t.Run("logs and spans: no client secret, password, token or session, IdP calls traced", func(t *testing.T) {
		secrets := []string{keycloak.OIDCClientSecret, keycloak.OIDCMFAClientSecret, keycloak.OAuthClientSecret, alice.Password, carol.Password, erin.Password,
			kcUser(t, keycloak.RealmOIDC, "olivia").Password, "e2e-audit-admin-token-0123456789abcdef"}
		for _, c := range sessions {
			secrets = append(secrets, c.Value)
		}
		// The IdP spans of the sign-ins above: discovery and JWKS (OIDC),
		// metadata (SAML), the code exchanges and userinfo (OAuth2).
		for _, kind := range []string{"discovery", "jwks", "metadata", "token", "userinfo"} {
			sink.WaitFor(t, 10*time.Second, "IdP request "+kind, func(sp otlpsink.Span) bool {
				return sp.Name == telemetry.SpanIdP && sp.Attrs["tenantgate.idp.kind"] == kind
			})
		}
		// Every IdP request says what it is for: none falls back to
		// idpclient.KindOther (the span and the metric share the kind).
		for _, sp := range sink.Spans() {
			if sp.Name == telemetry.SpanIdP && sp.Attrs["tenantgate.idp.kind"] == string(idpclient.KindOther) {
				t.Errorf("an IdP request of kind %q: a call site does not name its kind (idpclient.WithKind)", idpclient.KindOther)
			}
		}
		logs := e.stack.Tenantgate.Output()
		for _, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("tenantgate's output holds a secret (%d bytes, starting %.6q)", len(secret), secret)
			}
			for _, sp := range sink.Spans() {
				if strings.Contains(sp.Raw, secret) {
					t.Errorf("span %q holds a secret (%d bytes, starting %.6q)", sp.Name, len(secret), secret)
				}
			}
		}
	})
}

// kcUser returns a realm's fixture user.
func kcUser(t *testing.T, realm, name string) keycloak.User {
	t.Helper()
	u, ok := keycloak.UserByName(realm, name)
	if !ok {
		t.Fatalf("no user %s in realm %s", name, realm)
	}
	return u
}

// browser is a client with its own cookie jar, reaching tenants through the
// TLS front and Keycloak directly. It follows no redirect by itself, so
// every hop can be checked.
type browser struct {
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *ssoEnv) newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{jar: jar, c: &http.Client{
		Jar:           jar,
		Transport:     e.transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// browserWith is a fresh browser holding only the given cookies of
// tenant's host: an attacker who copied them.
func (e *ssoEnv) browserWith(t *testing.T, tenant string, cs []*http.Cookie) *browser {
	t.Helper()
	b := e.newBrowser(t)
	b.jar.SetCookies(mustParseURL(t, e.origin(tenant)+"/"), cs)
	return b
}

// attempts returns the attempt cookies b holds for tenant's host.
func (e *ssoEnv) attempts(b *browser, tenant string) []*http.Cookie {
	var out []*http.Cookie
	u, _ := url.Parse(e.origin(tenant) + "/")
	for _, c := range b.jar.Cookies(u) {
		if strings.HasPrefix(c.Name, attemptCookiePrefix) {
			out = append(out, c)
		}
	}
	return out
}

// read reads resp's body and returns it as a response.
func (b *browser) read(t *testing.T, resp *http.Response) *response {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", resp.Request.Method, resp.Request.URL.Redacted(), err)
	}
	return &response{Response: resp, body: body}
}

func (b *browser) do(t *testing.T, req *http.Request) *response {
	t.Helper()
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	return b.read(t, resp)
}

// get navigates to rawURL.
func (b *browser) get(t *testing.T, rawURL string, hs ...header) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		req.Header.Add(h.name, h.value)
	}
	return b.do(t, req)
}

// postForm submits form to rawURL.
func (b *browser) postForm(t *testing.T, rawURL string, form url.Values, hs ...header) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range hs {
		req.Header.Set(h.name, h.value)
	}
	return b.do(t, req)
}

// form returns the first HTML form on the page that match accepts.
func (r *response) form(t *testing.T, match func(keycloak.Form) bool) keycloak.Form {
	t.Helper()
	page := *r.Response
	page.Body = io.NopCloser(bytes.NewReader(r.body))
	f, err := keycloak.ReadForm(&page, match)
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	return f
}

// location returns r's Location resolved against its request URL.
func location(t *testing.T, r *response) *url.URL {
	t.Helper()
	loc, err := r.Location()
	if err != nil {
		t.Fatalf("no Location: %v\n%s", err, r)
	}
	return loc
}

// queryOf returns the query parameter name of r's Location.
func queryOf(t *testing.T, r *response, name string) string {
	t.Helper()
	v := location(t, r).Query().Get(name)
	if v == "" {
		t.Fatalf("Location has no %s:\n%s", name, r)
	}
	return v
}

// toIdP navigates b to path on tenant's host without a session and follows
// tenantgate until the browser reaches realm at Keycloak: Check sends a
// browser to /_auth/login, and a tenant whose only method is SSO sends it
// on to its provider with a fresh attempt cookie. It returns that redirect
// (start) and Keycloak's answer (its login form, or a redirect back when
// the browser already has a Keycloak session).
func (e *ssoEnv) toIdP(t *testing.T, b *browser, tenant, path, realm string) (start, idp *response) {
	t.Helper()
	hits := e.stack.Upstream.Hits()
	nav := b.get(t, e.origin(tenant)+path)
	if nav.StatusCode != http.StatusFound {
		t.Fatalf("GET %s on %s without a session: want 302 to the sign-in page, got\n%s", path, tenant, nav)
	}
	login := location(t, nav)
	if login.Host != nav.Request.URL.Host || login.Path != "/_auth/login" || login.Query().Get("rd") != path {
		t.Fatalf("GET %s on %s: Location %s, want /_auth/login?rd=%s on the same host", path, tenant, login, path)
	}
	noUpstream(t, e.stack, hits)
	return e.startAt(t, b, login, realm)
}

// startAt opens the sign-in page login with b; the tenant's only method
// being SSO, tenantgate must answer with a redirect to realm at Keycloak and
// an attempt cookie. It returns that redirect (start) and Keycloak's answer.
func (e *ssoEnv) startAt(t *testing.T, b *browser, login *url.URL, realm string) (start, idp *response) {
	t.Helper()
	start = b.get(t, login.String())
	if start.StatusCode != http.StatusFound || !strings.HasPrefix(location(t, start).String(), e.kc.Issuer(realm)+"/") {
		t.Fatalf("%s: want 302 to Keycloak realm %s, got\n%s", login, realm, start)
	}
	attemptCookie(t, start)
	return start, b.get(t, location(t, start).String())
}

// attemptCookie returns the attempt cookie r sets, checking what every
// attempt cookie must be: host-only, HttpOnly, Secure, Path=/, short-lived.
func attemptCookie(t *testing.T, r *response) *http.Cookie {
	t.Helper()
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, attemptCookiePrefix) && c.Value != "" {
			if !c.HttpOnly || !c.Secure || c.Domain != "" || c.Path != "/" || c.MaxAge <= 0 || c.MaxAge > 600 {
				t.Errorf("attempt cookie %s: HttpOnly=%v Secure=%v Domain=%q Path=%q Max-Age=%d", c.Name, c.HttpOnly, c.Secure, c.Domain, c.Path, c.MaxAge)
			}
			return c
		}
	}
	t.Fatalf("no attempt cookie set:\n%s", r)
	return nil
}

// loginAtIdP fills Keycloak's login form on page as u and returns
// Keycloak's answer once it stops redirecting within Keycloak.
func (e *ssoEnv) loginAtIdP(t *testing.T, b *browser, page *response, u keycloak.User) *response {
	t.Helper()
	f := page.form(t, keycloak.IsLoginForm)
	f.Values.Set("username", u.Username)
	f.Values.Set("password", u.Password)
	resp, err := f.Submit(context.Background(), b.c)
	if err != nil {
		t.Fatal(err)
	}
	return e.followIdP(t, b, b.read(t, resp))
}

// followIdP follows r's redirects while they stay on Keycloak.
func (e *ssoEnv) followIdP(t *testing.T, b *browser, r *response) *response {
	t.Helper()
	kc := mustParseURL(t, e.kc.URL())
	for range 10 {
		if r.StatusCode < 300 || r.StatusCode > 399 {
			return r
		}
		next := location(t, r)
		if next.Host != kc.Host {
			return r
		}
		r = b.get(t, next.String())
	}
	t.Fatalf("Keycloak redirects more than 10 times:\n%s", r)
	return nil
}

// callbackURL checks that Keycloak's answer is a redirect to tenant's
// callback carrying a code, and returns it.
func (e *ssoEnv) callbackURL(t *testing.T, r *response, tenant string) *url.URL {
	t.Helper()
	if r.StatusCode != http.StatusFound {
		t.Fatalf("after the login form: want Keycloak's 302 to %s's callback, got\n%s", tenant, r)
	}
	u := location(t, r)
	if u.Scheme+"://"+u.Host != e.origin(tenant) || u.Path != "/_auth/callback" || u.Query().Get("code") == "" {
		t.Fatalf("Keycloak sends the browser to %s, want %s/_auth/callback?code=…", u.Redacted(), e.origin(tenant))
	}
	return u
}

// rehost returns u on origin instead.
func rehost(t *testing.T, u *url.URL, origin string) *url.URL {
	t.Helper()
	o := mustParseURL(t, origin)
	v := *u
	v.Scheme, v.Host = o.Scheme, o.Host
	return &v
}

// withParam returns a copy of q with name set to value.
func withParam(q url.Values, name, value string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	out.Set(name, value)
	return out
}

// signedIn checks tenantgate's answer to a completed sign-in: a 303 to rd on
// the same host with a production session cookie, which it returns.
func (e *ssoEnv) signedIn(t *testing.T, r *response, rd string) *http.Cookie {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("completing sign-in: want 303 to %s, got\n%s\n--- tenantgate log tail ---\n%s", rd, r, tail(e.stack.Tenantgate.Output(), 4<<10))
	}
	if loc := location(t, r); loc.Host != r.Request.URL.Host || loc.RequestURI() != rd {
		t.Errorf("after sign-in, Location %s, want %s on %s", loc, rd, r.Request.URL.Host)
	}
	c := r.cookie(sessionCookie)
	if c == nil || c.Value == "" {
		t.Fatalf("completing sign-in: no %s cookie in %q", sessionCookie, r.Header["Set-Cookie"])
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || c.Path != "/" {
		t.Errorf("session cookie: HttpOnly=%v Secure=%v SameSite=%v Domain=%q Path=%q; want HttpOnly, Secure, Lax, host-only, Path=/",
			c.HttpOnly, c.Secure, c.SameSite, c.Domain, c.Path)
	}
	return c
}

// reachAs navigates b to path on tenant's host and checks that the
// upstream served it once, with exactly the identity want.
func (e *ssoEnv) reachAs(t *testing.T, b *browser, tenant, path string, want ssoIdentity, hs ...header) echo.Request {
	t.Helper()
	hits := e.stack.Upstream.Hits()
	seen := upstreamSaw(t, e.stack, b.get(t, e.origin(tenant)+path, hs...), hits)
	for name, v := range map[string]string{
		"x-tenant-id": want.tenant, "x-user-email": want.email, "x-user-roles": want.roles, "x-auth-method": want.method,
	} {
		got := seen.Values(name)
		if v == "" && len(got) != 0 {
			t.Errorf("upstream got %s = %q, want none", name, got)
		}
		if v != "" && !slices.Equal(got, []string{v}) {
			t.Errorf("upstream got %s = %q, want exactly [%s]", name, got, v)
		}
	}
	if id := seen.Values("x-user-id"); len(id) != 1 || id[0] == "" {
		t.Errorf("upstream got x-user-id = %q, want one value", id)
	}
	return seen
}

// refused delivers u with b and checks that tenantgate refused it: a
// client error, no session cookie, the upstream untouched.
func (e *ssoEnv) refused(t *testing.T, b *browser, u *url.URL, what string) {
	t.Helper()
	hits := e.stack.Upstream.Hits()
	e.wantRefusal(t, b.get(t, u.String()), what)
	noUpstream(t, e.stack, hits)
}

// refusedPost is refused for a form POST.
func (e *ssoEnv) refusedPost(t *testing.T, b *browser, rawURL string, form url.Values, what string) {
	t.Helper()
	hits := e.stack.Upstream.Hits()
	e.wantRefusal(t, b.postForm(t, rawURL, form), what)
	noUpstream(t, e.stack, hits)
}

func (e *ssoEnv) wantRefusal(t *testing.T, r *response, what string) {
	t.Helper()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("%s: want 400, got\n%s", what, r)
	}
	if c := r.cookie(sessionCookie); c != nil && c.Value != "" {
		t.Errorf("%s: a session cookie was set", what)
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
