// Package seal keeps tenantgate's secrets at rest: the master key, kept
// outside the store, and the Sealer that encrypts under it (AES-256-GCM,
// with a context string as additional data) the tenants' private signing
// keys, their SAML SP keys, the sign-in methods' client secrets and the
// sign-in state cookies. A stolen database file alone therefore cannot mint
// sessions or use a tenant's OAuth client, and a sealed value copied from
// one tenant's record to another's does not open: every context names the
// tenant's internal id.
//
// The master key itself is never used to encrypt. Seal and Open use a key
// derived from it for sealing alone, and DeriveKey gives each other purpose
// (CSRF tokens, login state) an independent key of its own.
//
// Sessions (claims, minting, verification) live in package session, which
// uses a Sealer to open the signing keys; sign-in methods use one to open
// their client secrets (OpenSecret) and never import session.
package seal
