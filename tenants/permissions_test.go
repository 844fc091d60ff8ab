package tenants

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// permissionRoles exercises every kind of grant: exact, "*", "ns:*",
// nested namespaces and inheritance.
var permissionRoles = map[string]Role{
	"owner":   {Permissions: []string{"*"}},
	"admin":   {Permissions: []string{"admin:access"}, Inherits: []string{"editor"}},
	"editor":  {Permissions: []string{"docs:*"}, Inherits: []string{"member"}},
	"member":  {Permissions: []string{"docs:read", "billing:invoices:*"}},
	"auditor": {Permissions: []string{"a:b:*", ":*", "x*:*", "logs"}},
	"nothing": {},
}

func TestHasPermission(t *testing.T) {
	cases := []struct {
		roles []string
		perm  string
		want  bool
	}{
		{[]string{"owner"}, "anything:at:all", true},
		{[]string{"owner"}, "*", true},
		{[]string{"member"}, "docs:read", true},
		{[]string{"member"}, "docs:write", false},
		{[]string{"member"}, "docs", false},
		{[]string{"member"}, "billing:invoices:read", true},
		{[]string{"member"}, "billing:invoices", false},
		{[]string{"member"}, "billing:read", false},
		{[]string{"member"}, "billing:invoices:*", true},
		{[]string{"editor"}, "docs:write", true},
		{[]string{"editor"}, "docs:a:b", true},
		{[]string{"editor"}, "docs:*", true},
		{[]string{"editor"}, "docsx:write", false},
		{[]string{"editor"}, "billing:invoices:pay", true},
		{[]string{"editor"}, "admin:access", false},
		{[]string{"admin"}, "admin:access", true},
		{[]string{"admin"}, "docs:delete", true},
		{[]string{"admin"}, "admin:other", false},
		{[]string{"admin"}, "*", false},
		{[]string{"auditor"}, "a:b:c", true},
		{[]string{"auditor"}, "a:b", false},
		{[]string{"auditor"}, "a:c", false},
		{[]string{"auditor"}, ":anything", true},
		{[]string{"auditor"}, "x*:y", true},
		{[]string{"auditor"}, "xy:z", false},
		{[]string{"auditor"}, "logs", true},
		{[]string{"auditor"}, "logs:read", false},
		{[]string{"nothing"}, "docs:read", false},
		{[]string{"ghost"}, "docs:read", false},
		{[]string{"ghost", "member"}, "docs:read", true},
		{nil, "docs:read", false},
		{[]string{"nothing", "ghost", "admin"}, "admin:access", true},
	}
	snap := NewSnapshot([]Tenant{{ID: "acme", Roles: permissionRoles}}, nil)
	bare := &Tenant{ID: "acme", Roles: permissionRoles}
	for _, hp := range []struct {
		name string
		has  func(roles []string, perm string) bool
	}{
		{"snapshot", func(roles []string, perm string) bool { return snap.HasPermission(snap.BySlug("acme"), roles, perm) }},
		{"tenant", bare.HasPermission},
		{"tenant not in the snapshot", func(roles []string, perm string) bool { return snap.HasPermission(bare, roles, perm) }},
	} {
		for _, tc := range cases {
			if got := hp.has(tc.roles, tc.perm); got != tc.want {
				t.Errorf("%s: HasPermission(%q, %q) = %v, want %v", hp.name, tc.roles, tc.perm, got, tc.want)
			}
		}
	}
	if snap.tenants.permissions[snap.BySlug("acme")] == nil {
		t.Error("NewSnapshot did not index the roles")
	}
}

