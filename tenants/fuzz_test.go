package tenants

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<Name>/ (written by
// internal/genseeds); the f.Add calls below add the same kind of inputs so
// that a plain `go test` exercises them too.

func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{
		"acme.app.test", "ACME.App.Test:443", "acme.app.test.", "acme.app.test..", ":443", "a:0",
		"a:99999", "u@acme.app.test", "\u0430cme.app.test", "\uff41cme.app.test", "xn--bcher-kva.test",
		"[::1]:80", "127.0.0.1", "bücher.test", "xn--acme-.test", "a\x00b", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := CanonicalHost(raw)
		if err != nil {
			if !errors.Is(err, ErrBadHost) {
				t.Fatalf("error %v does not wrap ErrBadHost", err)
			}
			if h != "" {
				t.Fatalf("error with output %q", h)
			}
			return
		}
		if again, err := CanonicalHost(h); err != nil || again != h {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", raw, h, again, err)
		}
		if strings.HasPrefix(h, "[") {
			if !IsIPHost(h) || strings.Trim(h[1:len(h)-1], "0123456789abcdef:.") != "" || !strings.HasSuffix(h, "]") {
				t.Fatalf("bad IPv6 output %q", h)
			}
			return
		}
		if h == "" || len(h) > 253 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			t.Fatalf("output %q of %q has characters outside [a-z0-9.-] or a bad length", h, raw)
		}
		for l := range strings.SplitSeq(h, ".") {
			if !validDNSLabel(l) {
				t.Fatalf("output %q has the bad label %q", h, l)
			}
		}
		if d, err := CanonicalDomain(h); err == nil && d != h {
			t.Fatalf("CanonicalDomain(%q) = %q", h, d)
		}
	})
}

