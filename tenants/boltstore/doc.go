// Package boltstore is the embedded, single-process backend of tenants.Store:
// one bbolt file, owned by one tenantgate process at a time.
//
// # Layout
//
// Every record is JSON of a type of package tenants/internal/record, shared
// with the etcd backend, carrying its version ("v"), so the tenants model
// can change without rewriting stored data; a record of any other version
// is refused, never guessed at. Buckets:
//
//	meta              "schema" → {"v":4} (record.SchemaVersion; Open migrates 1, 2 and 3)
//	tenants           slug → tenant (config, internal id, signing keys, sealed secrets)
//	domains           custom domain → slug
//	emailDomains      email domain → slug
//	users             user id → user
//	userEmails        lower-case email → user id
//	memberships       tenantInternalID "/" userID → roles
//	revocations       key → revocation
//	revocationExpiry  expiry (8 bytes) + key → nothing, to drop expired ones cheaply
//	externals         tenantInternalID "/" hash → SSO identity
//	assertions        tenantInternalID "/" id → used assertion id (assertionExpiry indexes them)
//	audit             tenant id "/" seq (20 digits) → audit event, hash-chained (audit.go)
//	auditHeads        tenant id → the tenant's audit chain head
//	sessions          tenantInternalID "/" userID "/" sid → recorded session (sessionExpiry indexes them)
//
// The indexes are written in the same bbolt transaction as the records they
// index, which is where uniqueness is decided: bbolt runs one writer at a
// time, so two concurrent writers can never both claim a domain or an
// email. Plaintext client secrets have no field to be written to.
//
// # Damaged files
//
// bbolt trusts the file: damaged pages make it panic or fault, and a fault
// in a memory-mapped file kills a Go process. Open therefore (1) verifies the
// meta pages, freelist and every bucket tree straight from the file before
// bbolt maps it, (2) opens under recover with faults turned into panics,
// (3) reads and decodes every record and cross-checks every index, and
// (4) runs bbolt's own consistency check. Any failure is an error wrapping
// tenants.ErrCorrupt; every later transaction also runs under recover, so
// damage that appears while running fails that call closed instead of
// crashing.
package boltstore
