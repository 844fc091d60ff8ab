package extauthz

import (
	"context"
	"slices"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestCheckCachedAnswerDoesNotLeak: the OK answer's identity headers and
// metadata are kept with a token that is in use (okTemplate), and every
// Check of that token still answers for its own request: the headers the
// client sent decide headers_to_remove, its cookies decide the Cookie
// rewrite, and the roles are the snapshot's at this Check, not at the Check
// that built the cached parts.
func TestCheckCachedAnswerDoesNotLeak(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "member")
	user := f.member(t, f.acme, []string{"member"})
	other := f.token(t, f.acme, "admin")
	bearer := "Bearer " + tok
	// Its third use puts a token in the verifier's cache proper, where the
	// answer's parts are kept.
	for range 3 {
		wantOK(t, f.check(t, "GET", "acme.app.test", "/dashboard", map[string]string{"authorization": bearer}))
		wantOK(t, f.check(t, "GET", "acme.app.test", "/dashboard", map[string]string{"authorization": "Bearer " + other}))
	}

	type want struct {
		roles, user string
		cookie      string // the Cookie header set, "" for none
		remove      []string
	}
	cases := []struct {
		name    string
		headers map[string]string
		want    want
	}{
		{"spoofed identity and tenant headers with app cookies",
			map[string]string{"cookie": "app=1; __Host-tenantgate=" + tok, "x-user-id": "u-root", "x-tenant-plan": "gold", "x-user-x": "1"},
			want{roles: "member", user: "u-acme", cookie: "app=1", remove: []string{"x-tenant-plan", "x-user-x"}}},
		{"the session cookie alone",
			map[string]string{"cookie": "__Host-tenantgate=" + tok},
			want{roles: "member", user: "u-acme", remove: []string{"cookie"}}},
		{"bearer with other app cookies",
			map[string]string{"authorization": bearer, "cookie": "app=2; b=3"},
			want{roles: "member", user: "u-acme"}},
		{"bearer with x-auth-mfa",
			map[string]string{"authorization": bearer, "x-auth-mfa": "true"},
			want{roles: "member", user: "u-acme"}},
		{"another member's token between them",
			map[string]string{"authorization": "Bearer " + other, "cookie": "app=9; __Host-tenantgate-csrf=c"},
			want{roles: "admin", user: "u-acme-2", cookie: "app=9"}},
		{"bearer, nothing else",
			map[string]string{"authorization": bearer},
			want{roles: "member", user: "u-acme"}},
	}
	check := func(t *testing.T, headers map[string]string, w want) {
		t.Helper()
		resp := f.check(t, "GET", "acme.app.test", "/dashboard", headers)
		ok := wantOK(t, resp)
		h := headerMap(ok.GetHeaders())
		// No token here checked a second factor: x-auth-mfa is
		// overwritten with false, whatever the client sent.
		if h["x-user-roles"] != w.roles || h["x-user-id"] != w.user || h["x-tenant-id"] != "acme" || h["x-auth-mfa"] != "false" {
			t.Errorf("identity headers %v, want roles %q and user %q of acme", h, w.roles, w.user)
		}
		if h["cookie"] != w.cookie {
			t.Errorf("cookie header set to %q, want %q", h["cookie"], w.cookie)
		}
		if got := ok.GetHeadersToRemove(); !slices.Equal(got, w.remove) {
			t.Errorf("headers_to_remove %v, want %v", got, w.remove)
		}
		if md := resp.GetDynamicMetadata().GetFields(); md["user_id"].GetStringValue() != w.user || md["tenant_id"].GetStringValue() != "acme" {
			t.Errorf("dynamic metadata %v", md)
		}
	}
	// Each request twice, and the whole list twice, so that every answer
	// follows one built for a different request.
	for range 2 {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				check(t, tc.headers, tc.want)
				check(t, tc.headers, tc.want)
			})
		}
	}

	// A role given between two Checks of the same token shows on the
	// second; taken away again, it is gone on the third.
	change := func(roles ...string) {
		t.Helper()
		var c tenants.SnapshotChange
		c.PutMembership(f.acme.InternalID, user, roles)
		if err := f.snaps.Refresh(context.Background(), staticStore{f.snaps.Load().With(&c)}); err != nil {
			t.Fatal(err)
		}
	}
	change("admin", "member")
	check(t, map[string]string{"authorization": bearer}, want{roles: "admin,member", user: "u-acme"})
	wantOK(t, f.check(t, "GET", "acme.app.test", "/admin/users", map[string]string{"authorization": bearer}))
	change("member")
	check(t, map[string]string{"authorization": bearer}, want{roles: "member", user: "u-acme"})
	wantDenied(t, f.check(t, "GET", "acme.app.test", "/admin/users", map[string]string{"authorization": bearer}), 403, "forbidden")
}

// TestOKTemplateKeptPerTokenAndSnapshot: the cached session's answer parts
// are built once per token and snapshot (the point of okTemplate), and
// built anew for a new snapshot even when nothing the answer shows changed.
func TestOKTemplateKeptPerTokenAndSnapshot(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "member")
	srv := &Server{Authorizer: &Authorizer{
		Snapshots:  f.snaps,
		Resolver:   &tenants.Resolver{BaseDomains: []string{"app.test"}},
		Verifier:   session.NewVerifier(),
		CookieName: "__Host-tenantgate",
	}}
	req := &Request{Host: "acme.app.test", Path: "/dashboard", Method: "GET", Header: func(name string) string {
		if name == "authorization" {
			return "Bearer " + tok
		}
		return ""
	}}
	template := func() *okTemplate {
		t.Helper()
		d := srv.Authorizer.Decide(req)
		if d.Outcome != Allow {
			t.Fatalf("decision %+v, want Allow", d)
		}
		return srv.okTemplate(d)
	}
	for range 2 { // probation, then the cache proper
		template()
	}
	first := template()
	if again := template(); again != first {
		t.Errorf("a cached token's answer parts were built again for the same snapshot")
	}
	if err := f.snaps.Refresh(context.Background(), staticStore{f.snaps.Load()}); err != nil {
		t.Fatal(err)
	}
	if next := template(); next == first {
		t.Errorf("answer parts built on an earlier snapshot were used on a new one")
	}
}
