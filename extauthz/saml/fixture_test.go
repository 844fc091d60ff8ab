package saml

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// testNow is the fixture clock.
var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	fixedMasterKey = "tenantgate-test-master-key-32by!"
	acmeIDP        = "https://idp.acme.example/realms/acme"
	globexIDP      = "https://idp.globex.example/realms/globex"
	acmeTenantID   = "t_acme"
	globexTenantID = "t_globex"
	requestID      = "id-request-1"
)

var (
	acmeEndpoint   = signin.Endpoint{Origin: "https://acme.app.example"}
	globexEndpoint = signin.Endpoint{Origin: "https://globex.app.example"}
)

// keyPair is an IdP (or attacker) signing key and its self-signed
// certificate.
type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// keys are generated once per test binary: RSA generation is the slow part
// of these tests.
type testKeys struct {
	acmeIDP, globexIDP, attacker keyPair
	acmeSP, globexSP             tenants.SAMLKey
	sealer                       *seal.Sealer
}

var loadKeys = sync.OnceValues(func() (*testKeys, error) {
	s, err := seal.NewSealer([]byte(fixedMasterKey))
	if err != nil {
		return nil, err
	}
	k := &testKeys{sealer: s}
	for _, p := range []struct {
		kp *keyPair
		cn string
	}{{&k.acmeIDP, "acme idp"}, {&k.globexIDP, "globex idp"}, {&k.attacker, "acme idp"}} {
		if *p.kp, err = newKeyPair(p.cn); err != nil {
			return nil, err
		}
	}
	if k.acmeSP, err = NewSPKey(s, acmeTenantID, testNow); err != nil {
		return nil, err
	}
	if k.globexSP, err = NewSPKey(s, globexTenantID, testNow); err != nil {
		return nil, err
	}
	return k, nil
})

func newKeyPair(cn string) (keyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return keyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    testNow.AddDate(-1, 0, 0),
		NotAfter:     testNow.AddDate(5, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return keyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return keyPair{key: key, cert: cert}, err
}

func keys(tb testing.TB) *testKeys {
	tb.Helper()
	k, err := loadKeys()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// idpMetadataXML is IdP metadata for entityID with the given signing certs.
func idpMetadataXML(entityID string, certs ...*x509.Certificate) string {
	var kd strings.Builder
	for _, c := range certs {
		fmt.Fprintf(&kd, `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`,
			base64.StdEncoding.EncodeToString(c.Raw))
	}
	return fmt.Sprintf(`<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    %s
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="%s/protocol/saml"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="%s/protocol/saml"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`, entityID, kd.String(), entityID, entityID)
}

// memReplay is an in-memory ReplayCache.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (r *memReplay) UseAssertionID(_ context.Context, tenant, id string, expires time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[string]time.Time)
	}
	k := tenant + "\x00" + id
	if _, ok := r.seen[k]; ok {
		return ErrReplay
	}
	r.seen[k] = expires
	return nil
}

// entry is a saml method entry as a test edits it: its Config and the rest
// of its tenants.Method.
type entry struct {
	Config
	Type, Label string
	Roles       tenants.RoleMapping
}

// method is e as a tenants.Method.
func (e entry) method() tenants.Method {
	m := tenants.Method{Type: e.Type, Label: e.Label, Roles: e.Roles}
	if err := m.EncodeConfig(e.Config); err != nil {
		panic(err)
	}
	return m
}

// tenantCfg adjusts the acme tenant's method.
type tenantCfg func(*entry)

func acmeTenant(tb testing.TB, cfg ...tenantCfg) *tenants.Tenant {
	k := keys(tb)
	m := entry{
		Type:   Type,
		Config: Config{IDPMetadataXML: idpMetadataXML(acmeIDP, k.acmeIDP.cert), GroupsClaim: "Role"},
		Roles:  tenants.RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}, "devs": {"dev", "member"}}, DefaultRoles: []string{"member"}},
	}
	for _, c := range cfg {
		c(&m)
	}
	sk := k.acmeSP
	return &tenants.Tenant{ID: "acme", InternalID: acmeTenantID, Methods: []tenants.Method{m.method()}, SAMLKey: &sk}
}

