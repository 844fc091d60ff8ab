package tenants

import "slices"

// DefaultGroupsClaim names the ID token / userinfo claim, SAML attribute or
// userinfo member listing a person's groups when a method sets no
// GroupsClaim.
const DefaultGroupsClaim = "groups"

// MaxSignInGroups bounds how many groups one sign-in may carry. An identity
// provider that lists more is treated as listing none: RolesForGroups then
// grants the default roles only, and the login methods' group parsers
// report an error. Cutting the list short instead would make the roles
// depend on the order the provider chose.
const MaxSignInGroups = 1024

// GroupsClaimName returns m.GroupsClaim, or DefaultGroupsClaim when it is
// empty.
func (m Method) GroupsClaimName() string {
	if m.GroupsClaim == "" {
		return DefaultGroupsClaim
	}
	return m.GroupsClaim
}

// RoleMapping returns a Method holding only m's GroupRoles and
// DefaultRoles, deep-copied: all RolesForGroups needs, safe for a login
// method to keep while the entry it was opened from is replaced.
func (m Method) RoleMapping() Method {
	out := Method{DefaultRoles: slices.Clone(m.DefaultRoles)}
	if m.GroupRoles != nil {
		out.GroupRoles = make(map[string][]string, len(m.GroupRoles))
		for g, rs := range m.GroupRoles {
			out.GroupRoles[g] = slices.Clone(rs)
		}
	}
	return out
}

// RolesForGroups returns the tenant roles m grants a person whom the
// identity provider places in groups: every one of m.DefaultRoles, always,
// plus GroupRoles[g] for each group g. Groups are compared with the
// GroupRoles keys exactly (byte for byte, case included); a group without
// an entry grants nothing. More than MaxSignInGroups groups count as none,
// so the result is then the default roles alone. The result is a new
// slice, sorted, without duplicates or empty names; it is empty (possibly
// nil) when nothing is granted. Whether each role exists in the tenant is
// Validate's business and the sign-in handler's, not this method's.
func (m Method) RolesForGroups(groups []string) []string {
	out := slices.Clone(m.DefaultRoles)
	if len(groups) <= MaxSignInGroups {
		for _, g := range groups {
			out = append(out, m.GroupRoles[g]...)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(r string) bool { return r == "" })
}
