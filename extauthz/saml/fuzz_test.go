package saml

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

var genCorpus = flag.Bool("gen-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzHandleResponse from the response fixtures")

// FuzzHandleResponse feeds arbitrary bytes to the response validation. It
// must never panic (check runs here without the recover that guards it in
// production) and never accept: the fixture keys are made afresh on every
// run, so nothing in the corpus carries a signature this run's IdP made.
func FuzzHandleResponse(f *testing.F) {
	m := openMethod(f, acmeTenant(f), &memReplay{})
	x := expectation{idp: m.idp.get(), entityID: EntityID(acmeEndpoint), acs: ACSURL(acmeEndpoint), requestID: requestID, now: testNow}
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if v, err := m.check(x, raw); err == nil {
			t.Fatalf("accepted: %+v", v.identity)
		}
		if len(raw) <= MaxResponseSize/2 {
			form := url.Values{"SAMLResponse": {encodeB64(raw)}}
			if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), postForm(form.Encode())); err == nil {
				t.Fatal("HandleResponse accepted")
			}
		}
	})
}

// TestGenerateFuzzCorpus rewrites the committed seed corpus when run with
// -gen-fuzz-corpus: go test ./extauthz/saml -run TestGenerateFuzzCorpus -gen-fuzz-corpus
func TestGenerateFuzzCorpus(t *testing.T) {
	if !*genCorpus {
		t.Skip("run with -gen-fuzz-corpus to rewrite the seed corpus")
	}
	k := keys(t)
	seeds := map[string][]byte{
		"valid-signed-assertion":  docBytes(t, build(t, resp{})),
		"valid-signed-response":   docBytes(t, build(t, resp{signResponse: true})),
		"unsigned":                docBytes(t, build(t, resp{sigMethod: unsignedMarker})),
		"rsa-sha1":                docBytes(t, build(t, resp{sigMethod: dsig.RSASHA1SignatureMethod})),
		"no-issuer":               docBytes(t, build(t, resp{issuer: "-"})),
		"no-audience":             docBytes(t, build(t, resp{audiences: []string{}})),
		"no-subject-confirmation": docBytes(t, build(t, resp{bearers: -1})),
		"idp-initiated":           docBytes(t, build(t, resp{inResponseTo: "-"})),
		"two-assertions": func() []byte {
			doc := build(t, resp{})
			doc.Root().AddChild(assertionElement(resp{assertionID: "_2"}.withDefaults(k)))
			return docBytes(t, doc)
		}(),
		"xsw-wrapped": func() []byte {
			doc := build(t, resp{})
			signed := doc.Root().SelectElement("saml:Assertion")
			forged := assertionElement(resp{nameID: "admin@acme.example", assertionID: "_forged"}.withDefaults(k))
			doc.Root().RemoveChild(signed)
			forged.AddChild(signed)
			doc.Root().AddChild(forged)
			return docBytes(t, doc)
		}(),
		"comment-in-nameid": func() []byte {
			doc := build(t, resp{nameID: "alice@acme.example.evil.com"})
			nid := doc.Root().FindElement("./saml:Assertion/saml:Subject/saml:NameID")
			nid.SetText("alice@acme.example")
			nid.AddChild(etree.NewComment(""))
			nid.AddChild(etree.NewText(".evil.com"))
			return docBytes(t, doc)
		}(),
		"foreign-nameid": []byte(strings.Replace(string(docBytes(t, build(t, resp{}))), "<saml:NameID", `<evil:NameID xmlns:evil="urn:evil">admin@acme.example</evil:NameID><saml:NameID`, 1)),
		"doctype":        []byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&b;</samlp:Response>`),
		"deep":           []byte(strings.Repeat("<a>", 200) + strings.Repeat("</a>", 200)),
		"garbage":        []byte("\x00\xff<<<>>>"),
		"empty":          {},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandleResponse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		sum := sha256.Sum256(b)
		file := filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:4]))
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
