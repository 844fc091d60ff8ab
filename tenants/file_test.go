package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// contractFile is the example of CONTRACT.md, "Tenant file", with the
// social method's clientID and clientSecret filled in, as an operator
// completes it (contractFileVerbatim is the example as written).
const contractFile = `
tenants:
  - id: acme                      # [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?, immutable
    name: Acme Corp
    domains: [login.acme.test]    # extra exact hosts; <id>.<base-domain> is implied
    emailDomains: [acme.test]     # home-realm discovery; a domain belongs to one tenant
    status: active                # active | suspended
    methods:                      # how people sign in; order is the order shown
      - type: password
      - type: oidc
        issuer: https://idp.example/realms/acme
        clientID: tenantgate
        clientSecret: s3cr3t-do-not-print
      - type: saml
        idpMetadataURL: https://idp.example/realms/acme/protocol/saml/descriptor
      - type: social
        provider: github          # github | google | microsoft | generic
        clientID: Iv1.0123456789abcdef
        clientSecret: gh-s3cr3t-do-not-print
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:                        # first match wins; no match = authenticated
      - {path: /public/, access: anonymous}
      - {path: /admin/, methods: [GET, POST], permission: "admin:access"}
`

func contractTenant() Tenant {
	return Tenant{
		ID:           "acme",
		Name:         "Acme Corp",
		Domains:      []string{"login.acme.test"},
		EmailDomains: []string{"acme.test"},
		Status:       StatusActive,
		Methods: []Method{
			{Type: MethodPassword},
			{Type: MethodOIDC, Issuer: "https://idp.example/realms/acme", ClientID: "tenantgate", ClientSecret: "s3cr3t-do-not-print"},
			{Type: MethodSAML, IDPMetadataURL: "https://idp.example/realms/acme/protocol/saml/descriptor"},
			{Type: MethodSocial, Provider: "github", ClientID: "Iv1.0123456789abcdef", ClientSecret: "gh-s3cr3t-do-not-print"},
		},
		Roles: map[string]Role{
			"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
			"member": {Permissions: []string{"docs:read"}},
		},
		Rules: []Rule{
			{Path: "/public/", Access: AccessAnonymous},
			{Path: "/admin/", Methods: []string{"GET", "POST"}, Permission: "admin:access"},
		},
	}
}

