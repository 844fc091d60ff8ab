package social

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Type is the tenant-file type of social methods.
const Type = "social"

// Config is a social method entry's own fields (docs/sso.md, "Social
// sign-in"), in the order a tenant file prints them. The entry's label and
// role mapping are tenants.Method's. A preset provider sets Provider, the
// client credentials and Scopes; the fields from GroupsClaim on are a
// generic provider's.
type Config struct {
	// ClientID is the OAuth app's client id. Without one the entry is
	// stored but not offered (NotOffered): a tenant file may name a
	// provider before its OAuth app exists.
	ClientID string `json:"clientID,omitempty" yaml:"clientID,omitempty"`
	// ClientSecret is the plaintext secret as a tenant file gives it.
	// signin.SealMethods seals it into the entry's Sealed before anything
	// is stored, and it is never printed back.
	ClientSecret string `json:"clientSecret,omitempty" yaml:"clientSecret,omitempty"`
	// Scopes are requested in addition to the provider's own.
	Scopes []string `json:"scopes,omitempty" yaml:"scopes,omitempty"`
	// GroupsClaim names the userinfo member listing the account's groups
	// (generic only); tenants.DefaultGroupsClaim when empty.
	GroupsClaim string `json:"groupsClaim,omitempty" yaml:"groupsClaim,omitempty"`
	// Provider is a preset (github, google, microsoft) or generic.
	Provider string `json:"provider,omitempty" yaml:"provider,omitempty"`
	// AuthURL, TokenURL and UserinfoURL are the generic OAuth2 endpoints;
	// presets have their own.
	AuthURL     string `json:"authURL,omitempty" yaml:"authURL,omitempty"`
	TokenURL    string `json:"tokenURL,omitempty" yaml:"tokenURL,omitempty"`
	UserinfoURL string `json:"userinfoURL,omitempty" yaml:"userinfoURL,omitempty"`
	// IDField and EmailField name the userinfo members holding the
	// provider's immutable account id and the email (generic only).
	IDField    string `json:"idField,omitempty" yaml:"idField,omitempty"`
	EmailField string `json:"emailField,omitempty" yaml:"emailField,omitempty"`
	// EmailVerifiedField names a boolean userinfo member; without it a
	// generic provider's emails are treated as unverified.
	EmailVerifiedField string `json:"emailVerifiedField,omitempty" yaml:"emailVerifiedField,omitempty"`
	// RequireMFA false exempts the method from the tenant's mfa: required,
	// under which a social method otherwise refuses every sign-in: no
	// provider tells an OAuth2 client that the person used a second
	// factor (signin.RequiresMFA). true is refused by Validate.
	RequireMFA *bool `json:"requireMFA,omitempty" yaml:"requireMFA,omitempty"`
}

var (
	_ signin.SecretConfig     = (*Config)(nil)
	_ signin.NotOfferedConfig = (*Config)(nil)
)

// NewConfig returns an empty Config, for tenants.MethodType.
func NewConfig() tenants.MethodConfig { return &Config{} }

// providerNames are the providers a tenant file may name: the presets, then
// generic.
func providerNames() []string {
	return append(slices.Sorted(maps.Keys(Presets())), Generic)
}

// Validate checks a social entry: a provider of providerNames; a clientID
// (without one the entry is stored, not offered) and with it a clientSecret
// (required by signin.SealMethods, which keeps a stored one when a file
// printed by tenants get is re-applied); the label, scopes and
// defaultRoles; for generic, https authURL, tokenURL and userinfoURL, an
// idField and emailField, and optionally emailVerifiedField, groupsClaim
// and groupRoles, which a preset must not set; requireMFA only false.
func (c *Config) Validate(m tenants.Method, v *tenants.MethodCheck) {
	generic := c.Provider == Generic
	if !generic {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"groupsClaim", c.GroupsClaim != ""},
			{"authURL", c.AuthURL != ""}, {"tokenURL", c.TokenURL != ""}, {"userinfoURL", c.UserinfoURL != ""},
			{"idField", c.IDField != ""}, {"emailField", c.EmailField != ""}, {"emailVerifiedField", c.EmailVerifiedField != ""},
			{"groupRoles", len(m.Roles.GroupRoles) > 0},
		} {
			if f.set {
				v.Errorf(f.name, "only a generic social provider sets this; the %s preset has its own", c.Provider)
			}
		}
	}
	v.Label()
	v.RoleMapping(c.GroupsClaim)
	names := providerNames()
	switch {
	case c.Provider == "":
		v.Errorf("provider", "missing (one of %s)", strings.Join(names, ", "))
	case !slices.Contains(names, c.Provider):
		v.ValueErrorf("provider", c.Provider, "must be one of %s", strings.Join(names, ", "))
	}
	v.Client(c.ClientID, c.ClientSecret, false)
	if c.ClientID == "" && c.ClientSecret != "" {
		v.Errorf("clientSecret", "set without a clientID (set both, or neither to keep the method off)")
	}
	v.Scopes(c.Scopes)
	if c.RequireMFA != nil && *c.RequireMFA {
		v.Errorf("requireMFA", "true is not possible: a social provider does not say whether a second factor was used (use an oidc method, whose ID token can; or write requireMFA: false to exempt this method from the tenant's mfa: required)")
	}
	if !generic {
		return
	}
	for _, u := range []struct{ name, value string }{
		{"authURL", c.AuthURL}, {"tokenURL", c.TokenURL}, {"userinfoURL", c.UserinfoURL},
	} {
		if u.value == "" {
			v.Errorf(u.name, "missing (a generic provider needs authURL, tokenURL and userinfoURL)")
		} else {
			v.IDPURL(u.name, u.value, false)
		}
	}
	if c.IDField == "" {
		v.Errorf("idField", "missing (the userinfo field holding the provider's immutable account id)")
	}
	if c.EmailField == "" {
		v.Errorf("emailField", "missing (the userinfo field holding the email)")
	}
	v.Attribute("idField", c.IDField)
	v.Attribute("emailField", c.EmailField)
	v.Attribute("emailVerifiedField", c.EmailVerifiedField)
}

// TakeClientSecret returns the plaintext client secret and clears it.
func (c *Config) TakeClientSecret() string {
	s := c.ClientSecret
	c.ClientSecret = ""
	return s
}

// NeedsClientSecret reports whether the entry has a clientID: then it needs
// a secret too.
func (c *Config) NeedsClientSecret() bool { return c.ClientID != "" }

// TenantWarnings says, for tenants apply and serve, that the method
// refuses every sign-in of tenant t: it is offered, t's mfa is required,
// and it is not exempt (requireMFA: false).
func (c *Config) TenantWarnings(t *tenants.Tenant) []string {
	if c.ClientID == "" || !signin.RequiresMFA(c.RequireMFA, t) {
		return nil
	}
	return []string{"refuses every sign-in (log reason mfa_missing): the tenant's mfa is required, and a social provider cannot show that a second factor was used; " +
		"write requireMFA: false on the method to exempt it, or sign in through the provider's OpenID Connect as an oidc method (docs/sso.md#requiring-mfa-at-the-identity-provider)"}
}

// NotOffered says why an entry without a clientID is not offered.
func (c *Config) NotOffered() string {
	if c.ClientID != "" {
		return ""
	}
	return fmt.Sprintf("(%s %s) has no clientID: it is not offered at sign-in until clientID and clientSecret are applied", Type, c.Provider)
}
