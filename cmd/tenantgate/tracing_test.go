package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/metadata"

	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/otlpsink"
)

const tracedTenant = `
tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods: [{type: password}]
    roles:
      member: {permissions: ["docs:read"]}
`

// Trace contexts the test sends: W3C in the gRPC metadata (Envoy's own
// tracer), W3C and B3 in the request's headers, and one not sampled.
const (
	mdTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	mdParent      = "00f067aa0ba902b7"
	headerTrace   = "0af7651916cd43dd8448eb211c80319c"
	headerParent  = "b7ad6b7169203331"
	b3Trace       = "80f198ee56343ba864fe8b2a57d3eff7"
	b3Parent      = "e457b5a2e4d86bd1"
	unsampled     = "11111111111111111111111111111111"
	signInTrace   = "5b8aa5a2d2c872e8321cf37308d69df2"
	signInParent  = "051581bf3cb55c13"
	signInReqID   = "req-signin-7d1f"
	checkReqID    = "req-check-93ab"
	alicePassword = "tracing-test-password-1"
)

// TestTracing runs serve with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an
// in-process OTLP receiver, over each protocol, and proves: the Check span
// continues the trace of the gRPC metadata, else of the request's
// traceparent or B3 headers; a parent that is not sampled gets no span;
// sign-in has its span with the store writes under it; spans carry the
// tenant and the outcome and never the password, the session token, the
// email address or a cookie; log lines about a request carry its request
// id and trace id.
func TestTracing(t *testing.T) {
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) { testTracing(t, protocol) })
	}
}

func testTracing(t *testing.T, protocol string) {
	sink := otlpsink.Start(t)
	endpoint := "http://" + sink.HTTPAddr
	if protocol == "grpc" {
		endpoint = "http://" + sink.GRPCAddr
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	ts := startServer(t, true, "--log-level", "debug")
	c := ts.cli(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("acme.yaml", tracedTenant))
	c.mustRun(alicePassword+"\n", "users", "add", "--tenant", "acme", "--email", "alice@acme.test", "--role", "member", "--password-stdin")

	check := func(ctx context.Context, headers map[string]string) *authv3.CheckResponse {
		t.Helper()
		resp, err := ts.check.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Host: "acme.app.test", Path: "/docs", Headers: headers,
			}},
		}})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return resp
	}
	traceparent := func(trace, parent, flags string) string { return "00-" + trace + "-" + parent + "-" + flags }
	api := map[string]string{"accept": "application/json", "x-request-id": checkReqID}

	// The metadata's context wins over the headers' (Envoy's span of its
	// ext_authz call is the closer parent).
	withMD := metadata.AppendToOutgoingContext(context.Background(), "traceparent", traceparent(mdTrace, mdParent, "01"))
	check(withMD, with(api, "traceparent", traceparent(headerTrace, "aaaaaaaaaaaaaaaa", "01")))
	check(context.Background(), with(api, "traceparent", traceparent(headerTrace, headerParent, "01")))
	check(context.Background(), with(with(with(api, "x-b3-traceid", b3Trace), "x-b3-spanid", b3Parent), "x-b3-sampled", "1"))
	notSampled := metadata.AppendToOutgoingContext(context.Background(), "traceparent", traceparent(unsampled, mdParent, "00"))
	check(notSampled, api)

	for _, want := range []struct{ trace, parent string }{{mdTrace, mdParent}, {headerTrace, headerParent}, {b3Trace, b3Parent}} {
		sp := sink.WaitFor(t, 10*time.Second, "Check in trace "+want.trace, func(s otlpsink.Span) bool {
			return s.Name == telemetry.SpanCheck && s.TraceID == want.trace
		})
		if sp.ParentSpanID != want.parent || sp.Service != "tenantgate" {
			t.Errorf("Check span of trace %s: parent %s, service %q; want parent %s, service tenantgate", want.trace, sp.ParentSpanID, sp.Service, want.parent)
		}
		wantAttrs := map[string]string{"tenantgate.tenant_id": "acme", "tenantgate.outcome": "deny", "tenantgate.reason": "unauthenticated", "http.response.status_code": "401"}
		for k, v := range wantAttrs {
			if sp.Attrs[k] != v {
				t.Errorf("Check span attribute %s = %q, want %q (all: %v)", k, sp.Attrs[k], v, sp.Attrs)
			}
		}
	}

	// Sign in with Envoy's headers: the sign-in span continues the trace,
	// the audit write is its child.
	hdr := http.Header{"X-Request-Id": {signInReqID}, "Traceparent": {traceparent(signInTrace, signInParent, "01")}}
	token := signIn(t, ts, "acme.app.test", "alice@acme.test", alicePassword, hdr)
	var post otlpsink.Span
	sink.WaitFor(t, 10*time.Second, "sign-in POST", func(s otlpsink.Span) bool {
		if s.Name == telemetry.SpanSignIn && s.TraceID == signInTrace && s.Attrs["http.request.method"] == "POST" {
			post = s
			return true
		}
		return false
	})
	if post.ParentSpanID != signInParent || post.Attrs["tenantgate.tenant_id"] != "acme" || post.Attrs["http.response.status_code"] != "303" {
		t.Errorf("sign-in span: parent %s, attributes %v; want parent %s, tenant acme, status 303", post.ParentSpanID, post.Attrs, signInParent)
	}
	sink.WaitFor(t, 10*time.Second, "audit write under the sign-in", func(s otlpsink.Span) bool {
		return s.Name == telemetry.SpanStorePrefix+"append_audit" && s.TraceID == signInTrace && s.ParentSpanID == post.SpanID &&
			s.Attrs["tenantgate.tenant_id"] == "acme" && s.Attrs["tenantgate.outcome"] == "ok"
	})

	// An allowed Check with the session, as the last span to wait for: by
	// then the unsampled Check would have been exported too.
	check(withMD, map[string]string{"cookie": "tenantgate=" + token, "authorization": "Bearer " + token})
	sink.WaitFor(t, 10*time.Second, "allowed Check", func(s otlpsink.Span) bool {
		return s.Name == telemetry.SpanCheck && s.Attrs["tenantgate.outcome"] == "allow" && s.Attrs["tenantgate.tenant_id"] == "acme"
	})
	for _, s := range sink.Spans() {
		if s.TraceID == unsampled {
			t.Errorf("span %q of the unsampled trace was exported", s.Name)
		}
		for _, secret := range []string{alicePassword, token, "alice@acme.test", "tenantgate="} {
			if strings.Contains(s.Raw, secret) {
				t.Errorf("span %q holds %q: %s", s.Name, secret, s.Raw)
			}
		}
	}

	// Log lines about a request carry its ids.
	logged := func(msg, requestID, traceID string) {
		t.Helper()
		sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
		for sc.Scan() {
			var l struct{ Msg, Request_ID, Trace_ID string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg && l.Request_ID == requestID && l.Trace_ID == traceID {
				return
			}
		}
		t.Errorf("no %q line with request_id %s and trace_id %s in:\n%s", msg, requestID, traceID, ts.logs)
	}
	logged("signed in", signInReqID, signInTrace)
	logged("check denied", checkReqID, headerTrace)
}