func FuzzResolve(f *testing.F) {
	for _, s := range []struct{ host, path string }{
		{"acme.app.test", "/"}, {"app.test", "/org/acme/x?y"}, {"app.test", "/org/acme/../globex/"},
		{"app.test", "/org/acme%2F..%2Fglobex"}, {"login.acme.test:443", "/a/%2e%2e/b"},
		{"x.acme.app.test", "/"}, {"app.test", "/org/ACME"}, {"app.test", "//org/globex"},
		{"127.0.0.1", "/org/acme"}, {"app.test", "/org/acme;x/"}, {"app.test", "/org/acme%00"},
	} {
		f.Add(s.host, s.path)
	}
	r, snap := resolveFixture()
	f.Fuzz(func(t *testing.T, host, path string) {
		res, err := r.Resolve(snap, host, path)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUnknownTenant) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if res != (Resolution{}) {
				t.Fatalf("error with a resolution: %+v", res)
			}
			return
		}
		if (res.Tenant == nil) != res.Apex {
			t.Fatalf("Tenant nil is %v but Apex is %v", res.Tenant == nil, res.Apex)
		}
		p, _, _ := strings.Cut(path, "?")
		// Resolved paths never hold dot-segments, encoded separators or dots,
		// empty segments, backslashes or NULs.
		lower := strings.ToLower(p) + "/"
		for _, bad := range []string{"/./", "/../", "%2f", "%2e", "%5c", "%00", "%25", "\\", "\x00", ";"} {
			if strings.Contains(lower, bad) || strings.Contains(p, "//") {
				t.Fatalf("path %q resolved (%+v) though it contains %q", path, res, bad)
			}
		}
		if strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/.") {
			t.Fatalf("path %q with a trailing dot-segment resolved", path)
		}
		canon, err := CanonicalHost(host)
		if err != nil || res.Host != canon {
			t.Fatalf("Host = %q, CanonicalHost = %q, %v", res.Host, canon, err)
		}
		if res.Prefix != "" {
			// Path tenancy: the prefix is exactly /org/<the tenant's id>, and
			// the path is that prefix, alone or followed by "/".
			if res.Tenant == nil || res.Prefix != "/org/"+res.Tenant.ID {
				t.Fatalf("prefix %q for tenant %+v", res.Prefix, res.Tenant)
			}
			if p != res.Prefix && !strings.HasPrefix(p, res.Prefix+"/") {
				t.Fatalf("path %q is not under prefix %q", p, res.Prefix)
			}
			seg, _, _ := strings.Cut(strings.TrimPrefix(p, "/org/"), "/")
			if seg != res.Tenant.ID {
				t.Fatalf("path segment %q resolved to tenant %q", seg, res.Tenant.ID)
			}
			if res.Host != "app.test" && res.Host != "eu.app.test" && res.Host != "localhost" {
				t.Fatalf("path tenancy on a non-apex host %q", res.Host)
			}
			return
		}
		if res.Tenant != nil {
			// Host tenancy: the host is the tenant's label under a base
			// domain, or one of its custom domains that is not under one.
			base := r.baseOf(res.Host)
			if base != "" {
				if res.Host != res.Tenant.ID+"."+base {
					t.Fatalf("host %q resolved to tenant %q", res.Host, res.Tenant.ID)
				}
			} else if !strings.Contains(strings.Join(res.Tenant.Domains, " ")+" ", res.Host+" ") {
				t.Fatalf("host %q is not a domain of tenant %q", res.Host, res.Tenant.ID)
			}
		}
	})
}

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"tenants:\n  - id: acme\n    methods:\n      - type: password\n      - {type: sso, label: SSO, url: https://idp.test, id: 12, scopes: [a, b], flag: true, groupRoles: {g: [r]}}\n      - {type: realm, realm: x, url: y}\n",
		`{"tenants": [{"id": "acme", "methods": [{"type": "password"}]}]}`,
		"tenants:\n  - id: acme\n    colour: red\n",
		"tenants: []\n---\ntenants: []\n",
		"x: &x {id: a}\ntenants: [*x, *x]\n",
		"tenants:\n  - <<: {name: n}\n    id: acme\n",
		"tenants: [{id: a, roles: {r: {permissions: ['*'], inherits: [r]}}}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseFile(data, testTypes)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error %v does not wrap ErrBadFile", err)
			}
			return
		}
		// Validate never panics, whatever ParseFile produced.
		_ = Validate(cloneTenants(ts), testOpts(ValidateOptions{}))
		want := ts
		for _, format := range []string{"yaml", "json"} {
			out, err := MarshalFile(ts, format)
			if err != nil {
				t.Fatalf("MarshalFile(%s): %v", format, err)
			}
			back, err := ParseFile(out, testTypes)
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%s", format, err, out)
			}
			if !reflect.DeepEqual(normalize(back), normalize(want)) {
				t.Fatalf("%s round trip differs:\n got %#v\nwant %#v\n%s", format, back, want, out)
			}
		}
	})
}

func cloneTenants(ts []Tenant) []Tenant {
	out := make([]Tenant, len(ts))
	for i, t := range ts {
		t.Domains = append([]string(nil), t.Domains...)
		t.EmailDomains = append([]string(nil), t.EmailDomains...)
		out[i] = t
	}
	return out
}

// normalize makes empty and nil collections equal: the file format does
// not tell them apart (empty ones are omitted).
func normalize(ts []Tenant) []Tenant {
	out := make([]Tenant, len(ts))
	for i, t := range ts {
		if len(t.Domains) == 0 {
			t.Domains = nil
		}
		if len(t.EmailDomains) == 0 {
			t.EmailDomains = nil
		}
		if len(t.Methods) == 0 {
			t.Methods = nil
		}
		if len(t.Rules) == 0 {
			t.Rules = nil
		} else {
			t.Rules = append([]Rule(nil), t.Rules...)
			for j := range t.Rules {
				if len(t.Rules[j].Methods) == 0 {
					t.Rules[j].Methods = nil
				}
			}
		}
		if len(t.Roles) == 0 {
			t.Roles = nil
		} else {
			roles := make(map[string]Role, len(t.Roles))
			for k, r := range t.Roles {
				if len(r.Permissions) == 0 {
					r.Permissions = nil
				}
				if len(r.Inherits) == 0 {
					r.Inherits = nil
				}
				roles[k] = r
			}
			t.Roles = roles
		}
		out[i] = t
	}
	return out
}
