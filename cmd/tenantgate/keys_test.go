package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// runTarget runs a keys or master-key command with c's store flags.
func (c *cli) runTarget(args ...string) (int, string, string) {
	c.t.Helper()
	return c.run("", append(slices.Clip(args), c.target...)...)
}

func (c *cli) mustRunTarget(args ...string) string {
	c.t.Helper()
	code, out, errs := c.runTarget(args...)
	if code != 0 {
		c.t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	return out
}

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

// jwksKids lists the kids of host's JWKS, as served.
func (ts *testServer) jwksKids(t *testing.T, host string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+ts.httpAddr+"/_auth/jwks.json", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var set struct{ Keys []struct{ Kid string } }
	if resp.StatusCode != 200 || json.Unmarshal(b, &set) != nil {
		t.Fatalf("JWKS of %s: %d %s", host, resp.StatusCode, b)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// rotatedLine matches a line of `keys rotate`.
var rotatedLine = regexp.MustCompile(`(?m)^tenant (\S+): new signing key (\S+); older keys verify until (\S+)$`)

// rotated parses `keys rotate` output: tenant → new kid, and the retire
// time of the last line.
func rotated(t *testing.T, out string) (map[string]string, time.Time) {
	t.Helper()
	kids := map[string]string{}
	var retire time.Time
	for _, m := range rotatedLine.FindAllStringSubmatch(out, -1) {
		kids[m[1]] = m[2]
		var err error
		if retire, err = time.Parse(time.RFC3339, m[3]); err != nil {
			t.Fatal(err)
		}
	}
	if len(kids) == 0 {
		t.Fatalf("keys rotate printed %q", out)
	}
	return kids, retire
}

// TestKeysRotateThroughServer: a session signed before `keys rotate` stays
// valid at a running server, a sign-in after carries the new kid, and the
// JWKS lists both; the other tenant is untouched. Past the retire time the
// old keys verify nothing and leave the JWKS on their own.
func TestKeysRotateThroughServer(t *testing.T) {
	ts := startServer(t, true)
	c := ts.cli(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	c.mustRun("correct-horse-battery\n", "users", "add", "--tenant", "acme", "--email", "carol@acme.test", "--role", "admin", "--password-stdin")
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

	before := signIn(t, ts, "acme.app.test", "carol@acme.test", "correct-horse-battery")
	k1 := kidOf(t, before)
	if got := ts.jwksKids(t, "acme.app.test"); !slices.Equal(got, []string{k1}) {
		t.Fatalf("JWKS before rotation = %v, want [%s]", got, k1)
	}
	globex := ts.jwksKids(t, "globex.app.test")

	kids, retire := rotated(t, c.mustRunTarget("keys", "rotate", "--tenant", "acme"))
	k2 := kids["acme"]
	if len(kids) != 1 || k2 == "" || k2 == k1 {
		t.Fatalf("rotated %v, want a new kid for acme alone", kids)
	}
	if d := time.Until(retire); d < defaultRetireAfter-time.Minute || d > defaultRetireAfter {
		t.Errorf("old key retires in %s, want about %s", d, defaultRetireAfter)
	}
	if code, resp := ts.checkHTTP("acme.app.test", "/docs", bearer(before)); code != 200 {
		t.Fatalf("session signed before the rotation: %d %s, want 200", code, resp.GetDeniedResponse().GetBody())
	}
	after := signIn(t, ts, "acme.app.test", "carol@acme.test", "correct-horse-battery")
	if kid := kidOf(t, after); kid != k2 {
		t.Fatalf("session signed after the rotation has kid %s, want the new %s", kid, k2)
	}
	if code, _ := ts.checkHTTP("acme.app.test", "/docs", bearer(after)); code != 200 {
		t.Fatalf("session signed after the rotation: %d, want 200", code)
	}
	if got := ts.jwksKids(t, "acme.app.test"); !slices.Equal(got, []string{k2, k1}) {
		t.Errorf("JWKS after rotation = %v, want [%s %s]", got, k2, k1)
	}
	if got := ts.jwksKids(t, "globex.app.test"); !slices.Equal(got, globex) {
		t.Errorf("globex's JWKS changed with acme's rotation: %v, was %v", got, globex)
	}

	// A rotation that retires the older keys 2s from now: until then both
	// sessions work; from then on neither, without any further write.
	kids, retire = rotated(t, c.mustRunTarget("keys", "rotate", "--tenant", "acme", "--retire-after", "2s"))
	k3 := kids["acme"]
	if got := ts.jwksKids(t, "acme.app.test"); !slices.Equal(got, []string{k3, k2, k1}) {
		t.Errorf("JWKS after the second rotation = %v, want [%s %s %s]", got, k3, k2, k1)
	}
	for _, tok := range []string{before, after} {
		if code, _ := ts.checkHTTP("acme.app.test", "/docs", bearer(tok)); code != 200 {
			t.Fatalf("session before its key retired: %d, want 200", code)
		}
	}
	time.Sleep(time.Until(retire) + time.Second + 100*time.Millisecond) // printed to the second
	for name, tok := range map[string]string{"first": before, "second": after} {
		if code, _ := ts.checkHTTP("acme.app.test", "/docs", bearer(tok)); code != 401 {
			t.Errorf("%s session after its key retired: %d, want 401", name, code)
		}
	}
	if got := ts.jwksKids(t, "acme.app.test"); !slices.Equal(got, []string{k3}) {
		t.Errorf("JWKS after the old keys retired = %v, want [%s]", got, k3)
	}
	third := signIn(t, ts, "acme.app.test", "carol@acme.test", "correct-horse-battery")
	if code, _ := ts.checkHTTP("acme.app.test", "/docs", bearer(third)); code != 200 || kidOf(t, third) != k3 {
		t.Errorf("sign-in after the retirement: %d, kid %s; want 200 with %s", code, kidOf(t, third), k3)
	}
	kids, _ = rotated(t, c.mustRunTarget("keys", "rotate", "--all"))
	if len(kids) != 2 || kids["acme"] == k3 || kids["globex"] == "" {
		t.Errorf("--all through the server rotated %v, want new keys for acme and globex", kids)
	}
	if got := ts.jwksKids(t, "globex.app.test"); len(got) != 2 || got[0] != kids["globex"] {
		t.Errorf("globex's JWKS after --all = %v, want %s first", got, kids["globex"])
	}
	for _, secret := range []string{before, after, third, "correct-horse-battery"} {
		if strings.Contains(ts.logs.String(), secret) {
			t.Error("the server's log holds a session token or password")
		}
	}
}

// TestKeysRotateDB: keys rotate on the database directly, its refusals,
// and --all; a server started on the database afterwards publishes both
// keys of each tenant.
func TestKeysRotateDB(t *testing.T) {
	c := newCLI(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no tenant", []string{"keys", "rotate"}, "needs --tenant ID or --all"},
		{"both", []string{"keys", "rotate", "--tenant", "acme", "--all"}, "needs --tenant ID or --all"},
		{"unknown tenant", []string{"keys", "rotate", "--tenant", "nope"}, `tenant "nope" not found`},
		{"negative retire", []string{"keys", "rotate", "--tenant", "acme", "--retire-after", "-1s"}, "--retire-after -1s: must be between 0"},
		{"retire too late", []string{"keys", "rotate", "--tenant", "acme", "--retire-after", "200h"}, "--retire-after 200h0m0s: must be between 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := c.runTarget(tc.args...)
			if code == 0 || out != "" || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want one line with %q", code, out, errs, tc.want)
			}
		})
	}
	kids, _ := rotated(t, c.mustRunTarget("keys", "rotate", "--all"))
	if len(kids) != 2 || kids["acme"] == "" || kids["globex"] == "" {
		t.Fatalf("--all rotated %v, want acme and globex", kids)
	}
	ts := startServer(t, false, "--db", c.db, "--master-key-file", c.key)
	for id, kid := range kids {
		if got := ts.jwksKids(t, id+".app.test"); len(got) != 2 || got[0] != kid {
			t.Errorf("%s's JWKS = %v, want the new %s first and the old key", id, got, kid)
		}
	}
}

// TestMasterKeyRotateThroughServer: master-key rotate through a running
// server re-seals its store under the new key, writes the key over the
// server's key file and uses it at once: sessions signed before stay
// valid, a key made after is sealed (and opened) under the new key. The
// store then opens with the new key only: the client secret opens with it
// and not with the old one, and serve with the old key file refuses to
// start with the one-line master key error.
func TestMasterKeyRotateThroughServer(t *testing.T) {
	dir := t.TempDir()
	db, key, newKey := filepath.Join(dir, "tg.db"), filepath.Join(dir, "serve.key"), filepath.Join(dir, "new.key")
	var tokens []string
	var oldKey []byte
	t.Run("running server", func(t *testing.T) {
		ts := startServer(t, true, "--db", db, "--master-key-file", key)
		c := ts.cli(t)
		c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
		c.mustRun("correct-horse-battery\n", "users", "add", "--tenant", "acme", "--email", "carol@acme.test", "--role", "admin", "--password-stdin")
		before := signIn(t, ts, "acme.app.test", "carol@acme.test", "correct-horse-battery")
		var err error
		if oldKey, err = os.ReadFile(key); err != nil {
			t.Fatal(err)
		}

		out := c.mustRunTarget("master-key", "rotate", "--new-key-file", newKey)
		if !strings.Contains(out, "re-sealed 2 tenants under the new master key") {
			t.Errorf("master-key rotate printed %q", out)
		}
		created, err := os.ReadFile(newKey)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(newKey); fi.Mode().Perm() != 0o600 {
			t.Errorf("--new-key-file created with mode %04o, want 0600", fi.Mode().Perm())
		}
		if now, _ := os.ReadFile(key); string(now) != string(created) {
			t.Error("the server's --master-key-file does not hold the new key")
		}
		if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
			t.Errorf("the server's key file has mode %04o, want 0600", fi.Mode().Perm())
		}
		if code, resp := ts.checkHTTP("acme.app.test", "/docs", map[string]string{"authorization": "Bearer " + before}); code != 200 {
			t.Fatalf("session signed before the master key rotation: %d %s, want 200", code, resp.GetDeniedResponse().GetBody())
		}
		// A signing key made now is sealed under the new master key: the
		// server signs with it only if it opens with that key.
		kids, _ := rotated(t, c.mustRunTarget("keys", "rotate", "--tenant", "acme"))
		after := signIn(t, ts, "acme.app.test", "carol@acme.test", "correct-horse-battery")
		if kidOf(t, after) != kids["acme"] {
			t.Fatalf("sign-in after both rotations has kid %s, want %s", kidOf(t, after), kids["acme"])
		}
		if code, _ := ts.checkHTTP("acme.app.test", "/docs", map[string]string{"authorization": "Bearer " + after}); code != 200 {
			t.Fatalf("session signed after the master key rotation: %d, want 200", code)
		}
		code, _, errs := c.runTarget("master-key", "rotate", "--new-key-file", newKey)
		if code == 0 || !strings.Contains(errs, "the new master key is the current one") {
			t.Errorf("rotating to the current key: exit %d, %q", code, errs)
		}
		if logs := ts.logs.String(); strings.Contains(logs, strings.TrimSpace(string(created))) || strings.Contains(logs, strings.TrimSpace(string(oldKey))) {
			t.Error("the server's log holds a master key")
		}
		tokens = []string{before, after}
	})
	if t.Failed() {
		return
	}

	st, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acme, err := st.Tenant(t.Context(), "acme")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	newSealer, err := seal.LoadMasterKey(newKey)
	if err != nil {
		t.Fatal(err)
	}
	oldSealer, err := seal.ParseMasterKey(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	oidc := acme.Methods[1]
	if secret, err := signin.OpenClientSecret(newSealer, oidc, "", acme.InternalID); err != nil || secret != "s3cr3t-do-not-print" {
		t.Errorf("the OIDC client secret under the new key: %v", err)
	}
	if _, err := signin.OpenClientSecret(oldSealer, oidc, "", acme.InternalID); err == nil {
		t.Error("the old master key still opens the OIDC client secret")
	}

	old := filepath.Join(dir, "old.key")
	if err := os.WriteFile(old, oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := newCLI(t).run("", "serve", "--db", db, "--master-key-file", old,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	if code == 0 || !strings.HasPrefix(errs, "tenantgate: master key "+old+" does not open") || strings.Count(errs, "\n") != 1 {
		t.Errorf("serve with the old key: exit %d, stderr %q; want the one-line master key error", code, errs)
	}
	ts := startServer(t, false, "--db", db, "--master-key-file", newKey)
	for i, tok := range tokens {
		if code, _ := ts.checkHTTP("acme.app.test", "/docs", map[string]string{"authorization": "Bearer " + tok}); code != 200 {
			t.Errorf("session %d after a restart with the new key: %d, want 200", i, code)
		}
	}
}

// TestMasterKeyRotateDB: master-key rotate on the database directly; its
// refusals; afterwards the old key file is refused and the new one
// accepted, also for a store with no tenant (its check value).
func TestMasterKeyRotateDB(t *testing.T) {
	c := newCLI(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	loose := c.writeFile("loose.key", "")
	os.Chmod(loose, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no new key file", []string{"master-key", "rotate"}, "needs --new-key-file PATH"},
		{"same file", []string{"master-key", "rotate", "--new-key-file", c.key}, "is --master-key-file"},
		{"loose permissions", []string{"master-key", "rotate", "--new-key-file", loose}, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := c.runTarget(tc.args...)
			if code == 0 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, errs, tc.want)
			}
		})
	}
	newKey := filepath.Join(c.dir, "new.key")
	out := c.mustRunTarget("master-key", "rotate", "--new-key-file", newKey)
	if !strings.Contains(out, "re-sealed 2 tenants under the master key in "+newKey) {
		t.Errorf("output %q", out)
	}
	code, _, errs := c.run("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	if code == 0 || !strings.Contains(errs, "does not open") {
		t.Errorf("apply with the old key after the rotation: exit %d, %q", code, errs)
	}
	c.target = []string{"--db", c.db, "--master-key-file", newKey}
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))

	t.Run("empty store", func(t *testing.T) {
		e := newCLI(t)
		newKey := filepath.Join(e.dir, "new.key")
		e.mustRunTarget("master-key", "rotate", "--new-key-file", newKey)
		code, _, errs := e.run("", "tenants", "apply", "-f", e.writeFile("t.yaml", twoTenants))
		if code == 0 || !strings.Contains(errs, "does not open the store's sealed check value") {
			t.Errorf("apply with the old key on a re-sealed empty store: exit %d, %q", code, errs)
		}
		e.target = []string{"--db", e.db, "--master-key-file", newKey}
		e.mustRun("", "tenants", "apply", "-f", e.writeFile("t.yaml", twoTenants))
	})
}

