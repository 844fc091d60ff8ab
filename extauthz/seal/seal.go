package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// MasterKeySize is the length in bytes of the master key.
const MasterKeySize = 32

// maxMasterKeyFile bounds how much of a master key file is read; the real
// content is 45 bytes.
const maxMasterKeyFile = 1024

// sealVersion is the first byte of every sealed value. A future format gets a
// new byte; Open refuses bytes it does not know.
const sealVersion byte = 1

// HKDF info strings. The master key is never used directly: each use gets its
// own derived key, so a weakness in one use cannot leak into another.
const (
	hkdfSealInfo   = "tenantgate/seal/v1"
	hkdfDerivePref = "tenantgate/derive/v1/"
)

// ErrOpen is wrapped by every Open failure: wrong key, wrong context,
// tampered or truncated input, unknown format.
var ErrOpen = errors.New("cannot open sealed value")

// errNoKey is returned by a Sealer that was not made by NewSealer.
var errNoKey = errors.New("sealer has no master key")

// Sealer encrypts small secrets (signing keys, client secrets, login state)
// under the master key. Make one with NewSealer or LoadOrCreateMasterKey; the
// zero value refuses to seal or open. It is safe for concurrent use.
//
// Replace swaps the master key of a Sealer that is in use (master key
// rotation, without a restart): every Seal and Open after it uses the new
// key alone. DeriveKey keeps deriving from the key the Sealer was made
// with, so keys derived at start (CSRF, sign-in state) stay the same for
// the life of the process.
//
// Nonces always come from crypto/rand rather than an injectable reader: a
// repeated nonce under AES-GCM gives away the key stream, and no test should
// be able to cause one.
type Sealer struct {
	cur    atomic.Pointer[sealKey]
	master []byte
}

// sealKey is one master key and the AEAD derived from it.
type sealKey struct {
	aead   cipher.AEAD
	master []byte
}

// NewSealer returns a Sealer for a MasterKeySize-byte master key. It copies
// key.
func NewSealer(key []byte) (*Sealer, error) {
	k, err := newSealKey(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{master: k.master}
	s.cur.Store(k)
	return s, nil
}

func newSealKey(key []byte) (*sealKey, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(key), MasterKeySize)
	}
	master := bytes.Clone(key)
	aesKey, err := hkdf.Key(sha256.New, master, nil, hkdfSealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create gcm: %w", err)
	}
	return &sealKey{aead: aead, master: master}, nil
}

// key is the current master key, or nil for a Sealer not made by
// NewSealer.
func (s *Sealer) key() *sealKey {
	if s == nil {
		return nil
	}
	return s.cur.Load()
}

// Replace makes n's current master key s's: from its return on, s seals and
// opens with that key only. It is how a running server takes up a rotated
// master key. It fails, changing nothing, when either Sealer has no key.
func (s *Sealer) Replace(n *Sealer) error {
	k := n.key()
	if s.key() == nil || k == nil {
		return errNoKey
	}
	s.cur.Store(k)
	return nil
}

// SameKey reports whether s and o seal with the same master key (compared in
// constant time).
func (s *Sealer) SameKey(o *Sealer) bool {
	a, b := s.key(), o.key()
	return a != nil && b != nil && subtle.ConstantTimeCompare(a.master, b.master) == 1
}

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce, binding
// it to context (authenticated, not encrypted): Open succeeds only with the
// same context. The result is a version byte, the nonce, then the ciphertext
// and tag.
func (s *Sealer) Seal(plaintext []byte, context string) ([]byte, error) {
	k := s.key()
	if k == nil {
		return nil, errNoKey
	}
	ns := k.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+k.aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:1+ns], plaintext, additionalData(context)), nil
}

// Open reverses Seal. A different master key, a different context, any
// modified byte or an unknown version is an error wrapping ErrOpen, and no
// plaintext is returned.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	k := s.key()
	if k == nil {
		return nil, fmt.Errorf("%w: %w", ErrOpen, errNoKey)
	}
	ns := k.aead.NonceSize()
	if len(sealed) < 1+ns+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, sealed[0])
	}
	pt, err := k.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], additionalData(context))
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key or context, or modified", ErrOpen)
	}
	return pt, nil
}

// additionalData binds the format version and the context.
func additionalData(context string) []byte {
	ad := make([]byte, 0, 1+len(context))
	ad = append(ad, sealVersion)
	return append(ad, context...)
}

// DeriveKey returns a 32-byte key for one purpose (for example "csrf" or
// "login-state"), derived from the master key with HKDF-SHA256 (RFC 5869).
// Different purposes give independent keys; the same purpose always gives the
// same key for the same master key, so every replica sharing the master key
// agrees.
//
// The key is derived from the master key the Sealer was made with, also
// after Replace: what a process derived at start stays valid until it
// restarts.
//
// It panics on an empty purpose or a Sealer not made by NewSealer: both are
// wiring mistakes, and a key derived from nothing must never be used.
func (s *Sealer) DeriveKey(purpose string) []byte {
	if purpose == "" {
		panic("seal: DeriveKey with an empty purpose")
	}
	if s == nil || s.master == nil {
		panic("seal: DeriveKey on a Sealer without a master key")
	}
	k, err := hkdf.Key(sha256.New, s.master, nil, hkdfDerivePref+purpose, 32)
	if err != nil {
		// Only a key length over 255*32 bytes fails.
		panic(fmt.Sprintf("seal: derive key for %s: %v", purpose, err))
	}
	return k
}

