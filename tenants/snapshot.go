package tenants

import (
	"context"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is an immutable view of every tenant, every membership and every
// live revocation, indexed for the hot path. Nothing in it may be modified
// after it is made; a change to the store produces a new Snapshot, with
// With, that shares with the old one whatever the change left alone. The
// zero Snapshot is empty.
type Snapshot struct {
	tenants tenantIndex
	// memberships are the roles of every (tenant, user) membership: the
	// truth a session's roles are checked against on every request.
	memberships pmap[memberKey, []string]
	revocations pmap[revocationKey, Revocation]
	// Version increases with every snapshot a Current publishes; it is zero
	// on a snapshot no Current has published.
	Version uint64
}

// tenantIndex finds tenants by each of their names. It is rebuilt whenever
// any tenant's configuration changes; tenants are few next to members and
// revocations, and change rarely.
type tenantIndex struct {
	bySlug        map[string]*Tenant
	byInternalID  map[string]*Tenant
	byDomain      map[string]*Tenant
	byEmailDomain map[string]*Tenant
	// permissions is each tenant's roles worked out for HasPermission.
	permissions map[*Tenant]*permissionIndex
}

// indexTenants indexes a copy of every tenant in ts, and works out each
// tenant's role inheritance for HasPermission.
func indexTenants(ts []Tenant) tenantIndex {
	x := tenantIndex{
		bySlug:        make(map[string]*Tenant, len(ts)),
		byInternalID:  make(map[string]*Tenant, len(ts)),
		byDomain:      map[string]*Tenant{},
		byEmailDomain: map[string]*Tenant{},
		permissions:   make(map[*Tenant]*permissionIndex, len(ts)),
	}
	for i := range ts {
		t := ts[i]
		x.bySlug[t.ID] = &t
		x.permissions[&t] = newPermissionIndex(t.Roles)
		if t.InternalID != "" {
			x.byInternalID[t.InternalID] = &t
		}
		for _, d := range t.Domains {
			x.byDomain[d] = &t
		}
		for _, d := range t.EmailDomains {
			x.byEmailDomain[d] = &t
		}
	}
	return x
}

// memberKey names a membership by the tenant's and the user's internal ids.
type memberKey struct{ tenant, user string }

func (k memberKey) hash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(k.tenant)
	h.WriteByte(0) // internal ids hold no NUL: ("a", "bc") and ("ab", "c") differ
	h.WriteString(k.user)
	return h.Sum64()
}

// revocationKey is a Revocation's Key.
type revocationKey string

func (k revocationKey) hash(seed maphash.Seed) uint64 { return maphash.String(seed, string(k)) }

// NewSnapshot indexes ts and revs, with no memberships (add them with With).
// The tenants are copied; the caller may reuse the slices.
func NewSnapshot(ts []Tenant, revs []Revocation) *Snapshot {
	var c SnapshotChange
	c.ReplaceTenants(ts)
	for _, r := range revs {
		c.PutRevocation(r)
	}
	return new(Snapshot).With(&c)
}

// SnapshotChange is what one write did to the state a Snapshot holds. A
// Store records it while it writes and, once the write has committed,
// applies it with Snapshot.With: so a sign-out adds one revocation to the
// snapshot instead of reading every revocation again. Changes apply in the
// order they were recorded. The zero value changes nothing.
type SnapshotChange struct {
	tenants        []Tenant
	replaceTenants bool
	members        []memberChange
	revocations    []revocationChange
}

type memberChange struct {
	key    memberKey
	roles  []string
	remove bool
}

type revocationChange struct {
	rev    Revocation
	remove bool
}

// ReplaceTenants records that the tenants are now exactly ts (the change
// keeps ts; the caller must not modify it afterwards).
func (c *SnapshotChange) ReplaceTenants(ts []Tenant) {
	c.tenants, c.replaceTenants = ts, true
}

