package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

func auditList(t *testing.T, c *cli, args ...string) []tenants.AuditEvent {
	t.Helper()
	out := c.mustRun("", append([]string{"audit", "list", "-o", "json"}, args...)...)
	var evs []tenants.AuditEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("audit list -o json: %v: %s", err, out)
	}
	return evs
}

// TestAuditAdminChanges: every change the tenants and users commands make
// is an event of the tenant's trail, by "cli" with --db and "admin-api"
// with --server; an apply names the fields it changed and never a secret;
// audit list filters by event and audit verify finds the chain intact.
func TestAuditAdminChanges(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		actor := tenants.ActorCLI
		if slices.Contains(c.target, "--server") {
			actor = tenants.ActorAdminAPI
		}
		file := c.writeFile("t.yaml", twoTenants)
		c.mustRun("", "tenants", "apply", "-f", file)
		c.mustRun("Correct-Horse-9\n", "users", "add", "--tenant", "acme", "--email", "Ann@Acme.test", "--role", "member", "--password-stdin")
		c.mustRun("", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "admin")
		c.mustRun("", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "admin") // no change: no event
		c.mustRun("", "users", "delete", "--tenant", "acme", "--email", "ann@acme.test")
		changed := strings.Replace(strings.Replace(twoTenants, "name: Acme Corp", "name: Acme Inc", 1), "s3cr3t-do-not-print", "an0ther-s3cr3t-do-not-print", 1)
		c.mustRun("", "tenants", "apply", "-f", c.writeFile("t2.yaml", changed))
		c.mustRun("", "tenants", "delete", "globex")

		evs := auditList(t, c, "--tenant", "acme")
		type row struct {
			event, email, changes, roles string
		}
		var got []row
		for _, e := range evs {
			got = append(got, row{e.Event, e.Email, strings.Join(e.Changes, ","), strings.Join(e.Roles, ",")})
			if e.Actor != actor || e.Outcome != tenants.OutcomeSuccess {
				t.Errorf("event %d %s: actor %q outcome %q, want %q success", e.Seq, e.Event, e.Actor, e.Outcome, actor)
			}
		}
		want := []row{
			{tenants.AuditTenantApplied, "", "created", ""},
			{tenants.AuditUserAdded, "ann@acme.test", "", "member"},
			{tenants.AuditRolesChanged, "ann@acme.test", "", "admin"},
			{tenants.AuditUserRemoved, "ann@acme.test", "", ""},
			{tenants.AuditTenantApplied, "", "methods,name", ""},
		}
		if !slices.Equal(got, want) {
			t.Errorf("acme's trail:\n got %+v\nwant %+v", got, want)
		}
		globex := auditList(t, c, "--tenant", "globex", "--event", tenants.AuditTenantDeleted)
		if len(globex) != 1 || globex[0].Subject != "globex" {
			t.Errorf("globex's deletion: %+v", globex)
		}
		table := c.mustRun("", "audit", "list", "--tenant", "acme", "--since", "1h")
		if !strings.Contains(table, "user_added") || strings.Contains(table, "s3cr3t") {
			t.Errorf("audit list table:\n%s", table)
		}
		if n := len(auditList(t, c, "--tenant", "acme", "--event", tenants.AuditUserAdded)); n != 1 {
			t.Errorf("--event user_added: %d events", n)
		}
		if out := c.mustRun("", "audit", "verify", "--tenant", "acme"); !strings.Contains(out, "ok: tenant acme: 5 audit events, 1 to 5") {
			t.Errorf("audit verify: %q", out)
		}
		if code, _, errs := c.run("", "audit", "list", "--tenant", "acme", "--event", "nosuch"); code == 0 || !strings.Contains(errs, "no such audit event") {
			t.Errorf("--event nosuch: exit %d: %s", code, errs)
		}
	})
}

