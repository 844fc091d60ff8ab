package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cli runs tenantgate commands in-process against one database and master
// key (newCLI), or against a running server's admin API (testServer.cli).
type cli struct {
	t *testing.T
	// dir is where writeFile puts files.
	dir     string
	db, key string
	// target is appended to every tenants and users command: --db and
	// --master-key-file, or --server and --admin-token-file.
	target []string
}

func newCLI(t *testing.T) *cli {
	dir := t.TempDir()
	c := &cli{t: t, dir: dir, db: filepath.Join(dir, "tg.db"), key: filepath.Join(dir, "tg.key")}
	c.target = []string{"--db", c.db, "--master-key-file", c.key}
	return c
}

// run executes args (with c.target added to tenants and users commands)
// and returns exit code, stdout and stderr.
func (c *cli) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	if len(args) > 0 && (args[0] == "tenants" || args[0] == "users" || args[0] == "audit") {
		args = append(slices.Clip(args), c.target...)
	}
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// eachMode runs f with a CLI on a fresh database (--db) and with one on a
// fresh running server (--server): the commands must behave alike.
func eachMode(t *testing.T, f func(t *testing.T, c *cli)) {
	t.Run("db", func(t *testing.T) { f(t, newCLI(t)) })
	t.Run("server", func(t *testing.T) { f(t, startServer(t, true).cli(t)) })
}

func (c *cli) mustRun(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	return out
}

func (c *cli) writeFile(name, content string) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

const twoTenants = `
tenants:
  - id: acme
    name: Acme Corp
    domains: [Login.Acme.Test]
    emailDomains: [acme.test]
    methods:
      - type: password
      - type: oidc
        issuer: https://idp.example/realms/acme
        clientID: tenantgate
        clientSecret: s3cr3t-do-not-print
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
  - id: globex
    name: Globex
    methods: [{type: password}]
    roles:
      member: {permissions: ["docs:read"]}
`

func TestTenantsApplyListGetDelete(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		f := c.writeFile("t.yaml", twoTenants)
		out := c.mustRun("", "tenants", "apply", "-f", f)
		if !strings.Contains(out, "tenant acme created") || !strings.Contains(out, "tenant globex created") {
			t.Errorf("apply output %q", out)
		}
		if c.key != "" {
			if info, err := os.Stat(c.key); err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("master key file: %v %v", info, err)
			}
		}
		out = c.mustRun("", "tenants", "apply", "-f", f)
		if !strings.Contains(out, "tenant acme configured") {
			t.Errorf("re-apply output %q", out)
		}

		var rows []map[string]any
		if err := json.Unmarshal([]byte(c.mustRun("", "tenants", "list", "-o", "json")), &rows); err != nil || len(rows) != 2 {
			t.Fatalf("list -o json: %v %v", rows, err)
		}
		if rows[0]["id"] != "acme" || rows[1]["id"] != "globex" {
			t.Errorf("list order %v", rows)
		}

		for _, format := range []string{"yaml", "json"} {
			out = c.mustRun("", "tenants", "get", "acme", "-o", format)
			if strings.Contains(out, "s3cr3t") {
				t.Fatalf("get -o %s printed the client secret", format)
			}
			if !strings.Contains(out, "login.acme.test") {
				t.Errorf("get -o %s: domain not canonical: %s", format, out)
			}
			// The printed tenant applies back unchanged (the secret is kept).
			c.mustRun("", "tenants", "apply", "-f", c.writeFile("back."+format, out))
		}

		c.mustRun("", "tenants", "delete", "globex")
		code, _, errs := c.run("", "tenants", "get", "globex")
		if code == 0 || !strings.Contains(errs, `tenant "globex" not found`) {
			t.Errorf("get deleted: %d %q", code, errs)
		}
	})
}

