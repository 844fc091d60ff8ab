// Package passkey is tenantgate's WebAuthn relying party (issue 11 item
// 5), a thin layer over github.com/go-webauthn/webauthn that fixes every
// choice a tenant's sign-in must not leave open:
//
//   - The RP ID is the tenant's own host as resolved (a custom domain or
//     <id>.<base-domain>), and the only origin accepted is that host's
//     https origin (with its port when not 443; http only for the
//     --insecure-cookies development mode). A passkey made on acme's host
//     is bound by the authenticator to acme's RP ID and refused by the
//     browser on globex's. Path tenancy (/org/<id>/ on the apex host)
//     shares one origin among all its tenants, so no RP ID can tell them
//     apart there: RPFor refuses it (ErrPathTenancy) rather than bind
//     passkeys to the apex host.
//   - The user handle is an HMAC of the tenant and user ids under a key
//     derived from the master key (Handle): stable, so an authenticator
//     replaces rather than piles up a person's discoverable credential,
//     never the email, and different in every tenant.
//   - User verification is preferred, attestation is "none" (nothing in
//     tenantgate trusts an authenticator's make), and the credential must
//     be discoverable: a sign-in's options then list no credentials, so
//     they are the same for every account (BeginLogin) and a second
//     sign-in step can offer a passkey without telling whether the
//     password was right, or whether the person holds one.
//   - A ceremony's state (the library's SessionData) is sealed under the
//     master key, bound to the tenant, the user and the ceremony kind,
//     expires after CeremonyTTL, and carries an id the caller spends once
//     in the store (tenants.Store.UseAssertionID), as tenant switch codes
//     are.
//   - A sign count that does not grow (when either is nonzero) is refused
//     inside the store's compare-and-swap (Assertion.Update), so two
//     replicas cannot both accept a cloned authenticator's assertion.
//
// The package parses nothing itself: the browser's responses go to the
// library's parsers.
package passkey
