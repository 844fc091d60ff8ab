package boltstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Close releases the database file and closes every Watch channel. It is safe
// to call more than once; later calls return nil. Methods called after Close
// return an error.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ch := range s.watchers {
		close(ch)
	}
	clear(s.watchers)
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", s.path, err)
	}
	return nil
}

// Watch returns a channel that receives a value after every write this Store
// commits; at most one value is pending, so a slow reader sees one
// notification for many writes. It is closed when ctx ends or the Store is
// closed. Other processes cannot write the file while this one holds it, so
// there is nothing else to watch.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || ctx.Err() != nil {
		close(ch)
		return ch
	}
	s.watchers[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.watchers[ch]; ok {
			delete(s.watchers, ch)
			close(ch)
		}
	})
	return ch
}

// notify tells every watcher that a write committed.
func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default: // one is already pending
		}
	}
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnFailed bool
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			err := fn(tx)
			fnFailed = err != nil
			return err
		})
	})
	if err != nil && !fnFailed {
		return fmt.Errorf("read database %s: %w", s.path, err)
	}
	return err
}

// Ping reports whether the database is open and answers a read: one read
// transaction that looks at the meta bucket. bbolt readers never wait for
// the writer, so a readiness probe costs microseconds whatever is being
// written.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("read database %s: no meta bucket", s.path)
		}
		return nil
	})
}

// update runs fn in a write transaction, drops expired revocations and
// assertion ids in the same transaction, and once it has committed applies
// what it changed to the hot snapshot (fn records its changes in the
// SnapshotChange it is given) and tells the watchers.
func (s *Store) update(ctx context.Context, fn func(*bolt.Tx, *tenants.SnapshotChange) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writing.Lock()
	defer s.writing.Unlock()
	var change *tenants.SnapshotChange
	var fnFailed bool
	err := guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			change = &tenants.SnapshotChange{}
			if err := fn(tx, change); err != nil {
				fnFailed = true
				return err
			}
			if err := s.pruneAssertions(tx); err != nil {
				return err
			}
			if err := s.pruneSessions(tx); err != nil {
				return err
			}
			return s.pruneRevocations(tx, change)
		})
	})
	if err != nil {
		if !fnFailed {
			return fmt.Errorf("write database %s: %w", s.path, err)
		}
		return err
	}
	if s.hot != nil {
		s.hot = s.hot.With(change)
	}
	s.notify()
	return nil
}

