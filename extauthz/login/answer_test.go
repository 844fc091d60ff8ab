package login

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestAnswersAsWritten pins, for answers that no other test looks at whole,
// what reaches the wire and the log once a route has answered: the status,
// the headers the answer carries (Retry-After, Allow, Cache-Control), the
// single-use cookie the request cleared while deciding, and the log lines
// of the request, in order (the refusal first, then what failed behind it).
func TestAnswersAsWritten(t *testing.T) {
	se := newSSOEnv(t, func(h *Handler) { h.Limits = Limits{DiscoveryRequests: 1} })
	type line struct{ level, msg, reason string }
	refused := func(reason string) line { return line{"INFO", "sign-in refused", reason} }
	for _, tc := range []struct {
		name string
		// do makes the request, calling mark just before the one whose
		// answer is checked.
		do     func(mark func()) *http.Response
		status int
		header map[string]string
		// clears is the prefix of a cookie the answer must delete.
		clears string
		logs   []line
	}{
		{
			name: "method cannot be opened at start",
			do: func(mark func()) *http.Response {
				f := se.getForm("brokenco.app.test", "/_auth/login")
				mark()
				return se.do("POST", "brokenco.app.test", "/_auth/start",
					url.Values{"m": {"1"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
			},
			status: http.StatusServiceUnavailable,
			header: map[string]string{"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"},
			logs:   []line{refused("sso_method_unavailable"), {"ERROR", "sign-in method unavailable", "sso_method_unavailable"}},
		},
		{
			name: "provider refuses the callback",
			do: func(mark func()) *http.Response {
				j := jar{}
				state := se.startOIDC(j, "oidcco.app.test", "/_auth/login")
				mark()
				return se.do("GET", "oidcco.app.test", "/_auth/callback?"+url.Values{"state": {state}, "code": {"unknown"}}.Encode(),
					nil, nil, j.all()...)
			},
			status: http.StatusBadRequest,
			header: map[string]string{"Cache-Control": "no-store"},
			clears: "__Host-tg-attempt-",
			logs:   []line{refused("sso_callback_refused"), {"INFO", "sso sign-in failed", "sso_callback_refused"}},
		},
		{
			name: "form over its limit",
			do: func(mark func()) *http.Response {
				f := se.getForm("acme.app.test", "/_auth/login")
				mark()
				return se.do("POST", "acme.app.test", "/_auth/login",
					url.Values{"email": {strings.Repeat("a", maxFormBytes)}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
			},
			status: http.StatusRequestEntityTooLarge,
			logs:   []line{refused("bad_form")},
		},
		{
			name: "ACS body over its limit",
			do: func(mark func()) *http.Response {
				mark()
				return se.do("POST", "multi.app.test", "/_auth/saml/acs",
					url.Values{"SAMLResponse": {strings.Repeat("A", maxACSBytes)}}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
			},
			status: http.StatusRequestEntityTooLarge,
			logs:   []line{refused("sso_bad_form")},
		},
		{
			name: "discovery over its limit",
			do: func(mark func()) *http.Response {
				f := se.getForm("app.test", "/_auth/login")
				form := url.Values{"email": {"someone@nowhere.test"}, "csrf": {f.csrf}}
				se.do("POST", "app.test", "/_auth/login", form, sameOrigin(), f.preauth)
				mark()
				return se.do("POST", "app.test", "/_auth/login", form, sameOrigin(), f.preauth)
			},
			status: http.StatusTooManyRequests,
			header: map[string]string{"Retry-After": "60", "Cache-Control": "no-store"},
			logs:   []line{refused("discovery_limited")},
		},
		{
			name: "GET of a POST-only endpoint",
			do: func(mark func()) *http.Response {
				mark()
				return se.do("GET", "multi.app.test", "/_auth/start", nil, nil)
			},
			status: http.StatusMethodNotAllowed,
			header: map[string]string{"Allow": "POST", "Content-Type": "application/json", "Cache-Control": "no-store"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := -1
			resp := tc.do(func() { from = len(se.logs.String()) })
			readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			want := map[string]string{"Referrer-Policy": referrerPolicy}
			for k, v := range tc.header {
				want[k] = v
			}
			for k, v := range want {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
			if tc.clears != "" {
				cleared := slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool {
					return strings.HasPrefix(c.Name, tc.clears) && c.MaxAge < 0
				})
				if !cleared {
					t.Errorf("no cookie %s… cleared: %q", tc.clears, resp.Header.Values("Set-Cookie"))
				}
			}
			var got []line
			for _, l := range strings.Split(strings.TrimSpace(se.logs.String()[from:]), "\n") {
				if l == "" {
					continue
				}
				var rec struct{ Level, Msg, Reason string }
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				got = append(got, line{rec.Level, rec.Msg, rec.Reason})
			}
			if !slices.Equal(got, tc.logs) {
				t.Errorf("log lines %v, want %v", got, tc.logs)
			}
		})
	}
}
