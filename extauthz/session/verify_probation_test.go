package session

import (
	"testing"
)

// TestVerifyOneTimeTokensKeepSessionsCached: a flood of tokens each presented
// once (probation only) does not push a session in use out of the cache,
// and a one-time token is remembered until its second use.
func TestVerifyOneTimeTokensKeepSessionsCached(t *testing.T) {
	f := newFixture(t)
	v := &Verifier{Now: f.clock, CacheSize: 16} // two probation slots
	session, _ := f.mint(t, &f.acme)
	for range 2 { // first use: probation; second: into the cache
		if _, err := v.verifyAny(f.snap, session); err != nil {
			t.Fatal(err)
		}
	}
	const flood = 200
	for range flood {
		tok, _ := f.mint(t, &f.acme)
		if _, err := v.verifyAny(f.snap, tok); err != nil {
			t.Fatal(err)
		}
	}
	before := v.Stats()
	if _, err := v.verifyAny(f.snap, session); err != nil {
		t.Fatal(err)
	}
	if s := v.Stats(); s.SignatureChecks != before.SignatureChecks || s.Hits != before.Hits+1 {
		t.Fatalf("the session was pushed out by one-time tokens: before %+v, after %+v", before, s)
	}
	if before.SignatureChecks != 1+flood || before.Hits != 1 {
		t.Fatalf("stats %+v: want one signature check per token and one hit", before)
	}

	// The last one-time token is still in probation: its second use is a
	// hit, and so is its third (it has moved into the cache).
	last, _ := f.mint(t, &f.acme)
	for range 3 {
		if _, err := v.verifyAny(f.snap, last); err != nil {
			t.Fatal(err)
		}
	}
	if s := v.Stats(); s.SignatureChecks != 2+flood || s.Hits != before.Hits+3 {
		t.Fatalf("stats %+v: a token in probation was verified again", s)
	}
}

// TestVerifySeenOnceFilter: a token whose second use comes after probation
// forgot it is verified again and then cached, because the seen-once filter
// remembers its first use; with the filter forgotten too, it starts over in
// probation.
func TestVerifySeenOnceFilter(t *testing.T) {
	f := newFixture(t)
	v := &Verifier{Now: f.clock, CacheSize: 64}
	tok, _ := f.mint(t, &f.acme)
	verify := func(wantSigs, wantHits uint64) {
		t.Helper()
		if _, err := v.verifyAny(f.snap, tok); err != nil {
			t.Fatal(err)
		}
		if s := v.Stats(); s.SignatureChecks != wantSigs || s.Hits != wantHits {
			t.Fatalf("stats %+v, want %d signature checks and %d hits", s, wantSigs, wantHits)
		}
	}
	forgetProbation := func() {
		for i := range v.probation {
			v.probation[i].Store(nil)
		}
	}

	verify(1, 0) // first use: verified, into probation
	forgetProbation()
	verify(2, 0) // second use, probation forgot: verified again, cached
	forgetProbation()
	verify(2, 1) // a cache hit, not a probation one

	other, _ := f.mint(t, &f.acme)
	tok = other
	verify(3, 1)
	forgetProbation()
	for i := range v.seen {
		v.seen[i].Store(0)
	}
	verify(4, 1) // nothing remembers the first use: probation again
	verify(4, 2) // and the next use is a probation hit
}
