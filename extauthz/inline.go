package extauthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/tenantgate/tenantgate/extauthz/telemetry"
)

// Inline answers sign-in requests (/_auth/ on a tenant host, P/<id>/_auth/
// for path tenancy) inside Check, by running the same http.Handler that
// serves tenantgate's HTTP port and returning its response, so a mesh needs
// no route to that port (DESIGN.md, "inline" transport).
//
// Every answer, a 200 sign-in page as much as a 303 after sign-in, is a
// DeniedHttpResponse: Envoy sends it to the client as a local reply with the
// handler's status, headers (each Set-Cookie its own header) and body, and
// the request never reaches the upstream. Envoy accepts any non-zero status
// there, 200 included (ext_authz_grpc_impl.cc copies it as given).
//
// A request that may carry a body (anything but GET and HEAD) is served only
// when the body Envoy sent is provably whole: Envoy marked it
// x-envoy-auth-partial-body: false (Envoy drops a client's copy of that
// header), or its Content-Length equals the bytes received. Otherwise the
// answer is 400 and the handler never runs on a partial body. Configure
// Envoy to send bodies on the POST routes under /_auth/ only
// (ExtAuthzPerRoute.check_settings.with_request_body, allow_partial_message
// false, pack_as_bytes true; envoy/envoy-inline.yaml).
//
// The handler sees what it would see behind Envoy's HTTP route: the host,
// the raw path and query, the method, the headers (repeated values kept,
// cookies one per value) without any client-sent identity or forwarding
// header, RemoteAddr from the Check's source address and the body.
// An Inline must not be changed after first use; it is safe for concurrent
// use.
type Inline struct {
	// Handler is the sign-in handler (login.Handler).
	Handler http.Handler
	// PathPrefix is the resolver's path-tenancy prefix ("/org"): P/<id>/_auth/
	// is a sign-in path too. Empty means only /_auth/.
	PathPrefix string
	// MaxBody bounds the request body accepted; a larger one is refused with
	// 413. Zero means DefaultInlineMaxBody.
	MaxBody int
	// MaxResponse bounds the response body the handler may write; a larger
	// one is replaced with a 500. Zero means DefaultInlineMaxResponse.
	MaxResponse int
	// Log receives handler faults (panics, oversized or unsendable
	// responses). nil means no logging.
	Log *slog.Logger
}

// Limits of an Inline whose fields are zero.
const (
	// DefaultInlineMaxBody is the largest sign-in POST (the SAML ACS takes
	// up to 256 KiB; forms are bounded lower by the handler).
	DefaultInlineMaxBody = 256 << 10
	// DefaultInlineMaxResponse is far above any sign-in page.
	DefaultInlineMaxResponse = 256 << 10
)

// Error codes of inline refusals that Decide never gives.
const (
	CodeTooLarge = "request_too_large"
	CodeInternal = "internal"
)

// headerPartialBody is set by Envoy on a CheckRequest that carries a
// buffered body: "false" when the body is whole.
const headerPartialBody = "x-envoy-auth-partial-body"

const authSegment = "/_auth/"

// Match reports whether a Check for this raw path (with query) is a sign-in
// request: it starts with /_auth/, or is P/<segment>/_auth/… for the path
// prefix P. These are the paths envoy/envoy.yaml routes to the HTTP port,
// so inline and routed mode serve the same requests.
func (in *Inline) Match(path string) bool {
	if strings.HasPrefix(path, authSegment) {
		return true
	}
	p := in.PathPrefix
	if p == "" || len(path) <= len(p)+1 || path[len(p)] != '/' || !strings.HasPrefix(path, p) {
		return false
	}
	rest := path[len(p)+1:]
	i := strings.IndexAny(rest, "/?")
	return i > 0 && rest[i] == '/' && strings.HasPrefix(rest[i:], authSegment)
}

// Serve runs the handler for one CheckRequest and returns its response as a
// DeniedHttpResponse. It never returns an OK: nothing under /_auth/ reaches
// the upstream. A request that cannot be converted faithfully is a 400 (413
// when the body is over MaxBody); a handler that panics or writes a response
// that cannot be sent is a 500.
func (in *Inline) Serve(ctx context.Context, req *authv3.CheckRequest) *authv3.CheckResponse {
	r, status, code := in.request(ctx, req)
	if r == nil {
		return denied(Decision{Outcome: Deny, Status: status, Code: code})
	}
	requestID := telemetry.RequestID(r.Header.Get("X-Request-Id"))
	w := &inlineWriter{header: http.Header{}, max: in.maxResponse()}
	if err := serveRecovering(in.Handler, w, r); err != nil {
		in.fault(ctx, "sign-in handler panicked", requestID, err)
		return denied(Decision{Outcome: Deny, Status: 500, Code: CodeInternal})
	}
	resp, err := w.checkResponse()
	if err != nil {
		in.fault(ctx, "sign-in response not sendable", requestID, err)
		return denied(Decision{Outcome: Deny, Status: 500, Code: CodeInternal})
	}
	return resp
}