// testdata/contract-example.yaml is CONTRACT.md's example exactly as
// written: the oidc secret is the literal "..." and the social method names
// only its provider. Operators copy it, so it must apply; the bare social
// method is stored but not offered (Method.Incomplete).
func TestContractExampleVerbatimValidates(t *testing.T) {
	data, err := os.ReadFile("testdata/contract-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ParseFile(data)
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	if err := Validate(ts, ValidateOptions{}); err != nil {
		t.Fatalf("CONTRACT's example as written does not validate: %v", err)
	}
	want := contractTenant()
	want.Methods[1].ClientSecret = "..."
	want.Methods[3].ClientID, want.Methods[3].ClientSecret = "", ""
	// The fields CONTRACT's example spells out at their defaults.
	want.MFA, want.CrossOriginGuard, want.TrustedOrigins = MFAOff, new(true), []string{}
	if !reflect.DeepEqual(ts, []Tenant{want}) {
		t.Fatalf("got  %+v\nwant %+v", ts, []Tenant{want})
	}
	for i, m := range ts[0].Methods {
		if got := m.Incomplete(); got != (i == 3) {
			t.Errorf("methods[%d] (%s).Incomplete() = %v", i, m.Type, got)
		}
	}
}

func TestParseFileContractExample(t *testing.T) {
	ts, err := ParseFile([]byte(contractFile))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	if want := []Tenant{contractTenant()}; !reflect.DeepEqual(ts, want) {
		t.Fatalf("got  %+v\nwant %+v", ts, want)
	}
	if err := Validate(ts, ValidateOptions{}); err != nil {
		t.Fatalf("the contract's example does not validate: %v", err)
	}
}

func TestParseFileJSON(t *testing.T) {
	want := []Tenant{contractTenant()}
	data, err := json.Marshal(map[string]any{"tenants": want})
	if err != nil {
		t.Fatal(err)
	}
	// Tab-indented JSON, as editors write it, is read too.
	var ind bytes.Buffer
	json.Indent(&ind, data, "", "\t")
	for _, in := range [][]byte{data, ind.Bytes()} {
		ts, err := ParseFile(in)
		if err != nil {
			t.Fatalf("ParseFile: %v", err)
		}
		if !reflect.DeepEqual(ts, want) {
			t.Fatalf("got  %+v\nwant %+v", ts, want)
		}
	}
}

func TestParseFileDemoFile(t *testing.T) {
	data, err := os.ReadFile("../scripts/demo-tenants.yaml")
	if err != nil {
		t.Fatalf("the demo's tenant file (make run): %v", err)
	}
	ts, err := ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(ts, ValidateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wants    []string
	}{
		{"empty", "", []string{"empty"}},
		{"blank", " \n\t\n", []string{"empty"}},
		{"unknown tenant field", "tenants:\n  - id: acme\n    methods: [{type: password}]\n    colour: red\n",
			[]string{`tenants[0] (id "acme"): unknown field "colour" (line 4)`}},
		{"unknown method field", "tenants:\n  - id: acme\n    methods:\n      - type: oidc\n        clientSecretFile: /etc/x\n",
			[]string{`tenants[0] (id "acme").methods[0]: unknown field "clientSecretFile" (line 5)`}},
		{"unknown role field", "tenants:\n  - id: acme\n    roles:\n      admin: {perms: [x]}\n",
			[]string{`tenants[0] (id "acme").roles.admin: unknown field "perms" (line 4)`}},
		{"unknown rule field", "tenants:\n  - id: acme\n    rules: [{path: /, allow: true}]\n",
			[]string{`tenants[0] (id "acme").rules[0]: unknown field "allow"`}},
		{"unknown top-level field", "tenants: []\nversion: 2\n", []string{`top level: unknown field "version" (line 2)`}},
		{"every unknown field at once", "tenants:\n  - id: a\n    x: 1\n  - id: b\n    y: 2\n",
			[]string{`tenants[0] (id "a"): unknown field "x"`, `tenants[1] (id "b"): unknown field "y"`}},
		{"store fields cannot be set", "tenants:\n  - id: acme\n    InternalID: stolen\n", []string{`unknown field "InternalID"`}},
		{"sealed secret cannot be set", "tenants:\n  - id: acme\n    methods: [{type: oidc, SealedClientSecret: AAAA}]\n", []string{`unknown field "SealedClientSecret"`}},
		{"case matters", "tenants:\n  - ID: acme\n", []string{`unknown field "ID"`}},
		{"json unknown field", `{"tenants": [{"id": "acme", "colour": "red"}]}`, []string{`tenants[0] (id "acme"): unknown field "colour"`}},
		{"unknown branding field", "tenants:\n  - id: acme\n    branding: {logoURL: https://cdn.acme.test/l.png, colour: red}\n",
			[]string{`tenants[0] (id "acme").branding: unknown field "colour" (line 3)`}},
		{"branding not a mapping", "tenants:\n  - id: acme\n    branding: \"#0a66c2\"\n", []string{"line 3", "cannot unmarshal"}},
		{"duplicate key", "tenants:\n  - id: acme\n    id: globex\n", []string{`"id" already defined`}},
		{"json duplicate key", `{"tenants": [{"id": "acme", "id": "globex"}]}`, []string{`already defined`}},
		{"two documents", "tenants: []\n---\ntenants: []\n", []string{"more than one YAML document"}},
		{"wrong type", "tenants:\n  - id: acme\n    domains: login.acme.test\n", []string{"line 3", "cannot unmarshal"}},
		{"top level list", "- id: acme\n", []string{"top level must be a mapping"}},
		{"top level scalar", "acme\n", []string{"top level must be a mapping"}},
		{"no tenants key", "{}\n", []string{"no tenants list"}},
		{"syntax error", "tenants: [\n", []string{"line"}},
		{"tenants not a list", "tenants: {id: acme}\n", []string{"cannot unmarshal"}},
		{"too big", "tenants: []\n#" + strings.Repeat("x", MaxFileSize), []string{"larger than 4 MiB"}},
		{"alias bomb", aliasBomb(), []string{""}},
		{"alias bomb in the schema", schemaAliasBomb(), []string{"too many values"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := ParseFile([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseFile accepted it: %+v", ts)
			}
			if !errors.Is(err, ErrBadFile) {
				t.Errorf("error %v does not wrap ErrBadFile", err)
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

// schemaAliasBomb nests aliases through the tenant schema itself: a list
// of 2000 aliases of a tenant with 2000 aliased methods.
func schemaAliasBomb() string {
	var b strings.Builder
	b.WriteString("m: &m {type: password}\nt: &t {id: a, methods: [")
	b.WriteString(strings.Repeat("*m, ", 2000))
	b.WriteString("*m]}\ntenants: [")
	b.WriteString(strings.Repeat("*t, ", 2000))
	b.WriteString("*t]\n")
	return b.String()
}

// aliasBomb is a "billion laughs" document.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("tenants: []\n")
	return b.String()
}

func TestParseFileAnchorsAndEmpty(t *testing.T) {
	in := `
tenants:
  - id: acme
    methods: &m [{type: password}]
    roles: &r
      member: {permissions: [docs:read]}
  - id: globex
    methods: *m
    roles: *r
`
	ts, err := ParseFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || !reflect.DeepEqual(ts[0].Methods, ts[1].Methods) || !reflect.DeepEqual(ts[0].Roles, ts[1].Roles) {
		t.Errorf("aliases not followed: %+v", ts)
	}
	// An alias hiding an unknown field is still caught.
	bad := "x: &x {id: acme, colour: red}\ntenants: [*x]\n"
	if _, err := ParseFile([]byte(bad)); err == nil || !strings.Contains(err.Error(), `unknown field`) {
		t.Errorf("alias with unknown field: %v", err)
	}
	// A merge key hiding an unknown field is caught too.
	bad = "tenants:\n  - <<: {colour: red}\n    id: acme\n"
	if _, err := ParseFile([]byte(bad)); err == nil || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Errorf("merge with unknown field: %v", err)
	}
	ts, err = ParseFile([]byte("tenants: []\n"))
	if err != nil || ts == nil || len(ts) != 0 {
		t.Errorf("empty list: %v, %v", ts, err)
	}
}

// ssoTenant uses every SSO method field a tenant file may set.
func ssoTenant() Tenant {
	return Tenant{
		ID: "sso",
		Methods: []Method{
			{Type: MethodOIDC, Label: "Acme SSO", Issuer: "https://idp.example/realms/sso", ClientID: "tg",
				ClientSecret: "oidc-s3cr3t", Scopes: []string{"groups", "offline_access"}, GroupsClaim: "roles",
				GroupRoles: map[string][]string{"admins": {"admin"}, "Domain Users": {"member"}}, DefaultRoles: []string{"member"}},
			{Type: MethodSAML, IDPMetadataXML: `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/saml"></EntityDescriptor>`,
				EmailAttribute: "urn:oid:0.9.2342.19200300.100.1.3", GroupsClaim: "memberOf", AllowIDPInitiated: true,
				GroupRoles: map[string][]string{"cn=admins": {"admin", "member"}}, DefaultRoles: []string{"member"}},
			{Type: MethodSocial, Provider: "google", ClientID: "g.apps", ClientSecret: "g-s3cr3t", Scopes: []string{"openid"}, DefaultRoles: []string{"member"}},
			{Type: MethodSocial, Label: "Sign in with Initech", Provider: "generic", ClientID: "gen", ClientSecret: "gen-s3cr3t",
				AuthURL: "https://oauth.example/authorize", TokenURL: "https://oauth.example/token", UserinfoURL: "https://oauth.example/userinfo?fields=all",
				IDField: "id", EmailField: "mail", EmailVerifiedField: "mail_verified", GroupsClaim: "groups",
				GroupRoles: map[string][]string{"managers": {"admin"}}},
		},
		Roles: map[string]Role{"admin": {Permissions: []string{"*"}}, "member": {Permissions: []string{"docs:read"}}},
	}
}

func TestMarshalFileRoundTripSSOFields(t *testing.T) {
	in := ssoTenant()
	if err := Validate([]Tenant{in}, ValidateOptions{}); err != nil {
		t.Fatalf("fixture does not validate: %v", err)
	}
	for i := range in.Methods {
		in.Methods[i].SealedClientSecret = []byte("sealed-bytes")
	}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out, err := MarshalFile([]Tenant{in}, format)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("s3cr3t")) || bytes.Contains(out, []byte("sealed")) {
				t.Errorf("output contains a secret:\n%s", out)
			}
			back, err := ParseFile(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			want := ssoTenant()
			for i := range want.Methods {
				want.Methods[i].ClientSecret = ""
			}
			if !reflect.DeepEqual(back, []Tenant{want}) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, []Tenant{want})
			}
			if err := Validate(back, ValidateOptions{}); err != nil {
				t.Errorf("output does not validate: %v", err)
			}
		})
	}
}

