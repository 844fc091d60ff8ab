package cookie

import (
	"slices"
	"strings"
	"testing"
)

// FuzzCookieHeader feeds arbitrary Cookie header values (seed corpus in
// testdata/fuzz/FuzzCookieHeader, written by internal/genseeds) to
// the parser and the upstream rewrite. It must never panic, and:
//   - a pair's name never holds ";" nor starts or ends with SP or HTAB, so
//     a name always began its own ";"-separated pair (no comma smuggling);
//   - a name Pairs reports is found by Values, and a name it does not
//     report is not;
//   - Without, dropping tenantgate's names, keeps every other pair exactly
//     and leaves no Owned name behind;
//   - WithoutJoined leaves no Owned name at the start of any ";"- or
//     ","-separated piece, and changes nothing when there is none.
func FuzzCookieHeader(f *testing.F) {
	for _, s := range []string{
		"a=1; __Host-tenantgate=t",
		`x="junk, __Host-tenantgate=evil"; __Host-tenantgate=good`,
		"a=1; b=2,__Host-tenantgate=t",
		"a=1,__Host-tenantgate=t; b=2",
		"\u2000__Host-tenantgate=x",
		"__Secure-tenantgate.acme=t; __Host-tenantgate-csrf=c; app=\"v w\"",
		";;=;\t=\t;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		names := map[string]bool{}
		for p := range Pairs(header) {
			if strings.ContainsRune(p.Name, ';') || strings.ContainsRune(p.Value, ';') {
				t.Fatalf("pair %q of %q holds a ';'", p, header)
			}
			if p.Name != strings.Trim(p.Name, " \t") {
				t.Fatalf("name %q of %q keeps whitespace", p.Name, header)
			}
			if !strings.HasPrefix(strings.TrimLeft(segmentOf(header, p.Name), " \t"), p.Name) {
				t.Fatalf("name %q of %q does not begin a ';'-separated segment", p.Name, header)
			}
			names[p.Name] = true
		}
		for name := range names {
			if name != "" && len(Values([]string{header}, name, 1)) != 1 {
				t.Fatalf("Values(%q) misses a pair of %q", name, header)
			}
		}
		if name := "__Host-tenantgate"; !names[name] && len(Values([]string{header}, name, 0)) != 0 {
			t.Fatalf("Values(%q) finds a pair Pairs does not report in %q", name, header)
		}
		checkWithout(t, header, Owned)
		out, _ := Without(header, Owned)
		for p := range Pairs(out) {
			if Owned(p.Name) {
				t.Fatalf("Without(%q) = %q keeps %q", header, out, p.Name)
			}
		}
		joined, changed := WithoutJoined(header, Owned)
		if !changed && joined != header {
			t.Fatalf("WithoutJoined(%q) changed nothing but returned %q", header, joined)
		}
		for _, piece := range pieces(joined, ";,") {
			if p, ok := parsePair(piece); ok && Owned(p.Name) {
				t.Fatalf("WithoutJoined(%q) = %q keeps %q", header, joined, p.Name)
			}
		}
	})
}

// segmentOf returns the first ";"-separated segment of header whose
// trimmed text starts with name.
func segmentOf(header, name string) string {
	for _, seg := range strings.Split(header, ";") {
		if strings.HasPrefix(strings.TrimLeft(seg, " \t"), name) {
			return seg
		}
	}
	return ""
}

// FuzzPieces holds pieces to the plain definition: split at every byte of
// seps, in order, each piece with the separator before it.
func FuzzPieces(f *testing.F) {
	for _, s := range []string{"", "a=1", "a=1; b=2", "a=1,b=2; c", ";;,,", "x;", ",x", "a=1, b=2; tenantgate=tok,c=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		for _, seps := range []string{";", ";,"} {
			type piece struct {
				sep byte
				s   string
			}
			var want []piece
			var sep byte
			rest := header
			for {
				i := strings.IndexAny(rest, seps)
				if i < 0 {
					want = append(want, piece{sep, rest})
					break
				}
				want = append(want, piece{sep, rest[:i]})
				sep, rest = rest[i], rest[i+1:]
			}
			var got []piece
			for sep, s := range pieces(header, seps) {
				got = append(got, piece{sep, s})
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pieces(%q, %q) = %q, want %q", header, seps, got, want)
			}
		}
	})
}
