package keycloak

import (
	"embed"
	"io/fs"
)

// Realm names, one per sign-in flavour a tenant can bring.
const (
	// RealmOIDC is the OpenID Connect realm of tenant "acme".
	RealmOIDC = "acme-oidc"
	// RealmSAML is the SAML 2.0 realm of tenant "globex".
	RealmSAML = "globex-saml"
	// RealmOAuth is the generic-OAuth2 realm of tenant "initech".
	RealmOAuth = "initech-oauth"
)

// Clients registered in the realms. The secrets are test fixtures, committed
// in realms/*.json; they protect nothing.
const (
	// OIDCClientID is the confidential OIDC client in RealmOIDC. Its one
	// redirect URI is Origins.Acme + "/_auth/callback"; PKCE with S256 is
	// required; its post-logout redirect URI is Origins.Acme +
	// "/_auth/signed-out".
	OIDCClientID = "tenantgate"
	// OIDCClientSecret is OIDCClientID's secret (client_secret_basic or
	// client_secret_post).
	OIDCClientSecret = "acme-oidc-client-secret"
	// OIDCMFAClientID is a second confidential client in RealmOIDC, with
	// the same redirect URI and PKCE rule as OIDCClientID, whose browser
	// sign-in is the realm's flow "password and otp": the password form
	// and then the OTP form, each execution naming its RFC 8176 reference,
	// which the client's amr mapper puts in the ID token (["pwd","otp"]);
	// groups are released as by OIDCClientID.
	// A user without an OTP credential cannot sign in through it.
	OIDCMFAClientID = "tenantgate-mfa"
	// OIDCMFAClientSecret is OIDCMFAClientID's secret.
	OIDCMFAClientSecret = "acme-oidc-mfa-client-secret"
	// OAuthClientID is the confidential client in RealmOAuth, used as a
	// generic OAuth2 provider. Its one redirect URI is Origins.Initech +
	// "/_auth/callback"; PKCE is allowed but not required; "groups" is
	// released at the userinfo endpoint only.
	OAuthClientID = "tenantgate-oauth"
	// OAuthClientSecret is OAuthClientID's secret.
	OAuthClientSecret = "initech-oauth-client-secret"
)

// SAML paths on the globex origin. The SAML client in RealmSAML is keyed on
// the entity id Origins.Globex + SAMLMetadataPath and answers only to the ACS
// Origins.Globex + SAMLACSPath (HTTP-POST binding). Its IdP-initiated sign-in
// URL is Issuer(RealmSAML) + "/protocol/saml/clients/" + SAMLIdPInitiatedName.
const (
	SAMLMetadataPath     = "/_auth/saml/metadata"
	SAMLACSPath          = "/_auth/saml/acs"
	SAMLIdPInitiatedName = "globex"
)

// SAML clients in RealmSAML that each send one NameID format (Force name
// ID format on), for the NameID tests: the client named n is keyed on the
// entity id of the path-tenancy endpoint Origins.Globex + SAMLNameIDPrefix(n)
// and answers only to its ACS. The transient one also sends the user's
// Keycloak id (immutable) as the attribute SAMLUIDAttribute.
const (
	// SAMLNameIDPersistent sends persistent NameIDs (an opaque id Keycloak
	// keeps per user and client).
	SAMLNameIDPersistent = "nameid-persistent"
	// SAMLNameIDTransient sends transient NameIDs (new at every sign-in).
	SAMLNameIDTransient = "nameid-transient"
	// SAMLNameIDUnspecified sends the username, with Format
	// urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified (Keycloak's
	// "username", the default of an imported client).
	SAMLNameIDUnspecified = "nameid-unspecified"
	// SAMLUIDAttribute is the attribute holding the user's Keycloak id.
	SAMLUIDAttribute = "uid"
)

// SAMLNameIDPrefix is the path prefix ("/org/<name>") of the endpoint of
// the NameID client name on the globex origin.
func SAMLNameIDPrefix(name string) string { return "/org/" + name }

// User is one account in a test realm, as written in realms/*.json.
type User struct {
	Realm         string
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	// Groups are the user's group names; the realms release them without a
	// leading slash ("full.path": "false"), in the "groups" claim (OIDC),
	// userinfo field (OAuth2) or attribute (SAML).
	Groups []string
	// OTPSecret, when set, is the base32 secret of the user's TOTP
	// credential (RFC 6238: SHA-1, 6 digits, 30 s, as the realm's OTP
	// policy), so a test can compute the code Keycloak asks for.
	OTPSecret string
}

// Users returns every account in the realms, a fresh slice on each call.
//
// "pat" exists in all three realms with the same verified email
// pat@shared.test and different passwords: the same person at three
// tenants' IdPs, for tests that an identity is never linked across tenants
// by email. "mallory" in RealmOIDC has an unverified email, for tests that
// such an email is never trusted. "olivia" in RealmOIDC also has a TOTP
// credential (OTPSecret), for OIDCMFAClientID.
func Users() []User {
	return []User{
		{RealmOIDC, "alice", "alice-acme-pw", "alice@acme.test", true, []string{"admins", "engineering"}, ""},
		{RealmOIDC, "bob", "bob-acme-pw", "bob@acme.test", true, []string{"support"}, ""},
		{RealmOIDC, "mallory", "mallory-acme-pw", "mallory@acme.test", false, []string{"admins"}, ""},
		{RealmOIDC, "pat", "pat-acme-pw", "pat@shared.test", true, []string{"engineering"}, ""},
		{RealmOIDC, "olivia", "olivia-acme-pw", "olivia@acme.test", true, []string{"engineering"}, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"},
		{RealmSAML, "carol", "carol-globex-pw", "carol@globex.test", true, []string{"admins", "finance"}, ""},
		{RealmSAML, "dave", "dave-globex-pw", "dave@globex.test", true, []string{"finance"}, ""},
		{RealmSAML, "pat", "pat-globex-pw", "pat@shared.test", true, []string{"admins"}, ""},
		{RealmOAuth, "erin", "erin-initech-pw", "erin@initech.test", true, []string{"managers", "staff"}, ""},
		{RealmOAuth, "pat", "pat-initech-pw", "pat@shared.test", true, []string{"staff"}, ""},
	}
}

// UserByName returns the user called username in realm, and false if there
// is none.
func UserByName(realm, username string) (User, bool) {
	for _, u := range Users() {
		if u.Realm == realm && u.Username == username {
			return u, true
		}
	}
	return User{}, false
}

//go:embed realms/*.json
var realmFiles embed.FS

// RealmFiles returns the realm import files (realms/<realm>.json), with
// ${TG_*_ORIGIN} placeholders unresolved.
func RealmFiles() fs.FS {
	sub, err := fs.Sub(realmFiles, "realms")
	if err != nil {
		// fs.Sub fails only on an invalid path; "realms" is valid.
		panic(err)
	}
	return sub
}
