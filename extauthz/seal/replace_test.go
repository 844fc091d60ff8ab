package seal

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestReplace: after Replace a Sealer seals and opens with the new key
// only; what it derives stays derived from the key it was made with.
func TestReplace(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, MasterKeySize), bytes.Repeat([]byte{2}, MasterKeySize)
	s, _ := NewSealer(oldKey)
	n, _ := NewSealer(newKey)
	sealedOld, _ := s.Seal([]byte("secret"), "ctx")
	csrf := s.DeriveKey("csrf")
	if s.SameKey(n) || !s.SameKey(s) {
		t.Fatal("SameKey is wrong")
	}
	if err := s.Replace(n); err != nil {
		t.Fatal(err)
	}
	if !s.SameKey(n) {
		t.Error("SameKey after Replace = false")
	}
	if _, err := s.Open(sealedOld, "ctx"); !errors.Is(err, ErrOpen) {
		t.Errorf("Open of a value sealed under the replaced key = %v, want ErrOpen", err)
	}
	sealedNew, _ := s.Seal([]byte("secret"), "ctx")
	if pt, err := n.Open(sealedNew, "ctx"); err != nil || string(pt) != "secret" {
		t.Errorf("the new key does not open what the Sealer sealed after Replace: %v", err)
	}
	if !bytes.Equal(s.DeriveKey("csrf"), csrf) {
		t.Error("DeriveKey changed with Replace")
	}
	if err := s.Replace(&Sealer{}); err == nil {
		t.Error("Replace with a keyless Sealer succeeded")
	}
}

// TestWriteMasterKeyFile: the file is replaced atomically, mode 0600, and
// reads back as the same key; LoadMasterKey never creates a file.
func TestWriteMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenantgate.key")
	if _, err := LoadMasterKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadMasterKey of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("LoadMasterKey created the file")
	}
	old, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := NewSealer(bytes.Repeat([]byte{7}, MasterKeySize))
	if err := WriteMasterKeyFile(path, n); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	back, err := LoadMasterKey(path)
	if err != nil || !back.SameKey(n) || back.SameKey(old) {
		t.Fatalf("key file holds another key (%v)", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left beside the key: %v", entries)
	}
	data, _ := os.ReadFile(path)
	if p, err := ParseMasterKey(data); err != nil || !p.SameKey(n) {
		t.Errorf("ParseMasterKey of the file = %v", err)
	}
	if _, err := ParseMasterKey([]byte("not base64!")); err == nil || bytes.Contains([]byte(err.Error()), []byte("base64!")) {
		t.Errorf("ParseMasterKey of garbage = %v", err)
	}
}
