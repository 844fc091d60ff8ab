// Package countertest is the conformance suite of login.Counter: every
// implementation (login.NewMemoryCounter, etcdstore.Store.Counter) runs Run,
// and those that several processes share run RunShared as well, the way
// tenants/storetest holds the Store backends to one contract.
package countertest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/login"
)

// Open opens a counter by name and window, as login.Handler.Counters does.
// Every call of a NewCounters function starts from an empty store.
type Open func(name string, window time.Duration) login.Counter

// window is the window of the counters under test. Counters take the time
// from the caller, so the suite moves it on without waiting.
const window = time.Minute

func key(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

// Run checks the contract of login.Counter on counters from newCounters,
// called once per subtest.
func Run(t *testing.T, newCounters func(t *testing.T) Open) {
	base := time.Now().Truncate(time.Second)
	t.Run("add counts and returns the count", func(t *testing.T) {
		c := newCounters(t)(login.CounterAccountFailures, window)
		k := key("alice")
		for want := 1; want <= 3; want++ {
			if n := mustAdd(t, c, k, base); n != want {
				t.Fatalf("Add %d returned %d", want, n)
			}
		}
		if n := mustCount(t, c, k, base); n != 3 {
			t.Fatalf("Count = %d after 3 Adds, want 3", n)
		}
		if n := mustCount(t, c, k, base); n != 3 {
			t.Fatalf("Count changed the count: %d, want 3", n)
		}
		if n := mustCount(t, c, key("bob"), base); n != 0 {
			t.Fatalf("Count of another key = %d, want 0", n)
		}
	})
	t.Run("counters of other names are apart", func(t *testing.T) {
		open := newCounters(t)
		a := open(login.CounterAccountFailures, window)
		b := open(login.CounterAddressFailures, window)
		k := key("same digest")
		mustAdd(t, a, k, base)
		mustAdd(t, a, k, base)
		if n := mustAdd(t, b, k, base); n != 1 {
			t.Fatalf("Add in another counter returned %d, want 1", n)
		}
		if err := b.Reset(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		if n := mustCount(t, a, k, base); n != 2 {
			t.Fatalf("Reset in another counter changed this one's count to %d, want 2", n)
		}
	})
	t.Run("an event counts for the window and no longer", func(t *testing.T) {
		c := newCounters(t)(login.CounterAccountFailures, window)
		k := key("alice")
		mustAdd(t, c, k, base)
		mustAdd(t, c, k, base.Add(time.Second))
		if n := mustCount(t, c, k, base.Add(window-time.Millisecond)); n != 2 {
			t.Fatalf("Count just before the window ends = %d, want 2", n)
		}
		// The first event's window has ended: it no longer counts, and
		// neither may the second (memory counts in fixed windows from the
		// first event), but nothing may count past a window of its own.
		if n := mustCount(t, c, k, base.Add(window)); n > 1 {
			t.Fatalf("Count once the first event's window ended = %d, want at most 1", n)
		}
		if n := mustCount(t, c, k, base.Add(window+time.Second)); n != 0 {
			t.Fatalf("Count once every event's window ended = %d, want 0", n)
		}
		if n := mustAdd(t, c, k, base.Add(2*window)); n != 1 {
			t.Fatalf("Add in a new window returned %d, want 1", n)
		}
	})
	t.Run("reset forgets the key", func(t *testing.T) {
		c := newCounters(t)(login.CounterAccountFailures, window)
		k, other := key("alice"), key("bob")
		mustAdd(t, c, k, base)
		mustAdd(t, c, k, base)
		mustAdd(t, c, other, base)
		if err := c.Reset(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		if n := mustCount(t, c, k, base); n != 0 {
			t.Fatalf("Count after Reset = %d, want 0", n)
		}
		if n := mustCount(t, c, other, base); n != 1 {
			t.Fatalf("Reset of one key changed another's count to %d, want 1", n)
		}
		if n := mustAdd(t, c, k, base); n != 1 {
			t.Fatalf("Add after Reset returned %d, want 1", n)
		}
		if err := c.Reset(t.Context(), key("never counted")); err != nil {
			t.Fatalf("Reset of a key never counted: %v", err)
		}
	})
	t.Run("concurrent adds each get their own count", func(t *testing.T) {
		c := newCounters(t)(login.CounterAccountFailures, window)
		raceAdds(t, []login.Counter{c}, 24, base)
	})
}

// RunShared checks what counters shared by several processes promise:
// newCounters returns two Opens, as two processes on one store would have,
// called once per subtest.
func RunShared(t *testing.T, newCounters func(t *testing.T) (Open, Open)) {
	base := time.Now().Truncate(time.Second)
	t.Run("one count for both processes", func(t *testing.T) {
		one, two := newCounters(t)
		a := one(login.CounterAccountFailures, window)
		b := two(login.CounterAccountFailures, window)
		k := key("alice")
		for i, c := range []login.Counter{a, b, a, b, b} {
			if n := mustAdd(t, c, k, base); n != i+1 {
				t.Fatalf("Add %d (alternating processes) returned %d", i+1, n)
			}
		}
		if n := mustCount(t, a, k, base); n != 5 {
			t.Fatalf("Count in process one = %d, want 5", n)
		}
		if err := b.Reset(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		if n := mustCount(t, a, k, base); n != 0 {
			t.Fatalf("Count in process one after a Reset in process two = %d, want 0", n)
		}
	})
	t.Run("concurrent adds from both processes each get their own count", func(t *testing.T) {
		one, two := newCounters(t)
		raceAdds(t, []login.Counter{one(login.CounterAccountFailures, window), two(login.CounterAccountFailures, window)}, 24, base)
	})
}

// raceAdds runs n Adds of one key at once, spread over cs, and checks that
// they returned 1 to n, each once: the atomicity a limit relies on.
func raceAdds(t *testing.T, cs []login.Counter, n int, now time.Time) {
	t.Helper()
	k := key("raced")
	got := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = cs[i%len(cs)].Add(t.Context(), k, now)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	slices.Sort(got)
	for i, g := range got {
		if g != i+1 {
			t.Fatalf("%d concurrent Adds returned %v, want 1 to %d each once", n, got, n)
		}
	}
	if c := mustCount(t, cs[0], k, now); c != n {
		t.Fatalf("Count after %d concurrent Adds = %d", n, c)
	}
}

func mustAdd(t *testing.T, c login.Counter, k [sha256.Size]byte, now time.Time) int {
	t.Helper()
	n, err := c.Add(context.Background(), k, now)
	if err != nil {
		t.Fatal(fmt.Errorf("Add: %w", err))
	}
	return n
}

func mustCount(t *testing.T, c login.Counter, k [sha256.Size]byte, now time.Time) int {
	t.Helper()
	n, err := c.Count(context.Background(), k, now)
	if err != nil {
		t.Fatal(fmt.Errorf("Count: %w", err))
	}
	return n
}
