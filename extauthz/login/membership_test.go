package login

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/signin"
)

// TestSSOSignInPublishesMembership: an SSO sign-in publishes the membership
// it wrote before answering, since Check refuses a session whose user the
// snapshot does not hold as a member; the session's roles are the mapped
// ones the store recorded.
func TestSSOSignInPublishesMembership(t *testing.T) {
	se := newSSOEnv(t)
	se.p.set("c", signin.Identity{Issuer: "i", Subject: "s", Roles: []string{"admin", "nonexistent"}})
	j := jar{}
	state := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
	resp := se.do("GET", "oidcco.app.test", "/_auth/callback?state="+url.QueryEscape(state)+"&code=c", nil, nil, j.all()...)
	sess := cookieNamed(resp, "__Host-tenantgate")
	if resp.StatusCode != http.StatusSeeOther || sess == nil {
		t.Fatalf("SSO sign-in: status %d", resp.StatusCode)
	}
	// No refresh: the sign-in published its membership itself.
	c, err := verifyOwnTenant(se.verifier, se.snaps.Load(), sess.Value)
	if err != nil {
		t.Fatalf("the new session does not verify at once: %v", err)
	}
	if !slices.Equal(c.Roles, []string{"admin"}) {
		t.Errorf("roles %q, want [admin]", c.Roles)
	}
}