// newID returns 16 random bytes in lower-case hex.
func (s *Store) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// getTenant reads a tenant record, or returns nil when there is none.
func getTenant(tx *bolt.Tx, id string) (*record.Tenant, error) {
	raw := tx.Bucket(bucketTenants).Get([]byte(id))
	if raw == nil {
		return nil, nil
	}
	var r record.Tenant
	if err := decodeRecord(bucketTenants, []byte(id), raw, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// mustTenant reads a tenant record or fails with tenants.ErrNotFound.
func mustTenant(tx *bolt.Tx, id string) (*record.Tenant, error) {
	r, err := getTenant(tx, id)
	if err == nil && r == nil {
		err = fmt.Errorf("tenant %q: %w", id, tenants.ErrNotFound)
	}
	return r, err
}

func putRecord(b *bolt.Bucket, key []byte, rec any) error {
	v, err := record.Encode(rec)
	if err != nil {
		return err
	}
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

// getUserByEmail reads the user with a lower-case email, or returns nil.
func getUserByEmail(tx *bolt.Tx, email string) (*record.User, error) {
	id := tx.Bucket(bucketUserEmails).Get([]byte(email))
	if id == nil {
		return nil, nil
	}
	raw := tx.Bucket(bucketUsers).Get(id)
	if raw == nil {
		return nil, fmt.Errorf("%w: email index names missing user %s", tenants.ErrCorrupt, short(id))
	}
	var r record.User
	if err := decodeRecord(bucketUsers, id, raw, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ApplyTenants creates or updates every tenant in ts in one write
// transaction; see tenants.Store. Conflicts are reported as errors wrapping
// tenants.ErrConflict that name the tenant, the field ("domains" or
// "emailDomains") and the value. A domain may move from one tenant to another
// within one batch. Any Sealed bytes in ts are ignored: only
// ApplyOptions.SealMethod decides what a method keeps sealed.
func (s *Store) ApplyTenants(ctx context.Context, ts []tenants.Tenant, opts tenants.ApplyOptions) ([]tenants.ApplyResult, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := record.CheckBatch(ts); err != nil {
		return nil, err
	}
	var results []tenants.ApplyResult
	err := s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		results = make([]tenants.ApplyResult, 0, len(ts))
		tb := tx.Bucket(bucketTenants)
		indexes := []struct {
			bucket *bolt.Bucket
			field  string
			values func(*tenants.Tenant) []string
			stored func(*record.Tenant) []string
		}{
			{tx.Bucket(bucketDomains), "domains",
				func(t *tenants.Tenant) []string { return t.Domains },
				func(r *record.Tenant) []string { return r.Domains }},
			{tx.Bucket(bucketEmailDomains), "emailDomains",
				func(t *tenants.Tenant) []string { return t.EmailDomains },
				func(r *record.Tenant) []string { return r.EmailDomains }},
		}

		// First release every index entry the batch's existing tenants hold,
		// so that what remains belongs to tenants outside the batch.
		old := make([]*record.Tenant, len(ts))
		for i := range ts {
			r, err := getTenant(tx, ts[i].ID)
			if err != nil {
				return err
			}
			old[i] = r
			if r == nil {
				continue
			}
			for _, idx := range indexes {
				for _, v := range idx.stored(r) {
					if err := idx.bucket.Delete([]byte(v)); err != nil {
						return fmt.Errorf("release %s %q: %w", idx.field, v, err)
					}
				}
			}
		}

		for i := range ts {
			t := &ts[i]
			for _, idx := range indexes {
				for _, v := range idx.values(t) {
					if owner := idx.bucket.Get([]byte(v)); owner != nil && string(owner) != t.ID {
						return fmt.Errorf("tenant %q: %s: %q already belongs to tenant %q: %w",
							t.ID, idx.field, v, owner, tenants.ErrConflict)
					}
					if err := idx.bucket.Put([]byte(v), []byte(t.ID)); err != nil {
						return fmt.Errorf("tenant %q: %s: index %q: %w", t.ID, idx.field, v, err)
					}
				}
			}

			// record.ApplyTenant calls the caller's callbacks: a panic in
			// it is the caller's, not damage in the file (callOut).
			var warnings []string
			rec, err := callOut(func() (rec record.Tenant, err error) {
				rec, warnings, err = record.ApplyTenant(t, old[i], opts, s.newID, now())
				return rec, err
			})
			if err != nil {
				return err
			}

			if err := putRecord(tb, []byte(t.ID), &rec); err != nil {
				return fmt.Errorf("tenant %q: %w", t.ID, err)
			}
			results = append(results, tenants.ApplyResult{ID: t.ID, Created: old[i] == nil, Warnings: warnings})
		}
		return replaceTenants(tx, change)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// Tenants returns every tenant sorted by ID, with keys and sealed secrets and
// never a plaintext ClientSecret.
func (s *Store) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	var out []tenants.Tenant
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = allTenants(tx)
		return err
	})
	return out, err
}

// allTenants decodes every tenant; bbolt iterates keys (slugs) in order.
func allTenants(tx *bolt.Tx) ([]tenants.Tenant, error) {
	var out []tenants.Tenant
	err := tx.Bucket(bucketTenants).ForEach(func(k, v []byte) error {
		var r record.Tenant
		if err := decodeRecord(bucketTenants, k, v, &r); err != nil {
			return err
		}
		out = append(out, r.ToTenant())
		return nil
	})
	return out, err
}

// replaceTenants records every tenant, as the write leaves them, in change.
func replaceTenants(tx *bolt.Tx, change *tenants.SnapshotChange) error {
	ts, err := allTenants(tx)
	if err != nil {
		return err
	}
	change.ReplaceTenants(ts)
	return nil
}

// Tenant returns one tenant by slug, or an error wrapping tenants.ErrNotFound.
func (s *Store) Tenant(ctx context.Context, id string) (tenants.Tenant, error) {
	var out tenants.Tenant
	err := s.view(ctx, func(tx *bolt.Tx) error {
		r, err := mustTenant(tx, id)
		if err != nil {
			return err
		}
		out = r.ToTenant()
		return nil
	})
	return out, err
}

// DeleteTenant removes a tenant, its domain index entries, keys and
// memberships in one write, or returns an error wrapping tenants.ErrNotFound.
// Users stay.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		r, err := mustTenant(tx, id)
		if err != nil {
			return err
		}
		for _, d := range r.Domains {
			if err := tx.Bucket(bucketDomains).Delete([]byte(d)); err != nil {
				return fmt.Errorf("tenant %q: release domain %q: %w", id, d, err)
			}
		}
		for _, d := range r.EmailDomains {
			if err := tx.Bucket(bucketEmailDomains).Delete([]byte(d)); err != nil {
				return fmt.Errorf("tenant %q: release email domain %q: %w", id, d, err)
			}
		}
		prefix := membershipPrefix(r.InternalID)
		var members []string
		c := tx.Bucket(bucketMemberships).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			members = append(members, string(k[len(prefix):]))
		}
		for _, uid := range members {
			if err := deleteMembership(tx, change, r.InternalID, uid); err != nil {
				return fmt.Errorf("tenant %q: %w", id, err)
			}
		}
		if err := deleteExternals(tx, r.InternalID); err != nil {
			return fmt.Errorf("tenant %q: %w", id, err)
		}
		if err := deleteAssertions(tx, r.InternalID); err != nil {
			return fmt.Errorf("tenant %q: delete used assertion ids: %w", id, err)
		}
		if err := deleteSessions(tx, r.InternalID); err != nil {
			return fmt.Errorf("tenant %q: delete recorded sessions: %w", id, err)
		}
		if err := tx.Bucket(bucketTenants).Delete([]byte(id)); err != nil {
			return fmt.Errorf("tenant %q: delete: %w", id, err)
		}
		return replaceTenants(tx, change)
	})
}

