package extauthz

import (
	"errors"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The CheckRequest off the wire. protobuf's generic decoder spends most of
// a Check's decoding in reflection: every header of the request is a map
// entry set through reflect, and the peers' addresses are oneofs it builds
// the same way. That was a fifth of what a cached session costs the server
// over gRPC, and a good part of its garbage. decodeCheckRequest decodes by
// hand with protowire what Envoy sends on every request (CheckRequest →
// AttributeContext → the source and destination peers and their socket
// addresses, Request → HttpRequest, the headers, labels and
// context_extensions maps), takes the header names and values most requests
// carry from a table instead of allocating them, and hands every other
// message (the time, the header map, a pipe or internal address, the
// metadata, the TLS session) to proto.Unmarshal.
//
// The result is the message proto.Unmarshal makes of the same bytes, and
// bytes it refuses are refused: the same field numbers and wire types, a
// known field with another wire type kept as an unknown field, proto3's
// UTF-8 check on every string, a message field that appears twice merged,
// a scalar, a oneof or a map entry that appears twice taking the last
// value, and the same recursion limit. FuzzDecodeCheckRequest holds it to
// proto.Unmarshal.

// errDecode is any malformed CheckRequest: gRPC answers it with its own
// Internal error, as for bytes proto.Unmarshal refuses.
var errDecode = errors.New("extauthz: cannot parse the CheckRequest")

// errUTF8 is a string field that is not valid UTF-8 (proto3 refuses it).
var errUTF8 = errors.New("extauthz: CheckRequest string field is not valid UTF-8")

// Field numbers of the hand-decoded messages
// (envoy/service/auth/v3/external_auth.proto and attribute_context.proto).
const (
	fCheckAttributes = 1

	fAttrSource               = 1
	fAttrDestination          = 2
	fAttrRequest              = 4
	fAttrContextExtensions    = 10
	fAttrMetadataContext      = 11
	fAttrTLSSession           = 12
	fAttrRouteMetadataContext = 13

	fPeerAddress     = 1
	fPeerService     = 2
	fPeerLabels      = 3
	fPeerPrincipal   = 4
	fPeerCertificate = 5

	fAddressSocket   = 1
	fAddressPipe     = 2
	fAddressInternal = 3

	fSocketProtocol  = 1
	fSocketAddress   = 2
	fSocketPortValue = 3
	fSocketNamedPort = 4
	fSocketResolver  = 5
	fSocketIPv4      = 6
	fSocketNetns     = 7

	fRequestTime = 1
	fRequestHTTP = 2

	fHTTPID        = 1
	fHTTPMethod    = 2
	fHTTPHeaders   = 3
	fHTTPPath      = 4
	fHTTPHost      = 5
	fHTTPScheme    = 6
	fHTTPQuery     = 7
	fHTTPFragment  = 8
	fHTTPSize      = 9
	fHTTPProtocol  = 10
	fHTTPBody      = 11
	fHTTPRawBody   = 12
	fHTTPHeaderMap = 13
)

// decodeCheckRequest sets m to the CheckRequest encoded in b, as
// proto.Unmarshal does.
func decodeCheckRequest(b []byte, m *authv3.CheckRequest) error {
	proto.Reset(m)
	d := decoder{depth: protowire.DefaultRecursionLimit}
	return d.checkRequest(b, m)
}

// decoder keeps proto.Unmarshal's recursion budget: every message entered
// and every map entry takes one from it.
type decoder struct{ depth int }

// field is one field read off the wire: its number, wire type, and value
// bytes (for a BytesType field, its contents; for a varint, its value in v).
type field struct {
	num  protowire.Number
	typ  protowire.Type
	val  []byte
	v    uint64
	raw  []byte // the field's value as encoded, for an unknown field
	size int    // tag and value
}

// next reads the field at the start of b, or fails as proto.Unmarshal does
// on a bad tag or a truncated value.
func next(b []byte) (field, error) {
	tag, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return field{}, errDecode
	}
	num := tag >> 3
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return field{}, errDecode
	}
	f := field{num: protowire.Number(num), typ: protowire.Type(tag & 7)}
	if f.typ == protowire.EndGroupType { // no group is open in these messages
		return field{}, errDecode
	}
	rest := b[n:]
	var m int
	switch f.typ {
	case protowire.BytesType:
		f.val, m = protowire.ConsumeBytes(rest)
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(rest)
	default:
		m = protowire.ConsumeFieldValue(f.num, f.typ, rest)
	}
	if m < 0 {
		return field{}, errDecode
	}
	f.raw = rest[:m]
	f.size = n + m
	return f, nil
}