// PutMembership records that a user is a member of a tenant (both named by
// internal ids) with exactly these roles, replacing any roles held before.
// The roles are copied, sorted and de-duplicated.
func (c *SnapshotChange) PutMembership(tenantInternalID, userID string, roles []string) {
	sorted := slices.Compact(slices.Sorted(slices.Values(roles)))
	if sorted == nil {
		sorted = []string{}
	}
	c.members = append(c.members, memberChange{key: memberKey{tenantInternalID, userID}, roles: sorted})
}

// DeleteMembership records that a user is no longer a member of a tenant.
func (c *SnapshotChange) DeleteMembership(tenantInternalID, userID string) {
	c.members = append(c.members, memberChange{key: memberKey{tenantInternalID, userID}, remove: true})
}

// PutRevocation records a revocation, replacing one with the same key.
func (c *SnapshotChange) PutRevocation(r Revocation) {
	c.revocations = append(c.revocations, revocationChange{rev: r})
}

// DeleteRevocation records that the revocation with this key is gone.
func (c *SnapshotChange) DeleteRevocation(key string) {
	c.revocations = append(c.revocations, revocationChange{rev: Revocation{Key: key}, remove: true})
}

// With returns a new Snapshot: s with c applied. s does not change. The new
// Snapshot shares with s everything c leaves alone, so making it costs time
// in proportion to c (plus the number of tenants, when c replaces them),
// never to the number of memberships or revocations already held. Its
// Version is zero.
func (s *Snapshot) With(c *SnapshotChange) *Snapshot {
	n := &Snapshot{tenants: s.tenants, memberships: s.memberships, revocations: s.revocations}
	if c.replaceTenants {
		n.tenants = indexTenants(c.tenants)
	}
	if len(c.members) > 0 {
		e := s.memberships.edit()
		for _, m := range c.members {
			if m.remove {
				e.delete(m.key)
			} else {
				e.set(m.key, m.roles)
			}
		}
		n.memberships = e.finish()
	}
	if len(c.revocations) > 0 {
		e := s.revocations.edit()
		for _, r := range c.revocations {
			if r.remove {
				e.delete(revocationKey(r.rev.Key))
			} else {
				e.set(revocationKey(r.rev.Key), r.rev)
			}
		}
		n.revocations = e.finish()
	}
	return n
}

// BySlug returns the tenant with that ID, or nil.
func (s *Snapshot) BySlug(id string) *Tenant { return s.tenants.bySlug[id] }

// ByInternalID returns the tenant with that internal id, or nil.
func (s *Snapshot) ByInternalID(id string) *Tenant { return s.tenants.byInternalID[id] }

// ByDomain returns the tenant that owns a canonical custom domain, or nil.
func (s *Snapshot) ByDomain(host string) *Tenant { return s.tenants.byDomain[host] }

// ByEmailDomain returns the tenant that owns a canonical email domain, or nil.
func (s *Snapshot) ByEmailDomain(domain string) *Tenant { return s.tenants.byEmailDomain[domain] }

// Len is the number of tenants.
func (s *Snapshot) Len() int { return len(s.tenants.bySlug) }

// Membership returns the roles a user holds in a tenant now (both named by
// internal ids), sorted and without duplicates, and whether the user is a
// member at all. The slice is shared: callers must not modify it. A session's
// own roles are only what the person held at sign-in; these are the truth.
func (s *Snapshot) Membership(tenantInternalID, userID string) ([]string, bool) {
	return s.memberships.get(memberKey{tenantInternalID, userID})
}

// Revoked reports whether a session is revoked: its sid was revoked, or its
// user's sessions in the tenant were revoked at or after it was issued.
func (s *Snapshot) Revoked(tenantInternalID, userID, sid string, issuedAt time.Time) bool {
	if s.revocations.len() == 0 {
		return false
	}
	if _, ok := s.revocations.get(revocationKey(SessionRevocationKey(sid))); ok {
		return true
	}
	if r, ok := s.revocations.get(revocationKey(UserRevocationKey(tenantInternalID, userID))); ok && !issuedAt.After(r.NotBefore) {
		return true
	}
	return false
}

