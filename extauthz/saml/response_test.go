package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tenantgate/tenantgate/extauthz/signin"
)

func TestHandleResponseAccepts(t *testing.T) {
	k := keys(t)
	tests := []struct {
		name string
		resp resp
		want signin.Identity
	}{
		{
			name: "signed assertion",
			resp: resp{},
			want: signin.Identity{Issuer: acmeIDP, Subject: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice", Roles: []string{"admin", "member"}},
		},
		{
			name: "signed response only",
			resp: resp{signResponse: true},
			want: signin.Identity{Issuer: acmeIDP, Subject: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice", Roles: []string{"admin", "member"}},
		},
		{
			name: "signed response and assertion",
			resp: resp{signResponse: true, signAssertion: true},
			want: signin.Identity{Issuer: acmeIDP, Subject: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice", Roles: []string{"admin", "member"}},
		},
		{
			name: "persistent NameID, email from the attribute, several groups",
			resp: resp{nameID: "G-1234", nameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
				attrs: map[string][]string{"email": {"bob@acme.example"}, "Role": {"devs", "admins"}}},
			want: signin.Identity{Issuer: acmeIDP, Subject: "G-1234", Email: "bob@acme.example", EmailVerified: true, Roles: []string{"admin", "dev", "member"}},
		},
		{
			name: "persistent NameID and no email: unverified, empty",
			resp: resp{nameID: "G-1234", nameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", attrs: map[string][]string{}},
			want: signin.Identity{Issuer: acmeIDP, Subject: "G-1234", Roles: []string{"member"}},
		},
		{
			name: "signature by the second certificate of the metadata",
			resp: resp{signer: &k.globexIDP},
			want: signin.Identity{Issuer: acmeIDP, Subject: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice", Roles: []string{"admin", "member"}},
		},
		{
			name: "clock skew within bounds",
			resp: resp{issueInstant: testNow.Add(MaxClockSkew - time.Second)},
			want: signin.Identity{Issuer: acmeIDP, Subject: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice", Roles: []string{"admin", "member"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := acmeTenant(t)
			if tc.resp.signer == &k.globexIDP {
				// a rollover: the metadata lists the old and the new cert
				tn = acmeTenant(t, func(m *entry) {
					m.IDPMetadataXML = idpMetadataXML(acmeIDP, k.acmeIDP.cert, k.globexIDP.cert)
				})
			}
			m := openMethod(t, tn, nil)
			got, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(docBytes(t, build(t, tc.resp))))
			if err != nil {
				t.Fatalf("HandleResponse: %v", err)
			}
			if got.Issuer != tc.want.Issuer || got.Subject != tc.want.Subject || got.Email != tc.want.Email ||
				got.EmailVerified != tc.want.EmailVerified || got.Name != tc.want.Name || !slices.Equal(got.Roles, tc.want.Roles) {
				t.Errorf("identity = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// mutate builds a valid signed response, then lets f tamper with the
// document after signing.
func mutate(t *testing.T, o resp, f func(doc *etree.Document)) []byte {
	t.Helper()
	doc := build(t, o)
	f(doc)
	return docBytes(t, doc)
}

func assertionOf(doc *etree.Document) *etree.Element {
	return doc.Root().SelectElement("saml:Assertion")
}

func TestHandleResponseRefuses(t *testing.T) {
	k := keys(t)
	other := EntityID(globexEndpoint)
	tests := []struct {
		name    string
		raw     func(t *testing.T) []byte
		attempt func() *signin.Attempt
		tenant  []tenantCfg
		// reason is part of the refusal's message: the response must be
		// refused for this reason, not some other.
		reason string
	}{
		{name: "unsigned response and assertion", reason: "neither the Response nor the Assertion is signed", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{sigMethod: unsignedMarker}))
		}},
		{name: "signed by another tenant's IdP key", reason: "assertion signature: not verified by the idp's certificate(s)", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{signer: &k.globexIDP}))
		}},
		{name: "response signed by another tenant's IdP key", reason: "response signature: not verified by the idp's certificate(s)", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{signer: &k.globexIDP, signResponse: true}))
		}},
		{name: "attacker key with its cert in KeyInfo", reason: "assertion signature: not verified by the idp's certificate(s)", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{signer: &k.attacker}))
		}},
		{name: "RSA-SHA1 from the right IdP", reason: "assertion signature: signature method", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{sigMethod: dsig.RSASHA1SignatureMethod}))
		}},
		{name: "signed assertion tampered after signing", reason: "assertion signature: not verified by the idp's certificate(s)", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				assertionOf(doc).FindElement("./saml:Subject/saml:NameID").SetText("admin@acme.example")
			})
		}},
		{name: "XSW: forged assertion before the signed one", reason: "want exactly one Assertion, found 2", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				forged := assertionElement(resp{nameID: "admin@acme.example", assertionID: "_forged"}.withDefaults(k))
				doc.Root().InsertChildAt(assertionOf(doc).Index(), forged)
			})
		}},
		{name: "XSW: forged assertion wrapping the signed one", reason: "want exactly one Assertion, found 2", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				signed := assertionOf(doc)
				forged := assertionElement(resp{nameID: "admin@acme.example", assertionID: "_forged"}.withDefaults(k))
				doc.Root().RemoveChild(signed)
				forged.AddChild(signed)
				doc.Root().AddChild(forged)
			})
		}},
		{name: "XSW: signed assertion hidden in Extensions, forged one in its place", reason: "want exactly one Assertion, found 2", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				signed := assertionOf(doc)
				doc.Root().RemoveChild(signed)
				ext := doc.Root().CreateElement("samlp:Extensions")
				ext.AddChild(signed)
				doc.Root().AddChild(assertionElement(resp{nameID: "admin@acme.example", assertionID: "_forged"}.withDefaults(k)))
			})
		}},
		{name: "XSW: signed response wrapped in a forged response's Signature Object", reason: "want exactly one Assertion, found 2", raw: func(t *testing.T) []byte {
			return mutate(t, resp{signResponse: true, signAssertion: false}, func(doc *etree.Document) {
				orig := doc.Root()
				o := resp{nameID: "admin@acme.example", assertionID: "_forged"}.withDefaults(k)
				forgedResp := responseElement(o, assertionElement(o))
				sig := orig.SelectElement("ds:Signature").Copy()
				obj := sig.CreateElement("ds:Object")
				obj.AddChild(orig)
				forgedResp.AddChild(sig)
				doc.SetRoot(forgedResp)
			})
		}},
		{name: "XSW: only the signed assertion, moved out of the Response's children", reason: "the Assertion is not a direct child of the Response in the assertion namespace", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				signed := assertionOf(doc)
				doc.Root().RemoveChild(signed)
				doc.Root().CreateElement("samlp:Extensions").AddChild(signed)
			})
		}},
		{name: "XSW: forged assertion reusing the signed assertion's ID", reason: "assertion signature: not verified by the idp's certificate(s)", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				signed := assertionOf(doc)
				doc.Root().RemoveChild(signed)
				forged := assertionElement(resp{nameID: "admin@acme.example"}.withDefaults(k))
				forged.AddChild(signed.SelectElement("ds:Signature").Copy())
				doc.Root().AddChild(forged)
			})
		}},
		{name: "XSW: unsigned assertion added after a signed response", reason: "want exactly one Assertion, found 2", raw: func(t *testing.T) []byte {
			return mutate(t, resp{signResponse: true, signAssertion: false}, func(doc *etree.Document) {
				doc.Root().AddChild(assertionElement(resp{nameID: "admin@acme.example", assertionID: "_forged"}.withDefaults(k)))
			})
		}},
		{name: "two assertions, both validly signed", reason: "want exactly one Assertion, found 2", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				o := resp{nameID: "admin@acme.example", assertionID: "_second"}.withDefaults(k)
				doc.Root().AddChild(sign(t, &k.acmeIDP, dsig.RSASHA256SignatureMethod, assertionElement(o)))
			})
		}},
		{name: "missing AudienceRestriction", reason: "assertion has no AudienceRestriction", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{audiences: []string{}}))
		}},
		{name: "audience is another tenant's SP", reason: "AudienceRestriction does not name this tenant's SP", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{audiences: []string{other}}))
		}},
		{name: "wrong Recipient", reason: "SubjectConfirmationData Recipient is not this tenant's ACS URL", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{recipient: ACSURL(globexEndpoint)}))
		}},
		{name: "wrong Destination", reason: "response Destination is not this tenant's ACS URL", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{destination: ACSURL(globexEndpoint)}))
		}},
		{name: "signed response without Destination", reason: "response Destination is not this tenant's ACS URL", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{destination: "-", signResponse: true}))
		}},
		{name: "InResponseTo of another attempt", reason: "response InResponseTo is not this attempt's request", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{inResponseTo: "id-other-attempt"}))
		}},
		{name: "no InResponseTo on a solicited response", reason: "SubjectConfirmationData InResponseTo is not this attempt's request", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{inResponseTo: "-"}))
		}},
		{name: "IdP-initiated when the tenant does not allow it", reason: "unsolicited (IdP-initiated) response and the tenant does not allow it", attempt: func() *signin.Attempt { return nil }, raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{inResponseTo: "-"}))
		}},
		{name: "IdP-initiated, allowed, but carrying an InResponseTo", reason: "response InResponseTo set but no sign-in attempt is in progress", attempt: func() *signin.Attempt { return nil },
			tenant: []tenantCfg{func(m *entry) { m.AllowIDPInitiated = true }},
			raw:    func(t *testing.T) []byte { return docBytes(t, build(t, resp{})) }},
		{name: "expired NotOnOrAfter", reason: "assertion expired", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{notOnOrAfter: testNow.Add(-MaxClockSkew - time.Second)}))
		}},
		{name: "old IssueInstant", reason: "response IssueInstant too old", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{issueInstant: testNow.Add(-MaxIssueDelay - MaxClockSkew - time.Second)}))
		}},
		{name: "IssueInstant in the future", reason: "response IssueInstant in the future", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{issueInstant: testNow.Add(MaxClockSkew + time.Minute), notOnOrAfter: testNow.Add(time.Hour)}))
		}},
		{name: "zero SubjectConfirmations", reason: "no bearer SubjectConfirmation", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{bearers: -1}))
		}},
		{name: "signed assertion without Issuer", reason: "assertion has no single Issuer", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{issuer: "-"}))
		}},
		{name: "signed response, assertion without Issuer", reason: "assertion has no single Issuer", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{issuer: "-", signResponse: true, signAssertion: false}))
		}},
		{name: "assertion Issuer is another IdP", reason: "assertion Issuer is not the idp's entity id", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{issuer: globexIDP}))
		}},
		{name: "response Issuer is another IdP", reason: "response Issuer is not the idp's entity id", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{respIssuer: globexIDP}))
		}},
		{name: "status is not success", reason: "idp answered status", raw: func(t *testing.T) []byte {
			return docBytes(t, build(t, resp{status: "urn:oasis:names:tc:SAML:2.0:status:Requester"}))
		}},
		{name: "NameID in a foreign namespace besides the real one", reason: "Subject holds a NameID this method does not accept", raw: func(t *testing.T) []byte {
			o := resp{}.withDefaults(k)
			a := assertionElement(o)
			subj := a.SelectElement("saml:Subject")
			evil := etree.NewElement("evil:NameID")
			evil.CreateAttr("xmlns:evil", "urn:evil")
			evil.SetText("admin@acme.example")
			subj.InsertChildAt(0, evil)
			a = sign(t, &k.acmeIDP, dsig.RSASHA256SignatureMethod, a)
			doc := etree.NewDocument()
			doc.SetRoot(responseElement(o, a))
			return docBytes(t, doc)
		}},
		{name: "only a NameID in a foreign namespace", reason: "Subject holds a NameID this method does not accept", raw: func(t *testing.T) []byte {
			o := resp{}.withDefaults(k)
			a := assertionElement(o)
			nid := a.FindElement("./saml:Subject/saml:NameID")
			nid.Space = "evil"
			nid.CreateAttr("xmlns:evil", "urn:evil")
			a = sign(t, &k.acmeIDP, dsig.RSASHA256SignatureMethod, a)
			doc := etree.NewDocument()
			doc.SetRoot(responseElement(o, a))
			return docBytes(t, doc)
		}},
		{name: "encrypted assertion", reason: "encrypted assertions are not accepted", raw: func(t *testing.T) []byte {
			return mutate(t, resp{}, func(doc *etree.Document) {
				doc.Root().CreateElement("saml:EncryptedAssertion")
			})
		}},
		{name: "unknown condition", reason: "unknown condition Condition", raw: func(t *testing.T) []byte {
			o := resp{}.withDefaults(k)
			a := assertionElement(o)
			a.SelectElement("saml:Conditions").CreateElement("saml:Condition")
			a = sign(t, &k.acmeIDP, dsig.RSASHA256SignatureMethod, a)
			doc := etree.NewDocument()
			doc.SetRoot(responseElement(o, a))
			return docBytes(t, doc)
		}},
		{name: "DOCTYPE", reason: "xml has a DOCTYPE", raw: func(t *testing.T) []byte {
			return append([]byte(`<?xml version="1.0"?><!DOCTYPE r [<!ELEMENT r ANY>]>`), docBytes(t, build(t, resp{}))...)
		}},
		{name: "billion laughs", reason: "xml has a DOCTYPE", raw: func(t *testing.T) []byte {
			var b strings.Builder
			b.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">`)
			for i := 1; i < 10; i++ {
				b.WriteString(`<!ENTITY lol` + string(rune('0'+i)) + ` "` + strings.Repeat("&lol"+string(rune('0'+i-1))+";", 10) + `">`)
			}
			b.WriteString(`]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol9;</samlp:Response>`)
			return []byte(b.String())
		}},
		{name: "not well formed", reason: "xml not well formed", raw: func(t *testing.T) []byte {
			b := docBytes(t, build(t, resp{}))
			return b[:len(b)-10]
		}},
		{name: "attempt of another tenant", reason: "attempt belongs to another tenant", attempt: func() *signin.Attempt {
			a := acmeAttempt()
			a.TenantID = globexTenantID
			return a
		}, raw: func(t *testing.T) []byte { return docBytes(t, build(t, resp{})) }},
		{name: "attempt started at another endpoint", reason: "attempt started at another endpoint", attempt: func() *signin.Attempt {
			a := acmeAttempt()
			a.Endpoint = signin.Endpoint{Origin: "https://custom.acme.example"}
			return a
		}, raw: func(t *testing.T) []byte { return docBytes(t, build(t, resp{})) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openMethod(t, acmeTenant(t, tc.tenant...), nil)
			a := acmeAttempt()
			if tc.attempt != nil {
				a = tc.attempt()
			}
			id, err := m.HandleResponse(context.Background(), acmeEndpoint, a, post(tc.raw(t)))
			if err == nil {
				t.Fatalf("accepted: %+v", id)
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

func TestHandleResponseCommentInjection(t *testing.T) {
	// The IdP signs the NameID "alice@acme.example.evil.com"; the attacker
	// splits it with a comment. The signature still holds (comments are not
	// signed) and the subject must be the whole value.
	raw := mutate(t, resp{nameID: "alice@acme.example.evil.com", nameIDFormat: emailNameIDFormat, attrs: map[string][]string{}}, func(doc *etree.Document) {
		nid := assertionOf(doc).FindElement("./saml:Subject/saml:NameID")
		for _, c := range slices.Clone(nid.Child) {
			nid.RemoveChild(c)
		}
		nid.AddChild(etree.NewText("alice@acme.example"))
		nid.AddChild(etree.NewComment(""))
		nid.AddChild(etree.NewText(".evil.com"))
	})
	if !bytes.Contains(raw, []byte("alice@acme.example<!---->.evil.com")) {
		t.Fatalf("fixture did not inject the comment: %s", raw)
	}
	m := openMethod(t, acmeTenant(t, func(m *entry) { m.NameIDFormat = NameIDEmailAddress }), nil)
	id, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw))
	if err != nil {
		// refusing is fine too; truncating is not
		t.Logf("refused: %v", err)
		return
	}
	if id.Subject != "alice@acme.example.evil.com" || id.Email != "alice@acme.example.evil.com" {
		t.Errorf("subject %q, email %q: truncated by the comment", id.Subject, id.Email)
	}
}

func TestHandleResponseIDPInitiated(t *testing.T) {
	m := openMethod(t, acmeTenant(t, func(m *entry) { m.AllowIDPInitiated = true }), nil)
	id, err := m.HandleResponse(context.Background(), acmeEndpoint, nil, post(docBytes(t, build(t, resp{inResponseTo: "-"}))))
	if err != nil {
		t.Fatalf("IdP-initiated response refused with allowIDPInitiated: %v", err)
	}
	if id.Subject != "alice@acme.example" {
		t.Errorf("subject = %q", id.Subject)
	}
}

func TestHandleResponseReplay(t *testing.T) {
	replay := &memReplay{}
	raw := docBytes(t, build(t, resp{}))
	m := openMethod(t, acmeTenant(t), replay)
	if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw))
	if !errors.Is(err, ErrInvalidResponse) || !errors.Is(err, ErrReplay) {
		t.Fatalf("second use: err = %v, want a replay refusal", err)
	}
	// A restart (a new Method on the same durable cache) still refuses.
	m2 := openMethod(t, acmeTenant(t), replay)
	if _, err := m2.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw)); err == nil {
		t.Fatal("replay accepted after a restart")
	}
	// The cache is told how long to remember: past every NotOnOrAfter
	// plus the skew.
	for _, exp := range replay.seen {
		if want := testNow.Add(5*time.Minute + MaxClockSkew); !exp.Equal(want) {
			t.Errorf("replay expiry %v, want %v", exp, want)
		}
	}
}

