// Package signin is the contract between tenantgate's sign-in pages
// (extauthz/login) and the sign-in methods (extauthz/oidc, extauthz/saml,
// extauthz/social), drawn like dex's connectors: an empty Method, then one
// small interface per ability (RedirectMethod, SAMLMethod, LogoutMethod),
// and the pages type-switch on what they need. A method's package depends
// on this package and never on the pages; the pages know a method only
// through these interfaces, never by its type name.
//
// It also holds what both sides must agree on: the Attempt a method
// completes and the Identity it returns, the paths of the /_auth/
// endpoints (redirect URIs, the SAML ACS and metadata), and ParseGroups,
// which reads a provider's groups for a tenants.RoleMapping.
//
// Methods are wired in cmd: main builds the table of Openers by method type
// and hands it to the pages; nothing registers itself.
package signin