// TestHasPermissionMatchesTheWalk compares the index with a plain walk of
// the inheritance graph (the definition) on random acyclic role sets.
func TestHasPermissionMatchesTheWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	perms := []string{"*", "a", "a:*", "a:b", "a:b:*", "a:b:c", "b:*", "b:x", ":*", "c"}
	for round := 0; round < 300; round++ {
		n := 1 + rng.IntN(12)
		roles := map[string]Role{}
		for i := 0; i < n; i++ {
			var r Role
			for range rng.IntN(3) {
				r.Permissions = append(r.Permissions, perms[1+rng.IntN(len(perms)-1)])
			}
			if rng.IntN(20) == 0 {
				r.Permissions = append(r.Permissions, "*")
			}
			for j := i + 1; j < n; j++ { // only later roles: no cycle
				if rng.IntN(3) == 0 {
					r.Inherits = append(r.Inherits, fmt.Sprintf("r%d", j))
				}
			}
			roles[fmt.Sprintf("r%d", i)] = r
		}
		snap := NewSnapshot([]Tenant{{ID: "t", Roles: roles}}, nil)
		tn := snap.BySlug("t")
		for i := 0; i < n; i++ {
			held := []string{fmt.Sprintf("r%d", i)}
			if rng.IntN(2) == 0 {
				held = append(held, fmt.Sprintf("r%d", rng.IntN(n)), "ghost")
			}
			for _, want := range append(perms, "a:b:c:d", "b", "z:z") {
				if got, def := snap.HasPermission(tn, held, want), walkPermission(roles, held, want); got != def {
					t.Fatalf("roles %v: HasPermission(%q, %q) = %v, the walk says %v", roles, held, want, got, def)
				}
			}
		}
	}
}

// walkPermission is HasPermission by definition: visit every role reachable
// from held, once each, and test each granted permission.
func walkPermission(roles map[string]Role, held []string, want string) bool {
	seen := map[string]bool{}
	queue := slices.Clone(held)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		for _, p := range roles[name].Permissions {
			if p == "*" || p == want {
				return true
			}
			if ns, ok := strings.CutSuffix(p, ":*"); ok && strings.HasPrefix(want, ns+":") {
				return true
			}
		}
		queue = append(queue, roles[name].Inherits...)
	}
	return false
}

// ladderRoles is issue 7's tenant: n roles, each inheriting the next two,
// each with one permission of its own. A walk that forgets where it has
// been visits them Fibonacci(n) times (0.74 s per denied Check at 46).
func ladderRoles(n int) map[string]Role {
	roles := map[string]Role{}
	for i := 0; i < n; i++ {
		var inh []string
		for _, j := range []int{i + 1, i + 2} {
			if j < n {
				inh = append(inh, fmt.Sprintf("r%02d", j))
			}
		}
		name := fmt.Sprintf("r%02d", i)
		roles[name] = Role{Permissions: []string{"p:" + name}, Inherits: inh}
	}
	return roles
}

// diamondRoles is a role "top" over layers of width roles each, every role
// inheriting every role of the next layer: within Validate's limits (for
// layers ≤ 16 and width*layers < 256), and width^layers paths from top.
func diamondRoles(width, layers int) map[string]Role {
	roles := map[string]Role{}
	layer := func(l int) []string {
		var out []string
		for i := 0; i < width && l < layers; i++ {
			out = append(out, fmt.Sprintf("l%02d-%02d", l, i))
		}
		return out
	}
	roles["top"] = Role{Permissions: []string{"p:top"}, Inherits: layer(0)}
	for l := 0; l < layers; l++ {
		for _, name := range layer(l) {
			roles[name] = Role{Permissions: []string{"p:" + name}, Inherits: layer(l + 1)}
		}
	}
	return roles
}

