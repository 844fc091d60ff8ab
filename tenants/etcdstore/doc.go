// Package etcdstore is the distributed backend of tenants.Store: every
// record in etcd v3, so that several tenantgate processes (a fleet of
// replicas, and the CLI beside them) share one store.
//
// # Layout
//
// Records are the ones the bbolt backend writes (package
// tenants/internal/record: versioned JSON, one encoding for both backends),
// each under the store's prefix (Options.Prefix, "/tenantgate/" by
// default), in a namespace named like bbolt's bucket:
//
//	schema                      {"v":4} (record.SchemaVersion; Open migrates 2 and 3)
//	masterKeyCheck              a value sealed under the fleet's master key (MasterKeyCheck)
//	tenants/<slug>              tenant (config, internal id, signing keys, sealed secrets)
//	domains/<domain>            slug of the owner (custom domains)
//	emailDomains/<domain>       slug of the owner
//	users/<user id>             user
//	userEmails/<email>          user id (lower-case email; password users only)
//	memberships/<tenant>/<user> roles (internal ids)
//	externals/<tenant>/<hash>   SSO identity → user id
//	revocations/<key>           revocation, on a lease that ends after its expiry
//	assertions/<tenant>/<id>    used SAML assertion id or spent switch code, on a lease likewise
//	sessions/<tenant>/<user>/<sid>
//	                            recorded session (the account page's list), on a lease likewise
//	counters/<name>/<digest>/<time>-<random>
//	                            one sign-in attempt (Counter), on a lease that ends after its window
//	audit/<tenant>/<seq>        audit event (tenant id, seq zero-padded to 20 digits), hash-chained (audit.go)
//	auditHeads/<tenant>         the tenant's audit chain head: newest seq and hash, what retention pruned
//
// # Writes
//
// Every write is one etcd transaction. It reads what it needs at one
// revision, works out the change, and commits it only if nothing it read
// has changed since: each key read is compared by its mod revision (zero
// for a key that was absent, so creating an index key is "create if
// absent"), each range read by "no key in the range modified after the
// read". A write that loses a race runs again on the new state, where it
// finds the conflict: two processes claiming one domain or creating one
// email both commit only if they do not collide, and otherwise exactly one
// wins and the other returns tenants.ErrConflict (or, for the same email,
// adds its membership to the user the winner created). Uniqueness is
// decided inside the transaction, never by a read followed by an unchecked
// write.
//
// A transaction holds at most etcd's --max-txn-ops operations (128 by
// default); an apply larger than that fails whole, saying so.
//
// Revocations, used assertion ids and recorded sessions expire: each is
// written on a lease
// shared by the records that expire in the same minute (lease.go), which
// ends a minute after the last of them, so etcd deletes them and the store
// never grows with sign-outs.
//
// # Snapshots
//
// A Store serves Snapshot from memory: it reads the tenants, memberships
// and revocations once, at one revision, then follows a watch of the
// prefix from the next revision, applying each event to the snapshot
// (tenants.Snapshot.With). A watch that loses its history (compaction), is
// cancelled (no leader) or ends for any other reason is followed by a full
// read at a new revision: never a silent gap. Snapshot itself makes one
// linearizable read of the current revision and waits until the snapshot
// has caught up with it, so it reflects every write that committed before
// it was called, by this process or any other. Confirmed reports when the
// snapshot was last known to be current, for the caller to stop trusting
// it when etcd is gone.
//
// Every etcd call has a deadline (Options.CallTimeout): with etcd
// unreachable a call fails after it instead of waiting for ever.
package etcdstore