// RevokedAt returns the NotBefore of the revocation with this key, and
// whether one is held: for revocations of things other than sessions,
// such as the invitations to one address.
func (s *Snapshot) RevokedAt(key string) (time.Time, bool) {
	r, ok := s.revocations.get(revocationKey(key))
	return r.NotBefore, ok
}

// Current holds the snapshot the hot path reads, swapped atomically whenever
// the store changes. The zero value holds no snapshot; Load returns nil until
// the first Refresh succeeds, and while the snapshot is marked stale
// (SetStale).
type Current struct {
	p       atomic.Pointer[Snapshot]
	version atomic.Uint64
	// stale withholds the snapshot from Load: a distributed store has not
	// confirmed it for longer than the operator allows.
	stale atomic.Bool
	// refreshing serialises Refresh, so the snapshot published last is the
	// one read last: a refresh the watch started just before a write cannot
	// finish after the writer's own refresh and put the old state back.
	refreshing sync.Mutex
	// failures counts failed Refreshes; behindSince is when the first
	// Refresh failed since the last one that succeeded (Unix nanoseconds,
	// 0 while the last one succeeded).
	failures    atomic.Uint64
	behindSince atomic.Int64
}

// RefreshFailures returns how many Refreshes have failed (the store did not
// answer with a snapshot), for metrics.
func (c *Current) RefreshFailures() uint64 { return c.failures.Load() }

// BehindSince returns when the store first failed to give a snapshot after
// the last Refresh that succeeded: the snapshot served may miss changes
// made since. It is the zero time while the last Refresh succeeded.
func (c *Current) BehindSince() time.Time {
	if ns := c.behindSince.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Load returns the current snapshot, or nil before the first successful
// Refresh and while the snapshot is stale: callers then answer 503, never
// from a snapshot that may be missing revocations. It never blocks.
func (c *Current) Load() *Snapshot {
	if c.stale.Load() {
		return nil
	}
	return c.p.Load()
}

// SetStale withholds the snapshot from Load (true), or serves it again
// (false). A server following a distributed store marks it stale once the
// store has not confirmed it current for longer than it may answer from
// it (--store-max-staleness); Refresh goes on publishing meanwhile, so
// that the latest is served once it is fresh again. It reports whether
// the mark changed.
func (c *Current) SetStale(stale bool) bool { return c.stale.Swap(stale) != stale }

// Snapshotter is the part of a Store that Refresh needs.
type Snapshotter interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// Refresh reads a new snapshot and publishes it. On error the previous
// snapshot stays in place. Concurrent calls run one at a time, so after
// Refresh returns, Load reflects every write that finished before it was
// called.
func (c *Current) Refresh(ctx context.Context, st Snapshotter) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	s, err := st.Snapshot(ctx)
	if err != nil {
		c.failures.Add(1)
		c.behindSince.CompareAndSwap(0, time.Now().UnixNano())
		return err
	}
	c.behindSince.Store(0)
	// A store may hand the same Snapshot to every caller until it changes:
	// publish a copy that carries this Current's version.
	pub := *s
	pub.Version = c.version.Add(1)
	c.p.Store(&pub)
	return nil
}

// Follow refreshes the snapshot after every change the store reports, until ctx
// ends. Failures are logged and retried on the next change; the last good
// snapshot keeps serving meanwhile. Call Refresh once before Follow so that
// Load is never nil while serving.
func (c *Current) Follow(ctx context.Context, st Store, log *slog.Logger) {
	changes := st.Watch(ctx)
	for range changes {
		if err := c.Refresh(ctx, st); err != nil && ctx.Err() == nil {
			log.Error("refresh tenant snapshot", "err", err)
		}
	}
}