func (in *Inline) fault(ctx context.Context, msg, requestID string, err error) {
	if in.Log != nil {
		in.Log.ErrorContext(ctx, msg, "err", err, "request_id", requestID)
	}
}

func (in *Inline) maxBody() int {
	if in.MaxBody > 0 {
		return in.MaxBody
	}
	return DefaultInlineMaxBody
}

func (in *Inline) maxResponse() int {
	if in.MaxResponse > 0 {
		return in.MaxResponse
	}
	return DefaultInlineMaxResponse
}

// serveRecovering runs h, turning a panic into an error: a panic in a gRPC
// handler would otherwise end the process.
func serveRecovering(h http.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	h.ServeHTTP(w, r)
	return nil
}

// request converts a CheckRequest into the *http.Request the handler would
// get through Envoy's HTTP route. It returns nil and the refusal's status
// and code when that cannot be done faithfully.
func (in *Inline) request(ctx context.Context, req *authv3.CheckRequest) (*http.Request, int, string) {
	h := req.GetAttributes().GetRequest().GetHttp()
	method, path := h.GetMethod(), h.GetPath()
	if h == nil || !validMethod(method) || !strings.HasPrefix(path, "/") {
		return nil, 400, CodeBadRequest
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, 400, CodeBadRequest
	}
	header, meta := inlineHeader(h)

	body := h.GetRawBody()
	if len(body) == 0 && h.GetBody() != "" {
		body = []byte(h.GetBody())
	}
	if len(body) > in.maxBody() {
		return nil, 413, CodeTooLarge
	}
	if method == http.MethodGet || method == http.MethodHead {
		body = nil // never read; not worth proving whole
	} else if !wholeBody(meta, len(body)) {
		return nil, 400, CodeBadRequest
	}

	r := (&http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          http.NoBody,
		ContentLength: int64(len(body)),
		Host:          h.GetHost(),
		RemoteAddr:    sourceAddr(req.GetAttributes().GetSource()),
		RequestURI:    path,
	}).WithContext(ctx)
	if h.GetProtocol() == "HTTP/2" {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	}
	// The port the browser connected to, which strip_any_host_port took off
	// the Host, as envoy.yaml's /_auth/ routes send it to the HTTP port
	// (login.HeaderForwardedPort; a client's copy was left out above).
	if p := req.GetAttributes().GetDestination().GetAddress().GetSocketAddress().GetPortValue(); p != 0 {
		header.Set("X-Forwarded-Port", strconv.FormatUint(uint64(p), 10))
	}
	// The address Envoy saw the client at, the Check's source, in the
	// header the routed /_auth/ routes bring it in
	// (login.HeaderExternalAddress): the handler's rate limits key on it.
	// The Check's own copy is replaced, because Envoy passes a client's on
	// when it counts the request as internal.
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		header.Set("X-Envoy-External-Address", host)
	} else {
		header.Del("X-Envoy-External-Address")
	}
	if len(body) > 0 {
		r.Body = readCloser{bytes.NewReader(body)}
	}
	return r, 0, ""
}

// bodyMeta is what the request's headers say about its body.
type bodyMeta struct {
	partial, contentLength       string
	hasPartial, hasContentLength bool
}

// wholeBody reports whether n bytes are provably the request's whole body:
// Envoy buffered it and says it is not partial, or the Content-Length says
// exactly n. Without either (no body configured for the route, or a
// chunked or HTTP/2 body Envoy did not send) nothing is proven.
func wholeBody(m bodyMeta, n int) bool {
	if m.hasPartial && m.partial != "false" {
		return false
	}
	if m.hasContentLength {
		cl, err := strconv.ParseUint(m.contentLength, 10, 63)
		return err == nil && cl == uint64(n)
	}
	return m.hasPartial
}