// SealSecret seals a tenant's client secret, bound to the tenant's internal
// id (context "client-secret:"+id). Its shape matches
// tenants.ApplyOptions.Seal.
func SealSecret(s *Sealer, plaintext []byte, tenantInternalID string) ([]byte, error) {
	if tenantInternalID == "" {
		return nil, errors.New("seal client secret: empty tenant internal id")
	}
	return s.Seal(plaintext, SecretContext(tenantInternalID))
}

// OpenSecret opens a client secret sealed by SealSecret for the same tenant.
func OpenSecret(s *Sealer, sealed []byte, tenantInternalID string) ([]byte, error) {
	pt, err := s.Open(sealed, SecretContext(tenantInternalID))
	if err != nil {
		return nil, fmt.Errorf("open client secret of tenant %s: %w", tenantInternalID, err)
	}
	return pt, nil
}

// SecretContext is the sealing context of a tenant's client secrets.
func SecretContext(tenantInternalID string) string { return "client-secret:" + tenantInternalID }

// TOTPContext is the sealing context of a member's TOTP secret
// (tenants.SecondFactors.TOTP): bound to the tenant and the user, both
// internal ids, so a sealed secret copied to another membership does not
// open.
func TOTPContext(tenantInternalID, userID string) string {
	return "totp-secret:" + tenantInternalID + ":" + userID
}

// LoadOrCreateMasterKey reads the master key from path, or, if no file
// exists there, creates one (mode 0600, never overwriting a file that appears
// meanwhile) holding MasterKeySize fresh random bytes. The file holds one line
// of standard base64; a trailing newline is fine.
//
// It refuses, with an error naming the file but never its content: a file
// that is not a regular file, a file whose permissions give the group or
// others any access, content that is not base64, and a key of the wrong
// length.
func LoadOrCreateMasterKey(path string) (*Sealer, error) {
	for range 3 {
		key, err := readMasterKey(path)
		if err == nil {
			return NewSealer(key)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		err = createMasterKey(path)
		if errors.Is(err, fs.ErrExist) {
			continue // someone else created it first: read theirs
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("master key file %s: appeared and vanished repeatedly", path)
}

// LoadMasterKey reads the master key from an existing file, with the checks
// of LoadOrCreateMasterKey; a missing file is an error (wrapping
// fs.ErrNotExist), never created. It is how a running server re-reads its
// key file after a master key rotation.
func LoadMasterKey(path string) (*Sealer, error) {
	key, err := readMasterKey(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("master key file %s: %w", path, err)
		}
		return nil, err
	}
	defer clear(key)
	return NewSealer(key)
}

// ParseMasterKey makes a Sealer of the content of a master key file: one
// line of standard base64 holding MasterKeySize bytes. Errors never show
// the content.
func ParseMasterKey(data []byte) (*Sealer, error) {
	key, err := decodeMasterKey("master key", data)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return NewSealer(key)
}

// WriteMasterKeyFile replaces the file at path with one holding s's
// current master key, atomically: the key is written (mode 0600) and
// synced to a new file beside it, which is then renamed over path, so a
// crash leaves either the old file or the new one, never a torn one.
func WriteMasterKeyFile(path string, s *Sealer) error {
	k := s.key()
	if k == nil {
		return errNoKey
	}
	tmp := path + ".new"
	os.Remove(tmp) // a leftover of an interrupted write
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k.master) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write master key file %s: %w", path, werr)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the rename itself
		d.Close()
	}
	return nil
}

// readMasterKey reads and checks an existing master key file. A missing file
// is an error wrapping fs.ErrNotExist.
func readMasterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("open master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o, which lets the group or others access it; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxMasterKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	if len(data) > maxMasterKeyFile {
		return nil, fmt.Errorf("master key file %s is too large to be a master key", path)
	}
	return decodeMasterKey("master key file "+path, data)
}

// decodeMasterKey decodes the content of a master key file; what names it
// in errors.
func decodeMasterKey(what string, data []byte) ([]byte, error) {
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	key := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err := base64.StdEncoding.Strict().Decode(key, data)
	// The decoder skips line breaks anywhere; one line means none is left.
	if err != nil || bytes.ContainsAny(data, "\r\n") {
		return nil, fmt.Errorf("%s: not one line of standard base64", what)
	}
	if n != MasterKeySize {
		return nil, fmt.Errorf("%s: key is %d bytes, want %d", what, n, MasterKeySize)
	}
	return key[:n], nil
}

// createMasterKey writes a new key file with O_EXCL, so an existing file is
// never replaced (the error then wraps fs.ErrExist). A partly written file is
// removed.
func createMasterKey(path string) error {
	key := make([]byte, MasterKeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return fmt.Errorf("generate master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create master key file: %w", err)
	}
	line := base64.StdEncoding.EncodeToString(key) + "\n"
	_, werr := f.WriteString(line)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("write master key file: %w", werr)
	}
	return nil
}
