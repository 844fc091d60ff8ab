package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

func ptr[T any](v T) *T { return &v }

const (
	classPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	classREFEDS   = "https://refeds.org/profile/mfa"
	classEntra    = "http://schemas.microsoft.com/claims/multipleauthn"
)

// TestMFAResponse: a method that requires MFA (its requireMFA, or the
// tenant's mfa: required) accepts an assertion only when every
// AuthnStatement names an accepted class (acceptedAuthnContext, else the
// defaults), and the identity then carries amr [mfa]; anything else is
// the mfa_missing refusal, an invalid response. A method that does not
// require it takes any class and carries no amr.
func TestMFAResponse(t *testing.T) {
	tests := []struct {
		name      string
		require   *bool
		tenantMFA string
		accepted  []string
		refs      []string
		refused   bool
	}{
		{name: "not required: password class", refs: []string{classPassword}},
		{name: "not required: no class ref", refs: []string{"-"}},
		{name: "required off in a tenant that requires mfa", require: ptr(false), tenantMFA: tenants.MFARequired},
		{name: "defaults: REFEDS MFA", require: ptr(true), refs: []string{classREFEDS}},
		{name: "defaults: Entra multipleauthn", require: ptr(true), refs: []string{classEntra}},
		{name: "defaults: password class", require: ptr(true), refs: []string{classPassword}, refused: true},
		{name: "defaults: no class ref", require: ptr(true), refs: []string{"-"}, refused: true},
		{name: "defaults: one of two statements without MFA", require: ptr(true), refs: []string{classREFEDS, classPassword}, refused: true},
		{name: "defaults: two statements with MFA", require: ptr(true), refs: []string{classREFEDS, classEntra}},
		{name: "defaults: case matters", require: ptr(true), refs: []string{strings.ToUpper(classREFEDS)}, refused: true},
		{name: "tenant mfa required, method silent: password class", tenantMFA: tenants.MFARequired, refs: []string{classPassword}, refused: true},
		{name: "tenant mfa required, method silent: REFEDS", tenantMFA: tenants.MFARequired, refs: []string{classREFEDS}},
		{name: "tenant mfa optional: not required", tenantMFA: tenants.MFAOptional, refs: []string{classPassword}},
		{name: "listed: in the list", require: ptr(true), accepted: []string{"urn:acme:loa:2", "urn:acme:loa:3"}, refs: []string{"urn:acme:loa:3"}},
		{name: "listed: outside the list", require: ptr(true), accepted: []string{"urn:acme:loa:2"}, refs: []string{"urn:acme:loa:1"}, refused: true},
		{name: "listed: a default outside the list", require: ptr(true), accepted: []string{"urn:acme:loa:2"}, refs: []string{classREFEDS}, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := acmeTenant(t, func(m *entry) { m.RequireMFA, m.AcceptedAuthnContext = tc.require, tc.accepted })
			tn.MFA = tc.tenantMFA
			m := openMethod(t, tn, nil)
			got, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(docBytes(t, build(t, resp{classRefs: tc.refs}))))
			if tc.refused {
				var r *signin.Refusal
				if !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing || !errors.Is(err, ErrInvalidResponse) {
					t.Fatalf("HandleResponse = %+v, %v; want the mfa_missing refusal", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleResponse: %v", err)
			}
			want := []string(nil)
			if signin.RequiresMFA(tc.require, tn) {
				want = []string{"mfa"}
			}
			if !slices.Equal(got.AMR, want) || got.Subject != "alice@acme.example" {
				t.Errorf("identity %+v, want amr %q", got, want)
			}
		})
	}
}

