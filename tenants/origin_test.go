package tenants

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	good := []struct{ in, want string }{
		{"https://admin.acme.test", "https://admin.acme.test"},
		{"HTTPS://Admin.ACME.test", "https://admin.acme.test"},
		{"https://admin.acme.test:443", "https://admin.acme.test"},
		{"http://admin.acme.test:80", "http://admin.acme.test"},
		{"https://admin.acme.test:80", "https://admin.acme.test:80"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"http://localhost:03000", "http://localhost:3000"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"https://[::1]", "https://[::1]"},
		{"https://bücher.test", "https://xn--bcher-kva.test"},
	}
	for _, tc := range good {
		o, err := ParseOrigin(tc.in)
		if err != nil {
			t.Errorf("ParseOrigin(%q): %v", tc.in, err)
			continue
		}
		if got := o.String(); got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	bad := []string{
		"", "null", "admin.acme.test", "https://", "https://admin.acme.test/", "https://admin.acme.test/x",
		"https://admin.acme.test?x", "https://admin.acme.test#x", "https://*.acme.test", "*",
		"ftp://admin.acme.test", "https://user@admin.acme.test", "https://admin.acme.test:0",
		"https://admin.acme.test:99999", "https://admin.acme.test:abc", "https://admin..acme.test",
		"https://ａdmin.acme.test", "https://admin.acme.test, https://evil.test", "javascript://x",
	}
	for _, in := range bad {
		if o, err := ParseOrigin(in); err == nil || !errors.Is(err, ErrBadOrigin) {
			t.Errorf("ParseOrigin(%q) = %v, %v; want an ErrBadOrigin", in, o, err)
		}
	}
}

func TestValidateTrustedOriginsAndMFA(t *testing.T) {
	ts := []Tenant{good("acme")}
	ts[0].TrustedOrigins = []string{"HTTPS://Admin.Acme.Test:443", "http://localhost:3000"}
	ts[0].MFA = MFAOff
	if err := Validate(ts, testOpts(ValidateOptions{})); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := strings.Join(ts[0].TrustedOrigins, " "); got != "https://admin.acme.test http://localhost:3000" {
		t.Errorf("trustedOrigins stored as %q, want canonical", got)
	}

	ts = []Tenant{good("acme")}
	ts[0].TrustedOrigins = []string{"https://*.acme.test", "https://admin.acme.test/", "null", "https://a.test", "HTTPS://A.test"}
	ts[0].MFA = "sometimes"
	err := Validate(ts, testOpts(ValidateOptions{}))
	if err == nil {
		t.Fatal("Validate accepted bad trustedOrigins")
	}
	for _, want := range []string{
		`tenant "acme": trustedOrigins[0] "https://*.acme.test": not an origin: wildcards are not allowed`,
		`tenant "acme": trustedOrigins[1] "https://admin.acme.test/": not an origin: an origin has no path`,
		`tenant "acme": trustedOrigins[2] "null": not an origin: the opaque origin null`,
		`tenant "acme": trustedOrigins[4] "HTTPS://A.test": duplicates trustedOrigins[3]`,
		`tenant "acme": mfa "sometimes": must be off, optional or required`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	for _, policy := range []string{"", MFAOff, MFAOptional, MFARequired} {
		ts = []Tenant{good("acme")}
		ts[0].MFA = policy
		if err := Validate(ts, testOpts(ValidateOptions{})); err != nil {
			t.Errorf("mfa %q: %v", policy, err)
		}
	}

	ts = []Tenant{good("acme")}
	for i := 0; i <= maxTrustedOrigins; i++ {
		ts[0].TrustedOrigins = append(ts[0].TrustedOrigins, "https://o"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+".test:"+strconv.Itoa(1000+i))
	}
	if err := Validate(ts, testOpts(ValidateOptions{})); err == nil || !strings.Contains(err.Error(), "trustedOrigins: more than 64 origins") {
		t.Errorf("65 trusted origins: %v", err)
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://admin.acme.test", "http://localhost:3000", "null", "https://[::1]:8443", "HTTPS://A.test:443", "https://x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseOrigin(raw)
		if err != nil {
			return
		}
		// The canonical form parses to itself: comparing canonical
		// strings is comparing origins.
		o2, err := ParseOrigin(o.String())
		if err != nil || o2 != o {
			t.Fatalf("ParseOrigin(%q) = %v; its String %q parses to %v, %v", raw, o, o.String(), o2, err)
		}
		if o.Scheme != "http" && o.Scheme != "https" {
			t.Fatalf("scheme %q", o.Scheme)
		}
		if strings.ContainsAny(o.String()[len(o.Scheme)+3:], "/?#@* ") {
			t.Fatalf("ParseOrigin(%q) = %q keeps a path, userinfo or wildcard", raw, o.String())
		}
	})
}
