package oidc

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

// FuzzClaims feeds arbitrary ID token payloads (after signature checks, the
// IdP still chooses every byte) to the claims mapping: it must not panic,
// must grant only configured roles, and must call an email verified only on
// a JSON true.
func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"u","email":"a@b","email_verified":true,"groups":["/admins","eng"]}`,
		`{"sub":"u","email_verified":"true","groups":"admins"}`,
		`{"sub":"u","email_verified":1,"groups":[1,2]}`,
		`{"sub":"u","groups":null,"email":5}`,
		`{"sub":"u","groups":[""],"email_verified":  true }`,
		`{"groups":["//admins","/"]}`,
		`{"sub":{"a":1},"groups":{"admins":true}}`,
	} {
		f.Add([]byte(s))
	}
	rm := tenants.RoleMapping{
		GroupRoles:   map[string][]string{"admins": {"admin"}, "eng": {"dev"}},
		DefaultRoles: []string{"member"},
	}
	allowed := []string{"admin", "dev", "member"}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var c claims
		if json.Unmarshal(payload, &c.m) != nil {
			return
		}
		groups, _ := c.groups(tenants.DefaultGroupsClaim)
		for _, r := range rm.RolesFor(groups) {
			if !slices.Contains(allowed, r) {
				t.Fatalf("role %q granted from %s", r, payload)
			}
		}
		var raw struct {
			V *bool `json:"email_verified"`
		}
		verified := c.isTrue("email_verified")
		if json.Unmarshal(payload, &raw) == nil && verified && (raw.V == nil || !*raw.V) {
			t.Fatalf("email_verified taken as true from %s", payload)
		}
		_ = c.str("email")
	})
}
