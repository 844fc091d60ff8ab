package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samlTenantFile is a tenant file of globex, whose saml method (at methods
// index at, after a password method when at is 1) has the given extra
// lines, and with umbrella of a second tenant that the same batch creates.
func samlTenantFile(at int, extra string, umbrella bool) string {
	saml := "      - type: saml\n        idpMetadataURL: https://idp.example/saml/descriptor\n" + extra
	methods := "      - type: password\n" + saml
	if at == 0 {
		methods = saml + "      - type: password\n"
	}
	file := "tenants:\n  - id: globex\n    methods:\n" + methods + "    roles: {member: {permissions: [\"docs:read\"]}}\n"
	if umbrella {
		file += "  - id: umbrella\n    methods:\n      - type: password\n"
	}
	return file
}

// TestTenantsApplyNameIDFormatChange: re-applying a saml method whose
// file leaves nameIDFormat out (persistent) onto one stored with another
// format is refused, naming the tenant, the field and both ways out, and
// nothing of the batch is written; a change the file states is applied
// with a warning that it re-keys the accounts. Through --db and --server.
func TestTenantsApplyNameIDFormatChange(t *testing.T) {
	const unspecified = "        nameIDFormat: unspecified\n"
	const refusal = `tenant "globex": methods[%d].nameIDFormat: stored as unspecified (accounts are keyed by it); ` +
		`write nameIDFormat: unspecified to keep it, or nameIDFormat: persistent to re-key every account`
	for _, tc := range []struct {
		name          string
		stored, next  string
		nextAt        int
		refused       string // the error line, "" when applied
		rekey         bool   // a re-keying warning
		wantStoredFmt string // nameIDFormat line tenants get prints after ("" none)
	}{
		{name: "unspecified stored, format left out", stored: unspecified, next: "", nextAt: 1,
			refused: strings.Replace(refusal, "%d", "1", 1), wantStoredFmt: "unspecified"},
		{name: "unspecified stored, saml moved and format left out", stored: unspecified, next: "", nextAt: 0,
			refused: strings.Replace(refusal, "%d", "0", 1), wantStoredFmt: "unspecified"},
		{name: "unspecified stored, unspecified kept", stored: unspecified, next: unspecified, nextAt: 1, wantStoredFmt: "unspecified"},
		{name: "unspecified stored, persistent stated", stored: unspecified, next: "        nameIDFormat: persistent\n", nextAt: 1,
			rekey: true, wantStoredFmt: "persistent"},
		{name: "persistent by default, left out again", stored: "", next: "", nextAt: 1},
		{name: "persistent stated, left out", stored: "        nameIDFormat: persistent\n", next: "", nextAt: 1},
		{name: "persistent by default, unspecified stated", stored: "", next: unspecified, nextAt: 1, rekey: true, wantStoredFmt: "unspecified"},
		{name: "keyed by an attribute, format left out", stored: unspecified + "        subjectAttribute: uid\n",
			next: "        subjectAttribute: uid\n", nextAt: 1},
		{name: "unspecified stored, attribute stated", stored: unspecified, next: "        subjectAttribute: uid\n", nextAt: 1, rekey: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, c *cli) {
				stored := c.writeFile("stored.yaml", samlTenantFile(1, tc.stored, false))
				c.mustRun("", "tenants", "apply", "-f", stored)
				next := c.writeFile("next.yaml", samlTenantFile(tc.nextAt, tc.next, true))
				code, _, errs := c.run("", "tenants", "apply", "-f", next)
				if tc.refused != "" {
					if code == 0 || !strings.Contains(errs, tc.refused) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
						t.Fatalf("apply: exit %d, stderr %q; want one line refusing with %q", code, errs, tc.refused)
					}
					if c, _, _ := c.run("", "tenants", "get", "umbrella"); c == 0 {
						t.Error("the refused batch created umbrella")
					}
				} else if code != 0 {
					t.Fatalf("apply: exit %d: %s", code, errs)
				}
				if got := strings.Contains(errs, "re-keying accounts"); got != tc.rekey {
					t.Errorf("stderr %q: re-keying warning %v, want %v", errs, got, tc.rekey)
				}
				if tc.rekey && !strings.Contains(errs, `tenantgate: warning: tenant "globex" methods[1] (saml): re-keying accounts`) {
					t.Errorf("stderr %q: the warning does not name tenant and method", errs)
				}
				got := c.mustRun("", "tenants", "get", "globex")
				line := "nameIDFormat: " + tc.wantStoredFmt
				if has := strings.Contains(got, "nameIDFormat:"); has != (tc.wantStoredFmt != "") || (has && !strings.Contains(got, line)) {
					t.Errorf("tenants get globex after:\n%s\nwant %q", got, line)
				}
			})
		})
	}
}

