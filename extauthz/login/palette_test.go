package login

import (
	"image/color"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestContrastRatio(t *testing.T) {
	// Expected values as published by the WebAIM contrast checker.
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#767676", "#ffffff", 4.54},
		{"#777777", "#ffffff", 4.48},
		{"#0000ff", "#ffffff", 8.59},
		{"#ff0000", "#ffffff", 4.00},
		{"#ff0000", "#000000", 5.25},
		{"#00ff00", "#ffffff", 1.37},
		{"#1d4ed8", "#ffffff", 6.70},
	} {
		got := contrastRatio(mustColor(tc.a), mustColor(tc.b))
		if math.Abs(got-tc.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f, want %.2f", tc.a, tc.b, got, tc.want)
		}
		if back := contrastRatio(mustColor(tc.b), mustColor(tc.a)); back != got {
			t.Errorf("contrast is not symmetric for %s, %s", tc.a, tc.b)
		}
	}
}

func TestOnAccent(t *testing.T) {
	for _, tc := range []struct{ accent, text string }{
		{"#0a66c2", "#ffffff"}, // LinkedIn blue: white 5.8:1
		{"#1d4ed8", "#ffffff"},
		{"#767676", "#ffffff"}, // white just passes, 4.54:1
		{"#777777", "#000000"}, // white just fails, 4.48:1
		{"#ff0000", "#000000"}, // pure red: white 4.0:1, black 5.25:1
		{"#ffcc00", "#000000"},
		{"#000000", "#ffffff"},
		{"#ffffff", "#000000"},
	} {
		text, hover := onAccent(mustColor(tc.accent))
		if hexColor(text) != tc.text {
			t.Errorf("text on %s = %s, want %s", tc.accent, hexColor(text), tc.text)
		}
		if c := contrastRatio(text, hover); c < contrastRatio(text, mustColor(tc.accent)) {
			t.Errorf("hover on %s lowers the contrast to %.2f", tc.accent, c)
		}
	}
}

// TestEveryAccentHasReadableText: every colour a tenant file can hold gets
// button text of at least 4.5:1, at rest and on hover, so no accent is
// refused for contrast. It checks every #rgb colour and every third value
// of each #rrggbb channel (the bound itself is proved in paletteFor's
// comment: the larger ratio is at least √21).
func TestEveryAccentHasReadableText(t *testing.T) {
	worst := 21.0
	for _, step := range []int{17, 3} {
		for r := 0; r < 256; r += step {
			for g := 0; g < 256; g += step {
				for b := 0; b < 256; b += step {
					c := color.RGBA{uint8(r), uint8(g), uint8(b), 0xff}
					text, hover := onAccent(c)
					rest := contrastRatio(text, c)
					worst = min(worst, rest)
					if rest < minTextContrast || contrastRatio(text, hover) < rest {
						t.Fatalf("%s: text %s at %.3f:1, hover %s at %.3f:1", hexColor(c), hexColor(text), rest, hexColor(hover), contrastRatio(text, hover))
					}
				}
			}
		}
	}
	if worst > 4.6 || worst < minTextContrast {
		t.Errorf("lowest button text contrast %.3f:1: the sweep missed the colours near the white/black cut-over", worst)
	}
}