// appendUnknown appends f to u as proto.Unmarshal keeps an unknown field.
func (f field) appendUnknown(u []byte) []byte {
	return append(protowire.AppendTag(u, f.num, f.typ), f.raw...)
}

// str is f as a proto3 string field: one of the common strings if it is
// one (no allocation), else a new string.
func (f field) str() (string, error) {
	if s, ok := common[string(f.val)]; ok { // the conversion does not allocate
		return s, nil
	}
	if !utf8.Valid(f.val) {
		return "", errUTF8
	}
	return string(f.val), nil
}

// common holds the header names and values most requests carry, so that
// decoding them allocates nothing: every request has a dozen headers, and
// all but a few of their names and many of their values are these.
var common = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		// Envoy's pseudo-headers and what it adds.
		":authority", ":method", ":path", ":scheme", ":protocol",
		"x-forwarded-proto", "x-forwarded-for", "x-forwarded-host", "x-forwarded-port",
		"x-forwarded-client-cert", "x-request-id", "x-envoy-internal", "x-envoy-expected-rq-timeout-ms",
		"x-envoy-attempt-count", "x-envoy-external-address", "x-envoy-original-path", "x-real-ip",
		"traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
		// What browsers and clients send.
		"accept", "accept-encoding", "accept-language", "authorization", "cache-control", "connection",
		"content-length", "content-type", "cookie", "dnt", "host", "if-modified-since", "if-none-match",
		"origin", "pragma", "priority", "referer", "te", "upgrade", "upgrade-insecure-requests",
		"user-agent", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "sec-fetch-dest",
		"sec-fetch-mode", "sec-fetch-site", "sec-fetch-user", "sec-gpc", "x-requested-with",
		// Common values.
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "http", "https",
		"HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3", "/", "*/*", "0", "1", "?0", "?1", "true",
		"gzip", "gzip, deflate", "gzip, deflate, br", "gzip, deflate, br, zstd", "no-cache", "keep-alive",
		"document", "empty", "navigate", "cors", "no-cors", "same-origin", "same-site", "cross-site", "none",
		"application/json", "text/html", "application/x-www-form-urlencoded",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
	} {
		m[s] = s
	}
	return m
}()

// enter takes one level of the recursion budget for a message or map entry.
func (d *decoder) enter() error {
	if d.depth--; d.depth < 0 {
		return errDecode
	}
	return nil
}

// merge decodes b into *p (made if nil) with proto.Unmarshal, as the generic
// decoder merges a message field that appears more than once.
func merge[M any, P interface {
	*M
	proto.Message
}](d decoder, b []byte, p *P) error {
	if *p == nil {
		*p = P(new(M))
	}
	// proto.Unmarshal takes one level for the message itself, as fields does.
	return proto.UnmarshalOptions{Merge: true, RecursionLimit: d.depth}.Unmarshal(b, *p)
}

// fields decodes the message m encoded in b: it takes one level of the
// recursion budget, hands each field to decode with what is left of it,
// and appends the fields decode does not know (known false) to m's unknown
// fields, as proto.Unmarshal does: to the slice m already has, so a message
// field that repeats grows one slice. The unknown bytes are the decoder's
// own copy, never the input's.
func (d decoder) fields(b []byte, m proto.Message, decode func(d decoder, f field) (known bool, err error)) error {
	if err := d.enter(); err != nil {
		return err
	}
	u := m.ProtoReflect().GetUnknown()
	grew := false
	for len(b) > 0 {
		f, err := next(b)
		if err != nil {
			return err
		}
		b = b[f.size:]
		known, err := decode(d, f)
		if err != nil {
			return err
		}
		if !known {
			u, grew = f.appendUnknown(u), true
		}
	}
	if grew {
		m.ProtoReflect().SetUnknown(u)
	}
	return nil
}

