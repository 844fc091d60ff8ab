package signin

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

func TestParseGroups(t *testing.T) {
	list := func(n int, g string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`"`+g+`",`, n), ",") + "]"
	}
	tests := []struct {
		name    string
		raw     string
		want    []string
		wantErr bool
	}{
		{name: "absent", raw: ""},
		{name: "null", raw: " null "},
		{name: "array", raw: `["admins", "eng"]`, want: []string{"admins", "eng"}},
		{name: "single string", raw: `"admins"`, want: []string{"admins"}},
		{name: "keycloak paths lose one leading slash", raw: `["/admins", "//x", "/eng/sub"]`, want: []string{"admins", "/x", "eng/sub"}},
		{name: "empty and null entries dropped", raw: `["", "/", null, "a"]`, want: []string{"a"}},
		{name: "empty array", raw: `[]`, want: []string{}},
		{name: "case and spaces kept", raw: `["Admins", " eng "]`, want: []string{"Admins", " eng "}},
		{name: "number", raw: `5`, wantErr: true},
		{name: "boolean", raw: `true`, wantErr: true},
		{name: "object", raw: `{"admins": true}`, wantErr: true},
		{name: "array of numbers", raw: `[1, 2]`, wantErr: true},
		{name: "array with an object", raw: `["a", {"b": 1}]`, wantErr: true},
		{name: "nested array", raw: `[["admins"]]`, wantErr: true},
		{name: "truncated array", raw: `["admins"`, wantErr: true},
		{name: "exactly the limit", raw: list(tenants.MaxSignInGroups, "g"), want: slices.Repeat([]string{"g"}, tenants.MaxSignInGroups)},
		{name: "over the limit", raw: list(tenants.MaxSignInGroups+1, "g"), wantErr: true},
		{name: "nulls count toward the limit", raw: "[" + strings.Repeat("null,", tenants.MaxSignInGroups) + `"admins"]`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseGroups(json.RawMessage(tc.raw))
			if tc.wantErr {
				if err == nil || got != nil {
					t.Fatalf("ParseGroups = %q, %v; want no groups and an error", got, err)
				}
				if strings.Contains(err.Error(), "admins") {
					t.Errorf("error quotes the provider's value: %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseGroups = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// FuzzParseGroups feeds arbitrary JSON (the provider chooses every byte) to
// the groups parser: it must not panic, must return groups only without an
// error, never more than the limit, and never an empty one.
func FuzzParseGroups(f *testing.F) {
	for _, s := range []string{`["/admins","eng"]`, `"admins"`, `null`, `[1]`, `{"a":1}`, `["",null,"/"]`, `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseGroups(raw)
		if err != nil && got != nil {
			t.Fatalf("error %v with groups %q", err, got)
		}
		if len(got) > tenants.MaxSignInGroups || slices.Contains(got, "") {
			t.Fatalf("groups %q from %q", got, raw)
		}
	})
}