func TestTenantsApplyIsAllOrNothing(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		bad := `
tenants:
  - id: acme
    methods: [{type: password}]
  - id: Bad_Id
    methods: [{type: password}]
    colour: red
  - id: globex
    emailDomains: [acme.test]
    methods: [{type: oidc}]
`
		code, out, errs := c.run("", "tenants", "apply", "-f", c.writeFile("bad.yaml", bad))
		if code == 0 {
			t.Fatalf("apply of an invalid file succeeded: %s", out)
		}
		if strings.Count(errs, "\n") != 1 {
			t.Errorf("error is not one line: %q", errs)
		}
		out = c.mustRun("", "tenants", "list", "-o", "json")
		if strings.TrimSpace(out) != "[]" {
			t.Errorf("something was written: %s", out)
		}

		// Every problem is reported, each naming the tenant and field.
		bad2 := `
tenants:
  - id: acme
    domains: [bad..host]
    methods: [{type: oidc}]
    roles:
      a: {inherits: [b]}
      b: {inherits: [a]}
  - id: acme
    methods: [{type: password}]
`
		code, _, errs = c.run("", "tenants", "apply", "-f", c.writeFile("bad2.yaml", bad2))
		if code == 0 {
			t.Fatal("invalid file applied")
		}
		for _, want := range []string{"acme", "domains", "issuer", "clientID", "cycle", "duplicate"} {
			if !strings.Contains(strings.ToLower(errs), strings.ToLower(want)) {
				t.Errorf("error %q does not mention %q", errs, want)
			}
		}
	})
}

func TestUsersAddListDelete(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))

		code, _, errs := c.run("", "users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "member")
		if code == 0 || !strings.Contains(errs, "--password-stdin") {
			t.Errorf("new user without password: %d %q", code, errs)
		}
		code, _, errs = c.run("short\n", "users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--password-stdin")
		if code == 0 || strings.Contains(errs, "short") {
			t.Errorf("short password: %d %q", code, errs)
		}
		code, _, errs = c.run("a-long-enough-password\n", "users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "owner", "--password-stdin")
		if code == 0 || !strings.Contains(errs, "owner") {
			t.Errorf("undefined role: %d %q", code, errs)
		}

		out := c.mustRun("a-long-enough-password\n", "users", "add", "--tenant", "acme", "--email", "Alice@Acme.Test", "--role", "member", "--role", "admin", "--password-stdin")
		if !strings.Contains(out, "created user alice@acme.test") || strings.Contains(out, "a-long-enough-password") {
			t.Errorf("add output %q", out)
		}
		out = c.mustRun("ignored-new-password\n", "users", "add", "--tenant", "globex", "--email", "alice@acme.test", "--role", "member", "--password-stdin")
		if !strings.Contains(out, "added existing user") {
			t.Errorf("second tenant output %q", out)
		}

		var rows []struct {
			Email string   `json:"email"`
			Roles []string `json:"roles"`
		}
		if err := json.Unmarshal([]byte(c.mustRun("", "users", "list", "--tenant", "acme", "-o", "json")), &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Email != "alice@acme.test" || strings.Join(rows[0].Roles, ",") != "admin,member" {
			t.Errorf("users list %+v", rows)
		}

		c.mustRun("", "users", "delete", "--tenant", "acme", "--email", "alice@acme.test")
		code, _, errs = c.run("", "users", "delete", "--tenant", "acme", "--email", "alice@acme.test")
		if code == 0 || !strings.Contains(errs, "not a member") {
			t.Errorf("second delete: %d %q", code, errs)
		}
		if out := c.mustRun("", "users", "list", "--tenant", "globex"); !strings.Contains(out, "alice@acme.test") {
			t.Errorf("membership in globex lost: %s", out)
		}
	})
}

func TestErrorsAreOneLineAndNonZero(t *testing.T) {
	c := newCLI(t)
	cases := [][]string{
		{"tenants", "apply"},
		{"tenants", "get"},
		{"tenants", "get", "nope"},
		{"tenants", "list", "-o", "xml"},
		{"users", "add", "--tenant", "acme", "--email", "Victim <a@evil.test>"},
		{"users", "list"},
		{"serve", "--path-prefix", "org"},
		{"serve", "--base-domain", "bad..domain"},
		{"serve", "--tenant-links", "both"},
		{"serve", "--global-session-ttl", "0s"},
		{"serve", "--global-session-ttl", "200h"},
		{"nosuchcommand"},
		{"tenants", "list", "--server", "http://127.0.0.1:1"},
	}
	for _, args := range cases {
		code, _, errs := c.run("", args...)
		if code == 0 {
			t.Errorf("%v: exit 0", args)
		}
		if !strings.HasPrefix(errs, "tenantgate: ") || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: stderr %q is not one line", args, errs)
		}
	}
}

