package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/social"
	"github.com/tenantgate/tenantgate/tenants"
)

// The tenant file with this build's method types (methodTypes): the
// examples operators copy, and each type's fields as a file writes them.
// tenants' own tests use stand-in types.

// entry is a method entry of the given type whose Config is cfg.
func entry(t testing.TB, typ, label string, cfg any, roles tenants.RoleMapping) tenants.Method {
	t.Helper()
	m := tenants.Method{Type: typ, Label: label, Roles: roles}
	if err := m.EncodeConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return m
}

// parseFile is tenants.ParseFile with this build's method types.
func parseFile(data []byte) ([]tenants.Tenant, error) { return tenants.ParseFile(data, methodTypes()) }

// validate is tenants.Validate with this build's method types.
func validate(ts []tenants.Tenant, o tenants.ValidateOptions) error {
	o.Methods = methodTypes()
	return tenants.Validate(ts, o)
}

// contractFile is the example of CONTRACT.md, "Tenant file", with the
// social method's clientID and clientSecret filled in, as an operator
// completes it (contract-example.yaml is the example as written).
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

func contractTenant(t testing.TB, oidcSecret, ghID, ghSecret string) tenants.Tenant {
	return tenants.Tenant{
		ID:           "acme",
		Name:         "Acme Corp",
		Domains:      []string{"login.acme.test"},
		EmailDomains: []string{"acme.test"},
		Status:       tenants.StatusActive,
		Methods: []tenants.Method{
			{Type: tenants.MethodPassword},
			entry(t, oidc.Type, "", oidc.Config{Issuer: "https://idp.example/realms/acme", ClientID: "tenantgate", ClientSecret: oidcSecret}, tenants.RoleMapping{}),
			entry(t, saml.Type, "", saml.Config{IDPMetadataURL: "https://idp.example/realms/acme/protocol/saml/descriptor"}, tenants.RoleMapping{}),
			entry(t, social.Type, "", social.Config{Provider: "github", ClientID: ghID, ClientSecret: ghSecret}, tenants.RoleMapping{}),
		},
		Roles: map[string]tenants.Role{
			"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
			"member": {Permissions: []string{"docs:read"}},
		},
		Rules: []tenants.Rule{
			{Path: "/public/", Access: tenants.AccessAnonymous},
			{Path: "/admin/", Methods: []string{"GET", "POST"}, Permission: "admin:access"},
		},
	}
}

// completeContractTenant is contractFile as ParseFile reads it.
func completeContractTenant(t testing.TB) tenants.Tenant {
	return contractTenant(t, "s3cr3t-do-not-print", "Iv1.0123456789abcdef", "gh-s3cr3t-do-not-print")
}

// tenants/testdata/contract-example.yaml is CONTRACT.md's example exactly
// as written: the oidc secret is the literal "..." and the social method
// names only its provider. Operators copy it, so it must apply; the bare
// social method is stored but not offered (signin.NotOfferedConfig).
func TestContractExampleVerbatimValidates(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "tenants", "testdata", "contract-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := parseFile(data)
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	if err := validate(ts, tenants.ValidateOptions{}); err != nil {
		t.Fatalf("CONTRACT's example as written does not validate: %v", err)
	}
	want := contractTenant(t, "...", "", "")
	// The fields CONTRACT's example spells out at their defaults.
	want.MFA, want.CrossOriginGuard, want.TrustedOrigins = tenants.MFAOff, new(true), []string{}
	if !reflect.DeepEqual(ts, []tenants.Tenant{want}) {
		t.Fatalf("got  %+v\nwant %+v", ts, []tenants.Tenant{want})
	}
	why := notOffered(methodTypes(), &ts[0])
	for i, m := range ts[0].Methods {
		if got := why[i] != ""; got != (i == 3) {
			t.Errorf("methods[%d] (%s) not offered = %v (%q)", i, m.Type, got, why[i])
		}
	}
}

func TestParseFileContractExample(t *testing.T) {
	ts, err := parseFile([]byte(contractFile))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	if want := []tenants.Tenant{completeContractTenant(t)}; !reflect.DeepEqual(ts, want) {
		t.Fatalf("got  %+v\nwant %+v", ts, want)
	}
	if err := validate(ts, tenants.ValidateOptions{}); err != nil {
		t.Fatalf("the contract's example does not validate: %v", err)
	}
}