func TestMarshalFileRoundTripWithoutSecrets(t *testing.T) {
	in := contractTenant()
	in.InternalID = "internal-123"
	in.Methods[1].SealedClientSecret = []byte("sealed-bytes")
	in.Keys = []SigningKey{{KID: "k1", SealedPrivate: []byte("private-key-bytes")}}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out, err := MarshalFile([]Tenant{in}, format)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"s3cr3t", "clientSecret", "sealed", "internal-123", "private", "k1", "c2VhbGVk"} {
				if bytes.Contains(out, []byte(secret)) {
					t.Errorf("output contains %q:\n%s", secret, out)
				}
			}
			back, err := ParseFile(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			want := contractTenant()
			want.Methods[1].ClientSecret = ""
			want.Methods[3].ClientSecret = ""
			if !reflect.DeepEqual(back, []Tenant{want}) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, []Tenant{want})
			}
			if err := Validate(back, ValidateOptions{}); err != nil {
				t.Errorf("output does not validate: %v", err)
			}
		})
	}
	// The caller's tenant is untouched.
	if in.Methods[1].ClientSecret == "" || in.Methods[1].SealedClientSecret == nil {
		t.Error("MarshalFile modified its input")
	}
	if _, err := MarshalFile(nil, "toml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestMarshalFileYAMLShape(t *testing.T) {
	out, err := MarshalFile([]Tenant{{ID: "globex", Methods: []Method{{Type: MethodPassword}}}}, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "tenants:\n  - id: globex\n    methods:\n      - type: password\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// TestBrandingRoundTrip: the branding block of a tenant file reads into
// Tenant.Branding and MarshalFile (what tenants get prints) writes it back
// in the same shape; a tenant without one prints no branding key.
func TestBrandingRoundTrip(t *testing.T) {
	const in = `
tenants:
  - id: acme
    name: Acme Corp
    methods: [{type: password}]
    branding: {logoURL: "https://cdn.acme.test/logo.svg?v=2", accentColor: "#0a66c2"}
  - id: plain
    methods: [{type: password}]
`
	ts, err := ParseFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Branding{LogoURL: "https://cdn.acme.test/logo.svg?v=2", AccentColor: "#0a66c2"}
	if ts[0].Branding != want || ts[1].Branding != (Branding{}) {
		t.Fatalf("branding = %+v and %+v, want %+v and none", ts[0].Branding, ts[1].Branding, want)
	}
	if err := Validate(ts, ValidateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out, err := MarshalFile(ts, format)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(out, []byte("branding")); n != 1 {
				t.Errorf("output has %d branding keys, want 1 (none for the tenant without):\n%s", n, out)
			}
			back, err := ParseFile(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, ts) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, ts)
			}
		})
	}
}
