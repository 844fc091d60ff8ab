package password

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fast are parameters cheap enough for tests where the cost is not the point.
var fast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h := &Hasher{Params: fast}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("encoded = %q, want a PHC argon2id string", enc)
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapler", false},
		{"case", "Correct horse battery staple", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(enc, tc.pw)
			if err != nil || ok != tc.want {
				t.Fatalf("Verify = %v, %v; want %v, nil", ok, err, tc.want)
			}
		})
	}
	enc2, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if enc2 == enc {
		t.Fatal("two hashes of the same password are equal: salt not random")
	}
}

func TestDefaultParamsFormat(t *testing.T) {
	// The zero Hasher must produce the OWASP parameters; this one test pays
	// the real cost once.
	enc, err := (&Hasher{}).Hash("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	p, salt, key, err := decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if p.Memory != 19456 || p.Time != 2 || p.Threads != 1 || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("params %+v salt %d key %d; want m=19456 t=2 p=1 salt 16 key 32", p, len(salt), len(key))
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoded = %q", enc)
	}
}

func TestVerifyRefusesMalformed(t *testing.T) {
	h := &Hasher{Params: fast}
	good, err := h.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	tests := []struct{ name, enc string }{
		{"empty", ""},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key},
		{"memory overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key},
		{"huge parallelism", "$argon2id$v=19$m=64,t=1,p=255$" + salt + "$" + key},
		{"parallelism wraps uint8", "$argon2id$v=19$m=64,t=1,p=257$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"memory below 8p", "$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key},
		{"reordered params", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"extra field", good + "$x"},
		{"too long", good + strings.Repeat("A", 300)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(tc.enc, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h := &Hasher{Params: fast}
	ok, err := h.VerifyDummy("anything")
	if ok || err != nil {
		t.Fatalf("VerifyDummy = %v, %v; want false, nil", ok, err)
	}
}

func TestBusy(t *testing.T) {
	h := &Hasher{Params: fast, MaxConcurrent: 1, Wait: 20 * time.Millisecond}
	enc, err := h.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.acquire(); err != nil { // hold the only slot
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"hash":   func() error { _, err := h.Hash("pw"); return err },
		"verify": func() error { _, err := h.Verify(enc, "pw"); return err },
		"dummy":  func() error { _, err := h.VerifyDummy("pw"); return err },
	} {
		if err := f(); !errors.Is(err, ErrBusy) {
			t.Errorf("%s while saturated: %v, want ErrBusy", name, err)
		}
	}
	h.release()
	if ok, err := h.Verify(enc, "pw"); !ok || err != nil {
		t.Fatalf("after release: Verify = %v, %v", ok, err)
	}
}

func TestConcurrencyBounded(t *testing.T) {
	h := &Hasher{Params: fast, MaxConcurrent: 2, Wait: 5 * time.Second}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.VerifyDummy("pw"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(h.slots) != 0 {
		t.Fatalf("%d slots still held", len(h.slots))
	}
}

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"12 ascii", "abcdefghijkl", nil},
		{"11 ascii", "abcdefghijk", ErrTooShort},
		{"empty", "", ErrTooShort},
		{"12 runes multibyte", strings.Repeat("é", 12), nil},
		{"11 runes many bytes", strings.Repeat("日", 11), ErrTooShort},
		{"1024 bytes", strings.Repeat("a", 1024), nil},
		{"1025 bytes", strings.Repeat("a", 1025), ErrTooLong},
		{"invalid utf8", "abcdefghijkl\xff", ErrNotUTF8},
		{"spaces count", "a b c d e f ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckPolicy(tc.pw); !errors.Is(err, tc.want) {
				t.Fatalf("CheckPolicy = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecode: no stored hash, however hostile, panics or gets past the bounds.
func FuzzDecode(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decode(s)
		if err != nil {
			return
		}
		if p.validate() != nil || p.Memory > maxMemory || p.Time > maxTime || int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("decode(%q) accepted out-of-bounds params %+v", s, p)
		}
	})
}
