package login

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
)

// The sign-in pages' colours. Every colour the stylesheet uses is one of
// these, written into the page as a CSS custom property by (palette).css, so
// the contrast of every pair that carries text or marks a control is checked
// by the tests (WCAG 2.2 §1.4.3: 4.5:1 for text; §1.4.11 and §2.4.13: 3:1
// for control borders and focus indicators).
var (
	lightScheme = scheme{
		Page: "#f3f4f6", Card: "#ffffff", Text: "#1b1f24", Muted: "#4b5563",
		Field: "#ffffff", FieldBorder: "#6b7280",
		AlertBg: "#fef2f2", AlertText: "#991b1b", AlertBorder: "#b91c1c",
		NoteBg: "#eff6ff", NoteText: "#1e3a8a", NoteBorder: "#1d4ed8",
		DisabledBg: "#e5e7eb", DisabledText: "#374151",
		Link: "#1d4ed8", Ring: "#1d4ed8",
	}
	darkScheme = scheme{
		Page: "#111827", Card: "#1f2937", Text: "#e5e7eb", Muted: "#9ca3af",
		Field: "#111827", FieldBorder: "#9ca3af",
		AlertBg: "#450a0a", AlertText: "#fecaca", AlertBorder: "#f87171",
		NoteBg: "#172554", NoteText: "#bfdbfe", NoteBorder: "#60a5fa",
		DisabledBg: "#374151", DisabledText: "#e5e7eb",
		Link: "#93c5fd", Ring: "#93c5fd",
	}
)

// defaultAccent is the primary button's colour for a tenant without
// branding.accentColor, and on the apex host.
const defaultAccent = "#1d4ed8"

// Minimum contrast ratios (WCAG 2.2).
const (
	minTextContrast    = 4.5 // §1.4.3, normal-size text
	minNonTextContrast = 3.0 // §1.4.11 and §2.4.13: borders, focus rings
)

// scheme is one colour scheme (light or dark). Link and Ring are the
// defaults an accent replaces only where it stays readable.
type scheme struct {
	Page, Card, Text, Muted         string
	Field, FieldBorder              string
	AlertBg, AlertText, AlertBorder string
	NoteBg, NoteText, NoteBorder    string
	DisabledBg, DisabledText        string
	Link, Ring                      string
	Accent, OnAccent, AccentHover   string
}

// palette is the two schemes of one page, with a tenant's accent applied.
type palette struct {
	Light, Dark scheme
}

// paletteFor applies an accent colour ("#rgb" or "#rrggbb"; anything else,
// including "", means defaultAccent) to both schemes:
//
//   - the primary button is the accent, its text white if white reaches
//     4.5:1 on it and black otherwise. One of the two always does: for a
//     colour of relative luminance L the ratios are 1.05/(L+0.05) against
//     white and (L+0.05)/0.05 against black, whose product is 21, so the
//     larger is at least √21 ≈ 4.58. No accent needs to be refused
//     (TestEveryAccentHasReadableText checks every #rrggbb);
//   - on hover the button moves away from its text colour (darker under
//     white text, lighter under black), so its contrast only grows;
//   - links take the accent where it reaches 4.5:1 on the card, focus rings
//     where it reaches 3:1; otherwise they keep the scheme's own colour.
func paletteFor(accent string) palette {
	c, err := tenants.ParseAccentColor(accent)
	if err != nil {
		c = mustColor(defaultAccent)
	}
	on, hover := onAccent(c)
	p := palette{Light: lightScheme, Dark: darkScheme}
	for _, s := range []*scheme{&p.Light, &p.Dark} {
		s.Accent, s.OnAccent, s.AccentHover = hexColor(c), hexColor(on), hexColor(hover)
		card := mustColor(s.Card)
		if contrastRatio(c, card) >= minTextContrast {
			s.Link = hexColor(c)
		}
		if contrastRatio(c, card) >= minNonTextContrast {
			s.Ring = hexColor(c)
		}
	}
	return p
}

var (
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	black = color.RGBA{0, 0, 0, 0xff}
)

// onAccent picks the text colour for a button of colour c, and the button's
// hover colour: c mixed 15% towards black under white text, towards white
// under black text.
func onAccent(c color.RGBA) (text, hover color.RGBA) {
	if contrastRatio(c, white) >= minTextContrast {
		return white, mix(c, black, 0.15)
	}
	return black, mix(c, white, 0.15)
}

// mix moves c the fraction f of the way to d, channel by channel in sRGB.
// Each channel moves monotonically, so mixing towards black never raises
// the relative luminance and mixing towards white never lowers it.
func mix(c, d color.RGBA, f float64) color.RGBA {
	ch := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + (float64(b)-float64(a))*f)) }
	return color.RGBA{ch(c.R, d.R), ch(c.G, d.G), ch(c.B, d.B), 0xff}
}

// relativeLuminance is WCAG 2.2's relative luminance of an sRGB colour
// (the 0.04045 threshold of IEC 61966-2-1).
func relativeLuminance(c color.RGBA) float64 {
	lin := func(v uint8) float64 {
		s := float64(v) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
}

// contrastRatio is WCAG 2.2's contrast ratio, (L1+0.05)/(L2+0.05) with L1
// the lighter: from 1 (same colour) to 21 (black on white).
func contrastRatio(a, b color.RGBA) float64 {
	la, lb := relativeLuminance(a), relativeLuminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// mustColor parses one of the palette's own constants.
func mustColor(s string) color.RGBA {
	c, err := tenants.ParseAccentColor(s)
	if err != nil {
		panic("login: bad palette colour " + s)
	}
	return c
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// css writes the palette as custom properties: the light scheme on :root,
// the dark one under prefers-color-scheme: dark. Every value is a hexColor
// of a parsed colour or a constant above, so nothing a tenant file holds
// reaches the stylesheet as text.
func (p palette) css() string {
	var b strings.Builder
	b.WriteString(":root{color-scheme:light dark;")
	p.Light.vars(&b)
	b.WriteString("}\n@media (prefers-color-scheme:dark){:root{")
	p.Dark.vars(&b)
	b.WriteString("}}\n")
	return b.String()
}

func (s scheme) vars(b *strings.Builder) {
	for _, v := range [...]struct{ name, value string }{
		{"page", s.Page}, {"card", s.Card}, {"text", s.Text}, {"muted", s.Muted},
		{"field", s.Field}, {"field-border", s.FieldBorder},
		{"alert-bg", s.AlertBg}, {"alert-text", s.AlertText}, {"alert-border", s.AlertBorder},
		{"note-bg", s.NoteBg}, {"note-text", s.NoteText}, {"note-border", s.NoteBorder},
		{"disabled-bg", s.DisabledBg}, {"disabled-text", s.DisabledText},
		{"link", s.Link}, {"ring", s.Ring},
		{"accent", s.Accent}, {"on-accent", s.OnAccent}, {"accent-hover", s.AccentHover},
	} {
		b.WriteString("--" + v.name + ":" + v.value + ";")
	}
}
