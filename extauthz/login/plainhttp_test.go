package login

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// plainHTTPCause is how the lost-attempt page starts its plain-http cause.
const plainHTTPCause = "This site is reached over plain http"

// TestLostAttemptPageNamesCauses: a callback or ACS request whose attempt
// this browser does not hold (reason sso_no_attempt) still says "Invalid
// login request", and now lists the likely causes; over plain http
// (--insecure-cookies, or X-Forwarded-Proto: http) the first of them is
// plain http, and the log line carries a hint saying so.
func TestLostAttemptPageNamesCauses(t *testing.T) {
	oidcCallback := func(se *ssoEnv, hdr http.Header) *http.Response {
		state := se.startOIDC(jar{}, "oidcco.app.test", "/_auth/login")
		return se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {state}, "code": {"x"}}.Encode(), nil, hdr)
	}
	samlACS := func(se *ssoEnv, hdr http.Header) *http.Response {
		f := se.getForm("multi.app.test", "/_auth/login")
		resp := se.do("POST", "multi.app.test", "/_auth/start", url.Values{"m": {"3"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || u.Query().Get("RelayState") == "" {
			se.t.Fatalf("start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		relay := u.Query().Get("RelayState")
		h := http.Header{"Sec-Fetch-Site": {"cross-site"}}
		for k, v := range hdr {
			h[k] = v
		}
		// The attempt cookie stays behind, as a browser withholds it.
		return se.do("POST", "multi.app.test", "/_auth/saml/acs", url.Values{"SAMLResponse": {"x|_req-" + relay}, "RelayState": {relay}}, h)
	}
	plainProto := http.Header{"X-Forwarded-Proto": {"http"}}
	tests := []struct {
		name      string
		insecure  bool
		request   func(*ssoEnv, http.Header) *http.Response
		hdr       http.Header
		wantPlain bool
	}{
		{name: "oidc over https", request: oidcCallback},
		{name: "saml over https", request: samlACS, hdr: http.Header{"X-Forwarded-Proto": {"https"}}},
		{name: "saml with --insecure-cookies", insecure: true, request: samlACS, hdr: plainProto, wantPlain: true},
		{name: "oidc, secure cookies reached over http", request: oidcCallback, hdr: plainProto, wantPlain: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := newSSOEnv(t, func(h *Handler) { h.InsecureCookies = tc.insecure })
			resp := tc.request(se, tc.hdr)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Invalid login request") {
				t.Fatalf("status %d, want 400 Invalid login request:\n%s", resp.StatusCode, body)
			}
			for _, want := range []string{"More than 10 minutes passed", "another browser", "blocks cookies"} {
				if !strings.Contains(body, want) {
					t.Errorf("the page does not name the cause %q:\n%s", want, body)
				}
			}
			if got := strings.Contains(body, plainHTTPCause); got != tc.wantPlain {
				t.Errorf("page names plain http: %v, want %v:\n%s", got, tc.wantPlain, body)
			}
			line := logLine(t, se.logs.String(), "sso_no_attempt")
			if hint, _ := line["hint"].(string); strings.Contains(hint, "plain http") != tc.wantPlain {
				t.Errorf("log hint %q; want one naming plain http: %v", hint, tc.wantPlain)
			}
		})
	}
}

// logLine returns the first "sign-in refused" log line with reason.
func logLine(t *testing.T, logs, reason string) map[string]any {
	t.Helper()
	for l := range strings.Lines(logs) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "sign-in refused" && m["reason"] == reason {
			return m
		}
	}
	t.Fatalf("no sign-in refused line with reason %s in:\n%s", reason, logs)
	return nil
}

// TestPlainHTTPWarnedOnce: with Secure cookies, the first request that
// Envoy marks X-Forwarded-Proto: http logs one warning naming both fixes
// (TLS on Envoy, or --insecure-cookies); later ones do not repeat it.
// https requests, and a handler running with --insecure-cookies, never
// warn.
func TestPlainHTTPWarnedOnce(t *testing.T) {
	tests := []struct {
		name     string
		insecure bool
		proto    string
		want     int
	}{
		{name: "secure cookies over http", proto: "http", want: 1},
		{name: "secure cookies over HTTP", proto: "HTTP", want: 1},
		{name: "secure cookies over https", proto: "https", want: 0},
		{name: "secure cookies, no header", want: 0},
		{name: "insecure cookies over http", insecure: true, proto: "http", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(h *Handler) { h.InsecureCookies = tc.insecure })
			hdr := http.Header{}
			if tc.proto != "" {
				hdr.Set("X-Forwarded-Proto", tc.proto)
			}
			for range 3 {
				if resp := e.do("GET", "acme.app.test", "/_auth/login", nil, hdr); resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /_auth/login: %d", resp.StatusCode)
				}
			}
			var warnings []string
			for l := range strings.Lines(e.logs.String()) {
				if strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, "X-Forwarded-Proto: http") {
					warnings = append(warnings, l)
				}
			}
			if len(warnings) != tc.want {
				t.Fatalf("%d plain-http warnings, want %d:\n%s", len(warnings), tc.want, e.logs.String())
			}
			for _, w := range warnings {
				for _, fix := range []string{"--insecure-cookies", "TLS on Envoy's listener"} {
					if !strings.Contains(w, fix) {
						t.Errorf("warning does not name %q: %s", fix, w)
					}
				}
			}
		})
	}
}