// authnRequestXML returns the AuthnRequest element of an HTTP-Redirect
// URL, after checking its signature with acme's SP certificate.
func authnRequestXML(t *testing.T, raw string) *etree.Element {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	signed, _, _ := strings.Cut(u.RawQuery, "&Signature=")
	sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(keys(t).acmeSP.Certificate)
	sum := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil || q.Get("SigAlg") != dsig.RSASHA256SignatureMethod {
		t.Errorf("request signature (%s) does not verify with the SP certificate: %v", q.Get("SigAlg"), err)
	}
	if q.Get("RelayState") != "attempt-1" {
		t.Errorf("RelayState = %q", q.Get("RelayState"))
	}
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(inflated); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// TestMFARequestedAuthnContext: a method that requires MFA and lists
// acceptedAuthnContext asks for every listed class, in order, with
// Comparison exact, as the last child of a request still signed and
// otherwise the same; one that relies on the defaults, or does not
// require MFA, asks for none.
func TestMFARequestedAuthnContext(t *testing.T) {
	for _, tc := range []struct {
		require  *bool
		accepted []string
	}{
		{},
		{require: ptr(true)},
		{require: ptr(true), accepted: []string{"urn:acme:loa:3"}},
		{require: ptr(true), accepted: []string{classREFEDS, "urn:acme:loa:3", classEntra}},
	} {
		t.Run(fmt.Sprint(tc.require != nil, len(tc.accepted)), func(t *testing.T) {
			m := openMethod(t, acmeTenant(t, func(m *entry) { m.RequireMFA, m.AcceptedAuthnContext = tc.require, tc.accepted }), nil)
			raw, id, err := m.AuthnRequestURL(context.Background(), acmeAttempt())
			if err != nil {
				t.Fatal(err)
			}
			req := authnRequestXML(t, raw)
			if req.SelectAttrValue("ID", "") != id || req.SelectElement("NameIDPolicy") == nil || req.SelectElement("Issuer") == nil ||
				req.SelectAttrValue("AssertionConsumerServiceURL", "") != ACSURL(acmeEndpoint) {
				t.Errorf("request lost its other parts: %+v", req)
			}
			racs := req.SelectElements("RequestedAuthnContext")
			if len(tc.accepted) == 0 {
				if len(racs) != 0 {
					t.Errorf("%d RequestedAuthnContext, want none", len(racs))
				}
				return
			}
			if len(racs) != 1 || req.ChildElements()[len(req.ChildElements())-1] != racs[0] {
				t.Fatalf("want one RequestedAuthnContext, last: %d", len(racs))
			}
			rac := racs[0]
			if rac.Space != "samlp" || rac.SelectAttrValue("Comparison", "") != "exact" {
				t.Errorf("RequestedAuthnContext %s:%s Comparison %q", rac.Space, rac.Tag, rac.SelectAttrValue("Comparison", ""))
			}
			var got []string
			for _, ref := range rac.SelectElements("AuthnContextClassRef") {
				if ref.Space != "saml" {
					t.Errorf("class ref in namespace prefix %q", ref.Space)
				}
				got = append(got, ref.Text())
			}
			if !slices.Equal(got, tc.accepted) {
				t.Errorf("requested classes %q, want %q", got, tc.accepted)
			}
		})
	}
}

// TestMFACrewjamIDP: crewjam's IdP reads the AuthnRequest that carries a
// RequestedAuthnContext of several classes and answers it; its assertion
// names PasswordProtectedTransport, so the sign-in is accepted when that
// class is listed and refused (mfa_missing) with the defaults.
func TestMFACrewjamIDP(t *testing.T) {
	k := keys(t)
	idp := startCrewIDP(t, k.acmeIDP, dsig.RSASHA256SignatureMethod)
	alice := newIDPBrowser(t, "alice")
	for i, tc := range []struct {
		name     string
		accepted []string
		refused  bool
	}{
		{name: "listed", accepted: []string{classREFEDS, classPassword}},
		{name: "defaults", refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openCrewMethod(t, crewTenant("acme", acmeTenantID, k.acmeSP, idp, func(m *entry) {
				m.RequireMFA, m.AcceptedAuthnContext = ptr(true), tc.accepted
			}), idp, &memReplay{}, nil)
			idp.registerSP(t, fmt.Sprintf("acme-%d", i), m, acmeEndpoint)
			if i == 0 {
				idp.addUser(t, "alice", "alice@acme.example")
			}
			a, f := signIn(t, m, alice, fmt.Sprintf("attempt-mfa-%d", i), acmeEndpoint)
			got, err := m.HandleResponse(context.Background(), acmeEndpoint, a, acsPost(f))
			if tc.refused {
				var r *signin.Refusal
				if !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing {
					t.Fatalf("HandleResponse = %+v, %v; want mfa_missing", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got.AMR, []string{"mfa"}) {
				t.Fatalf("HandleResponse = %+v, %v", got, err)
			}
		})
	}
}

// TestMFAConfig: requireMFA and acceptedAuthnContext in a tenant file;
// every mistake is one line naming the field and what to do.
func TestMFAConfig(t *testing.T) {
	types := tenants.MethodTypes{{Name: Type, NewConfig: NewConfig}}
	validate := func(extra string) error {
		ts, err := tenants.ParseFile([]byte("tenants:\n  - id: acme\n    methods:\n      - type: saml\n        idpMetadataURL: https://idp.example/md\n"+extra), types)
		if err != nil {
			return err
		}
		return tenants.Validate(ts, tenants.ValidateOptions{Methods: types})
	}
	for _, ok := range []string{"", "        requireMFA: true\n", "        requireMFA: false\n",
		"        requireMFA: true\n        acceptedAuthnContext: [" + classREFEDS + ", urn:acme:loa:3]\n"} {
		if err := validate(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	const pre = `tenant "acme": methods[0].`
	for _, tc := range []struct{ extra, want string }{
		{"        acceptedAuthnContext: [" + classREFEDS + "]\n", pre + "acceptedAuthnContext: only with requireMFA: true (add requireMFA: true to the method, or remove acceptedAuthnContext)"},
		{"        requireMFA: true\n        acceptedAuthnContext: [a, b, a]\n", pre + `acceptedAuthnContext[2] "a": listed twice`},
		{"        requireMFA: true\n        acceptedAuthnContext: [\"urn:x y\"]\n", pre + "acceptedAuthnContext[0]: must be 1-1024 printable ASCII characters without spaces"},
	} {
		if err := validate(tc.extra); err == nil || err.Error() != tc.want {
			t.Errorf("%q: Validate = %v\nwant %s", tc.extra, err, tc.want)
		}
	}
}

// FuzzMFAConfirm feeds arbitrary assertion XML to the MFA check (in
// production it runs on a signed assertion, but the IdP still chooses
// every byte): it must not panic, and accepts only an assertion with an
// AuthnStatement whose every class is accepted, with amr [mfa].
func FuzzMFAConfirm(f *testing.F) {
	stmt := func(ref string) string {
		return `<saml:AuthnStatement><saml:AuthnContext><saml:AuthnContextClassRef>` + ref + `</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
	}
	for _, s := range []string{
		stmt(classREFEDS), stmt(classPassword), stmt(classREFEDS) + stmt(classPassword), stmt(" " + classEntra + " "),
		`<saml:AuthnStatement><saml:AuthnContext/></saml:AuthnStatement>`, `<saml:AuthnStatement/>`, ``,
		`<saml:AuthnStatement><saml:AuthnContext><saml:AuthnContextClassRef><x/></saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
	} {
		f.Add(`<saml:Assertion xmlns:saml="` + nsAssertion + `">` + s + `</saml:Assertion>`)
	}
	p := newMFAPolicy(&Config{RequireMFA: ptr(true)}, nil)
	f.Fuzz(func(t *testing.T, raw string) {
		doc := etree.NewDocument()
		if doc.ReadFromString(raw) != nil || doc.Root() == nil {
			return
		}
		amr, err := p.confirm(doc.Root())
		if err != nil {
			if amr != nil || !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("confirm = %q, %v", amr, err)
			}
			return
		}
		if !slices.Equal(amr, []string{"mfa"}) {
			t.Fatalf("confirm accepted with amr %q", amr)
		}
		stmts := children(doc.Root(), nsAssertion, "AuthnStatement")
		if len(stmts) == 0 {
			t.Fatal("accepted an assertion without AuthnStatement")
		}
		for _, st := range stmts {
			ctx, _ := oneChild(st, nsAssertion, "AuthnContext")
			ref, _ := oneChild(ctx, nsAssertion, "AuthnContextClassRef")
			v, _ := text(ref)
			if !slices.Contains(DefaultAcceptedAuthnContext, strings.TrimSpace(v)) {
				t.Fatalf("accepted class %q", v)
			}
		}
	})
}
