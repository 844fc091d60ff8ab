package saml

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// These tests sign in through crewjam's samlidp, a SAML IdP written by
// someone else, so that what HandleResponse accepts and refuses is proven
// on responses a real IdP library produced, not only on this package's
// fixtures. Nothing about the IdP is faked: it reads the SP metadata the
// Method serves, parses the signed AuthnRequest from AuthnRequestURL,
// checks alice's password and signs with its own key.

// Endpoints on path tenancy: two tenants on one host, told apart by the
// path alone.
var (
	acmePathEndpoint   = signin.Endpoint{Origin: "https://app.example", Prefix: "/org/acme"}
	globexPathEndpoint = signin.Endpoint{Origin: "https://app.example", Prefix: "/org/globex"}
)

// crewWorld is two tenants and two IdPs:
//
//   - shared, a samlidp both acme and globex registered with (as a
//     company might run one IdP for several SaaS accounts), where alice
//     is in group devs;
//   - globexIDP, globex's own samlidp with another key, where bob is in
//     group admins.
//
// acme and globexShared trust shared; globexOwn trusts globexIDP.
// acmeIDPInit is acme with allowIDPInitiated. All share one replay cache.
type crewWorld struct {
	shared, globexIDP *crewIDP
	replay            *memReplay

	acme, acmeIDPInit, globexShared, globexOwn *Method
	alice, bob                                 *idpBrowser
}

func newCrewWorld(t *testing.T) *crewWorld {
	t.Helper()
	k := keys(t)
	w := &crewWorld{
		shared:    startCrewIDP(t, k.acmeIDP, dsig.RSASHA256SignatureMethod),
		globexIDP: startCrewIDP(t, k.globexIDP, dsig.RSASHA256SignatureMethod),
		replay:    &memReplay{},
		alice:     newIDPBrowser(t, "alice"),
		bob:       newIDPBrowser(t, "bob"),
	}
	w.acme = openCrewMethod(t, crewTenant("acme", acmeTenantID, k.acmeSP, w.shared), w.shared, w.replay, nil)
	w.acmeIDPInit = openCrewMethod(t, crewTenant("acme", acmeTenantID, k.acmeSP, w.shared, func(m *entry) { m.AllowIDPInitiated = true }), w.shared, w.replay, nil)
	w.globexShared = openCrewMethod(t, crewTenant("globex", globexTenantID, k.globexSP, w.shared), w.shared, w.replay, nil)
	w.globexOwn = openCrewMethod(t, crewTenant("globex", globexTenantID, k.globexSP, w.globexIDP), w.globexIDP, w.replay, nil)

	w.shared.registerSP(t, "acme", w.acme, acmeEndpoint)
	w.shared.registerSP(t, "globex", w.globexShared, globexEndpoint)
	w.shared.registerSP(t, "acme-path", w.acme, acmePathEndpoint)
	w.shared.registerSP(t, "globex-path", w.globexShared, globexPathEndpoint)
	w.shared.addShortcut(t, "acme", EntityID(acmeEndpoint))
	w.shared.addUser(t, "alice", "Alice@Acme.example", "devs", "contractors")

	w.globexIDP.registerSP(t, "globex", w.globexOwn, globexEndpoint)
	w.globexIDP.addUser(t, "bob", "bob@globex.example", "admins")
	return w
}

func TestCrewjamIDPSignIn(t *testing.T) {
	w := newCrewWorld(t)
	alice := signin.Identity{Issuer: w.shared.metadataURL(), Subject: "Alice@Acme.example", Email: "alice@acme.example", EmailVerified: true, Roles: []string{"dev", "member"}}
	tests := []struct {
		name    string
		m       *Method
		browser *idpBrowser
		e       signin.Endpoint
		// idpInitiated starts at the IdP's /login/acme shortcut instead of
		// AuthnRequestURL, and posts without an attempt.
		idpInitiated bool
		want         signin.Identity
	}{
		{name: "acme through the shared IdP", m: w.acme, browser: w.alice, e: acmeEndpoint, want: alice},
		{name: "globex through the shared IdP", m: w.globexShared, browser: w.alice, e: globexEndpoint, want: alice},
		{name: "globex through its own IdP", m: w.globexOwn, browser: w.bob, e: globexEndpoint,
			want: signin.Identity{Issuer: w.globexIDP.metadataURL(), Subject: "bob@globex.example", Email: "bob@globex.example", EmailVerified: true, Roles: []string{"admin", "member"}}},
		{name: "acme on path tenancy", m: w.acme, browser: w.alice, e: acmePathEndpoint, want: alice},
		{name: "IdP-initiated at a tenant that allows it", m: w.acmeIDPInit, browser: w.alice, e: acmeEndpoint, idpInitiated: true, want: alice},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a *signin.Attempt
			var f keycloak.Form
			if tc.idpInitiated {
				f = tc.browser.responseForm(t, w.shared.srv.URL+"/login/acme")
				if f.Action.String() != ACSURL(tc.e) {
					t.Fatalf("IdP-initiated form posts to %s, want %s", f.Action, ACSURL(tc.e))
				}
			} else {
				a, f = signIn(t, tc.m, tc.browser, fmt.Sprintf("attempt-%d", i), tc.e)
			}
			got, err := tc.m.HandleResponse(context.Background(), tc.e, a, acsPost(f))
			if err != nil {
				t.Fatalf("samlidp's response refused: %v\n%s", err, responseXML(t, f))
			}
			if got.Issuer != tc.want.Issuer || got.Subject != tc.want.Subject || got.Email != tc.want.Email ||
				got.EmailVerified != tc.want.EmailVerified || !slices.Equal(got.Roles, tc.want.Roles) {
				t.Errorf("identity = %+v, want %+v", got, tc.want)
			}

			// The same response again is refused.
			_, err = tc.m.HandleResponse(context.Background(), tc.e, a, acsPost(f))
			if !errors.Is(err, ErrInvalidResponse) || !errors.Is(err, ErrReplay) {
				t.Errorf("replayed response: err = %v, want a replay refusal", err)
			}
		})
	}
}

