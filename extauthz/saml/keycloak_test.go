package saml

import (
	"context"
	"encoding/base64"
	"encoding/xml"
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

	// The tenant now requires MFA of this method, asking for the REFEDS
	// MFA class: Keycloak takes the request (its session signs carol in
	// again at once) and answers with the class of her password sign-in,
	// which the method refuses.
	mfaTenant := *tn
	mfaTenant.Methods = []tenants.Method{entry{Type: Type, Config: Config{IDPMetadataURL: s.SAMLDescriptorURL(keycloak.RealmSAML),
		RequireMFA: ptr(true), AcceptedAuthnContext: []string{"https://refeds.org/profile/mfa"}}}.method()}
	lm, err = NewOpener(Options{Sealer: k.sealer, Replay: replay, HTTPClient: &http.Client{Timeout: 30 * time.Second}})(context.Background(), &mfaTenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	mm := lm.(*Method)
	a2 := &signin.Attempt{ID: "attempt-kc-2", TenantID: globexTenantID, Endpoint: e, Created: time.Now()}
	if u, a2.SAMLRequestID, err = mm.AuthnRequestURL(context.Background(), a2); err != nil {
		t.Fatal(err)
	}
	again, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := keycloak.ReadForm(again, func(f keycloak.Form) bool { return f.Values.Has("SAMLResponse") })
	if err != nil {
		t.Fatalf("Keycloak did not answer the AuthnRequest with a RequestedAuthnContext: %v", err)
	}
	r2 := httptest.NewRequest(http.MethodPost, ACSURL(e), strings.NewReader(f2.Values.Encode()))
	r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	id2, err := mm.HandleResponse(context.Background(), e, a2, r2)
	if r := (*signin.Refusal)(nil); !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing {
		raw, _ := base64.StdEncoding.DecodeString(f2.Values.Get("SAMLResponse"))
		t.Errorf("requireMFA: HandleResponse = %+v, %v; want mfa_missing\n%s", id2, err, raw)
	}
}

// TestKeycloakNameIDFormats signs carol in through real Keycloak clients
// that force one NameID format each (keycloak.SAMLNameIDPersistent,
// …Transient, …Unspecified), each a tenant at its own path-tenancy
// endpoint: persistent signs in, to the same account twice; transient is
// refused with its reason, and signs in keyed by the uid attribute when
// the method names it in subjectAttribute; unspecified is refused by a
// method that wants persistent (naming both formats) and accepted by one
// configured unspecified.
func TestKeycloakNameIDFormats(t *testing.T) {
	keycloak.SkipIfDisabled(t)
	s := keycloak.Start(t, keycloak.Options{})
	k := keys(t)
	carol, _ := keycloak.UserByName(keycloak.RealmSAML, "carol")
	open := func(t *testing.T, cfg Config) *Method {
		t.Helper()
		sk := k.globexSP
		cfg.IDPMetadataURL = s.SAMLDescriptorURL(keycloak.RealmSAML)
		tn := &tenants.Tenant{ID: "globex", InternalID: globexTenantID, SAMLKey: &sk, Methods: []tenants.Method{entry{Type: Type, Config: cfg}.method()}}
		lm, err := NewOpener(Options{Sealer: k.sealer, Replay: &memReplay{}, HTTPClient: &http.Client{Timeout: 30 * time.Second}})(context.Background(), tn, 0)
		if err != nil {
			t.Fatal(err)
		}
		return lm.(*Method)
	}
	endpoint := func(client string) signin.Endpoint {
		return signin.Endpoint{Origin: s.Origins().Globex, Prefix: keycloak.SAMLNameIDPrefix(client)}
	}
	wantRefusal := func(t *testing.T, err error, reason string, in ...string) {
		t.Helper()
		var r *signin.Refusal
		if !errors.As(err, &r) || r.Reason != reason {
			t.Fatalf("err = %v, want a refusal with reason %s", err, reason)
		}
		for _, s := range in {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("err = %v, want it to name %q", err, s)
			}
		}
	}

	t.Run("persistent: signed in, the same account twice", func(t *testing.T) {
		m, e := open(t, Config{}), endpoint(keycloak.SAMLNameIDPersistent)
		first, nameID, err := keycloakSignIn(t, s, m, e, carol)
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if nameID.Format != persistentNameIDFormat || first.Subject == "" || first.Subject == carol.Username || first.Email != carol.Email {
			t.Errorf("NameID %+v, identity %+v", nameID, first)
		}
		second, _, err := keycloakSignIn(t, s, m, e, carol)
		if err != nil || second.Subject != first.Subject || second.Issuer != first.Issuer {
			t.Errorf("second sign-in: %+v, %v; want the account key %q again", second, err, first.Subject)
		}
	})
	t.Run("transient: refused", func(t *testing.T) {
		_, nameID, err := keycloakSignIn(t, s, open(t, Config{}), endpoint(keycloak.SAMLNameIDTransient), carol)
		if nameID.Format != transientNameIDFormat {
			t.Fatalf("Keycloak sent NameID %+v, want transient", nameID)
		}
		wantRefusal(t, err, reasonTransientNameID, "transient")
	})
	t.Run("transient with subjectAttribute: keyed by the attribute", func(t *testing.T) {
		m, e := open(t, Config{NameIDFormat: NameIDTransient, SubjectAttribute: keycloak.SAMLUIDAttribute}), endpoint(keycloak.SAMLNameIDTransient)
		first, n1, err := keycloakSignIn(t, s, m, e, carol)
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		second, n2, err := keycloakSignIn(t, s, m, e, carol)
		if err != nil {
			t.Fatalf("second sign-in refused: %v", err)
		}
		if n1.Value == n2.Value {
			t.Errorf("Keycloak sent the transient NameID %q twice", n1.Value)
		}
		if first.Subject == "" || first.Subject != second.Subject || first.Subject == n1.Value || first.Email != carol.Email {
			t.Errorf("identities %+v and %+v: want one account keyed by carol's Keycloak id", first, second)
		}
		// Without the attribute, the method refuses.
		_, _, err = keycloakSignIn(t, s, open(t, Config{NameIDFormat: NameIDTransient, SubjectAttribute: "employeeNumber"}), e, carol)
		wantRefusal(t, err, reasonSubjectAttribute, `"employeeNumber"`, "0 values")
	})
	t.Run("unspecified: refused by a persistent method, naming both formats", func(t *testing.T) {
		_, nameID, err := keycloakSignIn(t, s, open(t, Config{}), endpoint(keycloak.SAMLNameIDUnspecified), carol)
		if nameID.Format != unspecifiedNameIDFormat || nameID.Value != carol.Username {
			t.Fatalf("Keycloak sent NameID %+v, want carol's username, unspecified", nameID)
		}
		wantRefusal(t, err, reasonNameIDFormat, "NameID format unspecified", "nameIDFormat is persistent")
	})
	t.Run("unspecified: accepted by an unspecified method", func(t *testing.T) {
		id, _, err := keycloakSignIn(t, s, open(t, Config{NameIDFormat: NameIDUnspecified}), endpoint(keycloak.SAMLNameIDUnspecified), carol)
		if err != nil || id.Subject != carol.Username {
			t.Errorf("identity %+v, %v; want the username as the key", id, err)
		}
	})
}

