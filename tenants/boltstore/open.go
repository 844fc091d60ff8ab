package boltstore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Bucket names. The layout is described once here; every bucket is created
// when the database is.
var (
	// bucketMeta holds keySchema → record.Schema (record.SchemaVersion).
	bucketMeta = []byte("meta")
	// bucketTenants holds slug → record.Tenant.
	bucketTenants = []byte("tenants")
	// bucketDomains holds canonical custom domain → slug of its owner.
	bucketDomains = []byte("domains")
	// bucketEmailDomains holds canonical email domain → slug of its owner.
	bucketEmailDomains = []byte("emailDomains")
	// bucketUsers holds user id → record.User.
	bucketUsers = []byte("users")
	// bucketUserEmails holds lower-case email → user id.
	bucketUserEmails = []byte("userEmails")
	// bucketMemberships holds tenantInternalID + "/" + userID → record.Membership.
	bucketMemberships = []byte("memberships")
	// bucketRevocations holds revocation key → record.Revocation.
	bucketRevocations = []byte("revocations")
	// bucketRevocationExpiry holds expiryKey(expires, key) → nothing, so
	// that expired revocations are found without reading them all.
	bucketRevocationExpiry = []byte("revocationExpiry")
	// bucketExternals holds externalKey(tenant, method, issuer, subject) →
	// record.External: the SSO identities of UpsertExternalUser.
	bucketExternals = []byte("externals")
	// bucketAssertions holds assertionKey(tenant, id) → record.Assertion.
	bucketAssertions = []byte("assertions")
	// bucketAssertionExpiry holds expiryKey(expires, assertion key) →
	// nothing, like bucketRevocationExpiry.
	bucketAssertionExpiry = []byte("assertionExpiry")
	// bucketAudit holds record.AuditKey(tenant, seq) → record.AuditEvent:
	// the audit trail (audit.go).
	bucketAudit = []byte(record.NamespaceAudit)
	// bucketAuditHeads holds tenant id → record.AuditHead.
	bucketAuditHeads = []byte(record.NamespaceAuditHeads)
	// bucketSessions holds record.SessionKey(tenant, user, sid) →
	// record.Session: the recorded sessions (session.go).
	bucketSessions = []byte(record.NamespaceSessions)
	// bucketSessionExpiry holds expiryKey(expires, session key) → nothing,
	// like bucketRevocationExpiry.
	bucketSessionExpiry = []byte("sessionExpiry")
	// bucketPasskeys holds record.PasskeyKey(tenant, user, id) →
	// record.Passkey (passkey.go).
	bucketPasskeys = []byte(record.NamespacePasskeys)

	keySchema = []byte("schema")
)

// allBuckets lists every bucket of a database.
func allBuckets() [][]byte {
	return append(firstBuckets(), addedBuckets()...)
}

// firstBuckets are the buckets every database has had from the start.
func firstBuckets() [][]byte {
	return [][]byte{
		bucketMeta, bucketTenants, bucketDomains, bucketEmailDomains, bucketUsers,
		bucketUserEmails, bucketMemberships, bucketRevocations, bucketRevocationExpiry,
	}
}

// addedBuckets came later (SSO, the audit trail, recorded sessions,
// passkeys). A database written before them lacks them; Open creates them,
// and until then they read as empty.
func addedBuckets() [][]byte {
	return [][]byte{bucketExternals, bucketAssertions, bucketAssertionExpiry, bucketAudit, bucketAuditHeads,
		bucketSessions, bucketSessionExpiry, bucketPasskeys}
}

// DefaultTimeout is how long Open waits for another process to release the
// database file before it gives up with tenants.ErrLocked.
const DefaultTimeout = time.Second

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long to wait for the file lock; zero means
	// DefaultTimeout. It is never infinite: a second process must fail fast.
	Timeout time.Duration
	// Now is the clock used for timestamps the store sets itself (users'
	// Created) and for dropping expired revocations; nil means time.Now.
	Now func() time.Time
	// Rand is the source of internal ids; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Store is the bbolt backend of tenants.Store: one embedded file, owned by one
// process at a time. Every method is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	rand io.Reader

	mu       sync.Mutex
	closed   bool
	watchers map[chan struct{}]struct{}

	// writing serialises every write with the upkeep of hot: a write's
	// SnapshotChange is applied to hot after the write commits and before
	// the next write begins, so hot is always exactly the committed state.
	// Every write goes through update, which keeps this promise.
	writing sync.Mutex
	// hot is what the hot path needs (tenants, memberships, revocations) as
	// of the last committed write, or nil until the first Snapshot reads it
	// from the file. From then on each write changes it incrementally and
	// Snapshot never reads everything again.
	hot *tenants.Snapshot
	// loads counts the reads of everything into hot (tests check that a
	// write does not cause one).
	loads int
}

