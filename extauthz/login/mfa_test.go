package login

import (
	"bytes"
	"encoding/base32"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/audit"
	"github.com/tenantgate/tenantgate/extauthz/cookie"
	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/extauthz/passkey/passkeytest"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// withSealer gives the handler the master sealer the minter uses: the
// second step needs it for its state and the TOTP secrets.
func withSealer(h *Handler) { h.Sealer = h.Minter.Sealer }

// newMFAEnv is the usual env plus tenants "vault" (mfa required) and
// "opt" (mfa optional), alice a member of both.
func newMFAEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, withSealer)
	pw := []tenants.Method{{Type: tenants.MethodPassword}}
	roles := map[string]tenants.Role{"member": {}}
	applyTenants(t, e,
		tenants.Tenant{ID: "vault", Name: "Vault Inc", Methods: pw, Roles: roles, MFA: tenants.MFARequired},
		tenants.Tenant{ID: "opt", Name: "Opt Ltd", Methods: pw, Roles: roles, MFA: tenants.MFAOptional})
	for _, id := range []string{"vault", "opt"} {
		if _, err := e.store.AddMember(t.Context(), id, tenants.NewMember{Email: "alice@acme.test", Roles: []string{"member"}}); err != nil {
			t.Fatal(err)
		}
	}
	e.refresh()
	return e
}

const mfaCookie = "__Host-tenantgate-mfa"

// challengeValue matches the random challenge of the passkey options in a
// code page (JSON in an HTML attribute).
var challengeValue = regexp.MustCompile(`challenge&#34;:&#34;[A-Za-z0-9_-]+&#34;`)

var (
	secretRE   = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)
	recoveryRE = regexp.MustCompile(`<li>([0-9a-z]{5}-[0-9a-z]{5})</li>`)
)

// mfaStep signs in with email and pw on host and returns the state cookie
// the password form answered with, checking it is a 303 to /_auth/mfa and
// sets no session.
func (e *env) mfaStep(host, email, pw string) *http.Cookie {
	e.t.Helper()
	resp := e.signIn(host, "", email, pw, "/docs")
	readBody(e.t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != PathMFA {
		e.t.Fatalf("sign-in: %d to %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), PathMFA)
	}
	if c := cookieNamed(resp, "__Host-tenantgate"); c != nil {
		e.t.Fatal("the password alone set a session cookie")
	}
	st := cookieNamed(resp, mfaCookie)
	if st == nil || st.Value == "" || st.MaxAge <= 0 || !st.HttpOnly || !st.Secure || st.Path != "/" || st.SameSite != http.SameSiteLaxMode {
		e.t.Fatalf("state cookie %+v", st)
	}
	if !cookie.Owned(st.Name) {
		e.t.Fatalf("the state cookie %s is not one Check takes out of the upstream's Cookie header", st.Name)
	}
	return st
}

// postCode posts code to /_auth/mfa with the state cookie.
func (e *env) postCode(host string, state *http.Cookie, code string) *http.Response {
	e.t.Helper()
	return e.postForm(host, PathMFA, url.Values{"code": {code}}, state)
}

// enrol signs alice in to vault (mfa required, no factor yet), reads the
// secret off the enrolment page and confirms it. It returns the secret,
// the recovery codes shown, and the session.
func (e *env) enrol(host string) ([]byte, []string, *session.Claims) {
	e.t.Helper()
	st := e.mfaStep(host, "alice@acme.test", alicePassword)
	page := wantStatus(e.t, "enrolment page", e.do("GET", host, PathMFA, nil, nil, st), 200)
	m := secretRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `<svg class="qr"`) {
		e.t.Fatalf("the enrolment page shows no QR code or secret:\n%s", page)
	}
	secret := decodeSecret(e.t, m[1])
	resp := e.postCode(host, st, otp.Code(secret, otp.Step(e.clock.Now())))
	body := wantStatus(e.t, "enrolment", resp, 200)
	var codes []string
	for _, m := range recoveryRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != otp.RecoveryCodes || !strings.Contains(body, `href="/docs"`) {
		e.t.Fatalf("recovery codes page: %d codes\n%s", len(codes), body)
	}
	return secret, codes, e.sessionOf(resp)
}

// lastCookie is the cookie called name a browser keeps from resp: the
// last one set (an answer may clear a cookie and set it anew).
func lastCookie(resp *http.Response, name string) *http.Cookie {
	var last *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			last = c
		}
	}
	return last
}

