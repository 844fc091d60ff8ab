// Package password hashes and verifies the passwords of tenantgate's built-in
// users with argon2id (RFC 9106), stored as PHC strings, and holds the policy
// new passwords must meet.
//
// Hashing is deliberately expensive, so a Hasher bounds how many hashes run at
// once: a caller that cannot start within Hasher.Wait gets ErrBusy, which the
// sign-in handler answers with 429 rather than queueing without bound.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Errors returned by this package. Callers compare with errors.Is.
var (
	// ErrBusy: every hashing slot stayed taken for longer than Hasher.Wait.
	ErrBusy = errors.New("password hashing is saturated")
	// ErrMalformedHash: an encoded hash is not an argon2id PHC string this
	// package accepts (wrong algorithm or version, bad encoding, or parameters
	// outside the bounds below).
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrTooShort and ErrTooLong: a new password fails CheckPolicy.
	ErrTooShort = fmt.Errorf("password must be at least %d characters", MinLength)
	ErrTooLong  = fmt.Errorf("password must be at most %d bytes", MaxBytes)
	// ErrNotUTF8: a new password is not valid UTF-8.
	ErrNotUTF8 = errors.New("password must be valid UTF-8 text")
)

// Password policy for new passwords (OWASP ASVS 4.0.3 V2.1.1: at least 12
// characters; V2.1.2: at least 64 characters must be allowed).
const (
	// MinLength is the minimum number of characters (Unicode code points).
	MinLength = 12
	// MaxBytes is the maximum length in bytes.
	MaxBytes = 1024
)

// Default cost, the OWASP Password Storage Cheat Sheet's first argon2id
// configuration: 19 MiB of memory, 2 passes, 1 lane; 16-byte salt, 32-byte
// key.
const (
	DefaultMemory  = 19456
	DefaultTime    = 2
	DefaultThreads = 1
	DefaultSaltLen = 16
	DefaultKeyLen  = 32
)

// Bounds on the parameters Verify accepts from an encoded hash, so a hostile
// or corrupt hash cannot make one verification allocate gigabytes or spin
// for minutes. They are generous compared to the defaults so that raising
// the cost later does not lock anyone out.
const (
	maxMemory  = 256 << 10 // KiB: 256 MiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	// maxEncodedLen bounds the whole PHC string before any parsing.
	maxEncodedLen = 256
)

// Params are argon2id cost parameters.
type Params struct {
	// Memory is in KiB.
	Memory  uint32
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams returns the default cost (the Default* constants).
func DefaultParams() Params {
	return Params{Memory: DefaultMemory, Time: DefaultTime, Threads: DefaultThreads, SaltLen: DefaultSaltLen, KeyLen: DefaultKeyLen}
}

// validate reports whether p lies within the bounds Verify accepts.
func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("parallelism %d outside 1..%d: %w", p.Threads, maxThreads, ErrMalformedHash)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d outside 1..%d: %w", p.Time, maxTime, ErrMalformedHash)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("memory %d KiB outside %d..%d: %w", p.Memory, 8*uint32(p.Threads), maxMemory, ErrMalformedHash)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d outside %d..%d: %w", p.SaltLen, minSaltLen, maxSaltLen, ErrMalformedHash)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d outside %d..%d: %w", p.KeyLen, minKeyLen, maxKeyLen, ErrMalformedHash)
	}
	return nil
}

// Hasher hashes and verifies passwords. The zero value uses DefaultParams,
// at most GOMAXPROCS concurrent hashes, a 2-second wait for a slot and
// crypto/rand. A Hasher must not be copied after first use; it is safe for
// concurrent use.
type Hasher struct {
	// Params is the cost of new hashes and of VerifyDummy. The zero value
	// means DefaultParams. Verify uses the parameters written in the hash.
	Params Params
	// MaxConcurrent bounds how many hashes run at once; 0 means GOMAXPROCS.
	MaxConcurrent int
	// Wait is how long a caller waits for a slot before ErrBusy; 0 means 2s,
	// a negative value means do not wait at all.
	Wait time.Duration
	// Rand is the salt source; nil means crypto/rand.
	Rand io.Reader

	once  sync.Once
	slots chan struct{}
	dummy []byte // salt of VerifyDummy, fixed per Hasher
}

