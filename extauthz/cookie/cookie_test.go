package cookie

import (
	"slices"
	"strings"
	"testing"
)

func collect(header string) []Pair {
	return slices.Collect(Pairs(header))
}

func TestPairs(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []Pair
	}{
		{"empty", "", nil},
		{"one", "a=1", []Pair{{"a", "1"}}},
		{"browser form", "a=1; b=2; c=3", []Pair{{"a", "1"}, {"b", "2"}, {"c", "3"}}},
		{"no space", "a=1;b=2", []Pair{{"a", "1"}, {"b", "2"}}},
		{"tabs and spaces around", " \ta = 1 \t; b=2 ", []Pair{{"a", "1"}, {"b", "2"}}},
		{"empty segments", ";;a=1;; ;b=2;", []Pair{{"a", "1"}, {"b", "2"}}},
		{"quoted value", `a="x y"`, []Pair{{"a", "x y"}}},
		{"one quote only", `a="x`, []Pair{{"a", `"x`}}},
		{"empty value", "a=; b=", []Pair{{"a", ""}, {"b", ""}}},
		{"empty quoted value", `a=""`, []Pair{{"a", ""}}},
		{"equals in value", "a=b=c", []Pair{{"a", "b=c"}}},
		{"nameless", "abc; =def", []Pair{{"", "abc"}, {"", "def"}}},
		// RFC 6265 separates pairs with ";" only: a comma is a value byte.
		{"comma is not a separator", "a=1, b=2", []Pair{{"a", "1, b=2"}}},
		{"comma smuggling", `x="junk, __Host-tenantgate=evil"; __Host-tenantgate=good`,
			[]Pair{{"x", "junk, __Host-tenantgate=evil"}, {"__Host-tenantgate", "good"}}},
		{"Envoy joining two HTTP/1 Cookie lines", "a=1; b=2,__Host-tenantgate=t",
			[]Pair{{"a", "1"}, {"b", "2,__Host-tenantgate=t"}}},
		// Only SP and HTAB are whitespace: U+2000 stays part of the name.
		{"unicode space before a prefix", "\u2000__Host-tenantgate=x", []Pair{{"\u2000__Host-tenantgate", "x"}}},
		{"NBSP", "\u00a0a=1", []Pair{{"\u00a0a", "1"}}},
		{"case kept", "__HOST-Tenantgate=x", []Pair{{"__HOST-Tenantgate", "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(tc.header); !slices.Equal(got, tc.want) {
				t.Errorf("Pairs(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

func TestPairsStopsWhenAsked(t *testing.T) {
	n := 0
	for range Pairs("a=1; b=2; c=3") {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("iterated %d pairs after break at 2", n)
	}
}

func TestValues(t *testing.T) {
	lines := []string{
		`x="junk, s=evil"; s=one`,
		"s=two; t=other; s=\"three\"",
		"s=four",
	}
	tests := []struct {
		name string
		max  int
		want []string
	}{
		{"all", 0, []string{"one", "two", "three", "four"}},
		{"bounded", 2, []string{"one", "two"}},
		{"exactly all", 4, []string{"one", "two", "three", "four"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Values(lines, "s", tc.max); !slices.Equal(got, tc.want) {
				t.Errorf("Values(s, %d) = %q, want %q", tc.max, got, tc.want)
			}
		})
	}
	if got := Values(lines, "S", 0); got != nil {
		t.Errorf("names are case-sensitive: Values(S) = %q", got)
	}
	if got := Values(nil, "s", 0); got != nil {
		t.Errorf("no lines: %q", got)
	}
}

func TestWithout(t *testing.T) {
	tg := func(name string) bool { return name == "tenantgate" }
	tests := []struct {
		name, header string
		want         string
		changed      bool
	}{
		{"nothing to drop is untouched", "a=1;b=2;  c=3", "a=1;b=2;  c=3", false},
		{"empty", "", "", false},
		{"middle", "a=1; tenantgate=T; b=2", "a=1; b=2", true},
		{"first", "tenantgate=T; a=1", "a=1", true},
		{"last", "a=1; tenantgate=T", "a=1", true},
		{"only", "tenantgate=T", "", true},
		{"only, with separators", " ; tenantgate=T ;; ", "", true},
		{"several", "tenantgate=A; a=1; tenantgate=B; b=2; tenantgate=C", "a=1; b=2", true},
		{"app bytes kept exactly", `a="x y";tenantgate=T;b=%20,=;  c`, `a="x y";b=%20,=;  c`, true},
		{"quoted session value", `a=1; tenantgate="T"`, "a=1", true},
		{"spaced name", "a=1;  tenantgate =T", "a=1", true},
		{"a comma-smuggled name is not a pair", `x="j, tenantgate=T"; a=1`, `x="j, tenantgate=T"; a=1`, false},
		{"a lookalike is not dropped", "tenantgatex=1; Tenantgate=2", "tenantgatex=1; Tenantgate=2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := Without(tc.header, tg)
			if got != tc.want || changed != tc.changed {
				t.Errorf("Without(%q) = %q, %v; want %q, %v", tc.header, got, changed, tc.want, tc.changed)
			}
		})
	}
}

// TestWithoutJoined: Envoy's CheckRequest headers map joins several Cookie
// lines with ",", so a "," may end a line there: a name of tenantgate's
// that starts a ","-separated piece is taken out too, whatever it is (a
// second line, or a value a sibling planted). Everything else stays byte
// for byte, separators included.
func TestWithoutJoined(t *testing.T) {
	tg := func(name string) bool { return name == "tenantgate" }
	tests := []struct {
		name, header string
		want         string
		changed      bool
	}{
		{"nothing to drop is untouched", `a=1,b=2;  c="x, y"`, `a=1,b=2;  c="x, y"`, false},
		{"empty", "", "", false},
		{"a pair as Without drops it", "a=1; tenantgate=T; b=2", "a=1; b=2", true},
		{"a second line", "a=1,tenantgate=T", "a=1", true},
		{"a second line with more cookies", "a=1,tenantgate=T; b=2", "a=1; b=2", true},
		{"a second line, spaced", "a=1, tenantgate=T ;b=2", "a=1;b=2", true},
		{"a first line", "tenantgate=T,a=1", "a=1", true},
		{"a second and a third line", "a=1,tenantgate=T,b=2", "a=1,b=2", true},
		{"the strongest separator around a dropped piece stays", "a=1;tenantgate=T,b=2", "a=1;b=2", true},
		{"only tenantgate's", "tenantgate=A,tenantgate=B; tenantgate=C", "", true},
		{"only separators left", " , tenantgate=T ,; ", "", true},
		{"a planted value loses the smuggled piece", `x="j, tenantgate=T, k"; a=1`, `x="j, k"; a=1`, true},
		{"a lookalike is not dropped", "a=1,tenantgatex=1, Tenantgate=2", "a=1,tenantgatex=1, Tenantgate=2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := WithoutJoined(tc.header, tg)
			if got != tc.want || changed != tc.changed {
				t.Errorf("WithoutJoined(%q) = %q, %v; want %q, %v", tc.header, got, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestOwned(t *testing.T) {
	owned := []string{
		"__Host-tenantgate", "tenantgate",
		"__Secure-tenantgate.acme", "tenantgate.acme",
		"__Host-tenantgate-csrf", "tenantgate-csrf",
		"__Host-tenantgate-global", "tenantgate-global",
		"__Host-tenantgate-switch", "__Host-tenantgate-switch.acme", "tenantgate-switch.acme",
		"__Host-tenantgate-intent", "tenantgate-intent.acme",
		"__Host-tg-idt", "__Host-tg-idt.acme", "tg-idt",
		"__Host-tg-attempt-AbC_12-x", "tg-attempt-x",
	}
	for _, name := range owned {
		if !Owned(name) {
			t.Errorf("Owned(%q) = false, want true", name)
		}
	}
	notOwned := []string{
		"", "session", "app", "tenantgatex", "Tenantgate", "__host-tenantgate", "__HOST-tenantgate",
		"tenantgate.", "tenantgate.a.b", "__Host-tg-attempt-", "tg-attempt", "tg-idtx", "tg-other",
		"x-tenantgate", "__Host-__Secure-tenantgate", " tenantgate", "\u2000tenantgate", "tenantgate-csrfx",
	}
	for _, name := range notOwned {
		if Owned(name) {
			t.Errorf("Owned(%q) = true, want false", name)
		}
	}
}

// TestWithoutKeepsEveryOtherPair checks the property the upstream relies
// on across a range of shapes: what Without keeps parses to exactly the
// pairs not dropped, in order.
func TestWithoutKeepsEveryOtherPair(t *testing.T) {
	for _, h := range []string{
		"a=1; tenantgate=2; b=3",
		"; ;tenantgate=1;a= 2 ;b",
		`tenantgate="x;y"; c=d`,
		strings.Repeat("tenantgate=x; ", 50) + "last=1",
	} {
		checkWithout(t, h, func(n string) bool { return n == "tenantgate" })
	}
}

// checkWithout asserts Without's contract for one header.
func checkWithout(t *testing.T, header string, drop func(string) bool) {
	t.Helper()
	var want []Pair
	for p := range Pairs(header) {
		if !drop(p.Name) {
			want = append(want, p)
		}
	}
	got, changed := Without(header, drop)
	if !changed {
		if got != header {
			t.Fatalf("Without(%q) changed nothing but returned %q", header, got)
		}
		return
	}
	if kept := collect(got); !slices.Equal(kept, want) {
		t.Fatalf("Without(%q) = %q: pairs %q, want %q", header, got, kept, want)
	}
	if got != strings.Trim(got, " \t") {
		t.Fatalf("Without(%q) = %q: whitespace left at an end", header, got)
	}
	if len(want) == 0 && got != "" {
		t.Fatalf("Without(%q) = %q: no pair left, want \"\"", header, got)
	}
}