func decodeSecret(t *testing.T, text string) []byte {
	t.Helper()
	s, err := secretEncodingForTest.DecodeString(strings.ReplaceAll(text, " ", ""))
	if err != nil || len(s) != otp.SecretBytes {
		t.Fatalf("secret %q: %v", text, err)
	}
	return s
}

// sessionOf verifies the session cookie resp set.
func (e *env) sessionOf(resp *http.Response) *session.Claims {
	e.t.Helper()
	c := cookieNamed(resp, "__Host-tenantgate")
	if c == nil || c.Value == "" {
		e.t.Fatal("no session cookie")
	}
	e.refresh()
	claims, err := verifyOwnTenant(e.verifier, e.snaps.Load(), c.Value)
	if err != nil {
		e.t.Fatalf("session: %v", err)
	}
	return claims
}

// TestMFARequired: under mfa required, a person without a factor enrols
// right after the password and gets a session only then, with amr pwd
// and otp; the state is single use; later sign-ins ask for a code, a code
// is accepted once, and a recovery code works once.
func TestMFARequired(t *testing.T) {
	e := newMFAEnv(t)
	const host = "vault.app.test"
	secret, codes, c := e.enrol(host)
	if !slices.Equal(c.AMR, []string{session.AMRPassword, session.AMROTP}) || !c.MFA() {
		t.Errorf("session amr %v", c.AMR)
	}
	f, err := e.store.SecondFactors(t.Context(), e.snaps.Load().BySlug("vault").InternalID, c.Subject)
	if err != nil || !f.Enrolled() || len(f.RecoveryCodes) != otp.RecoveryCodes || strings.Contains(string(f.TOTP), string(secret)) {
		t.Fatalf("stored factors %+v, %v", f, err)
	}
	for _, code := range codes {
		for _, h := range f.RecoveryCodes {
			if strings.Contains(h, code) {
				t.Fatal("a recovery code is stored as itself")
			}
		}
	}

	t.Run("code, then the same code again", func(t *testing.T) {
		e.clock.Advance(otp.Period)
		code := otp.Code(secret, otp.Step(e.clock.Now()))
		resp := e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), code)
		wantStatus(t, "sign-in with a code", resp, http.StatusSeeOther)
		if resp.Header.Get("Location") != "/docs" || !e.sessionOf(resp).MFA() {
			t.Fatalf("to %q", resp.Header.Get("Location"))
		}
		body := wantStatus(t, "the same code again", e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), code), http.StatusUnauthorized)
		if !strings.Contains(body, html.EscapeString(invalidCredentialsOrCode)) {
			t.Errorf("reused code page:\n%s", body)
		}
	})
	t.Run("state used twice", func(t *testing.T) {
		e.clock.Advance(otp.Period)
		st := e.mfaStep(host, "alice@acme.test", alicePassword)
		wantStatus(t, "wrong code", e.postCode(host, st, "000000"), http.StatusUnauthorized)
		wantStatus(t, "the state again", e.postCode(host, st, otp.Code(secret, otp.Step(e.clock.Now()))), http.StatusBadRequest)
	})
	t.Run("wrong password looks like a right one", func(t *testing.T) {
		e.clock.Advance(otp.Period)
		right := e.mfaStep(host, "alice@acme.test", alicePassword)
		wrong := e.mfaStep(host, "alice@acme.test", "not-her-password")
		unknown := e.mfaStep(host, "nobody@acme.test", "whatever")
		if len(right.Value) != len(wrong.Value) {
			t.Errorf("state sizes %d (right password) and %d (wrong)", len(right.Value), len(wrong.Value))
		}
		pages := map[string]string{}
		for name, st := range map[string]*http.Cookie{"right": right, "wrong": wrong, "unknown": unknown} {
			page := wantStatus(t, name+" code page", e.do("GET", host, PathMFA, nil, nil, st), 200)
			pages[name] = challengeValue.ReplaceAllString(csrfValue.ReplaceAllString(page, ""), "")
		}
		if pages["right"] != pages["wrong"] || pages["right"] != pages["unknown"] {
			t.Error("the code page differs between a right and a wrong password")
		}
		if !strings.Contains(pages["right"], `id="passkey-signin"`) {
			t.Error("the code page offers no passkey")
		}
		// The right code after a wrong password is refused like a wrong code.
		code := otp.Code(secret, otp.Step(e.clock.Now()))
		a := wantStatus(t, "right code after a wrong password", e.postCode(host, wrong, code), http.StatusUnauthorized)
		b := wantStatus(t, "wrong code after the right password", e.postCode(host, right, "123456"), http.StatusUnauthorized)
		if csrfValue.ReplaceAllString(a, "") != csrfValue.ReplaceAllString(b, "") {
			t.Error("the refusals differ")
		}
	})
	t.Run("recovery code once", func(t *testing.T) {
		typed := strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))
		resp := e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), typed)
		wantStatus(t, "recovery code", resp, http.StatusSeeOther)
		if !e.sessionOf(resp).MFA() {
			t.Error("a recovery code sign-in is not MFA")
		}
		wantStatus(t, "recovery code again", e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), codes[3]), http.StatusUnauthorized)
		f, _ := e.store.SecondFactors(t.Context(), e.snaps.Load().BySlug("vault").InternalID, c.Subject)
		if len(f.RecoveryCodes) != otp.RecoveryCodes-1 {
			t.Errorf("%d recovery codes left, want %d", len(f.RecoveryCodes), otp.RecoveryCodes-1)
		}
	})
	t.Run("codes count against the account's limit", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		for range e.h.limits.AccountFailures {
			wantStatus(t, "wrong code", e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), "111111"), http.StatusUnauthorized)
		}
		code := otp.Code(secret, otp.Step(e.clock.Now()))
		wantStatus(t, "the right code once locked", e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), code), http.StatusUnauthorized)
	})
	if strings.Contains(e.logs.String(), "alice@acme.test") || strings.Contains(e.logs.String(), codes[0]) {
		t.Error("the log holds an email or a recovery code")
	}
}

