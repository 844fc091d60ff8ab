package extauthz

import (
	"bytes"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// envoyRequest is a CheckRequest as Envoy sends one, with every field of the
// hand-decoded messages set and some of each delegated one.
func envoyRequest() *authv3.CheckRequest {
	sock := func(port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	md, _ := structpb.NewStruct(map[string]any{"a": "b", "n": 1.5})
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock(51234), Principal: "spiffe://x/ns/a", Labels: map[string]string{"app": "web"}},
		Destination: &authv3.AttributeContext_Peer{Address: sock(8080), Service: "api"},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(timestamppb.Now().AsTime()),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "1234567890", Method: "POST", Path: "/app/x?q=1", Host: "acme.example.com",
				Scheme: "https", Query: "q=1", Fragment: "f", Size: 12, Protocol: "HTTP/2",
				Body: "héllo", RawBody: []byte{0xff, 0, 1},
				Headers: map[string]string{
					":authority": "acme.example.com", ":method": "POST", ":path": "/app/x?q=1",
					"cookie": "tenantgate=a.b.c; other=1", "x-forwarded-proto": "https", "empty": "",
				},
				HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "k", RawValue: []byte("v\xff")}}},
			},
		},
		ContextExtensions:    map[string]string{"tenant": "acme"},
		MetadataContext:      &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": md}},
		RouteMetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"r": md}},
		TlsSession:           &authv3.AttributeContext_TLSSession{Sni: "acme.example.com"},
	}}
}

// Builders of hand-made wire bytes for the seeds.
func tagged(num protowire.Number, typ protowire.Type, v []byte) []byte {
	return append(protowire.AppendTag(nil, num, typ), v...)
}
func msgField(num protowire.Number, body ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), bytes.Join(body, nil))
}
func strField(num protowire.Number, s string) []byte { return msgField(num, []byte(s)) }
func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

// inHTTP wraps HttpRequest fields in Request, AttributeContext, CheckRequest.
func inHTTP(fields ...[]byte) []byte {
	return msgField(fCheckAttributes, msgField(fAttrRequest, msgField(fRequestHTTP, fields...)))
}

func header(k, v string) []byte { return msgField(fHTTPHeaders, strField(1, k), strField(2, v)) }

