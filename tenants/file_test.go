package tenants

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

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
			ts, err := ParseFile([]byte(tc.in), testTypes)
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
	ts, err := ParseFile([]byte(in), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || !reflect.DeepEqual(ts[0].Methods, ts[1].Methods) || !reflect.DeepEqual(ts[0].Roles, ts[1].Roles) {
		t.Errorf("aliases not followed: %+v", ts)
	}
	// An alias hiding an unknown field is still caught.
	bad := "x: &x {id: acme, colour: red}\ntenants: [*x]\n"
	if _, err := ParseFile([]byte(bad), testTypes); err == nil || !strings.Contains(err.Error(), `unknown field`) {
		t.Errorf("alias with unknown field: %v", err)
	}
	// A merge key hiding an unknown field is caught too.
	bad = "tenants:\n  - <<: {colour: red}\n    id: acme\n"
	if _, err := ParseFile([]byte(bad), testTypes); err == nil || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Errorf("merge with unknown field: %v", err)
	}
	ts, err = ParseFile([]byte("tenants: []\n"), testTypes)
	if err != nil || ts == nil || len(ts) != 0 {
		t.Errorf("empty list: %v, %v", ts, err)
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
	ts, err := ParseFile([]byte(in), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	want := Branding{LogoURL: "https://cdn.acme.test/logo.svg?v=2", AccentColor: "#0a66c2"}
	if ts[0].Branding != want || ts[1].Branding != (Branding{}) {
		t.Fatalf("branding = %+v and %+v, want %+v and none", ts[0].Branding, ts[1].Branding, want)
	}
	if err := Validate(ts, testOpts(ValidateOptions{})); err != nil {
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
			back, err := ParseFile(out, testTypes)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, ts) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, ts)
			}
		})
	}
}