// TestMFAOptional: without a factor a member signs in with the password
// alone (amr pwd, x-auth-mfa false); enrolling from the account page makes
// the next sign-in ask for a code.
func TestMFAOptional(t *testing.T) {
	e := newMFAEnv(t)
	const host = "opt.app.test"
	resp := e.signIn(host, "", "alice@acme.test", alicePassword, "/docs")
	wantStatus(t, "sign-in", resp, http.StatusSeeOther)
	c := e.sessionOf(resp)
	if !slices.Equal(c.AMR, []string{session.AMRPassword}) || c.MFA() {
		t.Fatalf("amr %v", c.AMR)
	}
	sess := cookieNamed(resp, "__Host-tenantgate")
	account := wantStatus(t, "account page", e.do("GET", host, PathAccount, nil, nil, sess), 200)
	if !strings.Contains(account, `value="totp-enrol"`) {
		t.Fatalf("the account page offers no enrolment:\n%s", account)
	}
	resp = e.postForm(host, PathAccount, url.Values{"action": {"totp-enrol"}}, sess)
	wantStatus(t, "start enrolment", resp, http.StatusSeeOther)
	st := cookieNamed(resp, mfaCookie)
	page := wantStatus(t, "enrolment page", e.do("GET", host, PathMFA, nil, nil, st), 200)
	secret := decodeSecret(t, secretRE.FindStringSubmatch(page)[1])
	// A wrong first code shows the same secret again, under a new state;
	// the old state is spent.
	resp = e.postCode(host, st, "000001")
	if again := wantStatus(t, "a wrong first code", resp, http.StatusBadRequest); !strings.Contains(again, otp.SecretText(secret)) {
		t.Fatal("the enrolment page after a wrong code shows another secret")
	}
	code := otp.Code(secret, otp.Step(e.clock.Now()))
	wantStatus(t, "the spent state", e.postCode(host, st, code), http.StatusBadRequest)
	body := wantStatus(t, "confirm", e.postCode(host, lastCookie(resp, mfaCookie), code), 200)
	if !strings.Contains(body, `href="/_auth/account"`) || len(recoveryRE.FindAllString(body, -1)) != otp.RecoveryCodes {
		t.Fatalf("after enrolment:\n%s", body)
	}
	e.clock.Advance(otp.Period)
	resp = e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), otp.Code(secret, otp.Step(e.clock.Now())))
	wantStatus(t, "sign-in with a code", resp, http.StatusSeeOther)
	if !e.sessionOf(resp).MFA() {
		t.Error("not MFA")
	}
}