// decodeSeeds are the cases decodeCheckRequest must agree with
// proto.Unmarshal on: well-formed requests, protobuf's corner cases, and
// malformed bytes.
func decodeSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	full, err := proto.Marshal(envoyRequest())
	if err != nil {
		t.Fatal(err)
	}
	deterministic, err := proto.MarshalOptions{Deterministic: true}.Marshal(envoyRequest())
	if err != nil {
		t.Fatal(err)
	}
	// A Struct nested deeper than the recursion limit (three levels a
	// step: Struct, its fields entry, Value), in metadata_context.
	deep := []byte(nil)
	for range protowire.DefaultRecursionLimit/3 + 10 {
		deep = msgField(1, strField(1, "k"), msgField(2, msgField(5, deep)))
	}
	deep = msgField(1, strField(1, "f"), msgField(2, deep))
	return map[string][]byte{
		"empty":                        nil,
		"envoy":                        full,
		"deterministic":                deterministic,
		"twice":                        append(append([]byte(nil), full...), full...), // messages merge, scalars and map entries: the last wins
		"headers":                      inHTTP(header("a", "1"), header("b", "2"), header("a", "3"), strField(fHTTPPath, "/p"), strField(fHTTPPath, "/q")),
		"entry missing key and value":  inHTTP(msgField(fHTTPHeaders), msgField(fHTTPHeaders, strField(2, "v")), msgField(fHTTPHeaders, strField(1, "k"))),
		"entry repeated key":           inHTTP(msgField(fHTTPHeaders, strField(1, "k1"), strField(2, "v"), strField(1, "k2"))),
		"entry unknown and wrong type": inHTTP(msgField(fHTTPHeaders, strField(1, "k"), varintField(2, 7), strField(3, "x"), varintField(9, 1), strField(2, "v"))),
		"entry group":                  inHTTP(msgField(fHTTPHeaders, strField(1, "k"), tagged(4, protowire.StartGroupType, nil), varintField(1, 1), tagged(4, protowire.EndGroupType, nil))),
		"entry end group":              inHTTP(msgField(fHTTPHeaders, strField(1, "k"), tagged(4, protowire.EndGroupType, nil))),
		"entry field zero":             inHTTP(msgField(fHTTPHeaders, tagged(0, protowire.VarintType, []byte{1}))),
		"header key not utf8":          inHTTP(header("a\xff", "1")),
		"header value not utf8":        inHTTP(header("a", "\xc0\x80")),
		"path not utf8":                inHTTP(strField(fHTTPPath, "/\xff")),
		"body not utf8":                inHTTP(strField(fHTTPBody, "\xed\xa0\x80")),
		"raw body any bytes":           inHTTP(strField(fHTTPRawBody, "\xff\x00"), strField(fHTTPRawBody, "")),
		"size":                         inHTTP(varintField(fHTTPSize, 1<<63), varintField(fHTTPSize, 5)),
		"size wrong type":              inHTTP(strField(fHTTPSize, "5")),
		"string as varint":             inHTTP(varintField(fHTTPPath, 5), varintField(fHTTPHeaders, 1)),
		"unknown everywhere": append(append(varintField(99, 1), msgField(fCheckAttributes,
			varintField(3, 2), tagged(fAttrSource, protowire.Fixed32Type, []byte{1, 2, 3, 4}),
			msgField(fAttrRequest, strField(7, "x"), varintField(fRequestHTTP, 1),
				msgField(fRequestHTTP, tagged(20, protowire.Fixed64Type, make([]byte, 8)), strField(fHTTPMethod, "GET"))))...),
			tagged(fCheckAttributes, protowire.StartGroupType, append(varintField(1, 1), tagged(fCheckAttributes, protowire.EndGroupType, nil)...))...),
		"unknown group":   tagged(50, protowire.StartGroupType, append(strField(1, "x"), tagged(50, protowire.EndGroupType, nil)...)),
		"stray end group": tagged(50, protowire.EndGroupType, nil),
		"open group":      tagged(50, protowire.StartGroupType, strField(1, "x")),
		"field zero":      tagged(0, protowire.BytesType, []byte{0}),
		"field too big":   protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3|2),
		"tag overflow":    bytes.Repeat([]byte{0xff}, 11),
		"truncated":       full[:len(full)-3],
		"length too long": append(protowire.AppendTag(nil, fCheckAttributes, protowire.BytesType), 0x7f, 1),
		"bad inner":       msgField(fCheckAttributes, msgField(fAttrSource, []byte{0xff})),
		"bad time":        msgField(fCheckAttributes, msgField(fAttrRequest, msgField(fRequestTime, []byte{0x08}))),
		"context ext":     msgField(fCheckAttributes, msgField(fAttrContextExtensions, strField(1, "k"), strField(2, "v")), msgField(fAttrContextExtensions, strField(1, "k"), strField(2, "w"))),
		"deep metadata":   msgField(fCheckAttributes, msgField(fAttrMetadataContext, deep)),
		"long header":     inHTTP(header("x-big", strings.Repeat("é", 5000))),
		"peers": msgField(fCheckAttributes,
			// source: a pipe, then a socket address in two pieces that merge;
			// its port a name, then a number; labels, principal twice.
			msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressPipe, strField(1, "/run/x"), varintField(2, 0o600)))),
			msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressSocket, strField(fSocketAddress, "10.0.0.1"), strField(fSocketNamedPort, "http")))),
			msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressSocket, varintField(fSocketPortValue, 1<<33+443), varintField(fSocketProtocol, 1<<40|1), varintField(fSocketIPv4, 2)))),
			msgField(fAttrSource, strField(fPeerPrincipal, "a"), strField(fPeerPrincipal, "b"), msgField(fPeerLabels, strField(1, "k"), strField(2, "v")), strField(fPeerCertificate, "c"), strField(fPeerService, "s")),
			// destination: a socket address, then an internal address replacing it,
			// then a socket with a port number, then a name.
			msgField(fAttrDestination, msgField(fPeerAddress, msgField(fAddressSocket, strField(fSocketAddress, "10.0.0.2")))),
			msgField(fAttrDestination, msgField(fPeerAddress, msgField(fAddressInternal, strField(1, "listener")))),
			msgField(fAttrDestination, msgField(fPeerAddress, msgField(fAddressSocket, varintField(fSocketPortValue, 8080), strField(fSocketNamedPort, "x"), strField(fSocketResolver, "r"), strField(fSocketNetns, "/n")))),
		),
		"peer unknown and wrong types": msgField(fCheckAttributes, msgField(fAttrSource,
			varintField(fPeerAddress, 1), varintField(fPeerService, 1), strField(9, "u"),
			msgField(fPeerAddress, varintField(fAddressSocket, 1), strField(7, "u"),
				msgField(fAddressSocket, strField(fSocketPortValue, "1"), varintField(fSocketAddress, 1), strField(fSocketIPv4, "x"), varintField(fSocketNamedPort, 3), tagged(12, protowire.Fixed32Type, []byte{1, 2, 3, 4}))))),
		"socket address not utf8": msgField(fCheckAttributes, msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressSocket, strField(fSocketAddress, "\xff"))))),
		"named port not utf8":     msgField(fCheckAttributes, msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressSocket, strField(fSocketNamedPort, "\xff"))))),
		"bad pipe":                msgField(fCheckAttributes, msgField(fAttrDestination, msgField(fPeerAddress, msgField(fAddressPipe, strField(1, "\xff"))))),
	}
}

