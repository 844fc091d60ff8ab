package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestInstrumentationPairReport: the on/off pair's goal line compares the
// two cases' best rounds, and the round-by-round medians follow.
func TestInstrumentationPairReport(t *testing.T) {
	round := func(label string, qps, cpuUs float64) *result {
		return &result{Kind: "load", Case: label, Seconds: 1, Calls: uint64(qps), QPS: qps, ServerCPU: cpuUs * qps / 1e6}
	}
	s := &summary{load: map[string][]*result{
		"noop":          {round("noop", 20000, 30)},
		labelSessionOff: {round(labelSessionOff, 10000, 40), round(labelSessionOff, 16000, 38), round(labelSessionOff, 15000, 39)},
		labelSessionOn:  {round(labelSessionOn, 9900, 40), round(labelSessionOn, 15800, 38), round(labelSessionOn, 15300, 39)},
	}, order: []string{"noop", labelSessionOff, labelSessionOn}}
	qps, cpu := pairedMedians(s.load[labelSessionOff], s.load[labelSessionOn])
	if qps < 0.98 || qps > 1 || cpu < 0.999 || cpu > 1.001 {
		t.Errorf("pairedMedians = %.3f, %.3f; want 0.99 and 1.000", qps, cpu)
	}
	var b bytes.Buffer
	if err := writeReport(&b, s, 1); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "within 3% of instrumentation off (same binary): session-on/session-off 0.988") ||
		!strings.Contains(out, "MET") || !strings.Contains(out, "median on/off QPS 0.990") {
		t.Errorf("report:\n%s", out)
	}
}