// TestMFAOffUnchanged: a tenant without mfa signs in at once, amr pwd, and
// has no second-step route.
func TestMFAOffUnchanged(t *testing.T) {
	e := newMFAEnv(t)
	resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/docs")
	wantStatus(t, "sign-in", resp, http.StatusSeeOther)
	if c := e.sessionOf(resp); c.MFA() || !slices.Equal(c.AMR, []string{session.AMRPassword}) {
		t.Errorf("amr %v", c.AMR)
	}
	wantStatus(t, "second step on a tenant without one", e.do("GET", "acme.app.test", PathMFA, nil, nil), http.StatusNotFound)
	wantStatus(t, "wrong password", e.signIn("acme.app.test", "", "alice@acme.test", "nope", "/docs"), http.StatusUnauthorized)
}

// secretEncodingForTest reads the secret as the page shows it (base32,
// no padding, spaces removed).
var secretEncodingForTest = base32.StdEncoding.WithPadding(base32.NoPadding)

// stateHandler is a handler with a sealer and a fixed clock, and a request
// of tenant vault carrying the state cookie value v: what openMFAState
// reads.
func stateHandler(tb testing.TB, now time.Time) (*Handler, func(v string, tenant *tenants.Tenant) *request) {
	tb.Helper()
	s, err := seal.NewSealer(bytes.Repeat([]byte{7}, seal.MasterKeySize))
	if err != nil {
		tb.Fatal(err)
	}
	h := &Handler{Sealer: s, Now: func() time.Time { return now }}
	h.init()
	return h, func(v string, tenant *tenants.Tenant) *request {
		r := httptest.NewRequest("GET", "/_auth/mfa", nil)
		r.Header.Set("Cookie", mfaCookie+"="+v)
		return &request{r: r, res: tenants.Resolution{Tenant: tenant}}
	}
}

