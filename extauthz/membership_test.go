package extauthz

import (
	"context"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestCheckFollowsMembership: the roles a session carries are only what the
// person held at sign-in; every Check uses the membership as the snapshot
// holds it now (security catalogue item 45; CONTRACT.md, users add). A
// role taken away bites on the next request, a role given shows at once, a
// member removed is signed out, and a suspended tenant refuses everyone.
func TestCheckFollowsMembership(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "admin", "member")
	user := f.member(t, f.acme, []string{"admin", "member"})
	bearer := map[string]string{"authorization": "Bearer " + tok}
	cookie := map[string]string{"cookie": "__Host-tenantgate=" + tok, "accept": "text/html"}
	change := func(edit func(c *tenants.SnapshotChange)) {
		t.Helper()
		var c tenants.SnapshotChange
		edit(&c)
		if err := f.snaps.Refresh(context.Background(), staticStore{f.snaps.Load().With(&c)}); err != nil {
			t.Fatal(err)
		}
	}
	roles := func() string {
		t.Helper()
		return headerMap(wantOK(t, f.check(t, "GET", "acme.app.test", "/dashboard", bearer)).GetHeaders())["x-user-roles"]
	}

	wantOK(t, f.check(t, "GET", "acme.app.test", "/admin/users", bearer))
	if got := roles(); got != "admin,member" {
		t.Fatalf("x-user-roles = %q before any change", got)
	}

	change(func(c *tenants.SnapshotChange) { c.PutMembership(f.acme.InternalID, user, []string{"member"}) })
	wantDenied(t, f.check(t, "GET", "acme.app.test", "/admin/users", bearer), 403, "forbidden")
	wantDenied(t, f.check(t, "GET", "acme.app.test", "/admin/users", cookie), 403, "forbidden")
	if got := roles(); got != "member" {
		t.Errorf("demoted: x-user-roles = %q, want member", got)
	}

	change(func(c *tenants.SnapshotChange) {
		c.PutMembership(f.acme.InternalID, user, []string{"member", "admin", "auditor"})
	})
	wantOK(t, f.check(t, "GET", "acme.app.test", "/admin/users", bearer))
	if got := roles(); got != "admin,auditor,member" {
		t.Errorf("promoted: x-user-roles = %q, want admin,auditor,member", got)
	}

	// Removed from acme (still a member of globex under the same id):
	// signed out of acme.
	change(func(c *tenants.SnapshotChange) {
		c.DeleteMembership(f.acme.InternalID, user)
		c.PutMembership(f.globex.InternalID, user, []string{"admin"})
	})
	wantDenied(t, f.check(t, "GET", "acme.app.test", "/dashboard", bearer), 401, "unauthenticated")
	h := wantDenied(t, f.check(t, "GET", "acme.app.test", "/dashboard", cookie), 302, "")
	if h["location"] != "/_auth/login?rd=%2Fdashboard" {
		t.Errorf("removed member, browser: location %q", h["location"])
	}

	// Back as a member, then the tenant is suspended.
	change(func(c *tenants.SnapshotChange) { c.PutMembership(f.acme.InternalID, user, []string{"admin"}) })
	wantOK(t, f.check(t, "GET", "acme.app.test", "/admin/users", bearer))
	var ts []tenants.Tenant
	for _, id := range []string{"acme", "globex", "initech"} {
		tn := *f.snaps.Load().BySlug(id)
		if id == "acme" {
			tn.Status = tenants.StatusSuspended
		}
		ts = append(ts, tn)
	}
	change(func(c *tenants.SnapshotChange) { c.ReplaceTenants(ts) })
	wantDenied(t, f.check(t, "GET", "acme.app.test", "/dashboard", bearer), 403, "tenant_suspended")
}