func (h *Hasher) init() {
	h.once.Do(func() {
		n := h.MaxConcurrent
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		h.slots = make(chan struct{}, n)
		h.dummy = make([]byte, h.params().SaltLen)
	})
}

func (h *Hasher) params() Params {
	if h.Params == (Params{}) {
		return DefaultParams()
	}
	return h.Params
}

// InFlight returns how many hashes are running now (slots taken, at most
// MaxConcurrent): a gauge of the sign-in load argon2id puts on the CPU.
func (h *Hasher) InFlight() int {
	h.init()
	return len(h.slots)
}

// acquire takes a hashing slot, waiting at most h.Wait.
func (h *Hasher) acquire() error {
	h.init()
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	wait := h.Wait
	if wait == 0 {
		wait = 2 * time.Second
	}
	if wait < 0 {
		return ErrBusy
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns a new argon2id hash of pw as a PHC string:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>, salt and key in
// unpadded standard base64. It fails with ErrBusy when no slot frees up in
// time, and when Params are outside the bounds Verify would accept.
func (h *Hasher) Hash(pw string) (string, error) {
	p := h.params()
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("hasher parameters: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	r := h.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	if err := h.acquire(); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.release()
	return encode(p, salt, key), nil
}

// Verify reports whether pw matches the encoded hash, comparing in constant
// time. It returns an error wrapping ErrMalformedHash for a hash it cannot
// parse or whose parameters are out of bounds (without running argon2), and
// ErrBusy when no slot frees up in time; a wrong password is (false, nil).
func (h *Hasher) Verify(encoded, pw string) (bool, error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.release()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy spends the same effort as verifying a hash made with the
// Hasher's Params and always reports false. Call it for an unknown user, a
// user who is not a member, or a locked account, so that the time a sign-in
// takes does not reveal which. It returns ErrBusy like Verify.
func (h *Hasher) VerifyDummy(pw string) (bool, error) {
	p := h.params()
	if err := p.validate(); err != nil {
		return false, fmt.Errorf("hasher parameters: %w", err)
	}
	if err := h.acquire(); err != nil {
		return false, err
	}
	_ = argon2.IDKey([]byte(pw), h.dummy, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.release()
	return false, nil
}

// CheckPolicy reports whether pw may be set as a new password: valid UTF-8,
// at least MinLength characters and at most MaxBytes bytes (ASVS 4.0.3
// V2.1.1, V2.1.2). It says nothing about existing passwords, which are
// always verified as they are.
func CheckPolicy(pw string) error {
	switch {
	case len(pw) > MaxBytes:
		return ErrTooLong
	case !utf8.ValidString(pw):
		return ErrNotUTF8
	case utf8.RuneCountInString(pw) < MinLength:
		return ErrTooShort
	}
	return nil
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC argon2id string, refusing anything outside the bounds.
func decode(s string) (Params, []byte, []byte, error) {
	var p Params
	if len(s) > maxEncodedLen {
		return p, nil, nil, fmt.Errorf("hash longer than %d bytes: %w", maxEncodedLen, ErrMalformedHash)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, fmt.Errorf("not a PHC string: %w", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("algorithm is not argon2id: %w", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("unsupported argon2 version: %w", ErrMalformedHash)
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("parameters are not m,t,p: %w", ErrMalformedHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return p, nil, nil, fmt.Errorf("parameter %d is not %s<n>: %w", i, name, ErrMalformedHash)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("parameter %s: %w", name, ErrMalformedHash)
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return p, nil, nil, fmt.Errorf("parallelism %d above %d: %w", vals[2], maxThreads, ErrMalformedHash)
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("salt encoding: %w", ErrMalformedHash)
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil {
		return p, nil, nil, fmt.Errorf("key encoding: %w", ErrMalformedHash)
	}
	p = Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.validate(); err != nil {
		return Params{}, nil, nil, err
	}
	return p, salt, key, nil
}
