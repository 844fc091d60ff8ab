package session

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file decodes a session token's compact JWS (RFC 7515 §7.1) for
// VerifyFor, more strictly than a general JWT library does: the segments are
// canonical unpadded base64url and nothing else, and header and claims are
// one JSON object each whose members are exactly the ones a session token
// may have, each named once, with the exact spelling (no case folding, no
// escapes in names) and the type it must have. Everything else is refused.

// Reasons decodeJWS and decodeClaims refuse their input, wrapped by Verify
// into errMalformed or errHeader. They never quote the input.
var (
	errSegments  = errors.New("not three segments")
	errBase64    = errors.New("a segment is not canonical unpadded base64url")
	errJSON      = errors.New("not a JSON object of the expected shape")
	errDuplicate = errors.New("a member appears twice")
	errType      = errors.New("a member has the wrong type")
)

// maxNumericDate is the largest exp, iat or nbf accepted: 9999-12-31T23:59:59Z.
// A larger value could not belong to a valid session anyway (exp − iat is at
// most MaxTTL and iat is not in the future), and the bound keeps every time
// computation far from overflow.
const maxNumericDate = 253402300799

// bytesOf views s as bytes without copying. The result must only be read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// jws is a compact JWS split and decoded: header and payload as JSON text,
// the signature as bytes, and the signing input (header.payload as sent).
type jws struct {
	header, payload string
	signature       []byte
	signingInput    string
}

