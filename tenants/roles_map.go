package tenants

import (
	"maps"
	"slices"
)

// DefaultGroupsClaim names the ID token / userinfo claim, SAML attribute or
// userinfo member listing a person's groups when a method sets no
// groupsClaim. Every method type uses this one default.
const DefaultGroupsClaim = "groups"

// MaxSignInGroups bounds how many groups one sign-in may carry. An identity
// provider that lists more is treated as listing none: RolesFor then grants
// the default roles only, and the login methods' group parsers report an
// error. Cutting the list short instead would make the roles depend on the
// order the provider chose.
const MaxSignInGroups = 1024

// RoleMapping is how a sign-in method turns what its provider says into
// tenant roles, the same for every method type: GroupRoles maps a provider
// group to tenant roles, and DefaultRoles are given to everyone the method
// signs in. Validate checks that every role named is one of the tenant's.
type RoleMapping struct {
	GroupRoles   map[string][]string `json:"groupRoles,omitempty" yaml:"groupRoles,omitempty"`
	DefaultRoles []string            `json:"defaultRoles,omitempty" yaml:"defaultRoles,omitempty"`
}

// Clone returns a deep copy of r, safe for a login method to keep while the
// entry it was opened from is replaced. nil stays nil.
func (r RoleMapping) Clone() RoleMapping {
	out := RoleMapping{DefaultRoles: slices.Clone(r.DefaultRoles)}
	if r.GroupRoles != nil {
		out.GroupRoles = make(map[string][]string, len(r.GroupRoles))
		for g, rs := range r.GroupRoles {
			out.GroupRoles[g] = slices.Clone(rs)
		}
	}
	return out
}

// Equal reports whether r and o map the same groups to the same roles and
// give the same default roles, in the same order. nil and empty are equal.
func (r RoleMapping) Equal(o RoleMapping) bool {
	return slices.Equal(r.DefaultRoles, o.DefaultRoles) && maps.EqualFunc(r.GroupRoles, o.GroupRoles, slices.Equal)
}

// RolesFor returns the tenant roles r grants a person whom the identity
// provider places in groups: every one of r.DefaultRoles, always, plus
// GroupRoles[g] for each group g. Groups are compared with the GroupRoles
// keys exactly (byte for byte, case included); a group without an entry
// grants nothing. More than MaxSignInGroups groups count as none, so the
// result is then the default roles alone. The result is a new slice,
// sorted, without duplicates or empty names; it is empty (possibly nil)
// when nothing is granted. Whether each role exists in the tenant is
// Validate's business and the sign-in handler's, not this method's.
func (r RoleMapping) RolesFor(groups []string) []string {
	out := slices.Clone(r.DefaultRoles)
	if len(groups) <= MaxSignInGroups {
		for _, g := range groups {
			out = append(out, r.GroupRoles[g]...)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(r string) bool { return r == "" })
}
