package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestNameIDRules: what keys the account of a signed assertion, for each
// nameIDFormat (and subjectAttribute) and each NameID format an IdP sends.
func TestNameIDRules(t *testing.T) {
	const kerberos = "urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos"
	uid := func(vs ...string) map[string][]string {
		return map[string][]string{"uid": vs, "email": {"alice@acme.example"}}
	}
	tests := []struct {
		name             string
		nameIDFormat     string // the method's
		subjectAttribute string
		resp             resp
		edit             func(as *etree.Element) // after signing when signed, else before
		editBeforeSign   bool
		wantSubject      string
		wantEmail        string
		wantReason       string // the signin.Refusal's; "" with wantErr: a plain refusal
		wantErr          string // in the log text
	}{
		// The default, persistent: also what a stored method without the
		// field means.
		{name: "default: persistent accepted", resp: resp{nameID: "G-1234"}, wantSubject: "G-1234", wantEmail: "alice@acme.example"},
		{name: "persistent named: persistent accepted", nameIDFormat: NameIDPersistent, resp: resp{nameID: "G-1234"}, wantSubject: "G-1234"},
		{name: "default: transient refused", resp: resp{nameIDFormat: transientNameIDFormat},
			wantReason: reasonTransientNameID, wantErr: "transient"},
		{name: "default: emailAddress refused, naming both", resp: resp{nameIDFormat: emailNameIDFormat},
			wantReason: reasonNameIDFormat, wantErr: "NameID format emailAddress, but the method's nameIDFormat is persistent"},
		{name: "default: unspecified refused", resp: resp{nameIDFormat: unspecifiedNameIDFormat},
			wantReason: reasonNameIDFormat, wantErr: "NameID format unspecified, but the method's nameIDFormat is persistent"},
		{name: "default: no Format (unspecified) refused", resp: resp{nameIDFormat: "-"},
			wantReason: reasonNameIDFormat, wantErr: "NameID format unspecified"},
		{name: "default: another format refused, quoted in the log", resp: resp{nameIDFormat: kerberos},
			wantReason: reasonNameIDFormat, wantErr: `NameID format "` + kerberos + `"`},

		{name: "emailAddress: accepted, the NameID is the email", nameIDFormat: NameIDEmailAddress,
			resp:        resp{nameID: "Bob@Acme.example", nameIDFormat: emailNameIDFormat, attrs: map[string][]string{}},
			wantSubject: "Bob@Acme.example", wantEmail: "bob@acme.example"},
		{name: "emailAddress: persistent refused", nameIDFormat: NameIDEmailAddress, resp: resp{},
			wantReason: reasonNameIDFormat, wantErr: "NameID format persistent, but the method's nameIDFormat is emailAddress"},

		{name: "unspecified: unspecified accepted", nameIDFormat: NameIDUnspecified,
			resp: resp{nameID: "carol", nameIDFormat: unspecifiedNameIDFormat}, wantSubject: "carol"},
		{name: "unspecified: no Format accepted", nameIDFormat: NameIDUnspecified,
			resp: resp{nameID: "carol", nameIDFormat: "-"}, wantSubject: "carol"},
		{name: "unspecified: SAML 1.0 unspecified accepted", nameIDFormat: NameIDUnspecified,
			resp: resp{nameID: "carol", nameIDFormat: unspecified10NameIDFormat}, wantSubject: "carol"},
		{name: "unspecified: emailAddress accepted", nameIDFormat: NameIDUnspecified,
			resp: resp{nameID: "carol@acme.example", nameIDFormat: emailNameIDFormat}, wantSubject: "carol@acme.example"},
		{name: "unspecified: persistent accepted", nameIDFormat: NameIDUnspecified,
			resp: resp{nameID: "G-9", nameIDFormat: persistentNameIDFormat}, wantSubject: "G-9"},
		{name: "unspecified: transient still refused", nameIDFormat: NameIDUnspecified,
			resp: resp{nameIDFormat: transientNameIDFormat}, wantReason: reasonTransientNameID, wantErr: "transient"},

		// subjectAttribute: the attribute keys the account, the NameID
		// keys nothing.
		{name: "transient + subjectAttribute: keyed by the attribute", nameIDFormat: NameIDTransient, subjectAttribute: "uid",
			resp: resp{nameID: "_t1", nameIDFormat: transientNameIDFormat, attrs: uid("u-1")}, wantSubject: "u-1", wantEmail: "alice@acme.example"},
		{name: "default + subjectAttribute: a transient NameID keys nothing", subjectAttribute: "uid",
			resp: resp{nameID: "_t2", nameIDFormat: transientNameIDFormat, attrs: uid("u-1")}, wantSubject: "u-1"},
		{name: "subjectAttribute: the NameID's format is not checked", subjectAttribute: "uid",
			resp: resp{nameIDFormat: kerberos, attrs: uid("u-1")}, wantSubject: "u-1"},
		{name: "subjectAttribute missing", subjectAttribute: "uid", resp: resp{nameIDFormat: transientNameIDFormat},
			wantReason: reasonSubjectAttribute, wantErr: `subjectAttribute "uid": 0 values`},
		{name: "subjectAttribute with two values", subjectAttribute: "uid", resp: resp{attrs: uid("u-1", "u-2")},
			wantReason: reasonSubjectAttribute, wantErr: "2 values"},
		{name: "subjectAttribute empty", subjectAttribute: "uid", resp: resp{attrs: uid("")},
			wantReason: reasonSubjectAttribute, wantErr: "empty value"},
		{name: "subjectAttribute in two Attribute elements", subjectAttribute: "uid", resp: resp{attrs: uid("u-1")},
			editBeforeSign: true, edit: func(as *etree.Element) {
				a := as.FindElement("./saml:AttributeStatement").CreateElement("saml:Attribute")
				a.CreateAttr("Name", "uid")
				a.CreateElement("saml:AttributeValue").SetText("u-2")
			}, wantReason: reasonSubjectAttribute, wantErr: "2 values"},
		{name: "subjectAttribute in a second AttributeStatement", subjectAttribute: "uid", resp: resp{attrs: uid("u-1")},
			editBeforeSign: true, edit: func(as *etree.Element) {
				a := as.CreateElement("saml:AttributeStatement").CreateElement("saml:Attribute")
				a.CreateAttr("Name", "uid")
				a.CreateElement("saml:AttributeValue").SetText("u-2")
			}, wantReason: reasonSubjectAttribute, wantErr: "2 values"},
		{name: "subjectAttribute value in another namespace counts", subjectAttribute: "uid", resp: resp{attrs: uid("u-1")},
			editBeforeSign: true, edit: func(as *etree.Element) {
				v := as.FindElement("./saml:AttributeStatement/saml:Attribute[@Name='uid']").CreateElement("x:AttributeValue")
				v.CreateAttr("xmlns:x", "urn:example:other")
				v.SetText("u-2")
			}, wantReason: reasonSubjectAttribute, wantErr: "2 values"},
		{name: "subjectAttribute value that is not text", subjectAttribute: "uid", resp: resp{attrs: uid("u-1")},
			editBeforeSign: true, edit: func(as *etree.Element) {
				as.FindElement("./saml:AttributeStatement/saml:Attribute[@Name='uid']/saml:AttributeValue").CreateElement("saml:NameID").SetText("u-2")
			}, wantReason: reasonSubjectAttribute, wantErr: "not plain text"},
		{name: "subjectAttribute longer than a NameID may be", subjectAttribute: "uid", resp: resp{attrs: uid(strings.Repeat("u", maxNameIDSize+1))},
			wantReason: reasonSubjectAttribute, wantErr: "longer than"},
		{name: "subjectAttribute split by a comment: the whole value", subjectAttribute: "uid", resp: resp{attrs: uid("u-1-admin")},
			edit: func(as *etree.Element) {
				v := as.FindElement("./saml:AttributeStatement/saml:Attribute[@Name='uid']/saml:AttributeValue")
				for _, c := range slices.Clone(v.Child) {
					v.RemoveChild(c)
				}
				v.AddChild(etree.NewText("u-1"))
				v.AddChild(etree.NewComment(""))
				v.AddChild(etree.NewText("-admin"))
			}, wantSubject: "u-1-admin"},
		{name: "subjectAttribute added after the IdP signed: refused", subjectAttribute: "uid", resp: resp{attrs: uid()},
			edit: func(as *etree.Element) {
				for _, v := range as.FindElements("./saml:AttributeStatement/saml:Attribute[@Name='uid']") {
					v.CreateElement("saml:AttributeValue").SetText("someone-else")
				}
			}, wantErr: "signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openMethod(t, acmeTenant(t, func(m *entry) {
				m.NameIDFormat, m.SubjectAttribute = tc.nameIDFormat, tc.subjectAttribute
			}), nil)
			var raw []byte
			switch {
			case tc.edit == nil:
				raw = docBytes(t, build(t, tc.resp))
			case tc.editBeforeSign:
				o := tc.resp.withDefaults(keys(t))
				as := assertionElement(o)
				tc.edit(as)
				doc := etree.NewDocument()
				doc.SetRoot(responseElement(o, sign(t, o.signer, o.sigMethod, as)))
				raw = docBytes(t, doc)
			default:
				raw = mutate(t, tc.resp, func(doc *etree.Document) { tc.edit(assertionOf(doc)) })
			}
			id, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(raw))
			var r *signin.Refusal
			explained := errors.As(err, &r)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr == "":
				if id.Subject != tc.wantSubject || id.Issuer != acmeIDP {
					t.Errorf("identity (%q, %q), want (%q, %q)", id.Issuer, id.Subject, acmeIDP, tc.wantSubject)
				}
				if tc.wantEmail != "" && id.Email != tc.wantEmail {
					t.Errorf("email %q, want %q", id.Email, tc.wantEmail)
				}
			case err == nil:
				t.Fatalf("accepted as %+v, want refused (%s)", id, tc.wantErr)
			default:
				if !errors.Is(err, ErrInvalidResponse) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want ErrInvalidResponse containing %q", err, tc.wantErr)
				}
				if explained != (tc.wantReason != "") || (explained && r.Reason != tc.wantReason) {
					t.Errorf("refusal %+v, want reason %q", r, tc.wantReason)
				}
				if id.Subject != "" {
					t.Errorf("refused, yet identity %+v", id)
				}
			}
		})
	}
}

