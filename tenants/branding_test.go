package tenants

import (
	"image/color"
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
