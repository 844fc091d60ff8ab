package social

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

// FuzzUserinfo feeds arbitrary userinfo bodies (the provider chooses every
// byte) to the parser: it must not panic, must return an id only when the
// id member is a non-empty string or an integer, must call an email
// verified only on a JSON true, and must return groups only when the groups
// member parsed, never more than tenants.MaxSignInGroups.
func FuzzUserinfo(f *testing.F) {
	for _, s := range []string{
		`{"id": 583231, "email": "a@b", "verified": true}`,
		`{"id": "abc", "verified": "true"}`,
		`{"id": 1e3}`,
		`{"id": -0}`,
		`{"id": null, "email": 5}`,
		`{"id": "\u0000"}`,
		`[1,2]`,
		`{"id": 12345678901234567890123456789012345678901234567890}`,
		`{"id": 1, "groups": ["/admins", "eng"]}`,
		`{"id": 1, "groups": "admins"}`,
		`{"id": 1, "groups": {"admins": true}}`,
		`{"id": 1, "groups": [1, null, "a"]}`,
	} {
		f.Add([]byte(s))
	}
	p := Provider{IDField: "id", EmailField: "email", EmailVerifiedField: "verified", NameFields: []string{"name"}, GroupsField: "groups"}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := parseUserinfo(body, p)
		if err != nil {
			if !reflect.DeepEqual(u, userinfo{}) {
				t.Fatalf("error with a partial identity %+v", u)
			}
			return
		}
		if u.id == "" || len(u.id) > maxIDLength || strings.ContainsAny(u.id, "\x00\n\r") {
			t.Fatalf("bad id %q from %s", u.id, body)
		}
		var raw struct {
			V *bool `json:"verified"`
		}
		if json.Unmarshal(body, &raw) == nil && u.verified && (raw.V == nil || !*raw.V) {
			t.Fatalf("verified from %s", body)
		}
		if u.groupsErr != nil && u.groups != nil || len(u.groups) > tenants.MaxSignInGroups || slices.Contains(u.groups, "") {
			t.Fatalf("groups %q, %v from %s", u.groups, u.groupsErr, body)
		}
	})
}
