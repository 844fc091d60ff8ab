// Command genseeds writes the committed seed corpus of FuzzHandleResponse
// (extauthz/saml/testdata/fuzz/FuzzHandleResponse/, in the "go test fuzz
// v1" format): responses to acme's sign-in in the shapes of the attacks the
// response validation refuses (XML signature wrapping, a second assertion,
// a comment splitting the NameID, RSA-SHA1, missing issuer, audience or
// bearer confirmation, an IdP-initiated response, a DTD), and plain
// garbage. Run from the repository root:
//
//	go run ./extauthz/saml/internal/genseeds
//
// Its output is the same on every run, so `git diff` after it shows only
// what a change to this program changed: the IdP key is derived from a fixed
// seed, RSA PKCS #1 v1.5 signatures are deterministic, and the clock is the
// saml tests' fixed one. Nothing it signs can verify in the fuzz target,
// whose IdP key is made afresh on every run; the seeds give the fuzzer the
// shapes, signed and unsigned.
//
// It adds files and never removes any, so corpus entries found by fuzzing
// and committed later stay; delete a seed's old file when you change its
// shape.
package main

import (
	"crypto"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"log"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

const dir = "extauthz/saml/testdata/fuzz/FuzzHandleResponse"

// What acme's valid response names, as the saml tests' fixtures do: its
// IdP, its endpoint's ACS and entity id, and the sign-in's request id.
const (
	idpEntityID = "https://idp.acme.example/realms/acme"
	acsURL      = "https://acme.app.example/_auth/saml/acs"
	spEntityID  = "https://acme.app.example/_auth/saml/metadata"
	requestID   = "id-request-1"
)

// now is the saml tests' fixed clock.
var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// shape is what a response differs in from acme's valid one.
type shape struct {
	assertionID  string // default _assertion-1
	nameID       string // default alice@acme.example
	noIssuer     bool   // the assertion has no Issuer
	noAudience   bool   // no AudienceRestriction
	noBearer     bool   // no SubjectConfirmation
	idpInitiated bool   // no InResponseTo anywhere
}

// assertion is the saml:Assertion of s.
func assertion(s shape) *etree.Element {
	if s.assertionID == "" {
		s.assertionID = "_assertion-1"
	}
	if s.nameID == "" {
		s.nameID = "alice@acme.example"
	}
	issued, expires := stamp(now.Add(-5*time.Second)), stamp(now.Add(5*time.Minute))
	var b strings.Builder
	fmt.Fprintf(&b, `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID=%q Version="2.0" IssueInstant=%q>`, s.assertionID, issued)
	if !s.noIssuer {
		fmt.Fprintf(&b, `<saml:Issuer>%s</saml:Issuer>`, idpEntityID)
	}
	fmt.Fprintf(&b, `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">%s</saml:NameID>`, s.nameID)
	if !s.noBearer {
		inResponseTo := fmt.Sprintf(` InResponseTo=%q`, requestID)
		if s.idpInitiated {
			inResponseTo = ""
		}
		fmt.Fprintf(&b, `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData%s NotOnOrAfter=%q Recipient=%q/></saml:SubjectConfirmation>`,
			inResponseTo, expires, acsURL)
	}
	fmt.Fprintf(&b, `</saml:Subject><saml:Conditions NotBefore=%q NotOnOrAfter=%q>`, stamp(now.Add(-6*time.Second)), expires)
	if !s.noAudience {
		fmt.Fprintf(&b, `<saml:AudienceRestriction><saml:Audience>%s</saml:Audience></saml:AudienceRestriction>`, spEntityID)
	}
	fmt.Fprintf(&b, `</saml:Conditions><saml:AuthnStatement AuthnInstant=%q SessionIndex="s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`, issued)
	b.WriteString(`<saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>Alice@Acme.example</saml:AttributeValue></saml:Attribute><saml:Attribute Name="displayName"><saml:AttributeValue>Alice</saml:AttributeValue></saml:Attribute><saml:Attribute Name="Role"><saml:AttributeValue>admins</saml:AttributeValue><saml:AttributeValue>unknown</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>`)
	return parse(b.String())
}

// response is the samlp:Response around assertions, for s.
func response(s shape, assertions ...*etree.Element) *etree.Element {
	inResponseTo := fmt.Sprintf(` InResponseTo=%q`, requestID)
	if s.idpInitiated {
		inResponseTo = ""
	}
	r := parse(fmt.Sprintf(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_response-_assertion-1" Version="2.0" IssueInstant=%q Destination=%q%s><saml:Issuer>%s</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>`,
		stamp(now.Add(-5*time.Second)), acsURL, inResponseTo, idpEntityID))
	for _, a := range assertions {
		r.AddChild(a)
	}
	return r
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parse(xml string) *etree.Element {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		log.Fatalf("parse %.60s…: %v", xml, err)
	}
	return doc.Root()
}

// idp signs as acme's IdP would.
type idp struct {
	key  *rsa.PrivateKey
	cert []byte // DER
}

// newIDP derives a 2048-bit RSA key from a fixed seed (rsa.GenerateKey
// would make a fresh one whatever reader it is given) and makes its
// self-signed certificate.
func newIDP() (*idp, error) {
	rng := rand.NewChaCha8([32]byte([]byte("tenantgate saml fuzz seed idp 01")))
	e := big.NewInt(65537)
	prime := func() *big.Int {
		b := make([]byte, 128)
		for {
			_, _ = rng.Read(b)
			b[0] |= 0xc0 // 1024 bits, and p·q has 2048
			b[len(b)-1] |= 1
			p := new(big.Int).SetBytes(b)
			if p.ProbablyPrime(20) && new(big.Int).GCD(nil, nil, e, new(big.Int).Sub(p, big.NewInt(1))).Cmp(big.NewInt(1)) == 0 {
				return p
			}
		}
	}
	p, q := prime(), prime()
	phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
	key := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: int(e.Int64())},
		D:         new(big.Int).ModInverse(e, phi),
		Primes:    []*big.Int{p, q},
	}
	key.Precompute()
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("derive idp key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "acme idp"},
		NotBefore:    now.AddDate(-1, 0, 0),
		NotAfter:     now.AddDate(5, 0, 0),
	}
	cert, err := x509.CreateCertificate(cryptorand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("idp certificate: %w", err)
	}
	return &idp{key: key, cert: cert}, nil
}