func (d decoder) checkRequest(b []byte, m *authv3.CheckRequest) error {
	return d.fields(b, m, func(d decoder, f field) (bool, error) {
		if f.num != fCheckAttributes || f.typ != protowire.BytesType {
			return false, nil
		}
		if m.Attributes == nil {
			m.Attributes = new(authv3.AttributeContext)
		}
		return true, d.attributes(f.val, m.Attributes)
	})
}

func (d decoder) attributes(b []byte, m *authv3.AttributeContext) error {
	return d.fields(b, m, func(d decoder, f field) (bool, error) {
		if f.typ != protowire.BytesType {
			return false, nil
		}
		switch f.num {
		case fAttrSource:
			return true, d.peer(f.val, &m.Source)
		case fAttrDestination:
			return true, d.peer(f.val, &m.Destination)
		case fAttrRequest:
			if m.Request == nil {
				m.Request = new(authv3.AttributeContext_Request)
			}
			return true, d.request(f.val, m.Request)
		case fAttrContextExtensions:
			return true, d.mapEntry(f.val, &m.ContextExtensions, 0)
		case fAttrMetadataContext:
			return true, merge(d, f.val, &m.MetadataContext)
		case fAttrTLSSession:
			return true, merge(d, f.val, &m.TlsSession)
		case fAttrRouteMetadataContext:
			return true, merge(d, f.val, &m.RouteMetadataContext)
		}
		return false, nil
	})
}

// peer decodes an AttributeContext.Peer into *p, made if nil.
func (d decoder) peer(b []byte, p **authv3.AttributeContext_Peer) error {
	if *p == nil {
		*p = new(authv3.AttributeContext_Peer)
	}
	m := *p
	return d.fields(b, m, func(d decoder, f field) (bool, error) {
		if f.typ != protowire.BytesType {
			return false, nil
		}
		var err error
		switch f.num {
		case fPeerAddress:
			if m.Address == nil {
				m.Address = new(corev3.Address)
			}
			err = d.address(f.val, m.Address)
		case fPeerService:
			m.Service, err = f.str()
		case fPeerLabels:
			err = d.mapEntry(f.val, &m.Labels, 0)
		case fPeerPrincipal:
			m.Principal, err = f.str()
		case fPeerCertificate:
			m.Certificate, err = f.str()
		default:
			return false, nil
		}
		return true, err
	})
}

// address decodes a core Address: its socket_address by hand, its other
// members with proto.Unmarshal. A member of the oneof merges into the same
// member already set and replaces another, as protobuf decodes a oneof.
func (d decoder) address(b []byte, m *corev3.Address) error {
	return d.fields(b, m, func(d decoder, f field) (bool, error) {
		if f.typ != protowire.BytesType {
			return false, nil
		}
		switch f.num {
		case fAddressSocket:
			o, ok := m.Address.(*corev3.Address_SocketAddress)
			if !ok || o.SocketAddress == nil {
				o = &corev3.Address_SocketAddress{SocketAddress: new(corev3.SocketAddress)}
				m.Address = o
			}
			return true, d.socketAddress(f.val, o.SocketAddress)
		case fAddressPipe:
			o, ok := m.Address.(*corev3.Address_Pipe)
			if !ok {
				o = new(corev3.Address_Pipe)
				m.Address = o
			}
			return true, merge(d, f.val, &o.Pipe)
		case fAddressInternal:
			o, ok := m.Address.(*corev3.Address_EnvoyInternalAddress)
			if !ok {
				o = new(corev3.Address_EnvoyInternalAddress)
				m.Address = o
			}
			return true, merge(d, f.val, &o.EnvoyInternalAddress)
		}
		return false, nil
	})
}

