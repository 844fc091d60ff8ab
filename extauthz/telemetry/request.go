package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// MaxRequestID bounds the request id kept: it comes from the client side
// of Envoy (Envoy keeps a client's x-request-id unless told otherwise).
const MaxRequestID = 128

// RequestID is v, an x-request-id header, when it is a short printable
// token; "" otherwise, so that nothing a client chose pollutes a log line
// or an audit event.
func RequestID(v string) string {
	if len(v) > MaxRequestID || strings.IndexFunc(v, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		return ""
	}
	return v
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id id (RequestID), which
// LogHandler adds to every line logged with the context.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id ctx carries, "" for none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// HTTP wraps next, one of tenantgate's HTTP endpoints, so that its
// request's context carries the request id (X-Request-Id, RequestID) for
// the logs and, with tracing on, a span named name. The span's parent is
// the span already in the request's context (the Check span, when Check
// runs the sign-in handler inline), else the trace context of the
// request's headers (traceparent, B3: Envoy's router injects its span's).
// The span records the method and the response status; the handler adds
// the tenant and a refusal's reason (Note).
func HTTP(t *Tracer, name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := WithRequestID(r.Context(), RequestID(r.Header.Get("X-Request-Id")))
		if t == nil {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if !trace.SpanContextFromContext(ctx).IsValid() {
			ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		if sc := trace.SpanContextFromContext(ctx); t.parentBased && sc.IsValid() && !sc.IsSampled() {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if span.IsRecording() {
			span.SetAttributes(AttrMethod.String(methodName(r.Method)))
			setOutcome(span, "", "", "", sw.statusCode())
		}
	})
}

// methodName is an HTTP method for an attribute: a standard one, else
// "_OTHER" (OpenTelemetry HTTP conventions), so a client cannot put any
// text it likes into a span.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