// TestNameIDRefusalPage: what the sign-in page says for each NameID
// refusal names what to set at the IdP, and never the IdP's own text.
func TestNameIDRefusalPage(t *testing.T) {
	for _, tc := range []struct {
		name, nameIDFormat, subjectAttribute, got string
		want                                      []string
	}{
		{"transient", "", "", transientNameIDFormat, []string{"transient Name ID", "persistent", "Force name ID format On"}},
		{"mismatch", "", "", emailNameIDFormat, []string{"format emailAddress", "expects persistent", "Name ID format to persistent"}},
		{"unknown format", NameIDEmailAddress, "", "urn:evil:<b>", []string{"format another format", "expects emailAddress"}},
		{"subject attribute", "", "employeeID", persistentNameIDFormat, []string{`"employeeID"`, "subjectAttribute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openMethod(t, acmeTenant(t, func(m *entry) { m.NameIDFormat, m.SubjectAttribute = tc.nameIDFormat, tc.subjectAttribute }), nil)
			_, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), post(docBytes(t, build(t, resp{nameIDFormat: tc.got}))))
			var r *signin.Refusal
			if !errors.As(err, &r) {
				t.Fatalf("err = %v, want a signin.Refusal", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Message, w) {
					t.Errorf("message %q lacks %q", r.Message, w)
				}
			}
			if strings.Contains(r.Message, "urn:evil") {
				t.Errorf("message %q echoes the IdP's format", r.Message)
			}
		})
	}
}

