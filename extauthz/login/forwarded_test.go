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

// TestClientKey: the rate-limit key is the address Envoy saw unless
// --trusted-proxy-hops says how many X-Forwarded-For entries to look past.
// Each request is as Envoy forwards it: its own address as the peer (or, in
// inline mode, the client's), X-Forwarded-For with Envoy's entry last, and
// x-envoy-external-address.
func TestClientKey(t *testing.T) {
	const envoy = "192.0.2.1:40000"
	tests := []struct {
		name     string
		hops     int
		xff      []string // X-Forwarded-For lines
		external []string // x-envoy-external-address values
		remote   string
		want     string
	}{
		// Envoy is the edge: the address it saw, never X-Forwarded-For.
		{"edge: external address", 0, []string{"6.6.6.6, 203.0.113.7"}, []string{"203.0.113.7"}, envoy, "203.0.113.7"},
		{"edge: last entry is not the client", 0, []string{"6.6.6.6, 198.51.100.9"}, nil, envoy, "192.0.2.1"},
		{"edge: no headers, the peer", 0, nil, nil, "203.0.113.7:51000", "203.0.113.7"},
		{"edge: external address twice", 0, nil, []string{"6.6.6.6", "203.0.113.7"}, envoy, "192.0.2.1"},
		{"edge: external address not an address", 0, nil, []string{"6.6.6.6.6"}, envoy, "192.0.2.1"},
		{"negative hops count as 0", -1, []string{"6.6.6.6, 198.51.100.9"}, []string{"203.0.113.7"}, envoy, "203.0.113.7"},

		// One load balancer: it appended the client, Envoy appended the
		// balancer. The client's own entries (left) never count.
		{"1 hop", 1, []string{"203.0.113.7, 10.0.0.5"}, []string{"10.0.0.5"}, envoy, "203.0.113.7"},
		{"1 hop, spoofed entries", 1, []string{"6.6.6.6, 7.7.7.7, 203.0.113.7, 10.0.0.5"}, []string{"10.0.0.5"}, envoy, "203.0.113.7"},
		{"1 hop, spoofed external address", 1, []string{"203.0.113.7, 10.0.0.5"}, []string{"6.6.6.6"}, envoy, "203.0.113.7"},
		{"1 hop, lines joined in order", 1, []string{"6.6.6.6", "203.0.113.7", "10.0.0.5"}, nil, envoy, "203.0.113.7"},
		{"1 hop, no spaces", 1, []string{"203.0.113.7,10.0.0.5"}, nil, envoy, "203.0.113.7"},
		{"1 hop, entry with a port", 1, []string{"203.0.113.7:4711, 10.0.0.5"}, nil, envoy, "203.0.113.7"},
		{"1 hop, IPv6 entry with a port", 1, []string{"[2001:db8:1:2::7]:4711, 10.0.0.5"}, nil, envoy, "2001:db8:1:2::/64"},
		// Fewer entries than the proxies would have written: the request
		// did not come through them, and the client is what Envoy saw.
		{"1 hop, short", 1, []string{"10.0.0.5"}, []string{"10.0.0.5"}, envoy, "10.0.0.5"},
		{"1 hop, none", 1, nil, nil, "203.0.113.7:51000", "203.0.113.7"},
		{"1 hop, entry not an address", 1, []string{"unknown, 10.0.0.5"}, []string{"10.0.0.5"}, envoy, "10.0.0.5"},
		{"1 hop, empty entry", 1, []string{", 10.0.0.5"}, []string{"10.0.0.5"}, envoy, "10.0.0.5"},

		// Istio's example (gatewayTopology.numTrustedProxies: 2): the
		// gateway puts 72.9.5.6 in x-envoy-external-address.
		{"2 hops, Istio's example", 2, []string{"56.5.6.7, 72.9.5.6, 98.1.2.3, 10.1.0.9"}, []string{"72.9.5.6"}, envoy, "72.9.5.6"},
		{"2 hops, short", 2, []string{"98.1.2.3, 10.1.0.9"}, []string{"10.1.0.9"}, envoy, "10.1.0.9"},

		// Address forms.
		{"IPv6 widened to /64", 0, nil, []string{"2001:db8:1:2:3:4:5:6"}, envoy, "2001:db8:1:2::/64"},
		{"IPv4-mapped", 0, nil, []string{"::ffff:198.51.100.1"}, envoy, "198.51.100.1"},
		{"IPv6 peer", 0, nil, nil, "[2001:db8::1]:443", "2001:db8::/64"},
		{"zone dropped", 0, nil, []string{"fe80::1%eth0"}, envoy, "fe80::/64"},
		{"no address at all", 0, nil, nil, "", "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{TrustedProxyHops: tc.hops}
			r := httptest.NewRequest("POST", "/_auth/login", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.external {
				r.Header.Add("X-Envoy-External-Address", v)
			}
			if got := h.clientKey(r); got != tc.want {
				t.Errorf("clientKey = %q, want %q", got, tc.want)
			}
		})
	}
}