func TestCrewjamIDPRefuses(t *testing.T) {
	w := newCrewWorld(t)
	ctx := context.Background()
	// posted is what reaches a method's ACS: the method, the endpoint the
	// request came in on, the browser's attempt there (nil for none) and
	// the form the IdP made, perhaps edited.
	type posted struct {
		m *Method
		e signin.Endpoint
		a *signin.Attempt
		f keycloak.Form
	}
	setGroup := func(from, to string) func(t *testing.T, root *etree.Element) {
		return func(t *testing.T, root *etree.Element) {
			t.Helper()
			for _, v := range root.FindElements(".//Attribute[@Name='" + crewGroupsAttribute + "']/AttributeValue") {
				if v.Text() == from {
					v.SetText(to)
					return
				}
			}
			t.Fatalf("no group %q in the response", from)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T) posted
		// reason is part of the refusal's message: the response must be
		// refused for this reason, not some other.
		reason string
	}{
		{
			name:   "acme's response posted to globex, both trusting the shared IdP",
			reason: "response Destination is not this tenant's ACS URL",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.acme, w.alice, "attempt-acme", acmeEndpoint)
				ga, _ := begin(t, w.globexShared, "attempt-globex", globexEndpoint)
				return posted{w.globexShared, globexEndpoint, ga, f}
			},
		},
		{
			name:   "acme's response posted to globex on the same host (path tenancy)",
			reason: "response Destination is not this tenant's ACS URL",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.acme, w.alice, "attempt-acme", acmePathEndpoint)
				ga, _ := begin(t, w.globexShared, "attempt-globex", globexPathEndpoint)
				return posted{w.globexShared, globexPathEndpoint, ga, f}
			},
		},
		{
			name:   "acme's signed assertion, response signature removed, posted to globex",
			reason: "AudienceRestriction does not name this tenant's SP",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.acme, w.alice, "attempt-acme", acmeEndpoint)
				ga, _ := begin(t, w.globexShared, "attempt-globex", globexEndpoint)
				return posted{w.globexShared, globexEndpoint, ga, editResponse(t, f, unwrapAssertion)}
			},
		},
		{
			name:   "response to another attempt of the same tenant",
			reason: "response InResponseTo is not this attempt's request",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.acme, w.alice, "attempt-1", acmeEndpoint)
				a2, _ := begin(t, w.acme, "attempt-2", acmeEndpoint)
				return posted{w.acme, acmeEndpoint, a2, f}
			},
		},
		{
			name:   "assertion for another attempt, response signature removed",
			reason: "SubjectConfirmationData InResponseTo is not this attempt's request",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.acme, w.alice, "attempt-1", acmeEndpoint)
				a2, _ := begin(t, w.acme, "attempt-2", acmeEndpoint)
				return posted{w.acme, acmeEndpoint, a2, editResponse(t, f, unwrapAssertion)}
			},
		},
		{
			name:   "signed by the shared IdP, posted to globex whose IdP is another",
			reason: "response signature: not verified by the idp's certificate(s)",
			run: func(t *testing.T) posted {
				a, f := signIn(t, w.globexShared, w.alice, "attempt-globex", globexEndpoint)
				return posted{w.globexOwn, globexEndpoint, a, f}
			},
		},
		{
			name:   "signed by the shared IdP, response signature removed, posted to globex whose IdP is another",
			reason: "assertion signature: not verified by the idp's certificate(s)",
			run: func(t *testing.T) posted {
				a, f := signIn(t, w.globexShared, w.alice, "attempt-globex", globexEndpoint)
				return posted{w.globexOwn, globexEndpoint, a, editResponse(t, f, unwrapAssertion)}
			},
		},
		{
			name:   "signed by globex's IdP, posted to acme",
			reason: "response signature: not verified by the idp's certificate(s)",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.globexOwn, w.bob, "attempt-globex", globexEndpoint)
				a, _ := begin(t, w.acme, "attempt-acme", acmeEndpoint)
				return posted{w.acme, acmeEndpoint, a, f}
			},
		},
		{
			name:   "IdP-initiated at a tenant that does not allow it",
			reason: "unsolicited (IdP-initiated) response and the tenant does not allow it",
			run: func(t *testing.T) posted {
				f := w.alice.responseForm(t, w.shared.srv.URL+"/login/acme")
				return posted{w.acme, acmeEndpoint, nil, f}
			},
		},
		{
			name:   "IdP-initiated response completing an attempt in progress",
			reason: "SubjectConfirmationData InResponseTo is not this attempt's request",
			run: func(t *testing.T) posted {
				f := w.alice.responseForm(t, w.shared.srv.URL+"/login/acme")
				a, _ := begin(t, w.acmeIDPInit, "attempt-acme", acmeEndpoint)
				return posted{w.acmeIDPInit, acmeEndpoint, a, f}
			},
		},
		{
			name:   "solicited response posted as unsolicited where IdP-initiated is allowed",
			reason: "response InResponseTo set but no sign-in attempt is in progress",
			run: func(t *testing.T) posted {
				_, f := signIn(t, w.acmeIDPInit, w.alice, "attempt-acme", acmeEndpoint)
				return posted{w.acmeIDPInit, acmeEndpoint, nil, f}
			},
		},
		{
			name:   "group attribute changed after signing",
			reason: "response signature: not verified by the idp's certificate(s)",
			run: func(t *testing.T) posted {
				a, f := signIn(t, w.acme, w.alice, "attempt-acme", acmeEndpoint)
				return posted{w.acme, acmeEndpoint, a, editResponse(t, f, setGroup("devs", "admins"))}
			},
		},
		{
			name:   "group attribute changed after signing, response signature removed",
			reason: "assertion signature: not verified by the idp's certificate(s)",
			run: func(t *testing.T) posted {
				a, f := signIn(t, w.acme, w.alice, "attempt-acme", acmeEndpoint)
				return posted{w.acme, acmeEndpoint, a, editResponse(t, f, func(t *testing.T, root *etree.Element) {
					unwrapAssertion(t, root)
					setGroup("devs", "admins")(t, root)
				})}
			},
		},
		{
			name:   "XSW: forged copy of the IdP's assertion inserted before it",
			reason: "want exactly one Assertion, found 2",
			run: func(t *testing.T) posted {
				a, f := signIn(t, w.acme, w.alice, "attempt-acme", acmeEndpoint)
				return posted{w.acme, acmeEndpoint, a, editResponse(t, f, func(t *testing.T, root *etree.Element) {
					signed := root.SelectElement("Assertion")
					forged := signed.Copy()
					forged.RemoveChild(forged.SelectElement("Signature"))
					forged.CreateAttr("ID", "id-forged")
					forged.FindElement("./Subject/NameID").SetText("admin@acme.example")
					root.InsertChildAt(signed.Index(), forged)
				})}
			},
		},
		{
			name:   "arriving after MaxIssueDelay plus MaxClockSkew",
			reason: "response IssueInstant too old",
			run: func(t *testing.T) posted {
				a, f := signIn(t, w.acme, w.alice, "attempt-acme", acmeEndpoint)
				late := openCrewMethod(t, crewTenant("acme", acmeTenantID, keys(t).acmeSP, w.shared), w.shared, w.replay,
					func() time.Time { return time.Now().Add(MaxIssueDelay + MaxClockSkew + time.Minute) })
				return posted{late, acmeEndpoint, a, f}
			},
		},
		{
			name:   "signed with crewjam's default RSA-SHA1",
			reason: `response signature: signature method "http://www.w3.org/2000/09/xmldsig#rsa-sha1" not accepted`,
			run: func(t *testing.T) posted {
				kp, err := newKeyPair("sha-1 idp")
				if err != nil {
					t.Fatal(err)
				}
				sha1IDP := startCrewIDP(t, kp, "")
				m := openCrewMethod(t, crewTenant("acme", acmeTenantID, keys(t).acmeSP, sha1IDP), sha1IDP, w.replay, nil)
				sha1IDP.registerSP(t, "acme", m, acmeEndpoint)
				sha1IDP.addUser(t, "alice", "alice@acme.example", "devs")
				a, f := signIn(t, m, newIDPBrowser(t, "alice"), "attempt-acme", acmeEndpoint)
				return posted{m, acmeEndpoint, a, f}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.run(t)
			id, err := p.m.HandleResponse(ctx, p.e, p.a, acsPost(p.f))
			if err == nil {
				t.Fatalf("accepted: %+v\n%s", id, responseXML(t, p.f))
			}
			if !errors.Is(err, ErrInvalidResponse) {
				t.Errorf("error %v does not wrap ErrInvalidResponse", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("refused for %q, want %q", err, tc.reason)
			}
			if id.Subject != "" || id.Issuer != "" {
				t.Errorf("identity returned with the error: %+v", id)
			}
		})
	}
}
