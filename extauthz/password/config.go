package password

import "github.com/tenantgate/tenantgate/tenants"

// Config is a password method entry's own configuration: none. Password
// sign-in is built into the sign-in pages and checks the tenant's members'
// passwords (tenants.Store.UserByEmail, Membership); an entry only says the
// tenant offers it.
type Config struct{}

// NewConfig returns an empty Config, for tenants.MethodType.
func NewConfig() tenants.MethodConfig { return &Config{} }

// Validate refuses what a password entry may not set (a label, a role
// mapping: the roles are the membership's) and a second password entry.
func (*Config) Validate(m tenants.Method, c *tenants.MethodCheck) {
	if m.Label != "" {
		c.NotAField("label")
	}
	if len(m.Roles.GroupRoles) > 0 {
		c.NotAField("groupRoles")
	}
	if len(m.Roles.DefaultRoles) > 0 {
		c.NotAField("defaultRoles")
	}
	c.OnlyOne("")
}