// TestNameIDFormatInMetadataAndRequest: the SP metadata states the
// method's one NameID format, and the AuthnRequest asks for it with
// AllowCreate; unspecified asks for none.
func TestNameIDFormatInMetadataAndRequest(t *testing.T) {
	for _, tc := range []struct {
		nameIDFormat, subjectAttribute string
		want                           string
	}{
		{"", "", persistentNameIDFormat},
		{NameIDPersistent, "", persistentNameIDFormat},
		{NameIDEmailAddress, "", emailNameIDFormat},
		{NameIDUnspecified, "", unspecifiedNameIDFormat},
		{NameIDTransient, "uid", transientNameIDFormat},
	} {
		t.Run(cmpOr(tc.nameIDFormat, "absent"), func(t *testing.T) {
			m := openMethod(t, acmeTenant(t, func(m *entry) { m.NameIDFormat, m.SubjectAttribute = tc.nameIDFormat, tc.subjectAttribute }), nil)
			data, err := m.Metadata(acmeEndpoint)
			if err != nil {
				t.Fatal(err)
			}
			var ed saml.EntityDescriptor
			if err := xml.Unmarshal(data, &ed); err != nil {
				t.Fatal(err)
			}
			if got := ed.SPSSODescriptors[0].NameIDFormats; len(got) != 1 || string(got[0]) != tc.want {
				t.Errorf("metadata NameIDFormat %q, want [%s]", got, tc.want)
			}
			if !bytes.Contains(data, []byte("<NameIDFormat>"+tc.want+"</NameIDFormat>")) {
				t.Errorf("metadata lacks <NameIDFormat>%s</NameIDFormat>:\n%s", tc.want, data)
			}

			a := acmeAttempt()
			raw, _, err := m.AuthnRequestURL(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			deflated, _ := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
			inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(inflated); err != nil {
				t.Fatal(err)
			}
			pol := doc.Root().SelectElement("NameIDPolicy")
			if pol == nil || pol.SelectAttrValue("AllowCreate", "") != "true" {
				t.Fatalf("NameIDPolicy %v, want AllowCreate=true:\n%s", pol, inflated)
			}
			f := pol.SelectAttr("Format")
			switch {
			case tc.want == unspecifiedNameIDFormat && f != nil:
				t.Errorf("unspecified: NameIDPolicy Format %q, want none (the IdP chooses)", f.Value)
			case tc.want != unspecifiedNameIDFormat && (f == nil || f.Value != tc.want):
				t.Errorf("NameIDPolicy Format %v, want %s", f, tc.want)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestValidateNameID: the tenant-file checks of nameIDFormat and
// subjectAttribute, and the warning for unspecified.
func TestValidateNameID(t *testing.T) {
	types := tenants.MethodTypes{{Name: Type, NewConfig: NewConfig}}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
		warn    bool
	}{
		{name: "absent", cfg: Config{}},
		{name: "persistent", cfg: Config{NameIDFormat: "persistent"}},
		{name: "emailAddress", cfg: Config{NameIDFormat: "emailAddress"}},
		{name: "unspecified warns", cfg: Config{NameIDFormat: "unspecified"}, warn: true},
		{name: "unspecified with subjectAttribute: the NameID keys nothing", cfg: Config{NameIDFormat: "unspecified", SubjectAttribute: "uid"}},
		{name: "transient with subjectAttribute", cfg: Config{NameIDFormat: "transient", SubjectAttribute: "uid"}},
		{name: "transient alone", cfg: Config{NameIDFormat: "transient"}, wantErr: "methods[0].nameIDFormat: transient needs subjectAttribute"},
		{name: "a URI is not a name", cfg: Config{NameIDFormat: persistentNameIDFormat}, wantErr: "must be one of persistent, emailAddress, unspecified, transient"},
		{name: "case counts", cfg: Config{NameIDFormat: "Persistent"}, wantErr: "must be one of"},
		{name: "subjectAttribute with spaces", cfg: Config{SubjectAttribute: " uid"}, wantErr: "methods[0].subjectAttribute: must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.IDPMetadataURL = "https://idp.example/md"
			m := entry{Type: Type, Config: tc.cfg}.method()
			err := tenants.Validate([]tenants.Tenant{{ID: "acme", Methods: []tenants.Method{m}}}, tenants.ValidateOptions{Methods: types})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if w := tc.cfg.Warnings(); (len(w) > 0) != tc.warn || (tc.warn && !strings.Contains(w[0], "nameIDFormat unspecified")) {
				t.Errorf("warnings %q, want some: %v", w, tc.warn)
			}
		})
	}
}
