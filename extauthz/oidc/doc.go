// Package oidc is the "oidc" sign-in method: OpenID Connect authorization
// code flow against a tenant's own identity provider (OIDC Core 1.0 §3.1),
// with coreos/go-oidc for discovery and ID token signatures and
// golang.org/x/oauth2 for the code exchange.
//
// A tenant's IdP may itself be hostile (security catalogue §3, finding 6), so
// every check the protocol offers is made, and none of go-oidc's Skip*
// switches is ever set:
//
//   - PKCE S256 on every attempt (RFC 7636; RFC 9700 §2.1.1), state and nonce
//     per attempt, kept by the login handler in the attempt cookie;
//   - the ID token's signature (keys from the discovered jwks_uri, algorithms
//     from discovery), iss, aud containing the client id, exp (go-oidc);
//   - the nonce, which go-oidc leaves to the caller, compared in constant
//     time with the attempt's;
//   - azp equal to the client id whenever present, and required when aud
//     names several parties (OIDC Core §3.1.3.7 items 4-5);
//   - at_hash when the token carries one;
//   - the RFC 9207 iss authorization response parameter: when present it
//     must equal the issuer, and it is required when discovery advertises
//     authorization_response_iss_parameter_supported (mix-up defence, RFC
//     9700 §4.4);
//   - an error response from the provider fails the attempt; the provider's
//     text is never echoed;
//   - the attempt must belong to this tenant and to this method entry.
//
// An email is reported verified only when email_verified is the JSON value
// true (not the string "true"). Groups come from the method's groupsClaim
// (default "groups") as a string array, a leading "/" of Keycloak group
// paths stripped, and map to tenant roles through groupRoles, together with
// defaultRoles.
//
// Discovery documents are cached per issuer and shared by every tenant that
// names the same issuer; a stale document is served while a background
// refresh runs, and go-oidc refreshes signing keys when it meets an unknown
// key id. Every fetch goes through the idpclient policy (https, no
// link-local/metadata/private addresses, timeouts, size limits). Discovery
// happens at first use, not when the method is opened, so an IdP outage only
// affects sign-ins through that IdP.
package oidc
