package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/tenantgate/tenantgate/tenants"
)

// claims are an ID token's or userinfo response's members, kept raw so a
// member of an unexpected type reads as absent instead of failing the
// whole sign-in (an IdP that sends "email": 5 gets no email, not an error).
type claims struct {
	m map[string]json.RawMessage
}

func parseClaims(idt *gooidc.IDToken) (claims, error) {
	var c claims
	if err := idt.Claims(&c.m); err != nil {
		return claims{}, err
	}
	return c, nil
}

// str returns a string member, or "" when absent or not a string.
func (c claims) str(name string) string {
	raw, ok := c.m[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// isTrue reports whether a member is the JSON literal true. The string
// "true", 1 and the like do not count: an email is trusted only on the
// provider's explicit word.
func (c claims) isTrue(name string) bool {
	return bytes.Equal(bytes.TrimSpace(c.m[name]), []byte("true"))
}

// fillFrom adds the userinfo members the ID token lacked: email (with its
// email_verified, never one without the other), name, and the groups claim.
func (c claims) fillFrom(u claims, groupsClaim string) claims {
	out := claims{m: make(map[string]json.RawMessage, len(c.m)+4)}
	for k, v := range c.m {
		out.m[k] = v
	}
	if c.str("email") == "" && u.str("email") != "" {
		out.m["email"] = u.m["email"]
		delete(out.m, "email_verified")
		if v, ok := u.m["email_verified"]; ok {
			out.m["email_verified"] = v
		}
	}
	for _, k := range []string{"name", "preferred_username", groupsClaim} {
		if _, ok := c.m[k]; !ok {
			if v, ok := u.m[k]; ok {
				out.m[k] = v
			}
		}
	}
	return out
}

// maxGroups bounds how many groups one sign-in may carry.
const maxGroups = 1024

// groups returns the groups claim: an array of strings (or a single
// string), each with one leading "/" removed (Keycloak's full group paths).
// Absent is no groups; any other shape is an error and no groups.
func (c claims) groups(name string) ([]string, error) {
	raw, ok := c.m[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return nil, errors.New("not a string array")
		}
		list = []string{one}
	}
	if len(list) > maxGroups {
		return nil, fmt.Errorf("more than %d groups", maxGroups)
	}
	out := list[:0]
	for _, g := range list {
		g = strings.TrimPrefix(g, "/")
		if g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}

// roleMapping turns provider groups into tenant roles.
type roleMapping struct {
	groupsClaim  string
	groupRoles   map[string][]string
	defaultRoles []string
}

func newRoleMapping(m tenants.Method) roleMapping {
	rm := roleMapping{
		groupsClaim:  m.GroupsClaim,
		groupRoles:   make(map[string][]string, len(m.GroupRoles)),
		defaultRoles: slices.Clone(m.DefaultRoles),
	}
	if rm.groupsClaim == "" {
		rm.groupsClaim = "groups"
	}
	for g, rs := range m.GroupRoles {
		rm.groupRoles[g] = slices.Clone(rs)
	}
	return rm
}

// roles is the sorted, duplicate-free union of the default roles and the
// roles of every group. Groups without a mapping grant nothing.
func (rm roleMapping) roles(groups []string) []string {
	out := slices.Clone(rm.defaultRoles)
	for _, g := range groups {
		out = append(out, rm.groupRoles[g]...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	return out
}
