package extauthz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
)

// TestCrossOriginGuard is the guard's header table (CONTRACT.md, Check:
// cross_origin): a cookie-authenticated unsafe request is refused when the
// browser says it comes from another origin, and nothing else is.
func TestCrossOriginGuard(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, f.acme, "member")
	umbrella := f.token(t, f.snaps.Load().BySlug("umbrella"), "member")
	globex := f.token(t, f.globex, "member")
	cookie := "__Host-tenantgate=" + acme
	type hdr = map[string]string
	// websocket is a browser's WebSocket handshake with extra headers.
	websocket := func(extra hdr) hdr {
		h := hdr{"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	cases := []struct {
		name, method, scheme, host, path string
		headers                          hdr
		code                             string // "" allowed
	}{
		// Sec-Fetch-Site decides when present.
		{"no headers (not a browser)", "POST", "https", "acme.app.test", "/api", hdr{}, ""},
		{"same-origin", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-origin"}, ""},
		{"none (user-initiated)", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "none"}, ""},
		{"same-site sibling tenant", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site", "origin": "https://globex.app.test"}, "cross_origin"},
		{"cross-site", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site", "origin": "https://evil.test"}, "cross_origin"},
		{"same-site even with our own origin", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site", "origin": "https://acme.app.test"}, "cross_origin"},
		{"unknown sec-fetch-site value", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-origin-ish"}, "cross_origin"},
		{"sec-fetch-site in another case", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "Same-Origin", "origin": "https://globex.app.test"}, "cross_origin"},
		{"sec-fetch-site repeated, joined by Envoy", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-origin,same-site", "origin": "https://globex.app.test"}, "cross_origin"},
		{"sec-fetch-site same-origin twice", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-origin,same-origin"}, "cross_origin"},
		{"PUT cross-site", "PUT", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site"}, "cross_origin"},
		{"PATCH same-site", "PATCH", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site"}, "cross_origin"},
		{"DELETE same-site", "DELETE", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site"}, "cross_origin"},
		{"lower-case post is not a safe method", "post", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site"}, "cross_origin"},
		// Safe methods are never guarded.
		{"GET cross-site", "GET", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site"}, ""},
		{"HEAD cross-site", "HEAD", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site"}, ""},
		{"OPTIONS cross-site", "OPTIONS", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site"}, ""},
		{"TRACE cross-site", "TRACE", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site"}, ""},
		// A WebSocket handshake is a GET, but it opens a two-way channel
		// whose answers the page reads, and browsers attach cookies to it
		// without any CORS check: a sibling tenant's page opening one as
		// the signed-in person is cross-site WebSocket hijacking. It is
		// guarded like an unsafe method.
		{"websocket from a sibling tenant", "GET", "https", "acme.app.test", "/ws", websocket(hdr{"sec-fetch-site": "same-site", "sec-fetch-mode": "websocket", "origin": "https://globex.app.test"}), "cross_origin"},
		{"websocket cross-site", "GET", "https", "acme.app.test", "/ws", websocket(hdr{"sec-fetch-site": "cross-site", "origin": "https://evil.test"}), "cross_origin"},
		{"websocket, a sibling's origin over plain http", "GET", "http", "acme.app.test", "/ws", websocket(hdr{"origin": "http://globex.app.test"}), "cross_origin"},
		{"websocket, the upgrade token in another case, in a list", "GET", "https", "acme.app.test", "/ws", websocket(hdr{"upgrade": "foo, WebSocket", "sec-fetch-site": "same-site", "origin": "https://globex.app.test"}), "cross_origin"},
		{"websocket same-origin", "GET", "https", "acme.app.test", "/ws", websocket(hdr{"sec-fetch-site": "same-origin", "origin": "https://acme.app.test"}), ""},
		{"websocket, our origin over plain http", "GET", "http", "acme.app.test", "/ws", websocket(hdr{"origin": "http://acme.app.test"}), ""},
		{"websocket from a trusted origin", "GET", "https", "acme.app.test", "/ws", websocket(hdr{"sec-fetch-site": "same-site", "origin": "https://admin.acme.test"}), ""},
		{"websocket without browser headers", "GET", "https", "acme.app.test", "/ws", websocket(nil), ""},
		// Without Sec-Fetch-Site (plain http, older browsers): Origin.
		{"origin is ours", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://acme.app.test"}, ""},
		{"origin of a sibling tenant", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://globex.app.test"}, "cross_origin"},
		{"origin null", "POST", "https", "acme.app.test", "/api", hdr{"origin": "null"}, "cross_origin"},
		{"origin garbage", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://acme.app.test/"}, "cross_origin"},
		{"origin repeated, joined by Envoy", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://acme.app.test,https://globex.app.test"}, "cross_origin"},
		{"origin with userinfo", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://globex.app.test@acme.app.test"}, "cross_origin"},
		{"origin of a sibling with our host as a prefix", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://acme.app.test.globex.app.test"}, "cross_origin"},
		{"origin upper-case host", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://ACME.App.Test"}, ""},
		{"request upper-case host", "POST", "https", "ACME.APP.TEST", "/api", hdr{"origin": "https://acme.app.test"}, ""},
		{"origin http, request https", "POST", "https", "acme.app.test", "/api", hdr{"origin": "http://acme.app.test"}, "cross_origin"},
		{"x-forwarded-proto wins over the check's scheme", "POST", "http", "acme.app.test", "/api", hdr{"origin": "https://acme.app.test", "x-forwarded-proto": "https"}, ""},
		{"plain http origin on plain http", "POST", "http", "acme.app.test", "/api", hdr{"origin": "http://acme.app.test"}, ""},
		{"plain http origin, request said https", "POST", "http", "acme.app.test", "/api", hdr{"origin": "http://acme.app.test", "x-forwarded-proto": "https"}, "cross_origin"},
		{"same port in host and origin", "POST", "http", "acme.app.test:8080", "/api", hdr{"origin": "http://acme.app.test:8080"}, ""},
		{"other port than the host's", "POST", "http", "acme.app.test:8080", "/api", hdr{"origin": "http://acme.app.test:8081"}, "cross_origin"},
		{"default port spelled out", "POST", "https", "acme.app.test:443", "/api", hdr{"origin": "https://acme.app.test"}, ""},
		{"default port in the origin", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://acme.app.test:443", "x-forwarded-port": "443"}, ""},
		{"origin port vs the host's default", "POST", "https", "acme.app.test:443", "/api", hdr{"origin": "https://acme.app.test:8443"}, "cross_origin"},
		{"x-forwarded-port when the host has none", "POST", "http", "acme.app.test", "/api", hdr{"origin": "http://acme.app.test:8080", "x-forwarded-port": "8080"}, ""},
		{"x-forwarded-port differs", "POST", "http", "acme.app.test", "/api", hdr{"origin": "http://acme.app.test:8081", "x-forwarded-port": "8080"}, "cross_origin"},
		// Envoy's strip_any_host_port: no port known, host and scheme only.
		{"port unknown: not compared", "POST", "http", "acme.app.test", "/api", hdr{"origin": "http://acme.app.test:8080"}, ""},
		// trustedOrigins.
		{"trusted origin, same-site", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site", "origin": "https://admin.acme.test"}, ""},
		{"trusted origin, cross-site", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site", "origin": "http://localhost:3000"}, ""},
		{"trusted origin without sec-fetch-site", "POST", "https", "acme.app.test", "/api", hdr{"origin": "https://admin.acme.test"}, ""},
		{"trusted origin spelled with its default port", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site", "origin": "https://Admin.Acme.Test:443"}, ""},
		{"subdomain of a trusted origin", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "same-site", "origin": "https://evil.admin.acme.test"}, "cross_origin"},
		{"trusted origin on another port", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site", "origin": "http://localhost:3001"}, "cross_origin"},
		{"cross-site without origin", "POST", "https", "acme.app.test", "/api", hdr{"sec-fetch-site": "cross-site"}, "cross_origin"},
		// Path tenancy: one origin for every tenant of the apex.
		{"path tenant same-origin", "POST", "https", "app.test", "/org/acme/api", hdr{"sec-fetch-site": "same-origin", "cookie": "__Secure-tenantgate.acme=" + acme}, ""},
		{"path tenant origin is the apex", "POST", "https", "app.test", "/org/acme/api", hdr{"origin": "https://app.test", "cookie": "__Secure-tenantgate.acme=" + acme}, ""},
		{"path tenant from a subdomain", "POST", "https", "app.test", "/org/acme/api", hdr{"sec-fetch-site": "same-site", "cookie": "__Secure-tenantgate.acme=" + acme}, "cross_origin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"cookie": cookie}
			for k, v := range tc.headers {
				h[k] = v
			}
			resp := f.checkScheme(t, tc.method, tc.scheme, tc.host, tc.path, h)
			if tc.code == "" {
				wantOK(t, resp)
				return
			}
			wantDenied(t, resp, 403, tc.code)
		})
	}

	t.Run("bearer token is not guarded", func(t *testing.T) {
		wantOK(t, f.checkScheme(t, "POST", "https", "acme.app.test", "/api", map[string]string{
			"authorization": "Bearer " + acme, "sec-fetch-site": "cross-site", "origin": "https://evil.test", "cookie": cookie,
		}))
	})
	t.Run("guard off for the tenant", func(t *testing.T) {
		wantOK(t, f.checkScheme(t, "POST", "https", "umbrella.app.test", "/api", map[string]string{
			"cookie": "__Host-tenantgate=" + umbrella, "sec-fetch-site": "same-site", "origin": "https://globex.app.test",
		}))
	})
	t.Run("a junk bearer token does not let a cookie through unguarded", func(t *testing.T) {
		// With an Authorization header only the bearer token is tried, so
		// the header cannot both skip the guard and leave the cookie to
		// authenticate.
		wantDenied(t, f.checkScheme(t, "POST", "https", "acme.app.test", "/api", map[string]string{
			"authorization": "Bearer junk", "sec-fetch-site": "same-site", "origin": "https://globex.app.test", "cookie": cookie,
		}), 401, "unauthenticated")
	})
	t.Run("no session: unauthenticated, not cross_origin", func(t *testing.T) {
		wantDenied(t, f.checkScheme(t, "POST", "https", "acme.app.test", "/api", map[string]string{"sec-fetch-site": "cross-site"}), 401, "unauthenticated")
	})
	t.Run("another tenant's session: tenant_mismatch first", func(t *testing.T) {
		wantDenied(t, f.checkScheme(t, "POST", "https", "acme.app.test", "/api", map[string]string{
			"cookie": "__Host-tenantgate=" + globex, "sec-fetch-site": "same-site",
		}), 403, "tenant_mismatch")
	})
	t.Run("anonymous rule: no identity to abuse", func(t *testing.T) {
		wantOK(t, f.checkScheme(t, "POST", "https", "acme.app.test", "/public/form", map[string]string{"cookie": cookie, "sec-fetch-site": "cross-site"}))
	})
}

func (f *fixture) checkScheme(t *testing.T, method, scheme, host, path string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	resp, err := f.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Scheme: scheme, Host: host, Path: path, Headers: headers,
		}},
	}})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) && resp.GetOkResponse() == nil {
		t.Fatalf("OK without an OkResponse")
	}
	return resp
}
