// Package login serves tenantgate's sign-in endpoints under /_auth/
// (CONTRACT.md, "Login endpoints"): the tenant-branded sign-in page with its
// password form and SSO buttons, the SSO endpoints (start, OIDC/OAuth2
// callback, SAML metadata and ACS), sign-out (at the provider too, for OIDC),
// the tenant's JWKS, and, on the apex host, home-realm discovery by email
// domain.
//
// SSO methods are known only through the contract of package signin and opened
// through Handler.Methods, which cmd fills; this package imports none of
// them. An SSO sign-in in progress lives only in a sealed, per-attempt
// cookie (state, nonce, PKCE verifier, SAML request id, return path), which
// the callback must find by its state (or the ACS by RelayState) on the
// same tenant, endpoint and method within ten minutes, and which is cleared
// at first use. The identity a method returns is keyed on (tenant, method
// type, issuer, subject) by tenants.Store.UpsertExternalUser: an email never
// links it to another account or tenant, and is kept only when verified.
//
// Every request is first placed with tenants.Resolver from its Host and path
// alone; forwarding headers never choose the tenant. A session is only ever
// minted for the tenant the request resolved to, for a user who is a member
// of that tenant, with the roles of that membership.
//
// Every route answers with a value, as Check answers with a Decision: a
// route returns an answer (answer.go: a page, a redirect, a JSON error or
// a document, with the refusal reason to log), and ServeHTTP writes it in
// one place, Handler.write. Cookies set while deciding go out with
// whatever the answer is, so a single-use cookie is cleared on every path.
//
// Browser-facing defences, all in this package:
//
//   - login CSRF: every POST passes http.CrossOriginProtection (which refuses
//     Sec-Fetch-Site: same-site, because sibling tenant subdomains are
//     same-site) and carries a csrf field equal to an HMAC of a random
//     pre-auth cookie and the tenant's internal id, so a token from a sibling
//     tenant is useless;
//   - brute force: failures are counted per (tenant, lower-cased email) and
//     per client address (forwarded.go: the address Envoy saw, or the one
//     before the trusted proxies' X-Forwarded-For entries), in counters
//     every replica of a fleet shares (Handler.Counters); an attempt
//     counts itself before its verdict stands, so raced attempts get no
//     more verdicts than the limit (checkPassword). Once an account
//     is over its limit even a right password gets the same "Invalid email
//     or password." answer; an address over its limit still signs in a
//     right password, since many people may share it, but its attempts share
//     a narrow lane of argon2id runs (limit.go);
//   - timing: unknown users, non-members and locked accounts cost one argon2id
//     run, like a real check;
//   - open redirects: rd passes SafeRedirect;
//   - every HTML page carries a strict Content-Security-Policy, frame denial
//     and no-store, and every response the same-origin referrer policy
//     (referrerPolicy says why not no-referrer).
package login
