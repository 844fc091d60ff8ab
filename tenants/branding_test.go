package tenants

import (
	"fmt"
	"image/color"
	"regexp"
	"strings"
	"testing"
)

func TestLogoOrigin(t *testing.T) {
	for _, tc := range []struct {
		raw, want string // want "" means refused
	}{
		{"https://cdn.acme.test/logo.png", "https://cdn.acme.test"},
		{"https://CDN.Acme.Test./logo.png", "https://cdn.acme.test"},
		{"https://cdn.acme.test:8443/l.svg?v=1", "https://cdn.acme.test:8443"},
		{"https://cdn.acme.test:443/l.svg", "https://cdn.acme.test"},
		{"https://cdn.acme.test:0443/l.svg", "https://cdn.acme.test"},
		{"https://xn--bcher-kva.test/l.png", "https://xn--bcher-kva.test"},
		{"HTTPS://cdn.acme.test/l.png", "https://cdn.acme.test"},
		{"https://cdn.acme.test", "https://cdn.acme.test"},
		{"", ""},
		{"http://cdn.acme.test/l.png", ""},
		{"https:cdn.acme.test/l.png", ""},
		{"https:///l.png", ""},
		{"https://cdn.acme.test:/l.png", ""},
		{"https://cdn.acme.test:65536/l.png", ""},
		{"https://user@cdn.acme.test/l.png", ""},
		{"https://cdn.acme.test/l.png#", ""},
		{"https://10.0.0.1/l.png", ""},
		{"https://[::1]/l.png", ""},
		{"https://cdn acme.test/l.png", ""},
		{"https://cdn.acme.test/l.png\n", ""},
		{"https://cdn.acme.test/<l>.png", ""},
		{"https://cdn.acme.test/" + strings.Repeat("x", 2100), ""},
		{"data:image/svg+xml,<svg/>", ""},
	} {
		got, err := LogoOrigin(tc.raw)
		if tc.want == "" {
			if err == nil {
				t.Errorf("LogoOrigin(%q) = %q, want an error", tc.raw, got)
			} else if tc.raw != "" && strings.Contains(err.Error(), tc.raw) {
				t.Errorf("LogoOrigin(%q): error %q repeats the URL", tc.raw, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LogoOrigin(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

func TestParseAccentColor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want color.RGBA
		ok   bool
	}{
		{"#0a66c2", color.RGBA{0x0a, 0x66, 0xc2, 0xff}, true},
		{"#0A66C2", color.RGBA{0x0a, 0x66, 0xc2, 0xff}, true},
		{"#fff", color.RGBA{0xff, 0xff, 0xff, 0xff}, true},
		{"#a1F", color.RGBA{0xaa, 0x11, 0xff, 0xff}, true},
		{"#000000", color.RGBA{0, 0, 0, 0xff}, true},
		{"", color.RGBA{}, false},
		{"#", color.RGBA{}, false},
		{"0a66c2", color.RGBA{}, false},
		{"#0a66c", color.RGBA{}, false},
		{"#0a66c2ff", color.RGBA{}, false},
		{"#ffff", color.RGBA{}, false},
		{"#gggggg", color.RGBA{}, false},
		{"# fff", color.RGBA{}, false},
		{"red", color.RGBA{}, false},
		{"rgb(1,2,3)", color.RGBA{}, false},
		{"#fff;}", color.RGBA{}, false},
		{"＃fff", color.RGBA{}, false},
	} {
		got, err := ParseAccentColor(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAccentColor(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzLogoOrigin: whatever a tenant file holds, an accepted logo URL yields
// an origin that is one CSP host source (https, a canonical host, an
// optional port) and nothing that could end or extend the directive.
func FuzzLogoOrigin(f *testing.F) {
	for _, s := range logoSeeds {
		f.Add(s)
	}
	origin := regexp.MustCompile(`^https://[a-z0-9.-]+(:[1-9][0-9]{0,4})?$`)
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := LogoOrigin(raw)
		if err != nil {
			if o != "" {
				t.Fatalf("error with output %q", o)
			}
			return
		}
		if !origin.MatchString(o) {
			t.Fatalf("LogoOrigin(%q) = %q: not a single https host source", raw, o)
		}
		if len(raw) > maxLogoURLLen || strings.ContainsAny(raw, " \t\r\n\"<>\\#") {
			t.Fatalf("LogoOrigin accepted %q", raw)
		}
	})
}

// FuzzParseAccentColor: an accepted colour is exactly #rgb or #rrggbb and
// reads back the same.
func FuzzParseAccentColor(f *testing.F) {
	for _, s := range []string{"#0a66c2", "#FFF", "#abc", "", "#", "red", "#0a66c2ff", "#ggg", "#fff;}", "＃fff", "#\x00\x00\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAccentColor(s)
		if err != nil {
			return
		}
		if (len(s) != 4 && len(s) != 7) || c.A != 0xff {
			t.Fatalf("ParseAccentColor(%q) = %v", s, c)
		}
		long := fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
		if len(s) == 7 && !strings.EqualFold(long, s) {
			t.Fatalf("ParseAccentColor(%q) = %s", s, long)
		}
	})
}

// logoSeeds are the seeds of FuzzLogoOrigin (and of its committed corpus,
// testdata/fuzz/FuzzLogoOrigin): URLs a tenant file might hold, and the
// ways one could try to smuggle a second source or directive into the
// policy.
var logoSeeds = []string{
	"https://cdn.acme.test/logo.png", "https://CDN.acme.test:8443/l.svg?v=1&x=2", "https://cdn.acme.test:443/",
	"https://cdn.acme.test;script-src *", "https://cdn.acme.test/;img-src *", "https://cdn.acme.test, https://evil.test",
	"https://cdn.acme.test/ https://evil.test", "https://cdn.acme.test\thttps://evil.test", "https://*.acme.test/l.png",
	"https://cdn.acme.test:*/l.png", "https://u:p@cdn.acme.test/", "https://evil.test\\@cdn.acme.test/",
	"https://evil.test%2F@cdn.acme.test/", "https://[::1]/", "https://127.0.0.1/", "https://0x7f.1/",
	"https://bücher.test/", "https://xn--bcher-kva.test/", "http://cdn.acme.test/", "data:image/svg+xml,<svg/>",
	"javascript:alert(1)//https://cdn.acme.test", "//cdn.acme.test/l.png", "https:cdn.acme.test", "https://cdn.acme.test#x",
	"https://cdn.acme.test:0/", "https://cdn.acme.test:00443/", "https://cdn.acme.test'/", "https://cdn.acme.test\"/",
}
