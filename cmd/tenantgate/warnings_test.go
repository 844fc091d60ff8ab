package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStartWarnings: per tenant, serve warns about SAML with
// --insecure-cookies and about IdP URLs that need --allow-loopback-http-idp
// when it runs without; a tenant with neither gets no warning, and a
// problem the flag would not clear is not blamed on it.
func TestStartWarnings(t *testing.T) {
	const roles = "    roles: {admin: {permissions: [\"*\"]}, member: {permissions: [\"docs:read\"]}}\n"
	tenant := func(id string, methods ...string) string {
		return "  - id: " + id + "\n    methods:\n" + strings.Join(methods, "") + roles
	}
	const password = "      - type: password\n"
	oidcAt := func(issuer string) string {
		return "      - type: oidc\n        issuer: " + issuer + "\n        clientID: tenantgate\n"
	}
	samlAt := func(u string) string { return "      - type: saml\n        idpMetadataURL: " + u + "\n" }
	const generic = `      - type: social
        provider: generic
        clientID: tg
        clientSecret: s
        authURL: http://127.0.0.1:8180/auth
        tokenURL: http://127.0.0.1:8180/token
        userinfoURL: https://idp.example/userinfo
        idField: sub
        emailField: email
`
	const github = "      - type: social\n        provider: github\n        clientID: tg\n        clientSecret: s\n"
	tests := []struct {
		name            string
		id, tenant      string
		insecure, allow bool
		want            []string // substrings, one warning each; nil: none
		// alsoWant and notWant are in, and not in, the first warning.
		alsoWant, notWant string
	}{
		{name: "password only", id: "plain", tenant: tenant("plain", password), insecure: true},
		{name: "public https IdPs", id: "prod", tenant: tenant("prod", oidcAt("https://idp.example/realms/a"), samlAt("https://idp.example/saml"))},
		{name: "saml with insecure cookies", id: "globex", tenant: tenant("globex", samlAt("https://idp.example/saml")), insecure: true,
			want: []string{"SAML sign-in cannot complete in a browser with --insecure-cookies"}},
		{name: "saml with secure cookies", id: "globex", tenant: tenant("globex", samlAt("https://idp.example/saml"))},
		{name: "loopback oidc without the flag", id: "acme", tenant: tenant("acme", password, oidcAt("http://127.0.0.1:8180/realms/acme")),
			want: []string{`http://127.0.0.1:8180/realms/acme`}, alsoWant: "methods[1]"},
		{name: "loopback oidc with the flag", id: "acme", tenant: tenant("acme", oidcAt("http://127.0.0.1:8180/realms/acme")), allow: true},
		{name: "localhost saml metadata without the flag", id: "globex", tenant: tenant("globex", samlAt("http://localhost:8180/realms/globex/protocol/saml/descriptor")),
			want: []string{`http://localhost:8180/realms/globex/protocol/saml/descriptor`}},
		{name: "both at once", id: "globex", tenant: tenant("globex", samlAt("http://127.0.0.1:8180/d")), insecure: true,
			want: []string{"--insecure-cookies", `http://127.0.0.1:8180/d`}},
		{name: "generic oauth2: only the loopback URLs", id: "initech", tenant: tenant("initech", generic),
			want: []string{`http://127.0.0.1:8180/auth`}, alsoWant: `http://127.0.0.1:8180/token`, notWant: "userinfo"},
		{name: "a problem the flag does not clear", id: "odd", tenant: tenant("odd", oidcAt("http://10.0.0.1/realms/a"))},
		{name: "saml nameIDFormat unspecified", id: "globex", tenant: tenant("globex", password, samlAt("https://idp.example/saml")+"        nameIDFormat: unspecified\n"),
			want: []string{"methods[1] (saml): saml nameIDFormat unspecified"}, alsoWant: "persistent"},
		{name: "saml nameIDFormat unspecified with subjectAttribute", id: "globex",
			tenant: tenant("globex", samlAt("https://idp.example/saml")+"        nameIDFormat: unspecified\n        subjectAttribute: uid\n")},
		{name: "saml nameIDFormat persistent", id: "globex", tenant: tenant("globex", samlAt("https://idp.example/saml")+"        nameIDFormat: persistent\n")},
		{name: "social under mfa: required", id: "initech", tenant: strings.Replace(tenant("initech", password, github), "    methods:", "    mfa: required\n    methods:", 1),
			want: []string{"methods[1] (social): refuses every sign-in"}, alsoWant: "requireMFA: false"},
		{name: "social exempt under mfa: required", id: "initech",
			tenant: strings.Replace(tenant("initech", password, github+"        requireMFA: false\n"), "    methods:", "    mfa: required\n    methods:", 1)},
		{name: "social under mfa: optional", id: "initech", tenant: strings.Replace(tenant("initech", github), "    methods:", "    mfa: optional\n    methods:", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := parseFile([]byte("tenants:\n" + tc.tenant))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got := startWarnings(ts, methodTypes(), tc.insecure, tc.allow)
			if len(got) != len(tc.want) {
				t.Fatalf("%d warnings, want %d: %+v", len(got), len(tc.want), got)
			}
			if len(got) > 0 && (!strings.Contains(got[0].msg, tc.alsoWant) || tc.notWant != "" && strings.Contains(got[0].msg, tc.notWant)) {
				t.Errorf("warning %q: want %q in it and %q not", got[0].msg, tc.alsoWant, tc.notWant)
			}
			for i, w := range got {
				if w.tenant != tc.id || !strings.Contains(w.msg, tc.want[i]) {
					t.Errorf("warning %d = %+v; want tenant %s and %q", i, w, tc.id, tc.want[i])
				}
				if strings.Contains(tc.want[i], "http://") && !strings.Contains(w.msg, "--allow-loopback-http-idp") {
					t.Errorf("warning does not name the flag: %s", w.msg)
				}
			}
		})
	}
}