type failingReplay struct{}

func (failingReplay) UseAssertionID(context.Context, string, string, time.Time) error {
	return errors.New("store unavailable")
}

func TestHandleResponseReplayCacheDownFailsClosed(t *testing.T) {
	m := openMethod(t, acmeTenant(t), failingReplay{})
	if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(docBytes(t, build(t, resp{})))); err == nil {
		t.Fatal("accepted while the replay cache was down")
	}
}

func TestHandleResponseInputLimits(t *testing.T) {
	m := openMethod(t, acmeTenant(t), nil)
	// 1 MiB of zeros, deflated: a few KiB that would inflate to 1 MiB.
	var bomb bytes.Buffer
	w, _ := flate.NewWriter(&bomb, flate.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Close()
	tests := []struct {
		name string
		body string
	}{
		{"deflate bomb", url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(bomb.Bytes())}}.Encode()},
		{"oversized value", url.Values{"SAMLResponse": {strings.Repeat("A", MaxResponseSize+4)}}.Encode()},
		{"oversized body", "SAMLResponse=" + strings.Repeat("A", 1<<20)},
		{"not base64", url.Values{"SAMLResponse": {"<samlp:Response/>"}}.Encode()},
		{"empty", url.Values{"SAMLResponse": {""}}.Encode()},
		{"missing", url.Values{"RelayState": {"x"}}.Encode()},
		{"twice", url.Values{"SAMLResponse": {"PHg+", "PHg+"}}.Encode()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), postForm(tc.body))
			if !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("err = %v, want ErrInvalidResponse", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to refuse", d)
			}
		})
	}
}