// TestSchemeContrast checks every pair of colours the stylesheet puts
// together, in both schemes, for the default accent and for accents at the
// edges (too light for links on white, too dark for the dark card, and
// mid-grey).
func TestSchemeContrast(t *testing.T) {
	for _, accent := range []string{"", "#0a66c2", "#ffcc00", "#000000", "#ffffff", "#777777", "#3b82f6", "#14532d"} {
		p := paletteFor(accent)
		for name, s := range map[string]scheme{"light": p.Light, "dark": p.Dark} {
			for _, pair := range []struct {
				what   string
				fg, bg string
				min    float64
			}{
				{"text on page", s.Text, s.Page, minTextContrast},
				{"text on card", s.Text, s.Card, minTextContrast},
				{"muted on card", s.Muted, s.Card, minTextContrast},
				{"text in field", s.Text, s.Field, minTextContrast},
				{"alert text", s.AlertText, s.AlertBg, minTextContrast},
				{"note text", s.NoteText, s.NoteBg, minTextContrast},
				{"disabled button text", s.DisabledText, s.DisabledBg, minTextContrast},
				{"link on card", s.Link, s.Card, minTextContrast},
				{"button text", s.OnAccent, s.Accent, minTextContrast},
				{"button text on hover", s.OnAccent, s.AccentHover, minTextContrast},
				{"secondary button on hover", s.Text, s.Page, minTextContrast},
				{"focus ring on card", s.Ring, s.Card, minNonTextContrast},
				{"field border on card", s.FieldBorder, s.Card, minNonTextContrast},
				{"field border on field", s.FieldBorder, s.Field, minNonTextContrast},
				{"invalid field border", s.AlertBorder, s.Card, minNonTextContrast},
			} {
				if c := contrastRatio(mustColor(pair.fg), mustColor(pair.bg)); c < pair.min {
					t.Errorf("accent %q, %s scheme: %s %s on %s is %.2f:1, below %.1f:1", accent, name, pair.what, pair.fg, pair.bg, c, pair.min)
				}
			}
		}
	}
}

func TestPaletteUsesAccentOnlyWhereReadable(t *testing.T) {
	for _, tc := range []struct {
		accent                       string
		lightLink, lightRing         string
		darkLink, darkRing, onAccent string
	}{
		// Readable on white (5.8:1), not on the dark card (2.3:1 link, below
		// 3:1 ring).
		{"#0a66c2", "#0a66c2", "#0a66c2", darkScheme.Link, darkScheme.Ring, "#ffffff"},
		// Too light for the white card, fine on the dark one.
		{"#ffcc00", lightScheme.Link, lightScheme.Ring, "#ffcc00", "#ffcc00", "#000000"},
		// Rings only: 3.7:1 on white and 3.4:1 on the dark card are enough
		// for a focus ring, not for link text. White text would be 3.7:1.
		{"#3b82f6", lightScheme.Link, "#3b82f6", darkScheme.Link, "#3b82f6", "#000000"},
	} {
		p := paletteFor(tc.accent)
		got := []string{p.Light.Link, p.Light.Ring, p.Dark.Link, p.Dark.Ring, p.Light.OnAccent}
		want := []string{tc.lightLink, tc.lightRing, tc.darkLink, tc.darkRing, tc.onAccent}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: light link, ring, dark link, ring, button text = %v, want %v", tc.accent, got, want)
		}
	}
}

// TestPaletteCSS: the stylesheet is the palette's custom properties plus a
// base that names no colour of its own; an accent that is not a colour
// leaves the default.
func TestPaletteCSS(t *testing.T) {
	if m := regexp.MustCompile(`#[0-9a-fA-F]{3,8}\b|\brgb\(|\bhsl\(`).FindString(baseCSS); m != "" {
		t.Errorf("style.css names a colour (%s): colours belong in the palette, where their contrast is tested", m)
	}
	for _, v := range regexp.MustCompile(`var\(--([a-z-]+)\)`).FindAllStringSubmatch(baseCSS, -1) {
		if !strings.Contains(paletteFor("").css(), "--"+v[1]+":") {
			t.Errorf("style.css uses --%s, which the palette does not define", v[1])
		}
	}
	def := paletteFor("").css()
	for _, bad := range []string{"red", "#fff;}body{display:none}", "#12345", "javascript:x", "#1d4ed8 "} {
		if got := paletteFor(bad).css(); got != def {
			t.Errorf("paletteFor(%q) is not the default:\n%s", bad, got)
		}
	}
	if got := paletteFor("#ABC").css(); !strings.Contains(got, "--accent:#aabbcc;") {
		t.Errorf("#ABC not normalised:\n%s", got)
	}
}
