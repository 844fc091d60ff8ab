package boltstore

import (
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// The records themselves, their versions and their keys are package
// record's, shared with the etcd backend: one encoding, two backends. What
// is bbolt's own is where they live (the buckets, open.go) and the expiry
// indexes.

// decodeRecord decodes the record stored under key in bucket (record.Decode).
// Every failure wraps tenants.ErrCorrupt and names the bucket and key.
func decodeRecord(bucket, key, data []byte, rec any) error {
	return record.Decode(record.Where(string(bucket), key), data, rec)
}

// short renders a key or value for an error message (record.Short).
func short(b []byte) string { return record.Short(b) }

// membershipKey is the key of a membership (record.MembershipKey).
func membershipKey(tenantInternalID, userID string) []byte {
	return []byte(record.MembershipKey(tenantInternalID, userID))
}

// membershipPrefix is the common prefix of every membership, external
// identity and used assertion id of a tenant (record.TenantPrefix).
func membershipPrefix(tenantInternalID string) []byte {
	return []byte(record.TenantPrefix(tenantInternalID))
}

// externalKey is the key of an external identity (record.ExternalKey).
func externalKey(tenantInternalID, method, issuer, subject string) []byte {
	return []byte(record.ExternalKey(tenantInternalID, method, issuer, subject))
}

// assertionKey is the key of a used assertion id (record.AssertionKey).
func assertionKey(tenantInternalID, id string) []byte {
	return []byte(record.AssertionKey(tenantInternalID, id))
}
