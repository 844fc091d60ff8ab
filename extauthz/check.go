package extauthz

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tenantgate/tenantgate/extauthz/cookie"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/tenants"
)

// Identity headers tenantgate sets on allowed requests (CONTRACT.md). The
// upstream may trust them only because every one of them is either set with
// overwrite semantics or removed.
const (
	HeaderTenantID   = "x-tenant-id"
	HeaderUserID     = "x-user-id"
	HeaderUserEmail  = "x-user-email"
	HeaderUserRoles  = "x-user-roles"
	HeaderAuthMethod = "x-auth-method"
	// HeaderAuthMFA says whether the session's sign-in checked a second
	// factor: "true" or "false" (session.Claims.MFA), set with the other
	// identity headers; on an anonymous request a client's copy is
	// removed like theirs (CONTRACT.md extension, README reference).
	HeaderAuthMFA = "x-auth-mfa"
)

var identityHeaders = [...]string{HeaderTenantID, HeaderUserID, HeaderUserEmail, HeaderUserRoles, HeaderAuthMethod, HeaderAuthMFA}

// reservedHeader reports whether a request header (lower-case name) claims
// something only tenantgate may assert: the identity headers, x-auth-mfa,
// and everything in the x-user- and x-tenant- namespaces. A client's copy
// never reaches the upstream (removed, or overwritten by tenantgate's value)
// nor the sign-in pages.
func reservedHeader(name string) bool {
	switch name {
	case HeaderAuthMethod, HeaderAuthMFA:
		return true
	}
	return strings.HasPrefix(name, "x-user-") || strings.HasPrefix(name, "x-tenant-")
}

// Server is the gRPC adapter for envoy.service.auth.v3.Authorization: the only
// code that speaks Envoy's CheckRequest and CheckResponse.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	Authorizer *Authorizer
	Log        *slog.Logger
	// Observer, when set, is told the outcome and duration of every
	// decision (cmd/tenantgate's Prometheus metrics); nil observes nothing.
	Observer CheckObserver
	// Inline, when set, answers sign-in paths (/_auth/…) by running the
	// sign-in handler inside Check (serve --inline-auth). nil keeps them on
	// the decision path like any other request.
	Inline *Inline
	// Tracer starts the Check span (checktrace.go); nil: tracing off.
	Tracer *telemetry.Tracer
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// CheckObserver learns what every Check decided. ObserveCheck runs on the
// hot path, once per decision, after the decision and before the answer is
// built: it must not block and should not allocate. code is the
// Decision's Code ("" for an allow), tenant the resolved tenant's id (""
// when none was resolved), took the time from the start of Check.
type CheckObserver interface {
	ObserveCheck(outcome Outcome, code, tenant string, took time.Duration)
}

// Check answers one ext_authz request. It never returns a gRPC error for a
// decision: every refusal is a DeniedHttpResponse, so the answer does not
// depend on Envoy's failure_mode_allow. A malformed CheckRequest is a 400.
// With Inline set, a sign-in path is answered by the sign-in handler (always
// as a DeniedHttpResponse, see Inline).
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	resp, ok := s.check(ctx, req)
	if ok.tpl != nil {
		return ok.message(), nil
	}
	return resp, nil
}

// check is Check with an allowed answer left as an okAnswer (ok.tpl set,
// resp nil), which checkEncoded encodes without building the message.
func (s *Server) check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, ok okAnswer) {
	var start time.Time
	if s.Observer != nil {
		start = time.Now()
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		d := Decision{Outcome: Deny, Status: 400, Code: CodeBadRequest}
		s.observe(d, start)
		return denied(d), okAnswer{}
	}
	headers := headersOf(h)
	r := &Request{
		Host:   h.GetHost(),
		Path:   h.GetPath(),
		Method: h.GetMethod(),
		Scheme: h.GetScheme(),
		Header: headers.get,
	}
	ctx, span := s.Tracer.StartCheck(ctx, r.Header)
	if s.Inline != nil && s.Inline.Match(h.GetPath()) {
		resp := s.Inline.Serve(ctx, req)
		endInlineSpan(span, resp)
		return resp, okAnswer{}
	}
	d := s.Authorizer.Decide(r)
	s.observe(d, start)
	endCheckSpan(span, d)
	switch d.Outcome {
	case Allow, AllowAnonymous:
		return nil, allowed(s.okTemplate(d), d.Tenant, headers, s.Authorizer.CookieName)
	default:
		if d.Outcome == Deny && s.Log != nil && s.Log.Enabled(ctx, slog.LevelDebug) {
			s.Log.DebugContext(ctx, "check denied", "code", d.Code, "status", d.Status, "request_id", telemetry.RequestID(headers.get("x-request-id")))
		}
		return denied(d), okAnswer{}
	}
}

// observe tells the Observer, if any, about d, decided since start.
func (s *Server) observe(d Decision, start time.Time) {
	if s.Observer == nil {
		return
	}
	tenant := ""
	if d.Tenant != nil {
		tenant = d.Tenant.ID
	}
	s.Observer.ObserveCheck(d.Outcome, d.Code, tenant, time.Since(start))
}