// TestMFAStateBinding: a state opens only for the tenant it was sealed
// for, until it expires, in the version and shape this build writes.
func TestMFAStateBinding(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h, req := stateHandler(t, now)
	vault := &tenants.Tenant{ID: "vault", InternalID: "ivault"}
	other := &tenants.Tenant{ID: "other", InternalID: "iother"}
	seal := func(st mfaState) string {
		v, err := sealJSON(h.mfaSealer, st, mfaContext(st.Tenant))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := mfaState{V: mfaStateVersion, ID: "id", Tenant: "ivault", User: "u", Step: stepVerify, Expires: now.Add(time.Minute).Unix()}
	if h.openMFAState(req(seal(good), vault)) == nil {
		t.Fatal("a good state does not open")
	}
	for name, v := range map[string]string{
		"another tenant's":       seal(func() mfaState { s := good; s.Tenant = "iother"; return s }()),
		"expired":                seal(func() mfaState { s := good; s.Expires = now.Unix(); return s }()),
		"of another version":     seal(func() mfaState { s := good; s.V = 2; return s }()),
		"of an unknown step":     seal(func() mfaState { s := good; s.Step = "skip"; return s }()),
		"enrolment, no secret":   seal(func() mfaState { s := good; s.Step = stepEnrol; return s }()),
		"sealed by another key":  func() string { v, _ := sealJSON(h.loginState, good, mfaContext("ivault")); return v }(),
		"sealed for another use": func() string { v, _ := sealJSON(h.mfaSealer, good, "other"); return v }(),
	} {
		if h.openMFAState(req(v, vault)) != nil {
			t.Errorf("a state %s opened", name)
		}
	}
	if h.openMFAState(req(seal(good), other)) != nil {
		t.Error("vault's state opened on another tenant")
	}
}

// FuzzMFAState: whatever a client puts in the state cookie, nothing opens
// (only a value sealed by this handler could), and nothing panics.
func FuzzMFAState(f *testing.F) {
	for _, s := range []string{"", "x", strings.Repeat("A", 100), "eyJ2IjoxfQ", strings.Repeat("_-", 1500)} {
		f.Add(s)
	}
	h, req := stateHandler(f, time.Unix(1_800_000_000, 0))
	vault := &tenants.Tenant{ID: "vault", InternalID: "ivault"}
	f.Fuzz(func(t *testing.T, v string) {
		if st := h.openMFAState(req(v, vault)); st != nil {
			t.Fatalf("state %q opened: %+v", v, st)
		}
	})
}

// TestMFAOverlongEmail: an address longer than any account's still gets
// the code page (the state cookie stays small enough to open).
func TestMFAOverlongEmail(t *testing.T) {
	e := newMFAEnv(t)
	st := e.mfaStep("vault.app.test", strings.Repeat("a", 5000)+"@acme.test", "whatever")
	wantStatus(t, "code page", e.do("GET", "vault.app.test", PathMFA, nil, nil, st), 200)
}

// TestMFASessionListed: a session issued after the second step is in the
// account page's list, named with its factor, and the page shows both the
// list and the second-factor section.
func TestMFASessionListed(t *testing.T) {
	e := newMFAEnv(t)
	const host = "vault.app.test"
	secret, _, c := e.enrol(host)
	e.clock.Advance(otp.Period)
	resp := e.postCode(host, e.mfaStep(host, "alice@acme.test", alicePassword), otp.Code(secret, otp.Step(e.clock.Now())))
	wantStatus(t, "sign-in with a code", resp, http.StatusSeeOther)
	second := e.sessionOf(resp)
	recorded, err := e.store.Sessions(t.Context(), c.TenantID, c.Subject)
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	for _, s := range recorded {
		if s.Method != "password+otp" {
			t.Errorf("session %s recorded with method %q, want password+otp", s.SID, s.Method)
		}
		sids = append(sids, s.SID)
	}
	if !slices.Contains(sids, c.SID) || !slices.Contains(sids, second.SID) {
		t.Fatalf("recorded %v, want the enrolment's %s and the code's %s", sids, c.SID, second.SID)
	}
	body := e.accountPage(host, cookieNamed(resp, "__Host-tenantgate"))
	for _, s := range []string{"Password and a one-time code", `value="revoke-session"`, `value="recovery-codes"`} {
		if !strings.Contains(body, s) {
			t.Errorf("the account page does not show %q", s)
		}
	}
}

// optionsAttr matches the passkey options of a code page.
var optionsAttr = regexp.MustCompile(`data-options="([^"]+)"`)

// passkeyStep opens the code page of state st and returns the passkey
// options it offers and the ceremony cookie it set.
func (e *env) passkeyStep(host string, st *http.Cookie) ([]byte, *http.Cookie) {
	e.t.Helper()
	resp := e.do("GET", host, PathMFA, nil, nil, st)
	page := wantStatus(e.t, "code page", resp, 200)
	m := optionsAttr.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("the code page offers no passkey:\n%s", page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src "+passkeySignInScriptHash) || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "connect-src") {
		e.t.Errorf("code page CSP %q", csp)
	}
	c := cookieNamed(resp, "__Host-tenantgate-mfa-passkey")
	if c == nil || c.Value == "" || !c.HttpOnly || !c.Secure || c.MaxAge <= 0 || !cookie.Owned(c.Name) {
		e.t.Fatalf("passkey ceremony cookie %+v", c)
	}
	return []byte(html.UnescapeString(m[1])), c
}

// TestMFAPasskey: a passkey is a second factor. Registered on the account
// page of a tenant with mfa optional, it makes the next sign-in take the
// second step, where the code page offers it to everyone; the session
// then has amr pwd and hwk and is listed as such. The ceremony is bound to
// its step and spent; a wrong password with a passkey is refused like a
// wrong code; reset-mfa's store change takes the passkeys away.
func TestMFAPasskey(t *testing.T) {
	e := newMFAEnv(t)
	const host = "opt.app.test"
	resp := e.signIn(host, "", "alice@acme.test", alicePassword, "/docs")
	wantStatus(t, "sign-in without a factor", resp, http.StatusSeeOther)
	sess := cookieNamed(resp, "__Host-tenantgate")
	auth := &passkeytest.Authenticator{Origin: "https://" + host}
	opts, ceremony := e.passkeyOptions(host, sess)
	body, cred, err := auth.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "register", e.postForm(host, PathAccount, url.Values{"action": {"passkey-register"}, "credential": {string(body)}}, sess, ceremony), 200)
	if page := e.accountPage(host, sess); !strings.Contains(page, "On, with your passkeys") {
		t.Errorf("the account page's second-factor section does not count the passkey:\n%s", page)
	}

	// The passkey makes the next sign-in take the second step.
	st := e.mfaStep(host, "alice@acme.test", alicePassword)
	o, pc := e.passkeyStep(host, st)
	answer, err := auth.Get(o, cred)
	if err != nil {
		t.Fatal(err)
	}
	resp = e.postForm(host, PathMFA, url.Values{"passkey": {string(answer)}}, st, pc)
	wantStatus(t, "sign-in with the passkey", resp, http.StatusSeeOther)
	if resp.Header.Get("Location") != "/docs" {
		t.Errorf("to %q", resp.Header.Get("Location"))
	}
	if c := lastCookie(resp, "__Host-tenantgate-mfa-passkey"); c == nil || c.MaxAge >= 0 {
		t.Errorf("the ceremony cookie is not cleared: %+v", c)
	}
	c := e.sessionOf(resp)
	if !slices.Equal(c.AMR, []string{session.AMRPassword, session.AMRHardware}) || !c.MFA() {
		t.Errorf("session amr %v", c.AMR)
	}
	recorded, err := e.store.Sessions(t.Context(), c.TenantID, c.Subject)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range recorded {
		if s.SID == c.SID && s.Method != "password+hwk" {
			t.Errorf("recorded method %q, want password+hwk", s.Method)
		}
	}
	if page := e.accountPage(host, cookieNamed(resp, "__Host-tenantgate")); !strings.Contains(page, "Password and a passkey") {
		t.Error("the session list does not say the passkey signed this session in")
	}

	t.Run("state and ceremony single use", func(t *testing.T) {
		wantStatus(t, "the same state again", e.postForm(host, PathMFA, url.Values{"passkey": {string(answer)}}, st, pc), http.StatusBadRequest)
		// The ceremony of one pending step answered in another: bound to
		// the step it was begun for, refused like a wrong code, and still
		// good in its own step.
		mine := e.mfaStep(host, "alice@acme.test", alicePassword)
		o2, pc2 := e.passkeyStep(host, mine)
		other := e.mfaStep(host, "alice@acme.test", alicePassword)
		a2, _ := auth.Get(o2, cred)
		wantStatus(t, "another step's ceremony", e.postForm(host, PathMFA, url.Values{"passkey": {string(a2)}}, other, pc2), http.StatusUnauthorized)
		a2, _ = auth.Get(o2, cred)
		wantStatus(t, "its own step", e.postForm(host, PathMFA, url.Values{"passkey": {string(a2)}}, mine, pc2), http.StatusSeeOther)
		// The first ceremony again (spent, and of another step): refused.
		st2 := e.mfaStep(host, "alice@acme.test", alicePassword)
		again, _ := auth.Get(o, cred)
		wantStatus(t, "a spent ceremony", e.postForm(host, PathMFA, url.Values{"passkey": {string(again)}}, st2, pc), http.StatusUnauthorized)
		// No ceremony cookie at all.
		st3 := e.mfaStep(host, "alice@acme.test", alicePassword)
		o3, _ := e.passkeyStep(host, st3)
		a3, _ := auth.Get(o3, cred)
		wantStatus(t, "no ceremony", e.postForm(host, PathMFA, url.Values{"passkey": {string(a3)}}, st3), http.StatusUnauthorized)
	})
	t.Run("wrong password with the passkey", func(t *testing.T) {
		wrong := e.mfaStep(host, "alice@acme.test", "not-her-password")
		o, pc := e.passkeyStep(host, wrong)
		a, _ := auth.Get(o, cred)
		refused := wantStatus(t, "wrong password, right passkey", e.postForm(host, PathMFA, url.Values{"passkey": {string(a)}}, wrong, pc), http.StatusUnauthorized)
		right := e.mfaStep(host, "alice@acme.test", alicePassword)
		wrongCode := wantStatus(t, "right password, wrong code", e.postCode(host, right, "123456"), http.StatusUnauthorized)
		if csrfValue.ReplaceAllString(refused, "") != csrfValue.ReplaceAllString(wrongCode, "") {
			t.Error("a refused passkey answers differently from a wrong code")
		}
	})
	t.Run("without passkeys, no second step", func(t *testing.T) {
		ps, err := e.store.Passkeys(t.Context(), c.TenantID, c.Subject)
		if err != nil || len(ps) != 1 {
			t.Fatalf("passkeys %v, %v", ps, err)
		}
		if err := e.store.RemovePasskey(t.Context(), c.TenantID, c.Subject, ps[0].ID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute) // past the account's failures above
		resp := e.signIn(host, "", "alice@acme.test", alicePassword, "/docs")
		wantStatus(t, "sign-in", resp, http.StatusSeeOther)
		if resp.Header.Get("Location") != "/docs" {
			t.Errorf("to %q, want the app at once (mfa optional, no factor)", resp.Header.Get("Location"))
		}
	})
	if strings.Contains(e.logs.String(), "alice@acme.test") {
		t.Error("an email is in the logs")
	}
}