// kcNameID is the NameID of a Keycloak response, as read for the tests.
type kcNameID struct {
	Format string `xml:"Format,attr"`
	Value  string `xml:",chardata"`
}

// keycloakSignIn signs u in through Keycloak at m's endpoint e, in a fresh
// browser, and returns what HandleResponse made of Keycloak's response and
// the NameID Keycloak sent.
func keycloakSignIn(t *testing.T, s *keycloak.Server, m *Method, e signin.Endpoint, u keycloak.User) (signin.Identity, kcNameID, error) {
	t.Helper()
	a := &signin.Attempt{ID: "attempt-" + e.Prefix[len("/org/"):], TenantID: globexTenantID, Endpoint: e, Created: time.Now()}
	target, reqID, err := m.AuthnRequestURL(context.Background(), a)
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
	page, err := browser.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	if page.StatusCode != http.StatusOK {
		t.Fatalf("Keycloak answered the AuthnRequest with %d (is the client for %s in the realm?)", page.StatusCode, EntityID(e))
	}
	after, err := keycloak.SubmitLogin(context.Background(), browser, page, u.Username, u.Password)
	if err != nil {
		t.Fatalf("sign in at Keycloak: %v", err)
	}
	f, err := keycloak.ReadForm(after, func(f keycloak.Form) bool { return f.Values.Has("SAMLResponse") })
	if err != nil {
		t.Fatalf("no SAML POST form: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
	var resp struct {
		NameID kcNameID `xml:"Assertion>Subject>NameID"`
	}
	if err := xml.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("Keycloak's response: %v", err)
	}
	r := httptest.NewRequest(http.MethodPost, ACSURL(e), strings.NewReader(f.Values.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	id, err := m.HandleResponse(context.Background(), e, a, r)
	return id, resp.NameID, err
}