// with returns a copy of m with k set to v.
func with(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// TestTracingFlag: tracing follows --tracing when it is given, else the
// presence of an OTLP endpoint in the environment.
func TestTracingFlag(t *testing.T) {
	cases := []struct {
		name     string
		set, on  bool
		endpoint string
		want     bool
	}{
		{"off by default", false, false, "", false},
		{"endpoint in the environment", false, false, "http://127.0.0.1:4318", true},
		{"--tracing", true, true, "", true},
		{"--tracing=false beats the environment", true, false, "http://127.0.0.1:4318", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			f := tracingFlags{on: tc.on, set: tc.set}
			if got := f.enabled(); got != tc.want {
				t.Errorf("enabled() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTracingInline: with --inline-auth a sign-in page is answered inside
// Check, and its sign-in span is the Check span's child.
func TestTracingInline(t *testing.T) {
	sink := otlpsink.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.HTTPAddr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	ts := startServer(t, true, "--inline-auth")
	c := ts.cli(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("acme.yaml", tracedTenant))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+mdTrace+"-"+mdParent+"-01")
	resp, err := ts.check.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: "acme.app.test", Path: "/_auth/login", Headers: map[string]string{"accept": "text/html", "x-request-id": "inline-1"},
		}},
	}})
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 200 {
		t.Fatalf("inline sign-in page: %v, %v", resp, err)
	}
	check := sink.WaitFor(t, 10*time.Second, "inline Check", func(s otlpsink.Span) bool {
		return s.Name == telemetry.SpanCheck && s.TraceID == mdTrace && s.ParentSpanID == mdParent && s.Attrs["tenantgate.outcome"] == "signin"
	})
	sink.WaitFor(t, 10*time.Second, "sign-in span under the inline Check", func(s otlpsink.Span) bool {
		return s.Name == telemetry.SpanSignIn && s.ParentSpanID == check.SpanID && s.Attrs["tenantgate.tenant_id"] == "acme" && s.Attrs["http.response.status_code"] == "200"
	})
}