func openMethod(tb testing.TB, t *tenants.Tenant, replay ReplayCache) *Method {
	tb.Helper()
	if replay == nil {
		replay = &memReplay{}
	}
	lm, err := NewOpener(Options{Sealer: keys(tb).sealer, Replay: replay, Now: func() time.Time { return testNow }})(context.Background(), t, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return lm.(*Method)
}

func acmeAttempt() *signin.Attempt {
	return &signin.Attempt{ID: "attempt-1", TenantID: acmeTenantID, Method: 0, Endpoint: acmeEndpoint, SAMLRequestID: requestID, Created: testNow}
}

// resp describes a response to build. Zero-valued fields take the defaults
// of a valid response to acme's attempt-1.
type resp struct {
	issuer       string // assertion Issuer; "-" omits it
	respIssuer   string // "-" omits it
	destination  string // "-" omits it
	inResponseTo string // "-" omits it (both places)
	recipient    string
	audiences    []string // nil: acme's entity id; empty non-nil: no AudienceRestriction
	nameID       string
	nameIDFormat string // "-" omits the Format attribute
	issueInstant time.Time
	notOnOrAfter time.Time
	bearers      int // -1: zero SubjectConfirmations; 0: one
	assertionID  string
	status       string
	attrs        map[string][]string
	// classRefs are the AuthnContextClassRef of one AuthnStatement each;
	// nil: one, PasswordProtectedTransport; "-" omits the class ref.
	classRefs []string

	signAssertion bool
	signResponse  bool
	signer        *keyPair // default acme's IdP
	sigMethod     string
}

func (o resp) withDefaults(k *testKeys) resp {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.issuer, acmeIDP)
	def(&o.respIssuer, acmeIDP)
	def(&o.destination, ACSURL(acmeEndpoint))
	def(&o.inResponseTo, requestID)
	def(&o.recipient, ACSURL(acmeEndpoint))
	if o.audiences == nil {
		o.audiences = []string{EntityID(acmeEndpoint)}
	}
	def(&o.nameID, "alice@acme.example")
	def(&o.nameIDFormat, persistentNameIDFormat) // the method's default
	if o.issueInstant.IsZero() {
		o.issueInstant = testNow.Add(-5 * time.Second)
	}
	if o.notOnOrAfter.IsZero() {
		o.notOnOrAfter = testNow.Add(5 * time.Minute)
	}
	def(&o.assertionID, "_assertion-1")
	def(&o.status, statusSuccess)
	if o.attrs == nil {
		o.attrs = map[string][]string{"email": {"Alice@Acme.example"}, "displayName": {"Alice"}, "Role": {"admins", "unknown"}}
	}
	if !o.signAssertion && !o.signResponse {
		o.signAssertion = true
	}
	if o.signer == nil {
		o.signer = &k.acmeIDP
	}
	def(&o.sigMethod, dsig.RSASHA256SignatureMethod)
	return o
}