// TestRotationAdminAPI: the rotation endpoints refuse what is not theirs to
// accept, answer errors as the admin API does, and never echo a key.
func TestRotationAdminAPI(t *testing.T) {
	ts := startServer(t, true)
	ts.cli(t).mustRun("", "tenants", "apply", "-f", ts.cli(t).writeFile("t.yaml", twoTenants))
	const garbage = "bm90IGEga2V5IGF0IGFsbCwgbm90IGF0IGFsbA=="
	for _, tc := range []struct {
		name, method, path, body string
		auth                     []string
		status                   int
		code                     string
	}{
		{"no token", "POST", "/admin/v1/master-key/rotate", `{"key":"` + garbage + `"}`, nil, 401, "unauthenticated"},
		{"key of the wrong length", "POST", "/admin/v1/master-key/rotate", `{"key":"` + garbage + `"}`, []string{ts.bearer()}, 400, "bad_request"},
		{"unknown field", "POST", "/admin/v1/master-key/rotate", `{"key":"` + garbage + `","x":1}`, []string{ts.bearer()}, 400, "bad_request"},
		{"no body", "POST", "/admin/v1/master-key/rotate", "", []string{ts.bearer()}, 400, "bad_request"},
		{"GET", "GET", "/admin/v1/master-key/rotate", "", []string{ts.bearer()}, 405, "method_not_allowed"},
		{"unknown tenant", "POST", "/admin/v1/tenants/nope/keys/rotate", "", []string{ts.bearer()}, 404, "not_found"},
		{"bad duration", "POST", "/admin/v1/tenants/acme/keys/rotate", `{"retireAfter":"soon"}`, []string{ts.bearer()}, 400, "bad_request"},
		{"negative duration", "POST", "/admin/v1/keys/rotate", `{"retireAfter":"-1h"}`, []string{ts.bearer()}, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(tc.method, tc.path, tc.body, tc.auth...)
			var e struct{ Error string }
			if resp.StatusCode != tc.status || json.Unmarshal([]byte(body), &e) != nil || e.Error != tc.code {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if strings.Contains(body, garbage) {
				t.Error("the answer echoes the key")
			}
		})
	}
	resp, body := ts.do("POST", "/admin/v1/tenants/acme/keys/rotate", `{"retireAfter":"1h"}`, ts.bearer())
	var done []rotatedKey
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &done) != nil || len(done) != 1 || done[0].Tenant != "acme" ||
		time.Until(done[0].RetireAt) > time.Hour || time.Until(done[0].RetireAt) < 59*time.Minute {
		t.Errorf("rotate acme: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(ts.logs.String(), garbage) {
		t.Error("the server's log holds the key")
	}
}