func TestParseFileJSON(t *testing.T) {
	want := []tenants.Tenant{completeContractTenant(t)}
	data, err := json.Marshal(map[string]any{"tenants": want})
	if err != nil {
		t.Fatal(err)
	}
	// Tab-indented JSON, as editors write it, is read too.
	var ind bytes.Buffer
	json.Indent(&ind, data, "", "\t")
	for _, in := range [][]byte{data, ind.Bytes()} {
		ts, err := parseFile(in)
		if err != nil {
			t.Fatalf("ParseFile: %v", err)
		}
		if !reflect.DeepEqual(ts, want) {
			t.Fatalf("got  %+v\nwant %+v", ts, want)
		}
	}
}

func TestParseFileDemoFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "scripts", "demo-tenants.yaml"))
	if err != nil {
		t.Fatalf("the demo's tenant file (make run): %v", err)
	}
	ts, err := parseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(ts, tenants.ValidateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestParseFileMethodFields: a field no method type has is an unknown field
// of the file, with its line; a field of another type is left for Validate,
// which names the entry's type.
func TestParseFileMethodFields(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown method field", "tenants:\n  - id: acme\n    methods:\n      - type: oidc\n        clientSecretFile: /etc/x\n",
			`tenants[0] (id "acme").methods[0]: unknown field "clientSecretFile" (line 5)`},
		{"sealed secret cannot be set", "tenants:\n  - id: acme\n    methods: [{type: oidc, sealedClientSecret: AAAA}]\n", `unknown field "sealedClientSecret"`},
		{"sealed bytes cannot be set", "tenants:\n  - id: acme\n    methods: [{type: oidc, sealed: AAAA}]\n", `unknown field "sealed"`},
		{"wrong type of value", "tenants:\n  - id: acme\n    methods: [{type: oidc, scopes: openid}]\n", "line 3: cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFile([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseFile = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	ts, err := parseFile([]byte("tenants:\n  - id: acme\n    methods: [{type: saml, idpMetadataURL: https://idp.example/md, provider: github, scopes: [x]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = validate(ts, tenants.ValidateOptions{})
	for _, want := range []string{`methods[0].provider: not a field of a saml method`, `methods[0].scopes: not a field of a saml method`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
}

// ssoTenant uses every SSO method field a tenant file may set.
func ssoTenant(t testing.TB) tenants.Tenant {
	return tenants.Tenant{
		ID: "sso",
		Methods: []tenants.Method{
			entry(t, oidc.Type, "Acme SSO", oidc.Config{Issuer: "https://idp.example/realms/sso", ClientID: "tg",
				ClientSecret: "oidc-s3cr3t", Scopes: []string{"groups", "offline_access"}, GroupsClaim: "roles"},
				tenants.RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}, "Domain Users": {"member"}}, DefaultRoles: []string{"member"}}),
			entry(t, saml.Type, "", saml.Config{IDPMetadataXML: `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/saml"></EntityDescriptor>`,
				EmailAttribute: "urn:oid:0.9.2342.19200300.100.1.3", GroupsClaim: "memberOf", AllowIDPInitiated: true},
				tenants.RoleMapping{GroupRoles: map[string][]string{"cn=admins": {"admin", "member"}}, DefaultRoles: []string{"member"}}),
			entry(t, social.Type, "", social.Config{Provider: "google", ClientID: "g.apps", ClientSecret: "g-s3cr3t", Scopes: []string{"openid"}},
				tenants.RoleMapping{DefaultRoles: []string{"member"}}),
			entry(t, social.Type, "Sign in with Initech", social.Config{Provider: "generic", ClientID: "gen", ClientSecret: "gen-s3cr3t",
				AuthURL: "https://oauth.example/authorize", TokenURL: "https://oauth.example/token", UserinfoURL: "https://oauth.example/userinfo?fields=all",
				IDField: "id", EmailField: "mail", EmailVerifiedField: "mail_verified", GroupsClaim: "groups"},
				tenants.RoleMapping{GroupRoles: map[string][]string{"managers": {"admin"}}}),
		},
		Roles: map[string]tenants.Role{"admin": {Permissions: []string{"*"}}, "member": {Permissions: []string{"docs:read"}}},
	}
}

// sealed is what the store holds for ts: every method through the real
// SealMethods.
func sealed(t testing.TB, internalID string, ts ...tenants.Tenant) []tenants.Tenant {
	t.Helper()
	s, err := seal.NewSealer(bytes.Repeat([]byte{7}, seal.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealMethod := signin.SealMethods(s, methodTypes())
	out := slices.Clone(ts)
	for i := range out {
		out[i].InternalID = internalID
		out[i].Methods = slices.Clone(out[i].Methods)
		for j, m := range out[i].Methods {
			if out[i].Methods[j], err = sealMethod(m, nil, internalID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// withoutSecrets is ts as a file printed from the store reads back: no
// client secrets.
func withoutSecrets(t testing.TB, ts ...tenants.Tenant) []tenants.Tenant {
	out := sealed(t, "any", ts...)
	for i := range out {
		out[i].InternalID = ""
		for j := range out[i].Methods {
			out[i].Methods[j].Sealed = nil
		}
	}
	return out
}

func TestMarshalFileRoundTripSSOFields(t *testing.T) {
	in := ssoTenant(t)
	if err := validate([]tenants.Tenant{in}, tenants.ValidateOptions{}); err != nil {
		t.Fatalf("fixture does not validate: %v", err)
	}
	stored := sealed(t, "internal-123", in)
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out, err := tenants.MarshalFile(stored, format)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("s3cr3t")) || bytes.Contains(out, []byte("sealed")) || bytes.Contains(out, []byte("clientSecret")) {
				t.Errorf("output contains a secret:\n%s", out)
			}
			back, err := parseFile(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if want := withoutSecrets(t, ssoTenant(t)); !reflect.DeepEqual(back, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
			}
			if err := validate(back, tenants.ValidateOptions{}); err != nil {
				t.Errorf("output does not validate: %v", err)
			}
		})
	}
}

func TestMarshalFileRoundTripWithoutSecrets(t *testing.T) {
	in := sealed(t, "internal-123", completeContractTenant(t))[0]
	in.Methods[1].Sealed = []byte("sealed-bytes")
	in.Keys = []tenants.SigningKey{{KID: "k1", SealedPrivate: []byte("private-key-bytes")}}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out, err := tenants.MarshalFile([]tenants.Tenant{in}, format)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"s3cr3t", "clientSecret", "sealed", "internal-123", "private", "k1", "c2VhbGVk"} {
				if bytes.Contains(out, []byte(secret)) {
					t.Errorf("output contains %q:\n%s", secret, out)
				}
			}
			back, err := parseFile(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if want := withoutSecrets(t, completeContractTenant(t)); !reflect.DeepEqual(back, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
			}
			if err := validate(back, tenants.ValidateOptions{}); err != nil {
				t.Errorf("output does not validate: %v", err)
			}
		})
	}
	// The caller's tenant is untouched.
	if len(in.Methods[1].Sealed) == 0 {
		t.Error("MarshalFile modified its input")
	}
}

// good is a valid tenant with every method type; each case of
// TestValidateMethods changes one thing.
func good(t testing.TB, id string) tenants.Tenant {
	return tenants.Tenant{
		ID:           id,
		Name:         "Acme Corp",
		Domains:      []string{"login." + id + ".test"},
		EmailDomains: []string{id + ".test"},
		Status:       tenants.StatusActive,
		Methods: []tenants.Method{
			{Type: tenants.MethodPassword},
			entry(t, oidc.Type, "", oidc.Config{Issuer: "https://idp.example/realms/" + id, ClientID: "tenantgate", ClientSecret: "s3cret"}, tenants.RoleMapping{}),
			entry(t, saml.Type, "", saml.Config{IDPMetadataURL: "https://idp.example/realms/" + id + "/protocol/saml/descriptor?x=1"},
				tenants.RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}}, DefaultRoles: []string{"member"}}),
			entry(t, social.Type, "", social.Config{Provider: "github", ClientID: "abc", ClientSecret: "def"}, tenants.RoleMapping{}),
		},
		Roles: map[string]tenants.Role{
			"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
			"member": {Permissions: []string{"docs:read", "docs:*"}},
		},
	}
}

