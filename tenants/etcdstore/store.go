package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// tenantIndexes are the two indexes of a tenant's names, each a namespace
// of name → slug.
var tenantIndexes = []struct {
	ns, field string
	values    func(*tenants.Tenant) []string
	stored    func(*record.Tenant) []string
}{
	{nsDomains, "domains",
		func(t *tenants.Tenant) []string { return t.Domains },
		func(r *record.Tenant) []string { return r.Domains }},
	{nsEmailDomains, "emailDomains",
		func(t *tenants.Tenant) []string { return t.EmailDomains },
		func(r *record.Tenant) []string { return r.EmailDomains }},
}

// getTenant reads a tenant record in t, or returns nil when there is none.
func (s *Store) getTenant(t *txn, id string) (*record.Tenant, error) {
	var r record.Tenant
	ok, err := t.getRecord(s.key(nsTenants, id), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

// mustTenant reads a tenant record in t or fails with tenants.ErrNotFound.
func (s *Store) mustTenant(t *txn, id string) (*record.Tenant, error) {
	r, err := s.getTenant(t, id)
	if err == nil && r == nil {
		err = notFound("tenant %q", id)
	}
	return r, err
}

// ApplyTenants creates or updates every tenant in ts in one transaction;
// see tenants.Store. Each domain and email domain is an index key created
// only if absent (or held by a tenant of the batch), so of two processes
// claiming one, exactly one succeeds and the other gets an error wrapping
// tenants.ErrConflict that names the tenant, the field and the value. A
// domain may move from one tenant to another within one batch.
func (s *Store) ApplyTenants(ctx context.Context, ts []tenants.Tenant, opts tenants.ApplyOptions) ([]tenants.ApplyResult, error) {
	now := s.now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := record.CheckBatch(ts); err != nil {
		return nil, err
	}
	var results []tenants.ApplyResult
	err := s.update(ctx, func(t *txn) error {
		results = make([]tenants.ApplyResult, 0, len(ts))
		// First release every index entry the batch's existing tenants
		// hold and no longer claim, so that what remains belongs to
		// tenants outside the batch or is claimed again below.
		old := make([]*record.Tenant, len(ts))
		for i := range ts {
			r, err := s.getTenant(t, ts[i].ID)
			if err != nil {
				return err
			}
			old[i] = r
			if r == nil {
				continue
			}
			for _, idx := range tenantIndexes {
				for _, v := range idx.stored(r) {
					if !slices.Contains(idx.values(&ts[i]), v) {
						t.delete(s.key(idx.ns, v))
					}
				}
			}
		}
		for i := range ts {
			tn := &ts[i]
			for _, idx := range tenantIndexes {
				for _, v := range idx.values(tn) {
					key := s.key(idx.ns, v)
					owner, err := t.get(key)
					if err != nil {
						return err
					}
					if owner != nil && string(owner) != tn.ID {
						return fmt.Errorf("tenant %q: %s: %q already belongs to tenant %q: %w",
							tn.ID, idx.field, v, owner, tenants.ErrConflict)
					}
					t.put(key, []byte(tn.ID))
				}
			}
			rec, warnings, err := record.ApplyTenant(tn, old[i], opts, s.newID, now())
			if err != nil {
				return err
			}
			if err := t.putRecord(s.key(nsTenants, tn.ID), &rec); err != nil {
				return fmt.Errorf("tenant %q: %w", tn.ID, err)
			}
			results = append(results, tenants.ApplyResult{ID: tn.ID, Created: old[i] == nil, Warnings: warnings})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// Tenants returns every tenant sorted by ID, with keys and sealed secrets.
func (s *Store) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	var out []tenants.Tenant
	err := s.view(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, s.nsPrefix(nsTenants), prefixOpts()...)
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			var r record.Tenant
			if err := s.decode(string(kv.Key), kv.Value, &r); err != nil {
				return err
			}
			out = append(out, r.ToTenant())
		}
		return nil
	})
	return out, err
}

// Tenant returns one tenant by slug, or an error wrapping
// tenants.ErrNotFound.
func (s *Store) Tenant(ctx context.Context, id string) (tenants.Tenant, error) {
	var out tenants.Tenant
	err := s.view(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, s.key(nsTenants, id))
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return notFound("tenant %q", id)
		}
		var r record.Tenant
		if err := s.decode(string(resp.Kvs[0].Key), resp.Kvs[0].Value, &r); err != nil {
			return err
		}
		out = r.ToTenant()
		return nil
	})
	return out, err
}

