package tenants

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is an immutable view of every tenant and every live revocation,
// indexed for the hot path. Nothing in it may be modified after NewSnapshot
// returns; a change to the store produces a new Snapshot.
type Snapshot struct {
	bySlug        map[string]*Tenant
	byInternalID  map[string]*Tenant
	byDomain      map[string]*Tenant
	byEmailDomain map[string]*Tenant
	revocations   map[string]Revocation
	// permissions is each tenant's roles worked out for HasPermission.
	permissions map[*Tenant]*permissionIndex
	// Version increases with every snapshot a Current publishes.
	Version uint64
}

// NewSnapshot indexes ts and revs, and works out each tenant's role
// inheritance for HasPermission. The tenants are copied; the caller may reuse
// the slices.
func NewSnapshot(ts []Tenant, revs []Revocation) *Snapshot {
	s := &Snapshot{
		bySlug:        make(map[string]*Tenant, len(ts)),
		byInternalID:  make(map[string]*Tenant, len(ts)),
		byDomain:      map[string]*Tenant{},
		byEmailDomain: map[string]*Tenant{},
		revocations:   make(map[string]Revocation, len(revs)),
		permissions:   make(map[*Tenant]*permissionIndex, len(ts)),
	}
	for i := range ts {
		t := ts[i]
		s.bySlug[t.ID] = &t
		s.permissions[&t] = newPermissionIndex(t.Roles)
		if t.InternalID != "" {
			s.byInternalID[t.InternalID] = &t
		}
		for _, d := range t.Domains {
			s.byDomain[d] = &t
		}
		for _, d := range t.EmailDomains {
			s.byEmailDomain[d] = &t
		}
	}
	for _, r := range revs {
		s.revocations[r.Key] = r
	}
	return s
}

// BySlug returns the tenant with that ID, or nil.
func (s *Snapshot) BySlug(id string) *Tenant { return s.bySlug[id] }

// ByInternalID returns the tenant with that internal id, or nil.
func (s *Snapshot) ByInternalID(id string) *Tenant { return s.byInternalID[id] }

// ByDomain returns the tenant that owns a canonical custom domain, or nil.
func (s *Snapshot) ByDomain(host string) *Tenant { return s.byDomain[host] }

// ByEmailDomain returns the tenant that owns a canonical email domain, or nil.
func (s *Snapshot) ByEmailDomain(domain string) *Tenant { return s.byEmailDomain[domain] }

// Len is the number of tenants.
func (s *Snapshot) Len() int { return len(s.bySlug) }

// Revoked reports whether a session is revoked: its sid was revoked, or its
// user's sessions in the tenant were revoked at or after it was issued.
func (s *Snapshot) Revoked(tenantInternalID, userID, sid string, issuedAt time.Time) bool {
	if len(s.revocations) == 0 {
		return false
	}
	if _, ok := s.revocations[SessionRevocationKey(sid)]; ok {
		return true
	}
	if r, ok := s.revocations[UserRevocationKey(tenantInternalID, userID)]; ok && !issuedAt.After(r.NotBefore) {
		return true
	}
	return false
}

// Current holds the snapshot the hot path reads, swapped atomically whenever
// the store changes. The zero value holds no snapshot; Load returns nil until
// the first Refresh succeeds.
type Current struct {
	p       atomic.Pointer[Snapshot]
	version atomic.Uint64
	// refreshing serialises Refresh, so the snapshot published last is the
	// one read last: a refresh the watch started just before a write cannot
	// finish after the writer's own refresh and put the old state back.
	refreshing sync.Mutex
}

// Load returns the current snapshot, or nil before the first successful
// Refresh. It never blocks.
func (c *Current) Load() *Snapshot { return c.p.Load() }

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
		return err
	}
	s.Version = c.version.Add(1)
	c.p.Store(s)
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
