package main

import (
	"math/bits"
	"time"
)

// histogram records durations with a bounded relative error, the way an HDR
// histogram does: values below 2^subBits nanoseconds are exact, and above that
// every power of two is split into 2^subBits equal buckets, so a recorded
// value is off by less than 1/2^subBits (under 1.6%). Its size is fixed
// (about 30 KiB) whatever the number of samples. The zero value is ready.
// It is not safe for concurrent use: each worker keeps its own and they are
// merged at the end.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits     = 6
	subCount    = 1 << subBits
	histBuckets = (64 - subBits + 1) * subCount
)

// bucketOf maps a value to its bucket index; monotonic in v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v >> shift is in [subCount, 2*subCount)
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketValue is the largest value that falls into bucket i, so quantiles
// are reported on the pessimistic side.
func bucketValue(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	low := uint64(i%subCount+subCount) << shift
	return low + (uint64(1)<<shift - 1)
}

// record adds one sample. Negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// merge adds every sample of o to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the smallest recorded bucket value v such that at least
// q of the samples are <= v (q in [0,1]), or 0 with no samples. It never
// reports more than the largest sample.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketValue(i))
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}
