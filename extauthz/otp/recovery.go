package otp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Recovery codes: RecoveryCodes of them per enrolment, each
// recoveryLen characters of recoveryAlphabet (50 bits), shown as two
// groups of five ("k7m2q-x9c4t").
const (
	RecoveryCodes = 10
	recoveryLen   = 10
	// recoveryAlphabet is Crockford's base32 in lower case: digits and
	// letters without i, l, o and u, so none is misread for another; 32
	// characters, 5 bits each (NewRecoveryCodes takes 5 random bits a
	// character, which is unbiased only for a power of two).
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	// maxRecoveryInput bounds what ParseRecoveryCode looks at.
	maxRecoveryInput = 64
)

// NewRecoveryCodes returns RecoveryCodes fresh codes, as shown to the
// person (FormatRecoveryCode), read from r (crypto/rand when nil).
func NewRecoveryCodes(r io.Reader) ([]string, error) {
	if r == nil {
		r = rand.Reader
	}
	out := make([]string, RecoveryCodes)
	buf := make([]byte, recoveryLen)
	for i := range out {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read recovery code: %w", err)
		}
		b := make([]byte, recoveryLen)
		for j, c := range buf {
			b[j] = recoveryAlphabet[c&31]
		}
		out[i] = FormatRecoveryCode(string(b))
	}
	return out, nil
}

// FormatRecoveryCode writes a normalised code as shown: two groups of
// five joined by a dash.
func FormatRecoveryCode(code string) string {
	if len(code) != recoveryLen {
		return code
	}
	return code[:5] + "-" + code[5:]
}

// ParseRecoveryCode reads a recovery code as a person typed it: any case,
// with spaces or dashes anywhere. It returns the normalised code (lower
// case, recoveryLen characters of the alphabet), or false.
func ParseRecoveryCode(s string) (string, bool) {
	if len(s) > maxRecoveryInput {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '-' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if strings.IndexByte(recoveryAlphabet, c) < 0 || b.Len() == recoveryLen {
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() != recoveryLen {
		return "", false
	}
	return b.String(), true
}

// HashRecoveryCode is the stored form of a normalised code: SHA-256 over
// a purpose, the binding (the tenant and user the code belongs to, so a
// hash copied to another account matches nothing) and the code, in hex.
func HashRecoveryCode(code, binding string) string {
	h := sha256.New()
	io.WriteString(h, "tenantgate recovery code v1\x00")
	io.WriteString(h, binding)
	h.Write([]byte{0})
	io.WriteString(h, code)
	return hex.EncodeToString(h.Sum(nil))
}
