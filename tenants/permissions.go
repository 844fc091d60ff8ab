package tenants

import (
	"slices"
	"strings"
)

// Limits on a tenant's roles. They keep the work of building a tenant's
// permission index, and its size, small whatever the tenant file says;
// Validate refuses a file over them, naming the tenant and the field.
const (
	maxRoles             = 256  // roles per tenant
	maxRolePermissions   = 1024 // permissions listed by one role
	maxTenantPermissions = 4096 // distinct permissions over all of a tenant's roles
	maxRoleInherits      = 256  // entries of one role's inherits
	maxInheritDepth      = 16   // inherits steps in the longest chain from a role
)

// HasPermission reports whether any of the given roles grants perm in
// tenant t, one of this snapshot's tenants, following inheritance: a role
// grants its own permissions and those of every role it inherits,
// transitively. "*" grants every permission and "ns:*" every permission
// starting with "ns:" (ns may itself contain ":"). Unknown role names grant
// nothing.
//
// The inheritance was worked out when the snapshot was built, so a call
// costs a few map look-ups per role named, whatever the shape of the
// inheritance graph, and does not allocate. A tenant with more roles or
// distinct permissions than Validate allows (only data stored before those
// limits can have them) grants nothing until its file is applied again
// within them. For a tenant that is not this snapshot's it answers as
// t.HasPermission does.
func (s *Snapshot) HasPermission(t *Tenant, roles []string, perm string) bool {
	if ix, ok := s.tenants.permissions[t]; ok {
		return ix.allows(roles, perm)
	}
	return t.HasPermission(roles, perm)
}

// HasPermission is Snapshot.HasPermission for a tenant not in a snapshot:
// the same answer, but it works out t's roles on every call (linear in
// their size, and allocating). Check uses the snapshot's.
func (t *Tenant) HasPermission(roles []string, perm string) bool {
	return newPermissionIndex(t.Roles).allows(roles, perm)
}

// permissionIndex is a tenant's roles worked out for HasPermission: every
// distinct permission numbered, and every role's closure (its own
// permissions and those of every role it inherits, transitively) as a set
// of those numbers. It is immutable once built.
type permissionIndex struct {
	// number holds every distinct permission granted, as written ("*",
	// "ns:*" and exact ones alike).
	number map[string]int
	// namespaces maps ns to the number of "ns:*".
	namespaces map[string]int
	// all is the number of "*", or -1 when no role grants it.
	all int
	// closure is each role's set of granted permission numbers.
	closure map[string]bitSet
}

// newPermissionIndex works out the closure of every role. A cycle (which
// Validate refuses) never loops: a role met again while its own closure is
// being worked out adds nothing more, so a role on a cycle may grant less
// than its inherits say, never more. Roles are visited in name order, so
// the result does not depend on map order. Over the limits (maxRoles,
// maxTenantPermissions) the index grants nothing: failing closed beats
// building a huge index from data Validate would refuse.
func newPermissionIndex(roles map[string]Role) *permissionIndex {
	ix := &permissionIndex{number: map[string]int{}, namespaces: map[string]int{}, all: -1}
	if len(roles) > maxRoles {
		return ix
	}
	names := make([]string, 0, len(roles))
	for name := range roles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, p := range roles[name].Permissions {
			if _, ok := ix.number[p]; ok {
				continue
			}
			n := len(ix.number)
			ix.number[p] = n
			if p == "*" {
				ix.all = n
			} else if ns, ok := strings.CutSuffix(p, ":*"); ok {
				ix.namespaces[ns] = n
			}
		}
		if len(ix.number) > maxTenantPermissions {
			return &permissionIndex{all: -1}
		}
	}

	words := (len(ix.number) + 63) / 64
	ix.closure = make(map[string]bitSet, len(roles))
	working := map[string]bool{}
	var visit func(name string) bitSet
	visit = func(name string) bitSet {
		if set, done := ix.closure[name]; done {
			return set
		}
		r, ok := roles[name]
		if !ok || working[name] {
			return nil
		}
		working[name] = true
		set := make(bitSet, words)
		for _, p := range r.Permissions {
			set.add(ix.number[p])
		}
		for _, parent := range r.Inherits {
			set.union(visit(parent))
		}
		delete(working, name)
		ix.closure[name] = set
		return set
	}
	for _, name := range names {
		visit(name)
	}
	return ix
}

// allows reports whether any of roles grants perm: "*", perm itself, or
// "ns:*" for every ns that perm starts with followed by ":".
func (ix *permissionIndex) allows(roles []string, perm string) bool {
	granted := func(n int) bool {
		for _, r := range roles {
			if ix.closure[r].has(n) {
				return true
			}
		}
		return false
	}
	if ix.all >= 0 && granted(ix.all) {
		return true
	}
	if n, ok := ix.number[perm]; ok && granted(n) {
		return true
	}
	for i := 0; i < len(perm); i++ {
		if perm[i] != ':' {
			continue
		}
		if n, ok := ix.namespaces[perm[:i]]; ok && granted(n) {
			return true
		}
	}
	return false
}

// bitSet is a set of small non-negative integers.
type bitSet []uint64

func (s bitSet) add(n int) { s[n/64] |= 1 << (n % 64) }

// has reports whether n is in s; a nil set holds nothing.
func (s bitSet) has(n int) bool { return n/64 < len(s) && s[n/64]&(1<<(n%64)) != 0 }

// union adds every member of o to s, which is at least as long.
func (s bitSet) union(o bitSet) {
	for i, w := range o {
		s[i] |= w
	}
}
