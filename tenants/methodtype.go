package tenants

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// MethodType is one type of sign-in method as a tenant file knows it: its
// name and its own Config. The type's package provides the Config (oidc,
// saml, social and password each own theirs); main lists the types a build
// offers in MethodTypes and hands them to ParseFile and Validate, so tenants
// names none of them and imports nothing of the rest of tenantgate.
type MethodType struct {
	// Name is the type as written in a tenant file ("oidc").
	Name string
	// NewConfig returns a new, empty Config of the type: a pointer to a
	// struct whose fields are the entry's own (everything but type, label,
	// groupRoles and defaultRoles), named by yaml and json tags that agree,
	// in the order they are printed.
	NewConfig func() MethodConfig
}

// MethodTypes are the method types a build offers, in the order they are
// named to an operator ("one of password, oidc, saml, social").
type MethodTypes []MethodType

// Lookup returns the type called name.
func (ts MethodTypes) Lookup(name string) (MethodType, bool) {
	i := slices.IndexFunc(ts, func(t MethodType) bool { return t.Name == name })
	if i < 0 {
		return MethodType{}, false
	}
	return ts[i], true
}

// names lists the type names for messages.
func (ts MethodTypes) names() string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return strings.Join(out, ", ")
}

// fields returns the Config fields of the type called name (nil for an
// unknown type) and, of every type, each field name's Go type (the first
// type that has the field decides).
func (ts MethodTypes) fields(name string) (own []configField, all map[string]reflect.Type) {
	all = map[string]reflect.Type{}
	for _, t := range ts {
		fs := configFields(t.NewConfig())
		if t.Name == name {
			own = fs
		}
		for _, f := range fs {
			if _, ok := all[f.name]; !ok {
				all[f.name] = f.typ
			}
		}
	}
	return own, all
}

// MethodConfig is a method type's own configuration, decoded from a
// Method's Config.
type MethodConfig interface {
	// Validate reports through c every problem of the entry m whose Config
	// was decoded into the receiver, naming the fields as a tenant file
	// does. Fields the type does not have are reported before it is called.
	// The label and role mapping are the type's to check too (c.Label,
	// c.RoleMapping), or to refuse (c.NotAField).
	Validate(m Method, c *MethodCheck)
}

// MethodCheck collects the problems of one method entry for Validate, each
// naming the tenant, the entry and the field ("tenant "acme":
// methods[1].issuer: missing"), and offers the checks method types share.
type MethodCheck struct {
	v     *validator
	f     string // "methods[1]"
	m     Method
	roles map[string]Role
	// nth counts the tenant's entries of this type so far, this one
	// included.
	nth int
}

// Errorf reports a problem of a field ("" for the entry as a whole).
func (c *MethodCheck) Errorf(field, format string, args ...any) {
	if field != "" {
		field = "." + field
	}
	c.v.add("%s%s: %s", c.f, field, fmt.Sprintf(format, args...))
}

// ValueErrorf reports a problem of a field's value, quoting the value (never
// use it for a secret).
func (c *MethodCheck) ValueErrorf(field, value, format string, args ...any) {
	c.v.add("%s.%s %q: %s", c.f, field, value, fmt.Sprintf(format, args...))
}

// NotAField reports a field that an entry of this type may not set.
func (c *MethodCheck) NotAField(field string) {
	c.Errorf(field, "not a field of a %s method", c.m.Type)
}

// OnlyOne reports a tenant's second entry of this type: a type a tenant may
// have at most once, for the reason why ("" for none given).
func (c *MethodCheck) OnlyOne(why string) {
	if c.nth != 2 {
		return
	}
	if why != "" {
		why = " (" + why + ")"
	}
	c.Errorf("", "more than one %s method%s", c.m.Type, why)
}

// Label checks the entry's button label: printable, at most 100 bytes.
func (c *MethodCheck) Label() {
	label := c.m.Label
	if len(label) > maxLabelLen {
		c.Errorf("label", "longer than %d bytes", maxLabelLen)
	} else if !printable(label) {
		c.ValueErrorf("label", label, "must be printable UTF-8 text")
	}
}

