package extauthz

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tenantgate/tenantgate/extauthz/cookie"
	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

func TestInlineMatch(t *testing.T) {
	in := &Inline{PathPrefix: "/org"}
	tests := []struct {
		path string
		want bool
	}{
		{"/_auth/login", true},
		{"/_auth/login?rd=%2F", true},
		{"/_auth/", true},
		{"/_auth/saml/acs", true},
		{"/org/acme/_auth/login", true},
		{"/org/acme/_auth/logout?x=1", true},
		{"/_auth", false},
		{"/_authx/login", false},
		{"/_AUTH/login", false},
		{"/", false},
		{"/docs/_auth/login", false},
		{"/org/_auth/login", false},
		{"/org//_auth/login", false},
		{"/org/acme/x/_auth/login", false},
		{"/org/acme?/_auth/", false},
		{"/orgx/acme/_auth/login", false},
		{"/org", false},
		{"/org/acme/_auth", false},
	}
	for _, tc := range tests {
		if got := in.Match(tc.path); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if (&Inline{}).Match("/org/acme/_auth/login") {
		t.Error("without a path prefix, /org/acme/_auth/ is not a sign-in path")
	}
}

// recorder is an http.Handler that keeps the request it was given and
// answers with respond (200 "ok" when nil).
type recorder struct {
	calls   int
	got     *http.Request
	body    []byte
	respond func(w http.ResponseWriter, r *http.Request)
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	h.got = r
	h.body, _ = io.ReadAll(r.Body)
	if h.respond != nil {
		h.respond(w, r)
		return
	}
	io.WriteString(w, "ok")
}

// httpAttrs builds a CheckRequest as Envoy sends it.
func httpAttrs(method, host, path string, headers map[string]string, body []byte) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, Headers: headers, RawBody: body, Protocol: "HTTP/1.1",
		}},
	}}
}

