package extauthz

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
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
)

var identityHeaders = [...]string{HeaderTenantID, HeaderUserID, HeaderUserEmail, HeaderUserRoles, HeaderAuthMethod}

// Server is the gRPC adapter for envoy.service.auth.v3.Authorization: the only
// code that speaks Envoy's CheckRequest and CheckResponse.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	Authorizer *Authorizer
	Log        *slog.Logger
	// Metrics counts decisions; may be nil.
	Metrics *Metrics
	// Inline, when set, answers sign-in paths (/_auth/…) by running the
	// sign-in handler inside Check (serve --inline-auth). nil keeps them on
	// the decision path like any other request.
	Inline *Inline
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// Metrics counts Check outcomes for /metrics. The zero value is ready.
type Metrics struct {
	Allowed, AllowedAnonymous, Redirected, Denied atomic.Uint64
}

// Check answers one ext_authz request. It never returns a gRPC error for a
// decision: every refusal is a DeniedHttpResponse, so the answer does not
// depend on Envoy's failure_mode_allow. A malformed CheckRequest is a 400.
// With Inline set, a sign-in path is answered by the sign-in handler (always
// as a DeniedHttpResponse, see Inline).
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return denied(Decision{Outcome: Deny, Status: 400, Code: CodeBadRequest}), nil
	}
	if s.Inline != nil && s.Inline.Match(h.GetPath()) {
		return s.Inline.Serve(ctx, req), nil
	}
	headers := h.GetHeaders()
	r := &Request{
		Host:   h.GetHost(),
		Path:   h.GetPath(),
		Method: h.GetMethod(),
		Scheme: h.GetScheme(),
		Header: func(name string) string { return headers[name] },
	}
	d := s.Authorizer.Decide(r)
	s.count(d)
	switch d.Outcome {
	case Allow, AllowAnonymous:
		return allowed(d, headers), nil
	default:
		if d.Outcome == Deny && s.Log != nil && s.Log.Enabled(ctx, slog.LevelDebug) {
			s.Log.Debug("check denied", "code", d.Code, "status", d.Status, "request_id", headers["x-request-id"])
		}
		return denied(d), nil
	}
}

func (s *Server) count(d Decision) {
	m := s.Metrics
	if m == nil {
		return
	}
	switch d.Outcome {
	case Allow:
		m.Allowed.Add(1)
	case AllowAnonymous:
		m.AllowedAnonymous.Add(1)
	case Redirect:
		m.Redirected.Add(1)
	default:
		m.Denied.Add(1)
	}
}

// allowed builds the OK answer: identity headers set with overwrite semantics
// (both the deprecated append=false and OVERWRITE_IF_EXISTS_OR_ADD, since
// Envoy versions disagree on which wins), every client-sent identity header
// that is not set listed for removal, and never a header both set and removed.
func allowed(d Decision, clientHeaders map[string]string) *authv3.CheckResponse {
	set := map[string]string{HeaderTenantID: d.Tenant.ID}
	meta := map[string]*structpb.Value{"tenant_id": structpb.NewStringValue(d.Tenant.ID)}
	if d.Outcome == Allow {
		c := d.Claims
		set[HeaderUserID] = c.Subject
		set[HeaderUserEmail] = c.Email
		set[HeaderUserRoles] = strings.Join(c.Roles, ",")
		set[HeaderAuthMethod] = c.Method
		meta["user_id"] = structpb.NewStringValue(c.Subject)
	}
	ok := &authv3.OkHttpResponse{}
	for _, name := range identityHeaders {
		if v := set[name]; v != "" && !strings.ContainsAny(v, "\r\n\x00") {
			ok.Headers = append(ok.Headers, overwrite(name, v))
			continue
		}
		if _, sent := clientHeaders[name]; sent {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
		}
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: &structpb.Struct{Fields: meta},
	}
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
