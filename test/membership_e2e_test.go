package test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/proc"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestMembershipChangesReachLiveSessions: CONTRACT.md, users add: "a role
// taken away, a membership deleted or a tenant suspended takes effect on the
// next Check for every session already issued" (security catalogue item
// 45). Sessions are signed in through Envoy, the changes made with the
// CLI through a running server's admin API (--server), and the very next
// request through Envoy sees them.
func TestMembershipChangesReachLiveSessions(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte("e2e-admin-token-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startHarness(t, stack.ServeArgs("--admin-token-file", tokenFile))
	acme := "acme." + baseDomain
	admin := func(args ...string) {
		t.Helper()
		proc.Run(t, "", s.Bin, append(args, "--server", s.Admin, "--admin-token-file", tokenFile)...)
	}
	// get sends GET target to acme with the session as a cookie and returns
	// the response and what the upstream saw (nil when it was not reached).
	get := func(sess *http.Cookie, target string, hs ...header) (*response, []string) {
		t.Helper()
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: target, headers: append([]header{cookieHeader(sess), {"Accept", "application/json"}}, hs...)})
		if s.Upstream.Hits() == hits {
			return resp, nil
		}
		return resp, lastUpstream(t, s).Values("x-user-roles")
	}

	carolSession := s.signIn(t, acme, carol)
	if resp, roles := get(carolSession, "/admin/users"); resp.StatusCode != http.StatusOK || !slices.Equal(roles, []string{"admin"}) {
		t.Fatalf("admin before any change: want 200 with x-user-roles admin, got %q\n%s", roles, resp)
	}

	t.Run("a role taken away bites on the next request", func(t *testing.T) {
		admin("users", "add", "--tenant", "acme", "--email", "carol@acme.test", "--role", "member")
		resp, roles := get(carolSession, "/admin/users")
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "forbidden" || roles != nil {
			t.Errorf("demoted admin on /admin/: want 403 forbidden before the upstream, got\n%s", resp)
		}
		resp, roles = get(carolSession, "/docs/1")
		if resp.StatusCode != http.StatusOK || !slices.Equal(roles, []string{"member"}) {
			t.Errorf("demoted admin on /docs/: want 200 with x-user-roles exactly [member], got %q\n%s", roles, resp)
		}
		hits := s.Upstream.Hits()
		resp = s.send(t, request{host: acme, target: "/admin/users", headers: []header{{"Authorization", "Bearer " + carolSession.Value}}})
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "forbidden" {
			t.Errorf("demoted admin's token as bearer on /admin/: want 403 forbidden, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})

	t.Run("a role given shows at once", func(t *testing.T) {
		aliceSession := s.signIn(t, acme, alice)
		if resp, _ := get(aliceSession, "/admin/users"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("member on /admin/: want 403, got\n%s", resp)
		}
		admin("users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "admin", "--role", "member")
		if resp, roles := get(aliceSession, "/admin/users"); resp.StatusCode != http.StatusOK || !slices.Equal(roles, []string{"admin,member"}) {
			t.Errorf("promoted member on /admin/: want 200 with x-user-roles admin,member, got %q\n%s", roles, resp)
		}
	})

	t.Run("a member removed is signed out", func(t *testing.T) {
		admin("users", "delete", "--tenant", "acme", "--email", "carol@acme.test")
		resp, roles := get(carolSession, "/docs/1")
		if resp.StatusCode != http.StatusUnauthorized || resp.errorCode() != "unauthenticated" || roles != nil {
			t.Errorf("removed member: want 401 unauthenticated before the upstream, got\n%s", resp)
		}
		resp, _ = get(carolSession, "/docs/1", header{"Accept", "text/html"})
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/_auth/login?rd=") {
			t.Errorf("removed member, browser: want 302 to the sign-in page, got\n%s", resp)
		}
		// Added back, the old session stays dead: the removal revoked it.
		admin("users", "add", "--tenant", "acme", "--email", "carol@acme.test", "--role", "admin")
		if resp, _ := get(carolSession, "/docs/1"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("removed then added back: the old session is live again:\n%s", resp)
		}
	})

	t.Run("a suspended tenant refuses every session", func(t *testing.T) {
		bobSession := s.signIn(t, acme, bob)
		if resp, _ := get(bobSession, "/docs/1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("bob before suspension: want 200, got\n%s", resp)
		}
		suspended := strings.Replace(tenantFile, "name: Acme Corp\n", "name: Acme Corp\n    status: suspended\n", 1)
		file := filepath.Join(t.TempDir(), "tenants.yaml")
		if err := os.WriteFile(file, []byte(suspended), 0o600); err != nil {
			t.Fatal(err)
		}
		admin("tenants", "apply", "-f", file)
		resp, roles := get(bobSession, "/docs/1")
		if resp.StatusCode != http.StatusForbidden || resp.errorCode() != "tenant_suspended" || roles != nil {
			t.Errorf("session of a suspended tenant: want 403 tenant_suspended before the upstream, got\n%s", resp)
		}
	})
}