func TestInlineRequestConversion(t *testing.T) {
	tests := []struct {
		name  string
		req   *authv3.CheckRequest
		check func(t *testing.T, r *http.Request, body []byte)
	}{
		{
			name: "host, raw path with query, method and client address",
			req: httpAttrs("GET", "acme.app.test", "/_auth/login?rd=%2Fdocs%3Fa%3D1&login_hint=a%40acme.test", map[string]string{
				":authority": "acme.app.test", ":path": "/_auth/login", ":method": "GET",
				"x-forwarded-for": "198.51.100.1,203.0.113.7", "x-request-id": "rid-1",
			}, nil),
			check: func(t *testing.T, r *http.Request, body []byte) {
				if r.Method != "GET" || r.Host != "acme.app.test" || r.RequestURI != "/_auth/login?rd=%2Fdocs%3Fa%3D1&login_hint=a%40acme.test" {
					t.Errorf("method %q host %q target %q", r.Method, r.Host, r.RequestURI)
				}
				if r.URL.Path != "/_auth/login" || r.URL.Query().Get("rd") != "/docs?a=1" || r.URL.Query().Get("login_hint") != "a@acme.test" {
					t.Errorf("URL %v", r.URL)
				}
				if r.RemoteAddr != "203.0.113.7:51000" {
					t.Errorf("RemoteAddr %q, want the Check's source address", r.RemoteAddr)
				}
				if got := r.Header.Values("X-Forwarded-For"); !slices.Equal(got, []string{"198.51.100.1,203.0.113.7"}) {
					t.Errorf("X-Forwarded-For %q", got)
				}
				for k := range r.Header {
					if strings.HasPrefix(k, ":") || k == "Host" {
						t.Errorf("pseudo or host header %q reached the handler", k)
					}
				}
				if len(body) != 0 || r.ContentLength != 0 {
					t.Errorf("GET body %q, length %d", body, r.ContentLength)
				}
			},
		},
		{
			// A sibling subdomain's cookie x="junk, __Host-tenantgate-csrf=…"
			// must not become a CSRF (or attempt, or switch) cookie: the
			// Cookie value reaches the handler as sent, and only ";"
			// separates cookies.
			name: "a comma in a cookie value never splits it",
			req: httpAttrs("GET", "acme.app.test", "/_auth/logout", map[string]string{
				"cookie": `tenantgate=tok.en.sig; x="junk, __Host-tenantgate-csrf=evil"; y=a,__Host-tg-attempt-z=evil`,
			}, nil),
			check: func(t *testing.T, r *http.Request, _ []byte) {
				want := `tenantgate=tok.en.sig; x="junk, __Host-tenantgate-csrf=evil"; y=a,__Host-tg-attempt-z=evil`
				if got := r.Header.Values("Cookie"); !slices.Equal(got, []string{want}) {
					t.Errorf("Cookie %q, want the one value as sent", got)
				}
				for _, name := range []string{"__Host-tenantgate-csrf", "__Host-tg-attempt-z"} {
					if v := cookie.Values(r.Header.Values("Cookie"), name, 0); len(v) != 0 {
						t.Errorf("smuggled cookie %s = %q", name, v)
					}
				}
				if v := cookie.Values(r.Header.Values("Cookie"), "tenantgate", 0); !slices.Equal(v, []string{"tok.en.sig"}) {
					t.Errorf("tenantgate = %q", v)
				}
			},
		},
		{
			name: "header_map keeps repeated headers apart and prefers raw values",
			req: func() *authv3.CheckRequest {
				req := httpAttrs("GET", "acme.app.test", "/_auth/login", nil, nil)
				req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
					{Key: ":path", Value: "/_auth/login"},
					{Key: "accept", Value: "text/html"},
					{Key: "x-multi", Value: "a"},
					{Key: "x-multi", RawValue: []byte("b")},
					{Key: "cookie", Value: "a=1"},
					{Key: "cookie", Value: "b=2"},
				}}
				return req
			}(),
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if got := r.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("X-Multi %q, want [a b]", got)
				}
				if c, err := r.Cookie("b"); err != nil || c.Value != "2" {
					t.Errorf("cookie b: %v %v", c, err)
				}
				if r.Header.Get("Accept") != "text/html" {
					t.Errorf("Accept %q", r.Header.Get("Accept"))
				}
			},
		},
		{
			name: "client-sent identity and forwarding headers never reach the handler",
			req: httpAttrs("GET", "acme.app.test", "/_auth/login", map[string]string{
				"x-tenant-id": "globex", "x-tenant-plan": "gold", "x-user-id": "1", "x-user-email": "root@acme.test",
				"x-user-roles": "admin", "x-auth-method": "saml", "x-forwarded-host": "globex.app.test",
				"forwarded": "host=globex.app.test", "x-original-host": "globex.app.test", "accept": "text/html",
				"x-forwarded-port": "1234", "x-envoy-external-address": "6.6.6.6", "x-auth-mfa": "true",
			}, nil),
			check: func(t *testing.T, r *http.Request, _ []byte) {
				for k := range r.Header {
					if k != "Accept" && k != "X-Envoy-External-Address" {
						t.Errorf("handler received %s: %q", k, r.Header[k])
					}
				}
				// The address Envoy saw, which rate limits key on, is the
				// Check's source: Envoy passes a client's copy on when it
				// counts the request as internal.
				if got := r.Header.Values("X-Envoy-External-Address"); !slices.Equal(got, []string{"203.0.113.7"}) {
					t.Errorf("X-Envoy-External-Address %q, want the source address", got)
				}
			},
		},
		{
			name: "a whole POST body, packed as bytes",
			req: httpAttrs("POST", "acme.app.test", "/_auth/login", map[string]string{
				"content-type": "application/x-www-form-urlencoded", "content-length": "25",
				headerPartialBody: "false", "origin": "http://acme.app.test", "sec-fetch-site": "same-origin",
			}, []byte("email=a%40acme.test&csrf=")),
			check: func(t *testing.T, r *http.Request, body []byte) {
				if string(body) != "email=a%40acme.test&csrf=" || r.ContentLength != 25 {
					t.Errorf("body %q length %d", body, r.ContentLength)
				}
				if r.Header.Get("Content-Length") != "" || r.Header.Get(headerPartialBody) != "" {
					t.Errorf("framing headers passed on: %v", r.Header)
				}
				if r.Header.Get("Origin") != "http://acme.app.test" || r.Header.Get("Sec-Fetch-Site") != "same-origin" {
					t.Errorf("origin headers %v", r.Header)
				}
			},
		},
		{
			name: "a body in the string field",
			req: func() *authv3.CheckRequest {
				req := httpAttrs("POST", "acme.app.test", "/_auth/logout", map[string]string{headerPartialBody: "false"}, nil)
				req.Attributes.Request.Http.Body = "csrf=x"
				return req
			}(),
			check: func(t *testing.T, r *http.Request, body []byte) {
				if string(body) != "csrf=x" || r.ContentLength != 6 {
					t.Errorf("body %q length %d", body, r.ContentLength)
				}
			},
		},
		{
			name: "the browser's port from the Check's destination",
			req: func() *authv3.CheckRequest {
				req := httpAttrs("GET", "acme.app.test", "/_auth/login", map[string]string{"x-forwarded-port": "1234"}, nil)
				req.Attributes.Destination = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
					SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}},
				}}}
				return req
			}(),
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if got := r.Header.Values("X-Forwarded-Port"); !slices.Equal(got, []string{"8080"}) {
					t.Errorf("X-Forwarded-Port %q, want [8080] (Envoy's listener port, never the client's)", got)
				}
			},
		},
		{
			name: "HTTP/2",
			req: func() *authv3.CheckRequest {
				req := httpAttrs("GET", "acme.app.test", "/_auth/login", nil, nil)
				req.Attributes.Request.Http.Protocol = "HTTP/2"
				return req
			}(),
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if r.ProtoMajor != 2 {
					t.Errorf("proto %s", r.Proto)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			in := &Inline{Handler: h, PathPrefix: "/org"}
			resp := in.Serve(context.Background(), tc.req)
			if h.calls != 1 {
				t.Fatalf("handler ran %d times; response %v", h.calls, resp)
			}
			tc.check(t, h.got, h.body)
		})
	}
}

