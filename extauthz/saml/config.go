package saml

import (
	"fmt"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Type is the tenant-file type of SAML methods.
const Type = tenants.MethodSAML

// Config is a saml method entry's own fields (docs/sso.md, "SAML 2.0"), in
// the order a tenant file prints them. The entry's label and role mapping
// are tenants.Method's; the SP key is the tenant's (tenants.SAMLKey).
type Config struct {
	// GroupsClaim names the attribute listing the person's groups;
	// tenants.DefaultGroupsClaim when empty.
	GroupsClaim string `json:"groupsClaim,omitempty" yaml:"groupsClaim,omitempty"`
	// IDPMetadataURL and IDPMetadataXML give the IdP's metadata, fetched
	// or inline: exactly one is set.
	IDPMetadataURL string `json:"idpMetadataURL,omitempty" yaml:"idpMetadataURL,omitempty"`
	IDPMetadataXML string `json:"idpMetadataXML,omitempty" yaml:"idpMetadataXML,omitempty"`
	// EmailAttribute names the attribute holding the email;
	// DefaultEmailAttribute when empty. The NameID is used when it has the
	// emailAddress format.
	EmailAttribute string `json:"emailAttribute,omitempty" yaml:"emailAttribute,omitempty"`
	// NameIDFormat is the NameID format the SP metadata states, the
	// AuthnRequest asks for and a response must carry: persistent (the
	// default, also when a stored method predates the field),
	// emailAddress, unspecified (any format but transient is accepted) or
	// transient (only with SubjectAttribute). See nameIDRule.
	NameIDFormat string `json:"nameIDFormat,omitempty" yaml:"nameIDFormat,omitempty"`
	// SubjectAttribute names an attribute whose one value keys the
	// account instead of the NameID; the NameID's format then keys
	// nothing and is not checked. Empty: the NameID is the key.
	SubjectAttribute string `json:"subjectAttribute,omitempty" yaml:"subjectAttribute,omitempty"`
	// AllowIDPInitiated accepts unsolicited responses (no InResponseTo).
	// Off by default: IdP-initiated SSO cannot be bound to a browser.
	AllowIDPInitiated bool `json:"allowIDPInitiated,omitempty" yaml:"allowIDPInitiated,omitempty"`
	// RequireMFA refuses sign-ins whose assertion's authentication
	// context class (AuthnStatement/AuthnContext/AuthnContextClassRef) is
	// not an accepted one (AcceptedAuthnContext). Unset, it follows the
	// tenant: on when the tenant's mfa is required (signin.RequiresMFA).
	// Explicit false turns it off for this method.
	RequireMFA *bool `json:"requireMFA,omitempty" yaml:"requireMFA,omitempty"`
	// AcceptedAuthnContext are the class references that prove MFA, also
	// sent as the AuthnRequest's RequestedAuthnContext (Comparison
	// exact); DefaultAcceptedAuthnContext, not sent, when empty. Only
	// with RequireMFA.
	AcceptedAuthnContext []string `json:"acceptedAuthnContext,omitempty" yaml:"acceptedAuthnContext,omitempty"`
}

// DefaultAcceptedAuthnContext are the authentication context classes that
// prove MFA when a method requires it and lists none: the REFEDS MFA
// profile (https://refeds.org/profile/mfa), Microsoft Entra ID's and AD
// FS's multipleauthn, and of SAML 2.0's own classes (SAML Authn Context
// §3.4) the two-factor mobile contracts and SmartcardPKI (a card and its
// PIN). No other SAML 2.0 class names two factors.
var DefaultAcceptedAuthnContext = []string{
	"https://refeds.org/profile/mfa",
	"http://schemas.microsoft.com/claims/multipleauthn",
	"urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
	"urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
	"urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
}

// NewConfig returns an empty Config, for tenants.MethodType.
func NewConfig() tenants.MethodConfig { return &Config{} }

// maxMetadataXMLLen bounds inline metadata in a tenant file.
const maxMetadataXMLLen = maxMetadataSize

// Validate checks a saml entry: at most one per tenant (its SP entity id
// and ACS URL are per tenant host, so there is room for one SAML service
// provider), exactly one of an https idpMetadataURL or idpMetadataXML (at
// most 1 MiB, well-formed XML with one root element and no DOCTYPE), the
// label, emailAttribute and role mapping, and acceptedAuthnContext
// (signin.CheckMFAValues). Whether the metadata is usable is checked when
// the method opens.
func (c *Config) Validate(m tenants.Method, v *tenants.MethodCheck) {
	v.Label()
	v.RoleMapping(c.GroupsClaim)
	v.OnlyOne("a tenant has one SAML service provider")
	switch {
	case c.IDPMetadataURL == "" && c.IDPMetadataXML == "":
		v.Errorf("", "needs idpMetadataURL or idpMetadataXML")
	case c.IDPMetadataURL != "" && c.IDPMetadataXML != "":
		v.Errorf("", "set only one of idpMetadataURL and idpMetadataXML")
	case c.IDPMetadataURL != "":
		v.IDPURL("idpMetadataURL", c.IDPMetadataURL, false)
	default:
		if err := checkMetadataXML(c.IDPMetadataXML); err != nil {
			v.Errorf("idpMetadataXML", "%v", err)
		}
	}
	v.Attribute("emailAttribute", c.EmailAttribute)
	v.Attribute("subjectAttribute", c.SubjectAttribute)
	switch f, ok := nameIDFormatURI(c.NameIDFormat); {
	case !ok:
		v.ValueErrorf("nameIDFormat", c.NameIDFormat, "must be one of persistent, emailAddress, unspecified, transient")
	case f == transientNameIDFormat && c.SubjectAttribute == "":
		v.Errorf("nameIDFormat", "transient needs subjectAttribute: a transient NameID is new at every sign-in, so it cannot key an account")
	}
	signin.CheckMFAValues(v, "acceptedAuthnContext", c.AcceptedAuthnContext, c.RequireMFA)
}

// Warnings returns what is risky, though valid, about this method's
// configuration, for tenants apply and serve to print: a NameID of format
// unspecified keying accounts.
func (c *Config) Warnings() []string {
	if c.NameIDFormat == NameIDUnspecified && c.SubjectAttribute == "" {
		return []string{"saml nameIDFormat unspecified: accounts are keyed by whatever NameID the IdP sends " +
			"(often a username, which can be renamed or reused), and a change of its Name ID format makes every person a new account; " +
			"set the IdP and nameIDFormat to persistent (docs/sso.md)"}
	}
	return nil
}

var _ signin.ChangeConfig = (*Config)(nil)

// accountKey is what keys the accounts of a method with this Config, for
// the operator: the subjectAttribute, or the NameID of its format.
func (c *Config) accountKey() string {
	if c.SubjectAttribute != "" {
		return fmt.Sprintf("the attribute %q", c.SubjectAttribute)
	}
	return "NameIDs of format " + effectiveNameIDFormat(c.NameIDFormat)
}

// effectiveNameIDFormat is the format a nameIDFormat means: persistent when
// it is empty (the default, and how schema 3 reads a stored method
// without it).
func effectiveNameIDFormat(name string) string {
	if name == "" {
		return NameIDPersistent
	}
	return name
}

// CheckChange refuses a change of the NameID format that keys the accounts
// which the tenant file does not state: the entry leaves nameIDFormat out
// (so means persistent) while the stored one keys accounts by NameIDs of
// another format, as every method stored before nameIDFormat existed does
// (unspecified). Applied, the AuthnRequest would ask for persistent, and an
// IdP that follows the request (Keycloak, Force name ID format Off) would
// answer with new NameIDs: every person a new account, silently. The
// refusal (a tenants.FieldError for nameIDFormat wrapping
// tenants.ErrChangeRefused) names both ways out. A change the file states
// (another nameIDFormat written, or subjectAttribute set, changed or
// removed) is accepted with a warning: it re-keys the accounts.
func (c *Config) CheckChange(stored tenants.MethodConfig) (string, error) {
	s, ok := stored.(*Config)
	if !ok {
		return "", nil
	}
	was, now := effectiveNameIDFormat(s.NameIDFormat), effectiveNameIDFormat(c.NameIDFormat)
	nameIDKeyed := s.SubjectAttribute == "" && c.SubjectAttribute == ""
	switch {
	case nameIDKeyed && was != now && c.NameIDFormat == "":
		return "", &tenants.FieldError{Field: "nameIDFormat", Err: tenants.ChangeRefusedf(
			"stored as %s (accounts are keyed by it); write nameIDFormat: %[1]s to keep it, or nameIDFormat: %s to re-key every account",
			was, NameIDPersistent)}
	case nameIDKeyed && was == now, s.SubjectAttribute != "" && s.SubjectAttribute == c.SubjectAttribute:
		return "", nil
	}
	return fmt.Sprintf("re-keying accounts: they were keyed by %s, now by %s; every person whose IdP sends another value "+
		"gets a new account, and the old ones are never reached again (docs/sso.md, The SAML account key)", s.accountKey(), c.accountKey()), nil
}
