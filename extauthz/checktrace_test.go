package extauthz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestCheckTracingCost: with tracing on, a Check whose parent (Envoy's
// span, in the gRPC metadata) is not sampled records nothing and allocates
// at most one small slice more than with tracing off (grpc's copy of the
// traceparent value); a sampled one records the Check span. The cached OK
// answer is the same either way, and a recorded span never changes the
// template shared between answers.
func TestCheckTracingCost(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.acme, "member")
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	newServer := func(tr *telemetry.Tracer) *Server {
		return &Server{Tracer: tr, Authorizer: &Authorizer{
			Snapshots:  f.snaps,
			Resolver:   &tenants.Resolver{BaseDomains: []string{"app.test"}},
			Verifier:   session.NewVerifier(),
			CookieName: "__Host-tenantgate",
		}}
	}
	off, on := newServer(nil), newServer(telemetry.New(tp, true))
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "acme.app.test", Path: "/dashboard",
			Headers: map[string]string{"authorization": "Bearer " + tok, "x-request-id": "r-1"}},
	}}}
	incoming := func(flags string) context.Context {
		return metadata.NewIncomingContext(context.Background(),
			metadata.Pairs("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+flags))
	}
	unsampled, sampled := incoming("00"), incoming("01")
	check := func(s *Server, ctx context.Context) *authv3.CheckResponse {
		resp, err := s.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for range 3 { // into the verifier's cache, the template built
		check(off, unsampled)
		check(on, unsampled)
	}
	base := testing.AllocsPerRun(200, func() { check(off, unsampled) })
	traced := testing.AllocsPerRun(200, func() { check(on, unsampled) })
	t.Logf("allocations per cached-session Check: %.0f with tracing off, %.0f on and not sampled", base, traced)
	if traced > base+1 {
		t.Errorf("an unsampled Check allocates %.0f times with tracing on, %.0f with it off; want at most one more", traced, base)
	}
	if n := len(spans.Ended()); n != 0 {
		t.Errorf("%d spans recorded for unsampled Checks", n)
	}

	want := check(on, unsampled)
	tpl := proto.Clone(want)
	got := check(on, sampled)
	if !proto.Equal(got, want) || !proto.Equal(check(on, unsampled), tpl) {
		t.Errorf("a sampled Check answers otherwise, or changed the cached answer:\n%v\nwant\n%v", got, want)
	}
	ended := spans.Ended()
	if len(ended) != 1 || ended[0].Name() != telemetry.SpanCheck || ended[0].Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("sampled Check: spans %v, want one %s under the metadata's parent", ended, telemetry.SpanCheck)
	}
	attrs := map[string]string{}
	for _, kv := range ended[0].Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["tenantgate.tenant_id"] != "acme" || attrs["tenantgate.outcome"] != "allow" || len(attrs) != 2 {
		t.Errorf("Check span attributes %v, want the tenant and the outcome alone", attrs)
	}
}

// BenchmarkCheckTracing is a cached session's Check with tracing off, on
// with Envoy's parent not sampled, and on and sampled (spans recorded,
// none exported): `go test -run - -bench CheckTracing ./extauthz`.
func BenchmarkCheckTracing(b *testing.B) {
	f := newFixture(b)
	tok := f.token(b, f.acme, "member")
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "acme.app.test", Path: "/dashboard",
			Headers: map[string]string{"cookie": "__Host-tenantgate=" + tok, "x-request-id": "r-1", "accept": "text/html"}},
	}}}
	for _, bc := range []struct {
		name   string
		tracer *telemetry.Tracer
		flags  string
	}{
		{"off", nil, "00"},
		{"unsampled", telemetry.New(tp, true), "00"},
		{"sampled", telemetry.New(tp, true), "01"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := &Server{Tracer: bc.tracer, Authorizer: &Authorizer{
				Snapshots:  f.snaps,
				Resolver:   &tenants.Resolver{BaseDomains: []string{"app.test"}},
				Verifier:   session.NewVerifier(),
				CookieName: "__Host-tenantgate",
			}}
			ctx := metadata.NewIncomingContext(context.Background(),
				metadata.Pairs("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+bc.flags))
			for range 3 {
				if _, err := srv.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := srv.Check(ctx, req); resp.GetOkResponse() == nil {
					b.Fatal("not allowed")
				}
			}
		})
	}
}
