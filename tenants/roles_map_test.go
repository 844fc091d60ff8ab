package tenants

import (
	"fmt"
	"slices"
	"testing"
)

func TestRolesForGroups(t *testing.T) {
	m := RoleMapping{
		GroupRoles: map[string][]string{
			"admins":      {"admin", "member"},
			"engineering": {"dev", "member"},
			"Ops":         {"ops"},
		},
		DefaultRoles: []string{"member", "viewer", "member"},
	}
	many := make([]string, MaxSignInGroups+1)
	for i := range many {
		many[i] = fmt.Sprintf("g%d", i)
	}
	atLimit := slices.Clone(many[:MaxSignInGroups])
	atLimit[MaxSignInGroups-1] = "admins"
	tests := []struct {
		name   string
		method RoleMapping
		groups []string
		want   []string
	}{
		{name: "no groups: default roles, sorted, deduplicated", method: m, want: []string{"member", "viewer"}},
		{name: "unmapped groups grant nothing", method: m, groups: []string{"sales", "everyone"}, want: []string{"member", "viewer"}},
		{name: "mapped groups add their roles", method: m, groups: []string{"engineering", "admins"},
			want: []string{"admin", "dev", "member", "viewer"}},
		{name: "group order does not matter", method: m, groups: []string{"admins", "engineering"},
			want: []string{"admin", "dev", "member", "viewer"}},
		{name: "a group listed twice", method: m, groups: []string{"admins", "admins"}, want: []string{"admin", "member", "viewer"}},
		{name: "groups compare exactly: case", method: m, groups: []string{"ADMINS", "ops"}, want: []string{"member", "viewer"}},
		{name: "groups compare exactly: path and spaces", method: m, groups: []string{"/admins", " admins", "admins "},
			want: []string{"member", "viewer"}},
		{name: "groups compare exactly: matching case", method: m, groups: []string{"Ops"}, want: []string{"member", "ops", "viewer"}},
		{name: "no defaults, no groups", method: RoleMapping{GroupRoles: m.GroupRoles}},
		{name: "no defaults, a mapped group", method: RoleMapping{GroupRoles: m.GroupRoles}, groups: []string{"Ops"}, want: []string{"ops"}},
		{name: "empty role names dropped", method: RoleMapping{DefaultRoles: []string{"", "member"}, GroupRoles: map[string][]string{"x": {""}}},
			groups: []string{"x"}, want: []string{"member"}},
		{name: "nil method grants nothing", groups: []string{"admins"}},
		{name: "exactly the limit counts", method: m, groups: atLimit, want: []string{"admin", "member", "viewer"}},
		{name: "over the limit counts as no groups", method: m, groups: append(many, "admins"), want: []string{"member", "viewer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.method.RolesFor(tc.groups)
			if !slices.Equal(got, tc.want) {
				t.Errorf("RolesFor(%d groups) = %q, want %q", len(tc.groups), got, tc.want)
			}
		})
	}
}

func TestRolesForGroupsDoesNotAlias(t *testing.T) {
	m := RoleMapping{GroupRoles: map[string][]string{"a": {"x"}}, DefaultRoles: []string{"member"}}
	got := m.RolesFor([]string{"a"})
	got[0] = "admin"
	if !slices.Equal(m.DefaultRoles, []string{"member"}) || !slices.Equal(m.GroupRoles["a"], []string{"x"}) {
		t.Errorf("writing to the result changed the method: %+v", m)
	}
}

func TestRoleMappingClone(t *testing.T) {
	m := RoleMapping{
		GroupRoles:   map[string][]string{"admins": {"admin"}},
		DefaultRoles: []string{"member"},
	}
	rm := m.Clone()
	if !rm.Equal(m) {
		t.Errorf("Clone = %+v, want %+v", rm, m)
	}
	m.GroupRoles["admins"][0] = "owner"
	m.GroupRoles["everyone"] = []string{"admin"}
	m.DefaultRoles[0] = "admin"
	if got := rm.RolesFor([]string{"admins", "everyone"}); !slices.Equal(got, []string{"admin", "member"}) {
		t.Errorf("after the entry changed, roles = %q, want [admin member]", got)
	}
	if rm.Equal(m) {
		t.Error("Equal after the original changed")
	}
	if got := (RoleMapping{}).Clone(); got.GroupRoles != nil || got.DefaultRoles != nil {
		t.Errorf("empty mapping = %+v", got)
	}
	if !(RoleMapping{GroupRoles: map[string][]string{}}).Equal(RoleMapping{}) {
		t.Error("an empty mapping differs from none")
	}
}