// deleteExternals removes a tenant's external identities and the users
// UpsertExternalUser made for them (they belong to that tenant alone).
func deleteExternals(tx *bolt.Tx, tenantInternalID string) error {
	xb, users := tx.Bucket(bucketExternals), tx.Bucket(bucketUsers)
	prefix := membershipPrefix(tenantInternalID)
	var keys, uids [][]byte
	c := xb.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r record.External
		if err := decodeRecord(bucketExternals, k, v, &r); err != nil {
			return err
		}
		keys = append(keys, bytes.Clone(k))
		uids = append(uids, []byte(r.UserID))
	}
	for i := range keys {
		if err := xb.Delete(keys[i]); err != nil {
			return fmt.Errorf("delete external identity: %w", err)
		}
		if err := users.Delete(uids[i]); err != nil {
			return fmt.Errorf("delete external user: %w", err)
		}
	}
	return nil
}

// AddMember adds or updates a membership; see tenants.Store. The tenant must
// exist (else tenants.ErrNotFound) and the email must not be empty.
func (s *Store) AddMember(ctx context.Context, tenantID string, m tenants.NewMember) (bool, error) {
	email := record.NormalizeEmail(m.Email)
	if email == "" {
		return false, errors.New("add member: email is empty")
	}
	var created bool
	err := s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		created = false
		t, err := mustTenant(tx, tenantID)
		if err != nil {
			return err
		}
		u, err := getUserByEmail(tx, email)
		if err != nil {
			return err
		}
		if u == nil {
			if m.PasswordHash == "" {
				return fmt.Errorf("user %s: %w", email, tenants.ErrPasswordRequired)
			}
			id, err := s.newID()
			if err != nil {
				return err
			}
			u = &record.User{V: record.Version, ID: id, Email: email, PasswordHash: m.PasswordHash, Created: s.now()}
			if err := putRecord(tx.Bucket(bucketUsers), []byte(id), u); err != nil {
				return fmt.Errorf("user %s: %w", email, err)
			}
			if err := tx.Bucket(bucketUserEmails).Put([]byte(email), []byte(id)); err != nil {
				return fmt.Errorf("user %s: index email: %w", email, err)
			}
			created = true
		}
		if err := putMembership(tx, change, t.InternalID, u.ID, m.Roles); err != nil {
			return fmt.Errorf("membership of %s in tenant %q: %w", email, tenantID, err)
		}
		return nil
	})
	return created, err
}

