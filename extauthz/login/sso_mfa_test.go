package login

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestSSOMFA: an SSO sign-in whose method confirmed the provider's MFA gets
// a session with the identity's amr (x-auth-mfa: true); one whose method
// refused it for want of MFA gets the page that says so, 400, no session
// cookie and no account, and the log and the metrics (Observer) name
// mfa_missing, with the method it was for.
func TestSSOMFA(t *testing.T) {
	obs := &recordingObserver{}
	se := newSSOEnv(t, func(h *Handler) { h.Observer = obs })
	callback := func(j jar, code string) *http.Response {
		state := se.startOIDC(j, "oidcco.app.test", "/_auth/login?rd=/docs")
		return se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {state}, "code": {code}}.Encode(), nil, nil, j.all()...)
	}

	amr := []string{session.AMRPassword, session.AMROTP, session.AMRMFA}
	se.p.set("code-mfa", signin.Identity{Issuer: "https://idp.test/realms/x", Subject: "mfa-sub", Email: "mfa@oidc.test", EmailVerified: true, AMR: amr})
	resp := callback(jar{}, "code-mfa")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback with MFA: %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if c := se.sessionOf(resp); !slices.Equal(c.AMR, amr) || !c.MFA() {
		t.Errorf("session amr %q (MFA %v), want %q", c.AMR, c.MFA(), amr)
	}
	if got, want := obs.take(), []string{"session oidc", "signin oidcco oidc success"}; !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}

	before, err := se.store.Members(t.Context(), "oidcco")
	if err != nil || len(before) != 1 {
		t.Fatalf("members after one SSO sign-in: %d, %v", len(before), err)
	}
	resp = callback(jar{}, codeMFAMissing)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "did not confirm a second factor") {
		t.Errorf("callback without MFA: %d, want 400 and the page saying why:\n%s", resp.StatusCode, body)
	}
	if cookieNamed(resp, "__Host-tenantgate") != nil {
		t.Error("a session cookie was set")
	}
	if after, err := se.store.Members(t.Context(), "oidcco"); err != nil || len(after) != len(before) {
		t.Errorf("members %d → %d (%v): a refused sign-in made an account", len(before), len(after), err)
	}
	if logs := se.logs.String(); !strings.Contains(logs, `"reason":"mfa_missing"`) {
		t.Errorf("the refusal is not logged with reason mfa_missing:\n%s", logs)
	}
	if got, want := obs.take(), []string{"signin oidcco oidc " + signin.ReasonMFAMissing}; !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}

// TestSSOMethodReopenedWhenMFAChanges: an opened method is reused until
// its configuration changes, and the tenant's mfa policy is part of it (it
// decides whether an SSO method requires the provider's MFA): a tenant
// turning mfa: required on gets its methods opened again, not served by
// ones opened without the requirement.
func TestSSOMethodReopenedWhenMFAChanges(t *testing.T) {
	se := newSSOEnv(t)
	se.startOIDC(jar{}, "oidcco.app.test", "/_auth/login")
	before := se.opens["oidcco"]
	if before == 0 {
		t.Fatal("the method was not opened")
	}
	tn, err := se.store.Tenant(t.Context(), "oidcco")
	if err != nil {
		t.Fatal(err)
	}
	tn.MFA = tenants.MFARequired
	sealer := se.h.Minter.Sealer
	if _, err := se.store.ApplyTenants(t.Context(), []tenants.Tenant{tn}, tenants.ApplyOptions{
		NewKey:     func(id string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, id, se.clock.Now()) },
		SealMethod: signin.SealMethods(sealer, testMethodTypes()),
	}); err != nil {
		t.Fatal(err)
	}
	se.refresh()
	se.startOIDC(jar{}, "oidcco.app.test", "/_auth/login")
	if se.opens["oidcco"] != before+1 {
		t.Errorf("opens %d -> %d after the tenant's mfa changed, want the method opened once more", before, se.opens["oidcco"])
	}
}

// TestSessionListNamesSSOMFA: the account page's list says how a session
// was signed in, second factors included, and an SSO sign-in whose
// provider confirmed MFA is one: the record names the factors of its amr,
// and the text names the factor the provider named, else says the
// provider checked one.
func TestSessionListNamesSSOMFA(t *testing.T) {
	for _, tc := range []struct {
		via  string
		amr  []string
		want string
	}{
		{session.MethodOIDC, nil, "Single sign-on (OIDC)"},
		{session.MethodOIDC, []string{session.AMRPassword, session.AMROTP, session.AMRMFA}, "Single sign-on (OIDC) and a one-time code"},
		{session.MethodSAML, []string{session.AMRMFA}, "Single sign-on (SAML) and a second factor at the identity provider"},
		{session.MethodPassword, []string{session.AMRPassword, session.AMRHardware}, "Password and a passkey"},
	} {
		if got := methodText(sessionVia(tc.via, tc.amr)); got != tc.want {
			t.Errorf("%s with amr %q: %q, want %q", tc.via, tc.amr, got, tc.want)
		}
	}
}
