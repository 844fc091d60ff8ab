// Package session holds tenantgate's cryptography for sessions: each
// tenant's signing keys and the session tokens that prove who is signed in
// to which tenant. The master key that seals the private signing keys at
// rest is package seal's.
//
// A session is a JWS compact token (RFC 7515, RFC 7519) of type TokenType,
// signed with one of the tenant's own keys (EdDSA by default, ES256
// accepted). It names its tenant by InternalID in the "tid" claim, and its
// issuer and audience (Issuer, Audience) are derived from that same id, so a
// tenant slug that is deleted and re-registered never inherits the old
// tenant's sessions.
//
// Minter signs tokens at sign-in. Verifier checks them on every request,
// following RFC 8725 (JWT best current practices): a size limit before any
// parsing, an algorithm allow-list, a key looked up only in the key set of the
// tenant the token names, no key material taken from the token itself, and
// required iss, aud, exp, iat, sub and sid. A verified token is remembered by
// its SHA-256 hash so that the signature is checked once, but every cache hit
// still re-checks expiry, that the tenant still holds the very key the token
// was verified with, and revocation.
//
// VerifyFor takes the tenant the request resolved to and answers only for a
// token of that tenant: a valid token of another tenant is
// ErrTenantMismatch, so no caller can forget the comparison.
//
// Private signing keys are sealed with a seal.Sealer under
// SigningKeyContext(tenant internal id), so a stolen database file alone
// cannot mint sessions, and a key copied from one tenant's record to
// another's does not open.
package session