// TestServeWarnsAtStart: `serve` logs the start warnings, one JSON line per
// tenant and problem, and the SAML metadata fetch it then refuses says
// which flag it lacks, as the OIDC error does.
func TestServeWarnsAtStart(t *testing.T) {
	c := newCLI(t)
	file := c.writeFile("t.yaml", `
tenants:
  - id: acme
    methods:
      - type: password
      - type: oidc
        issuer: http://127.0.0.1:9/realms/acme
        clientID: tenantgate
    roles: {member: {permissions: ["docs:read"]}}
  - id: globex
    methods:
      - type: saml
        idpMetadataURL: http://127.0.0.1:9/realms/globex/protocol/saml/descriptor
    roles: {member: {permissions: ["docs:read"]}}
  - id: plain
    methods: [{type: password}]
    roles: {member: {permissions: ["docs:read"]}}
  - id: umbrella
    methods:
      - type: saml
        idpMetadataURL: https://idp.example/saml/descriptor
        nameIDFormat: unspecified
    roles: {member: {permissions: ["docs:read"]}}
`)
	c.mustRun("", "tenants", "apply", "-f", file, "--allow-loopback-http-idp")

	// startServer passes --insecure-cookies; without --allow-loopback-http-idp.
	s := startServer(t, false, "--db", c.db, "--master-key-file", c.key)
	warnings := map[string][]string{}
	for l := range strings.Lines(s.logs.String()) {
		var line struct{ Level, Msg, Tenant string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Level == "WARN" && line.Tenant != "" {
			warnings[line.Tenant] = append(warnings[line.Tenant], line.Msg)
		}
	}
	want := map[string][]string{
		"acme":   {`issuer "http://127.0.0.1:9/realms/acme"`},
		"globex": {"--insecure-cookies", `idpMetadataURL "http://127.0.0.1:9/realms/globex/protocol/saml/descriptor"`},
		// The same warning tenants apply printed, then --insecure-cookies.
		"umbrella": {"methods[0] (saml): saml nameIDFormat unspecified", "--insecure-cookies"},
	}
	if len(warnings) != len(want) {
		t.Errorf("warnings for %d tenants, want %d: %v", len(warnings), len(want), warnings)
	}
	for id, subs := range want {
		if len(warnings[id]) != len(subs) {
			t.Errorf("tenant %s: %d warnings, want %d: %q", id, len(warnings[id]), len(subs), warnings[id])
			continue
		}
		for i, sub := range subs {
			if !strings.Contains(warnings[id][i], sub) {
				t.Errorf("tenant %s warning %d = %q, want %q", id, i, warnings[id][i], sub)
			}
		}
	}

	// The SAML method's metadata fetch is refused; its log line names the
	// flag.
	req, err := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+"/_auth/saml/metadata", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "globex.app.test"
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("SAML metadata: %d, want 503", resp.StatusCode)
	}
	var found bool
	for l := range strings.Lines(s.logs.String()) {
		var line struct{ Msg, Tenant, Err string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "sign-in method unavailable" && line.Tenant == "globex" {
			found = true
			if !strings.Contains(line.Err, "--allow-loopback-http-idp") {
				t.Errorf("the SAML metadata error does not name the flag: %s", line.Err)
			}
		}
	}
	if !found {
		t.Errorf("no 'sign-in method unavailable' line for globex:\n%s", s.logs)
	}
}

// TestTenantsApplyWarnsNameIDUnspecified: a saml method keyed by an
// unspecified NameID is applied (exit 0) with one warning line on stderr
// naming the tenant and the method, through the store and through a
// server alike; persistent, and unspecified with subjectAttribute, get none.
func TestTenantsApplyWarnsNameIDUnspecified(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		file := c.writeFile("t.yaml", `
tenants:
  - id: globex
    methods:
      - type: password
      - type: saml
        idpMetadataURL: https://idp.example/saml/descriptor
        nameIDFormat: unspecified
    roles: {member: {permissions: ["docs:read"]}}
  - id: umbrella
    methods:
      - type: saml
        idpMetadataURL: https://idp.example/saml/descriptor
        nameIDFormat: unspecified
        subjectAttribute: uid
    roles: {member: {permissions: ["docs:read"]}}
  - id: initech
    methods:
      - type: saml
        idpMetadataURL: https://idp.example/saml/descriptor
    roles: {member: {permissions: ["docs:read"]}}
`)
		code, out, errs := c.run("", "tenants", "apply", "-f", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "tenant globex created") {
			t.Errorf("stdout = %q", out)
		}
		if !strings.HasPrefix(errs, `tenantgate: warning: tenant "globex" methods[1] (saml): saml nameIDFormat unspecified`) ||
			strings.Count(errs, "\n") != 1 {
			t.Errorf("stderr = %q: want one warning line about globex methods[1]", errs)
		}
	})
}