var _ tenants.Store = (*Store)(nil)

// opError carries an operator-facing message while still matching a sentinel
// with errors.Is, so the sentinel's own text is not repeated.
type opError struct {
	msg string
	err error
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.err }

func lockedError(path string) error {
	return &opError{
		msg: fmt.Sprintf("database %s is locked by another process (is tenantgate serve running?)", path),
		err: tenants.ErrLocked,
	}
}

func corruptError(path string, detail error) error {
	return &opError{
		msg: fmt.Sprintf("database %s is corrupt and was not opened (%v); restore it from a backup or move it aside", path, detail),
		err: tenants.ErrCorrupt,
	}
}

// Open opens the database at path, creating it (mode 0600) if it does not
// exist. It fails with an error wrapping tenants.ErrLocked when another
// process holds the file for longer than opts.Timeout, and with one wrapping
// tenants.ErrCorrupt when the file is not a readable tenantgate database
// (garbage, truncated, damaged pages, records of an unknown version, broken
// indexes); a damaged file never crashes the process. Writes are synced to
// disk before they return.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	db, err := openBolt(path, opts.Timeout)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:       db,
		path:     path,
		now:      opts.Now,
		rand:     opts.Rand,
		watchers: map[chan struct{}]struct{}{},
	}
	if err := s.prepare(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens the bbolt file, turning bbolt's failures (including panics
// and memory faults on damaged files) into tenants errors.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	var files []*os.File
	bopts := &bolt.Options{
		Timeout: timeout,
		// NoSync stays false: a write is on disk when it returns.
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err == nil {
				files = append(files, f)
			}
			return f, err
		},
	}
	if err := precheck(path); err != nil {
		if lockedElsewhere(path) {
			// The file may be mid-write by its owner; what matters is
			// that it is in use.
			return nil, lockedError(path)
		}
		return nil, corruptError(path, err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// bbolt gave up half-way. Closing its file releases the lock
			// unless bbolt had already mapped the file; precheck refuses
			// the damage known to panic after that point.
			for _, f := range files {
				_ = f.Close()
			}
			db, err = nil, corruptError(path, fmt.Errorf("bbolt: %v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, bopts)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, lockedError(path)
	case errors.As(err, new(*fs.PathError)):
		// Missing directory, permissions: the file system's business.
		return nil, fmt.Errorf("open database %s: %w", path, err)
	default:
		// ErrInvalid, ErrChecksum, ErrVersionMismatch, "file size too
		// small": bbolt could not make sense of the file.
		return nil, corruptError(path, err)
	}
}

// prepare checks an existing database from end to end and migrates it to
// record.SchemaVersion, or lays out a new one.
func (s *Store) prepare() error {
	var fresh bool
	var schema int
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			if err := checkSize(s.path, tx); err != nil {
				return err
			}
			if tx.Bucket(bucketMeta) == nil {
				// Only an empty file (just created by bbolt) may lack the
				// schema; anything else is someone else's bbolt file.
				empty := true
				_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
				if !empty {
					return errors.New("not a tenantgate database (no schema record)")
				}
				fresh = true
				return nil
			}
			var err error
			if schema, err = walk(tx); err != nil {
				return err
			}
			// bbolt's own check runs in a goroutine of its own, where a
			// memory fault could not be recovered, and it trusts overflow
			// counts; precheck has verified the page structure and walk has
			// read every page it will visit, so it is safe now.
			var problems []string
			for err := range tx.Check() {
				if len(problems) < 5 {
					problems = append(problems, err.Error())
				}
			}
			if len(problems) > 0 {
				return errors.New("consistency check: " + strings.Join(problems, "; "))
			}
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, tenants.ErrCorrupt) {
			// walk's errors already say "database is corrupt".
			return &opError{msg: fmt.Sprintf("database %s was not opened: %v; restore it from a backup or move it aside", s.path, err), err: tenants.ErrCorrupt}
		}
		return corruptError(s.path, err)
	}
	if !fresh {
		if err := s.migrate(schema); err != nil {
			return err
		}
		return s.addMissingBuckets()
	}
	err = guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets() {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			v, err := record.Encode(record.Schema{V: record.SchemaVersion})
			if err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySchema, v)
		})
	})
	if err != nil {
		return fmt.Errorf("initialise database %s: %w", s.path, err)
	}
	return nil
}

// addMissingBuckets creates the buckets added after a database was first
// laid out; it writes nothing when they all exist.
func (s *Store) addMissingBuckets() error {
	var missing bool
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			for _, name := range addedBuckets() {
				if tx.Bucket(name) == nil {
					missing = true
				}
			}
			return nil
		})
	})
	if err != nil || !missing {
		return err
	}
	err = guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			for _, name := range addedBuckets() {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("upgrade database %s: %w", s.path, err)
	}
	return nil
}

