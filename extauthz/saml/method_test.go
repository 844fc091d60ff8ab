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
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

func TestNewSPKey(t *testing.T) {
	k := keys(t)
	cert, err := x509.ParseCertificate(k.acmeSP.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != acmeTenantID {
		t.Errorf("CN = %q, want %q", cert.Subject.CommonName, acmeTenantID)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("certificate lifetime %v, want about ten years", life)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 2048 {
		t.Errorf("public key %T, want RSA-2048", cert.PublicKey)
	}
	if !k.acmeSP.Created.Equal(testNow) {
		t.Errorf("Created = %v", k.acmeSP.Created)
	}
	if bytes.Contains(k.acmeSP.SealedPrivate, []byte("PRIVATE")) {
		t.Error("private key stored in the clear")
	}
	if _, _, err := openSPKey(k.sealer, &k.acmeSP, acmeTenantID); err != nil {
		t.Errorf("open for its tenant: %v", err)
	}
	if _, _, err := openSPKey(k.sealer, &k.acmeSP, globexTenantID); err == nil {
		t.Error("acme's SP key opened for globex")
	}
	mixed := tenants.SAMLKey{Certificate: k.globexSP.Certificate, SealedPrivate: k.acmeSP.SealedPrivate}
	if _, _, err := openSPKey(k.sealer, &mixed, acmeTenantID); err == nil {
		t.Error("key opened with another key's certificate")
	}
	if _, err := NewSPKey(k.sealer, "", testNow); err == nil {
		t.Error("key made for an empty tenant id")
	}
}

func TestOpenerRefuses(t *testing.T) {
	k := keys(t)
	good := Options{Sealer: k.sealer, Replay: &memReplay{}}
	tests := []struct {
		name   string
		opts   Options
		tenant func() *tenants.Tenant
	}{
		{"no sealer", Options{Replay: &memReplay{}}, func() *tenants.Tenant { return acmeTenant(t) }},
		{"no replay cache", Options{Sealer: k.sealer}, func() *tenants.Tenant { return acmeTenant(t) }},
		{"not a saml method", good, func() *tenants.Tenant {
			return acmeTenant(t, func(m *entry) { m.Type = "oidc" })
		}},
		{"no SAMLKey", good, func() *tenants.Tenant {
			tn := acmeTenant(t)
			tn.SAMLKey = nil
			return tn
		}},
		{"another tenant's SAMLKey", good, func() *tenants.Tenant {
			tn := acmeTenant(t)
			sk := k.globexSP
			tn.SAMLKey = &sk
			return tn
		}},
		{"both metadata XML and URL", good, func() *tenants.Tenant {
			return acmeTenant(t, func(m *entry) { m.IDPMetadataURL = "https://idp.example/metadata" })
		}},
		{"no metadata", good, func() *tenants.Tenant {
			return acmeTenant(t, func(m *entry) { m.IDPMetadataXML = "" })
		}},
		{"metadata URL without a client", good, func() *tenants.Tenant {
			return acmeTenant(t, func(m *entry) { m.IDPMetadataXML, m.IDPMetadataURL = "", "https://idp.example/metadata" })
		}},
		{"broken metadata", good, func() *tenants.Tenant {
			return acmeTenant(t, func(m *entry) { m.IDPMetadataXML = "<md:EntityDescriptor" })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewOpener(tc.opts)(context.Background(), tc.tenant(), 0); err == nil {
				t.Fatal("opened")
			}
		})
	}
	if _, err := NewOpener(good)(context.Background(), acmeTenant(t), 1); err == nil {
		t.Error("opened a method index out of range")
	}
}

func TestLabel(t *testing.T) {
	if got := openMethod(t, acmeTenant(t), nil).Label(); got != DefaultLabel {
		t.Errorf("Label = %q, want %q", got, DefaultLabel)
	}
	m := openMethod(t, acmeTenant(t, func(m *entry) { m.Label = "Sign in with Acme" }), nil)
	if m.Label() != "Sign in with Acme" || m.Type() != "saml" {
		t.Errorf("Label, Type = %q, %q", m.Label(), m.Type())
	}
}

func TestMetadata(t *testing.T) {
	k := keys(t)
	m := openMethod(t, acmeTenant(t), nil)
	for _, e := range []signin.Endpoint{acmeEndpoint, {Origin: "https://app.example", Prefix: "/org/acme"}} {
		data, err := m.Metadata(e)
		if err != nil {
			t.Fatal(err)
		}
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			t.Fatalf("metadata does not parse: %v\n%s", err, data)
		}
		if ed.EntityID != e.URL("/_auth/saml/metadata") {
			t.Errorf("entityID = %q", ed.EntityID)
		}
		if spCert, _ := x509.ParseCertificate(k.acmeSP.Certificate); !ed.ValidUntil.Equal(spCert.NotAfter) {
			t.Errorf("validUntil = %v, want the certificate's end %v", ed.ValidUntil, spCert.NotAfter)
		}
		if len(ed.SPSSODescriptors) != 1 {
			t.Fatalf("%d SPSSODescriptors", len(ed.SPSSODescriptors))
		}
		d := ed.SPSSODescriptors[0]
		if d.AuthnRequestsSigned == nil || !*d.AuthnRequestsSigned || d.WantAssertionsSigned == nil || !*d.WantAssertionsSigned {
			t.Error("AuthnRequestsSigned and WantAssertionsSigned must be true")
		}
		if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding ||
			d.AssertionConsumerServices[0].Location != e.URL("/_auth/saml/acs") {
			t.Errorf("ACS = %+v", d.AssertionConsumerServices)
		}
		if len(d.KeyDescriptors) != 1 || d.KeyDescriptors[0].Use != "signing" ||
			d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data != base64.StdEncoding.EncodeToString(k.acmeSP.Certificate) {
			t.Errorf("key descriptors = %+v, want the SP certificate for signing only", d.KeyDescriptors)
		}
	}
}

func TestAuthnRequestURL(t *testing.T) {
	k := keys(t)
	m := openMethod(t, acmeTenant(t), nil)
	a := acmeAttempt()
	a.SAMLRequestID = ""
	raw, id, err := m.AuthnRequestURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != acmeIDP+"/protocol/saml" {
		t.Errorf("sent to %q", got)
	}
	q := u.Query()
	if q.Get("RelayState") != a.ID {
		t.Errorf("RelayState = %q, want the attempt id", q.Get("RelayState"))
	}
	if q.Get("SigAlg") != dsig.RSASHA256SignatureMethod {
		t.Errorf("SigAlg = %q", q.Get("SigAlg"))
	}
	// SAML Bindings §3.4.4.1: the signature covers the query up to SigAlg.
	signed, _, _ := strings.Cut(u.RawQuery, "&Signature=")
	sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(k.acmeSP.Certificate)
	sum := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("request signature does not verify with the SP certificate: %v", err)
	}
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(inflated, &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != id || id == "" {
		t.Errorf("request ID %q, returned %q", req.ID, id)
	}
	if req.AssertionConsumerServiceURL != ACSURL(acmeEndpoint) || req.Issuer.Value != EntityID(acmeEndpoint) ||
		req.Destination != acmeIDP+"/protocol/saml" || req.ProtocolBinding != saml.HTTPPostBinding {
		t.Errorf("request = %+v", req)
	}
	if !req.IssueInstant.Equal(testNow) {
		t.Errorf("IssueInstant %v, want the method's clock", req.IssueInstant)
	}
	_, id2, _ := m.AuthnRequestURL(context.Background(), a)
	if id2 == id {
		t.Error("two requests share an ID")
	}
	other := acmeAttempt()
	other.TenantID = globexTenantID
	if _, _, err := m.AuthnRequestURL(context.Background(), other); err == nil {
		t.Error("request made for another tenant's attempt")
	}
}

func TestParseIDPMetadata(t *testing.T) {
	k := keys(t)
	good := idpMetadataXML(acmeIDP, k.acmeIDP.cert)
	tests := []struct {
		name string
		xml  string
		ok   bool
	}{
		{"good", good, true},
		{"good after a byte order mark (Entra ID)", "\uFEFF" + good, true},
		{"two byte order marks", "\uFEFF\uFEFF" + good, false},
		{"in an EntitiesDescriptor", `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` + strings.TrimPrefix(good, `<?xml version="1.0"?>`) + `</md:EntitiesDescriptor>`, true},
		{"two IdPs in an EntitiesDescriptor", `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` + strings.Repeat(strings.TrimPrefix(good, `<?xml version="1.0"?>`), 2) + `</md:EntitiesDescriptor>`, false},
		{"DOCTYPE", `<!DOCTYPE x [<!ENTITY a "b">]>` + strings.TrimPrefix(good, `<?xml version="1.0"?>`), false},
		{"oversized", good + strings.Repeat(" ", maxMetadataSize), false},
		{"wrong root", `<x xmlns="urn:oasis:names:tc:SAML:2.0:metadata"/>`, false},
		{"no signing certificate", idpMetadataXML(acmeIDP), false},
		{"no redirect SSO", strings.ReplaceAll(good, "HTTP-Redirect", "SOAP"), false},
		{"javascript SSO URL", strings.ReplaceAll(good, `Location="`+acmeIDP, `Location="javascript:alert(1)//`), false},
		{"http SSO URL", strings.ReplaceAll(good, `Location="https://`, `Location="http://`), false},
		{"no entityID", strings.Replace(good, `entityID="`+acmeIDP+`"`, "", 1), false},
		{"broken certificate", strings.Replace(good, "<ds:X509Certificate>", "<ds:X509Certificate>AAAA", 1), false},
		{"not xml", "hello", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseIDPMetadata([]byte(tc.xml))
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if tc.ok && (m.entityID != acmeIDP || len(m.certs) != 1 || m.ssoURL != acmeIDP+"/protocol/saml") {
				t.Errorf("parsed %+v", m)
			}
		})
	}
}

