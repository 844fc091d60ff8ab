package saml

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// TestKeycloakSignIn signs carol in through a real Keycloak (the pinned
// install scripts/keycloak.sh provides; skipped without it unless CI is
// set): SP-initiated AuthnRequest from AuthnRequestURL, Keycloak's login
// form, its auto-POST form, then HandleResponse — and the same response
// posted again is refused.
func TestKeycloakSignIn(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	s := keycloak.Start(t, keycloak.Options{})
	k := keys(t)
	carol, _ := keycloak.UserByName(keycloak.RealmSAML, "carol")
	sk := k.globexSP
	tn := &tenants.Tenant{ID: "globex", InternalID: globexTenantID, SAMLKey: &sk, Methods: []tenants.Method{entry{
		Type:   Type,
		Config: Config{IDPMetadataURL: s.SAMLDescriptorURL(keycloak.RealmSAML)},
		Roles:  tenants.RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}}, DefaultRoles: []string{"member"}},
	}.method()}}
	replay := &memReplay{}
	lm, err := NewOpener(Options{Sealer: k.sealer, Replay: replay, HTTPClient: &http.Client{Timeout: 30 * time.Second}})(context.Background(), tn, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := lm.(*Method)
	e := signin.Endpoint{Origin: s.Origins().Globex}
	a := &signin.Attempt{ID: "attempt-kc-1", TenantID: globexTenantID, Endpoint: e, Created: time.Now()}
	u, reqID, err := m.AuthnRequestURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	a.SAMLRequestID = reqID

	jar, _ := cookiejar.New(nil)
	kc, _ := url.Parse(s.URL())
	browser := &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != kc.Host || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	page, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	if page.StatusCode != http.StatusOK {
		t.Fatalf("Keycloak answered the AuthnRequest with %d", page.StatusCode)
	}
	after, err := keycloak.SubmitLogin(context.Background(), browser, page, carol.Username, carol.Password)
	if err != nil {
		t.Fatalf("sign in at Keycloak: %v", err)
	}
	f, err := keycloak.ReadForm(after, func(f keycloak.Form) bool { return f.Values.Has("SAMLResponse") })
	if err != nil {
		t.Fatalf("no SAML POST form: %v", err)
	}
	if f.Action.String() != ACSURL(e) || f.Values.Get("RelayState") != a.ID {
		t.Fatalf("form posts to %s with RelayState %q", f.Action, f.Values.Get("RelayState"))
	}
	acsPost := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, ACSURL(e), strings.NewReader(f.Values.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	id, err := m.HandleResponse(context.Background(), e, a, acsPost())
	if err != nil {
		raw, _ := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
		t.Fatalf("Keycloak's response refused: %v\n%s", err, raw)
	}
	if id.Issuer != s.Issuer(keycloak.RealmSAML) || id.Subject == "" || id.Email != carol.Email || !id.EmailVerified {
		t.Errorf("identity %+v", id)
	}
	if !slices.Equal(id.Roles, []string{"admin", "member"}) {
		t.Errorf("roles %v, want [admin member]", id.Roles)
	}
	if _, err := m.HandleResponse(context.Background(), e, a, acsPost()); !errors.Is(err, ErrReplay) {
		t.Errorf("replayed Keycloak response: err = %v, want ErrReplay", err)
	}
	// The same response at another tenant's endpoint is refused.
	other := signin.Endpoint{Origin: s.Origins().Acme}
	b := *a
	b.Endpoint = other
	if _, err := m.HandleResponse(context.Background(), other, &b, acsPost()); err == nil {
		t.Error("response accepted at another endpoint")
	}
}
