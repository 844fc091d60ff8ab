// Command genseeds writes the committed seed corpora of the tenants fuzz
// targets (testdata/fuzz/<FuzzName>/, in the "go test fuzz v1" format): the
// attacks of the security catalogue that reach hosts, paths and tenant files.
// Run from the repository root:
//
//	go run ./tenants/internal/genseeds
//
// It adds files and never removes any, so corpus entries found by fuzzing
// and committed later stay.
package main

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const dir = "tenants/testdata/fuzz"

var hosts = []string{
	"acme.app.test", "ACME.App.Example.COM", "acme.app.test:443", "acme.app.test:8443",
	"acme.app.test.", "acme.app.test..", "acme.app.test:abc", "acme.app.test:", "acme.app.test:0",
	"acme.app.test:99999", "acme.app.test:+1", "..", ".", "", ":443",
	"acme.app.example.com.evil.test", "evilacme.app.test", "x.acme.app.test", "app.test",
	"127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:443", "[fe80::1%25eth0]", "::1", "[::ffff:127.0.0.1]",
	"user@acme.app.test", "u:p@acme.app.test:443", "\u0430cme.app.test", "\uff41cme.app.test",
	"acme\u3002app.test", "acme\uff0eapp.test", "xn--cme-5cd.app.test", "xn--acme-.app.test", "xn--.test",
	"XN--BCHER-KVA.test", "bücher.test", "BÜCHER.test", "stra\u00dfe.test", "ac\u200dme.test",
	"ac\xffme.test", "acme\x00.app.test", "acme.app.test\r\nx-tenant-id: globex", "acme .app.test",
	"acme%2eapp.test", "acme.app.test/evil", "acme.app.test\\evil", "-acme.app.test", "acme-.app.test",
	"ac_me.app.test", strings.Repeat("a", 63) + ".test", strings.Repeat("a", 64) + ".test",
	strings.Repeat("a.", 127) + "a", strings.Repeat("a.", 127) + "ab",
}

var requests = [][2]string{
	{"acme.app.test", "/"}, {"acme.app.test", "/public/../admin/"}, {"acme.app.test", "/public/%2e%2e/admin/"},
	{"acme.app.test", "/public%2F..%2Fadmin"}, {"acme.app.test", "/%252e%252e/admin"}, {"acme.app.test", "/%c0%ae%c0%ae/"},
	{"acme.app.test", "/admin%3B"}, {"acme.app.test", "/a?next=/../b"}, {"acme.app.test", "/caf%C3%A9"},
	{"app.test", "/org/acme/"}, {"app.test", "/org/acme"}, {"app.test", "/org/acme?x=/org/globex/"},
	{"app.test", "/org/a/../b"}, {"app.test", "/org/a/%2e%2e/b"}, {"app.test", "/org/a%2F..%2Fb"},
	{"app.test", "//org/b"}, {"app.test", "/org//b"}, {"app.test", "/org/a;x/"}, {"app.test", "/org/a%00"},
	{"app.test", "/org/a\x00"}, {"app.test", "/org/a\\..\\b"}, {"app.test", "/org/ACME/"}, {"app.test", "/org/%61cme/"},
	{"app.test", "/org/"}, {"app.test", "/org"}, {"app.test", "/orgx/acme"}, {"app.test", "org/acme"},
	{"app.test", "http://app.test/org/acme"}, {"app.test", "*"}, {"app.test", ""},
	{"login.acme.test:443", "/"}, {"globex.app.test", "/"}, {"acme.eu.app.test", "/"}, {"eu.app.test", "/org/eu/"},
	{"127.0.0.1", "/org/acme/"}, {"[::1]:9000", "/"}, {"acme@globex.app.test", "/"}, {"\u0430cme.app.test", "/"},
	{"acme.app.test.evil.test", "/"}, {"x.acme.app.test", "/"}, {"evilacme.app.test", "/"},
}

var files = []string{
	`tenants:
  - id: acme
    name: Acme Corp
    domains: [login.acme.test]
    emailDomains: [acme.test]
    status: active
    methods:
      - type: password
      - type: oidc
        issuer: https://idp.example/realms/acme
        clientID: tenantgate
        clientSecret: s3cr3t
      - type: saml
        idpMetadataURL: https://idp.example/realms/acme/protocol/saml/descriptor
      - type: social
        provider: github
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, methods: [GET, POST], permission: "admin:access"}
`,
	`{"tenants": [{"id": "acme", "methods": [{"type": "password"}], "roles": {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}}]}`,
	"tenants:\n  - id: acme\n    colour: red\n",
	"tenants:\n  - id: acme\n    InternalID: x\n",
	"tenants: []\n---\ntenants: []\n",
	"tenants:\n  - id: acme\n    id: globex\n",
	"x: &x {id: a}\ntenants: [*x, *x]\n",
	"tenants:\n  - <<: {name: n}\n    id: acme\n",
	"a: &a [x, x]\nb: &b [*a, *a]\ntenants: [{id: a, roles: {r: {permissions: *b}}}]\n",
	"tenants:\n  - id: acme\n    domains: [\"Bad..Host\", \"\uff41cme.test\", \"\u0430cme.test\"]\n    methods: [{type: oidc, issuer: \"http://169.254.169.254/\"}]\n",
	"tenants:\n  - id: acme\n    name: \"a\\x1b[31m\\u2028\"\n    rules: [{path: /a/../b, access: anonymous, permission: x}]\n",
	"tenants: [null, {}, {id: ''}]\n",
	"- id: acme\n",
	"tenants: !!binary aGVsbG8=\n",
	"%YAML 1.2\n---\ntenants: []\n",
}

func main() {
	for _, h := range hosts {
		write("FuzzCanonicalHost", "string("+strconv.Quote(h)+")")
	}
	for _, r := range requests {
		write("FuzzResolve", "string("+strconv.Quote(r[0])+")\nstring("+strconv.Quote(r[1])+")")
	}
	for _, f := range files {
		write("FuzzParseFile", "[]byte("+strconv.Quote(f)+")")
	}
}

func write(target, body string) {
	content := "go test fuzz v1\n" + body + "\n"
	sum := sha256.Sum256([]byte(content))
	path := filepath.Join(dir, target, fmt.Sprintf("seed-%x", sum[:8]))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		log.Fatal(err)
	}
}
