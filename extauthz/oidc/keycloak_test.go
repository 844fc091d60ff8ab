package oidc

import (
	"cmp"
	"context"
	"encoding/base32"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// kcBrowser is a cookie-jar client that follows redirects within Keycloak
// and stops at the first one leaving it (the callback to tenantgate).
func kcBrowser(s *keycloak.Server) *http.Client {
	jar, _ := cookiejar.New(nil)
	kc, _ := url.Parse(s.URL())
	return &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != kc.Host || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// kcMethod opens an oidc method for acme against the realm acme-oidc of s,
// whose Config is c with the realm's issuer and, unless c names one, the
// client keycloak.OIDCClientID filled in.
func kcMethod(t *testing.T, e *env, s *keycloak.Server, c Config, tenantMFA string) *Method {
	t.Helper()
	secret := keycloak.OIDCClientSecret
	if c.ClientID == keycloak.OIDCMFAClientID {
		secret = keycloak.OIDCMFAClientSecret
	}
	c.Issuer, c.ClientID = s.Issuer(keycloak.RealmOIDC), cmp.Or(c.ClientID, keycloak.OIDCClientID)
	sealed, err := seal.SealSecret(e.sealer, []byte(secret), tenantInternalID)
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant(entry(t, c, sealed, tenants.RoleMapping{}))
	tn.MFA = tenantMFA
	return e.open(t, tn, 1)
}

// kcSignIn signs user in at Keycloak through m, as a browser would
// (Keycloak's own login form, more pages through form when Keycloak shows
// them), and returns what m's Callback makes of the redirect back.
func kcSignIn(t *testing.T, s *keycloak.Server, m *Method, browser *http.Client, user keycloak.User, more func(*http.Response) *http.Response) (signin.Identity, error) {
	t.Helper()
	a := newAttempt(1)
	a.Endpoint = signin.Endpoint{Origin: s.Origins().Acme}
	u, err := m.AuthURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	page, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	back := page
	if page.StatusCode == http.StatusOK {
		if back, err = keycloak.SubmitLogin(context.Background(), browser, page, user.Username, user.Password); err != nil {
			t.Fatalf("sign in at Keycloak: %v", err)
		}
	}
	if more != nil {
		back = more(back)
	}
	back.Body.Close()
	cb, err := url.Parse(back.Header.Get("Location"))
	if back.StatusCode != http.StatusFound || err != nil || cb.Path != signin.PathCallback {
		t.Fatalf("Keycloak answered %d, Location %q, want a redirect to the callback", back.StatusCode, back.Header.Get("Location"))
	}
	return m.Callback(context.Background(), a, httptest.NewRequest(http.MethodGet, cb.String(), nil))
}

// TestKeycloakRequireMFA signs people in through a real Keycloak (the
// pinned install; skipped without it unless CI is set). alice has a
// password only: a method that does not require MFA signs her in, with no
// amr; one that requires it, by its own requireMFA or by the tenant's mfa:
// required, refuses her with mfa_missing, and so does one that asks for an
// acr her password sign-in does not reach (acr_values=2; Keycloak answers
// with another acr). olivia has a TOTP credential and signs in through
// keycloak.OIDCMFAClientID, whose flow asks for her password and then the
// code this test computes, and whose ID token says amr ["pwd","otp"]: the
// method accepts it, and the identity's amr is pwd, otp, mfa.
func TestKeycloakRequireMFA(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	s := keycloak.Start(t, keycloak.Options{})
	e := newEnv(t)
	alice, _ := keycloak.UserByName(keycloak.RealmOIDC, "alice")
	browser := kcBrowser(s)

	id, err := kcSignIn(t, s, kcMethod(t, e, s, Config{}, ""), browser, alice, nil)
	if err != nil || id.Subject == "" || id.AMR != nil {
		t.Fatalf("without requireMFA: %+v, %v", id, err)
	}
	for _, tc := range []struct {
		name      string
		c         Config
		tenantMFA string
		why       string // what the refusal says failed
	}{
		{"requireMFA, default amr", Config{RequireMFA: ptr(true)}, "", "amr absent"},
		{"tenant mfa required", Config{}, tenants.MFARequired, "amr absent"},
		{"acceptedACR 2", Config{RequireMFA: ptr(true), AcceptedACR: []string{"2"}}, "", "acr not one of acceptedACR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Keycloak's session cookie signs her in again at once: what
			// the provider confirms is what the first sign-in proved.
			id, err := kcSignIn(t, s, kcMethod(t, e, s, tc.c, tc.tenantMFA), browser, alice, nil)
			var r *signin.Refusal
			if !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Callback = %+v, %v; want the mfa_missing refusal (%s)", id, err, tc.why)
			}
		})
	}
	// olivia signs in through the client whose flow asks for her password
	// and then her TOTP code, naming pwd and otp in the ID token's amr.
	olivia, _ := keycloak.UserByName(keycloak.RealmOIDC, "olivia")
	key, err := base32.StdEncoding.DecodeString(olivia.OTPSecret)
	if err != nil {
		t.Fatal(err)
	}
	step := otp.Step(time.Now())
	enterCode := func(t *testing.T, browser *http.Client) func(*http.Response) *http.Response {
		return func(page *http.Response) *http.Response {
			f, err := keycloak.ReadForm(page, func(f keycloak.Form) bool { return f.Values.Has("otp") })
			if err != nil {
				t.Fatalf("no OTP form after the password: %v", err)
			}
			// Keycloak accepts a code once: each sign-in uses the next
			// step's (a step either side is accepted).
			f.Values.Set("otp", otp.Code(key, step))
			step++
			back, err := f.Submit(context.Background(), browser)
			if err != nil {
				t.Fatal(err)
			}
			return back
		}
	}
	for _, tc := range []struct {
		name      string
		c         Config
		tenantMFA string
	}{
		{"tenant mfa required, default amr", Config{ClientID: keycloak.OIDCMFAClientID}, tenants.MFARequired},
		{"requireMFA, acceptedAMR otp", Config{ClientID: keycloak.OIDCMFAClientID, RequireMFA: ptr(true), AcceptedAMR: []string{"otp"}}, ""},
	} {
		t.Run("olivia with her code: "+tc.name, func(t *testing.T) {
			b := kcBrowser(s)
			id, err := kcSignIn(t, s, kcMethod(t, e, s, tc.c, tc.tenantMFA), b, olivia, enterCode(t, b))
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if want := []string{"pwd", "otp", "mfa"}; !slices.Equal(id.AMR, want) || id.Email != olivia.Email {
				t.Errorf("identity %+v, want amr %q", id, want)
			}
		})
	}

	t.Run("a fresh browser, acceptedACR 2", func(t *testing.T) {
		id, err := kcSignIn(t, s, kcMethod(t, e, s, Config{RequireMFA: ptr(true), AcceptedACR: []string{"2"}}, ""), kcBrowser(s), alice, nil)
		var r *signin.Refusal
		if !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing {
			t.Fatalf("Callback = %+v, %v; want the mfa_missing refusal", id, err)
		}
	})
}