func TestInlineRefusesIncompleteOrBadRequests(t *testing.T) {
	body := []byte("email=a&password=b&csrf=c")
	tests := []struct {
		name    string
		req     *authv3.CheckRequest
		maxBody int
		status  int // 0: the handler runs
		code    string
	}{
		{"whole body, Envoy says not partial", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "false", "content-length": "25"}, body), 0, 0, ""},
		{"whole chunked body, no Content-Length", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "false"}, body), 0, 0, ""},
		{"empty body with Content-Length 0", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{"content-length": "0"}, nil), 0, 0, ""},
		{"GET needs no body proof", httpAttrs("GET", "a.app.test", "/_auth/login", nil, nil), 0, 0, ""},
		{"HEAD needs no body proof", httpAttrs("HEAD", "a.app.test", "/_auth/login", map[string]string{"content-length": "10"}, nil), 0, 0, ""},
		{"body not sent (route without with_request_body)", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{"content-length": "25"}, nil), 0, 400, CodeBadRequest},
		{"no body and no length: unknown", httpAttrs("POST", "a.app.test", "/_auth/login", nil, nil), 0, 400, CodeBadRequest},
		{"partial body", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "true", "content-length": "99"}, body), 0, 400, CodeBadRequest},
		{"partial body without length", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "true"}, body), 0, 400, CodeBadRequest},
		{"truncated against Content-Length", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "false", "content-length": "26"}, body), 0, 400, CodeBadRequest},
		{"Content-Length not a number", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "false", "content-length": "25,25"}, body), 0, 400, CodeBadRequest},
		{"Content-Length negative", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{"content-length": "-1"}, nil), 0, 400, CodeBadRequest},
		{"DELETE without proof", httpAttrs("DELETE", "a.app.test", "/_auth/login", nil, nil), 0, 400, CodeBadRequest},
		{"body over MaxBody", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "false"}, body), 24, 413, CodeTooLarge},
		{"body at MaxBody", httpAttrs("POST", "a.app.test", "/_auth/login", map[string]string{headerPartialBody: "false"}, body), 25, 0, ""},
		{"no method", httpAttrs("", "a.app.test", "/_auth/login", nil, nil), 0, 400, CodeBadRequest},
		{"method with a space", httpAttrs("GE T", "a.app.test", "/_auth/login", nil, nil), 0, 400, CodeBadRequest},
		{"absolute-form path", httpAttrs("GET", "a.app.test", "http://b.app.test/_auth/login", nil, nil), 0, 400, CodeBadRequest},
		{"unparsable path", httpAttrs("GET", "a.app.test", "/_auth/login\x7f%zz", nil, nil), 0, 400, CodeBadRequest},
		{"no http attributes", &authv3.CheckRequest{}, 0, 400, CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			in := &Inline{Handler: h, MaxBody: tc.maxBody}
			resp := in.Serve(context.Background(), tc.req)
			if tc.status == 0 {
				if h.calls != 1 {
					t.Fatalf("handler not run: %v", resp.GetDeniedResponse())
				}
				return
			}
			if h.calls != 0 {
				t.Errorf("handler ran on a refused request")
			}
			wantDenied(t, resp, tc.status, tc.code)
		})
	}
}