// putMembership writes a membership with exactly these roles, keeping the
// second factors of the one it replaces, and records it in change. Every
// write of a membership's roles goes through here, so the hot snapshot
// cannot miss one.
func putMembership(tx *bolt.Tx, change *tenants.SnapshotChange, tenantInternalID, userID string, roles []string) error {
	roles = slices.Clone(roles)
	if roles == nil {
		roles = []string{}
	}
	mb := tx.Bucket(bucketMemberships)
	key := membershipKey(tenantInternalID, userID)
	rec := record.Membership{V: record.Version}
	if raw := mb.Get(key); raw != nil {
		if err := decodeRecord(bucketMemberships, key, raw, &rec); err != nil {
			return err
		}
	}
	rec.Roles = roles
	if err := putRecord(mb, key, &rec); err != nil {
		return err
	}
	change.PutMembership(tenantInternalID, userID, roles)
	return nil
}

// deleteMembership deletes a membership and records it in change, like
// putMembership.
func deleteMembership(tx *bolt.Tx, change *tenants.SnapshotChange, tenantInternalID, userID string) error {
	if err := tx.Bucket(bucketMemberships).Delete(membershipKey(tenantInternalID, userID)); err != nil {
		return fmt.Errorf("delete membership: %w", err)
	}
	change.DeleteMembership(tenantInternalID, userID)
	return deletePasskeys(tx, []byte(record.PasskeyUserPrefix(tenantInternalID, userID)))
}

// Members lists a tenant's members sorted by email, or returns an error
// wrapping tenants.ErrNotFound when the tenant does not exist.
func (s *Store) Members(ctx context.Context, tenantID string) ([]tenants.Member, error) {
	var out []tenants.Member
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		t, err := mustTenant(tx, tenantID)
		if err != nil {
			return err
		}
		prefix := membershipPrefix(t.InternalID)
		users := tx.Bucket(bucketUsers)
		c := tx.Bucket(bucketMemberships).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var mr record.Membership
			if err := decodeRecord(bucketMemberships, k, v, &mr); err != nil {
				return err
			}
			uid := k[len(prefix):]
			raw := users.Get(uid)
			if raw == nil {
				return fmt.Errorf("%w: membership %s names a missing user", tenants.ErrCorrupt, short(k))
			}
			var ur record.User
			if err := decodeRecord(bucketUsers, uid, raw, &ur); err != nil {
				return err
			}
			out = append(out, tenants.Member{User: ur.ToUser(), Roles: slices.Clone(mr.Roles)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b tenants.Member) int { return strings.Compare(a.User.Email, b.User.Email) })
	return out, nil
}

