package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestSampledFlag: the fast read of the sampled flag agrees with the
// formats (W3C Trace Context, B3 single and multi) and says "unknown" for
// anything it cannot read, leaving it to the full extraction.
func TestSampledFlag(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		name           string
		headers        map[string]string
		sampled, known bool
	}{
		{"none", nil, false, false},
		{"traceparent sampled", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-01"}, true, true},
		{"traceparent not sampled", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-00"}, false, true},
		{"traceparent other flags", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-03"}, true, true},
		{"traceparent later version", map[string]string{"traceparent": "01-" + tid + "-" + sid + "-00-more"}, false, true},
		{"traceparent malformed", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-0g"}, false, false},
		{"traceparent short", map[string]string{"traceparent": "00-abc-def-01"}, false, false},
		{"traceparent wins over b3", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-00", "x-b3-sampled": "1"}, false, true},
		{"b3 single sampled", map[string]string{"b3": tid + "-" + sid + "-1"}, true, true},
		{"b3 single with parent", map[string]string{"b3": tid + "-" + sid + "-0-" + sid}, false, true},
		{"b3 single debug", map[string]string{"b3": tid + "-" + sid + "-d"}, true, true},
		{"b3 single deny", map[string]string{"b3": "0"}, false, true},
		{"b3 single undecided", map[string]string{"b3": tid + "-" + sid}, false, false},
		{"b3 multi sampled", map[string]string{"x-b3-traceid": tid, "x-b3-spanid": sid, "x-b3-sampled": "1"}, true, true},
		{"b3 multi not sampled", map[string]string{"x-b3-sampled": "0"}, false, true},
		{"b3 multi debug", map[string]string{"x-b3-flags": "1"}, true, true},
		{"b3 multi undecided", map[string]string{"x-b3-traceid": tid, "x-b3-spanid": sid}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sampled, known := sampledFlag(func(k string) string { return tc.headers[k] })
			if sampled != tc.sampled || known != tc.known {
				t.Errorf("sampledFlag = %v, %v; want %v, %v", sampled, known, tc.sampled, tc.known)
			}
		})
	}
}

// TestLogHandler: a line logged with a request's context carries its
// request id and trace and span ids; without them, the line is unchanged.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(WithRequestID(context.Background(), "r-1"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "with")
	log.InfoContext(context.Background(), "without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var with, without map[string]any
	if json.Unmarshal([]byte(lines[0]), &with) != nil || json.Unmarshal([]byte(lines[1]), &without) != nil {
		t.Fatalf("not JSON: %q", lines)
	}
	if with["request_id"] != "r-1" || with["trace_id"] != tid.String() || with["span_id"] != sid.String() || with["component"] != "test" {
		t.Errorf("line with a request's context: %v", with)
	}
	for _, k := range []string{"request_id", "trace_id", "span_id"} {
		if _, ok := without[k]; ok {
			t.Errorf("line without a request's context has %s: %v", k, without)
		}
	}
}

// TestRequestID: only short printable tokens are kept.
func TestRequestID(t *testing.T) {
	for in, want := range map[string]string{
		"6f0b2c1e-3d4a":                     "6f0b2c1e-3d4a",
		"":                                  "",
		"a b":                               "",
		"a\nb":                              "",
		"é":                                 "",
		strings.Repeat("x", MaxRequestID):   strings.Repeat("x", MaxRequestID),
		strings.Repeat("x", MaxRequestID+1): "",
	} {
		if got := RequestID(in); got != want {
			t.Errorf("RequestID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNilTracer: tracing off costs nothing and changes nothing.
func TestNilTracer(t *testing.T) {
	var tr *Tracer
	ctx := context.Background()
	got, span := tr.StartCheck(ctx, func(string) string { return "" })
	if got != ctx || span.Recording() {
		t.Error("a nil Tracer started a span")
	}
	span.End("acme", "allow", "", 0)
	if n := testing.AllocsPerRun(100, func() { _, s := tr.StartCheck(ctx, func(string) string { return "" }); s.End("", "", "", 0) }); n != 0 {
		t.Errorf("a nil Tracer allocates %.0f times per Check", n)
	}
}
