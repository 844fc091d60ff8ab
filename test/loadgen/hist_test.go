package main

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 123456789, 1<<63 - 1, 1<<64 - 1} {
		i := bucketOf(v)
		if i < prev {
			t.Errorf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, i, prev)
		}
		prev = i
		if i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range %d", v, i, histBuckets)
		}
		hi := bucketValue(i)
		if hi < v {
			t.Errorf("bucketValue(bucketOf(%d)) = %d, below the value", v, hi)
		}
		if v > 0 && float64(hi-v)/float64(v) > 1.0/subCount {
			t.Errorf("bucket of %d reports %d: error above 1/%d", v, hi, subCount)
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples func() []time.Duration
	}{
		{"uniform microseconds", func() []time.Duration {
			var s []time.Duration
			for i := 1; i <= 10000; i++ {
				s = append(s, time.Duration(i)*time.Microsecond)
			}
			return s
		}},
		{"long tail", func() []time.Duration {
			r := rand.New(rand.NewPCG(1, 2))
			var s []time.Duration
			for range 20000 {
				s = append(s, time.Duration(r.ExpFloat64()*float64(300*time.Microsecond)))
			}
			return s
		}},
		{"one sample", func() []time.Duration { return []time.Duration{42 * time.Millisecond} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.samples()
			var a, b histogram
			for i, d := range s {
				if i%2 == 0 {
					a.record(d)
				} else {
					b.record(d)
				}
			}
			a.merge(&b)
			if a.n != uint64(len(s)) {
				t.Fatalf("n = %d, want %d", a.n, len(s))
			}
			sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
			for _, q := range []float64{0.5, 0.99, 1} {
				exact := s[max(0, int(q*float64(len(s))+0.5)-1)]
				got := a.quantile(q)
				if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
					t.Errorf("quantile(%v) = %v, exact %v", q, got, exact)
				}
			}
		})
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h histogram
	if got := h.quantile(0.99); got != 0 {
		t.Errorf("quantile of nothing = %v, want 0", got)
	}
}
