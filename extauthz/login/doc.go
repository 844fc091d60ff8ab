// Package login serves tenantgate's sign-in endpoints under /_auth/
// (CONTRACT.md, "Login endpoints"): the tenant-branded password sign-in page
// and its form, sign-out, the tenant's JWKS, and, on the apex host, home-realm
// discovery by email domain.
//
// Every request is first placed with tenants.Resolver from its Host and path
// alone; forwarding headers never choose the tenant. A session is only ever
// minted for the tenant the request resolved to, for a user who is a member
// of that tenant, with the roles of that membership.
//
// Browser-facing defences, all in this package:
//
//   - login CSRF: every POST passes http.CrossOriginProtection (which refuses
//     Sec-Fetch-Site: same-site, because sibling tenant subdomains are
//     same-site) and carries a csrf field equal to an HMAC of a random
//     pre-auth cookie and the tenant's internal id, so a token from a sibling
//     tenant is useless;
//   - brute force: failures are counted per (tenant, lower-cased email) and
//     per client address, and once over the limit even a right password gets
//     the same "Invalid email or password." answer;
//   - timing: unknown users, non-members and locked accounts cost one argon2id
//     run, like a real check;
//   - open redirects: rd passes SafeRedirect;
//   - every HTML page carries a strict Content-Security-Policy, frame denial,
//     no-referrer and no-store.
package login
