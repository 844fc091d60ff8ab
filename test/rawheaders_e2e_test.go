package test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestEnvoyRawHeaders is issue 7 item 7 through the real Envoy: with
// encode_raw_headers the CheckRequest carries the headers in header_map
// (values in raw_value) and an empty headers map. Sessions must still be
// read there, and every client-sent identity header removed or
// overwritten there, on authenticated and anonymous routes alike. The
// shipped header_mutation strip is taken out, as in a mesh whose sidecars
// have none, so what reaches the app is tenantgate's answer alone.
func TestEnvoyRawHeaders(t *testing.T) {
	s := startHarness(t, stack.EnvoyConfig("envoy.yaml", func(c string) string {
		c = replaceOnce(t, c, "                      validate_mutations: true\n",
			"                      validate_mutations: true\n                      encode_raw_headers: true\n")
		return cutOnce(t, c, "                  # 1. Identity headers are tenantgate's alone.", "                  # 2. Ask tenantgate")
	}))
	acme := "acme." + baseDomain
	session := s.signIn(t, acme, alice)

	t.Run("a session cookie is read, spoofs on an authenticated route go", func(t *testing.T) {
		hits := s.Upstream.Hits()
		hs := append([]header{{"Cookie", "app=1; tenantgate=" + session.Value}, {"Cookie", "b=2"}, {"Accept", "application/json"}}, spoofHeaders...)
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: hs})
		seen := upstreamSaw(t, s, resp, hits)
		wantIdentity(t, seen, "acme", alice.Email, "member")
		// header_map keeps the two Cookie lines apart; the app gets its
		// cookies of both, without the session.
		if got := seen.Values("cookie"); !slices.Equal(got, []string{"app=1; b=2"}) {
			t.Errorf("upstream Cookie %q, want [app=1; b=2]", got)
		}
	})

	t.Run("a bearer token is read", func(t *testing.T) {
		hits := s.Upstream.Hits()
		hs := append([]header{{"Authorization", "Bearer " + session.Value}}, spoofHeaders...)
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: hs})
		wantIdentity(t, upstreamSaw(t, s, resp, hits), "acme", alice.Email, "member")
	})

	t.Run("spoofs on an anonymous route go", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/public/x", headers: spoofHeaders})
		seen := upstreamSaw(t, s, resp, hits)
		if got := seen.Values("x-tenant-id"); !slices.Equal(got, []string{"acme"}) {
			t.Errorf("x-tenant-id = %q, want exactly [acme]", got)
		}
		for name, v := range seen.Headers {
			if strings.HasPrefix(name, "x-user-") || (strings.HasPrefix(name, "x-tenant-") && name != "x-tenant-id") ||
				name == "x-auth-method" || name == "x-auth-mfa" {
				t.Errorf("anonymous request reached the upstream with client-sent %s: %q", name, v)
			}
		}
	})

	t.Run("no session is still no session", func(t *testing.T) {
		hits := s.Upstream.Hits()
		resp := s.send(t, request{host: acme, target: "/docs/1", headers: []header{{"Cookie", "app=1"}}})
		if resp.StatusCode != http.StatusUnauthorized || resp.errorCode() != "unauthenticated" {
			t.Errorf("want 401 unauthenticated, got\n%s", resp)
		}
		noUpstream(t, s, hits)
	})
}

// cutOnce removes the text from the one occurrence of from up to (not
// including) the next occurrence of to, failing the test if either is
// missing or from occurs more than once.
func cutOnce(t *testing.T, s, from, to string) string {
	t.Helper()
	if n := strings.Count(s, from); n != 1 {
		t.Fatalf("envoy config: %d occurrences of %q, want 1", n, from)
	}
	i := strings.Index(s, from)
	j := strings.Index(s[i:], to)
	if j < 0 {
		t.Fatalf("envoy config: no %q after %q", to, from)
	}
	return s[:i] + s[i+j:]
}