// set changes one member of a method's Config (nil removes it).
func set(t testing.TB, m *tenants.Method, kv ...any) {
	t.Helper()
	obj := map[string]any{}
	if len(m.Config) > 0 {
		if err := json.Unmarshal(m.Config, &obj); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(obj, kv[i].(string))
		} else {
			obj[kv[i].(string)] = kv[i+1]
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = b
}

func TestValidateAcceptsGoodMethods(t *testing.T) {
	ts := []tenants.Tenant{good(t, "acme"), good(t, "globex")}
	// Inline metadata pasted from Entra ID keeps its byte order mark.
	ts[1].Methods[2] = entry(t, saml.Type, "", saml.Config{IDPMetadataXML: "\uFEFF<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"https://sts.windows.net/x/\"/>"}, tenants.RoleMapping{})
	if err := validate(ts, tenants.ValidateOptions{}); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// TestValidateMethods: each method type's Validate reports every problem,
// naming the tenant, the entry and the field.
func TestValidateMethods(t *testing.T) {
	type edit func(t *testing.T, ts []tenants.Tenant)
	for _, tc := range []struct {
		name  string
		edit  edit
		opts  tenants.ValidateOptions
		wants []string // each must appear in the error
	}{
		{"unknown method", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods[0].Type = "kerberos" }, tenants.ValidateOptions{},
			[]string{`methods[0].type "kerberos": must be one of password, oidc, saml, social`}},
		{"password with stray field", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[0], "issuer", "https://x.test") }, tenants.ValidateOptions{}, []string{`methods[0].issuer: not a field of a password method`}},
		{"oidc missing fields", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods[1] = tenants.Method{Type: oidc.Type} }, tenants.ValidateOptions{}, []string{`methods[1].issuer: missing`, `methods[1].clientID: missing`}},
		{"oidc http issuer", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "http://idp.example/realms/acme")
		}, tenants.ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`methods[1].issuer "http://idp.example/realms/acme": must use https`}},
		{"oidc relative issuer", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "/realms/acme") }, tenants.ValidateOptions{}, []string{`must be an absolute https:// URL`}},
		{"oidc issuer with query", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "https://idp.example/?a=b")
		}, tenants.ValidateOptions{}, []string{`must not contain a query`}},
		{"oidc issuer with fragment", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "https://idp.example/#a") }, tenants.ValidateOptions{}, []string{`must not contain a fragment`}},
		{"oidc issuer with userinfo", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "https://u:p@idp.example/")
		}, tenants.ValidateOptions{}, []string{`must not contain a user name`}},
		{"oidc issuer metadata IP", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "https://169.254.169.254/latest")
		}, tenants.ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`link-local`}},
		{"oidc issuer metadata IP over http", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "http://169.254.169.254/")
		}, tenants.ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`link-local`}},
		{"oidc issuer metadata name", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "http://metadata.google.internal/")
		}, tenants.ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`metadata`}},
		{"oidc issuer private IP", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "https://10.0.0.5/") }, tenants.ValidateOptions{}, []string{`private`}},
		{"oidc issuer unspecified", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "https://0.0.0.0/") }, tenants.ValidateOptions{}, []string{`unspecified`}},
		{"oidc issuer IPv6 link-local", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "https://[fe80::1]/") }, tenants.ValidateOptions{}, []string{`link-local`}},
		{"oidc issuer mapped metadata IP", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "https://[::ffff:169.254.169.254]/")
		}, tenants.ValidateOptions{}, []string{`link-local`}},
		{"oidc loopback without option", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "http://127.0.0.1:8080/realms/acme")
		}, tenants.ValidateOptions{}, []string{`loopback`}},
		{"oidc https localhost without option", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "issuer", "https://localhost/realms/acme")
		}, tenants.ValidateOptions{}, []string{`loopback`}},
		{"oidc bad port", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "https://idp.example:0/") }, tenants.ValidateOptions{}, []string{`port`}},
		{"oidc bad host", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "https://idp_example/") }, tenants.ValidateOptions{}, []string{`host is not a valid domain name`}},
		{"oidc javascript", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "issuer", "javascript:alert(1)") }, tenants.ValidateOptions{}, []string{`absolute https`}},
		{"oidc stray provider", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "provider", "github") }, tenants.ValidateOptions{}, []string{`methods[1].provider: not a field of a oidc method`}},
		{"oidc client id with space", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "clientID", "a b") }, tenants.ValidateOptions{}, []string{`methods[1].clientID`}},
		{"saml neither", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods[2] = tenants.Method{Type: saml.Type} }, tenants.ValidateOptions{}, []string{`methods[2]: needs idpMetadataURL or idpMetadataXML`}},
		{"saml both", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[2], "idpMetadataXML", "<x/>") }, tenants.ValidateOptions{}, []string{`methods[2]: set only one`}},
		{"saml http", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[2], "idpMetadataURL", "http://idp.example/md")
		}, tenants.ValidateOptions{}, []string{`methods[2].idpMetadataURL "http://idp.example/md": must use https`}},
		{"saml not xml", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[2] = entry(t, saml.Type, "", saml.Config{IDPMetadataXML: "hello"}, tenants.RoleMapping{})
		}, tenants.ValidateOptions{}, []string{`methods[2].idpMetadataXML: is not XML`}},
		{"saml stray client secret", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[2], "clientSecret", "hunter2") }, tenants.ValidateOptions{}, []string{`methods[2].clientSecret: not a field of a saml method`}},
		{"social without provider", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[3], "provider", nil) }, tenants.ValidateOptions{}, []string{`methods[3].provider: missing`}},
		{"social unknown provider", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[3], "provider", "myspace") }, tenants.ValidateOptions{}, []string{`methods[3].provider "myspace": must be one of github, google, microsoft, generic`}},
		{"social stray issuer", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[3], "issuer", "https://x.test") }, tenants.ValidateOptions{}, []string{`methods[3].issuer: not a field of a social method`}},
		{"social secret without client id", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[3], "clientID", nil) }, tenants.ValidateOptions{}, []string{`methods[3].clientSecret: set without a clientID`}},
		{"preset with endpoints", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[3], "authURL", "https://evil.test/auth", "idField", "login")
		}, tenants.ValidateOptions{}, []string{`methods[3].authURL: only a generic social provider`, `methods[3].idField: only a generic social provider`}},
		{"preset with group mapping", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[3].Roles.GroupRoles = map[string][]string{"g": {"admin"}}
		}, tenants.ValidateOptions{}, []string{`methods[3].groupRoles: only a generic`}},
		{"generic missing everything", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[3], "provider", "generic") }, tenants.ValidateOptions{}, []string{
			`methods[3].authURL: missing`, `methods[3].tokenURL: missing`, `methods[3].userinfoURL: missing`, `methods[3].idField: missing`, `methods[3].emailField: missing`}},
		{"generic http endpoints", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[3] = entry(t, social.Type, "", social.Config{Provider: "generic", ClientID: "c", AuthURL: "http://oauth.test/a",
				TokenURL: "https://169.254.169.254/t", UserinfoURL: "http://127.0.0.1/u", IDField: "id", EmailField: "email"}, tenants.RoleMapping{})
		}, tenants.ValidateOptions{}, []string{`methods[3].authURL "http://oauth.test/a": must use https`, `methods[3].tokenURL "https://169.254.169.254/t": must not point at a link-local`, `methods[3].userinfoURL "http://127.0.0.1/u": must not point at a loopback`}},
		{"oidc stray saml fields", func(t *testing.T, ts []tenants.Tenant) {
			set(t, &ts[0].Methods[1], "emailAttribute", "mail", "allowIDPInitiated", true, "authURL", "https://x.test")
		}, tenants.ValidateOptions{}, []string{`methods[1].emailAttribute: not a field of a oidc method`, `methods[1].allowIDPInitiated: not a field of a oidc method`, `methods[1].authURL: not a field of a oidc method`}},
		{"saml stray scopes", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[2], "scopes", []string{"openid"}) }, tenants.ValidateOptions{}, []string{`methods[2].scopes: not a field of a saml method`}},
		{"password stray roles", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[0].Roles.DefaultRoles = []string{"member"}
			ts[0].Methods[0].Label = "x"
		}, tenants.ValidateOptions{}, []string{`methods[0].label: not a field of a password method`, `methods[0].defaultRoles: not a field of a password method`}},
		{"two password methods", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods = append(ts[0].Methods, ts[0].Methods[0]) }, tenants.ValidateOptions{}, []string{`methods[4]: more than one password method`}},
		{"two saml methods", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods = append(ts[0].Methods, ts[0].Methods[2]) }, tenants.ValidateOptions{}, []string{`methods[4]: more than one saml method (a tenant has one SAML service provider)`}},
		{"group role unknown", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[1].Roles.GroupRoles = map[string][]string{"eng": {"member", "ghost"}}
		}, tenants.ValidateOptions{}, []string{`methods[1].groupRoles.eng[1] "ghost": no such role in this tenant`}},
		{"group maps to nothing", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[2].Roles.GroupRoles = map[string][]string{"eng": nil}
		}, tenants.ValidateOptions{}, []string{`methods[2].groupRoles.eng: maps to no role`}},
		{"default role unknown", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods[3].Roles.DefaultRoles = []string{"ghost"} }, tenants.ValidateOptions{}, []string{`methods[3].defaultRoles[0] "ghost": no such role`}},
		{"bad scope", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "scopes", []string{"a b", ""}) }, tenants.ValidateOptions{}, []string{`methods[1].scopes[0] "a b"`, `methods[1].scopes[1] ""`}},
		{"bad groups claim", func(t *testing.T, ts []tenants.Tenant) { set(t, &ts[0].Methods[1], "groupsClaim", "a\nb") }, tenants.ValidateOptions{}, []string{`methods[1].groupsClaim: must be`}},
		{"bad label", func(t *testing.T, ts []tenants.Tenant) { ts[0].Methods[1].Label = "\x1b[31m" }, tenants.ValidateOptions{}, []string{`methods[1].label`}},
		{"saml doctype", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[2] = entry(t, saml.Type, "", saml.Config{IDPMetadataXML: `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`}, tenants.RoleMapping{})
		}, tenants.ValidateOptions{}, []string{`methods[2].idpMetadataXML: must not contain a DOCTYPE`}},
		{"saml xml unclosed", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[2] = entry(t, saml.Type, "", saml.Config{IDPMetadataXML: `<x><y></x>`}, tenants.RoleMapping{})
		}, tenants.ValidateOptions{}, []string{`methods[2].idpMetadataXML: is not`}},
		{"saml xml two roots", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[2] = entry(t, saml.Type, "", saml.Config{IDPMetadataXML: `<x/><y/>`}, tenants.RoleMapping{})
		}, tenants.ValidateOptions{}, []string{`methods[2].idpMetadataXML: is not one`}},
		{"saml xml too large", func(t *testing.T, ts []tenants.Tenant) {
			ts[0].Methods[2] = entry(t, saml.Type, "", saml.Config{IDPMetadataXML: "<x>" + strings.Repeat("a", 1<<20) + "</x>"}, tenants.RoleMapping{})
		}, tenants.ValidateOptions{}, []string{`methods[2].idpMetadataXML: longer than`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := []tenants.Tenant{good(t, "acme"), good(t, "globex")}
			tc.edit(t, ts)
			err := validate(ts, tc.opts)
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestValidateJoinsAllMethodErrors(t *testing.T) {
	ts := []tenants.Tenant{{ID: "acme", Methods: []tenants.Method{{Type: oidc.Type}}}}
	err := validate(ts, tenants.ValidateOptions{})
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{`tenant "acme": methods[0].issuer: missing`, `tenant "acme": methods[0].clientID: missing`}
	if !slices.Equal(lines, want) {
		t.Errorf("problems:\n%s\nwant exactly\n%s", err, strings.Join(want, "\n"))
	}
}

func TestValidateGenericSocialLoopback(t *testing.T) {
	m := entry(t, social.Type, "", social.Config{Provider: "generic", ClientID: "c", ClientSecret: "s",
		AuthURL: "http://127.0.0.1:8080/auth", TokenURL: "http://localhost:8080/token", UserinfoURL: "http://[::1]:8080/userinfo",
		IDField: "sub", EmailField: "email"}, tenants.RoleMapping{})
	ts := []tenants.Tenant{{ID: "acme", Methods: []tenants.Method{m}}}
	if err := validate(ts, tenants.ValidateOptions{AllowLoopbackHTTPIDP: true}); err != nil {
		t.Errorf("loopback generic provider with the option: %v", err)
	}
	if err := validate(ts, tenants.ValidateOptions{}); err == nil {
		t.Error("loopback generic provider accepted without the option")
	}
}

func TestValidateNeverEchoesSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	ts := []tenants.Tenant{{ID: "acme", Methods: []tenants.Method{{Type: tenants.MethodPassword}, {Type: oidc.Type}, {Type: saml.Type}}}}
	set(t, &ts[0].Methods[0], "clientSecret", secret)
	set(t, &ts[0].Methods[1], "issuer", "http://x", "clientID", "c", "clientSecret", secret+"\x00")
	set(t, &ts[0].Methods[2], "clientSecret", secret)
	err := validate(ts, tenants.ValidateOptions{})
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error echoes a client secret: %v", err)
	}
}