// checkSize refuses a file shorter than its own meta page says: reading
// the missing pages through the memory map would fault.
func checkSize(path string, tx *bolt.Tx) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if want := tx.Size(); want > fi.Size() {
		return fmt.Errorf("file is truncated: %d bytes, its header needs %d", fi.Size(), want)
	}
	return nil
}

// guard runs fn, converting a panic or memory fault inside bbolt into an
// error wrapping tenants.ErrCorrupt. Panics raised by caller-supplied
// callbacks (callerPanic) are not bbolt's and are re-raised untouched.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if cp, ok := r.(callerPanic); ok {
				panic(cp.value)
			}
			err = fmt.Errorf("%w: bbolt: %v", tenants.ErrCorrupt, r)
		}
	}()
	return fn()
}

// callerPanic marks a panic raised by a callback the caller passed in, so
// guard does not mistake it for damage in the file.
type callerPanic struct{ value any }

// callOut runs a caller-supplied callback inside a transaction.
func callOut[T any](f func() (T, error)) (T, error) {
	defer func() {
		if r := recover(); r != nil {
			panic(callerPanic{r})
		}
	}()
	return f()
}

// walk reads every record of every bucket, checking versions and that the
// indexes agree with the records they index, and returns the schema
// version (readSchema). Tenant records of a schema-1 database are read as
// version 1.
func walk(tx *bolt.Tx) (int, error) {
	for _, name := range firstBuckets() {
		if tx.Bucket(name) == nil {
			return 0, fmt.Errorf("%w: bucket %s is missing", tenants.ErrCorrupt, name)
		}
	}
	schema, err := readSchema(tx)
	if err != nil {
		return 0, err
	}
	return schema, walkRecords(tx, schema)
}

