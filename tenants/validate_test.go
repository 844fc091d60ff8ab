package tenants

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// good is a valid tenant; each case changes one thing.
func good(id string) Tenant {
	return Tenant{
		ID:           id,
		Name:         "Acme Corp",
		Domains:      []string{"login." + id + ".test"},
		EmailDomains: []string{id + ".test"},
		Status:       StatusActive,
		Methods: []Method{
			{Type: MethodPassword},
			{Type: "sso", Config: mustJSON(ssoConfig{URL: "https://idp.example/realms/" + id, ID: "tenantgate", Secret: "s3cret"})},
			{Type: "realm", Config: mustJSON(realmConfig{Realm: id}),
				Roles: RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}}, DefaultRoles: []string{"member"}}},
		},
		Roles: map[string]Role{
			"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
			"member": {Permissions: []string{"docs:read", "docs:*"}},
		},
		Rules: []Rule{
			{Path: "/public/", Access: AccessAnonymous},
			{Path: "/admin/", Methods: []string{"GET", "POST"}, Permission: "admin:access"},
			{Path: "/me", Access: AccessAuthenticated},
		},
	}
}

func TestValidateAcceptsGoodTenants(t *testing.T) {
	ts := []Tenant{good("acme"), good("globex"), {ID: "min", Methods: []Method{{Type: MethodPassword}}}}
	ts[1].Branding = Branding{LogoURL: "https://CDN.Globex.test:8443/brand/logo.svg?v=3&x=(1)", AccentColor: "#ABC"}
	if err := Validate(ts, testOpts(ValidateOptions{})); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateCanonicalisesDomainsInPlace(t *testing.T) {
	ts := []Tenant{good("acme")}
	ts[0].Domains = []string{"Login.ACME.test.", "BÜCHER.test", "bücher.test"}
	ts[0].EmailDomains = []string{"ACME.Test"}
	err := Validate(ts, testOpts(ValidateOptions{}))
	if err == nil || !strings.Contains(err.Error(), `domains[1] "BÜCHER.test"`) {
		t.Fatalf("Validate: %v", err)
	}
	want := []string{"login.acme.test", "BÜCHER.test", "xn--bcher-kva.test"}
	if !slices.Equal(ts[0].Domains, want) {
		t.Errorf("domains = %q, want %q", ts[0].Domains, want)
	}
	if ts[0].EmailDomains[0] != "acme.test" {
		t.Errorf("email domain = %q", ts[0].EmailDomains[0])
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	type edit func(ts []Tenant)
	for _, tc := range []struct {
		name  string
		edit  edit
		opts  ValidateOptions
		wants []string // each must appear in the error
	}{
		{"missing id", func(ts []Tenant) { ts[0].ID = "" }, ValidateOptions{}, []string{`tenants[0]: id: missing`}},
		{"bad id", func(ts []Tenant) { ts[0].ID = "Bad_Id" }, ValidateOptions{}, []string{`tenant "Bad_Id": id "Bad_Id": must be`}},
		{"id too long", func(ts []Tenant) { ts[0].ID = strings.Repeat("a", 64) }, ValidateOptions{}, []string{`: must be 1-63`}},
		{"duplicate id", func(ts []Tenant) { ts[1].ID = "acme"; ts[1].Domains = nil; ts[1].EmailDomains = nil }, ValidateOptions{}, []string{`tenant "acme": id: duplicate id (tenants[0] and tenants[1])`}},
		{"name not printable", func(ts []Tenant) { ts[0].Name = "a\x1b[31m" }, ValidateOptions{}, []string{`tenant "acme": name`}},
		{"name too long", func(ts []Tenant) { ts[0].Name = strings.Repeat("x", 201) }, ValidateOptions{}, []string{`name: longer than 200`}},
		{"bad status", func(ts []Tenant) { ts[0].Status = "disabled" }, ValidateOptions{}, []string{`tenant "acme": status "disabled"`}},
		{"bad domain", func(ts []Tenant) { ts[0].Domains = []string{"ok.test", "Bad..Host"} }, ValidateOptions{}, []string{`tenant "acme": domains[1] "Bad..Host": not a valid host name`}},
		{"domain with port", func(ts []Tenant) { ts[0].Domains = []string{"a.test:443"} }, ValidateOptions{}, []string{`domains[0] "a.test:443"`}},
		{"domain IP", func(ts []Tenant) { ts[0].Domains = []string{"10.0.0.1"} }, ValidateOptions{}, []string{`domains[0] "10.0.0.1"`}},
		{"fullwidth domain", func(ts []Tenant) { ts[0].Domains = []string{"\uff41cme.test"} }, ValidateOptions{}, []string{`domains[0]`}},
		{"bad email domain", func(ts []Tenant) { ts[0].EmailDomains = []string{"@acme.test"} }, ValidateOptions{}, []string{`tenant "acme": emailDomains[0] "@acme.test"`}},
		{"domain claimed by two tenants", func(ts []Tenant) { ts[1].Domains = []string{"LOGIN.acme.test."} }, ValidateOptions{}, []string{`tenant "globex": domains[0] "login.acme.test": also claimed by tenant "acme"`}},
		{"email domain claimed by two tenants", func(ts []Tenant) { ts[1].EmailDomains = []string{"acme.test"} }, ValidateOptions{}, []string{`tenant "globex": emailDomains[0] "acme.test": also claimed by tenant "acme"`}},
		{"domain twice in one tenant", func(ts []Tenant) { ts[0].Domains = []string{"a.test", "A.test"} }, ValidateOptions{}, []string{`tenant "acme": domains[1] "A.test": duplicates domains[0]`}},
		{"custom domain under base", func(ts []Tenant) { ts[1].Domains = []string{"acme.app.test"} }, ValidateOptions{BaseDomains: []string{"app.test"}}, []string{`tenant "globex": domains[0] "acme.app.test": is under the base domain "app.test"`}},
		{"custom domain is base", func(ts []Tenant) { ts[1].Domains = []string{"app.test"} }, ValidateOptions{BaseDomains: []string{"app.test"}}, []string{`domains[0] "app.test": is under`}},
		{"no methods", func(ts []Tenant) { ts[0].Methods = nil }, ValidateOptions{}, []string{`tenant "acme": methods: at least one`}},
		{"unknown method", func(ts []Tenant) { ts[0].Methods[0].Type = "kerberos" }, ValidateOptions{}, []string{`methods[0].type "kerberos"`}},
		{"method without type", func(ts []Tenant) { ts[0].Methods[0].Type = "" }, ValidateOptions{}, []string{`methods[0].type: missing (one of password, sso, realm)`}},
		{"field of another type", func(ts []Tenant) { setConfig(&ts[0].Methods[0], "url", "https://x.test") }, ValidateOptions{}, []string{`methods[0].url: not a field of a password method`}},
		{"fields of no type", func(ts []Tenant) {
			setConfig(&ts[0].Methods[1], "realm", "x")
			setConfig(&ts[0].Methods[1], "colour", "red")
		},
			ValidateOptions{}, []string{`methods[1].realm: not a field of a sso method`, `methods[1].colour: not a field of a sso method`}},
		{"config not an object", func(ts []Tenant) { ts[0].Methods[1].Config = json.RawMessage(`["x"]`) }, ValidateOptions{}, []string{`methods[1]: method config is not a JSON object`}},
		{"config of the wrong shape", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "scopes", "openid") }, ValidateOptions{}, []string{`methods[1]: json: cannot unmarshal`}},
		{"type's own check", func(ts []Tenant) { ts[0].Methods[1].Config = nil }, ValidateOptions{}, []string{`methods[1].url: missing`, `methods[1].clientID: missing`}},
		{"label and roles refused by the type", func(ts []Tenant) {
			ts[0].Methods[0].Roles.DefaultRoles = []string{"member"}
			ts[0].Methods[0].Label = "x"
		},
			ValidateOptions{}, []string{`methods[0].label: not a field of a password method`, `methods[0].defaultRoles: not a field of a password method`}},
		{"two of a type allowed once", func(ts []Tenant) { ts[0].Methods = append(ts[0].Methods, ts[0].Methods[2]) }, ValidateOptions{}, []string{`methods[3]: more than one realm method (one realm per tenant)`}},
		{"url javascript", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "javascript:alert(1)") }, ValidateOptions{}, []string{`methods[1].url "javascript:alert(1)": must be an absolute https`}},
		{"url with query", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "https://idp.example/?a=b") }, ValidateOptions{}, []string{`must not contain a query`}},
		{"url with fragment", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "https://idp.example/#a") }, ValidateOptions{}, []string{`must not contain a fragment`}},
		{"url with userinfo", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "https://u:p@idp.example/") }, ValidateOptions{}, []string{`must not contain a user name`}},
		{"url metadata IP", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "https://169.254.169.254/latest") }, ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`link-local`}},
		{"url metadata name", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "http://metadata.google.internal/") }, ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`metadata`}},
		{"url private IP", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "https://10.0.0.5/") }, ValidateOptions{}, []string{`private`}},
		{"url http", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "url", "http://idp.example/realms/acme") }, ValidateOptions{AllowLoopbackHTTPIDP: true}, []string{`must use https`}},
		{"client id with space", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "id", "a b") }, ValidateOptions{}, []string{`methods[1].clientID: must be at most`}},
		{"group role unknown", func(ts []Tenant) { ts[0].Methods[1].Roles.GroupRoles = map[string][]string{"eng": {"member", "ghost"}} }, ValidateOptions{}, []string{`methods[1].groupRoles.eng[1] "ghost": no such role in this tenant`}},
		{"group maps to nothing", func(ts []Tenant) { ts[0].Methods[1].Roles.GroupRoles = map[string][]string{"eng": nil} }, ValidateOptions{}, []string{`methods[1].groupRoles.eng: maps to no role`}},
		{"bad group name", func(ts []Tenant) { ts[0].Methods[1].Roles.GroupRoles = map[string][]string{"a\x00b": {"member"}} }, ValidateOptions{}, []string{`methods[1].groupRoles "a\x00b": a group name must be`}},
		{"default role unknown", func(ts []Tenant) { ts[0].Methods[1].Roles.DefaultRoles = []string{"ghost"} }, ValidateOptions{}, []string{`methods[1].defaultRoles[0] "ghost": no such role`}},
		{"bad scope", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "scopes", []string{"a b", ""}) }, ValidateOptions{}, []string{`methods[1].scopes[0] "a b"`, `methods[1].scopes[1] ""`}},
		{"bad groups claim", func(ts []Tenant) { setConfig(&ts[0].Methods[1], "groups", "a\nb") }, ValidateOptions{}, []string{`methods[1].groupsClaim: must be`}},
		{"bad label", func(ts []Tenant) { ts[0].Methods[1].Label = "\x1b[31m" }, ValidateOptions{}, []string{`methods[1].label`}},
		{"two password methods", func(ts []Tenant) { ts[0].Methods = append(ts[0].Methods, Method{Type: MethodPassword}) }, ValidateOptions{}, []string{`methods[3]: more than one password method`}},
		{"bad role name", func(ts []Tenant) { ts[0].Roles["Admin"] = Role{} }, ValidateOptions{}, []string{`tenant "acme": roles "Admin"`}},
		{"unknown inherited role", func(ts []Tenant) { ts[0].Roles["member"] = Role{Inherits: []string{"ghost"}} }, ValidateOptions{}, []string{`roles.member.inherits[0] "ghost": no such role`}},
		{"self inheritance", func(ts []Tenant) { ts[0].Roles["member"] = Role{Inherits: []string{"member"}} }, ValidateOptions{}, []string{`roles: inheritance cycle member -> member`}},
		{"inheritance cycle", func(ts []Tenant) {
			ts[0].Roles["member"] = Role{Inherits: []string{"viewer"}}
			ts[0].Roles["viewer"] = Role{Inherits: []string{"admin"}}
		}, ValidateOptions{}, []string{`roles: inheritance cycle admin -> member -> viewer -> admin`}},
		{"too many roles", func(ts []Tenant) {
			for i := 0; i < maxRoles; i++ {
				ts[0].Roles[fmt.Sprintf("r%d", i)] = Role{}
			}
		}, ValidateOptions{}, []string{`tenant "acme": roles: 258 roles, more than the 256 a tenant may have`}},
		{"too many permissions in a role", func(ts []Tenant) {
			ts[0].Roles["member"] = Role{Permissions: numbered("p:", maxRolePermissions+1)}
		}, ValidateOptions{}, []string{`tenant "acme": roles.member.permissions: 1025 permissions, more than the 1024 a role may list`}},
		{"too many distinct permissions", func(ts []Tenant) {
			for i := 0; i < 5; i++ {
				ts[0].Roles[fmt.Sprintf("r%d", i)] = Role{Permissions: numbered(fmt.Sprintf("r%d:", i), 1000)}
			}
		}, ValidateOptions{}, []string{`tenant "acme": roles: 5003 distinct permissions, more than the 4096 a tenant may grant`}},
		{"too many inherits", func(ts []Tenant) {
			ts[0].Roles["admin"] = Role{Inherits: slices.Repeat([]string{"member"}, maxRoleInherits+1)}
		}, ValidateOptions{}, []string{`tenant "acme": roles.admin.inherits: 257 entries, more than the 256 a role may list`}},
		{"inheritance too deep", func(ts []Tenant) {
			// admin -> member -> c00 -> ... -> c16: 18 steps from admin,
			// reported once, from the top of the chain.
			ts[0].Roles["member"] = Role{Inherits: []string{"c00"}}
			for i := 0; i <= 16; i++ {
				var inh []string
				if i < 16 {
					inh = []string{fmt.Sprintf("c%02d", i+1)}
				}
				ts[0].Roles[fmt.Sprintf("c%02d", i)] = Role{Inherits: inh}
			}
		}, ValidateOptions{}, []string{`tenant "acme": roles.admin.inherits: an inheritance chain of 18 steps, more than 16: admin -> member -> c00 -> c01 -> c02 -> c03 -> c04 -> c05 -> c06 -> c07 -> c08 -> c09 -> c10 -> c11 -> c12 -> c13 -> c14 -> c15 -> ...`}},
		{"empty permission", func(ts []Tenant) { ts[0].Roles["member"] = Role{Permissions: []string{""}} }, ValidateOptions{}, []string{`roles.member.permissions[0] "": empty`}},
		{"permission with comma", func(ts []Tenant) { ts[0].Roles["member"] = Role{Permissions: []string{"a,b"}} }, ValidateOptions{}, []string{`roles.member.permissions[0] "a,b"`}},
		{"permission with space", func(ts []Tenant) { ts[0].Roles["member"] = Role{Permissions: []string{"a b"}} }, ValidateOptions{}, []string{`roles.member.permissions[0] "a b"`}},
		{"permission non-ASCII", func(ts []Tenant) { ts[0].Roles["member"] = Role{Permissions: []string{"dóc"}} }, ValidateOptions{}, []string{`roles.member.permissions[0]`}},
		{"rule path relative", func(ts []Tenant) { ts[0].Rules[0].Path = "public/" }, ValidateOptions{}, []string{`rules[0].path "public/": must start with /`}},
		{"rule path missing", func(ts []Tenant) { ts[0].Rules[0].Path = "" }, ValidateOptions{}, []string{`rules[0].path "": missing`}},
		{"rule path dot-dot", func(ts []Tenant) { ts[0].Rules[0].Path = "/public/../admin/" }, ValidateOptions{}, []string{`rules[0].path "/public/../admin/": must not contain . or ..`}},
		{"rule path double slash", func(ts []Tenant) { ts[0].Rules[0].Path = "//public/" }, ValidateOptions{}, []string{`rules[0].path "//public/": must not contain an empty segment`}},
		{"rule path encoded", func(ts []Tenant) { ts[0].Rules[0].Path = "/p%2Fx" }, ValidateOptions{}, []string{`rules[0].path "/p%2Fx"`}},
		{"rule lower-case method", func(ts []Tenant) { ts[0].Rules[1].Methods = []string{"GET", "delete"} }, ValidateOptions{}, []string{`tenant "acme": rules[1].methods[1] "delete": must be an upper-case HTTP method such as GET or POST (methods are case-sensitive)`}},
		{"rule methods empty", func(ts []Tenant) { ts[0].Rules[1].Methods = []string{} }, ValidateOptions{}, []string{`tenant "acme": rules[1].methods: empty (omit methods for a rule that matches every method)`}},
		{"rule method star", func(ts []Tenant) { ts[0].Rules[1].Methods = []string{"*"} }, ValidateOptions{}, []string{`tenant "acme": rules[1].methods[0] "*": not a method`}},
		{"rule method with space", func(ts []Tenant) { ts[0].Rules[1].Methods = []string{"GET POST"} }, ValidateOptions{}, []string{`rules[1].methods[0] "GET POST"`}},
		{"rule bad access", func(ts []Tenant) { ts[0].Rules[0].Access = "public" }, ValidateOptions{}, []string{`rules[0].access "public"`}},
		{"anonymous with permission", func(ts []Tenant) { ts[0].Rules[0].Permission = "x" }, ValidateOptions{}, []string{`rules[0]: an anonymous rule cannot require a permission`}},
		{"rule bad permission", func(ts []Tenant) { ts[0].Rules[1].Permission = "a,b" }, ValidateOptions{}, []string{`rules[1].permission "a,b"`}},
		{"logo over http", func(ts []Tenant) { ts[0].Branding.LogoURL = "http://cdn.acme.test/logo.png" }, ValidateOptions{}, []string{`tenant "acme": branding.logoURL "http://cdn.acme.test/logo.png": must use https`}},
		{"logo data URL", func(ts []Tenant) { ts[0].Branding.LogoURL = "data:image/png;base64,AAAA" }, ValidateOptions{}, []string{`tenant "acme": branding.logoURL "data:image/png;base64,AAAA": must be an absolute https:// URL`}},
		{"logo javascript", func(ts []Tenant) { ts[0].Branding.LogoURL = "javascript:alert(1)" }, ValidateOptions{}, []string{`branding.logoURL "javascript:alert(1)": must be an absolute`}},
		{"logo relative", func(ts []Tenant) { ts[0].Branding.LogoURL = "/logo.png" }, ValidateOptions{}, []string{`branding.logoURL "/logo.png": must be an absolute`}},
		{"logo scheme-relative", func(ts []Tenant) { ts[0].Branding.LogoURL = "//cdn.acme.test/logo.png" }, ValidateOptions{}, []string{`branding.logoURL "//cdn.acme.test/logo.png": must be an absolute`}},
		{"logo userinfo", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://u:p@cdn.acme.test/l.png" }, ValidateOptions{}, []string{`branding.logoURL "https://u:p@cdn.acme.test/l.png": must not contain a user name`}},
		{"logo fragment", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://cdn.acme.test/l.svg#x" }, ValidateOptions{}, []string{`: must not contain a fragment`}},
		{"logo IP host", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://203.0.113.7/l.png" }, ValidateOptions{}, []string{`: host must be a domain name`}},
		{"logo IPv6 host", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://[2001:db8::1]/l.png" }, ValidateOptions{}, []string{`: host must be a domain name`}},
		{"logo bad port", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://cdn.acme.test:99999/l.png" }, ValidateOptions{}, []string{`: port must be`}},
		{"logo space", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://cdn.acme.test/my logo.png" }, ValidateOptions{}, []string{`: contains a character not allowed`}},
		{"logo CSP breaker", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://cdn.acme.test;script-src *" }, ValidateOptions{}, []string{`branding.logoURL`}},
		{"logo quote", func(ts []Tenant) { ts[0].Branding.LogoURL = `https://cdn.acme.test/"><script>` }, ValidateOptions{}, []string{`: contains a character not allowed`}},
		{"logo backslash", func(ts []Tenant) { ts[0].Branding.LogoURL = `https://evil.test\.cdn.acme.test/l.png` }, ValidateOptions{}, []string{`: contains a character not allowed`}},
		{"logo non-ASCII", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://bücher.test/l.png" }, ValidateOptions{}, []string{`: contains a character not allowed`}},
		{"logo too long", func(ts []Tenant) { ts[0].Branding.LogoURL = "https://cdn.acme.test/" + strings.Repeat("a", 2048) }, ValidateOptions{}, []string{`tenant "acme": branding.logoURL: longer than 2048 bytes`}},
		{"accent name", func(ts []Tenant) { ts[0].Branding.AccentColor = "blue" }, ValidateOptions{}, []string{`tenant "acme": branding.accentColor "blue": must be #rgb or #rrggbb`}},
		{"accent without hash", func(ts []Tenant) { ts[0].Branding.AccentColor = "0a66c2" }, ValidateOptions{}, []string{`branding.accentColor "0a66c2": must be`}},
		{"accent four digits", func(ts []Tenant) { ts[0].Branding.AccentColor = "#0a6f" }, ValidateOptions{}, []string{`branding.accentColor "#0a6f": must be`}},
		{"accent with alpha", func(ts []Tenant) { ts[0].Branding.AccentColor = "#0a66c280" }, ValidateOptions{}, []string{`branding.accentColor "#0a66c280": must be`}},
		{"accent not hex", func(ts []Tenant) { ts[0].Branding.AccentColor = "#0g66c2" }, ValidateOptions{}, []string{`branding.accentColor "#0g66c2": must be`}},
		{"accent CSS injection", func(ts []Tenant) { ts[0].Branding.AccentColor = "#fff}body{display:none" }, ValidateOptions{}, []string{`branding.accentColor`}},
		{"both branding fields", func(ts []Tenant) { ts[1].Branding = Branding{LogoURL: "ftp://x.test/l", AccentColor: "red"} }, ValidateOptions{}, []string{`tenant "globex": branding.logoURL "ftp://x.test/l": must use https`, `tenant "globex": branding.accentColor "red"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := []Tenant{good("acme"), good("globex")}
			tc.edit(ts)
			err := Validate(ts, testOpts(tc.opts))
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestValidateJoinsAllErrors(t *testing.T) {
	// The CLI test's bad file: every problem at once.
	ts := []Tenant{
		{ID: "acme", Domains: []string{"bad..host"}, Methods: []Method{{Type: "sso"}},
			Roles: map[string]Role{"a": {Inherits: []string{"b"}}, "b": {Inherits: []string{"a"}}}},
		{ID: "acme", Methods: []Method{{Type: MethodPassword}}},
	}
	err := Validate(ts, testOpts(ValidateOptions{}))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`tenant "acme": methods[0].url: missing`,
		`tenant "acme": methods[0].clientID: missing`,
		`tenant "acme": roles: inheritance cycle a -> b -> a`,
		`tenant "acme": domains[0] "bad..host": not a valid host name`,
		`tenant "acme": id: duplicate id (tenants[0] and tenants[1])`,
	}
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
			t.Errorf("missing %q in\n%s", w, err)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d problems reported, want %d:\n%s", len(lines), len(want), err)
	}
}

func TestValidateLoopbackIDP(t *testing.T) {
	for _, tc := range []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"http://127.0.0.1:8080/realms/acme", true, true},
		{"http://127.0.0.2:8080/realms/acme", true, true},
		{"http://localhost:8080/realms/acme", true, true},
		{"http://LOCALHOST:8080/realms/acme", true, true},
		{"http://[::1]:8080/realms/acme", true, true},
		{"https://127.0.0.1:8443/realms/acme", true, true},
		{"http://127.0.0.1:8080/realms/acme", false, false},
		{"http://localhost:8080/", false, false},
		{"http://[::1]:8080/", false, false},
		{"http://idp.example/", true, false},
		{"http://169.254.169.254/", true, false},
		{"http://192.168.1.1/", true, false},
		{"http://127.0.0.1:0/", true, false},
		{"http://127.0.0.1:99999/", true, false},
		{"ftp://127.0.0.1/", true, false},
		{"https://idp.example/realms/acme", false, true},
		{"https://idp.example:8443/realms/acme", false, true},
	} {
		ts := []Tenant{{ID: "acme", Methods: []Method{{Type: "sso", Config: mustJSON(ssoConfig{URL: tc.url, ID: "c"})}}}}
		err := Validate(ts, testOpts(ValidateOptions{AllowLoopbackHTTPIDP: tc.allow}))
		if (err == nil) != tc.ok {
			t.Errorf("issuer %q (allow loopback %v): err = %v, want ok %v", tc.url, tc.allow, err, tc.ok)
		}
	}
}

func TestValidateNeverEchoesSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	ts := []Tenant{{ID: "acme", Methods: []Method{
		{Type: MethodPassword, Config: mustJSON(map[string]string{"secret": secret})},
		{Type: "sso", Config: mustJSON(ssoConfig{URL: "http://x", ID: "c", Secret: secret + "\x00"})},
		{Type: "realm", Config: mustJSON(map[string]string{"secret": secret})},
	}}}
	err := Validate(ts, testOpts(ValidateOptions{}))
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error echoes a client secret: %v", err)
	}
}

// numbered is n permissions prefix0, prefix1, ….
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestValidateRoleLimitsAreGenerous: a tenant at every limit is valid.
func TestValidateRoleLimitsAreGenerous(t *testing.T) {
	ten := Tenant{ID: "acme", Methods: []Method{{Type: MethodPassword}}, Roles: map[string]Role{}}
	// A chain of maxInheritDepth steps: c00 -> c01 -> ... -> c16.
	for i := 0; i <= maxInheritDepth; i++ {
		var inh []string
		if i < maxInheritDepth {
			inh = []string{fmt.Sprintf("c%02d", i+1)}
		}
		ten.Roles[fmt.Sprintf("c%02d", i)] = Role{Permissions: numbered(fmt.Sprintf("c%d:", i), 4), Inherits: inh}
	}
	for i := 0; len(ten.Roles) < maxRoles; i++ {
		ten.Roles[fmt.Sprintf("r%03d", i)] = Role{Permissions: numbered(fmt.Sprintf("r%d:", i), 4)}
	}
	ten.Roles["r000"] = Role{Permissions: numbered("wide:", maxRolePermissions)}
	// A role inheriting every other r role, padded to maxRoleInherits.
	var all []string
	for name := range ten.Roles {
		if strings.HasPrefix(name, "r") && name != "r001" {
			all = append(all, name)
		}
	}
	for len(all) < maxRoleInherits {
		all = append(all, "r000")
	}
	ten.Roles["r001"] = Role{Inherits: all}
	if err := Validate([]Tenant{ten}, testOpts(ValidateOptions{})); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}
