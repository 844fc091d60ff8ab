package tenants

import "encoding/json"

// The real method types live in their own packages, which tenants does not
// import; these stand-ins exercise what tenants does with any type's Config.
// (cmd/tenantgate's tests run the tenant file tests with the real ones.)

// noConfig is a password-like type: no fields, no label or role mapping,
// at most one per tenant.
type noConfig struct{}

func (*noConfig) Validate(m Method, c *MethodCheck) {
	if m.Label != "" {
		c.NotAField("label")
	}
	if len(m.Roles.DefaultRoles) > 0 {
		c.NotAField("defaultRoles")
	}
	c.OnlyOne("")
}

// ssoConfig is a provider-like type.
type ssoConfig struct {
	URL    string   `json:"url,omitempty" yaml:"url,omitempty"`
	ID     string   `json:"id,omitempty" yaml:"id,omitempty"`
	Secret string   `json:"secret,omitempty" yaml:"secret,omitempty"`
	Scopes []string `json:"scopes,omitempty" yaml:"scopes,omitempty"`
	Groups string   `json:"groups,omitempty" yaml:"groups,omitempty"`
	Flag   bool     `json:"flag,omitempty" yaml:"flag,omitempty"`
}

func (s *ssoConfig) Validate(m Method, c *MethodCheck) {
	c.Label()
	c.RoleMapping(s.Groups)
	if s.URL == "" {
		c.Errorf("url", "missing")
	} else {
		c.IDPURL("url", s.URL, true)
	}
	c.Client(s.ID, s.Secret, true)
	c.Scopes(s.Scopes)
}

// realmConfig is another type, with a field of its own.
type realmConfig struct {
	Realm string `json:"realm,omitempty" yaml:"realm,omitempty"`
}

func (r *realmConfig) Validate(m Method, c *MethodCheck) {
	if r.Realm == "" {
		c.Errorf("realm", "missing")
	}
	c.OnlyOne("one realm per tenant")
}

// testTypes are the stand-in types, in the order messages name them.
var testTypes = MethodTypes{
	{Name: MethodPassword, NewConfig: func() MethodConfig { return &noConfig{} }},
	{Name: "sso", NewConfig: func() MethodConfig { return &ssoConfig{} }},
	{Name: "realm", NewConfig: func() MethodConfig { return &realmConfig{} }},
}

// testOpts are ValidateOptions with the stand-in types.
func testOpts(o ValidateOptions) ValidateOptions {
	o.Methods = testTypes
	return o
}

// mustJSON encodes a stand-in Config.
func mustJSON(c any) json.RawMessage {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// setConfig sets one member of a method's stand-in Config.
func setConfig(m *Method, key string, value any) {
	var obj map[string]any
	if len(m.Config) > 0 {
		if err := json.Unmarshal(m.Config, &obj); err != nil {
			panic(err)
		}
	} else {
		obj = map[string]any{}
	}
	obj[key] = value
	m.Config = mustJSON(obj)
}
