package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// The TOTP profile (RFC 6238 §4 and §5.2) authenticator apps implement.
const (
	// SecretBytes is the secret's length: 160 bits, HMAC-SHA-1's output
	// size, as RFC 4226 §4 recommends.
	SecretBytes = 20
	// Period is the time step X.
	Period = 30 * time.Second
	// Digits is the code's length.
	Digits = 6
	// Skew is how many steps either side of the current one are accepted.
	Skew = 1
)

// maxCodeInput bounds what ParseCode looks at: six digits with spaces or
// a dash between them fit many times over.
const maxCodeInput = 32

// NewSecret returns a fresh TOTP secret read from r (crypto/rand when nil).
func NewSecret(r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	s := make([]byte, SecretBytes)
	if _, err := io.ReadFull(r, s); err != nil {
		return nil, fmt.Errorf("read totp secret: %w", err)
	}
	return s, nil
}

// secretEncoding is how secrets are written for people and apps: base32
// (RFC 4648) without padding, as the otpauth URI format has it.
var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// SecretText is the secret as a person types it into an app that cannot
// scan the QR code: base32 in groups of four.
func SecretText(secret []byte) string {
	s := secretEncoding.EncodeToString(secret)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// URI is the otpauth:// URI an authenticator app scans (the Key URI Format
// of Google Authenticator, which every app follows): the label names the
// issuer (the organisation) and the account (the email), and the
// parameters state the profile explicitly.
func URI(issuer, account string, secret []byte) string {
	q := url.Values{
		"secret":    {secretEncoding.EncodeToString(secret)},
		"issuer":    {issuer},
		"algorithm": {"SHA1"},
		"digits":    {fmt.Sprint(Digits)},
		"period":    {fmt.Sprint(int(Period / time.Second))},
	}
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return u.String()
}

// Step is the time step t falls in (RFC 6238 §4.2, T0 = 0).
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code is the TOTP code of secret for a step: HOTP (RFC 4226 §5.3) with
// the step as the counter, Digits digits.
func Code(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", Digits, bin%1_000_000)
}

// ParseCode reads a TOTP code as a person typed it: Digits ASCII digits,
// with any spaces, tabs or dashes between or around them (apps show
// "123 456"). It returns the digits, or false for anything else.
func ParseCode(s string) (string, bool) {
	if len(s) > maxCodeInput {
		return "", false
	}
	var b [Digits]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '-':
		case c >= '0' && c <= '9':
			if n == Digits {
				return "", false
			}
			b[n] = c
			n++
		default:
			return "", false
		}
	}
	if n != Digits {
		return "", false
	}
	return string(b[:]), true
}

// Verify reports whether code (as ParseCode returns it) is secret's code
// for a step within Skew of now's and later than after (the last step a
// code was accepted for; 0 when none was), and returns that step, which
// the caller must record before it accepts the code. Every candidate step
// is compared, in constant time, so the time taken says nothing about
// which matched.
func Verify(secret []byte, code string, now time.Time, after int64) (int64, bool) {
	cur := Step(now)
	var matched int64
	found := 0
	for d := int64(-Skew); d <= Skew; d++ {
		step := cur + d
		eq := subtle.ConstantTimeCompare([]byte(Code(secret, step)), []byte(code))
		if eq == 1 && step > after && found == 0 {
			matched, found = step, 1
		}
	}
	return matched, found == 1
}