// RemoveMember deletes a membership and records rev, keyed
// tenants.UserRevocationKey(tenant, user), in the same write. The email
// names the password user with that email and every SSO user of the tenant
// whose IdP last gave that email; all their memberships go (an SSO user
// signing in again is let back in by their IdP). It returns an
// error wrapping tenants.ErrNotFound when the tenant, user or membership does
// not exist; rev.Expires must be set.
func (s *Store) RemoveMember(ctx context.Context, tenantID, email string, rev tenants.Revocation) error {
	email = record.NormalizeEmail(email)
	if rev.Expires.IsZero() {
		return errors.New("remove member: the revocation needs an expiry")
	}
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error {
		t, err := mustTenant(tx, tenantID)
		if err != nil {
			return err
		}
		u, err := getUserByEmail(tx, email)
		if err != nil {
			return err
		}
		mb := tx.Bucket(bucketMemberships)
		var uids []string
		if u != nil && mb.Get(membershipKey(t.InternalID, u.ID)) != nil {
			uids = append(uids, u.ID)
		}
		// SSO users of this tenant are not in the email index; match them
		// by the email their IdP last gave.
		ext, err := externalMembersByEmail(tx, t.InternalID, email)
		if err != nil {
			return err
		}
		uids = append(uids, ext...)
		if len(uids) == 0 {
			return fmt.Errorf("%s is not a member of tenant %q: %w", email, tenantID, tenants.ErrNotFound)
		}
		for _, uid := range uids {
			if err := deleteMembership(tx, change, t.InternalID, uid); err != nil {
				return fmt.Errorf("membership of %s in tenant %q: %w", email, tenantID, err)
			}
			r := rev
			r.Key = tenants.UserRevocationKey(t.InternalID, uid)
			if err := putRevocation(tx, change, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// externalMembersByEmail returns the ids of the tenant's external users
// with that email who are still members.
func externalMembersByEmail(tx *bolt.Tx, tenantInternalID, email string) ([]string, error) {
	users := tx.Bucket(bucketUsers)
	prefix := membershipPrefix(tenantInternalID)
	var out []string
	c := tx.Bucket(bucketMemberships).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		uid := k[len(prefix):]
		raw := users.Get(uid)
		if raw == nil {
			return nil, fmt.Errorf("%w: membership %s names a missing user", tenants.ErrCorrupt, short(k))
		}
		var r record.User
		if err := decodeRecord(bucketUsers, uid, raw, &r); err != nil {
			return nil, err
		}
		if r.External && r.Email != "" && r.Email == email {
			out = append(out, r.ID)
		}
	}
	return out, nil
}

// UserByEmail returns the user with that email, compared lower-case, or an
// error wrapping tenants.ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (tenants.User, error) {
	email = record.NormalizeEmail(email)
	var out tenants.User
	err := s.view(ctx, func(tx *bolt.Tx) error {
		u, err := getUserByEmail(tx, email)
		if err != nil {
			return err
		}
		if u == nil {
			return fmt.Errorf("user %s: %w", email, tenants.ErrNotFound)
		}
		out = u.ToUser()
		return nil
	})
	return out, err
}

// Membership returns a user's roles in a tenant, or an error wrapping
// tenants.ErrNotFound.
func (s *Store) Membership(ctx context.Context, tenantInternalID, userID string) ([]string, error) {
	var roles []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		key := membershipKey(tenantInternalID, userID)
		raw := tx.Bucket(bucketMemberships).Get(key)
		if raw == nil {
			return fmt.Errorf("membership of user %q in tenant %q: %w", userID, tenantInternalID, tenants.ErrNotFound)
		}
		var mr record.Membership
		if err := decodeRecord(bucketMemberships, key, raw, &mr); err != nil {
			return err
		}
		roles = slices.Clone(mr.Roles)
		return nil
	})
	return roles, err
}

// Revoke records r, replacing a revocation with the same key. r.Key and
// r.Expires must be set.
func (s *Store) Revoke(ctx context.Context, r tenants.Revocation) error {
	if r.Key == "" {
		return errors.New("revoke: the revocation has no key")
	}
	if r.Expires.IsZero() {
		return fmt.Errorf("revoke %s: the revocation needs an expiry", r.Key)
	}
	return s.update(ctx, func(tx *bolt.Tx, change *tenants.SnapshotChange) error { return putRevocation(tx, change, r) })
}

