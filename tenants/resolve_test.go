package tenants

import (
	"errors"
	"strings"
	"testing"
)

// resolveFixture: acme (custom domain login.acme.test), globex, and a
// tenant "evil" that has registered custom domains under the base domain
// and the base domain itself, which must never take effect.
func resolveFixture() (*Resolver, *Snapshot) {
	ts := []Tenant{
		{ID: "acme", InternalID: "i-acme", Domains: []string{"login.acme.test", "xn--bcher-kva.test"}},
		{ID: "globex", InternalID: "i-globex"},
		{ID: "evil", InternalID: "i-evil", Domains: []string{"globex.app.test", "app.test", "x.acme.app.test", "eu.app.test"}},
		{ID: "eu", InternalID: "i-eu"},
		{ID: "0", InternalID: "i-0"},
	}
	r := &Resolver{BaseDomains: []string{"app.test", "eu.app.test", "localhost"}}
	return r, NewSnapshot(ts, nil)
}

func TestResolve(t *testing.T) {
	r, s := resolveFixture()
	type want struct {
		tenant string // "" with apex false means an error
		apex   bool
		prefix string
		err    error
	}
	bad := want{err: ErrBadRequest}
	unknown := want{err: ErrUnknownTenant}
	for _, tc := range []struct {
		name, host, path string
		want
	}{
		// Custom domains.
		{"custom domain", "login.acme.test", "/", want{tenant: "acme"}},
		{"custom domain upper case and port", "LOGIN.Acme.TEST:443", "/x?y=1", want{tenant: "acme"}},
		{"custom domain trailing dot", "login.acme.test.", "/", want{tenant: "acme"}},
		{"IDN custom domain", "bücher.test", "/", want{tenant: "acme"}},
		{"custom domain parent", "acme.test", "/", unknown},
		{"custom domain child", "x.login.acme.test", "/", unknown},
		{"custom domain suffix trick", "login.acme.test.evil.test", "/", unknown},

		// <id>.<base-domain>.
		{"subdomain", "acme.app.test", "/", want{tenant: "acme"}},
		{"subdomain upper case", "ACME.App.Test", "/", want{tenant: "acme"}},
		{"subdomain port", "acme.app.test:8443", "/", want{tenant: "acme"}},
		{"subdomain trailing dot", "acme.app.test.", "/", want{tenant: "acme"}},
		{"numeric id", "0.app.test", "/", want{tenant: "0"}},
		{"localhost base", "globex.localhost:10000", "/", want{tenant: "globex"}},
		{"unknown subdomain", "nobody.app.test", "/", unknown},
		{"two labels", "x.acme.app.test", "/", unknown},
		{"prefix trick", "evilacme.app.test", "/", unknown},
		{"suffix trick", "acmeevil.app.test", "/", unknown},
		{"base under attacker domain", "acme.app.test.evil.test", "/", unknown},
		{"attacker base lookalike", "acme.app.testevil", "/", unknown},
		{"custom domain under base is ignored", "globex.app.test", "/", want{tenant: "globex"}},
		{"nested base: longest wins", "acme.eu.app.test", "/", want{tenant: "acme"}},
		{"nested base is an apex, not tenant eu", "eu.app.test", "/", want{apex: true}},
		{"cyrillic lookalike", "\u0430cme.app.test", "/", unknown},
		{"fullwidth lookalike", "\uff41cme.app.test", "/", bad},

		// Apex and path tenancy.
		{"apex root", "app.test", "/", want{apex: true}},
		{"apex other path", "app.test", "/_auth/login?rd=/x", want{apex: true}},
		{"apex prefix alone", "app.test", "/org", want{apex: true}},
		{"apex prefix lookalike", "app.test", "/orgx/acme/", want{apex: true}},
		{"apex custom domain ignored", "app.test", "/", want{apex: true}},
		{"apex path tenant", "app.test", "/org/acme/", want{tenant: "acme", prefix: "/org/acme"}},
		{"apex path tenant exact", "app.test", "/org/acme", want{tenant: "acme", prefix: "/org/acme"}},
		{"apex path tenant deeper", "app.test", "/org/acme/a/b?c=d", want{tenant: "acme", prefix: "/org/acme"}},
		{"apex path tenant query", "app.test", "/org/acme?x=/org/globex/", want{tenant: "acme", prefix: "/org/acme"}},
		{"apex port", "APP.test:443", "/org/globex/", want{tenant: "globex", prefix: "/org/globex"}},
		{"apex unknown tenant", "app.test", "/org/nobody/", unknown},
		{"apex empty tenant", "app.test", "/org/", unknown},
		{"apex upper-case id", "app.test", "/org/ACME/", bad},
		{"apex encoded id", "app.test", "/org/%61cme/", bad},
		{"apex id with dot", "app.test", "/org/acme.x/", bad},
		{"apex dot-dot", "app.test", "/org/acme/../globex/", bad},
		{"apex dot-dot as id", "app.test", "/org/../globex/", bad},
		{"apex dot", "app.test", "/org/./acme/", bad},
		{"apex encoded dot-dot", "app.test", "/org/acme/%2e%2e/globex/", bad},
		{"apex encoded dot-dot upper", "app.test", "/org/acme/%2E%2E/globex/", bad},
		{"apex encoded slash", "app.test", "/org/acme%2F..%2Fglobex/", bad},
		{"apex encoded slash lower", "app.test", "/org/acme%2f..%2fglobex/", bad},
		{"apex encoded backslash", "app.test", "/org/acme%5C..%5Cglobex/", bad},
		{"apex double slash", "app.test", "//org/globex/", bad},
		{"apex empty segment", "app.test", "/org//globex/", bad},
		{"apex semicolon", "app.test", "/org/acme;x/", bad},
		{"apex NUL escape", "app.test", "/org/acme%00", bad},
		{"apex NUL byte", "app.test", "/org/acme\x00/", bad},
		{"apex backslash", "app.test", "/org/acme\\..\\globex/", bad},
		{"apex no leading slash", "app.test", "org/acme/", bad},
		{"apex absolute form", "app.test", "http://app.test/org/acme/", bad},
		{"apex asterisk", "app.test", "*", bad},
		{"apex empty path", "app.test", "", bad},

		// The path checks hold for every way of resolving.
		{"subdomain dot-dot", "acme.app.test", "/public/../admin/", bad},
		{"subdomain trailing dot-dot", "acme.app.test", "/public/..", bad},
		{"subdomain encoded dot later", "acme.app.test", "/public/%2e%2e/admin/", bad},
		{"subdomain encoded dot in a name", "acme.app.test", "/file%2Etxt", bad},
		{"subdomain encoded slash", "acme.app.test", "/public%2F..%2Fadmin", bad},
		{"subdomain double-encoded dot", "acme.app.test", "/public/%252e%252e/admin", bad},
		{"subdomain encoded semicolon", "acme.app.test", "/admin%3Bx", bad},
		{"subdomain malformed escape", "acme.app.test", "/a%zz", bad},
		{"subdomain truncated escape", "acme.app.test", "/a%2", bad},
		{"subdomain overlong dot", "acme.app.test", "/%c0%ae%c0%ae/admin", bad},
		{"subdomain space", "acme.app.test", "/a b", bad},
		{"subdomain CR in query", "acme.app.test", "/a?x=\r\n", bad},
		{"subdomain fragment", "acme.app.test", "/a#b", bad},
		{"subdomain raw UTF-8", "acme.app.test", "/caf\u00e9", bad},
		{"subdomain encoded UTF-8 ok", "acme.app.test", "/caf%C3%A9", want{tenant: "acme"}},
		{"subdomain encoded letter ok", "acme.app.test", "/%61dmin/", want{tenant: "acme"}},
		{"subdomain dots inside names ok", "acme.app.test", "/a..b/.well-known/x.json", want{tenant: "acme"}},
		{"subdomain query may hold anything printable", "acme.app.test", "/a?next=/../b%2F%00", want{tenant: "acme"}},
		{"custom domain dot-dot", "login.acme.test", "/a/../b", bad},

		// Hosts that name nothing.
		{"IPv4 host", "127.0.0.1", "/", unknown},
		{"IPv4 host with port", "10.0.0.1:8080", "/org/acme/", unknown},
		{"IPv6 host", "[::1]:9000", "/", unknown},
		{"numeric host", "2130706433", "/", unknown},
		{"unknown host", "example.com", "/", unknown},
		{"single label host", "acme", "/", unknown},

		// Malformed hosts.
		{"empty host", "", "/", bad},
		{"userinfo", "acme@globex.app.test", "/", bad},
		{"userinfo with victim", "globex.app.test@acme.app.test", "/", bad},
		{"bad port", "acme.app.test:abc", "/", bad},
		{"port 0", "acme.app.test:0", "/", bad},
		{"port too big", "acme.app.test:99999", "/", bad},
		{"two dots", "acme.app.test..", "/", bad},
		{"dotdot label", "acme..app.test", "/", bad},
		{"underscore", "ac_me.app.test", "/", bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Resolve(s, tc.host, tc.path)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve(%q, %q) = %+v, %v; want %v", tc.host, tc.path, res, err, tc.err)
				}
				if res.Tenant != nil || res.Apex {
					t.Errorf("an error came with a resolution: %+v", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q, %q): %v", tc.host, tc.path, err)
			}
			if res.Apex != tc.apex {
				t.Errorf("Apex = %v, want %v", res.Apex, tc.apex)
			}
			if tc.apex {
				if res.Tenant != nil {
					t.Errorf("apex with tenant %q", res.Tenant.ID)
				}
			} else if res.Tenant == nil || res.Tenant.ID != tc.tenant {
				t.Fatalf("tenant = %+v, want %q", res.Tenant, tc.tenant)
			}
			if res.Prefix != tc.prefix {
				t.Errorf("Prefix = %q, want %q", res.Prefix, tc.prefix)
			}
			if want, _ := CanonicalHost(tc.host); res.Host != want {
				t.Errorf("Host = %q, want %q", res.Host, want)
			}
		})
	}
}

