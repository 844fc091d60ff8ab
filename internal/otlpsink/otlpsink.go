// Package otlpsink is an in-process OTLP trace receiver for tests: the
// collector's TraceService over gRPC (what Envoy's OpenTelemetry tracer and
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc send) and POST /v1/traces over HTTP
// with protobuf bodies (http/protobuf, the exporters' default), both on
// 127.0.0.1. It keeps every span it receives, flattened with its
// resource's service name.
package otlpsink

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span. Ids are lower-case hex; ParentSpanID is ""
// for a root span.
type Span struct {
	Service      string
	Name         string
	TraceID      string
	SpanID       string
	ParentSpanID string
	// Attrs are the span's attributes, values as text.
	Attrs map[string]string
	// Raw is the whole span as protobuf text, for searching it for
	// anything that must not be there.
	Raw string
}

// Sink is a running receiver.
type Sink struct {
	// GRPCAddr and HTTPAddr are host:port of the two receivers.
	GRPCAddr, HTTPAddr string

	mu    sync.Mutex
	spans []Span
}

// Start starts both receivers; they stop when tb ends.
func Start(tb testing.TB) *Sink {
	tb.Helper()
	s := &Sink{}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gl.Close()
		tb.Fatal(err)
	}
	s.GRPCAddr, s.HTTPAddr = gl.Addr().String(), hl.Addr().String()
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, &traceService{sink: s})
	go gs.Serve(gl)
	hs := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(hl)
	tb.Cleanup(func() {
		gs.Stop()
		hs.Close()
	})
	return s
}

type traceService struct {
	collectortrace.UnimplementedTraceServiceServer
	sink *Sink
}

func (ts *traceService) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	ts.sink.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &collectortrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.add(req)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (s *Sink) add(req *collectortrace.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				got = append(got, Span{
					Service:      service,
					Name:         sp.GetName(),
					TraceID:      hex.EncodeToString(sp.GetTraceId()),
					SpanID:       hex.EncodeToString(sp.GetSpanId()),
					ParentSpanID: hex.EncodeToString(sp.GetParentSpanId()),
					Attrs:        attrs(sp.GetAttributes()),
					Raw:          sp.String(),
				})
			}
		}
	}
	s.mu.Lock()
	s.spans = append(s.spans, got...)
	s.mu.Unlock()
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = valueText(kv.GetValue())
	}
	return m
}

func valueText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

// Spans returns every span received so far, in arrival order.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// WaitFor waits up to timeout for a span that match accepts and returns
// it; it fails tb, listing what arrived, if none does.
func (s *Sink) WaitFor(tb testing.TB, timeout time.Duration, what string, match func(Span) bool) Span {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, sp := range s.Spans() {
			if match(sp) {
				return sp
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, sp := range s.Spans() {
				fmt.Fprintf(&b, "  %s %q trace %s span %s parent %s %v\n", sp.Service, sp.Name, sp.TraceID, sp.SpanID, sp.ParentSpanID, sp.Attrs)
			}
			tb.Fatalf("no span %s within %s; received:\n%s", what, timeout, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
