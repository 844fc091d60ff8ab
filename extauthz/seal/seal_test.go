package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fixedMasterKey is the master key of these tests: the same as session's
// fixtures, so a value sealed in one package's test opens in the other's.
const fixedMasterKey = "tenantgate-test-master-key-32by!"

func TestSealOpen(t *testing.T) {
	s, err := NewSealer([]byte(fixedMasterKey))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSealer(bytes.Repeat([]byte{7}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("client secret of acme")
	sealed, err := s.Seal(secret, "client-secret:iacme")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := s.Seal(secret, "client-secret:iacme")
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
	got, err := s.Open(sealed, "client-secret:iacme")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	empty, _ := s.Seal(nil, "c")
	if got, err := s.Open(empty, "c"); err != nil || len(got) != 0 {
		t.Fatalf("empty plaintext: %q, %v", got, err)
	}

	tamper := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name    string
		s       *Sealer
		sealed  []byte
		context string
	}{
		{"wrong context (other tenant)", s, sealed, "client-secret:iglobex"},
		{"wrong context (other purpose)", s, sealed, "signing-key:iacme"},
		{"empty context", s, sealed, ""},
		{"wrong key", other, sealed, "client-secret:iacme"},
		{"version byte changed", s, tamper(0), "client-secret:iacme"},
		{"nonce changed", s, tamper(1), "client-secret:iacme"},
		{"ciphertext changed", s, tamper(14), "client-secret:iacme"},
		{"tag changed", s, tamper(len(sealed) - 1), "client-secret:iacme"},
		{"truncated", s, sealed[:len(sealed)-1], "client-secret:iacme"},
		{"too short", s, sealed[:5], "client-secret:iacme"},
		{"empty", s, nil, "client-secret:iacme"},
		{"extended", s, append(bytes.Clone(sealed), 0), "client-secret:iacme"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.s.Open(c.sealed, c.context)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
			if got != nil {
				t.Fatal("plaintext returned with an error")
			}
		})
	}
}

func TestSealSecretBoundToTenant(t *testing.T) {
	s, _ := NewSealer([]byte(fixedMasterKey))
	sealed, err := SealSecret(s, []byte("s3cret"), "iacme")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenSecret(s, sealed, "iacme"); err != nil || string(got) != "s3cret" {
		t.Fatalf("OpenSecret = %q, %v", got, err)
	}
	if _, err := OpenSecret(s, sealed, "iglobex"); !errors.Is(err, ErrOpen) {
		t.Fatalf("secret opened for another tenant: %v", err)
	}
	if _, err := SealSecret(s, []byte("x"), ""); err == nil {
		t.Fatal("sealed for an empty tenant id")
	}
}

func TestZeroSealerRefuses(t *testing.T) {
	var s Sealer
	if _, err := s.Seal([]byte("x"), "c"); err == nil {
		t.Error("zero Sealer sealed")
	}
	if _, err := s.Open([]byte("x"), "c"); !errors.Is(err, ErrOpen) {
		t.Errorf("zero Sealer Open: %v", err)
	}
	mustPanic(t, "DeriveKey on a zero Sealer", func() { s.DeriveKey("csrf") })
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("%d-byte key accepted", n)
		}
	}
}

func TestDeriveKey(t *testing.T) {
	s, _ := NewSealer([]byte(fixedMasterKey))
	s2, _ := NewSealer([]byte(fixedMasterKey))
	a := s.DeriveKey("csrf")
	if len(a) != 32 {
		t.Fatalf("DeriveKey gave %d bytes", len(a))
	}
	a2 := s2.DeriveKey("csrf")
	b := s.DeriveKey("login-state")
	if !bytes.Equal(a, a2) {
		t.Error("same master key and purpose gave different keys")
	}
	if bytes.Equal(a, b) {
		t.Error("different purposes gave the same key")
	}
	if bytes.Equal(a, []byte(fixedMasterKey)) {
		t.Error("derived key is the master key")
	}
	mustPanic(t, "empty purpose", func() { s.DeriveKey("") })
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: did not panic", name)
		}
	}()
	f()
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenantgate.key")
	s1, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	line := strings.TrimSuffix(string(data), "\n")
	if key, err := base64.StdEncoding.DecodeString(line); err != nil || len(key) != MasterKeySize || strings.Contains(line, "\n") {
		t.Fatalf("file content is not one line of base64 of %d bytes", MasterKeySize)
	}

	// Loading again gives the same key: what one sealed, the other opens.
	s2, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := s1.Seal([]byte("x"), "c")
	if _, err := s2.Open(sealed, "c"); err != nil {
		t.Fatalf("reloaded key differs: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(data, after) {
		t.Fatal("loading rewrote the key file")
	}
}

func TestLoadOrCreateMasterKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	var wg sync.WaitGroup
	sealers := make([]*Sealer, 8)
	errs := make([]error, 8)
	for i := range sealers {
		wg.Go(func() { sealers[i], errs[i] = LoadOrCreateMasterKey(path) })
	}
	wg.Wait()
	var sealed []byte
	for i, s := range sealers {
		if errs[i] != nil {
			// A reader may catch the winner's file before it is written;
			// it must then fail, never make a second key.
			continue
		}
		if sealed == nil {
			sealed, _ = s.Seal([]byte("x"), "c")
			continue
		}
		if _, err := s.Open(sealed, "c"); err != nil {
			t.Fatalf("two different master keys were created")
		}
	}
	if sealed == nil {
		t.Fatalf("every concurrent load failed: %v", errs)
	}
}

func TestLoadMasterKeyRefuses(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte(fixedMasterKey))
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		dir     bool
		want    string // substring of the error; "" means accepted
	}{
		{"one line with newline", good + "\n", 0o600, false, ""},
		{"no trailing newline", good, 0o600, false, ""},
		{"CRLF", good + "\r\n", 0o600, false, ""},
		{"read-only for owner", good + "\n", 0o400, false, ""},
		{"world readable", good + "\n", 0o644, false, "chmod 600"},
		{"group readable", good + "\n", 0o640, false, "chmod 600"},
		{"world writable only", good + "\n", 0o602, false, "chmod 600"},
		{"too short", base64.StdEncoding.EncodeToString(make([]byte, 16)) + "\n", 0o600, false, "16 bytes, want 32"},
		{"too long", base64.StdEncoding.EncodeToString(make([]byte, 48)) + "\n", 0o600, false, "48 bytes, want 32"},
		{"raw bytes instead of base64", fixedMasterKey, 0o600, false, "not one line of standard base64"},
		{"url base64", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))), 0o600, false, "not one line of standard base64"},
		{"two lines", good + "\n" + good + "\n", 0o600, false, "not one line of standard base64"},
		{"split over two lines", good[:20] + "\n" + good[20:] + "\n", 0o600, false, "not one line of standard base64"},
		{"leading space", " " + good, 0o600, false, "not one line of standard base64"},
		{"empty", "", 0o600, false, "0 bytes, want 32"},
		{"huge", strings.Repeat("A", 1<<20), 0o600, false, "too large"},
		{"a directory", "", 0o700, true, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if c.dir {
				if err := os.Mkdir(path, c.mode); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, c.mode); err != nil {
					t.Fatal(err)
				}
			}
			s, err := LoadOrCreateMasterKey(path)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				want, _ := NewSealer([]byte(fixedMasterKey))
				sealed, _ := want.Seal([]byte("x"), "c")
				if _, err := s.Open(sealed, "c"); err != nil {
					t.Fatal("loaded a different key than the file holds")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if len(c.content) > 8 && strings.Contains(err.Error(), c.content[:8]) {
				t.Errorf("error %q echoes the file content", err)
			}
			if !c.dir {
				after, _ := os.ReadFile(path)
				if string(after) != c.content {
					t.Error("a refused key file was modified")
				}
			}
		})
	}
}

func TestLoadMasterKeyMissingDirectory(t *testing.T) {
	_, err := LoadOrCreateMasterKey(filepath.Join(t.TempDir(), "nope", "key"))
	if err == nil {
		t.Fatal("created a key in a missing directory")
	}
}