// checkSameDecode fails unless decodeCheckRequest and proto.Unmarshal both
// refuse b or both accept it with equal messages.
func checkSameDecode(t *testing.T, b []byte) {
	t.Helper()
	want := new(authv3.CheckRequest)
	wantErr := proto.Unmarshal(b, want)
	got := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Service: "left over"}}}
	gotErr := decodeCheckRequest(b, got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("proto.Unmarshal: %v; decodeCheckRequest: %v", wantErr, gotErr)
	}
	if wantErr == nil && !proto.Equal(want, got) {
		t.Fatalf("decoded differently:\nproto.Unmarshal:    %v\ndecodeCheckRequest: %v", want, got)
	}
}

func TestDecodeCheckRequestIsProtoUnmarshal(t *testing.T) {
	for name, b := range decodeSeeds(t) {
		t.Run(name, func(t *testing.T) { checkSameDecode(t, b) })
	}
}

// The seeds above are meant to exercise both outcomes; make sure they do.
func TestDecodeSeedsCoverRefusals(t *testing.T) {
	seeds := decodeSeeds(t)
	for name, wantOK := range map[string]bool{
		"envoy": true, "twice": true, "entry unknown and wrong type": true, "unknown everywhere": true,
		"header key not utf8": false, "peers": true, "peer unknown and wrong types": true, "named port not utf8": false, "bad pipe": false, "entry end group": false, "truncated": false, "deep metadata": false, "open group": false,
	} {
		err := decodeCheckRequest(seeds[name], new(authv3.CheckRequest))
		if (err == nil) != wantOK {
			t.Errorf("%s: decodeCheckRequest error %v, want ok=%v", name, err, wantOK)
		}
	}
}

