package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
// Nonces always come from crypto/rand rather than an injectable reader: a
// repeated nonce under AES-GCM gives away the key stream, and no test should
// be able to cause one.
type Sealer struct {
	aead   cipher.AEAD
	master []byte
}

// NewSealer returns a Sealer for a MasterKeySize-byte master key. It copies
// key.
func NewSealer(key []byte) (*Sealer, error) {
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
	return &Sealer{aead: aead, master: master}, nil
}

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce, binding
// it to context (authenticated, not encrypted): Open succeeds only with the
// same context. The result is a version byte, the nonce, then the ciphertext
// and tag.
func (s *Sealer) Seal(plaintext []byte, context string) ([]byte, error) {
	if s == nil || s.aead == nil {
		return nil, errNoKey
	}
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+ns], plaintext, additionalData(context)), nil
}

// Open reverses Seal. A different master key, a different context, any
// modified byte or an unknown version is an error wrapping ErrOpen, and no
// plaintext is returned.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	if s == nil || s.aead == nil {
		return nil, fmt.Errorf("%w: %w", ErrOpen, errNoKey)
	}
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, sealed[0])
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], additionalData(context))
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
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	key := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err := base64.StdEncoding.Strict().Decode(key, data)
	// The decoder skips line breaks anywhere; one line means none is left.
	if err != nil || bytes.ContainsAny(data, "\r\n") {
		return nil, fmt.Errorf("master key file %s: not one line of standard base64", path)
	}
	if n != MasterKeySize {
		return nil, fmt.Errorf("master key file %s: key is %d bytes, want %d", path, n, MasterKeySize)
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
