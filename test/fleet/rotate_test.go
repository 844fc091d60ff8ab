package fleet_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// kidOf reads the kid of a session token's header (unverified).
func kidOf(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Kid string }
	if err := json.Unmarshal(b, &header); err != nil || header.Kid == "" {
		t.Fatalf("token header %s: no kid", b)
	}
	return header.Kid
}

// jwksKids lists the kids of host's JWKS at r.
func (r *replica) jwksKids(t *testing.T, host string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+r.http+"/_auth/jwks.json", nil)
	req.Host = host
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var set struct{ Keys []struct{ Kid string } }
	if resp.StatusCode != 200 || json.Unmarshal(b, &set) != nil {
		t.Fatalf("%s: JWKS of %s: %d %s", r.name, host, resp.StatusCode, b)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// trySignIn signs in at r and returns the session token, or "" when the
// sign-in fails.
func (r *replica) trySignIn(t *testing.T, host, email, pw string) string {
	t.Helper()
	resp := r.form(t, host, "/_auth/login", nil, url.Values{"email": {email}, "password": {pw}, "rd": {"/"}})
	for _, c := range resp.Cookies() {
		if c.Name == "tenantgate" && c.Value != "" && resp.StatusCode == http.StatusSeeOther {
			return c.Value
		}
	}
	return ""
}

// replaceFile writes content over path atomically (mode 0600), as a
// secret mounted into a pod is updated.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRotationOnEtcd runs the real binary as a fleet of two replicas on
// etcd, each with its own copy of the master key file, and rotates with
// the CLI on the etcd store: `keys rotate` is picked up by both replicas
// without a restart (sessions signed before still pass, sessions signed
// after carry the new kid at either replica, the JWKS lists both keys);
// `master-key rotate` re-seals the store under a new key in one
// transaction, sessions keep passing, and each replica takes up the new
// key once its own key file holds it (a key made under the new master key
// signs there). serve with the old key file then refuses to start.
func TestRotationOnEtcd(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	p := prefix(t)
	store := func(keyFile string) []string {
		return []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-prefix", p,
			"--etcd-ca-file", c.CAFile, "--etcd-cert-file", c.CertFile, "--etcd-key-file", c.KeyFile, "--master-key-file", keyFile}
	}
	cliKey := filepath.Join(dir, "cli.key")
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, store(cliKey)...)...)
		cmd.Env = proc.Env()
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tenantgate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tenantFile := filepath.Join(dir, "acme.yaml")
	if err := os.WriteFile(tenantFile, []byte(fleetTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("", "tenants", "apply", "-f", tenantFile)
	cli("correct-horse-battery\n", "users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin")
	oldKey, err := os.ReadFile(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	keyOne, keyTwo := filepath.Join(dir, "one.key"), filepath.Join(dir, "two.key")
	replaceFile(t, keyOne, oldKey)
	replaceFile(t, keyTwo, oldKey)
	one := startReplica(t, bin, "replica 1", store(keyOne)...)
	two := startReplica(t, bin, "replica 2", store(keyTwo)...)
	replicas := []*replica{one, two}
	const host = "acme.app.test"

	first := one.signIn(t, host, "ann@acme.test", "correct-horse-battery").Value
	k1 := kidOf(t, first)

	var second string
	t.Run("keys rotate", func(t *testing.T) {
		out := cli("", "keys", "rotate", "--tenant", "acme")
		for _, r := range replicas {
			deadline := time.Now().Add(5 * time.Second)
			for kids := r.jwksKids(t, host); len(kids) != 2 || kids[1] != k1; kids = r.jwksKids(t, host) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: JWKS %v five seconds after the rotation, want the new key and %s", r.name, kids, k1)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if a := r.ask(t, host, first); a.status != 200 {
				t.Errorf("%s: session signed before the rotation = %d, want 200", r.name, a.status)
			}
		}
		second = two.signIn(t, host, "ann@acme.test", "correct-horse-battery").Value
		k2 := kidOf(t, second)
		if k2 == k1 || !strings.Contains(out, "new signing key "+k2) {
			t.Fatalf("session signed after the rotation has kid %s (before: %s); the CLI printed %q", k2, k1, out)
		}
		if a := one.ask(t, host, second); a.status != 200 {
			t.Errorf("replica 1: session signed at replica 2 after the rotation = %d, want 200", a.status)
		}
	})

	t.Run("master-key rotate", func(t *testing.T) {
		newKey := filepath.Join(dir, "new.key")
		if out := cli("", "master-key", "rotate", "--new-key-file", newKey); !strings.Contains(out, "re-sealed 1 tenants") {
			t.Errorf("master-key rotate printed %q", out)
		}
		for _, r := range replicas {
			for _, tok := range []string{first, second} {
				if a := r.ask(t, host, tok); a.status != 200 {
					t.Errorf("%s: a session after the master key rotation = %d, want 200", r.name, a.status)
				}
			}
		}
		// The old key no longer opens the store: the CLI now needs the
		// new one, and a new signing key is sealed under it.
		cliKey = newKey
		out := cli("", "keys", "rotate", "--tenant", "acme")
		newContent, err := os.ReadFile(newKey)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range replicas {
			replaceFile(t, []string{keyOne, keyTwo}[i], newContent)
			// Sign-ins are rate limited per account: wait for the replica
			// to say it took the key up, then sign in once.
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(r.proc.Output(), "took up the new key from --master-key-file") {
				if time.Now().After(deadline) {
					t.Fatalf("%s did not take up the new master key within 20s of its key file getting it", r.name)
				}
				time.Sleep(100 * time.Millisecond)
			}
			tok := r.trySignIn(t, host, "ann@acme.test", "correct-horse-battery")
			if tok == "" {
				t.Fatalf("%s cannot sign in after it took up the new master key", r.name)
			}
			if kid := kidOf(t, tok); !strings.Contains(out, "new signing key "+kid) {
				t.Errorf("%s signed with %s, want the key made under the new master key (%q)", r.name, kid, out)
			}
			for _, other := range replicas {
				if a := other.ask(t, host, tok); a.status != 200 {
					t.Errorf("%s: session signed at %s = %d, want 200", other.name, r.name, a.status)
				}
			}
		}
		if a := two.ask(t, host, first); a.status != 200 {
			t.Errorf("the session signed before both rotations = %d, want 200", a.status)
		}
		for _, r := range replicas {
			if log := r.proc.Output(); strings.Contains(log, strings.TrimSpace(string(newContent))) || strings.Contains(log, strings.TrimSpace(string(oldKey))) {
				t.Errorf("%s's log holds a master key", r.name)
			}
		}
	})

	t.Run("old master key refuses to start", func(t *testing.T) {
		old := filepath.Join(dir, "old.key")
		replaceFile(t, old, oldKey)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, store(old)...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = proc.Env()
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil || err == nil {
			t.Fatalf("serve with the old master key: %v (still running after 30s, or exit 0)", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "tenantgate: master key "+old+" does not open") {
			t.Errorf("last line %q, want the one-line master key error", last)
		}
	})
}

// TestResealTooLargeForOneTransaction: a store of more tenants than one
// etcd transaction may rewrite (--max-txn-ops, 128 by default) refuses a
// master key rotation with an error naming the limit, and changes
// nothing: half a rotation would leave a store neither key opens.
func TestResealTooLargeForOneTransaction(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	st := newOpener(t, c).open(t, prefix(t))
	var batch []tenants.Tenant
	for i := range 130 {
		batch = append(batch, tenants.Tenant{ID: fmt.Sprintf("t%03d", i)})
		if len(batch) == 40 || i == 129 {
			if _, err := st.ApplyTenants(t.Context(), batch, testOpts); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	if _, err := st.MasterKeyCheck(t.Context(), []byte("check-old")); err != nil {
		t.Fatal(err)
	}
	before, err := st.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = st.Reseal(t.Context(), tenants.Reseal{
		Tenant: func(tn *tenants.Tenant) error {
			for i := range tn.Keys {
				tn.Keys[i].SealedPrivate = append([]byte("new:"), tn.Keys[i].SealedPrivate...)
			}
			return nil
		},
		Check: func([]byte) ([]byte, error) { return []byte("check-new"), nil },
	})
	if err == nil || !strings.Contains(err.Error(), "raise --max-txn-ops above 131") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("Reseal of 130 tenants = %v, want the --max-txn-ops refusal", err)
	}
	after, err := st.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Error("a refused Reseal changed tenants")
	}
	if got, _ := st.MasterKeyCheck(t.Context(), []byte("other")); string(got) != "check-old" {
		t.Errorf("a refused Reseal changed the check value to %q", got)
	}
}
