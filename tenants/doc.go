// Package tenants holds what tenantgate knows about its tenants and the people
// who sign in to them: the tenant model and its validation, the Store contract
// with its backends, the immutable Snapshot the hot path reads, and the
// Resolver that maps a request's host and path to exactly one tenant.
//
// Tenants have two names. ID is the slug an operator chooses ("acme"); it
// appears in host names and paths and may be deleted and later re-registered by
// someone else. InternalID is random, assigned by the store when the tenant is
// first created and never reused. Everything that outlives a request (sessions,
// memberships, signing keys) is bound to the InternalID, so a re-created slug
// never inherits its predecessor's sessions or members.
//
// The package imports nothing from the rest of tenantgate; the dependency
// direction is cmd → extauthz → tenants.
package tenants