func TestResolveCustomPrefixAndZeroValue(t *testing.T) {
	_, s := resolveFixture()
	r := &Resolver{BaseDomains: []string{"app.test"}, PathPrefix: "/t"}
	if res, err := r.Resolve(s, "app.test", "/t/acme/x"); err != nil || res.Tenant == nil || res.Tenant.ID != "acme" || res.Prefix != "/t/acme" {
		t.Errorf("custom prefix: %+v, %v", res, err)
	}
	if res, err := r.Resolve(s, "app.test", "/org/acme/x"); err != nil || !res.Apex {
		t.Errorf("default prefix still used: %+v, %v", res, err)
	}

	var zero Resolver
	if res, err := zero.Resolve(s, "login.acme.test", "/"); err != nil || res.Tenant.ID != "acme" {
		t.Errorf("zero Resolver, custom domain: %+v, %v", res, err)
	}
	if _, err := zero.Resolve(s, "acme.app.test", "/"); !errors.Is(err, ErrUnknownTenant) {
		t.Errorf("zero Resolver resolved a subdomain: %v", err)
	}
	if _, err := zero.Resolve(nil, "login.acme.test", "/"); !errors.Is(err, ErrUnknownTenant) {
		t.Errorf("nil snapshot: %v", err)
	}
}

// A tenant that is deleted is gone from the next snapshot; one re-created
// under the same id is a different tenant (its InternalID differs).
func TestResolveRecreatedTenantIsNew(t *testing.T) {
	r := &Resolver{BaseDomains: []string{"app.test"}}
	before := NewSnapshot([]Tenant{{ID: "acme", InternalID: "old"}}, nil)
	after := NewSnapshot([]Tenant{{ID: "acme", InternalID: "new"}}, nil)
	a, _ := r.Resolve(before, "acme.app.test", "/")
	b, _ := r.Resolve(after, "acme.app.test", "/")
	if a.Tenant.InternalID == b.Tenant.InternalID {
		t.Fatal("re-created tenant resolved to the old internal id")
	}
}

func TestValidTenantID(t *testing.T) {
	for id, want := range map[string]bool{
		"acme": true, "a": true, "0": true, "a-b": true, "a--b": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "a-": false, "A": false, "a_b": false, "a.b": false, "é": false,
		strings.Repeat("a", 64): false, "a b": false,
	} {
		if got := ValidTenantID(id); got != want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", id, got, want)
		}
	}
}