// unsigned marks a resp to be built without any signature.
const unsignedMarker = "unsigned"

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// assertionElement builds the saml:Assertion of o.
func assertionElement(o resp) *etree.Element {
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsAssertion)
	a.CreateAttr("ID", o.assertionID)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", ts(o.issueInstant))
	if o.issuer != "-" {
		a.CreateElement("saml:Issuer").SetText(o.issuer)
	}
	subj := a.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	if o.nameIDFormat != "-" {
		nid.CreateAttr("Format", o.nameIDFormat)
	}
	nid.SetText(o.nameID)
	n := 1
	if o.bearers < 0 {
		n = 0
	} else if o.bearers > 0 {
		n = o.bearers
	}
	for range n {
		sc := subj.CreateElement("saml:SubjectConfirmation")
		sc.CreateAttr("Method", bearerMethod)
		d := sc.CreateElement("saml:SubjectConfirmationData")
		if o.inResponseTo != "-" {
			d.CreateAttr("InResponseTo", o.inResponseTo)
		}
		d.CreateAttr("NotOnOrAfter", ts(o.notOnOrAfter))
		d.CreateAttr("Recipient", o.recipient)
	}
	c := a.CreateElement("saml:Conditions")
	c.CreateAttr("NotBefore", ts(o.issueInstant.Add(-time.Second)))
	c.CreateAttr("NotOnOrAfter", ts(o.notOnOrAfter))
	if len(o.audiences) > 0 {
		ar := c.CreateElement("saml:AudienceRestriction")
		for _, aud := range o.audiences {
			ar.CreateElement("saml:Audience").SetText(aud)
		}
	}
	refs := o.classRefs
	if refs == nil {
		refs = []string{"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}
	}
	for _, ref := range refs {
		as := a.CreateElement("saml:AuthnStatement")
		as.CreateAttr("AuthnInstant", ts(o.issueInstant))
		as.CreateAttr("SessionIndex", "s1")
		ac := as.CreateElement("saml:AuthnContext")
		if ref != "-" {
			ac.CreateElement("saml:AuthnContextClassRef").SetText(ref)
		}
	}
	st := a.CreateElement("saml:AttributeStatement")
	for name, vals := range o.attrs {
		at := st.CreateElement("saml:Attribute")
		at.CreateAttr("Name", name)
		for _, v := range vals {
			at.CreateElement("saml:AttributeValue").SetText(v)
		}
	}
	return a
}

// responseElement builds the samlp:Response of o around assertions.
func responseElement(o resp, assertions ...*etree.Element) *etree.Element {
	r := etree.NewElement("samlp:Response")
	r.CreateAttr("xmlns:samlp", nsProtocol)
	r.CreateAttr("xmlns:saml", nsAssertion)
	r.CreateAttr("ID", "_response-"+o.assertionID)
	r.CreateAttr("Version", "2.0")
	r.CreateAttr("IssueInstant", ts(o.issueInstant))
	if o.destination != "-" {
		r.CreateAttr("Destination", o.destination)
	}
	if o.inResponseTo != "-" {
		r.CreateAttr("InResponseTo", o.inResponseTo)
	}
	if o.respIssuer != "-" {
		r.CreateElement("saml:Issuer").SetText(o.respIssuer)
	}
	r.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", o.status)
	for _, a := range assertions {
		r.AddChild(a)
	}
	return r
}

func sign(tb testing.TB, kp *keyPair, method string, el *etree.Element) *etree.Element {
	tb.Helper()
	ctx, err := dsig.NewSigningContext(kp.key, [][]byte{kp.cert.Raw})
	if err != nil {
		tb.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		tb.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		tb.Fatal(err)
	}
	return signed
}

// build returns the response document of o, signed as o says.
func build(tb testing.TB, o resp) *etree.Document {
	tb.Helper()
	k := keys(tb)
	unsigned := o.sigMethod == unsignedMarker
	if unsigned {
		o.sigMethod = ""
	}
	o = o.withDefaults(k)
	a := assertionElement(o)
	if o.signAssertion && !unsigned {
		a = sign(tb, o.signer, o.sigMethod, a)
	}
	r := responseElement(o, a)
	if o.signResponse && !unsigned {
		r = sign(tb, o.signer, o.sigMethod, r)
	}
	doc := etree.NewDocument()
	doc.SetRoot(r)
	return doc
}

func docBytes(tb testing.TB, doc *etree.Document) []byte {
	tb.Helper()
	b, err := doc.WriteToBytes()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// post is the ACS request carrying raw as the SAMLResponse.
func post(raw []byte) *http.Request {
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {"attempt-1"}}
	return postForm(form.Encode())
}

func postForm(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, ACSURL(acmeEndpoint), strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}
