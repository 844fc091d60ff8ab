package session

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These benchmarks separate what a fresh token costs (docs/performance.md,
// the fresh case) into the bare signature and everything Verify adds:
//
//	go test ./extauthz/session -run '^$' -bench 'Verify' -benchmem -count 6
//
// BenchmarkVerifyOneShot is the bench's fresh case: every token is new to
// the Verifier, so whatever Verify does to remember a token (probation, the
// seen-once filter) is in its cost.

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric: the process's CPU time (all threads,
// so the garbage collector's work counts) per iteration since start. On a
// busy machine it moves far less than ns/op, which counts time the
// benchmark spent waiting for a core.
func reportCPU(b *testing.B, start time.Duration, n int) {
	if n > 0 {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(n), "cpu-ns/op")
	}
}

// benchTokens mints n distinct acme (EdDSA) tokens.
func benchTokens(b *testing.B, f *fixture, n int) []string {
	b.Helper()
	toks := make([]string, n)
	for i := range toks {
		toks[i], _ = f.mint(b, &f.acme)
	}
	return toks
}

// BenchmarkVerifySignature is the floor: ed25519.Verify of a token's signing
// input, what the bench's model calls one signature verification.
func BenchmarkVerifySignature(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.mint(b, &f.acme)
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := f.acmePriv.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	n, start := 0, cpuTime(b)
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("signature does not verify")
		}
		n++
	}
	reportCPU(b, start, n)
}

// BenchmarkVerifyOneShot verifies a stream of distinct tokens, each once
// as far as the Verifier can tell.
func BenchmarkVerifyOneShot(b *testing.B) {
	f := newFixture(b)
	// The laps over these tokens are far longer than a small cache's
	// probation window and seen-once filter, so every use is a first one.
	const distinct = 1 << 14
	toks := benchTokens(b, f, distinct)
	v := &Verifier{Now: f.clock, CacheSize: 256}
	b.ReportAllocs()
	i, start := 0, cpuTime(b)
	for b.Loop() {
		if _, err := v.verifyAny(f.snap, toks[i%distinct]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, start, i)
	b.ReportMetric(float64(v.Stats().SignatureChecks)/float64(max(i, 1)), "sigs/op")
}

// BenchmarkVerifyUncached is Verify of one token with the cache off: decode,
// checks and signature every time, nothing retained.
func BenchmarkVerifyUncached(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.mint(b, &f.acme)
	v := &Verifier{Now: f.clock, CacheSize: -1}
	b.ReportAllocs()
	n, start := 0, cpuTime(b)
	for b.Loop() {
		if _, err := v.verifyAny(f.snap, tok); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportCPU(b, start, n)
}
