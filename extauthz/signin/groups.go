package signin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
)

// errGroupsShape is ParseGroups' answer to anything but a string or an
// array of strings. It names no byte of the provider's value.
var errGroupsShape = errors.New("groups: not a string or an array of strings")

// ParseGroups reads the groups an OIDC claim or OAuth 2.0 userinfo member
// lists, for tenants.Method.RolesForGroups: a JSON array of strings, or a
// single string. Each group loses one leading "/" (Keycloak's full group
// paths, "/admins"); empty groups and null array entries are dropped.
// Absent (empty raw) or JSON null is no groups and no error. Any other
// shape, or more than tenants.MaxSignInGroups entries, is an error and no
// groups; the error never quotes the provider's value. The array is read
// one entry at a time, so a huge list costs at most MaxSignInGroups+1
// entries before it is refused.
func ParseGroups(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, errGroupsShape
	}
	var list []string
	switch v := tok.(type) {
	case nil:
		return nil, nil
	case string:
		list = []string{v}
	case json.Delim:
		if v != '[' {
			return nil, errGroupsShape
		}
		for n := 0; dec.More(); n++ {
			if n == tenants.MaxSignInGroups {
				return nil, fmt.Errorf("groups: more than %d", tenants.MaxSignInGroups)
			}
			var g *string
			if dec.Decode(&g) != nil {
				return nil, errGroupsShape
			}
			if g != nil {
				list = append(list, *g)
			}
		}
		if end, err := dec.Token(); err != nil || end != json.Delim(']') {
			return nil, errGroupsShape
		}
	default:
		return nil, errGroupsShape
	}
	out := list[:0]
	for _, g := range list {
		if g = strings.TrimPrefix(g, "/"); g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}
