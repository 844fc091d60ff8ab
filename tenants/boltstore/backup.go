package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Backups and restores move a store's records between backends unchanged
// (package record: one encoding, two backends). A record is named by its
// namespace and key: the namespace is the bbolt bucket, which is also the
// etcd key segment of the same records (etcdstore), and "meta" holds the
// store's own records ("schema", "masterKeyCheck"). The expiry indexes are
// bbolt's own and never leave it: Create rebuilds them from the records'
// Expires.

// NamespaceMeta is the namespace of a store's own records: the schema
// ("schema") and the master key check value ("masterKeyCheck").
const NamespaceMeta = "meta"

// Backup writes a consistent copy of the database, as a bbolt file that
// Open (and so `serve --db`) opens directly, from one read transaction:
// writes committed while it runs are not in it, and none waits for it,
// unless the file must grow. Sealed secrets are copied as the bytes they
// are, never opened. begin is called once, with the size of the copy,
// before any byte is written, and returns where the bytes go.
func (s *Store) Backup(ctx context.Context, begin func(size int64) (io.Writer, error)) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		w, err := begin(tx.Size())
		if err != nil {
			return err
		}
		if _, err := tx.WriteTo(w); err != nil {
			return fmt.Errorf("back up database %s: %w", s.path, err)
		}
		return nil
	})
}

// Export calls put for every record of the database, from one read
// transaction, namespace by namespace in key order: the meta records
// first, then every bucket but the expiry indexes. key and value are valid
// only during the call. An error from put stops the export and is
// returned.
func (s *Store) Export(ctx context.Context, put func(ns string, key, value []byte) error) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		for _, name := range exportedBuckets() {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			if err := b.ForEach(func(k, v []byte) error { return put(string(name), k, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// exportedBuckets are the buckets Export reads and Create fills: every
// bucket but the expiry indexes, meta first.
func exportedBuckets() [][]byte {
	var out [][]byte
	for _, name := range allBuckets() {
		if !isExpiryIndex(name) {
			out = append(out, name)
		}
	}
	return out
}

func isExpiryIndex(name []byte) bool {
	return bytes.Equal(name, bucketRevocationExpiry) || bytes.Equal(name, bucketAssertionExpiry) ||
		bytes.Equal(name, bucketSessionExpiry)
}

// Empty reports whether the database holds no record but its own (meta):
// no tenant, user, membership, revocation or anything else.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	empty := true
	err := s.view(ctx, func(tx *bolt.Tx) error {
		for _, name := range allBuckets() {
			if bytes.Equal(name, bucketMeta) {
				continue
			}
			if b := tx.Bucket(name); b != nil {
				if k, _ := b.Cursor().First(); k != nil {
					empty = false
					return nil
				}
			}
		}
		return nil
	})
	return empty, err
}

// MasterKeyCheckValue returns the master key check value the database
// carries (a backup made from etcd, or a store restored from one), or nil
// when it carries none. The bytes are opaque here: sealed under the master
// key the records were written with.
func (s *Store) MasterKeyCheckValue(ctx context.Context) ([]byte, error) {
	var v []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bucketMeta).Get(keyMasterKeyCheck))
		return nil
	})
	return v, err
}

// Create writes a new database file at path (mode 0600) holding exactly
// the records fill puts, named as Export names them, and returns once the
// file is on disk. The file must not exist: Create never replaces one. The
// meta records are the new file's own (a "schema" put is ignored: the file
// is of record.SchemaVersion) except "masterKeyCheck", which is kept. Every
// record is checked as Open checks a database (versions, indexes); on any
// error, from fill too, nothing is left at path.
func Create(path string, fill func(put func(ns string, key, value []byte) error) error) (err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: DefaultTimeout,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			return os.OpenFile(name, flag|os.O_EXCL, perm)
		},
	})
	if err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("create database %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	return guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets() {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			v, err := record.Encode(record.Schema{V: record.SchemaVersion})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketMeta).Put(keySchema, v); err != nil {
				return err
			}
			if err := fill(func(ns string, key, value []byte) error { return putExported(tx, ns, key, value) }); err != nil {
				return err
			}
			if err := walkRecords(tx, record.SchemaVersion); err != nil {
				return fmt.Errorf("the records do not make a tenantgate store: %w", err)
			}
			return nil
		})
	})
}

// putExported writes one exported record, and the expiry index entry of a
// revocation, used assertion id or recorded session.
func putExported(tx *bolt.Tx, ns string, key, value []byte) error {
	name := []byte(ns)
	if len(key) == 0 || len(key) > record.MaxKeyLen || len(value) > record.MaxValueLen {
		return fmt.Errorf("%w: record %s of %d+%d bytes", tenants.ErrCorrupt, record.Where(ns, key), len(key), len(value))
	}
	// bbolt keeps the slices until the transaction ends; the caller's are
	// valid only during the call.
	key, value = bytes.Clone(key), bytes.Clone(value)
	switch {
	case bytes.Equal(name, bucketMeta):
		switch {
		case bytes.Equal(key, keySchema):
			return nil
		case bytes.Equal(key, keyMasterKeyCheck):
			return tx.Bucket(bucketMeta).Put(key, value)
		}
		return fmt.Errorf("%w: unknown store record %s", tenants.ErrCorrupt, record.Where(ns, key))
	case isExpiryIndex(name) || !slices.ContainsFunc(allBuckets(), func(b []byte) bool { return bytes.Equal(b, name) }):
		return fmt.Errorf("%w: record %s is in no namespace tenantgate has", tenants.ErrCorrupt, record.Where(ns, key))
	}
	b := tx.Bucket(name)
	if b.Get(key) != nil {
		return fmt.Errorf("%w: record %s appears twice", tenants.ErrCorrupt, record.Where(ns, key))
	}
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("put %s: %w", record.Where(ns, key), err)
	}
	var rec interface{ expiry() time.Time }
	var index []byte
	switch {
	case bytes.Equal(name, bucketRevocations):
		rec, index = new(revocationExpiry), bucketRevocationExpiry
	case bytes.Equal(name, bucketAssertions):
		rec, index = new(assertionExpiry), bucketAssertionExpiry
	case bytes.Equal(name, bucketSessions):
		rec, index = new(sessionExpiry), bucketSessionExpiry
	default:
		return nil
	}
	if err := decodeRecord(name, key, value, rec); err != nil {
		return err
	}
	// Not nil: within the transaction Get returns the very slice given,
	// and walkRecords, before the commit, takes nil for a missing entry.
	return tx.Bucket(index).Put(expiryKey(rec.expiry(), string(key)), []byte{})
}

// revocationExpiry and assertionExpiry read the Expires of the records
// that have an expiry index.
type (
	revocationExpiry struct{ record.Revocation }
	assertionExpiry  struct{ record.Assertion }
	sessionExpiry    struct{ record.Session }
)

func (r *revocationExpiry) expiry() time.Time { return r.Expires }
func (r *assertionExpiry) expiry() time.Time  { return r.Expires }
func (r *sessionExpiry) expiry() time.Time    { return r.Expires }
