// Package social is the "social" sign-in method: plain OAuth 2.0
// authorization code flow (RFC 6749 §4.1) with PKCE S256 (RFC 7636) against
// a consumer identity provider, followed by a userinfo request with the
// access token. There is no ID token, so who the person is rests on the TLS
// connection to the configured userinfo URL.
//
// Providers are data, not code paths: a Provider value names the endpoints
// and which userinfo members hold the account id, the email, whether that
// email is verified, and the display name. Presets() holds github, google
// and microsoft; provider "generic" (or none) takes the endpoints and field
// names from the tenant's method entry.
//
// Accounts are keyed on (provider key, id), where id is the provider's
// immutable account id: a JSON string, or a JSON integer kept digit for
// digit (GitHub's numeric id, never the renamable login). The provider key is
// the preset name, or the authorization URL's origin for generic providers.
//
// Roles: every account gets the method's defaultRoles. A generic provider's
// userinfo may also list groups in the member named by groupsClaim (default
// "groups"): read with signin.ParseGroups (a string array or one string,
// Keycloak's leading "/" dropped, at most tenants.MaxSignInGroups, any other
// shape ignored with a warning, never a failed sign-in) and mapped through
// groupRoles by tenants.Method.RolesForGroups, as the oidc and saml methods
// do. Presets map no groups: a consumer account's userinfo names no group
// the tenant manages.
//
// Emails are trusted only on the provider's explicit word:
//
//   - generic: verified only when the method names an emailVerifiedField and
//     that member is the JSON value true;
//   - github: /user's email may be null, or an address the account never
//     verified; the preset asks /user/emails (scope user:email) and uses the
//     primary address only when GitHub marks it verified;
//   - google: email_verified from OpenID Connect userinfo;
//   - microsoft: the email of an Entra ID account is whatever the account's
//     tenant administrator typed, never verified by Microsoft; trusting it
//     lets any Entra tenant sign in as anyone ("nOAuth", Descope 2023). The
//     preset therefore reports it unverified, always.
package social