func TestMetadataURLRefresh(t *testing.T) {
	k := keys(t)
	var body atomic.Value
	body.Store(idpMetadataXML(acmeIDP, k.acmeIDP.cert))
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, body.Load().(string))
	}))
	defer srv.Close()

	var now atomic.Int64
	now.Store(testNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	tn := acmeTenant(t, func(m *entry) { m.IDPMetadataXML, m.IDPMetadataURL = "", srv.URL+"/metadata" })
	lm, err := NewOpener(Options{Sealer: k.sealer, Replay: &memReplay{}, HTTPClient: srv.Client(), Now: clock})(context.Background(), tn, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := lm.(*Method)
	// The IdP rolls its key over: acme's IdP now signs with the globex key.
	body.Store(idpMetadataXML(acmeIDP, k.globexIDP.cert))
	signedByNew := func(id string) *http.Request {
		at := clock()
		return post(docBytes(t, build(t, resp{signer: &k.globexIDP, assertionID: id, issueInstant: at.Add(-time.Second), notOnOrAfter: at.Add(time.Minute)})))
	}
	if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), signedByNew("_a1")); err == nil {
		t.Fatal("accepted a key the cached metadata does not list")
	}

	// A failed refresh keeps the old copy.
	fail.Store(true)
	now.Add(int64(metadataRefresh + time.Minute))
	m.idp.get()
	m.idp.wg.Wait()
	if got := m.idp.get().certs[0]; !got.Equal(k.acmeIDP.cert) {
		t.Fatal("failed refresh replaced the metadata")
	}
	m.idp.wg.Wait()

	// A successful refresh (started by a use, in the background) brings
	// the new key in.
	fail.Store(false)
	m.idp.get()
	m.idp.wg.Wait()
	if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), signedByNew("_a2")); err != nil {
		t.Fatalf("new key refused after the refresh: %v", err)
	}

	// Oversized and DOCTYPE metadata are refused at open.
	for name, b := range map[string]string{
		"oversized": strings.Repeat(" ", maxMetadataSize+10) + idpMetadataXML(acmeIDP, k.acmeIDP.cert),
		"doctype":   `<!DOCTYPE x>` + idpMetadataXML(acmeIDP, k.acmeIDP.cert)[len(`<?xml version="1.0"?>`):],
	} {
		body.Store(b)
		if _, err := NewOpener(Options{Sealer: k.sealer, Replay: &memReplay{}, HTTPClient: srv.Client()})(context.Background(), tn, 0); err == nil {
			t.Errorf("%s metadata accepted", name)
		}
	}
}