// maxUsersInDelete bounds how many of a deleted tenant's SSO users
// DeleteTenant deletes in its own transaction (etcd bounds a transaction's
// size); the rest follow in transactions of their own. Users left behind by
// a crash in between are unreachable (no email index entry, identity or
// membership names them) and harmless.
const maxUsersInDelete = 64

// DeleteTenant removes a tenant, its index entries, memberships, external
// identities (with their users) and used assertion ids; see
// tenants.Store. It returns an error wrapping tenants.ErrNotFound when
// there is no such tenant.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	var later []string
	err := s.update(ctx, func(t *txn) error {
		later = nil
		r, err := s.mustTenant(t, id)
		if err != nil {
			return err
		}
		for _, idx := range tenantIndexes {
			for _, v := range idx.stored(r) {
				t.delete(s.key(idx.ns, v))
			}
		}
		externals, err := t.scan(s.nsPrefix(nsExternals, record.TenantPrefix(r.InternalID)))
		if err != nil {
			return err
		}
		for i, kv := range externals {
			var x record.External
			if err := s.decode(string(kv.Key), kv.Value, &x); err != nil {
				return err
			}
			if i < maxUsersInDelete {
				t.delete(s.key(nsUsers, x.UserID))
			} else {
				later = append(later, x.UserID)
			}
		}
		for _, ns := range []string{nsMemberships, nsExternals, nsAssertions, nsSessions, nsPasskeys} {
			t.deletePrefix(s.nsPrefix(ns, record.TenantPrefix(r.InternalID)))
		}
		t.delete(s.key(nsTenants, id))
		return nil
	})
	if err != nil {
		return err
	}
	for len(later) > 0 {
		batch := later[:min(len(later), maxUsersInDelete)]
		later = later[len(batch):]
		err := s.update(ctx, func(t *txn) error {
			for _, uid := range batch {
				t.delete(s.key(nsUsers, uid))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("tenant %q deleted; deleting its SSO users: %w", id, err)
		}
	}
	return nil
}

// getUserByEmail reads the user with a lower-case email in t, or returns
// nil.
func (s *Store) getUserByEmail(t *txn, email string) (*record.User, error) {
	id, err := t.get(s.key(nsUserEmails, email))
	if err != nil || id == nil {
		return nil, err
	}
	var u record.User
	ok, err := t.getRecord(s.key(nsUsers, string(id)), &u)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, corrupt("email index names missing user %s", record.Short(id))
	}
	return &u, nil
}

// AddMember adds or updates a membership; see tenants.Store. The email
// index key of a new user is created only if absent: of two processes
// adding the same new email, one creates the user and the other adds its
// membership to that user. The tenant must exist (else
// tenants.ErrNotFound) and the email must not be empty.
func (s *Store) AddMember(ctx context.Context, tenantID string, m tenants.NewMember) (bool, error) {
	email := record.NormalizeEmail(m.Email)
	if email == "" {
		return false, errors.New("add member: email is empty")
	}
	var created bool
	err := s.update(ctx, func(t *txn) error {
		created = false
		tr, err := s.mustTenant(t, tenantID)
		if err != nil {
			return err
		}
		u, err := s.getUserByEmail(t, email)
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
			if err := t.putRecord(s.key(nsUsers, id), u); err != nil {
				return fmt.Errorf("user %s: %w", email, err)
			}
			// getUserByEmail read the index key absent: the commit
			// creates it only if it still is.
			t.put(s.key(nsUserEmails, email), []byte(id))
			created = true
		}
		if err := s.putMembership(t, tr.InternalID, u.ID, m.Roles); err != nil {
			return fmt.Errorf("membership of %s in tenant %q: %w", email, tenantID, err)
		}
		return nil
	})
	return created, err
}