// walkRecords is walk's reading of the records of a database at the given
// schema version.
func walkRecords(tx *bolt.Tx, schema int) error {
	corrupt := func(format string, args ...any) error {
		for i, a := range args {
			switch a := a.(type) {
			case []byte:
				args[i] = short(a)
			case string:
				args[i] = short([]byte(a))
			}
		}
		return fmt.Errorf("%w: "+format, append([]any{tenants.ErrCorrupt}, args...)...)
	}
	// Sizes first: a damaged page can claim a key or value of gigabytes
	// that the checks below would otherwise read or print in full.
	for _, name := range allBuckets() {
		if tx.Bucket(name) == nil {
			continue // an added bucket, created after this walk
		}
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			if len(k) > record.MaxKeyLen || len(v) > record.MaxValueLen {
				return corrupt("%s: entry of %d+%d bytes is larger than any tenantgate writes", name, len(k), len(v))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}

	// Tenants and the two domain indexes, both directions.
	internalIDs := map[string]bool{}
	tb := tx.Bucket(bucketTenants)
	domains, emailDomains := tx.Bucket(bucketDomains), tx.Bucket(bucketEmailDomains)
	err := tb.ForEach(func(k, v []byte) error {
		r, err := decodeTenant(schema, k, v)
		if err != nil {
			return err
		}
		if r.ID != string(k) || r.ID == "" || r.InternalID == "" {
			return corrupt("tenant record %s has id %s and internal id %s", k, r.ID, r.InternalID)
		}
		if internalIDs[r.InternalID] {
			return corrupt("internal id %s is used by two tenants", r.InternalID)
		}
		internalIDs[r.InternalID] = true
		for _, d := range r.Domains {
			if owner := domains.Get([]byte(d)); string(owner) != r.ID {
				return corrupt("domain %s of tenant %s is indexed to %s", d, r.ID, owner)
			}
		}
		for _, d := range r.EmailDomains {
			if owner := emailDomains.Get([]byte(d)); string(owner) != r.ID {
				return corrupt("email domain %s of tenant %s is indexed to %s", d, r.ID, owner)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, idx := range []struct {
		bucket []byte
		field  func(*record.Tenant) []string
	}{
		{bucketDomains, func(r *record.Tenant) []string { return r.Domains }},
		{bucketEmailDomains, func(r *record.Tenant) []string { return r.EmailDomains }},
	} {
		err := tx.Bucket(idx.bucket).ForEach(func(k, v []byte) error {
			raw := tb.Get(v)
			if raw == nil {
				return corrupt("%s/%s points at missing tenant %s", idx.bucket, k, v)
			}
			r, err := decodeTenant(schema, v, raw)
			if err != nil {
				return err
			}
			for _, d := range idx.field(r) {
				if d == string(k) {
					return nil
				}
			}
			return corrupt("%s/%s points at tenant %s, which does not list it", idx.bucket, k, v)
		})
		if err != nil {
			return err
		}
	}

	// Users and the email index, both directions.
	users, emails := tx.Bucket(bucketUsers), tx.Bucket(bucketUserEmails)
	err = users.ForEach(func(k, v []byte) error {
		var r record.User
		if err := decodeRecord(bucketUsers, k, v, &r); err != nil {
			return err
		}
		if r.ID != string(k) || r.ID == "" {
			return corrupt("user record %s has id %s", k, r.ID)
		}
		if r.External {
			// Not in the email index, and the email may be unknown.
			if !internalIDs[r.Tenant] {
				return corrupt("external user %s names no existing tenant", k)
			}
			return nil
		}
		if r.Email == "" {
			return corrupt("user record %s has no email", k)
		}
		if id := emails.Get([]byte(r.Email)); string(id) != r.ID {
			return corrupt("email of user %s is indexed to %s", r.ID, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = emails.ForEach(func(k, v []byte) error {
		raw := users.Get(v)
		if raw == nil {
			return corrupt("%s/%s points at missing user %s", bucketUserEmails, k, v)
		}
		var r record.User
		if err := decodeRecord(bucketUsers, v, raw, &r); err != nil {
			return err
		}
		if r.External || r.Email != string(k) {
			return corrupt("%s/%s points at user %s with another email", bucketUserEmails, k, v)
		}
		return nil
	})
	if err != nil {
		return err
	}

	if xb := tx.Bucket(bucketExternals); xb != nil {
		err = xb.ForEach(func(k, v []byte) error {
			var r record.External
			if err := decodeRecord(bucketExternals, k, v, &r); err != nil {
				return err
			}
			if !internalIDs[r.Tenant] || users.Get([]byte(r.UserID)) == nil ||
				string(k) != string(externalKey(r.Tenant, r.Method, r.Issuer, r.Subject)) {
				return corrupt("external identity %s names no existing tenant and user", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if ab, ae := tx.Bucket(bucketAssertions), tx.Bucket(bucketAssertionExpiry); ab != nil && ae != nil {
		err = ab.ForEach(func(k, v []byte) error {
			var r record.Assertion
			if err := decodeRecord(bucketAssertions, k, v, &r); err != nil {
				return err
			}
			if ae.Get(expiryKey(r.Expires, string(k))) == nil {
				return corrupt("assertion %s is missing from the expiry index", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = ae.ForEach(func(k, _ []byte) error {
			if len(k) <= 8 || ab.Get(k[8:]) == nil {
				return corrupt("expiry index entry %s names no assertion", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}

	if hb := tx.Bucket(bucketAuditHeads); hb != nil {
		// The heads only: the events are many, and their own check is
		// VerifyAudit, which names a break rather than refusing the file.
		err = hb.ForEach(func(k, v []byte) error {
			var r record.AuditHead
			return decodeRecord(bucketAuditHeads, k, v, &r)
		})
		if err != nil {
			return err
		}
	}

	if err := walkSessions(tx); err != nil {
		return err
	}

	err = tx.Bucket(bucketMemberships).ForEach(func(k, v []byte) error {
		var r record.Membership
		if err := decodeRecord(bucketMemberships, k, v, &r); err != nil {
			return err
		}
		tid, uid, ok := strings.Cut(string(k), "/")
		if !ok || !internalIDs[tid] || users.Get([]byte(uid)) == nil {
			return corrupt("membership %s names no existing tenant and user", k)
		}
		return nil
	})
	if err != nil {
		return err
	}

	revs, expiry := tx.Bucket(bucketRevocations), tx.Bucket(bucketRevocationExpiry)
	err = revs.ForEach(func(k, v []byte) error {
		var r record.Revocation
		if err := decodeRecord(bucketRevocations, k, v, &r); err != nil {
			return err
		}
		if r.Key != string(k) {
			return corrupt("revocation %s has key %s", k, r.Key)
		}
		if expiry.Get(expiryKey(r.Expires, r.Key)) == nil {
			return corrupt("revocation %s is missing from the expiry index", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return expiry.ForEach(func(k, _ []byte) error {
		if len(k) <= 8 || revs.Get(k[8:]) == nil {
			return corrupt("expiry index entry %s names no revocation", k)
		}
		return nil
	})
}

// expiryKey orders revocations by expiry (whole seconds, big-endian with the
// sign bit flipped so that times before 1970 sort first), then by key.
func expiryKey(expires time.Time, key string) []byte {
	b := make([]byte, 8, 8+len(key))
	u := uint64(expires.Unix()) ^ (1 << 63)
	for i := 7; i >= 0; i-- {
		b[i] = byte(u)
		u >>= 8
	}
	return append(b, key...)
}

// expirySeconds decodes the time part of an expiryKey.
func expirySeconds(k []byte) int64 {
	var u uint64
	for _, c := range k[:8] {
		u = u<<8 | uint64(c)
	}
	return int64(u ^ (1 << 63))
}