// socketAddress decodes a core SocketAddress; of its port_specifier oneof,
// the last member on the wire counts.
func (d decoder) socketAddress(b []byte, m *corev3.SocketAddress) error {
	return d.fields(b, m, func(_ decoder, f field) (bool, error) {
		var err error
		switch {
		case f.typ == protowire.VarintType && f.num == fSocketProtocol:
			m.Protocol = corev3.SocketAddress_Protocol(int32(f.v))
		case f.typ == protowire.VarintType && f.num == fSocketPortValue:
			m.PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(f.v)}
		case f.typ == protowire.VarintType && f.num == fSocketIPv4:
			m.Ipv4Compat = f.v != 0
		case f.typ == protowire.BytesType && f.num == fSocketAddress:
			m.Address, err = f.str()
		case f.typ == protowire.BytesType && f.num == fSocketNamedPort:
			var port string
			if port, err = f.str(); err == nil {
				m.PortSpecifier = &corev3.SocketAddress_NamedPort{NamedPort: port}
			}
		case f.typ == protowire.BytesType && f.num == fSocketResolver:
			m.ResolverName, err = f.str()
		case f.typ == protowire.BytesType && f.num == fSocketNetns:
			m.NetworkNamespaceFilepath, err = f.str()
		default:
			return false, nil
		}
		return true, err
	})
}

func (d decoder) request(b []byte, m *authv3.AttributeContext_Request) error {
	return d.fields(b, m, func(d decoder, f field) (bool, error) {
		switch {
		case f.num == fRequestTime && f.typ == protowire.BytesType:
			return true, merge(d, f.val, &m.Time)
		case f.num == fRequestHTTP && f.typ == protowire.BytesType:
			if m.Http == nil {
				m.Http = new(authv3.AttributeContext_HttpRequest)
			}
			return true, d.http(f.val, m.Http)
		}
		return false, nil
	})
}

func (d decoder) http(b []byte, m *authv3.AttributeContext_HttpRequest) error {
	return d.fields(b, m, func(d decoder, f field) (bool, error) {
		if f.num == fHTTPSize && f.typ == protowire.VarintType {
			m.Size = int64(f.v)
			return true, nil
		}
		if f.typ != protowire.BytesType {
			return false, nil
		}
		var err error
		switch f.num {
		case fHTTPID:
			m.Id, err = f.str()
		case fHTTPMethod:
			m.Method, err = f.str()
		case fHTTPHeaders:
			hint := 0
			if m.Headers == nil {
				// The first entry of the map: none came before it in b.
				hint = countEntries(b, fHTTPHeaders, maxHeadersHint)
			}
			err = d.mapEntry(f.val, &m.Headers, hint)
		case fHTTPPath:
			m.Path, err = f.str()
		case fHTTPHost:
			m.Host, err = f.str()
		case fHTTPScheme:
			m.Scheme, err = f.str()
		case fHTTPQuery:
			m.Query, err = f.str()
		case fHTTPFragment:
			m.Fragment, err = f.str()
		case fHTTPProtocol:
			m.Protocol, err = f.str()
		case fHTTPBody:
			m.Body, err = f.str()
		case fHTTPRawBody:
			m.RawBody = append([]byte(nil), f.val...)
		case fHTTPHeaderMap:
			err = merge(d, f.val, &m.HeaderMap)
		default:
			return false, nil
		}
		return true, err
	})
}

// mapEntry decodes one entry of a map<string, string> into *mp, made with
// room for hint entries if nil. A missing key or value is "", a key or value
// with another wire type or any other field is skipped, and the last of a
// repeated key or value counts, as protobuf's map decoding does.
func (d decoder) mapEntry(b []byte, mp *map[string]string, hint int) error {
	if err := d.enter(); err != nil {
		return err
	}
	var key, val string
	for len(b) > 0 {
		f, err := next(b)
		if err != nil {
			return err
		}
		b = b[f.size:]
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case 1:
			key, err = f.str()
		case 2:
			val, err = f.str()
		}
		if err != nil {
			return err
		}
	}
	if *mp == nil {
		*mp = make(map[string]string, hint)
	}
	(*mp)[key] = val
	return nil
}

// maxHeadersHint bounds the headers map's initial size: a request whose
// bytes are mostly empty or repeated entries must not size a map for all
// of them (a 4 MiB message holds two million), only for what a real
// request carries; a larger map grows as entries come.
const maxHeadersHint = 64

// countEntries counts, up to limit, the length-delimited fields numbered
// num at the top level of b (a size hint; it stops at the first malformed
// field, which the decoding then refuses).
func countEntries(b []byte, num protowire.Number, limit int) int {
	n := 0
	for len(b) > 0 && n < limit {
		f, err := next(b)
		if err != nil {
			break
		}
		if f.num == num && f.typ == protowire.BytesType {
			n++
		}
		b = b[f.size:]
	}
	return n
}