func TestHandleResponseRecoversPanics(t *testing.T) {
	m := openMethod(t, acmeTenant(t), nil)
	m.idp = &idpSource{now: m.now, log: m.log} // no metadata: dereferencing it panics
	_, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(docBytes(t, build(t, resp{}))))
	if !errors.Is(err, ErrInvalidResponse) {
		t.Fatalf("err = %v, want a refusal", err)
	}
}

func TestHandleResponseKeyInfoIgnored(t *testing.T) {
	// A valid signature from the IdP whose KeyInfo names the attacker's
	// certificate: KeyInfo plays no part, so this is accepted...
	k := keys(t)
	raw := mutate(t, resp{}, func(doc *etree.Document) {
		c := assertionOf(doc).FindElement("./ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate")
		c.SetText(base64.StdEncoding.EncodeToString(k.attacker.cert.Raw))
	})
	m := openMethod(t, acmeTenant(t), nil)
	if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw)); err != nil {
		t.Fatalf("valid IdP signature refused because of KeyInfo: %v", err)
	}
	// ...and the attacker's signature with the IdP's certificate in KeyInfo
	// is refused.
	raw = mutate(t, resp{signer: &k.attacker, assertionID: "_other"}, func(doc *etree.Document) {
		c := assertionOf(doc).FindElement("./ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate")
		c.SetText(base64.StdEncoding.EncodeToString(k.acmeIDP.cert.Raw))
	})
	if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw)); err == nil {
		t.Fatal("attacker signature accepted")
	}
}