// TestMFAPasskeyEnrolment: under mfa required, a member without a factor
// may add a passkey on the enrolment page instead of the app: a refused
// answer shows the enrolment again under a new state; an accepted one
// stores the passkey and signs in with amr pwd and hwk, and the next
// sign-in takes the code step, where the passkey signs in.
func TestMFAPasskeyEnrolment(t *testing.T) {
	e := newMFAEnv(t)
	e.h.Audit = &audit.Recorder{Store: e.store}
	const host = "vault.app.test"
	auth := &passkeytest.Authenticator{Origin: "https://" + host}
	st := e.mfaStep(host, "alice@acme.test", alicePassword)
	o, pc := e.passkeyStep(host, st)
	if !strings.Contains(string(o), `"user":`) || !strings.Contains(string(o), `"rp":{"name":"Vault Inc","id":"vault.app.test"}`) {
		t.Fatalf("enrolment page offers no passkey registration: %s", o)
	}
	body, cred, err := auth.Create(o)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(body), `"attestationObject":"`, `"attestationObject":"AA`, 1)
	resp := e.postForm(host, PathMFA, url.Values{"passkey": {bad}}, st, pc)
	page := wantStatus(t, "a refused passkey", resp, http.StatusBadRequest)
	if !strings.Contains(page, "The passkey could not be added") || !strings.Contains(page, `id="totp-secret"`) {
		t.Fatalf("after a refused passkey:\n%s", page)
	}
	st = lastCookie(resp, mfaCookie)
	o, pc = e.passkeyStep(host, st)
	body, cred, err = auth.Create(o)
	if err != nil {
		t.Fatal(err)
	}
	resp = e.postForm(host, PathMFA, url.Values{"passkey": {string(body)}}, st, pc)
	wantStatus(t, "enrol a passkey", resp, http.StatusSeeOther)
	c := e.sessionOf(resp)
	if !slices.Equal(c.AMR, []string{session.AMRPassword, session.AMRHardware}) {
		t.Errorf("session amr %v", c.AMR)
	}
	ps, err := e.store.Passkeys(t.Context(), c.TenantID, c.Subject)
	if err != nil || len(ps) != 1 {
		t.Fatalf("passkeys after enrolment: %d, %v", len(ps), err)
	}
	if f, _ := e.store.SecondFactors(t.Context(), c.TenantID, c.Subject); f.Enrolled() {
		t.Error("a TOTP secret was stored")
	}
	var names []string
	for _, ev := range auditEvents(t, e, "vault") {
		names = append(names, ev.Event)
	}
	if !slices.Contains(names, tenants.AuditPasskeyAdded) || !slices.Contains(names, tenants.AuditSignIn) {
		t.Errorf("audit events %v", names)
	}

	// The next sign-in: the code step, with the passkey.
	st = e.mfaStep(host, "alice@acme.test", alicePassword)
	o, pc = e.passkeyStep(host, st)
	if strings.Contains(string(o), `"user":`) {
		t.Fatalf("the next sign-in enrols again: %s", o)
	}
	answer, err := auth.Get(o, cred)
	if err != nil {
		t.Fatal(err)
	}
	resp = e.postForm(host, PathMFA, url.Values{"passkey": {string(answer)}}, st, pc)
	wantStatus(t, "sign in with the enrolled passkey", resp, http.StatusSeeOther)
	if !e.sessionOf(resp).MFA() {
		t.Error("not MFA")
	}
}

