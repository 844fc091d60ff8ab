package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// zeroReader makes session ids deterministic, so that the committed fuzz
// corpus holds a token the fuzz fixture really minted.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// corpusDir holds FuzzVerify's committed seed corpus. Regenerate it with
//
//	TENANTGATE_WRITE_CORPUS=1 go test -run TestFuzzVerifyCorpus ./extauthz/session/
const corpusDir = "testdata/fuzz/FuzzVerify"

// fuzzSeeds returns named seed inputs: tokens the fixture minted and forgeries
// of each kind TestVerifyRefuses covers. The acme token is deterministic
// (fixed key, clock and session id; Ed25519 signatures are deterministic).
func fuzzSeeds(tb testing.TB, f *fixture) (seeds map[string]string, minted map[string]Claims) {
	tb.Helper()
	m := &Minter{Sealer: f.sealer, TTL: time.Hour, Now: f.clock, Rand: zeroReader{}}
	minted = map[string]Claims{}
	seeds = map[string]string{}
	for _, tn := range []string{"acme", "globex"} {
		t := f.snap.BySlug(tn)
		tok, c, err := m.Mint(t, Claims{Subject: "u-1", Email: "alice@example.test", Roles: []string{"admin", "member"}, Method: MethodPassword})
		if err != nil {
			tb.Fatal(err)
		}
		minted[tok[:strings.LastIndexByte(tok, '.')]] = c
		seeds["valid-"+tn] = tok
	}
	valid := seeds["valid-acme"]
	parts := strings.Split(valid, ".")
	hdr, cl := f.acmeHeader(), f.claimsFor("iacme")
	seeds["alg-none"] = forge(tb, with(hdr, "alg", "none"), cl, nil)
	seeds["hs256-public-key"] = forge(tb, with(hdr, "alg", "HS256"), cl, hsSigner(f.acme.Keys[0].Public))
	seeds["kid-traversal"] = forge(tb, with(hdr, "kid", "../../dev/null"), cl, nil)
	seeds["jku"] = forge(tb, with(hdr, "jku", "https://evil.test/"), cl, nil)
	seeds["crit"] = forge(tb, with(hdr, "crit", []string{"exp"}), cl, nil)
	seeds["typ-jwt"] = forge(tb, with(hdr, "typ", "JWT"), cl, nil)
	seeds["tid-other-tenant"] = forge(tb, hdr, f.claimsFor("iglobex"), nil)
	seeds["no-exp"] = forge(tb, hdr, with(cl, "exp", nil), nil)
	seeds["tampered-payload"] = parts[0] + "." + b64([]byte(`{"sub":"u-2","tid":"iacme"}`)) + "." + parts[2]
	seeds["no-signature"] = parts[0] + "." + parts[1] + "."
	seeds["empty"] = ""
	seeds["dots"] = "...."
	seeds["garbage"] = "not a token"
	return seeds, minted
}

// FuzzVerify: Verify never panics, every refusal wraps ErrInvalid, and it
// never accepts a token whose signed content a Minter did not produce (it may
// accept another encoding of the same signature only where the algorithm
// allows one, as ECDSA does), and then reports exactly the minted claims.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	seeds, minted := fuzzSeeds(f, fx)
	for _, s := range seeds {
		f.Add(s)
	}
	v := fx.verifier() // shared, so the cache path is fuzzed too
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.verifyAny(fx.snap, token)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		want, ok := minted[token[:strings.LastIndexByte(token, '.')]]
		if !ok {
			t.Fatalf("accepted a token no Minter produced: %q", token)
		}
		if !reflect.DeepEqual(*c, want) {
			t.Fatalf("claims %+v, want %+v", *c, want)
		}
	})
}

// TestFuzzVerifyCorpus checks that the committed corpus is current: its valid
// acme token still verifies, so the fuzzer starts from an accepted input.
// With TENANTGATE_WRITE_CORPUS=1 it rewrites the corpus instead.
func TestFuzzVerifyCorpus(t *testing.T) {
	f := newFixture(t)
	seeds, _ := fuzzSeeds(t, f)
	if os.Getenv("TENANTGATE_WRITE_CORPUS") == "1" {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range seeds {
			if name == "valid-globex" {
				continue // ECDSA signatures are random and the key is made per run
			}
			content := fmt.Sprintf("go test fuzz v1\nstring(%s)\n", strconv.Quote(s))
			if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	raw, err := os.ReadFile(filepath.Join(corpusDir, "valid-acme"))
	if err != nil {
		t.Fatalf("corpus missing; regenerate it (see corpusDir): %v", err)
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "go test fuzz v1\nstring(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	tok, err := strconv.Unquote(lit)
	if !ok || !ok2 || err != nil {
		t.Fatalf("corpus file valid-acme is not a string seed")
	}
	if tok != seeds["valid-acme"] {
		t.Fatal("committed valid-acme seed is stale; regenerate the corpus (see corpusDir)")
	}
	if _, err := f.verifier().verifyAny(f.snap, tok); err != nil {
		t.Fatalf("committed valid seed no longer verifies: %v", err)
	}
}
