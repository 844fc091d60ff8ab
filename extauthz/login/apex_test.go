package login

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

func TestDiscoveryPage(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "app.test:8443", "/_auth/login", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The POST redirects to a tenant host, and browsers hold that redirect
	// to form-action.
	wantCSP := cspFor(body, "https://*.app.test:8443")
	if got := resp.Header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("CSP = %q, want %q", got, wantCSP)
	}
	for _, want := range []string{`<label for="email">`, `autocomplete="username"`, `action="/_auth/login"`, `name="csrf"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	if strings.Contains(body, `name="password"`) {
		t.Error("apex page asks for a password")
	}
}

func TestDiscovery(t *testing.T) {
	tests := []struct {
		name, host, email string
		insecure          bool
		want              string // Location, or "" for the neutral page
	}{
		{"owner", "app.test", "alice@acme.test", false, "https://acme.app.test/_auth/login?login_hint=alice%40acme.test"},
		{"port kept", "app.test:8443", "alice@acme.test", false, "https://acme.app.test:8443/_auth/login?login_hint=alice%40acme.test"},
		{"insecure", "app.test:8080", "bob@globex.test", true, "http://globex.app.test:8080/_auth/login?login_hint=bob%40globex.test"},
		{"domain upper case", "app.test", "a@ACME.TEST", false, "https://acme.app.test/_auth/login?login_hint=a%40ACME.TEST"},
		{"spaces around", "app.test", "  a@acme.test ", false, "https://acme.app.test/_auth/login?login_hint=a%40acme.test"},

		// Security catalogue §1 items 12 and 13: never acme.
		{"quoted local part", "app.test", `"a@acme.test"@evil.test`, false, ""},
		{"two at signs", "app.test", "a@acme.test@evil.test", false, ""},
		{"list", "app.test", "a@x.test,b@acme.test", false, ""},
		{"display name", "app.test", "Victim <a@acme.test>", false, ""},
		{"angle addr", "app.test", "<a@acme.test>", false, ""},
		{"comment", "app.test", "a@acme.test (Victim)", false, ""},
		{"domain literal", "app.test", "a@[127.0.0.1]", false, ""},
		{"cyrillic lookalike", "app.test", "a@аcme.test", false, ""},
		{"fullwidth", "app.test", "a@ａcme.test", false, ""},
		{"dotless i", "app.test", "a@ACME.TEST\u0131", false, ""},
		{"NUL", "app.test", "a@acme.test\x00", false, ""},
		{"CRLF", "app.test", "a@acme.test\r\nb@evil.test", false, ""},
		{"subdomain", "app.test", "a@sub.acme.test", false, ""},
		{"suffix", "app.test", "a@acme.test.fake", false, ""},
		{"prefix", "app.test", "a@notacme.test", false, ""},
		{"unknown", "app.test", "a@evil.test", false, ""},
		{"no at", "app.test", "acme.test", false, ""},
		{"empty", "app.test", "", false, ""},
		{"too long", "app.test", strings.Repeat("a", 400) + "@acme.test", false, ""},

		// One bare addr-spec: net/mail reads these as structure.
		{"empty comment", "app.test", "a@acme.test ()", false, ""},
		{"leading comment", "app.test", "(c)a@acme.test", false, ""},
		{"group", "app.test", "staff: a@acme.test;", false, ""},
		{"space inside", "app.test", "a @acme.test", false, ""},
		{"quoted pair", "app.test", `"a\"b"@acme.test`, false, ""},
		{"trailing dot", "app.test", "a@acme.test.", false, ""},
		{"encoded word", "app.test", "=?utf-8?q?a?= <a@acme.test>", false, ""},
		// The domain is what follows the last "@" of the parsed address.
		{"quoted local part holding @", "app.test", `"x@evil.test"@acme.test`, false,
			"https://acme.app.test/_auth/login?login_hint=%22x%40evil.test%22%40acme.test"},

		// ASCII-only lower-casing, A-labels, exact domains.
		{"ASCII upper case", "app.test", "a@KILO.Test", false, "https://kilo.app.test/_auth/login?login_hint=a%40KILO.Test"},
		{"KELVIN SIGN", "app.test", "a@\u212Ailo.test", false, ""},
		{"long s", "app.test", "a@acme.te\u017Ft", false, ""},
		{"U-label", "app.test", "a@bücher.test", false, "https://kilo.app.test/_auth/login?login_hint=a%40b%C3%BCcher.test"},
		{"A-label", "app.test", "a@xn--bcher-kva.test", false, "https://kilo.app.test/_auth/login?login_hint=a%40xn--bcher-kva.test"},
		{"A-label upper case", "app.test", "a@XN--BCHER-KVA.TEST", false, "https://kilo.app.test/_auth/login?login_hint=a%40XN--BCHER-KVA.TEST"},
		{"U-label upper case", "app.test", "a@BÜCHER.test", false, ""},
		{"U-label lookalike", "app.test", "a@bucher.test", false, ""},
		{"sharp s is not ss", "app.test", "a@faß.test", false, ""},
		{"subdomain of an IDN", "app.test", "a@x.bücher.test", false, ""},
	}
	var neutral string
	envs := map[bool]*env{
		false: newEnv(t),
		true:  newEnv(t, func(h *Handler) { h.InsecureCookies = true }),
	}
	for _, e := range envs {
		e.addTenants(tenants.Tenant{ID: "kilo", Name: "Kilo", EmailDomains: []string{"kilo.test", "bücher.test", "fass.test"},
			Methods: []tenants.Method{{Type: tenants.MethodPassword}}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := envs[tc.insecure]
			f := e.getForm(tc.host, "/_auth/login")
			resp := e.do("POST", tc.host, "/_auth/login", url.Values{"email": {tc.email}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
			body := readBody(t, resp)
			if tc.want != "" {
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
					t.Fatalf("%d Location %q, want 303 %q", resp.StatusCode, resp.Header.Get("Location"), tc.want)
				}
				return
			}
			if resp.StatusCode != 200 || !strings.Contains(body, "If your organisation uses tenantgate") {
				t.Fatalf("status %d, Location %q: not the neutral page", resp.StatusCode, resp.Header.Get("Location"))
			}
			// Each case is a new browser, so only the csrf token may differ.
			body = csrfField.ReplaceAllString(body, `name="csrf" value="X"`)
			if neutral == "" {
				neutral = body
			} else if body != neutral {
				t.Fatal("neutral page differs with the input")
			}
		})
	}
}

func TestDiscoveryRefusals(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.Limits = Limits{DiscoveryRequests: 2} })
	f := e.getForm("app.test", "/_auth/login")
	post := func(hdr http.Header, csrf string, cookies ...*http.Cookie) int {
		return e.do("POST", "app.test", "/_auth/login", url.Values{"email": {"a@acme.test"}, "csrf": {csrf}}, hdr, cookies...).StatusCode
	}
	if got := post(http.Header{"Sec-Fetch-Site": {"same-site"}}, f.csrf, f.preauth); got != http.StatusForbidden {
		t.Errorf("same-site: %d, want 403", got)
	}
	if got := post(sameOrigin(), "", f.preauth); got != http.StatusForbidden {
		t.Errorf("no csrf: %d, want 403", got)
	}
	// A tenant's token does not work on the apex.
	acme := e.getForm("acme.app.test", "/_auth/login", f.preauth)
	if got := post(sameOrigin(), acme.csrf, f.preauth); got != http.StatusForbidden {
		t.Errorf("tenant token on apex: %d, want 403", got)
	}
	for i := range 2 {
		if got := post(sameOrigin(), f.csrf, f.preauth); got != http.StatusSeeOther {
			t.Fatalf("request %d: %d, want 303", i, got)
		}
	}
	if got := post(sameOrigin(), f.csrf, f.preauth); got != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %d, want 429", got)
	}
	hdr := sameOrigin()
	hdr.Set(HeaderExternalAddress, "198.51.100.200")
	if got := post(hdr, f.csrf, f.preauth); got != http.StatusSeeOther {
		t.Fatalf("another address: %d, want 303", got)
	}
}

func TestDiscoveryDomain(t *testing.T) {
	tests := []struct{ in, domain string }{
		{"a@acme.test", "acme.test"},
		{"a@ACME.Test", "acme.test"},
		{"a@acme.test.", ""}, // net/mail refuses the trailing dot
		{"a.b+c@acme.test", "acme.test"},
		{`"a@acme.test"@evil.test`, "evil.test"},
		{"a@bücher.test", "xn--bcher-kva.test"},
		{"a@аcme.test", "xn--cme-5cd.test"},
		{"a@[127.0.0.1]", ""},
		{"a@acme.test ()", ""},
		{"g: a@acme.test;", ""},
		{"a@\u212Acme.test", ""},
		{"a@XN--CME-5CD.test", "xn--cme-5cd.test"},
		{" a@acme.test\n", "acme.test"}, // surrounding space, newline included, is trimmed
		{"Victim <a@acme.test>", ""},
		{"a@acme.test, b@evil.test", ""},
		{"a@", ""},
		{"@acme.test", ""},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			_, got, _ := discoveryDomain(tc.in)
			if got != tc.domain {
				t.Fatalf("discoveryDomain(%q) = %q, want %q", tc.in, got, tc.domain)
			}
		})
	}
}

// FuzzDiscoveryDomain: whatever is typed, discovery looks up nothing but a
// canonical ASCII domain name.
func FuzzDiscoveryDomain(f *testing.F) {
	for _, s := range []string{"a@acme.test", `"a@acme.test"@evil.test`, "a@acme.test@evil.test",
		"a@x.test,b@acme.test", "Victim <a@evil.test>", "a@ACME.TEST.", "a@[127.0.0.1]", "a@аcme.test",
		"a@acme.test\x00", "a@acme.test\r\n", "a@acme.test (c)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		addr, domain, ok := discoveryDomain(in)
		if !ok {
			return
		}
		for i := 0; i < len(domain); i++ {
			if c := domain[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("discoveryDomain(%q) domain %q is not canonical ASCII", in, domain)
			}
		}
		if addr == "" || strings.ContainsAny(addr, "<>,\r\n\x00") {
			t.Fatalf("discoveryDomain(%q) address %q", in, addr)
		}
	})
}
