package session

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// forgeRaw builds a compact JWS from header and payload JSON text exactly as
// given, signing the signing input with sign (nil: empty signature).
func forgeRaw(hdr, payload string, sign func([]byte) []byte) string {
	input := b64([]byte(hdr)) + "." + b64([]byte(payload))
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64(sig)
}

// nonCanonical re-encodes the last character of an unpadded base64url
// segment with trailing bits set: it decodes to the same bytes under a
// lenient decoder, so a verifier that accepted it would accept two spellings
// of one token. seg's length must not be a multiple of 4.
func nonCanonical(tb testing.TB, seg string) string {
	tb.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		tb.Fatalf("segment of length %d has no trailing bits", len(seg))
	}
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i|1])
}

// withTrailingBits pads JSON text with spaces until its base64url form has
// trailing bits (its length is not a multiple of 3).
func withTrailingBits(s string) string {
	for len(s)%3 == 0 {
		s += " "
	}
	return s
}

// TestVerifyRefusesStrictDecoding covers what the hand-written decoder
// refuses beyond TestVerifyRefuses: every way of spelling a token other than
// the one way a Minter writes it, and JSON that a general decoder would
// quietly accept (duplicate members, case-folded names, null, fractions,
// trailing data). Each forgery except the controls is correctly signed with
// acme's key, so only the decoder stands between it and acceptance.
func TestVerifyRefusesStrictDecoding(t *testing.T) {
	f := newFixture(t)
	sign := edSigner(f.acmePriv)
	kid := f.acme.Keys[0].KID
	hdr := `{"alg":"EdDSA","kid":"` + kid + `","typ":"tg-session+jwt"}`
	cl := string(mustJSON(t, f.claimsFor("iacme")))
	// addClaims appends members to the claims object.
	addClaims := func(members string) string { return cl[:len(cl)-1] + "," + members + "}" }
	// replaceClaim swaps one member's JSON value text.
	replaceClaim := func(name, val string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(cl), &m); err != nil {
			t.Fatal(err)
		}
		m[name] = json.RawMessage(val)
		var b strings.Builder
		for i, k := range slices.Sorted(maps.Keys(m)) {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", k, m[k])
		}
		return "{" + b.String() + "}"
	}
	valid := forgeRaw(hdr, cl, sign)
	parts := strings.Split(valid, ".")
	padded := forgeRaw(withTrailingBits(hdr), withTrailingBits(cl), sign)
	pparts := strings.Split(padded, ".")

	globexHdr := `{"alg":"ES256","kid":"` + f.globex.Keys[0].KID + `","typ":"tg-session+jwt"}`
	globexCl := string(mustJSON(t, f.claimsFor("iglobex")))
	globexDER := func(in []byte) []byte { // ASN.1 DER, not the JWS R || S form
		sum := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, f.globexPriv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	cases := []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"hand-built valid token (control)", valid, nil},
		{"whitespace between JSON tokens (control)", forgeRaw(" {\n\"alg\" : \"EdDSA\",\t\"kid\":\""+kid+"\", \"typ\":\"tg-session+jwt\"} ", " "+strings.ReplaceAll(cl, ",", " ,\r\n ")+"\n", sign), nil},
		{"escaped characters in a value (control)", forgeRaw(`{"alg":"EdDSA","kid":"`+kid+`","typ":"tg-session\u002bjwt"}`, replaceClaim("sub", `"u\u002d1"`), sign), nil},
		{"valid ES256 token (control)", forgeRaw(globexHdr, globexCl, esSigner(t, f.globexPriv)), nil},

		// Base64url: one spelling only.
		{"payload with padding", parts[0] + "." + parts[1] + "=." + parts[2], errMalformed},
		{"signature with padding", parts[0] + "." + parts[1] + "." + parts[2] + "==", errMalformed},
		{"header with trailing bits set", nonCanonical(t, pparts[0]) + "." + pparts[1] + "." + pparts[2], errMalformed},
		{"payload with trailing bits set", pparts[0] + "." + nonCanonical(t, pparts[1]) + "." + pparts[2], errMalformed},
		{"signature with trailing bits set", parts[0] + "." + parts[1] + "." + nonCanonical(t, parts[2]), errMalformed},
		{"line break in the signature", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:], errMalformed},
		{"carriage return in the header", parts[0][:4] + "\r" + parts[0][4:] + "." + parts[1] + "." + parts[2], errMalformed},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid), errMalformed},
		{"space in the payload", parts[0] + "." + parts[1][:5] + " " + parts[1][5:] + "." + parts[2], errMalformed},
		{"empty header segment", "." + parts[1] + "." + parts[2], errMalformed},
		{"empty payload segment", forgeRaw(hdr, "", sign), errMalformed},

		// Header: alg, typ and kid once each, strings, nothing else.
		{"duplicate alg, the second none", forgeRaw(`{"alg":"EdDSA","alg":"none","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"duplicate kid", forgeRaw(`{"alg":"EdDSA","kid":"`+kid+`","kid":"x","typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"duplicate typ", forgeRaw(`{"alg":"EdDSA","kid":"`+kid+`","typ":"JWT","typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"alg spelt ALG", forgeRaw(`{"ALG":"EdDSA","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errHeader},
		{"alg name escaped", forgeRaw(`{"\u0061lg":"EdDSA","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"cty parameter", forgeRaw(`{"alg":"EdDSA","cty":"JWT","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errHeader},
		{"x5t#S256 parameter", forgeRaw(`{"alg":"EdDSA","kid":"`+kid+`","typ":"tg-session+jwt","x5t#S256":"abc"}`, cl, sign), errHeader},
		{"zip parameter", forgeRaw(`{"alg":"EdDSA","kid":"`+kid+`","typ":"tg-session+jwt","zip":"DEF"}`, cl, sign), errHeader},
		{"alg null", forgeRaw(`{"alg":null,"kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"kid a number", forgeRaw(`{"alg":"EdDSA","kid":1,"typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"kid an array", forgeRaw(`{"alg":"EdDSA","kid":["`+kid+`"],"typ":"tg-session+jwt"}`, cl, sign), errMalformed},
		{"empty header object", forgeRaw(`{}`, cl, sign), errHeader},
		{"header a string", forgeRaw(`"`+hdr+`"`, cl, sign), errMalformed},
		{"data after the header object", forgeRaw(hdr+`{}`, cl, sign), errMalformed},
		{"header object not closed", forgeRaw(hdr[:len(hdr)-1], cl, sign), errMalformed},
		{"trailing comma in the header", forgeRaw(hdr[:len(hdr)-1]+`,}`, cl, sign), errMalformed},
		{"typ with a trailing NUL", forgeRaw(`{"alg":"EdDSA","kid":"`+kid+`","typ":"tg-session+jwt\u0000"}`, cl, sign), errHeader},
		{"alg lower case", forgeRaw(`{"alg":"eddsa","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errAlg},
		{"alg ES256 with acme's EdDSA key", forgeRaw(`{"alg":"ES256","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, sign), errAlg},
		{"alg HS256 keyed with the public key", forgeRaw(`{"alg":"HS256","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, hsSigner(f.acme.Keys[0].Public)), errAlg},
		{"alg none", forgeRaw(`{"alg":"none","kid":"`+kid+`","typ":"tg-session+jwt"}`, cl, nil), errAlg},
		{"globex's kid on an acme session", forgeRaw(globexHdr, cl, esSigner(t, f.globexPriv)), errUnknownKey},

		// Claims: each once, exact names, right types, nothing unknown.
		{"duplicate sub", forgeRaw(hdr, addClaims(`"sub":"admin"`), sign), errMalformed},
		{"duplicate tid", forgeRaw(hdr, addClaims(`"tid":"iglobex"`), sign), errMalformed},
		{"duplicate exp", forgeRaw(hdr, addClaims(`"exp":99999999999`), sign), errMalformed},
		{"duplicate roles", forgeRaw(hdr, addClaims(`"roles":["admin"],"roles":["admin"]`), sign), errMalformed},
		{"sub spelt SUB", forgeRaw(hdr, addClaims(`"SUB":"admin"`), sign), errClaims},
		{"roles spelt Roles", forgeRaw(hdr, addClaims(`"Roles":["admin"]`), sign), errClaims},
		{"claim name escaped", forgeRaw(hdr, addClaims(`"r\u006fles":["admin"]`), sign), errMalformed},
		{"unknown claim", forgeRaw(hdr, addClaims(`"nonce":"n"`), sign), errClaims},
		{"jti", forgeRaw(hdr, addClaims(`"jti":"j"`), sign), errClaims},
		{"sub null", forgeRaw(hdr, replaceClaim("sub", "null"), sign), errMalformed},
		{"aud null", forgeRaw(hdr, replaceClaim("aud", "null"), sign), errMalformed},
		{"roles null", forgeRaw(hdr, addClaims(`"roles":null`), sign), errMalformed},
		{"roles a string", forgeRaw(hdr, addClaims(`"roles":"admin"`), sign), errMalformed},
		{"roles with a number", forgeRaw(hdr, addClaims(`"roles":["admin",1]`), sign), errMalformed},
		{"roles nested", forgeRaw(hdr, addClaims(`"roles":[["admin"]]`), sign), errMalformed},
		{"aud with a number", forgeRaw(hdr, replaceClaim("aud", `["`+Audience("iacme")+`",1]`), sign), errMalformed},
		{"sub an object", forgeRaw(hdr, replaceClaim("sub", `{"id":"u-1"}`), sign), errMalformed},
		{"tid a number", forgeRaw(hdr, replaceClaim("tid", `1`), sign), errMalformed},
		{"exp a fraction", forgeRaw(hdr, replaceClaim("exp", fmt.Sprintf("%d.5", f.now.Add(time.Hour).Unix())), sign), errMalformed},
		{"exp with an exponent", forgeRaw(hdr, replaceClaim("exp", "1.7e9"), sign), errMalformed},
		{"exp negative", forgeRaw(hdr, replaceClaim("exp", "-1"), sign), errMalformed},
		{"exp with a leading zero", forgeRaw(hdr, replaceClaim("exp", fmt.Sprintf("0%d", f.now.Add(time.Hour).Unix())), sign), errMalformed},
		{"exp a string of digits", forgeRaw(hdr, replaceClaim("exp", fmt.Sprintf(`"%d"`, f.now.Add(time.Hour).Unix())), sign), errMalformed},
		{"exp past year 9999", forgeRaw(hdr, replaceClaim("exp", "253402300800"), sign), errMalformed},
		{"exp overflowing int64", forgeRaw(hdr, replaceClaim("exp", "99999999999999999999"), sign), errMalformed},
		{"iat null", forgeRaw(hdr, replaceClaim("iat", "null"), sign), errMalformed},
		{"nbf a string", forgeRaw(hdr, addClaims(`"nbf":"now"`), sign), errMalformed},
		{"data after the claims object", forgeRaw(hdr, cl+`{"sub":"admin"}`, sign), errMalformed},
		{"claims an array", forgeRaw(hdr, `[`+cl+`]`, sign), errMalformed},
		{"invalid UTF-8 in a value", forgeRaw(hdr, replaceClaim("sub", "\"u-\xff\""), sign), errMalformed},
		{"control character in a value", forgeRaw(hdr, replaceClaim("sub", "\"u-\x01\""), sign), errMalformed},
		{"unpaired surrogate escape", forgeRaw(hdr, replaceClaim("sub", `"u-\ud800"`), sign), errMalformed},
		{"reversed surrogate pair", forgeRaw(hdr, replaceClaim("sub", `"u-\udc00\ud800"`), sign), errMalformed},
		{"unknown escape", forgeRaw(hdr, replaceClaim("sub", `"u-\x41"`), sign), errMalformed},
		{"short unicode escape", forgeRaw(hdr, replaceClaim("sub", `"u-\u12"`), sign), errMalformed},
		{"string not closed", forgeRaw(hdr, cl[:len(cl)-2], sign), errMalformed},

		// Signature shape.
		{"EdDSA signature one byte short", parts[0] + "." + parts[1] + "." + b64(edSigner(f.acmePriv)([]byte(parts[0] + "." + parts[1]))[:63]), errSignature},
		{"ES256 signature in ASN.1 DER", forgeRaw(globexHdr, globexCl, globexDER), errSignature},
		{"ES256 signature with a byte appended", forgeRaw(globexHdr, globexCl, func(in []byte) []byte { return append(esSigner(t, f.globexPriv)(in), 0) }), errSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := f.verifier()
			got, err := v.verifyAny(f.snap, c.token)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify refused a valid token: %v", err)
				}
				if got.Subject != "u-1" || !strings.HasPrefix(got.TenantID, "i") {
					t.Fatalf("claims %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", got)
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, c.want) {
				t.Errorf("refused for the wrong reason: got %v, want %v", err, c.want)
			}
			if got != nil {
				t.Errorf("claims returned with an error")
			}
		})
	}
}

// TestDecodeClaimsValues: what decodeClaims reads, including escapes, is what
// encoding/json reads.
func TestDecodeClaimsValues(t *testing.T) {
	text := `{"iss":"i","sub":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","aud":"a","exp":0,"iat":1772366400,` +
		`"nbf":253402300799,"tid":"t","tenant":"acme","email":"a@b","roles":[],"sid":"s","method":"oidc"}`
	var c jwsClaims
	if err := decodeClaims(text, &c); err != nil {
		t.Fatal(err)
	}
	want := jwsClaims{
		iss: "i", sub: "é😀\"\\/\b\f\n\r\t", aud: []string{"a"}, exp: 0, iat: 1772366400, nbf: 253402300799,
		hasExp: true, hasIat: true, hasNbf: true,
		tid: "t", tenant: "acme", email: "a@b", sid: "s", method: "oidc",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded\n %+v\nwant\n %+v", c, want)
	}
}

// jsonMembers decodes text with encoding/json, numbers as json.Number, and
// fails the test if it is not exactly one JSON object.
func jsonMembers(t *testing.T, text string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		t.Fatalf("accepted %q, which encoding/json does not read as an object: %v", text, err)
	}
	if _, err := d.Token(); err != io.EOF {
		t.Fatalf("accepted %q, which has data after the object", text)
	}
	return m
}

// FuzzDecodeClaims: whatever decodeClaims accepts, encoding/json reads as
// the same members with the same values (decodeClaims refuses more: duplicate
// or unknown members, null, fractions, invalid UTF-8).
func FuzzDecodeClaims(f *testing.F) {
	fx := newFixture(f)
	f.Add(string(mustJSON(f, fx.claimsFor("iacme"))))
	f.Add(`{"iss":"i","sub":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","aud":"a","exp":0,"iat":1,"nbf":2,"tid":"t","tenant":"x","email":"a@b","roles":[],"sid":"s","method":"oidc"}`)
	f.Add(` { "aud" : [ "a" , "b" ] , "roles" : [ "r" ] } `)
	f.Add(`{"sub":"a","sub":"b"}`)
	f.Add(`{"exp":1.5}`)
	f.Add(`{"Sub":"x"}`)
	f.Fuzz(func(t *testing.T, text string) {
		var c jwsClaims
		if err := decodeClaims(text, &c); err != nil {
			return
		}
		m := jsonMembers(t, text)
		strs := map[string]string{"iss": c.iss, "sub": c.sub, "tid": c.tid, "tenant": c.tenant, "email": c.email, "sid": c.sid, "method": c.method}
		for name, got := range strs {
			want, ok := m[name]
			if !ok {
				want = ""
			}
			if got != want {
				t.Fatalf("%s: decoded %q, encoding/json %q", name, got, want)
			}
		}
		nums := []struct {
			name string
			has  bool
			v    int64
		}{{"exp", c.hasExp, c.exp}, {"iat", c.hasIat, c.iat}, {"nbf", c.hasNbf, c.nbf}}
		for _, n := range nums {
			want, ok := m[n.name]
			if ok != n.has || (ok && want != json.Number(strconv.FormatInt(n.v, 10))) {
				t.Fatalf("%s: decoded %v (present %v), encoding/json %v", n.name, n.v, n.has, want)
			}
		}
		lists := map[string][]string{"aud": c.aud, "roles": c.roles}
		for name, got := range lists {
			want := []string{}
			switch w := m[name].(type) {
			case string:
				if name != "aud" {
					t.Fatalf("%s: a string was accepted", name)
				}
				want = []string{w}
			case []any:
				for _, e := range w {
					want = append(want, e.(string))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: decoded %q, encoding/json %q", name, got, want)
			}
		}
		for name := range m {
			if _, ok := strs[name]; !ok && !slices.Contains([]string{"exp", "iat", "nbf", "aud", "roles"}, name) {
				t.Fatalf("accepted an unknown member %q", name)
			}
		}
	})
}

// FuzzDecodeHeader: whatever decodeHeader accepts, encoding/json reads as at
// most alg, typ and kid, all strings, with the same values.
func FuzzDecodeHeader(f *testing.F) {
	f.Add(`{"alg":"EdDSA","kid":"k","typ":"tg-session+jwt"}`)
	f.Add(` {"typ":"tg-session\u002bjwt" , "alg":"ES256"}`)
	f.Add(`{"alg":"EdDSA","alg":"none"}`)
	f.Add(`{"jku":"https://evil.test/"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, text string) {
		h, err := decodeHeader(text)
		if err != nil {
			return
		}
		m := jsonMembers(t, text)
		got := map[string]string{"alg": h.alg, "typ": h.typ, "kid": h.kid}
		for name, v := range m {
			if s, ok := v.(string); !ok || got[name] != s {
				t.Fatalf("member %q: decoded %q, encoding/json %v", name, got[name], v)
			}
		}
		for name, v := range got {
			if _, ok := m[name]; !ok && v != "" {
				t.Fatalf("%s: decoded %q from nothing", name, v)
			}
		}
	})
}
