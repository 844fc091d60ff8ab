package test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestKeyRotationThroughEnvoy: issue 10, key rotation, end to end through
// the real Envoy and binary. A session signed in before `keys rotate` keeps
// reaching the app, a sign-in after it carries the new kid, and the
// tenant's JWKS (fetched through Envoy) lists both keys; after `master-key
// rotate` through the running server, every one of those sessions still
// reaches the app and a new sign-in still works, without a restart.
func TestKeyRotationThroughEnvoy(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte("e2e-admin-token-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startHarness(t, stack.ServeArgs("--admin-token-file", tokenFile))
	acme := "acme." + baseDomain
	admin := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(s.Bin, append(args, "--server", s.Admin, "--admin-token-file", tokenFile)...)
		cmd.Env = proc.Env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tenantgate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	reaches := func(sess *http.Cookie) bool {
		t.Helper()
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(sess), {"Accept", "application/json"}}})
		return resp.StatusCode == http.StatusOK && s.Upstream.Hits() == hits+1
	}
	jwks := func() []string {
		t.Helper()
		var set struct{ Keys []struct{ Kid string } }
		s.send(t, request{host: acme, target: "/_auth/jwks.json"}).json(t, &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}

	before := s.signIn(t, acme, carol)
	k1 := sessionKid(t, before)
	out := admin("keys", "rotate", "--tenant", "acme")
	if !reaches(before) {
		t.Fatal("the session signed in before keys rotate no longer reaches the app")
	}
	after := s.signIn(t, acme, carol)
	k2 := sessionKid(t, after)
	if k2 == k1 || !strings.Contains(out, "new signing key "+k2) {
		t.Fatalf("sign-in after the rotation has kid %s (before: %s); keys rotate printed %q", k2, k1, out)
	}
	if !reaches(after) {
		t.Fatal("the session signed in after keys rotate does not reach the app")
	}
	if got := jwks(); !slices.Equal(got, []string{k2, k1}) {
		t.Errorf("JWKS through Envoy = %v, want [%s %s]", got, k2, k1)
	}

	out = admin("master-key", "rotate", "--new-key-file", filepath.Join(dir, "master-2.key"))
	if !strings.Contains(out, "re-sealed") {
		t.Errorf("master-key rotate printed %q", out)
	}
	for name, sess := range map[string]*http.Cookie{"before both rotations": before, "between them": after} {
		if !reaches(sess) {
			t.Errorf("the session signed in %s no longer reaches the app after master-key rotate", name)
		}
	}
	if third := s.signIn(t, acme, carol); !reaches(third) {
		t.Error("a sign-in after master-key rotate does not reach the app")
	}
	if got := jwks(); !slices.Equal(got, []string{k2, k1}) {
		t.Errorf("JWKS after master-key rotate = %v, want it unchanged [%s %s]", got, k2, k1)
	}
}

// sessionKid reads the kid of a session cookie's token header (unverified).
func sessionKid(t *testing.T, c *http.Cookie) string {
	t.Helper()
	h, _, _ := strings.Cut(c.Value, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Kid string }
	if err := json.Unmarshal(b, &header); err != nil || header.Kid == "" {
		t.Fatalf("session header %s: no kid", b)
	}
	return header.Kid
}