// fixtureDir2 is a database, its master key, its tenant file and what
// tenants get printed, written by tenantgate at commit 49e6b0e (schema 2,
// saml methods without nameIDFormat; its README.md says how).
var fixtureDir2 = filepath.Join("..", "..", "tenants", "boltstore", "testdata", "49e6b0e")

// TestUpgradeFrom49e6b0e: the last schema-2 release's database opens with
// this build, its saml methods stating unspecified, the format they had
// (tenants get prints that line more than the release did); re-applying
// the release's tenant file unchanged, as GitOps would, is refused instead
// of silently asking the IdP for persistent NameIDs; stating the format
// applies; and the release's database restored as a backup (a backup file
// is a database file) goes through the same migration.
func TestUpgradeFrom49e6b0e(t *testing.T) {
	c := newCLI(t)
	for from, to := range map[string]string{"tenantgate.db": c.db, "tenantgate.key": c.key} {
		b, err := os.ReadFile(filepath.Join(fixtureDir2, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ id, after string }{
		{"acme", "        emailAttribute: mail\n"},
		{"globex", "        idpMetadataURL: https://idp.globex.example/realms/globex/protocol/saml/descriptor\n"},
		{"initech", ""},
	} {
		b, err := os.ReadFile(filepath.Join(fixtureDir2, tc.id+".get.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		want := string(b)
		if tc.after != "" {
			want = strings.Replace(want, tc.after, tc.after+"        nameIDFormat: unspecified\n", 1)
		}
		if got := c.mustRun("", "tenants", "get", tc.id); got != want {
			t.Errorf("tenants get %s:\n%s\nwant:\n%s", tc.id, got, want)
		}
	}

	file := filepath.Join(fixtureDir2, "tenants.yaml")
	code, _, errs := c.run("", "tenants", "apply", "-f", file)
	if want := `tenant "acme": methods[1].nameIDFormat: stored as unspecified`; code == 0 || !strings.Contains(errs, want) {
		t.Errorf("re-apply of the release's tenant file: exit %d, stderr %q; want a refusal with %q", code, errs, want)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	stated := strings.NewReplacer(
		"        emailAttribute: mail\n", "        emailAttribute: mail\n        nameIDFormat: unspecified\n",
		"        groupsClaim: memberOf\n", "        groupsClaim: memberOf\n        nameIDFormat: unspecified\n",
	).Replace(string(b))
	if code, _, errs := c.run("", "tenants", "apply", "-f", c.writeFile("stated.yaml", stated)); code != 0 || strings.Contains(errs, "re-keying") {
		t.Errorf("apply stating unspecified: exit %d, stderr %q; want applied without a re-keying warning", code, errs)
	}

	// The release's database as a backup file, restored into a new one.
	r := newCLI(t)
	r.key = c.key
	r.target = []string{"--db", r.db, "--master-key-file", r.key}
	in := filepath.Join(t.TempDir(), "backup.db")
	b, err = os.ReadFile(filepath.Join(fixtureDir2, "tenantgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r.mustRun("", "restore", "--in", in, "--db", r.db, "--master-key-file", r.key)
	if got := r.mustRun("", "tenants", "get", "acme"); !strings.Contains(got, "        emailAttribute: mail\n        nameIDFormat: unspecified\n") {
		t.Errorf("tenants get acme of the restored backup:\n%s", got)
	}
	if after, _ := os.ReadFile(in); string(after) != string(b) {
		t.Error("restore changed the backup file")
	}
}