// okAnswer is an OK answer: tpl, the parts that depend only on the
// decision (okTemplate): identity headers set with overwrite semantics
// (both the deprecated append=false and OVERWRITE_IF_EXISTS_OR_ADD, since
// Envoy versions disagree on which wins) and the dynamic metadata; and
// what this request adds (allowed). As a message it shares tpl's parts
// with every other answer built from tpl: nothing may modify them (the
// Headers slice has no spare capacity, so an append copies).
type okAnswer struct {
	tpl *okTemplate
	// added are headers set after tpl's (a rewritten Cookie); removed are
	// the headers_to_remove.
	added   []*corev3.HeaderValueOption
	removed []string
}

// allowed is the OK answer from tpl to this request: every client-sent
// reserved header (reservedHeader) that tpl does not set listed for
// removal, whichever form the headers came in; tenantgate's cookies taken
// out of the Cookie header of tenant t (upstreamCookie); and never a
// header both set and removed.
func allowed(tpl *okTemplate, t *tenants.Tenant, client checkHeaders, sessionCookie string) okAnswer {
	a := okAnswer{tpl: tpl}
	for name := range client.names {
		if reservedHeader(name) && !slices.Contains(tpl.set, name) && !slices.Contains(a.removed, name) {
			a.removed = append(a.removed, name)
		}
	}
	slices.Sort(a.removed) // map order is random; the answer is not
	if v, changed := upstreamCookie(t, client.get("cookie"), client.joinedByComma(), sessionCookie); changed {
		if v == "" {
			a.removed = append(a.removed, "cookie")
		} else {
			a.added = []*corev3.HeaderValueOption{overwrite("cookie", v)}
		}
	}
	return a
}

// message is a as the CheckResponse Check returns.
func (a okAnswer) message() *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{Headers: a.tpl.headers, HeadersToRemove: a.removed}
	if len(a.added) > 0 {
		ok.Headers = append(slices.Clip(ok.Headers), a.added...)
	}
	return &authv3.CheckResponse{
		Status:          a.tpl.status,
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: a.tpl.meta,
	}
}

// okTemplate is the part of an OK answer that depends only on the decision:
// its tenant, and for an Allow the session's claims as the snapshot the
// decision was made on has them (roles come from the snapshot). It is
// immutable once built and shared between answers.
type okTemplate struct {
	// cur and version name the snapshot it was built from: a template is
	// used only for decisions on that same snapshot, so a change of roles,
	// membership or tenant takes effect on the next Check.
	cur     *tenants.Current
	version uint64
	// headers are the identity headers set (no spare capacity); set are
	// their names.
	headers []*corev3.HeaderValueOption
	set     []string
	status  *rpcstatus.Status
	meta    *structpb.Struct
	// wireHead and wireOK are the encoded status and metadata, and the
	// encoded OkHttpResponse with the headers; wire is the whole answer
	// when the call adds nothing (wire.go).
	wireHead, wireOK, wire []byte
}

// okTemplate returns the template of d's OK answer. For an Allow whose
// token is in the verifier's cache, it is built once per token and
// snapshot and kept with the token (session.Memo); otherwise it is built
// for this call.
func (s *Server) okTemplate(d Decision) *okTemplate {
	cur := s.Authorizer.Snapshots
	cacheable := d.Outcome == Allow && d.memo != nil && d.snap != nil && d.snap.Version != 0
	if cacheable {
		if tpl, ok := d.memo.Load().(*okTemplate); ok && tpl.cur == cur && tpl.version == d.snap.Version {
			return tpl
		}
	}
	tpl := buildOKTemplate(d)
	encodeTemplate(tpl)
	if cacheable {
		tpl.cur, tpl.version = cur, d.snap.Version
		d.memo.Store(tpl)
	}
	return tpl
}

// buildOKTemplate builds the identity headers (only those with a value a
// header can carry) and the metadata of d's OK answer.
func buildOKTemplate(d Decision) *okTemplate {
	set := map[string]string{HeaderTenantID: d.Tenant.ID}
	meta := map[string]*structpb.Value{"tenant_id": structpb.NewStringValue(d.Tenant.ID)}
	if d.Outcome == Allow {
		c := d.Claims
		set[HeaderUserID] = c.Subject
		set[HeaderUserEmail] = c.Email
		set[HeaderUserRoles] = strings.Join(c.Roles, ",")
		set[HeaderAuthMethod] = c.Method
		set[HeaderAuthMFA] = strconv.FormatBool(c.MFA())
		meta["user_id"] = structpb.NewStringValue(c.Subject)
	}
	tpl := &okTemplate{
		status: &rpcstatus.Status{Code: int32(codes.OK)},
		meta:   &structpb.Struct{Fields: meta},
	}
	for _, name := range identityHeaders {
		if v := set[name]; v != "" && !strings.ContainsAny(v, "\r\n\x00") {
			tpl.headers = append(tpl.headers, overwrite(name, v))
			tpl.set = append(tpl.set, name)
		}
	}
	tpl.headers = slices.Clip(tpl.headers)
	return tpl
}

