package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestParseFileMethodConfig: a method entry's own fields become its Config,
// read as the types' Config fields have them, in the entry type's order,
// without unset or empty values; a field of another type is kept for
// Validate to refuse by name.
func TestParseFileMethodConfig(t *testing.T) {
	const in = `
tenants:
  - id: acme
    methods:
      - type: sso
        realm: r1
        scopes: [openid]
        label: SSO
        id: 12
        flag: false
        groups: ""
        url: https://idp.test/x
        groupRoles: {admins: [admin]}
        defaultRoles: [member]
      - type: password
`
	ts, err := ParseFile([]byte(in), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	m := ts[0].Methods[0]
	if want := `{"url":"https://idp.test/x","id":"12","scopes":["openid"],"realm":"r1"}`; string(m.Config) != want {
		t.Errorf("Config = %s, want %s", m.Config, want)
	}
	if m.Type != "sso" || m.Label != "SSO" || len(m.Roles.GroupRoles["admins"]) != 1 || len(m.Roles.DefaultRoles) != 1 || m.Sealed != nil {
		t.Errorf("entry = %+v", m)
	}
	if ts[0].Methods[1].Config != nil {
		t.Errorf("a method without fields has Config %s", ts[0].Methods[1].Config)
	}
	ts[0].Roles = map[string]Role{"admin": {}, "member": {}}
	err = Validate(ts, testOpts(ValidateOptions{}))
	if err == nil || !strings.Contains(err.Error(), `tenant "acme": methods[0].realm: not a field of a sso method`) {
		t.Errorf("Validate = %v, want the other type's field refused", err)
	}

	for _, tc := range []struct{ name, in, want string }{
		{"a field no type has", "tenants:\n  - id: acme\n    methods:\n      - type: sso\n        uri: x\n",
			`tenants[0] (id "acme").methods[0]: unknown field "uri" (line 5)`},
		{"a value of the wrong shape", "tenants:\n  - id: acme\n    methods:\n      - type: sso\n        scopes: openid\n",
			"line 5: cannot unmarshal !!str `openid` into []string"},
		{"sealed bytes", "tenants:\n  - id: acme\n    methods: [{type: sso, sealed: AAAA}]\n", `unknown field "sealed"`},
		{"config key", "tenants:\n  - id: acme\n    methods: [{type: sso, config: {url: x}}]\n", `unknown field "config"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.in), testTypes)
			if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseFile = %v, want ErrBadFile containing %q", err, tc.want)
			}
		})
	}
}

// TestMarshalFileMethodShape: a method entry prints as one flat mapping
// (type, label, its Config in order, then the role mapping) and never
// prints Sealed.
func TestMarshalFileMethodShape(t *testing.T) {
	ts := []Tenant{{ID: "acme", Methods: []Method{
		{Type: MethodPassword},
		{Type: "sso", Label: "SSO", Config: []byte(`{"url":"https://idp.test/<x>","scopes":["a","b"],"flag":true}`),
			Sealed: []byte("sealed-secret"), Roles: RoleMapping{GroupRoles: map[string][]string{"g": {"r"}}, DefaultRoles: []string{"m"}}},
	}}}
	y, err := MarshalFile(ts, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantYAML := `tenants:
  - id: acme
    methods:
      - type: password
      - type: sso
        label: SSO
        url: https://idp.test/<x>
        scopes:
          - a
          - b
        flag: true
        groupRoles:
          g:
            - r
        defaultRoles:
          - m
`
	if string(y) != wantYAML {
		t.Errorf("yaml:\n%s\nwant\n%s", y, wantYAML)
	}
	j, err := MarshalFile(ts, "json")
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"type":"sso","label":"SSO","url":"https://idp.test/\u003cx\u003e","scopes":["a","b"],"flag":true,"groupRoles":{"g":["r"]},"defaultRoles":["m"]}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, j); err != nil || !strings.Contains(compact.String(), wantJSON) {
		t.Errorf("json:\n%s\nwant it to hold %s (%v)", compact.String(), wantJSON, err)
	}
	for _, out := range [][]byte{y, j} {
		if bytes.Contains(out, []byte("sealed")) || bytes.Contains(out, []byte("c2VhbGVk")) {
			t.Errorf("output holds the sealed bytes:\n%s", out)
		}
	}
	if _, err := MarshalFile([]Tenant{{ID: "x", Methods: []Method{{Type: "sso", Config: []byte(`[1]`)}}}}, "json"); err == nil {
		t.Error("a Config that is not an object was printed")
	}
}

func TestMethodCloneEqualConfig(t *testing.T) {
	m := Method{Type: "sso", Label: "L", Config: []byte(`{"url":"u"}`), Sealed: []byte("s"),
		Roles: RoleMapping{GroupRoles: map[string][]string{"g": {"r"}}}}
	c := m.Clone()
	if !c.Equal(m) {
		t.Fatalf("Clone = %+v", c)
	}
	c.Config[2] = 'X'
	c.Sealed[0] = 'X'
	c.Roles.GroupRoles["g"][0] = "X"
	if m.Config[2] == 'X' || m.Sealed[0] == 'X' || m.Roles.GroupRoles["g"][0] == "X" {
		t.Error("Clone shares memory with the original")
	}
	if c.Equal(m) {
		t.Error("Equal after changes")
	}

	var sc ssoConfig
	if err := m.DecodeConfig(&sc); err != nil || sc.URL != "u" {
		t.Errorf("DecodeConfig = %+v, %v", sc, err)
	}
	bad := Method{Type: "sso", Config: []byte(`{"url":"u","realm":"r"}`)}
	if err := bad.DecodeConfig(&sc); err == nil || !strings.Contains(err.Error(), "realm") {
		t.Errorf("DecodeConfig of a field the Config lacks = %v", err)
	}
	var e Method
	if err := e.EncodeConfig(&ssoConfig{}); err != nil || e.Config != nil {
		t.Errorf("an empty Config encodes as %q, %v; want none", e.Config, err)
	}
	if err := e.EncodeConfig(&ssoConfig{ID: "x"}); err != nil || string(e.Config) != `{"id":"x"}` {
		t.Errorf("EncodeConfig = %s, %v", e.Config, err)
	}
}