// inlineHeader builds the handler's request headers from the CheckRequest:
// header_map (repeated entries kept apart, each Cookie line its own value)
// when Envoy sent it, else the headers map (repeated headers comma-joined by
// Envoy). A Cookie value is never split on commas: a comma is a cookie value
// byte, and splitting there would turn a sibling subdomain's
// x="a, __Host-tenantgate-csrf=…" into a cookie the browser never let it
// set (the handler reads cookies with cookie.Pairs, ";" only).
// Pseudo-headers, Host, framing headers and every client-sent identity or
// forwarding header are left out, as envoy.yaml's header_mutation filter
// does before the HTTP route.
func inlineHeader(h *authv3.AttributeContext_HttpRequest) (http.Header, bodyMeta) {
	out := http.Header{}
	var meta bodyMeta
	add := func(name, value string) {
		name = strings.ToLower(name)
		switch name {
		case headerPartialBody:
			meta.partial, meta.hasPartial = value, true
			return
		case "content-length":
			meta.contentLength, meta.hasContentLength = value, true
			return
		}
		if strings.HasPrefix(name, ":") || name == "host" || name == "transfer-encoding" || spoofableHeader(name) {
			return
		}
		key := http.CanonicalHeaderKey(name)
		out[key] = append(out[key], value)
	}
	if hm := h.GetHeaderMap(); len(hm.GetHeaders()) > 0 {
		for _, hv := range hm.GetHeaders() {
			add(hv.GetKey(), lineValue(hv))
		}
		return out, meta
	}
	names := make([]string, 0, len(h.GetHeaders()))
	for k := range h.GetHeaders() {
		names = append(names, k)
	}
	slices.Sort(names) // a deterministic order for repeated lower/upper-case keys
	for _, k := range names {
		add(k, h.GetHeaders()[k])
	}
	return out, meta
}

// spoofableHeader reports whether a request header claims an identity or a
// host only tenantgate or Envoy may assert: the handler never sees a
// client's copy (reservedHeader, envoy.yaml's header_mutation list).
func spoofableHeader(name string) bool {
	switch name {
	case "x-forwarded-host", "x-original-host", "forwarded", "x-forwarded-port":
		return true
	}
	return reservedHeader(name)
}

// sourceAddr is the downstream peer Envoy saw (its TCP peer, even with
// xff_num_trusted_hops set), as host:port.
func sourceAddr(p *authv3.AttributeContext_Peer) string {
	sa := p.GetAddress().GetSocketAddress()
	if sa.GetAddress() == "" {
		return ""
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
}

// validMethod reports whether m is an HTTP method token (RFC 9110 §9.1).
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTokenByte(m[i]) {
			return false
		}
	}
	return true
}

// isTokenByte reports whether b is a tchar (RFC 9110 §5.6.2).
func isTokenByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// inlineWriter records the handler's response, keeping at most max body
// bytes.
type inlineWriter struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	max      int
	overflow bool
}

func (w *inlineWriter) Header() http.Header { return w.header }

func (w *inlineWriter) WriteHeader(status int) {
	if w.status != 0 || status < 200 {
		return // the first final status wins; 1xx are not relayed
	}
	w.status = status
}

func (w *inlineWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len()+len(p) > w.max {
		w.overflow = true
		return 0, errResponseTooLarge
	}
	return w.body.Write(p)
}

var errResponseTooLarge = errors.New("inline response over its size limit")

// responseHopHeaders are response headers of the connection, not of the
// response; Envoy frames the local reply itself.
var responseHopHeaders = map[string]bool{
	"connection": true, "content-length": true, "keep-alive": true, "proxy-connection": true,
	"transfer-encoding": true, "te": true, "trailer": true, "upgrade": true,
}

// checkResponse is the recorded response as a DeniedHttpResponse: each
// header value its own entry with overwrite semantics (Envoy's denied path
// first removes its own value of every name given, then adds each entry, so
// several Set-Cookie entries all reach the client).
func (w *inlineWriter) checkResponse() (*authv3.CheckResponse, error) {
	if w.overflow {
		return nil, errResponseTooLarge
	}
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 599 {
		return nil, fmt.Errorf("status %d cannot be sent", status)
	}
	if !utf8.Valid(w.body.Bytes()) {
		return nil, errors.New("body is not UTF-8")
	}
	names := make([]string, 0, len(w.header))
	for k := range w.header {
		names = append(names, k)
	}
	slices.Sort(names)
	resp := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(status)}, Body: w.body.String()}
	for _, k := range names {
		name := strings.ToLower(k)
		if responseHopHeaders[name] {
			continue
		}
		if !validHeaderName(name) {
			return nil, fmt.Errorf("header name %q cannot be sent", k)
		}
		for _, v := range w.header[k] {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("value of header %s cannot be sent", name)
			}
			resp.Headers = append(resp.Headers, overwrite(name, v))
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.PermissionDenied), Message: strconv.Itoa(status) + " inline"},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: resp},
	}, nil
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenByte(name[i]) {
			return false
		}
	}
	return true
}
