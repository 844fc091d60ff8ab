package idpclient

import (
	"context"
	"net/http"
	"strings"
)

// Kinds of IdP request (Kind), for spans and metrics.
const (
	KindDiscovery = "discovery"
	KindJWKS      = "jwks"
	KindMetadata  = "metadata"
	KindToken     = "token"
	KindUserInfo  = "userinfo"
)

type kindKey struct{}

// WithKind returns ctx marking the requests made with it as being of kind,
// for requests that Kind cannot tell from the request alone (SAML
// metadata).
func WithKind(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, kindKey{}, kind)
}

// Kind says what an IdP request is for: the kind its context was marked
// with (WithKind), else, as tenantgate's methods make them, OIDC discovery
// (the well-known path), a token request (every POST: the code exchange),
// a userinfo or email-list request (a GET with an Authorization header),
// and otherwise a JWKS fetch (go-oidc's key set).
func Kind(req *http.Request) string {
	if k, ok := req.Context().Value(kindKey{}).(string); ok {
		return k
	}
	switch {
	case strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
		return KindDiscovery
	case req.Method == http.MethodPost:
		return KindToken
	case req.Header.Get("Authorization") != "":
		return KindUserInfo
	}
	return KindJWKS
}
