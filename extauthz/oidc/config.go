package oidc

import (
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Type is the tenant-file type of OIDC methods.
const Type = "oidc"

// Config is an oidc method entry's own fields (docs/sso.md, "OpenID
// Connect"), in the order a tenant file prints them. The entry's label and
// role mapping are tenants.Method's.
type Config struct {
	// Issuer is the provider's issuer URL; discovery is read from
	// <issuer>/.well-known/openid-configuration.
	Issuer   string `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	ClientID string `json:"clientID,omitempty" yaml:"clientID,omitempty"`
	// ClientSecret is the plaintext secret as a tenant file gives it.
	// signin.SealMethods seals it into the entry's Sealed before anything
	// is stored, and it is never printed back. Public clients have none.
	ClientSecret string `json:"clientSecret,omitempty" yaml:"clientSecret,omitempty"`
	// Scopes are requested in addition to openid, email and profile.
	Scopes []string `json:"scopes,omitempty" yaml:"scopes,omitempty"`
	// GroupsClaim names the ID token or userinfo claim listing the
	// person's groups; tenants.DefaultGroupsClaim when empty.
	GroupsClaim string `json:"groupsClaim,omitempty" yaml:"groupsClaim,omitempty"`
	// Prompt, when set, is sent as the prompt parameter of every
	// authentication request (OIDC Core §3.1.2.1): one of Prompts. Empty
	// leaves it to the IdP.
	Prompt string `json:"prompt,omitempty" yaml:"prompt,omitempty"`
	// RequireMFA refuses sign-ins whose ID token does not show that the
	// provider checked more than one factor (AcceptedACR, AcceptedAMR).
	// Unset, it follows the tenant: on when the tenant's mfa is required
	// (signin.RequiresMFA). Explicit false turns it off for this method.
	RequireMFA *bool `json:"requireMFA,omitempty" yaml:"requireMFA,omitempty"`
	// AcceptedACR are the acr values (OIDC Core §2) that prove MFA, sent
	// as acr_values in every authentication request. Only with RequireMFA.
	AcceptedACR []string `json:"acceptedACR,omitempty" yaml:"acceptedACR,omitempty"`
	// AcceptedAMR are the amr references (RFC 8176) of which one proves
	// MFA; DefaultAcceptedAMR when neither list is set. Only with
	// RequireMFA.
	AcceptedAMR []string `json:"acceptedAMR,omitempty" yaml:"acceptedAMR,omitempty"`
}

// DefaultAcceptedAMR are the RFC 8176 §2 references that name a second
// factor or more, one of which in the ID token's amr proves MFA when the
// method requires it and lists neither acceptedACR nor acceptedAMR: mfa
// and mca (multiple factors, channels), otp, hwk and swk (one-time codes,
// hardware and software keys), sms and tel (confirmation by phone), sc
// (smart card), and the biometrics fpt, face, iris, retina and vbm. pwd,
// pin, kba, geo, rba, wia, user and pop prove nothing beyond a first
// factor on their own.
var DefaultAcceptedAMR = []string{"mfa", "mca", "otp", "hwk", "swk", "sms", "tel", "sc", "fpt", "face", "iris", "retina", "vbm"}

// Prompts are the prompt values a method may set (OIDC Core §3.1.2.1):
// none (no page at the IdP; the sign-in fails unless the person is already
// signed in there), login (always ask for credentials again), consent and
// select_account.
var Prompts = []string{"none", "login", "consent", "select_account"}

var (
	_ signin.SecretConfig = (*Config)(nil)
)

// NewConfig returns an empty Config, for tenants.MethodType.
func NewConfig() tenants.MethodConfig { return &Config{} }

// Validate checks an oidc entry: an https issuer without query or fragment
// (http to loopback only with --allow-loopback-http-idp), a clientID, an
// optional clientSecret, the label, scopes, role mapping, prompt, and
// acceptedACR and acceptedAMR (signin.CheckMFAValues).
func (c *Config) Validate(m tenants.Method, v *tenants.MethodCheck) {
	v.Label()
	v.RoleMapping(c.GroupsClaim)
	if c.Issuer == "" {
		v.Errorf("issuer", "missing")
	} else {
		v.IDPURL("issuer", c.Issuer, true)
	}
	v.Client(c.ClientID, c.ClientSecret, true)
	v.Scopes(c.Scopes)
	if c.Prompt != "" && !slices.Contains(Prompts, c.Prompt) {
		v.ValueErrorf("prompt", c.Prompt, "must be one of %s", strings.Join(Prompts, ", "))
	}
	signin.CheckMFAValues(v, "acceptedACR", c.AcceptedACR, c.RequireMFA)
	signin.CheckMFAValues(v, "acceptedAMR", c.AcceptedAMR, c.RequireMFA)
}

// TakeClientSecret returns the plaintext client secret and clears it.
func (c *Config) TakeClientSecret() string {
	s := c.ClientSecret
	c.ClientSecret = ""
	return s
}

// NeedsClientSecret is false: a public client (PKCE only) has no secret.
func (c *Config) NeedsClientSecret() bool { return false }
