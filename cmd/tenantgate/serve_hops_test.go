package main

import (
	"strings"
	"testing"
)

// TestServeTrustedProxyHops: --trusted-proxy-hops is a serve flag like the
// others (help, TENANTGATE_TRUSTED_PROXY_HOPS, the config file key), and a
// count below zero is refused before anything listens.
func TestServeTrustedProxyHops(t *testing.T) {
	c := newCLI(t)
	if out := c.mustRun("", "serve", "--help"); !strings.Contains(out, "--trusted-proxy-hops") {
		t.Errorf("serve --help lacks --trusted-proxy-hops:\n%s", out)
	}
	cases := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"flag", []string{"--trusted-proxy-hops", "-1"}, "", "--trusted-proxy-hops -1"},
		{"environment", nil, "-2", "--trusted-proxy-hops -2"},
		{"config file", []string{"--config", c.writeFile("hops.yaml", "trusted-proxy-hops: -3\n")}, "", "--trusted-proxy-hops -3"},
		{"not a number", []string{"--trusted-proxy-hops", "one"}, "", "trusted-proxy-hops"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("TENANTGATE_TRUSTED_PROXY_HOPS", tc.env)
			}
			args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tc.args...)
			code, _, errs := c.run("", args...)
			if code == 0 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, errs, tc.want)
			}
		})
	}
}