func TestEnvAndConfigFile(t *testing.T) {
	c := newCLI(t)
	t.Setenv("TENANTGATE_PATH_PREFIX", "not-a-prefix")
	code, _, errs := c.run("", "serve")
	if code == 0 || !strings.Contains(errs, "--path-prefix") {
		t.Errorf("env not applied: %d %q", code, errs)
	}
	cfg := c.writeFile("cfg.yaml", "grpc-addr: 127.0.0.1:1\nno-such-flag: 1\n")
	t.Setenv("TENANTGATE_PATH_PREFIX", "")
	os.Unsetenv("TENANTGATE_PATH_PREFIX")
	code, _, errs = c.run("", "serve", "--config", cfg)
	if code == 0 || !strings.Contains(errs, "no-such-flag") {
		t.Errorf("unknown config key: %d %q", code, errs)
	}
}

func TestVersionAndHelp(t *testing.T) {
	c := newCLI(t)
	if out := c.mustRun("", "version"); !strings.HasPrefix(out, "tenantgate ") {
		t.Errorf("version %q", out)
	}
	out := c.mustRun("", "serve", "--help")
	for _, flag := range []string{"--db", "--grpc-addr", "--http-addr", "--admin-addr", "--base-domain", "--path-prefix",
		"--insecure-cookies", "--admin-token-file", "--master-key-file", "--allow-loopback-http-idp", "--config"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help lacks %s", flag)
		}
	}
}

const ssoTenants = `
tenants:
  - id: globex
    methods:
      - type: saml
        idpMetadataXML: '<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/saml"/>'
        groupRoles: {admins: [admin]}
    roles:
      admin: {permissions: ["*"]}
  - id: initech
    methods:
      - type: social
        provider: generic
        clientID: tg
        clientSecret: oauth-s3cr3t-do-not-print
        authURL: http://127.0.0.1:8080/auth
        tokenURL: http://127.0.0.1:8080/token
        userinfoURL: http://127.0.0.1:8080/userinfo
        idField: sub
        emailField: email
`

func TestTenantsApplySSO(t *testing.T) {
	c := newCLI(t)
	f := c.writeFile("sso.yaml", ssoTenants)
	if code, _, errs := c.run("", "tenants", "apply", "-f", f); code == 0 || !strings.Contains(errs, "loopback") {
		t.Fatalf("loopback IdP accepted without --allow-loopback-http-idp (exit %d): %s", code, errs)
	}
	c.mustRun("", "tenants", "apply", "-f", f, "--allow-loopback-http-idp")
	out := c.mustRun("", "tenants", "get", "initech", "-o", "yaml")
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "clientSecret") {
		t.Fatalf("tenants get prints the secret:\n%s", out)
	}
	// What get prints applies again; the stored secret is kept.
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("again.yaml", out), "--allow-loopback-http-idp")

	// A social method that never had a secret is refused.
	noSecret := strings.Replace(ssoTenants, "clientSecret: oauth-s3cr3t-do-not-print", "", 1)
	noSecret = strings.Replace(noSecret, "id: initech", "id: hooli", 1)
	code, _, errs := c.run("", "tenants", "apply", "-f", c.writeFile("nosecret.yaml", noSecret), "--allow-loopback-http-idp")
	if code == 0 || !strings.Contains(errs, "hooli") || !strings.Contains(errs, "clientSecret") {
		t.Errorf("social method without a secret: exit %d: %s", code, errs)
	}
}

// TestTenantsApplyContractExample applies CONTRACT.md's tenant-file example
// exactly as written: it succeeds, warns (on stderr, one line) that the bare
// social method is not offered yet, and never prints the oidc secret.
func TestTenantsApplyContractExample(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		// The same file the tenants package validates.
		f := filepath.Join("..", "..", "tenants", "testdata", "contract-example.yaml")
		code, out, errs := c.run("", "tenants", "apply", "-f", f)
		if code != 0 {
			t.Fatalf("CONTRACT's example: exit %d: %s", code, errs)
		}
		if out != "tenant acme created\n" {
			t.Errorf("stdout = %q", out)
		}
		if !strings.Contains(errs, `warning: tenant "acme" methods[3] (social github) has no clientID`) || strings.Count(errs, "\n") != 1 {
			t.Errorf("stderr = %q: want one warning line about methods[3]", errs)
		}
		got := c.mustRun("", "tenants", "get", "acme", "-o", "yaml")
		if !strings.Contains(got, "provider: github") || strings.Contains(got, "clientSecret") {
			t.Errorf("tenants get:\n%s", got)
		}
	})
}
