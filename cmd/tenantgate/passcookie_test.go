package main

import (
	"strings"
	"testing"
)

// TestTenantsPassSessionCookie: the tenant field passSessionCookie goes
// through apply into the store and back out of tenants get, directly and
// through a running server's admin API; turned off again, get prints no
// key (false is the default).
func TestTenantsPassSessionCookie(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		on := "tenants:\n  - id: acme\n    methods: [{type: password}]\n    passSessionCookie: true\n"
		c.mustRun("", "tenants", "apply", "-f", c.writeFile("on.yaml", on))
		for _, tc := range []struct{ format, want string }{{"yaml", "passSessionCookie: true"}, {"json", `"passSessionCookie": true`}} {
			if out := c.mustRun("", "tenants", "get", "acme", "-o", tc.format); !strings.Contains(out, tc.want) {
				t.Errorf("get -o %s: no %q in\n%s", tc.format, tc.want, out)
			}
		}
		off := strings.Replace(on, "true", "false", 1)
		c.mustRun("", "tenants", "apply", "-f", c.writeFile("off.yaml", off))
		if out := c.mustRun("", "tenants", "get", "acme"); strings.Contains(out, "passSessionCookie") {
			t.Errorf("get after turning it off still prints passSessionCookie:\n%s", out)
		}
	})
}
