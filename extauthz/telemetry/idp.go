package telemetry

import (
	"net/http"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
)

// RoundTripper wraps next, the IdP HTTP client's transport, with a client
// span per request (SpanIdP) carrying its idpclient.Kind (discovery,
// jwks, metadata, token, userinfo: idpclient.KindOf the request's context,
// the same kind the metrics count) and the response status.
// Neither the URL nor a header is recorded: a token request's body and an
// Authorization header are secrets, and an IdP URL may carry a tenant's
// client id. A nil Tracer returns next.
func RoundTripper(t *Tracer, next http.RoundTripper) http.RoundTripper {
	if t == nil {
		return next
	}
	return &idpTransport{t: t, next: next}
}

type idpTransport struct {
	t    *Tracer
	next http.RoundTripper
}

func (it *idpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if sc := trace.SpanContextFromContext(ctx); it.t.parentBased && sc.IsValid() && !sc.IsSampled() {
		return it.next.RoundTrip(req)
	}
	ctx, span := it.t.tracer.Start(ctx, SpanIdP, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	span.SetAttributes(AttrIdPKind.String(string(idpclient.KindOf(ctx))), AttrMethod.String(methodName(req.Method)))
	resp, err := it.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.SetAttributes(AttrOutcome.String("error"))
		span.SetStatus(codes.Error, "idp request failed")
		return nil, err
	}
	span.SetAttributes(AttrStatus.Int(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// pooled connections.
func (it *idpTransport) CloseIdleConnections() {
	if c, ok := it.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
