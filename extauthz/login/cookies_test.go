package login

import (
	"net/http"
	"slices"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/cookie"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestEveryCookieIsOwned: every cookie name the sign-in pages set is one
// cookie.Owned knows, in every tenancy and cookie mode, so the Check path
// takes all of them out of the Cookie header the upstream receives. A new
// cookie must be added to cookie.Owned, or this fails.
func TestEveryCookieIsOwned(t *testing.T) {
	acme := &tenants.Tenant{ID: "acme", InternalID: "iacme"}
	for _, insecure := range []bool{false, true} {
		h := &Handler{InsecureCookies: insecure}
		for _, q := range []*request{
			{res: tenants.Resolution{Tenant: acme}},
			{res: tenants.Resolution{Tenant: acme, Prefix: "/org/acme"}},
		} {
			names := []string{
				h.sessionCookieName(q),
				h.preauthCookieName(),
				h.attemptCookiePrefix() + "AAAAAAAAAAAAAAAAAAAAAA",
				h.idTokenCookieName(q),
				h.hostCookieName(q, switchCookieBase),
				h.hostCookieName(q, switchIntentBase),
				h.hostCookieName(q, globalCookieBase),
			}
			for _, name := range names {
				if !cookie.Owned(name) {
					t.Errorf("insecure=%v prefix=%q: cookie %q is not cookie.Owned", insecure, q.res.Prefix, name)
				}
			}
		}
	}
}

// TestCookiesNamedRFC6265: the sign-in pages read cookies as the Check
// does: ";" separates pairs, a comma never does, every Cookie line counts.
func TestCookiesNamedRFC6265(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header["Cookie"] = []string{
		`x="junk, __Host-tenantgate-csrf=planted"; __Host-tenantgate-csrf=one`,
		`y=a,__Host-tenantgate-csrf=planted2`,
		`__Host-tenantgate-csrf="two"; app=1`,
	}
	var got []string
	for _, c := range cookiesNamed(r, "__Host-tenantgate-csrf") {
		got = append(got, c.Value)
	}
	if want := []string{"one", "two"}; !slices.Equal(got, want) {
		t.Errorf("cookiesNamed = %q, want %q", got, want)
	}
	var names []string
	for _, c := range requestCookies(r) {
		names = append(names, c.Name)
	}
	if want := []string{"x", "__Host-tenantgate-csrf", "y", "__Host-tenantgate-csrf", "app"}; !slices.Equal(names, want) {
		t.Errorf("requestCookies names = %q, want %q", names, want)
	}
}
