// Package gcheadroom keeps a minimum of heap headroom between garbage
// collections: with Go's default GOGC=100 a process whose live heap is
// small collects after every few megabytes of allocation, and each cycle
// marks the whole live heap again. serve's live heap is a few megabytes of
// tables (protobuf descriptors, templates, the snapshot) that never change,
// while a Check allocates kilobytes of gRPC and protobuf garbage, so at
// GOGC=100 the collector marks those tables every few hundred Checks:
// about a sixth of the server's CPU under load (docs/performance.md).
//
// Tuner sets the GC percentage after every collection so that the next one
// comes after about Headroom bytes of allocation: percent =
// max(100, Headroom / max(live, 4 MiB) × 100) (Percent). A large heap keeps Go's default (its
// headroom is already the size of the heap); a small one grows by at most
// Headroom before it is collected. GOGC set in the environment is the
// operator's choice and is left alone, and GOMEMLIMIT still bounds the heap:
// near the limit the runtime collects as often as it needs to.
package gcheadroom

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultHeadroom is serve's --gc-headroom-mib, in bytes.
const DefaultHeadroom = 32 << 20

// heapMinimum is the runtime's heap goal floor at GOGC=100, which it
// scales with the percentage: below it, a larger percentage would raise
// the floor, not the headroom.
const heapMinimum = 4 << 20

// Percent is the GC percentage that gives a live heap of live bytes about
// headroom bytes of allocation before the next collection, and never less
// than Go's default of 100. A heap below the runtime's 4 MiB floor counts
// as the floor: the runtime scales that floor by the percentage too.
func Percent(live, headroom uint64) int {
	p := math.Ceil(float64(headroom) / float64(max(live, heapMinimum)) * 100)
	// debug.SetGCPercent takes an int32: beyond it a percentage would wrap
	// to a negative one and turn the collector off.
	return int(min(max(p, 100), math.MaxInt32))
}

// ErrRunning is Start's answer while another Tuner runs in the process:
// the GC percentage is one per process, and two tuners would each restore
// what the other set.
var ErrRunning = errors.New("gcheadroom: a tuner already runs in this process")

// running is whether a Tuner runs.
var running atomic.Bool

// Tuner is the running adjustment: Start it once; Stop ends it and puts
// back the percentage the process started with.
type Tuner struct {
	headroom uint64

	mu      sync.Mutex
	stopped bool
	initial int
	current int
	sample  []metrics.Sample
}

// FromEnvironment reports whether GOGC is set (not empty, as the runtime
// reads it), in which case Start must not be used: the operator chose the
// percentage, or turned the collector off.
func FromEnvironment() bool {
	return os.Getenv("GOGC") != ""
}

// Start adjusts the GC percentage after every collection until ctx ends or
// Stop is called, for a headroom of headroom bytes (> 0). One Tuner runs in
// a process at a time: while one does, Start returns ErrRunning.
func Start(ctx context.Context, headroom uint64) (*Tuner, error) {
	if !running.CompareAndSwap(false, true) {
		return nil, ErrRunning
	}
	t := &Tuner{headroom: headroom, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.initial = debug.SetGCPercent(100)
	t.current = 100
	t.adjust()
	t.arm()
	context.AfterFunc(ctx, t.Stop)
	return t, nil
}

// Current is the GC percentage the tuner last set.
func (t *Tuner) Current() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current
}

// Stop ends the adjustment and restores the starting percentage.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.initial)
	running.Store(false)
}

// sentinel is garbage as soon as it is made: its cleanup runs after the
// next collection, adjusts, and arms the next one.
type sentinel struct{ _ [16]byte }

func (t *Tuner) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(t *Tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets the percentage for the live heap the last collection found,
// if it moved by more than a tenth; it reports false once stopped.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.headroom)
	if d := p - t.current; d*10 > t.current || -d*10 > t.current {
		debug.SetGCPercent(p)
		t.current = p
	}
	return true
}