// sign returns el with an enveloped signature by method, as the saml
// tests' IdP signs (exclusive canonicalization).
func (i *idp) sign(method string, el *etree.Element) *etree.Element {
	ctx, err := dsig.NewSigningContext(crypto.Signer(i.key), [][]byte{i.cert})
	if err != nil {
		log.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		log.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		log.Fatalf("sign %s: %v", el.Tag, err)
	}
	return signed
}

func serialize(root *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.SetRoot(root)
	b, err := doc.WriteToBytes()
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func main() {
	log.SetFlags(0)
	i, err := newIDP()
	if err != nil {
		log.Fatal(err)
	}
	const rsaSHA256 = dsig.RSASHA256SignatureMethod
	// signedAssertion is acme's valid response with its assertion of s
	// signed: how Keycloak answers by default.
	signedAssertion := func(s shape) *etree.Element {
		return response(s, i.sign(rsaSHA256, assertion(s)))
	}

	seeds := map[string][]byte{
		"valid-signed-assertion":  serialize(signedAssertion(shape{})),
		"valid-signed-response":   serialize(i.sign(rsaSHA256, response(shape{}, assertion(shape{})))),
		"unsigned":                serialize(response(shape{}, assertion(shape{}))),
		"rsa-sha1":                serialize(response(shape{}, i.sign(dsig.RSASHA1SignatureMethod, assertion(shape{})))),
		"no-issuer":               serialize(signedAssertion(shape{noIssuer: true})),
		"no-audience":             serialize(signedAssertion(shape{noAudience: true})),
		"no-subject-confirmation": serialize(signedAssertion(shape{noBearer: true})),
		"idp-initiated":           serialize(signedAssertion(shape{idpInitiated: true})),
		"doctype":                 []byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&b;</samlp:Response>`),
		"deep":                    []byte(strings.Repeat("<a>", 200) + strings.Repeat("</a>", 200)),
		"garbage":                 []byte("\x00\xff<<<>>>"),
		"empty":                   {},
	}

	// An unsigned second assertion after the signed one.
	r := signedAssertion(shape{})
	r.AddChild(assertion(shape{assertionID: "_2"}))
	seeds["two-assertions"] = serialize(r)

	// XML signature wrapping: a forged assertion for admin holds the
	// signed one, which no longer stands in the response itself.
	r = signedAssertion(shape{})
	signed := r.SelectElement("saml:Assertion")
	forged := assertion(shape{nameID: "admin@acme.example", assertionID: "_forged"})
	r.RemoveChild(signed)
	forged.AddChild(signed)
	r.AddChild(forged)
	seeds["xsw-wrapped"] = serialize(r)

	// Signed for alice@acme.example.evil.com, then split by a comment so a
	// parser reading only the first text node sees alice@acme.example.
	r = signedAssertion(shape{nameID: "alice@acme.example.evil.com"})
	nameID := r.FindElement("./saml:Assertion/saml:Subject/saml:NameID")
	nameID.SetText("alice@acme.example")
	nameID.AddChild(etree.NewComment(""))
	nameID.AddChild(etree.NewText(".evil.com"))
	seeds["comment-in-nameid"] = serialize(r)

	// A NameID of another namespace before the real one.
	seeds["foreign-nameid"] = []byte(strings.Replace(string(serialize(signedAssertion(shape{}))), "<saml:NameID",
		`<evil:NameID xmlns:evil="urn:evil">admin@acme.example</evil:NameID><saml:NameID`, 1))

	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, b := range seeds {
		sum := sha256.Sum256(b)
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:4])), []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