// RoleMapping checks the entry's groups claim (or attribute) name and its
// role mapping: at most 1000 groups of printable names, each mapped to 1-64
// roles, at most 64 default roles, and every role named one of the tenant's.
func (c *MethodCheck) RoleMapping(groupsClaim string) {
	c.Attribute("groupsClaim", groupsClaim)
	gr := c.m.Roles.GroupRoles
	if len(gr) > maxGroupRoles {
		c.Errorf("groupRoles", "more than %d groups", maxGroupRoles)
		return
	}
	groups := make([]string, 0, len(gr))
	for g := range gr {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		if g == "" || len(g) > maxGroupLen || !printable(g) {
			c.ValueErrorf("groupRoles", g, "a group name must be 1-%d printable characters", maxGroupLen)
			continue
		}
		rs := gr[g]
		if len(rs) == 0 {
			c.Errorf("groupRoles."+g, "maps to no role")
		}
		if len(rs) > maxRolesPerGroup {
			c.Errorf("groupRoles."+g, "more than %d roles", maxRolesPerGroup)
			continue
		}
		for i, r := range rs {
			if _, ok := c.roles[r]; !ok {
				c.ValueErrorf(fmt.Sprintf("groupRoles.%s[%d]", g, i), r, "no such role in this tenant")
			}
		}
	}
	dr := c.m.Roles.DefaultRoles
	if len(dr) > maxRolesPerGroup {
		c.Errorf("defaultRoles", "more than %d roles", maxRolesPerGroup)
		return
	}
	for i, r := range dr {
		if _, ok := c.roles[r]; !ok {
			c.ValueErrorf(fmt.Sprintf("defaultRoles[%d]", i), r, "no such role in this tenant")
		}
	}
}

// Attribute checks the name of a claim, SAML attribute or userinfo member
// (empty means unset): at most 256 printable characters, no leading or
// trailing space.
func (c *MethodCheck) Attribute(field, name string) {
	if name == "" {
		return
	}
	if len(name) > maxAttributeLen || !printable(name) || strings.TrimSpace(name) != name {
		c.Errorf(field, "must be at most %d printable characters without leading or trailing spaces", maxAttributeLen)
	}
}

// Scopes checks OAuth scopes (RFC 6749 §3.3: printable ASCII, no spaces,
// quotes or backslashes), at most 32 of at most 128 bytes.
func (c *MethodCheck) Scopes(scopes []string) {
	if len(scopes) > maxScopes {
		c.Errorf("scopes", "more than %d scopes", maxScopes)
		return
	}
	for i, sc := range scopes {
		if sc == "" || len(sc) > maxScopeLen || !visibleASCII(sc) || strings.ContainsAny(sc, `"\`) {
			c.ValueErrorf(fmt.Sprintf("scopes[%d]", i), sc, "must be 1-%d printable ASCII characters without spaces, quotes or backslashes", maxScopeLen)
		}
	}
}

// Tokens checks a list of protocol tokens a method matches what an
// identity provider sends against (OIDC acr and amr values, SAML
// authentication context class references): at most max of 1-maxLen
// printable ASCII characters without spaces, none twice.
func (c *MethodCheck) Tokens(field string, tokens []string, max, maxLen int) {
	if len(tokens) > max {
		c.Errorf(field, "more than %d values", max)
		return
	}
	for i, tk := range tokens {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case tk == "" || len(tk) > maxLen || !visibleASCII(tk):
			c.Errorf(f, "must be 1-%d printable ASCII characters without spaces", maxLen)
		case slices.Contains(tokens[:i], tk):
			c.ValueErrorf(f, tk, "listed twice")
		}
	}
}

// Client checks an OAuth client id (required when idRequired) and secret.
// The secret is never echoed.
func (c *MethodCheck) Client(id, secret string, idRequired bool) {
	switch {
	case id == "" && idRequired:
		c.Errorf("clientID", "missing")
	case len(id) > maxClientFieldLen || !visibleASCII(id):
		c.Errorf("clientID", "must be at most %d printable ASCII characters without spaces", maxClientFieldLen)
	}
	if len(secret) > maxClientFieldLen || !printable(secret) {
		c.Errorf("clientSecret", "must be at most %d printable characters", maxClientFieldLen)
	}
}

// IDPURL checks a URL tenantgate fetches from an identity provider (an OIDC
// issuer, SAML metadata, OAuth2 endpoints), reporting a problem as the
// field's: absolute https (http only to loopback, and loopback only with
// ValidateOptions.AllowLoopbackHTTPIDP), a valid host that is not
// link-local, metadata, private or unspecified, no userinfo or fragment,
// and for an OIDC issuer no query either (OpenID Connect Discovery §3).
func (c *MethodCheck) IDPURL(field, raw string, issuer bool) {
	if err := c.v.idpURL(raw, issuer); err != nil {
		c.ValueErrorf(field, raw, "%v", err)
	}
}
