package idpclient

import (
	"context"
	"net/http"
)

// Kind is what an exchange with an IdP is for, as Options.Observe reports
// it. The methods say it with WithKind on the request's context, or with
// DefaultKind on the client a library keeps for later requests.
type Kind string

// The kinds of IdP exchange.
const (
	KindDiscovery Kind = "discovery" // OIDC discovery document
	KindJWKS      Kind = "jwks"      // OIDC signing keys
	KindMetadata  Kind = "metadata"  // SAML IdP metadata
	KindToken     Kind = "token"     // authorization code exchange
	KindUserInfo  Kind = "userinfo"  // OIDC userinfo, social profile and email APIs
	KindOther     Kind = "other"     // a request nobody named
)

type kindKey struct{}

// WithKind returns ctx saying that requests made with it are of kind k.
func WithKind(ctx context.Context, k Kind) context.Context {
	return context.WithValue(ctx, kindKey{}, k)
}

// KindOf returns the kind ctx says (WithKind), KindOther when none.
func KindOf(ctx context.Context) Kind {
	if k, ok := ctx.Value(kindKey{}).(Kind); ok {
		return k
	}
	return KindOther
}

// DefaultKind returns a copy of c whose requests are of kind k unless
// their context says otherwise: for a library that keeps the client and
// makes later requests with a context of its own (go-oidc fetches an
// issuer's JWKS with the client it was given at discovery, under a
// background context).
func DefaultKind(c *http.Client, k Kind) *http.Client {
	cp := *c
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cp.Transport = &kindTransport{next: next, kind: k}
	return &cp
}

type kindTransport struct {
	next http.RoundTripper
	kind Kind
}

func (t *kindTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.Context().Value(kindKey{}).(Kind); !ok {
		req = req.WithContext(WithKind(req.Context(), t.kind))
	}
	return t.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// pooled connections of the transport underneath.
func (t *kindTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
