package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler wraps h so that every record logged with a context carries
// that context's request id (request_id, WithRequestID) and trace and span
// ids (trace_id, span_id) when it has them: the log line about a request
// can be found from Envoy's access log (x-request-id) and from a trace.
func LogHandler(h slog.Handler) slog.Handler { return &logHandler{h} }

type logHandler struct{ next slog.Handler }

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	id := RequestIDFrom(ctx)
	sc := trace.SpanContextFromContext(ctx)
	if id == "" && !sc.IsValid() {
		return h.next.Handle(ctx, r)
	}
	r = r.Clone()
	if id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler { return &logHandler{h.next.WithAttrs(as)} }
func (h *logHandler) WithGroup(name string) slog.Handler    { return &logHandler{h.next.WithGroup(name)} }
