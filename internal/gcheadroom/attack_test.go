package gcheadroom

// Adversarial tests of the tuner: can it leave the process with the
// collector off or at a percentage nobody chose, race, ignore the
// operator's GOGC, or escape GOMEMLIMIT?

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// mustStart starts a tuner or fails the test.
func mustStart(t *testing.T, ctx context.Context, headroom uint64) *Tuner {
	t.Helper()
	tu, err := Start(ctx, headroom)
	if err != nil {
		t.Fatal(err)
	}
	return tu
}

// restoreGC puts the percentage and the memory limit back after a test.
func restoreGC(t *testing.T) {
	t.Helper()
	// Start does not read GOGC (serve does, before it calls Start): these
	// tests run whatever the environment says.
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	l := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(p)
		debug.SetMemoryLimit(l)
	})
}

// The percentage Percent computes goes to debug.SetGCPercent, which takes
// it as an int32: above 2^31-1 it wraps, negative for a headroom past
// about 82 TiB (Percent(0, 2^47) = 3355443200 → -939524096), and a
// negative percentage turns the collector off. serve bounds the flag to
// 64 GiB (1638400 %), but Percent and Start take any uint64 and
// test/loadgen's profile-server passes its own flag to Start: Percent
// clamps at 2^31-1.
func TestAttackHugeHeadroomKeepsTheCollectorOn(t *testing.T) {
	restoreGC(t)
	// serve's largest --gc-headroom-mib is far from the wrap.
	if p := Percent(0, 64<<30); p != 1638400 {
		t.Fatalf("Percent(0, 64 GiB) = %d", p)
	}
	for _, h := range []uint64{1 << 47, 1 << 50, math.MaxUint64} {
		if p := Percent(0, h); p > math.MaxInt32 {
			t.Errorf("Percent(0, %d) = %d: debug.SetGCPercent takes it as int32(%d)", h, p, int32(p))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tu := mustStart(t, ctx, 1<<47)
	defer tu.Stop()
	if p := gcPercent(); p < 100 {
		t.Errorf("Start with a headroom of 128 TiB: the GC percentage is %d (off); the tuner thinks it is %d", p, tu.Current())
	}
}

// Two tuners in one process (serve run twice in-process, or a profile
// server next to serve) would each start from the percentage the other set
// and restore it: the second Start is refused while the first runs, and
// allowed once it stopped.
func TestAttackSecondTunerRefused(t *testing.T) {
	restoreGC(t)
	debug.SetGCPercent(100)
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	a := mustStart(t, ctxA, 32<<20)
	if b, err := Start(context.Background(), 32<<20); err != ErrRunning || b != nil {
		t.Fatalf("a second Start while one runs: %v, %v; want ErrRunning", b, err)
	}
	a.Stop()
	if p := gcPercent(); p != 100 {
		t.Errorf("the tuner stopped: the GC percentage is %d, not the 100 the process started with", p)
	}
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	b := mustStart(t, ctxB, 32<<20)
	cancelB()
	waitFor(t, func() bool { return gcPercent() == 100 }, "100 back after the second tuner's context ended")
	b.Stop()
}

// Stop twice, Stop racing with the context's end, with Current and with
// collections (run with -race): the starting percentage comes back once
// and stays; no cleanup sets another after Stop.
func TestAttackStopTwiceAndRaces(t *testing.T) {
	restoreGC(t)
	debug.SetGCPercent(175)
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		tu := mustStart(t, ctx, 64<<20)
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				switch i % 3 {
				case 0:
					tu.Stop()
				case 1:
					_ = tu.Current()
					runtime.GC()
				case 2:
					cancel()
				}
			})
		}
		wg.Wait()
		tu.Stop()
		cancel()
		if p := gcPercent(); p != 175 {
			t.Fatalf("after Stop the percentage is %d, want 175", p)
		}
	}
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gcPercent(); p != 175 {
		t.Fatalf("a collection after Stop set the percentage to %d", p)
	}
}

// A context already ended: Start still puts the percentage back.
func TestAttackStartWithEndedContext(t *testing.T) {
	restoreGC(t)
	debug.SetGCPercent(130)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mustStart(t, ctx, 64<<20)
	waitFor(t, func() bool { return gcPercent() == 130 }, "the starting percentage back")
}

// GOGC in the environment, whatever its value ("off", garbage), is the
// operator's: serve does not start the tuner (cmd/tenantgate's
// startGCHeadroom). An empty GOGC is unset to the runtime (it runs at
// 100), and to the tuner.
func TestAttackGOGCInEnvironment(t *testing.T) {
	for _, v := range []string{"off", "100", "50", "abc", "-1"} {
		t.Setenv("GOGC", v)
		if !FromEnvironment() {
			t.Errorf("GOGC=%q: FromEnvironment is false", v)
		}
	}
	t.Setenv("GOGC", "")
	if FromEnvironment() {
		t.Error("GOGC empty: FromEnvironment is true")
	}
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	if FromEnvironment() {
		t.Error("GOGC unset: FromEnvironment is true")
	}
}

// Start itself does not check for a collector turned off (GOGC=off is
// kept out by serve's FromEnvironment check): it turns it on while it runs,
// and Stop turns it off again.
func TestAttackStartWithGCOff(t *testing.T) {
	restoreGC(t)
	debug.SetGCPercent(-1)
	ctx, cancel := context.WithCancel(context.Background())
	tu := mustStart(t, ctx, 32<<20)
	if p := gcPercent(); p < 100 {
		t.Fatalf("the tuner runs with the percentage at %d", p)
	}
	cancel()
	tu.Stop()
	if p := gcPercent(); p != -1 {
		t.Fatalf("after Stop the percentage is %d, want -1 back", p)
	}
}

// GOMEMLIMIT still bounds the heap under the largest percentage: with a
// 4 GiB headroom (102400 %) and a 96 MiB limit, 1 GiB of garbage does not
// grow the heap to anything like 1 GiB. The limit is soft and the collector
// runs concurrently with a loop that allocates nothing but garbage, so the
// heap overshoots it by as much as the collector is starved of CPU
// (measured: 100–150 MiB on an idle machine, up to 276 MiB with both cores
// busy): the test asks for collections (the percentage alone would allow
// none) and a peak below half of the garbage, 512 MiB.
func TestAttackMemoryLimitStillBounds(t *testing.T) {
	restoreGC(t)
	const limit = 96 << 20
	debug.SetMemoryLimit(limit)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tu := mustStart(t, ctx, 4<<30)
	defer tu.Stop()
	runtime.GC()
	if p := gcPercent(); p < 10000 {
		t.Fatalf("percentage %d: the test needs the tuner's large one", p)
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(sample)
	cycles := sample[1].Value.Uint64()
	var peak uint64
	var keep []byte
	for i := range 1 << 14 { // 1 GiB in 64 KiB pieces
		keep = make([]byte, 64<<10)
		keep[0] = byte(i)
		if i%64 == 0 {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
		}
	}
	runtime.KeepAlive(keep)
	metrics.Read(sample)
	t.Logf("heap objects peaked at %d MiB", peak>>20)
	if peak > 512<<20 {
		t.Errorf("heap objects peaked at %d MiB under a %d MiB limit", peak>>20, limit>>20)
	}
	if n := sample[1].Value.Uint64() - cycles; n < 5 {
		t.Errorf("only %d collections for 1 GiB of garbage under a 96 MiB limit", n)
	}
}