// TestAuditVerifyNamesTampering: an event changed in the database file
// makes audit verify exit 1 naming it.
func TestAuditVerifyNamesTampering(t *testing.T) {
	c := newCLI(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	c.mustRun("Correct-Horse-9\n", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin")
	c.mustRun("", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "admin")
	db, err := bolt.Open(c.db, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		key := []byte("acme/00000000000000000002")
		return b.Put(key, []byte(strings.Replace(string(b.Get(key)), `"member"`, `"admin"`, 1)))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := c.run("", "audit", "verify", "--tenant", "acme")
	if code == 0 || !strings.Contains(errs, "broken at event 2") {
		t.Fatalf("verify of a changed event: exit %d: %s", code, errs)
	}
}

// TestAuditSignInThroughServer: a password sign-in to a running server is
// in `audit list --server`, and in the --audit-log file as a JSON line.
func TestAuditSignInThroughServer(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "audit.jsonl")
	ts := startServer(t, true, "--audit-log", logFile)
	c := ts.cli(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	c.mustRun("Correct-Horse-9\n", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin")
	signIn(t, ts, "acme.app.test", "ann@acme.test", "Correct-Horse-9")

	evs := auditList(t, c, "--tenant", "acme", "--event", tenants.AuditSignIn)
	if len(evs) != 1 || evs[0].Outcome != tenants.OutcomeSuccess || evs[0].Email != "ann@acme.test" || evs[0].Method != "password" || evs[0].Client == "" {
		t.Fatalf("sign-in events: %+v", evs)
	}
	resp, body := ts.do(http.MethodGet, "/admin/v1/tenants/acme/audit?event=signin&since=1h", "", ts.bearer())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"event":"signin"`) {
		t.Fatalf("GET audit: %d %s", resp.StatusCode, body)
	}
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(logFile)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("--audit-log file mode %v, want 0600", fi.Mode().Perm())
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var last tenants.AuditEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Event != tenants.AuditSignIn || last.Hash != evs[0].Hash {
		t.Fatalf("--audit-log's last line %q (%v), want the sign-in with hash %s", lines[len(lines)-1], err, evs[0].Hash)
	}
	if strings.Contains(string(data), "Correct-Horse-9") || strings.Contains(string(data), "s3cr3t") {
		t.Fatal("--audit-log holds a password or secret")
	}
	if out := c.mustRun("", "audit", "verify", "--tenant", "acme"); !strings.Contains(out, "ok: tenant acme") {
		t.Errorf("audit verify --server: %q", out)
	}
}

// TestUsersResetMFA: users reset-mfa, with --db and through the admin
// API, clears a member's second factors in one tenant (TOTP, recovery
// codes and passkeys), records mfa_reset naming the member, and refuses an
// address that is no member there.
func TestUsersResetMFA(t *testing.T) {
	eachMode(t, func(t *testing.T, c *cli) {
		c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
		c.mustRun("Correct-Horse-9\n", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin")
		factors := c.withStore(func(st *boltstore.Store, acme, ann string) {
			if err := st.UpdateSecondFactors(t.Context(), acme, ann, func(f *tenants.SecondFactors) error {
				f.TOTP, f.RecoveryCodes = []byte("sealed"), []string{"hash"}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"cred-1", "cred-2"} {
				if err := st.AddPasskey(t.Context(), acme, ann, tenants.Passkey{ID: []byte(id), PublicKey: []byte("cose"), Name: id, Created: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
		})
		out := c.mustRun("", "users", "reset-mfa", "--tenant", "acme", "--email", "Ann@Acme.test")
		if factors {
			c.withStore(func(st *boltstore.Store, acme, ann string) {
				f, err := st.SecondFactors(t.Context(), acme, ann)
				ps, err2 := st.Passkeys(t.Context(), acme, ann)
				if err != nil || err2 != nil || f.Enrolled() || len(f.RecoveryCodes) != 0 || len(ps) != 0 {
					t.Errorf("after reset-mfa: factors %+v (%v), passkeys %d (%v)", f, err, len(ps), err2)
				}
			})
		}
		if !strings.Contains(out, "removed the second factors of ann@acme.test in tenant acme") {
			t.Errorf("reset-mfa printed %q", out)
		}
		evs := auditList(t, c, "--tenant", "acme", "--event", tenants.AuditMFAReset)
		if len(evs) != 1 || evs[0].Email != "ann@acme.test" || evs[0].Subject == "" {
			t.Errorf("mfa_reset events %+v", evs)
		}
		code, _, stderr := c.run("", "users", "reset-mfa", "--tenant", "globex", "--email", "ann@acme.test")
		if code == 0 || !strings.Contains(stderr, "not a member of tenant") {
			t.Errorf("reset-mfa of a non-member: exit %d, %q", code, stderr)
		}
	})
}

// withStore runs f on the --db store of a db-mode cli with the internal
// ids of tenant acme and ann@acme.test, and reports whether it ran (not
// in server mode, whose store is the server's).
func (c *cli) withStore(f func(st *boltstore.Store, acme, ann string)) bool {
	c.t.Helper()
	if c.db == "" || !slices.Contains(c.target, "--db") {
		return false
	}
	st, err := boltstore.Open(c.db, boltstore.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	acme, err := st.Tenant(c.t.Context(), "acme")
	if err != nil {
		c.t.Fatal(err)
	}
	ann, err := st.UserByEmail(c.t.Context(), "ann@acme.test")
	if err != nil {
		c.t.Fatal(err)
	}
	f(st, acme.InternalID, ann.ID)
	return true
}
