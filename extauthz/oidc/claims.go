package oidc

import (
	"bytes"
	"encoding/json"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/tenantgate/tenantgate/extauthz/signin"
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

// strs returns an array-of-strings member (amr), or nil when absent or of
// another shape.
func (c claims) strs(name string) []string {
	var out []string
	if json.Unmarshal(c.m[name], &out) != nil {
		return nil
	}
	return out
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

// groups returns the groups claim as signin.ParseGroups reads it: absent is
// no groups; a wrong shape or too many is an error and no groups.
func (c claims) groups(name string) ([]string, error) {
	return signin.ParseGroups(c.m[name])
}