// putRevocation writes a revocation and its expiry index entry, replacing
// any earlier one with the same key, and records it in change.
func putRevocation(tx *bolt.Tx, change *tenants.SnapshotChange, r tenants.Revocation) error {
	revs, expiry := tx.Bucket(bucketRevocations), tx.Bucket(bucketRevocationExpiry)
	if raw := revs.Get([]byte(r.Key)); raw != nil {
		var prev record.Revocation
		if err := decodeRecord(bucketRevocations, []byte(r.Key), raw, &prev); err != nil {
			return err
		}
		if err := expiry.Delete(expiryKey(prev.Expires, prev.Key)); err != nil {
			return fmt.Errorf("revocation %s: %w", r.Key, err)
		}
	}
	rec := record.Revocation{V: record.Version, Key: r.Key, NotBefore: r.NotBefore, Expires: r.Expires}
	if err := putRecord(revs, []byte(r.Key), &rec); err != nil {
		return fmt.Errorf("revocation %s: %w", r.Key, err)
	}
	if err := expiry.Put(expiryKey(r.Expires, r.Key), nil); err != nil {
		return fmt.Errorf("revocation %s: index expiry: %w", r.Key, err)
	}
	change.PutRevocation(rec.ToRevocation())
	return nil
}

// pruneRevocations drops revocations whose Expires is before now, and
// records each in change.
func (s *Store) pruneRevocations(tx *bolt.Tx, change *tenants.SnapshotChange) error {
	now := s.now()
	revs, expiry := tx.Bucket(bucketRevocations), tx.Bucket(bucketRevocationExpiry)
	var doomed [][]byte
	c := expiry.Cursor()
	for k, _ := c.First(); k != nil && expirySeconds(k) <= now.Unix(); k, _ = c.Next() {
		key := k[8:]
		var r record.Revocation
		if err := decodeRecord(bucketRevocations, key, revs.Get(key), &r); err != nil {
			return err
		}
		if r.Expires.Before(now) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := revs.Delete(k[8:]); err != nil {
			return fmt.Errorf("drop expired revocation: %w", err)
		}
		if err := expiry.Delete(k); err != nil {
			return fmt.Errorf("drop expired revocation: %w", err)
		}
		change.DeleteRevocation(string(k[8:]))
	}
	return nil
}

// Snapshot returns what the hot path needs: every tenant, membership and
// live revocation, as of the last committed write. The first call reads it
// all from the file in one read transaction; every write after that applies
// its own change to the result, so later calls cost nothing and a write
// costs in proportion to what it changed (tenants.Store). The Snapshot
// returned may be returned again by later calls until the next write.
func (s *Store) Snapshot(ctx context.Context) (*tenants.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.writing.Lock()
	defer s.writing.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("read database %s: %w", s.path, bolt.ErrDatabaseNotOpen)
	}
	if s.hot == nil {
		hot, err := s.load(ctx)
		if err != nil {
			return nil, err
		}
		s.hot = hot
	}
	return s.hot, nil
}

// load reads every tenant, membership and unexpired revocation in one read
// transaction.
func (s *Store) load(ctx context.Context) (*tenants.Snapshot, error) {
	s.loads++
	var change *tenants.SnapshotChange
	now := s.now()
	err := s.view(ctx, func(tx *bolt.Tx) error {
		change = &tenants.SnapshotChange{}
		if err := replaceTenants(tx, change); err != nil {
			return err
		}
		err := tx.Bucket(bucketMemberships).ForEach(func(k, v []byte) error {
			tid, uid, ok := bytes.Cut(k, []byte("/"))
			if !ok {
				return fmt.Errorf("%w: membership key %s has no tenant", tenants.ErrCorrupt, short(k))
			}
			var mr record.Membership
			if err := decodeRecord(bucketMemberships, k, v, &mr); err != nil {
				return err
			}
			change.PutMembership(string(tid), string(uid), mr.Roles)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRevocations).ForEach(func(k, v []byte) error {
			var r record.Revocation
			if err := decodeRecord(bucketRevocations, k, v, &r); err != nil {
				return err
			}
			if !r.Expires.Before(now) {
				change.PutRevocation(r.ToRevocation())
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return new(tenants.Snapshot).With(change), nil
}
