package test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/otlpsink"
	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestTracingThroughEnvoy runs the shipped envoy-tracing.yaml (Envoy's
// OpenTelemetry tracer on) in front of a tenantgate exporting to the same
// in-process OTLP receiver, and proves that tenantgate's Check span is a
// child of one of Envoy's spans: same trace, its parent an Envoy span. A
// client's traceparent is continued by Envoy, and tenantgate's span hangs
// under Envoy's, not under the client's span: tenantgate took its parent
// from the Check call's gRPC metadata.
func TestTracingThroughEnvoy(t *testing.T) {
	sink := otlpsink.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.GRPCAddr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	_, sinkPort, _ := strings.Cut(sink.GRPCAddr, ":")
	collector := func(cfg string) string {
		if strings.Count(cfg, "port_value: 4317") != 1 {
			t.Fatal("envoy-tracing.yaml: want one `port_value: 4317` (the collector)")
		}
		return strings.Replace(cfg, "port_value: 4317", "port_value: "+sinkPort, 1)
	}
	s := startHarness(t, stack.EnvoyConfig("envoy-tracing.yaml", collector))
	acme := "acme." + baseDomain

	const clientTrace, clientSpan = "3e8a2b5c7d9f01234567890abcdef012", "1122334455667788"
	api := s.send(t, request{host: acme, target: "/api/items", headers: []header{
		{"traceparent", "00-" + clientTrace + "-" + clientSpan + "-01"},
		{"x-request-id", "e2e-trace-req-1"},
	}})
	if api.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API call without a session: want 401, got\n%s", api)
	}
	session := s.signIn(t, acme, alice)
	ok := s.send(t, request{host: acme, target: "/docs/1", headers: []header{cookieHeader(session)}})
	if ok.StatusCode != http.StatusOK {
		t.Fatalf("signed-in request: want 200, got\n%s", ok)
	}

	// Envoy exports in batches (every 5 s by default).
	childOfEnvoy := func(what string, match func(otlpsink.Span) bool) otlpsink.Span {
		t.Helper()
		var check otlpsink.Span
		sink.WaitFor(t, 30*time.Second, what, func(sp otlpsink.Span) bool {
			if sp.Service != "tenantgate" || sp.Name != telemetry.SpanCheck || !match(sp) {
				return false
			}
			for _, e := range sink.Spans() {
				if e.Service == "envoy" && e.TraceID == sp.TraceID && e.SpanID == sp.ParentSpanID {
					check = sp
					t.Logf("%s: parent is Envoy's span %q", what, e.Name)
					return true
				}
			}
			return false
		})
		return check
	}
	denied := childOfEnvoy("denied Check under an Envoy span", func(sp otlpsink.Span) bool {
		return sp.TraceID == clientTrace
	})
	if denied.ParentSpanID == clientSpan {
		t.Errorf("tenantgate's Check span hangs under the client's span, not Envoy's")
	}
	if denied.Attrs["tenantgate.tenant_id"] != "acme" || denied.Attrs["tenantgate.outcome"] != "deny" ||
		denied.Attrs["http.response.status_code"] != strconv.Itoa(http.StatusUnauthorized) {
		t.Errorf("denied Check span attributes: %v", denied.Attrs)
	}
	childOfEnvoy("allowed Check under an Envoy span", func(sp otlpsink.Span) bool {
		return sp.Attrs["tenantgate.outcome"] == "allow" && sp.Attrs["tenantgate.tenant_id"] == "acme"
	})
	// The sign-in pages are routed to tenantgate's HTTP port: Envoy's
	// router passes its span on in the request headers.
	sink.WaitFor(t, 30*time.Second, "sign-in span under an Envoy span", func(sp otlpsink.Span) bool {
		if sp.Service != "tenantgate" || sp.Name != telemetry.SpanSignIn || sp.Attrs["http.request.method"] != "POST" {
			return false
		}
		for _, e := range sink.Spans() {
			if e.Service == "envoy" && e.TraceID == sp.TraceID && e.SpanID == sp.ParentSpanID {
				return true
			}
		}
		return false
	})
	for _, sp := range sink.Spans() {
		for _, secret := range []string{alice.Password, session.Value, alice.Email} {
			if sp.Service == "tenantgate" && strings.Contains(sp.Raw, secret) {
				t.Errorf("span %q holds a secret: %s", sp.Name, sp.Raw)
			}
		}
	}
}