// A go-control-plane upgrade that adds a field to a hand-decoded message
// must fail here: decodeCheckRequest would keep the new field as an unknown
// field where proto.Unmarshal sets it.
func TestDecoderKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		msg   proto.Message
		known []protowire.Number
	}{
		{&authv3.CheckRequest{}, []protowire.Number{fCheckAttributes}},
		{&authv3.AttributeContext{}, []protowire.Number{fAttrSource, fAttrDestination, fAttrRequest, fAttrContextExtensions,
			fAttrMetadataContext, fAttrTLSSession, fAttrRouteMetadataContext}},
		{&authv3.AttributeContext_Peer{}, []protowire.Number{fPeerAddress, fPeerService, fPeerLabels, fPeerPrincipal, fPeerCertificate}},
		{&corev3.Address{}, []protowire.Number{fAddressSocket, fAddressPipe, fAddressInternal}},
		{&corev3.SocketAddress{}, []protowire.Number{fSocketProtocol, fSocketAddress, fSocketPortValue, fSocketNamedPort,
			fSocketResolver, fSocketIPv4, fSocketNetns}},
		{&authv3.AttributeContext_Request{}, []protowire.Number{fRequestTime, fRequestHTTP}},
		{&authv3.AttributeContext_HttpRequest{}, []protowire.Number{fHTTPID, fHTTPMethod, fHTTPHeaders, fHTTPPath, fHTTPHost,
			fHTTPScheme, fHTTPQuery, fHTTPFragment, fHTTPSize, fHTTPProtocol, fHTTPBody, fHTTPRawBody, fHTTPHeaderMap}},
	} {
		d := c.msg.ProtoReflect().Descriptor()
		fields := d.Fields()
		if fields.Len() != len(c.known) {
			t.Errorf("%s has %d fields; decode.go knows %d", d.FullName(), fields.Len(), len(c.known))
		}
		for _, n := range c.known {
			if fields.ByNumber(n) == nil {
				t.Errorf("%s has no field %d", d.FullName(), n)
			}
		}
	}
}

func FuzzDecodeCheckRequest(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkSameDecode)
}

// The codec serve registers decodes with decodeCheckRequest.
func TestCodecUnmarshalsCheckRequest(t *testing.T) {
	want := envoyRequest()
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	c := codec{nil}
	got := new(authv3.CheckRequest)
	if err := c.Unmarshal(memSlice(b), got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(want, got) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := c.Unmarshal(memSlice(decodeSeeds(t)["header key not utf8"]), new(authv3.CheckRequest)); err == nil {
		t.Fatal("a header that is not UTF-8 was accepted")
	}
}

func memSlice(b []byte) mem.BufferSlice { return mem.BufferSlice{mem.SliceBuffer(b)} }

// benchRequest is the request of test/bench.sh: Envoy's usual fields and
// headers for a browser's GET.
func benchRequest() *authv3.CheckRequest {
	r := envoyRequest()
	a := r.Attributes
	a.MetadataContext, a.RouteMetadataContext, a.TlsSession, a.ContextExtensions = nil, nil, nil, nil
	a.Source.Labels, a.Source.Principal, a.Destination.Service = nil, "", ""
	a.Request.Http = &authv3.AttributeContext_HttpRequest{
		Id: "1234567890", Method: "GET", Path: "/app/dashboard", Host: "acme.bench.test", Scheme: "http", Protocol: "HTTP/1.1",
		Headers: map[string]string{
			":authority": "acme.bench.test", ":method": "GET", ":path": "/app/dashboard", ":scheme": "http",
			"accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
			"accept-encoding": "gzip, deflate, br", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) tenantgate-loadgen",
			"x-forwarded-proto": "http", "x-request-id": "6f0b2c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f",
			"cookie": "tenantgate=" + strings.Repeat("x", 400),
		},
	}
	return r
}

func BenchmarkDecodeCheckRequest(b *testing.B) {
	for _, c := range []struct {
		name string
		req  *authv3.CheckRequest
	}{{"bench", benchRequest()}, {"full", envoyRequest()}} {
		wire, err := proto.Marshal(c.req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/proto.Unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := proto.Unmarshal(wire, new(authv3.CheckRequest)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decodeCheckRequest", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeCheckRequest(wire, new(authv3.CheckRequest)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
