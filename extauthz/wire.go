package extauthz

import (
	"context"
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The OK answer on the wire. Encoding a CheckResponse costs a cached
// session more than deciding it (the identity headers and the metadata map
// go through protobuf's reflection on every call). What only the decision
// decides is encoded once per okTemplate (wireHead, wireOK); a call encodes
// only its own part, the headers it removes and a rewritten Cookie, and
// appends it: a message's repeated fields encoded in two pieces and
// concatenated decode as one list (protobuf encoding, "Concatenated
// messages"). allowed builds the same answer as a message, which is what
// Check returns; TestWireAnswerIsTheMessage holds the two equal.

// okResponseField is CheckResponse's ok_response field number.
var okResponseField = (&authv3.CheckResponse{}).ProtoReflect().Descriptor().
	Fields().ByName("ok_response").Number()

// encodeTemplate sets tpl's pre-encoded parts: the CheckResponse's status
// and metadata, and the OkHttpResponse's identity headers.
func encodeTemplate(tpl *okTemplate) {
	head, err := proto.Marshal(&authv3.CheckResponse{Status: tpl.status, DynamicMetadata: tpl.meta})
	if err != nil {
		panic(fmt.Sprintf("extauthz: encode an OK answer: %v", err)) // values built here, always valid
	}
	ok, err := proto.Marshal(&authv3.OkHttpResponse{Headers: tpl.headers})
	if err != nil {
		panic(fmt.Sprintf("extauthz: encode an OK answer: %v", err))
	}
	tpl.wireHead, tpl.wireOK = head, ok
	tpl.wire = appendOK(nil, tpl, nil)
}

// appendOK appends the encoding of the OK answer made of tpl and extra
// (the call's own part of the OkHttpResponse, already encoded) to b.
func appendOK(b []byte, tpl *okTemplate, extra []byte) []byte {
	b = append(b, tpl.wireHead...)
	b = protowire.AppendTag(b, okResponseField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(tpl.wireOK)+len(extra)))
	b = append(b, tpl.wireOK...)
	return append(b, extra...)
}

// OkHttpResponse's field numbers of the parts a call adds.
var (
	okFields        = (&authv3.OkHttpResponse{}).ProtoReflect().Descriptor().Fields()
	headersField    = okFields.ByName("headers").Number()
	headersToRemove = okFields.ByName("headers_to_remove").Number()
)

// encode returns a's encoding: tpl's bytes as they are when the call added
// nothing, else tpl's bytes with the call's part, written as proto.Marshal
// would write the OkHttpResponse holding only it (a repeated field's
// entries in order; field order within a message is free).
func (a okAnswer) encode() ([]byte, error) {
	if len(a.added) == 0 && len(a.removed) == 0 {
		return a.tpl.wire, nil
	}
	var extra []byte
	for _, h := range a.added { // a rewritten Cookie: rare, so marshalled
		hb, err := proto.Marshal(h)
		if err != nil {
			return nil, err
		}
		extra = protowire.AppendTag(extra, headersField, protowire.BytesType)
		extra = protowire.AppendBytes(extra, hb)
	}
	for _, name := range a.removed {
		extra = protowire.AppendTag(extra, headersToRemove, protowire.BytesType)
		extra = protowire.AppendString(extra, name)
	}
	return appendOK(make([]byte, 0, len(a.tpl.wire)+len(extra)+4), a.tpl, extra), nil
}

// encoded is an answer already encoded: Codec sends its bytes as they are.
type encoded []byte

// checkEncoded is Check for the gRPC service: an allowed answer leaves
// encoded, every other as the message.
func (s *Server) checkEncoded(ctx context.Context, req *authv3.CheckRequest) (any, error) {
	resp, ok := s.check(ctx, req)
	if ok.tpl == nil {
		return resp, nil
	}
	b, err := ok.encode()
	if err != nil {
		return nil, err
	}
	return encoded(b), nil
}

// Register registers s as Envoy's Authorization service on gs, answering
// allowed requests with their pre-encoded bytes: gs must have been made
// with the ServerCodec option, or those answers fail to marshal.
func Register(gs *grpc.Server, s *Server) {
	gs.RegisterService(&authorizationService, s)
}

// ServerCodec is the grpc.ServerOption that Register needs: protobuf, as
// gRPC's own codec, except that an encoded answer is sent as it is.
func ServerCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{encoding.GetCodecV2("proto")})
}

type codec struct{ encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil // shared bytes: SliceBuffer never frees or writes them
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal decodes a CheckRequest with decodeCheckRequest (decode.go) and
// every other message as gRPC's protobuf codec does.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodeCheckRequest(buf.ReadOnlyData(), req)
}

// checker is what authorizationService's handler calls.
type checker interface {
	checkEncoded(context.Context, *authv3.CheckRequest) (any, error)
}

// authorizationService is envoy.service.auth.v3.Authorization with Check
// answered by checkEncoded (the generated descriptor's handler would return
// only a message).
var authorizationService = grpc.ServiceDesc{
	ServiceName: "envoy.service.auth.v3.Authorization",
	HandlerType: (*checker)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Check",
		Handler:    checkHandler,
	}},
	Metadata: "envoy/service/auth/v3/external_auth.proto",
}

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	req := new(authv3.CheckRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(checker).checkEncoded(ctx, req)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return srv.(checker).checkEncoded(ctx, req.(*authv3.CheckRequest))
	})
}

// AnswerBytes is Check's answer to req encoded as the gRPC service sends
// it: for benchmarks, which measure a Check with its encoding.
func (s *Server) AnswerBytes(ctx context.Context, req *authv3.CheckRequest) ([]byte, error) {
	v, err := s.checkEncoded(ctx, req)
	if err != nil {
		return nil, err
	}
	if b, ok := v.(encoded); ok {
		return b, nil
	}
	return proto.Marshal(v.(*authv3.CheckResponse))
}