// putMembership writes a membership with exactly these roles, keeping the
// second factors of the one it replaces (read within t, so a concurrent
// change of them makes the write run again).
func (s *Store) putMembership(t *txn, tenantInternalID, userID string, roles []string) error {
	roles = slices.Clone(roles)
	if roles == nil {
		roles = []string{}
	}
	key := s.key(nsMemberships, record.MembershipKey(tenantInternalID, userID))
	rec := record.Membership{V: record.Version}
	if _, err := t.getRecord(key, &rec); err != nil {
		return err
	}
	rec.Roles = roles
	return t.putRecord(key, &rec)
}

// Members lists a tenant's members sorted by email, or returns an error
// wrapping tenants.ErrNotFound when the tenant does not exist. Everything
// is read at one revision.
func (s *Store) Members(ctx context.Context, tenantID string) ([]tenants.Member, error) {
	var out []tenants.Member
	err := s.view(ctx, func(ctx context.Context) error {
		out = nil
		resp, err := s.get(ctx, s.key(nsTenants, tenantID))
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return notFound("tenant %q", tenantID)
		}
		var tr record.Tenant
		if err := s.decode(string(resp.Kvs[0].Key), resp.Kvs[0].Value, &tr); err != nil {
			return err
		}
		rev := resp.Header.Revision
		prefix := s.nsPrefix(nsMemberships, record.TenantPrefix(tr.InternalID))
		ms, err := s.get(ctx, prefix, append(prefixOpts(), withRev(rev))...)
		if err != nil {
			return err
		}
		keys := make([]string, len(ms.Kvs))
		roles := make([][]string, len(ms.Kvs))
		for i, kv := range ms.Kvs {
			var mr record.Membership
			if err := s.decode(string(kv.Key), kv.Value, &mr); err != nil {
				return err
			}
			keys[i], roles[i] = s.key(nsUsers, strings.TrimPrefix(string(kv.Key), prefix)), mr.Roles
		}
		users, err := s.getMany(ctx, keys, rev)
		if err != nil {
			return err
		}
		for i, raw := range users {
			if raw == nil {
				return corrupt("membership %s names a missing user", record.Short(ms.Kvs[i].Key))
			}
			var ur record.User
			if err := s.decode(keys[i], raw, &ur); err != nil {
				return err
			}
			out = append(out, tenants.Member{User: ur.ToUser(), Roles: slices.Clone(roles[i])})
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
// tenants.UserRevocationKey(tenant, user), in the same transaction. The
// email names the password user with that email and every SSO user of the
// tenant whose IdP last gave that email; all their memberships go. It
// returns an error wrapping tenants.ErrNotFound when the tenant, user or
// membership does not exist; rev.Expires must be set.
func (s *Store) RemoveMember(ctx context.Context, tenantID, email string, rev tenants.Revocation) error {
	email = record.NormalizeEmail(email)
	if rev.Expires.IsZero() {
		return errors.New("remove member: the revocation needs an expiry")
	}
	return s.update(ctx, func(t *txn) error {
		tr, err := s.mustTenant(t, tenantID)
		if err != nil {
			return err
		}
		u, err := s.getUserByEmail(t, email)
		if err != nil {
			return err
		}
		var uids []string
		if u != nil {
			m, err := t.get(s.key(nsMemberships, record.MembershipKey(tr.InternalID, u.ID)))
			if err != nil {
				return err
			}
			if m != nil {
				uids = append(uids, u.ID)
			}
		}
		// SSO users of this tenant are not in the email index; match them
		// by the email their IdP last gave.
		ext, err := s.externalMembersByEmail(t, tr.InternalID, email)
		if err != nil {
			return err
		}
		uids = append(uids, ext...)
		if len(uids) == 0 {
			return notFound("%s is not a member of tenant %q", email, tenantID)
		}
		for _, uid := range uids {
			t.delete(s.key(nsMemberships, record.MembershipKey(tr.InternalID, uid)))
			t.deletePrefix(s.nsPrefix(nsPasskeys, record.PasskeyUserPrefix(tr.InternalID, uid)))
			r := rev
			r.Key = tenants.UserRevocationKey(tr.InternalID, uid)
			if err := s.putRevocation(t, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// externalMembersByEmail returns the ids of the tenant's external users
// with that email who are still members. It reads the tenant's
// memberships and, at the same revision, their users.
func (s *Store) externalMembersByEmail(t *txn, tenantInternalID, email string) ([]string, error) {
	prefix := s.nsPrefix(nsMemberships, record.TenantPrefix(tenantInternalID))
	ms, err := t.scan(prefix)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(ms))
	for i, kv := range ms {
		keys[i] = s.key(nsUsers, strings.TrimPrefix(string(kv.Key), prefix))
	}
	users, err := s.getMany(t.ctx, keys, t.rev)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, raw := range users {
		if raw == nil {
			return nil, corrupt("membership %s names a missing user", record.Short(ms[i].Key))
		}
		var r record.User
		if err := s.decode(keys[i], raw, &r); err != nil {
			return nil, err
		}
		if r.External && r.Email != "" && r.Email == email {
			// The user record itself is a condition of the commit: an
			// SSO sign-in that changed the email in between is seen.
			if _, err := t.get(keys[i]); err != nil {
				return nil, err
			}
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
	err := s.view(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, s.key(nsUserEmails, email))
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return notFound("user %s", email)
		}
		id := resp.Kvs[0].Value
		ur, err := s.get(ctx, s.key(nsUsers, string(id)), withRev(resp.Header.Revision))
		if err != nil {
			return err
		}
		if len(ur.Kvs) == 0 {
			return corrupt("email index names missing user %s", record.Short(id))
		}
		var u record.User
		if err := s.decode(string(ur.Kvs[0].Key), ur.Kvs[0].Value, &u); err != nil {
			return err
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
	err := s.view(ctx, func(ctx context.Context) error {
		key := s.key(nsMemberships, record.MembershipKey(tenantInternalID, userID))
		resp, err := s.get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return notFound("membership of user %q in tenant %q", userID, tenantInternalID)
		}
		var mr record.Membership
		if err := s.decode(key, resp.Kvs[0].Value, &mr); err != nil {
			return err
		}
		roles = slices.Clone(mr.Roles)
		return nil
	})
	return roles, err
}

// Revoke records r, replacing a revocation with the same key; r.Key and
// r.Expires must be set. The record lives on a lease that etcd ends after
// r.Expires (lease.go); a revocation already expired only deletes the one
// it replaces.
func (s *Store) Revoke(ctx context.Context, r tenants.Revocation) error {
	if r.Key == "" {
		return errors.New("revoke: the revocation has no key")
	}
	if r.Expires.IsZero() {
		return fmt.Errorf("revoke %s: the revocation needs an expiry", r.Key)
	}
	return s.update(ctx, func(t *txn) error { return s.putRevocation(t, r) })
}

// putRevocation writes a revocation on the lease of its expiry, or deletes
// the key when it has expired already.
func (s *Store) putRevocation(t *txn, r tenants.Revocation) error {
	key := s.key(nsRevocations, r.Key)
	if r.Expires.Before(s.now()) {
		t.delete(key)
		return nil
	}
	id, err := s.leases.forUntil(t.ctx, r.Expires)
	if err != nil {
		return err
	}
	v, err := record.Encode(&record.Revocation{V: record.Version, Key: r.Key, NotBefore: r.NotBefore, Expires: r.Expires})
	if err != nil {
		return err
	}
	t.putLeased(key, v, id)
	return nil
}

// prefixOpts makes a Get read every key under its key.
func prefixOpts() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }

// withRev makes a Get read at revision rev.
func withRev(rev int64) clientv3.OpOption { return clientv3.WithRev(rev) }
