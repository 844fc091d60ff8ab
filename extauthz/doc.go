// Package extauthz answers Envoy's external-authorization Check calls.
//
// The work is split in two so that Envoy's types stop at the edge (STYLE.md):
// Authorizer.Decide turns a plain Request into a Decision using only the
// in-memory tenant snapshot and the verified-token cache, and Server is the
// gRPC adapter that converts an authv3.CheckRequest into a Request and a
// Decision into an authv3.CheckResponse — the one place where decisions become
// HTTP statuses, headers and bodies. Inline runs the sign-in pages inside
// Check for a mesh without a route to them; origin.go is the cross-origin
// request guard.
//
// Sub-packages, in the order they depend on each other (each imports only
// those above it, and tenants):
//
//   - seal: the master key and the Sealer that keeps secrets at rest.
//   - cookie: the one reader of the Cookie header, and which cookie names
//     are tenantgate's.
//   - session: tenants' signing keys, session tokens, verification bound to
//     the request's tenant (Verifier.VerifyFor) and the verified-token cache.
//   - password: argon2id hashing of built-in users' passwords.
//   - idpclient: the HTTP client for tenants' identity providers (SSRF
//     guards, size and time limits).
//   - signin: the contract between the sign-in pages and the sign-in
//     methods (Method and one interface per ability, Attempt, Identity, the
//     /_auth/ paths).
//   - oidc, saml, social: the SSO methods; each owns its Config (Validate,
//     Open) and imports signin, never login.
//   - login: the /_auth/ HTTP handler, which knows methods only through
//     signin.
//
// cmd/tenantgate wires the concrete methods into login and into tenant
// validation; nothing here registers itself.
package extauthz