// upstreamCookie is the Cookie header the upstream receives for tenant t:
// the client's header less every cookie of tenantgate's (cookie.Owned), so
// no app log or app bug can leak a session; with t.PassSessionCookie the
// tenant's own session cookie (sessionCookie, or its path-tenancy name)
// stays. The app's cookies pass byte for byte (cookie.Without). When
// joined, header may be several Cookie lines Envoy joined with ",", and a
// name of tenantgate's after a comma is taken out too
// (cookie.WithoutJoined): the upstream receives every line. changed is
// false when there is nothing to take out: the header is then left exactly
// as Envoy has it. "" with changed means send no Cookie header. A result
// that a HeaderValue cannot carry (not UTF-8; Envoy ignores raw_value in
// an OK answer) is "": losing the app's cookies on such a request is
// better than handing it a session.
func upstreamCookie(t *tenants.Tenant, header string, joined bool, sessionCookie string) (string, bool) {
	if header == "" {
		return "", false
	}
	keep := func(string) bool { return false }
	if t.PassSessionCookie {
		pathCookie := session.PathCookieName(sessionCookie, t.ID)
		keep = func(name string) bool { return name == sessionCookie || name == pathCookie }
	}
	without := cookie.Without
	if joined {
		without = cookie.WithoutJoined
	}
	v, changed := without(header, func(name string) bool { return cookie.Owned(name) && !keep(name) })
	if changed && (!utf8.ValidString(v) || strings.ContainsAny(v, "\r\n\x00")) {
		return "", true
	}
	return v, changed
}

// checkHeaders is a CheckRequest's request headers in whichever form Envoy
// sent them: the headers map, where Envoy joins a repeated header's lines
// with ",", or header_map (encode_raw_headers), one entry per line with the
// value in raw_value. A Check reading only the map would see no header at
// all behind encode_raw_headers: every session refused, and no client-sent
// identity header found to remove.
type checkHeaders struct {
	joined map[string]string
	lines  []*corev3.HeaderValue
}

func headersOf(h *authv3.AttributeContext_HttpRequest) checkHeaders {
	return checkHeaders{joined: h.GetHeaders(), lines: h.GetHeaderMap().GetHeaders()}
}

// get returns the request header called name (lower case), "" when absent.
// From header_map, a repeated header's lines are joined as Envoy's map
// joins them, with ",", except Cookie lines, joined with "; " as one Cookie
// header carries them (RFC 6265 §5.4): a Cookie line never continues a pair
// of the line before it. Envoy sends one form or the other; header_map wins
// if it has any entry.
func (c checkHeaders) get(name string) string {
	if len(c.lines) == 0 {
		return c.joined[name]
	}
	sep := ","
	if name == "cookie" {
		sep = "; "
	}
	var b strings.Builder
	n := 0
	for _, hv := range c.lines {
		if !strings.EqualFold(hv.GetKey(), name) {
			continue
		}
		if n > 0 {
			b.WriteString(sep)
		}
		b.WriteString(lineValue(hv))
		n++
	}
	return b.String()
}

// joinedByComma reports whether the headers came in the headers map, where
// Envoy joins a repeated header's lines with "," (Cookie lines included).
func (c checkHeaders) joinedByComma() bool { return len(c.lines) == 0 }

// names yields the lower-case name of every header in both forms, once per
// line: removal must not depend on which form Envoy chose.
func (c checkHeaders) names(yield func(string) bool) {
	for k := range c.joined {
		if !yield(strings.ToLower(k)) {
			return
		}
	}
	for _, hv := range c.lines {
		if !yield(strings.ToLower(hv.GetKey())) {
			return
		}
	}
}

// lineValue is a header_map entry's value: raw_value when Envoy set it
// (encode_raw_headers), else value.
func lineValue(hv *corev3.HeaderValue) string {
	if raw := hv.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return hv.GetValue()
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		Append:       wrapperspb.Bool(false),
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// denyBody is the JSON body of a refusal. Codes are fixed strings, so nothing
// from the request is ever echoed.
func denyBody(code string) string {
	return `{"error":"` + code + `"}`
}

// denied builds the refusal Envoy sends to the client as a local reply.
func denied(d Decision) *authv3.CheckResponse {
	resp := &authv3.DeniedHttpResponse{
		Headers: []*corev3.HeaderValueOption{overwrite("cache-control", "no-store")},
	}
	grpcCode := codes.PermissionDenied
	switch d.Outcome {
	case Redirect:
		resp.Status = &typev3.HttpStatus{Code: typev3.StatusCode_Found}
		resp.Headers = append(resp.Headers, overwrite("location", d.Location))
		grpcCode = codes.Unauthenticated
	default:
		resp.Status = &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)}
		resp.Headers = append(resp.Headers, overwrite("content-type", "application/json"))
		resp.Body = denyBody(d.Code)
		if d.Status == 401 {
			grpcCode = codes.Unauthenticated
			realm := ""
			if d.Tenant != nil {
				realm = d.Tenant.ID
			}
			resp.Headers = append(resp.Headers, overwrite("www-authenticate", `Bearer realm="`+realm+`"`))
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(grpcCode), Message: strconv.Itoa(int(resp.Status.Code)) + " " + d.Code},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: resp},
	}
}