// decodeJWS splits token into exactly three segments and decodes each with
// enc, which must be base64.RawURLEncoding.Strict(). Decoding fails on
// padding, on any character outside the base64url alphabet (including the
// line breaks the base64 package otherwise skips) and on non-zero trailing
// bits, so every accepted token has exactly one encoding.
func decodeJWS(enc *base64.Encoding, token string) (jws, error) {
	h, rest, ok1 := strings.Cut(token, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 {
		return jws{}, errSegments
	}
	buf := make([]byte, 0, enc.DecodedLen(len(h))+enc.DecodedLen(len(p))+enc.DecodedLen(len(s)))
	var hn, pn int
	for i, seg := range [3]string{h, p, s} {
		before := len(buf)
		var err error
		buf, err = enc.AppendDecode(buf, bytesOf(seg))
		// The decoder skips \r and \n; a segment that is not exactly the
		// encoding of what it decoded to held one.
		if err != nil || enc.EncodedLen(len(buf)-before) != len(seg) {
			return jws{}, errBase64
		}
		switch i {
		case 0:
			hn = len(buf)
		case 1:
			pn = len(buf) - hn
		}
	}
	text := string(buf[:hn+pn])
	return jws{header: text[:hn], payload: text[hn:], signature: buf[hn+pn:], signingInput: token[:len(h)+1+len(p)]}, nil
}

// jwsHeader is the protected header of a session token: exactly these three
// parameters. Each is a substring of the decoded header.
type jwsHeader struct {
	alg, typ, kid string
}

// headerParamError is a header parameter that is not allowed; it names the
// parameter only when it is one of the known dangerous ones (never input).
type headerParamError struct{ name string }

func (e headerParamError) Error() string {
	if e.name == "" {
		return "unknown parameter"
	}
	return "parameter " + e.name
}

// forbiddenHeaders are parameters that would let a token choose its own key
// or add processing rules (RFC 7515 §4.1.2-4.1.6, §4.1.11); they are named in
// the error because they are attacks, not mistakes.
var forbiddenHeaders = [...]string{"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// decodeHeader reads a JWS header: a JSON object with string members alg,
// typ and kid, each at most once, and nothing else. A forbidden or unknown
// parameter is a headerParamError; anything else wrong is errJSON,
// errDuplicate or errType. It does not check the values.
func decodeHeader(text string) (jwsHeader, error) {
	var h jwsHeader
	var seenAlg, seenTyp, seenKid bool
	sc := jsonScanner{s: text}
	err := sc.object(func(name string) error {
		var dst *string
		var seen *bool
		switch name {
		case "alg":
			dst, seen = &h.alg, &seenAlg
		case "typ":
			dst, seen = &h.typ, &seenTyp
		case "kid":
			dst, seen = &h.kid, &seenKid
		default:
			for _, f := range forbiddenHeaders {
				if name == f {
					return headerParamError{f}
				}
			}
			return headerParamError{}
		}
		if *seen {
			return errDuplicate
		}
		*seen = true
		var err error
		*dst, err = sc.str()
		return err
	})
	return h, err
}

// jwsClaims is a session token's payload as decoded, before any check.
// Strings are substrings of the payload text where they held no escape.
type jwsClaims struct {
	iss, sub, tid, tenant, email, sid, method string
	aud                                       []string
	roles, amr                                []string
	exp, iat, nbf                             int64
	hasExp, hasIat, hasNbf                    bool
}

// Claim names, as bits of a set.
const (
	claimIss = 1 << iota
	claimSub
	claimAud
	claimExp
	claimIat
	claimNbf
	claimTid
	claimTenant
	claimEmail
	claimRoles
	claimSid
	claimMethod
	claimAMR
)

// errUnknownClaim is a payload member that is not one of a session token's
// claims.
var errUnknownClaim = errors.New("unknown claim")

// decodeClaims reads a session token's payload: a JSON object whose members
// are among iss, sub, aud, exp, iat, nbf, tid, tenant, email, roles, sid,
// method and amr, each at most once. aud is a string or an array of
// strings, roles and amr arrays of strings, exp, iat and nbf non-negative integers (NumericDate in
// whole seconds, at most maxNumericDate), the others strings. null is not
// accepted anywhere. It does not check the values.
func decodeClaims(text string, c *jwsClaims) error {
	var seen int
	sc := jsonScanner{s: text}
	return sc.object(func(name string) error {
		var bit int
		switch name {
		case "iss":
			bit = claimIss
		case "sub":
			bit = claimSub
		case "aud":
			bit = claimAud
		case "exp":
			bit = claimExp
		case "iat":
			bit = claimIat
		case "nbf":
			bit = claimNbf
		case "tid":
			bit = claimTid
		case "tenant":
			bit = claimTenant
		case "email":
			bit = claimEmail
		case "roles":
			bit = claimRoles
		case "sid":
			bit = claimSid
		case "method":
			bit = claimMethod
		case "amr":
			bit = claimAMR
		default:
			return errUnknownClaim
		}
		if seen&bit != 0 {
			return errDuplicate
		}
		seen |= bit
		var err error
		switch bit {
		case claimIss:
			c.iss, err = sc.str()
		case claimSub:
			c.sub, err = sc.str()
		case claimTid:
			c.tid, err = sc.str()
		case claimTenant:
			c.tenant, err = sc.str()
		case claimEmail:
			c.email, err = sc.str()
		case claimSid:
			c.sid, err = sc.str()
		case claimMethod:
			c.method, err = sc.str()
		case claimExp:
			c.exp, err = sc.numericDate()
			c.hasExp = true
		case claimIat:
			c.iat, err = sc.numericDate()
			c.hasIat = true
		case claimNbf:
			c.nbf, err = sc.numericDate()
			c.hasNbf = true
		case claimAud:
			if sc.peek() == '"' {
				var a string
				a, err = sc.str()
				c.aud = append(c.aud, a)
			} else {
				c.aud, err = sc.strings(c.aud)
			}
		case claimRoles:
			c.roles, err = sc.strings(nil)
		case claimAMR:
			c.amr, err = sc.strings(nil)
		}
		return err
	})
}

// jsonScanner reads the JSON subset session tokens use (RFC 8259): objects
// with plain member names, strings, arrays of strings and non-negative
// integers. It is not a general JSON parser: whatever it does not expect is
// an error.
type jsonScanner struct {
	s string
	i int
}

// ws skips insignificant whitespace.
func (sc *jsonScanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (sc *jsonScanner) peek() byte {
	sc.ws()
	if sc.i < len(sc.s) {
		return sc.s[sc.i]
	}
	return 0
}

// take skips whitespace and consumes c if it is next.
func (sc *jsonScanner) take(c byte) bool {
	if sc.peek() == c {
		sc.i++
		return true
	}
	return false
}

// object reads the whole input as one object. For each member it reads the
// name and the colon and calls member with the name, which must read the
// value. Only whitespace may follow the object.
func (sc *jsonScanner) object(member func(name string) error) error {
	if !sc.take('{') {
		return errJSON
	}
	if !sc.take('}') {
		for {
			name, err := sc.name()
			if err != nil {
				return err
			}
			if !sc.take(':') {
				return errJSON
			}
			if err := member(name); err != nil {
				return err
			}
			if sc.take(',') {
				continue
			}
			if sc.take('}') {
				break
			}
			return errJSON
		}
	}
	if sc.peek() != 0 || sc.i != len(sc.s) {
		return errJSON
	}
	return nil
}

// name reads a member name. Names are plain: no escapes, no control
// characters, valid UTF-8. Session tokens only use ASCII names, and refusing
// escapes means a name is spelt exactly one way.
func (sc *jsonScanner) name() (string, error) {
	if !sc.take('"') {
		return "", errJSON
	}
	start := sc.i
	for ; sc.i < len(sc.s); sc.i++ {
		switch c := sc.s[sc.i]; {
		case c == '"':
			n := sc.s[start:sc.i]
			sc.i++
			if !utf8.ValidString(n) {
				return "", errJSON
			}
			return n, nil
		case c == '\\' || c < 0x20:
			return "", errJSON
		}
	}
	return "", errJSON
}

// str reads a string value. One without escapes is returned as a substring
// of the input; one with escapes is decoded into a new string. Invalid UTF-8,
// control characters and unpaired surrogates are refused (encoding/json
// would replace them with U+FFFD).
func (sc *jsonScanner) str() (string, error) {
	switch sc.peek() {
	case '"':
	case 0:
		return "", errJSON
	default:
		return "", errType
	}
	sc.i++
	start := sc.i
	escaped := false
	for ; sc.i < len(sc.s); sc.i++ {
		switch c := sc.s[sc.i]; {
		case c == '"':
			lit := sc.s[start:sc.i]
			sc.i++
			if !utf8.ValidString(lit) {
				return "", errJSON
			}
			if escaped {
				return unescape(lit)
			}
			return lit, nil
		case c == '\\':
			escaped = true
			sc.i++ // the escaped byte is never the closing quote
		case c < 0x20:
			return "", errJSON
		}
	}
	return "", errJSON
}

// unescape decodes the escapes of a JSON string's contents (RFC 8259 §7).
func unescape(lit string) (string, error) {
	b := make([]byte, 0, len(lit))
	for i := 0; i < len(lit); {
		c := lit[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(lit) {
			return "", errJSON
		}
		switch e := lit[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(lit[i+2:])
			if !ok {
				return "", errJSON
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if strings.HasPrefix(lit[i:], `\u`) {
					r2, ok = hex4(lit[i+2:])
				}
				if !ok {
					return "", errJSON
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", errJSON
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", errJSON
		}
		i += 2
	}
	return string(b), nil
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// strings reads an array of strings, appending them to dst.
func (sc *jsonScanner) strings(dst []string) ([]string, error) {
	switch sc.peek() {
	case '[':
	case 0:
		return nil, errJSON
	default:
		return nil, errType
	}
	sc.i++
	if sc.take(']') {
		return dst, nil
	}
	for {
		v, err := sc.str()
		if err != nil {
			return nil, err
		}
		dst = append(dst, v)
		if sc.take(',') {
			continue
		}
		if sc.take(']') {
			return dst, nil
		}
		return nil, errJSON
	}
}

// numericDate reads a NumericDate (RFC 7519 §2) in whole seconds: a
// non-negative JSON integer no larger than maxNumericDate. A fraction or
// exponent is not accepted (the byte after the digits ends the value, and
// the caller refuses anything but , or } there).
func (sc *jsonScanner) numericDate() (int64, error) {
	c := sc.peek()
	switch {
	case c == 0:
		return 0, errJSON
	case c < '0' || c > '9':
		return 0, errType
	}
	if c == '0' {
		sc.i++
		return 0, nil
	}
	var n int64
	for ; sc.i < len(sc.s) && '0' <= sc.s[sc.i] && sc.s[sc.i] <= '9'; sc.i++ {
		n = n*10 + int64(sc.s[sc.i]-'0')
		if n > maxNumericDate {
			return 0, errType
		}
	}
	return n, nil
}
