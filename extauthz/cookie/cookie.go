// Package cookie is tenantgate's one reader of the Cookie request header,
// used by the Check path and by the sign-in pages alike, and the one place
// that knows which cookie names are tenantgate's own.
//
// A Cookie header is a list of name=value pairs separated by ";" (RFC 6265
// §4.2.1, §5.4), and by nothing else. A comma is an ordinary value byte:
// browsers send a cookie set as
//
//	x="junk, __Host-tenantgate=<attacker's session>"; Domain=<base domain>
//
// by a sibling subdomain verbatim, as one pair named x. A reader that also
// split on "," would find a __Host-tenantgate pair there, a name the
// browser only lets the host itself set, and sign the victim in as the
// attacker. Here a name counts only when it starts its own ";"-separated
// pair. Whitespace around names and values is SP and HTAB only (RFC 6265
// OWS): other Unicode spaces are name bytes, so "\u2000__Host-x" is not
// "__Host-x".
package cookie

import (
	"iter"
	"strings"
)

// Pair is one cookie-pair of a Cookie header.
type Pair struct {
	// Name is the cookie's name as sent, without the whitespace around it.
	// Names are case-sensitive. A pair without "=" has the empty name.
	Name string
	// Value is the cookie's value without the whitespace around it and
	// without one pair of enclosing double quotes (RFC 6265 §4.1.1
	// cookie-value). Nothing else is decoded or checked: a value is what the
	// reader of that cookie makes of it.
	Value string
}

// Pairs yields the non-empty pairs of one Cookie header value, in order.
// It never splits on anything but ";".
func Pairs(header string) iter.Seq[Pair] {
	return func(yield func(Pair) bool) {
		for header != "" {
			var seg string
			seg, header, _ = strings.Cut(header, ";")
			p, ok := parsePair(seg)
			if ok && !yield(p) {
				return
			}
		}
	}
}

// parsePair reads one ";"-separated segment; it reports false for a
// segment that is empty or only whitespace.
func parsePair(seg string) (Pair, bool) {
	seg = trimOWS(seg)
	if seg == "" {
		return Pair{}, false
	}
	name, value, ok := strings.Cut(seg, "=")
	if !ok {
		// A nameless cookie is sent as its bare value (RFC 6265bis §5.7.3).
		return Pair{Value: seg}, true
	}
	value = trimOWS(value)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return Pair{Name: trimOWS(name), Value: value}, true
}

// Values returns the values of the cookies called name in the given Cookie
// header values (one per header line, as http.Header holds them), in the
// order sent, at most max of them (all when max <= 0). An attacker able to
// plant cookies can add same-named ones, so callers try each value rather
// than trust the first, and max bounds what a stuffed header costs.
func Values(lines []string, name string, max int) []string {
	var out []string
	for _, line := range lines {
		for p := range Pairs(line) {
			if p.Name != name {
				continue
			}
			if max > 0 && len(out) == max {
				return out
			}
			out = append(out, p.Value)
		}
	}
	return out
}

// Without returns the Cookie header value with every pair whose name drop
// reports true taken out, and whether anything was. Everything else stays
// byte for byte: each remaining pair as sent, with the separator and
// whitespace that followed the pair before it; only whitespace left at either
// end is trimmed. Nothing dropped: header itself and false. Every pair
// dropped: "" (send no Cookie header at all).
func Without(header string, drop func(name string) bool) (string, bool) {
	return without(header, ";", drop)
}

// WithoutJoined is Without for a value that may be several Cookie lines
// joined with ",", as Envoy's CheckRequest headers map joins them (RFC 9110
// §5.3): a "," there may end a line, so a name that starts a
// ","-separated piece is taken out too when drop reports true for it, from
// that "," to the next separator. What that removes is either a second
// line's cookie or a value that holds such a name after a comma (which a
// sibling subdomain can plant); neither may reach the upstream. Reading
// never splits on "," (Pairs): only removal errs this way. Kept pieces stay
// byte for byte; where pieces were removed, the strongest separator around
// them (";" over ",") joins what is left.
func WithoutJoined(joined string, drop func(name string) bool) (string, bool) {
	return without(joined, ";,", drop)
}

// without takes out of header every piece between separators (any byte of
// seps) whose pair name drop reports true. See Without and WithoutJoined.
func without(header, seps string, drop func(name string) bool) (string, bool) {
	any := false
	for _, piece := range pieces(header, seps) {
		if p, ok := parsePair(piece); ok && drop(p.Name) {
			any = true
			break
		}
	}
	if !any {
		return header, false // the common case on the Check path: no allocation
	}
	var b strings.Builder
	var pending byte // the separator that will join the next kept piece
	kept := 0
	for sep, piece := range pieces(header, seps) {
		pending = max(pending, sep) // ';' (0x3b) is stronger than ',' (0x2c)
		if p, ok := parsePair(piece); ok && drop(p.Name) {
			continue
		}
		if kept > 0 {
			b.WriteByte(pending)
		}
		b.WriteString(piece)
		pending = 0
		kept++
	}
	out := trimOWS(b.String())
	if strings.Trim(out, seps+" \t") == "" {
		return "", true
	}
	return out, true
}

// pieces yields the pieces of header between separators (any byte of seps,
// at most two), each with the separator before it (0 for the first).
//
// It is on the Check path for every request with a cookie, whose session
// token is hundreds of bytes without a separator: each separator is found
// with strings.IndexByte (vectorised), and where one next occurs is kept
// until the scan passes it, so the header is read once per separator byte
// however many pieces it has (strings.IndexAny tests byte by byte against
// a set, several times slower on a token).
func pieces(header, seps string) iter.Seq2[byte, string] {
	return func(yield func(byte, string) bool) {
		var next [2]int // absolute index of seps[k]'s next occurrence; -1: none
		for k := range next {
			next[k] = -1
			if k < len(seps) {
				next[k] = strings.IndexByte(header, seps[k])
			}
		}
		var sep byte
		start := 0
		for {
			i := -1
			for _, n := range next {
				if n >= 0 && (i < 0 || n < i) {
					i = n
				}
			}
			if i < 0 {
				yield(sep, header[start:])
				return
			}
			if !yield(sep, header[start:i]) {
				return
			}
			sep, start = header[i], i+1
			for k, n := range next {
				if n == i {
					if j := strings.IndexByte(header[start:], seps[k]); j >= 0 {
						next[k] = start + j
					} else {
						next[k] = -1
					}
				}
			}
		}
	}
}

// trimOWS removes SP and HTAB, and nothing else, from both ends.
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}
