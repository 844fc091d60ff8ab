package gcheadroom

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 32 * mib, 800},         // below the runtime's floor: counts as 4 MiB
		{1 * mib, 32 * mib, 800},   // the floor scales too: 4 MiB × 8 = 32 MiB
		{4 * mib, 32 * mib, 800},   // 4 MiB live, 32 MiB more before the next cycle
		{5 * mib, 32 * mib, 640},   // 5 × 6.4 = 32
		{6 * mib, 32 * mib, 534},   // rounded up
		{32 * mib, 32 * mib, 100},  // a heap as large as the headroom: Go's default
		{500 * mib, 32 * mib, 100}, // never below the default
		{4 * mib, 0, 100},
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
		}
	}
}

// gcPercent reads the runtime's GC percentage.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// The tuner follows the live heap after each collection and puts the
// starting percentage back when its context ends.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tu, err := Start(ctx, 64<<20)
	if err != nil {
		t.Fatal(err)
	}

	// A small heap: the headroom over the 4 MiB floor, 64/4 × 100.
	runtime.GC()
	waitFor(t, func() bool { return gcPercent() == 1600 && tu.Current() == 1600 }, "1600 for a small heap")

	// A live heap of 128 MiB: Go's default, give or take the tenth the
	// tuner lets the percentage drift before it sets it again.
	big := make([][]byte, 128)
	for i := range big {
		big[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	runtime.GC() // the cleanup of the first cycle may run after the second began
	waitFor(t, func() bool { return gcPercent() <= 110 }, "about 100 for a 128 MiB heap")
	runtime.KeepAlive(big)
	big = nil

	// Small again: back up.
	runtime.GC()
	runtime.GC()
	waitFor(t, func() bool { return gcPercent() == 1600 }, "1600 once the heap is small again")

	debug.SetGCPercent(100) // as if the process had started at 100
	tu.initial = 250
	cancel()
	waitFor(t, func() bool { return gcPercent() == 250 }, "the starting percentage back after the context ends")
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := gcPercent(); p != 250 {
		t.Fatalf("after Stop a collection set the percentage to %d", p)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (percentage %d)", what, gcPercent())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
