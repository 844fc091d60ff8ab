package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestWithForwardedPort(t *testing.T) {
	tests := []struct {
		name, scheme, host string
		ports              []string
		want               string
	}{
		{"port restored", "http", "acme.app.test", []string{"8080"}, "acme.app.test:8080"},
		{"https non-default", "https", "acme.app.test", []string{"8443"}, "acme.app.test:8443"},
		{"no header", "http", "acme.app.test", nil, "acme.app.test"},
		{"host has a port already", "http", "acme.app.test:9000", []string{"8080"}, "acme.app.test:9000"},
		{"http default", "http", "acme.app.test", []string{"80"}, "acme.app.test"},
		{"https default", "https", "acme.app.test", []string{"443"}, "acme.app.test"},
		{"80 on https is kept", "https", "acme.app.test", []string{"80"}, "acme.app.test:80"},
		{"repeated", "http", "acme.app.test", []string{"8080", "8081"}, "acme.app.test"},
		{"not a number", "http", "acme.app.test", []string{"80a"}, "acme.app.test"},
		{"leading zero", "http", "acme.app.test", []string{"08080"}, "acme.app.test"},
		{"sign", "http", "acme.app.test", []string{"+8080"}, "acme.app.test"},
		{"zero", "http", "acme.app.test", []string{"0"}, "acme.app.test"},
		{"too big", "http", "acme.app.test", []string{"65536"}, "acme.app.test"},
		{"a host smuggled in", "http", "acme.app.test", []string{"8080@evil.test"}, "acme.app.test"},
		{"IPv6 literal", "http", "[::1]", []string{"8080"}, "[::1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/_auth/login", nil)
			r.Host = tc.host
			for _, p := range tc.ports {
				r.Header.Add(HeaderForwardedPort, p)
			}
			got := withForwardedPort(r, tc.scheme)
			if got.Host != tc.want {
				t.Errorf("Host = %q, want %q", got.Host, tc.want)
			}
			if r.Host != tc.host {
				t.Errorf("the caller's request was changed: Host %q", r.Host)
			}
		})
	}
}

// TestSSORedirectKeepsForwardedPort: behind Envoy's strip_any_host_port the
// port arrives in X-Forwarded-Port, and the provider must send the browser
// back to it.
func TestSSORedirectKeepsForwardedPort(t *testing.T) {
	se := newSSOEnv(t)
	resp := se.do("GET", "oidcco.app.test", "/_auth/login", nil, http.Header{HeaderForwardedPort: {"8443"}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302 to the provider", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Query().Get("redirect_uri"), "https://oidcco.app.test:8443/_auth/callback"; got != want {
		t.Errorf("redirect_uri = %q, want %q", got, want)
	}
}