func TestInlineResponseConversion(t *testing.T) {
	tests := []struct {
		name       string
		respond    func(w http.ResponseWriter, r *http.Request)
		status     int
		body       string
		headers    [][2]string // every entry, in order
		missing    []string
		maxRespond int
	}{
		{
			name: "a 200 page is a denied response with status 200",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				w.Header().Set("Content-Length", "15")
				http.SetCookie(w, &http.Cookie{Name: "tenantgate-csrf", Value: "v", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
				io.WriteString(w, "<p>sign in</p>\n")
			},
			status: 200,
			body:   "<p>sign in</p>\n",
			headers: [][2]string{
				{"cache-control", "no-store"},
				{"content-type", "text/html; charset=utf-8"},
				{"set-cookie", "tenantgate-csrf=v; Path=/; HttpOnly; SameSite=Lax"},
			},
			missing: []string{"content-length"},
		},
		{
			name: "a 303 with two cookies keeps both",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "tenantgate", Value: "", Path: "/", MaxAge: -1})
				http.SetCookie(w, &http.Cookie{Name: "tenantgate-idt", Value: "", Path: "/", MaxAge: -1})
				w.Header().Set("Location", "/_auth/login")
				w.Header().Set("Connection", "close")
				w.Header().Set("Transfer-Encoding", "chunked")
				w.WriteHeader(http.StatusSeeOther)
			},
			status: 303,
			headers: [][2]string{
				{"location", "/_auth/login"},
				{"set-cookie", "tenantgate=; Path=/; Max-Age=0"},
				{"set-cookie", "tenantgate-idt=; Path=/; Max-Age=0"},
			},
			missing: []string{"connection", "transfer-encoding"},
		},
		{
			name: "an error page keeps its status",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"error":"unknown_tenant"}`)
			},
			status:  404,
			body:    `{"error":"unknown_tenant"}`,
			headers: [][2]string{{"content-type", "application/json"}},
		},
		{
			name:    "nothing written is an empty 200",
			respond: func(http.ResponseWriter, *http.Request) {},
			status:  200,
		},
		{
			name: "the first status wins",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				w.WriteHeader(http.StatusOK)
			},
			status: 401,
		},
		{
			name: "a response body at the limit is sent",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, strings.Repeat("a", 64))
			},
			maxRespond: 64,
			status:     200,
			body:       strings.Repeat("a", 64),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &Inline{Handler: &recorder{respond: tc.respond}, MaxResponse: tc.maxRespond}
			resp := in.Serve(context.Background(), httpAttrs("GET", "acme.app.test", "/_auth/login", nil, nil))
			if resp.GetStatus().GetCode() == int32(codes.OK) || resp.GetOkResponse() != nil {
				t.Fatal("a sign-in answer must never be an OK")
			}
			d := resp.GetDeniedResponse()
			if got := int(d.GetStatus().GetCode()); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if d.GetBody() != tc.body {
				t.Errorf("body %q, want %q", d.GetBody(), tc.body)
			}
			var got [][2]string
			for _, h := range d.GetHeaders() {
				got = append(got, [2]string{h.GetHeader().GetKey(), h.GetHeader().GetValue()})
				if h.GetAppend() == nil || h.GetAppend().GetValue() || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
					t.Errorf("header %s: want append=false and OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey())
				}
			}
			if !slices.Equal(got, tc.headers) {
				t.Errorf("headers\n%q\nwant\n%q", got, tc.headers)
			}
			for _, m := range tc.missing {
				for _, h := range got {
					if h[0] == m {
						t.Errorf("header %s passed on", m)
					}
				}
			}
		})
	}
}

func TestInlineHandlerFaultsAre500(t *testing.T) {
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
	}{
		{"panic", func(http.ResponseWriter, *http.Request) { panic("boom") }},
		{"response over the limit", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, strings.Repeat("a", 40))
			io.WriteString(w, strings.Repeat("b", 40))
		}},
		{"body not UTF-8", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte{0xff, 0xfe}) }},
		{"header value with CRLF", func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Location"] = []string{"/x\r\nSet-Cookie: a=b"}
			w.WriteHeader(http.StatusFound)
		}},
		{"invalid header name", func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Bad Name"] = []string{"x"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			in := &Inline{Handler: &recorder{respond: tc.respond}, MaxResponse: 64, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
			resp := in.Serve(context.Background(), httpAttrs("GET", "acme.app.test", "/_auth/login", map[string]string{"x-request-id": "rid-9"}, nil))
			wantDenied(t, resp, 500, CodeInternal)
			if !strings.Contains(logs.String(), "rid-9") {
				t.Errorf("fault not logged with its request id: %s", logs.String())
			}
		})
	}
}

// TestCheckRoutesSignInPathsInline shows that with Inline set only sign-in
// paths go to the handler, that without it they are decided as before, and
// that no sign-in answer is ever an allow carrying identity headers.
func TestCheckRoutesSignInPathsInline(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "member")
	h := &recorder{}
	withInline := &Server{Authorizer: &Authorizer{
		Snapshots: f.snaps, Resolver: &tenants.Resolver{BaseDomains: []string{"app.test"}, PathPrefix: "/org"},
		Verifier: session.NewVerifier(), CookieName: session.CookieName(false),
	}, Inline: &Inline{Handler: h, PathPrefix: "/org"}}
	call := func(s *Server, host, path string, headers map[string]string) *authv3.CheckResponse {
		t.Helper()
		resp, err := s.Check(context.Background(), httpAttrs("GET", host, path, headers, nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	nav := map[string]string{"accept": "text/html"}

	// Off: /_auth/ is an ordinary path (routed mode: Envoy never sends it).
	resp := f.check(t, "GET", "acme.app.test", "/_auth/login", nav)
	if h := wantDenied(t, resp, 302, ""); !strings.HasPrefix(h["location"], "/_auth/login?rd=") {
		t.Errorf("inline off: location %q", h["location"])
	}

	// On: sign-in paths reach the handler, even with a valid session and
	// spoofed identity, and the answer is never an OK.
	for _, tc := range []struct{ host, path string }{
		{"acme.app.test", "/_auth/login?rd=%2F"},
		{"app.test", "/org/acme/_auth/login"},
		{"acme.app.test", "/_auth/jwks.json"},
	} {
		before := h.calls
		resp := call(withInline, tc.host, tc.path, map[string]string{"cookie": "__Host-tenantgate=" + tok, "x-tenant-id": "globex"})
		if h.calls != before+1 {
			t.Errorf("%s%s: handler not run", tc.host, tc.path)
		}
		if resp.GetOkResponse() != nil || resp.GetStatus().GetCode() == int32(codes.OK) {
			t.Errorf("%s%s: answered with an allow", tc.host, tc.path)
		}
		for _, hv := range resp.GetDeniedResponse().GetHeaders() {
			if slices.Contains(identityHeaders[:], hv.GetHeader().GetKey()) {
				t.Errorf("%s%s: identity header %s in the answer", tc.host, tc.path, hv.GetHeader().GetKey())
			}
		}
	}

	// On: every other path is decided exactly as before.
	before := h.calls
	ok := wantOK(t, call(withInline, "acme.app.test", "/docs/1", map[string]string{"authorization": "Bearer " + tok, "x-tenant-id": "globex"}))
	if got := headerMap(ok.GetHeaders())[HeaderTenantID]; got != "acme" {
		t.Errorf("x-tenant-id %q, want acme", got)
	}
	wantDenied(t, call(withInline, "acme.app.test", "/_auth", nav), 302, "")
	wantDenied(t, call(withInline, "acme.app.test", "/org/acme/_authx", map[string]string{}), 401, CodeUnauthenticated)
	if h.calls != before {
		t.Errorf("handler ran for a path outside /_auth/")
	}
}

// signinEnv is a real sign-in handler over a real bbolt store, answering
// inline behind a real gRPC Check server: tenants acme and globex (password
// sign-in), alice a member of acme only.
type signinEnv struct {
	client authv3.AuthorizationClient
}

const inlineAlicePassword = "alice-Inline-pw-4Kq"

func newSigninEnv(t *testing.T) *signinEnv {
	t.Helper()
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "tenantgate.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, seal.MasterKeySize)
	rand.Read(key)
	sealer, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	pw := []tenants.Method{{Type: tenants.MethodPassword}}
	roles := map[string]tenants.Role{"member": {Permissions: []string{"docs:read"}}}
	ts := []tenants.Tenant{
		{ID: "acme", Name: "Acme Corp", Methods: pw, Roles: roles},
		{ID: "globex", Name: "Globex", Methods: pw, Roles: roles},
	}
	if _, err := st.ApplyTenants(ctx, ts, tenants.ApplyOptions{
		NewKey: func(id string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, id, time.Now()) },
	}); err != nil {
		t.Fatal(err)
	}
	hasher := &password.Hasher{Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	hash, err := hasher.Hash(inlineAlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddMember(ctx, "acme", tenants.NewMember{Email: "alice@acme.test", Roles: []string{"member"}, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	snaps := &tenants.Current{}
	if err := snaps.Refresh(ctx, st); err != nil {
		t.Fatal(err)
	}
	followCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go snaps.Follow(followCtx, st, slog.New(slog.DiscardHandler))

	resolver := &tenants.Resolver{BaseDomains: []string{"app.test"}, PathPrefix: "/org"}
	verifier := session.NewVerifier()
	signin := &login.Handler{
		Snapshots: snaps, Resolver: resolver, Store: st,
		Minter:   &session.Minter{Sealer: sealer, TTL: time.Hour, Now: time.Now, Rand: rand.Reader},
		Verifier: verifier, Passwords: hasher, InsecureCookies: true, CSRFKey: sealer.DeriveKey("csrf"),
	}
	srv := &Server{
		Authorizer: &Authorizer{Snapshots: snaps, Resolver: resolver, Verifier: verifier, CookieName: session.CookieName(true)},
		Inline:     &Inline{Handler: signin, PathPrefix: resolver.PathPrefix},
	}
	return &signinEnv{client: authv3.NewAuthorizationClient(serveGRPC(t, srv))}
}

// inlineAnswer is a Check answer as the browser would get it from Envoy.
type inlineAnswer struct {
	ok      *authv3.OkHttpResponse
	status  int
	header  http.Header
	body    string
	cookies []*http.Cookie
}

func (e *signinEnv) do(t *testing.T, method, host, path string, headers map[string]string, body string) inlineAnswer {
	t.Helper()
	if headers == nil {
		headers = map[string]string{}
	}
	if method == "POST" {
		headers[headerPartialBody] = "false"
		headers["content-length"] = strconv.Itoa(len(body))
	}
	resp, err := e.client.Check(context.Background(), httpAttrs(method, host, path, headers, []byte(body)))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if ok := resp.GetOkResponse(); resp.GetStatus().GetCode() == int32(codes.OK) {
		return inlineAnswer{ok: ok}
	}
	d := resp.GetDeniedResponse()
	a := inlineAnswer{status: int(d.GetStatus().GetCode()), header: http.Header{}, body: d.GetBody()}
	for _, h := range d.GetHeaders() {
		a.header.Add(h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	a.cookies = (&http.Response{Header: a.header}).Cookies()
	return a
}

var inlineCSRF = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func cookieLine(cs ...*http.Cookie) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// TestInlineSignInThroughCheck runs the real sign-in flow through Check
// alone: page, password POST with CSRF, the session on the app, the same
// session refused on another tenant, sign-out.
func TestInlineSignInThroughCheck(t *testing.T) {
	e := newSigninEnv(t)
	acme, globex := "acme.app.test", "globex.app.test"
	nav := func() map[string]string { return map[string]string{"accept": "text/html"} }

	page := e.do(t, "GET", acme, "/_auth/login?rd=%2Fdocs", nav(), "")
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("login page: %d %v", page.status, page.header)
	}
	m := inlineCSRF.FindStringSubmatch(page.body)
	if m == nil || len(page.cookies) != 1 {
		t.Fatalf("login page: csrf %v, cookies %v", m, page.cookies)
	}
	preauth := page.cookies[0]

	post := func(host string, form url.Values, cookies ...*http.Cookie) inlineAnswer {
		h := map[string]string{
			"content-type": "application/x-www-form-urlencoded", "origin": "http://" + host,
			"sec-fetch-site": "same-origin", "cookie": cookieLine(cookies...),
		}
		return e.do(t, "POST", host, "/_auth/login", h, form.Encode())
	}
	wrong := post(acme, url.Values{"email": {"alice@acme.test"}, "password": {"nope"}, "rd": {"/docs"}, "csrf": {m[1]}}, preauth)
	if wrong.status != 401 || len(wrong.cookies) != 0 || strings.Contains(wrong.body, "nope") {
		t.Errorf("wrong password: %d cookies %v", wrong.status, wrong.cookies)
	}
	noCSRF := post(acme, url.Values{"email": {"alice@acme.test"}, "password": {inlineAlicePassword}, "rd": {"/docs"}}, preauth)
	if noCSRF.status != 403 || len(noCSRF.cookies) != 0 {
		t.Errorf("no csrf: %d cookies %v", noCSRF.status, noCSRF.cookies)
	}

	ok := post(acme, url.Values{"email": {"alice@acme.test"}, "password": {inlineAlicePassword}, "rd": {"/docs"}, "csrf": {m[1]}}, preauth)
	if ok.status != 303 || ok.header.Get("Location") != "/docs" {
		t.Fatalf("sign-in: %d %v", ok.status, ok.header)
	}
	var sess *http.Cookie
	for _, c := range ok.cookies {
		if c.Name == "tenantgate" {
			sess = c
		}
	}
	if sess == nil || sess.Value == "" || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Domain != "" {
		t.Fatalf("session cookie %v", sess)
	}

	app := e.do(t, "GET", acme, "/docs", map[string]string{"cookie": cookieLine(sess), "x-tenant-id": "globex"}, "")
	if app.ok == nil || headerMap(app.ok.GetHeaders())[HeaderTenantID] != "acme" || headerMap(app.ok.GetHeaders())[HeaderUserEmail] != "alice@acme.test" {
		t.Fatalf("session on acme: %+v", app)
	}
	other := e.do(t, "GET", globex, "/docs", map[string]string{"cookie": cookieLine(sess)}, "")
	if other.ok != nil || other.status != 403 || !strings.Contains(other.body, CodeTenantMismatch) {
		t.Errorf("acme session on globex: %+v", other)
	}

	out := e.do(t, "GET", acme, "/_auth/logout", map[string]string{"cookie": cookieLine(sess, preauth), "accept": "text/html"}, "")
	lm := inlineCSRF.FindStringSubmatch(out.body)
	if out.status != 200 || lm == nil {
		t.Fatalf("logout page: %d", out.status)
	}
	bye := e.do(t, "POST", acme, "/_auth/logout", map[string]string{
		"content-type": "application/x-www-form-urlencoded", "origin": "http://" + acme, "sec-fetch-site": "same-origin",
		"cookie": cookieLine(sess, preauth),
	}, url.Values{"csrf": {lm[1]}}.Encode())
	if bye.status != 303 {
		t.Fatalf("logout: %d %s", bye.status, bye.body)
	}
	cleared := false
	for _, c := range bye.cookies {
		cleared = cleared || (c.Name == "tenantgate" && c.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("logout does not clear the cookie: %v", bye.header["Set-Cookie"])
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := e.do(t, "GET", acme, "/docs", map[string]string{"cookie": cookieLine(sess)}, "")
		if after.ok == nil && after.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still accepted after logout: %+v", after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