// TestHasPermissionDiamonds is the regression test of issue 7, item 6: a
// tenant whose roles share ancestors costs a few look-ups per denied
// Check, not a walk of every path through the graph. The old walk took
// 0.74 s per call on the 46-role ladder and never finished on the diamond;
// 1000 calls here take microseconds, and the generous deadline only turns
// such a hang into a failure.
func TestHasPermissionDiamonds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roles map[string]Role
		top   string
		valid bool // within Validate's limits
	}{
		{"issue 7's 46-role ladder, stored before the depth limit", ladderRoles(46), "r00", false},
		{"151-role diamond within the limits", diamondRoles(10, 15), "top", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ten := Tenant{ID: "acme", Methods: []Method{{Type: MethodPassword}}, Roles: tc.roles}
			err := Validate([]Tenant{ten}, testOpts(ValidateOptions{}))
			if tc.valid && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.valid && (err == nil || !strings.Contains(err.Error(), "an inheritance chain of 45 steps, more than 16")) {
				t.Fatalf("Validate: %v, want the depth limit", err)
			}

			snap := NewSnapshot([]Tenant{ten}, nil)
			tn := snap.BySlug("acme")
			ix := snap.tenants.permissions[tn]
			if ix == nil {
				t.Fatal("NewSnapshot did not index the roles")
			}
			// The top role's closure is every permission of the tenant,
			// each once; a leaf's is its own.
			if got, want := ix.closure[tc.top].count(), len(tc.roles); got != want {
				t.Errorf("closure of %s holds %d permissions, want %d", tc.top, got, want)
			}
			for name, r := range tc.roles {
				if len(r.Inherits) == 0 && ix.closure[name].count() != 1 {
					t.Errorf("closure of leaf %s holds %d permissions, want 1", name, ix.closure[name].count())
				}
			}

			done := make(chan bool, 1)
			go func() {
				denied := false
				for range 1000 {
					denied = !snap.HasPermission(tn, []string{tc.top}, "admin:access")
				}
				done <- denied && snap.HasPermission(tn, []string{tc.top}, "p:"+lastRole(tc.roles))
			}()
			select {
			case ok := <-done:
				if !ok {
					t.Error("wrong answer: want admin:access denied and the deepest role's permission granted")
				}
			case <-time.After(time.Minute):
				t.Fatal("1000 denied HasPermission calls did not finish within a minute")
			}
			if a := testing.AllocsPerRun(100, func() { snap.HasPermission(tn, []string{"ghost", tc.top}, "admin:access") }); a != 0 {
				t.Errorf("HasPermission allocates %v times per call", a)
			}
		})
	}
}

// lastRole is the greatest role name: a role no other inherits from, at
// the bottom of ladderRoles and diamondRoles.
func lastRole(roles map[string]Role) string {
	var last string
	for name := range roles {
		last = max(last, name)
	}
	return last
}

func (s bitSet) count() int {
	n := 0
	for _, w := range s {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// TestHasPermissionOverLimitsFailsClosed: data over Validate's limits (only
// stored before them) grants nothing rather than building a huge index.
func TestHasPermissionOverLimitsFailsClosed(t *testing.T) {
	many := map[string]Role{"admin": {Permissions: []string{"*"}}}
	for i := 0; len(many) <= maxRoles; i++ {
		many[fmt.Sprintf("r%d", i)] = Role{}
	}
	wide := map[string]Role{"admin": {Permissions: []string{"*"}}}
	var ps []string
	for i := 0; i < maxTenantPermissions; i++ {
		ps = append(ps, fmt.Sprintf("p:%d", i))
	}
	wide["big"] = Role{Permissions: ps}
	for name, roles := range map[string]map[string]Role{"too many roles": many, "too many permissions": wide} {
		snap := NewSnapshot([]Tenant{{ID: "acme", Roles: roles}}, nil)
		if snap.HasPermission(snap.BySlug("acme"), []string{"admin"}, "docs:read") {
			t.Errorf("%s: admin granted docs:read", name)
		}
	}
}

func BenchmarkHasPermissionDiamond(b *testing.B) {
	for _, bc := range []struct {
		name  string
		roles map[string]Role
		top   string
	}{
		{"ladder46", ladderRoles(46), "r00"},
		{"diamond151", diamondRoles(10, 15), "top"},
	} {
		snap := NewSnapshot([]Tenant{{ID: "acme", Roles: bc.roles}}, nil)
		tn := snap.BySlug("acme")
		b.Run(bc.name+"/denied", func(b *testing.B) {
			for b.Loop() {
				snap.HasPermission(tn, []string{bc.top, "ghost"}, "admin:access")
			}
		})
		b.Run(bc.name+"/build", func(b *testing.B) {
			for b.Loop() {
				newPermissionIndex(bc.roles)
			}
		})
	}
}