// TestMFAPasskeyOnPathTenancy: a passkey is a factor wherever its holder
// signs in, also on path tenancy, where it cannot be used: the password
// leads to the code step (never in alone), whose page offers no passkey
// (no script, no ceremony cookie), and a posted answer is refused like a
// wrong code.
func TestMFAPasskeyOnPathTenancy(t *testing.T) {
	e := newMFAEnv(t)
	opt := e.snaps.Load().BySlug("opt").InternalID
	alice := mustUser(t, e, "alice@acme.test").ID
	if err := e.store.AddPasskey(t.Context(), opt, alice, tenants.Passkey{ID: []byte("cred-1"), PublicKey: []byte("cose"), Name: "laptop", Created: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	const prefix = "/org/opt"
	resp := e.signIn("app.test", prefix, "alice@acme.test", alicePassword, prefix+"/")
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != prefix+PathMFA {
		t.Fatalf("sign-in: %d to %q, want the second step", resp.StatusCode, resp.Header.Get("Location"))
	}
	var st *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-tenantgate-mfa.opt" {
			st = c
		}
	}
	if st == nil {
		t.Fatalf("no state cookie: %v", resp.Cookies())
	}
	resp = e.do("GET", "app.test", prefix+PathMFA, nil, nil, st)
	page := wantStatus(t, "code page", resp, 200)
	if strings.Contains(page, "passkey-signin") || strings.Contains(page, "<script") || strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src") {
		t.Errorf("path tenancy offers a passkey:\n%s", page)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "passkey") {
			t.Errorf("path tenancy set %s", c.Name)
		}
	}
	wantStatus(t, "a passkey answer on a path", e.postForm("app.test", prefix+PathMFA, url.Values{"passkey": {`{"id":"x"}`}}, st), http.StatusUnauthorized)
}
