package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// Span names (docs/operations.md lists them with their attributes).
const (
	SpanCheck  = "tenantgate.check"
	SpanSignIn = "tenantgate.signin"
	SpanIdP    = "tenantgate.idp"
	// SpanStorePrefix is followed by the write's name: "tenantgate.store
	// revoke".
	SpanStorePrefix = "tenantgate.store "
)

// Attribute keys. Values come from tenantgate's own vocabulary (tenant
// ids, outcome and reason codes, IdP request kinds) or are HTTP statuses.
const (
	AttrTenantID = attribute.Key("tenantgate.tenant_id")
	AttrOutcome  = attribute.Key("tenantgate.outcome")
	AttrReason   = attribute.Key("tenantgate.reason")
	AttrIdPKind  = attribute.Key("tenantgate.idp.kind")
	AttrStatus   = attribute.Key("http.response.status_code")
	AttrMethod   = attribute.Key("http.request.method")
)

// Tracer starts tenantgate's spans. A nil *Tracer is tracing off.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// parentBased is whether the sampler follows the parent's sampled
	// flag (OTEL_TRACES_SAMPLER parentbased_*, the default): a Check whose
	// parent says "not sampled" then needs no span at all, and gets none,
	// so it costs next to nothing.
	parentBased bool
}

// New returns a Tracer whose spans tp records. parentBased says that tp's
// sampler follows a remote parent's sampled flag (OTEL_TRACES_SAMPLER unset
// or parentbased_*); only then does the Tracer skip unsampled requests
// itself.
func New(tp trace.TracerProvider, parentBased bool) *Tracer {
	return &Tracer{
		tracer: tp.Tracer("github.com/tenantgate/tenantgate"),
		// Composite extraction: each later propagator overrides an earlier
		// one that found a context, so traceparent wins over B3 when a
		// request carries both.
		prop:        propagation.NewCompositeTextMapPropagator(b3.New(), propagation.TraceContext{}),
		parentBased: parentBased,
	}
}

// CheckSpan is the span of one Check. The zero value is no span: End does
// nothing.
type CheckSpan struct{ span trace.Span }

// StartCheck starts the span of one ext_authz Check and returns the context
// that carries it. Its parent is the trace context Envoy put in the gRPC
// metadata of the Check call (Envoy's own tracer: the span of its ext_authz
// call), else the one in the request's headers (header returns a request
// header by lower-case name, "" when absent: a client's or an upstream
// proxy's traceparent or x-b3-*, which Envoy forwards in the
// CheckRequest). With a parent-based sampler, a parent that says "not
// sampled" gets no span at all: no allocation beyond reading the gRPC
// metadata's trace header, and ctx is returned as it is.
func (t *Tracer) StartCheck(ctx context.Context, header func(string) string) (context.Context, CheckSpan) {
	if t == nil {
		return ctx, CheckSpan{}
	}
	if t.parentBased {
		sampled, known := grpcSampled(ctx)
		if !known {
			sampled, known = sampledFlag(header)
		}
		if known && !sampled {
			return ctx, CheckSpan{}
		}
	}
	parent := t.prop.Extract(ctx, metadataCarrier(ctx))
	if !trace.SpanContextFromContext(parent).IsValid() {
		parent = t.prop.Extract(ctx, headerCarrier(header))
	}
	ctx, span := t.tracer.Start(parent, SpanCheck, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		span.End()
		return ctx, CheckSpan{}
	}
	return ctx, CheckSpan{span}
}

// End ends the Check span with its outcome: the tenant the request was
// resolved to ("" when none), the outcome (allow, allow_anonymous,
// redirect, deny, signin), the reason code of a refusal and the HTTP status
// Envoy answers with (0 when the request goes upstream).
func (c CheckSpan) End(tenantID, outcome, reason string, status int) {
	if c.span == nil {
		return
	}
	setOutcome(c.span, tenantID, outcome, reason, status)
	c.span.End()
}

// Recording reports whether the span records (a sampled Check).
func (c CheckSpan) Recording() bool { return c.span != nil }

func setOutcome(span trace.Span, tenantID, outcome, reason string, status int) {
	attrs := make([]attribute.KeyValue, 0, 4)
	if tenantID != "" {
		attrs = append(attrs, AttrTenantID.String(tenantID))
	}
	if outcome != "" {
		attrs = append(attrs, AttrOutcome.String(outcome))
	}
	if reason != "" {
		attrs = append(attrs, AttrReason.String(reason))
	}
	if status != 0 {
		attrs = append(attrs, AttrStatus.Int(status))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, reason)
	}
}

// Note records on the span of ctx (the sign-in request's) the tenant it
// was for and the reason code of a refusal; "" leaves either out. It does
// nothing when the span does not record.
func Note(ctx context.Context, tenantID, reason string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if tenantID != "" {
		span.SetAttributes(AttrTenantID.String(tenantID))
	}
	if reason != "" {
		span.SetAttributes(AttrReason.String(reason))
	}
}

// StartStore starts the span of one store write, named
// SpanStorePrefix+op, with the tenant it writes to when known. The returned
// func ends it with the write's error (its message is not recorded: it may
// name an email address).
func (t *Tracer) StartStore(ctx context.Context, op, tenantID string) (context.Context, func(error)) {
	if t == nil {
		return ctx, func(error) {}
	}
	if sc := trace.SpanContextFromContext(ctx); t.parentBased && sc.IsValid() && !sc.IsSampled() {
		return ctx, func(error) {}
	}
	ctx, span := t.tracer.Start(ctx, SpanStorePrefix+op, trace.WithSpanKind(trace.SpanKindClient))
	if tenantID != "" && span.IsRecording() {
		span.SetAttributes(AttrTenantID.String(tenantID))
	}
	return ctx, func(err error) {
		if err != nil {
			span.SetAttributes(AttrOutcome.String("error"))
			span.SetStatus(codes.Error, "store write failed")
		} else {
			span.SetAttributes(AttrOutcome.String("ok"))
		}
		span.End()
	}
}

// metadataCarrier reads the incoming gRPC metadata of ctx (keys are lower
// case there).
func metadataCarrier(ctx context.Context) propagation.TextMapCarrier {
	md, _ := metadata.FromIncomingContext(ctx)
	return propagation.HeaderCarrier(http.Header(mdHeader(md)))
}

// mdHeader is md as an http.Header: canonical keys, for HeaderCarrier's Get.
func mdHeader(md metadata.MD) http.Header {
	h := make(http.Header, len(md))
	for k, v := range md {
		h[http.CanonicalHeaderKey(k)] = v
	}
	return h
}

// headerCarrier reads request headers through get (lower-case names).
type headerCarrier func(string) string

func (c headerCarrier) Get(key string) string { return c(strings.ToLower(key)) }
func (headerCarrier) Set(string, string)      {}

// Keys is used by no extractor of ours (b3 and tracecontext Get by name).
func (headerCarrier) Keys() []string { return nil }
