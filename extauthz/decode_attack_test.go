package extauthz

// Adversarial tests of the hand decoder (decode.go) and serve's codec
// (wire.go): a peer that reaches the gRPC port sends arbitrary bytes as a
// CheckRequest, or a client controls header names and values that Envoy
// encodes faithfully. decodeCheckRequest must accept and refuse what
// proto.Unmarshal accepts and refuses, build the same message, keep nothing
// of the gRPC buffer (returned to a pool after Unmarshal), and cost about
// what proto.Unmarshal costs.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Builders for the attack seeds, on top of decode_test.go's.
func attrs(fields ...[]byte) []byte { return msgField(fCheckAttributes, fields...) }
func source(fields ...[]byte) []byte {
	return attrs(msgField(fAttrSource, fields...))
}
func inAddress(fields ...[]byte) []byte { return source(msgField(fPeerAddress, fields...)) }
func inSocket(fields ...[]byte) []byte {
	return inAddress(msgField(fAddressSocket, fields...))
}
func inRequest(fields ...[]byte) []byte                   { return attrs(msgField(fAttrRequest, fields...)) }
func entry(num protowire.Number, fields ...[]byte) []byte { return msgField(num, fields...) }
func endGroup(num protowire.Number) []byte                { return tagged(num, protowire.EndGroupType, nil) }
func group(num protowire.Number, body ...[]byte) []byte {
	return append(tagged(num, protowire.StartGroupType, bytes.Join(body, nil)), endGroup(num)...)
}
func rawTag(num uint64, typ protowire.Type) []byte {
	return protowire.AppendVarint(nil, num<<3|uint64(typ))
}

// overlong encodes v as a varint of exactly n bytes (n ≤ 10), padding with
// continuation bytes as a non-canonical encoder may.
func overlong(v uint64, n int) []byte {
	b := make([]byte, n)
	for i := range n - 1 {
		b[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	b[n-1] = byte(v)
	return b
}

// level wraps body in a message of each level that decode.go decodes by
// hand, from the outside: the same fields at every level.
var handLevels = map[string]func(...[]byte) []byte{
	"check":   func(f ...[]byte) []byte { return bytes.Join(f, nil) },
	"attrs":   attrs,
	"peer":    source,
	"address": inAddress,
	"socket":  inSocket,
	"request": inRequest,
	"http":    inHTTP,
	"header":  func(f ...[]byte) []byte { return inHTTP(msgField(fHTTPHeaders, f...)) },
	"label":   func(f ...[]byte) []byte { return source(msgField(fPeerLabels, f...)) },
	"ctxext":  func(f ...[]byte) []byte { return attrs(msgField(fAttrContextExtensions, f...)) },
}

// attackSeeds are corner cases beyond decodeSeeds: map entries, varints,
// field numbers, empty messages, oneofs, merges, UTF-8, scalars' ranges.
func attackSeeds() map[string][]byte {
	s := map[string][]byte{
		// Map entries (headers, context_extensions, labels).
		"entry key and value twice":        inHTTP(entry(fHTTPHeaders, strField(1, "a"), strField(2, "x"), strField(2, "y"), strField(1, "b"))),
		"entries value only, key only":     inHTTP(entry(fHTTPHeaders, strField(2, "v")), entry(fHTTPHeaders, strField(1, "k")), entry(fHTTPHeaders, strField(1, ""), strField(2, ""))),
		"entry same key across entries":    inHTTP(header("cookie", "a=1"), header("x", "y"), header("cookie", "tenantgate=evil"), header("cookie", "a=2")),
		"entry key every wrong wire type":  inHTTP(entry(fHTTPHeaders, strField(1, "k"), varintField(1, 5), tagged(1, protowire.Fixed32Type, []byte{1, 2, 3, 4}), tagged(1, protowire.Fixed64Type, make([]byte, 8)), group(1, varintField(1, 1)), strField(2, "v"))),
		"entry value every wrong type":     inHTTP(entry(fHTTPHeaders, strField(1, "k"), strField(2, "v"), varintField(2, 5), tagged(2, protowire.Fixed32Type, []byte{0xff, 0xff, 0xff, 0xff}), group(2))),
		"entry group unterminated":         inHTTP(entry(fHTTPHeaders, tagged(1, protowire.StartGroupType, nil))),
		"entry group wrong end":            inHTTP(entry(fHTTPHeaders, tagged(1, protowire.StartGroupType, nil), endGroup(2))),
		"entry nested groups":              inHTTP(entry(fHTTPHeaders, strField(1, "k"), group(5, group(6, group(7, strField(1, "\xff")))))),
		"entry max field number":           inHTTP(entry(fHTTPHeaders, strField(protowire.MaxValidNumber, "x"), strField(1, "k"))),
		"entry field too big":              inHTTP(entry(fHTTPHeaders, append(rawTag(uint64(protowire.MaxValidNumber)+1, protowire.BytesType), 0))),
		"entry field int32 overflow":       inHTTP(entry(fHTTPHeaders, append(rawTag(1<<31, protowire.VarintType), 0))),
		"entry wire type 6":                inHTTP(entry(fHTTPHeaders, rawTag(1, 6))),
		"entry wire type 7":                inHTTP(entry(fHTTPHeaders, rawTag(2, 7))),
		"entry truncated value":            inHTTP(entry(fHTTPHeaders, []byte{0x0a, 0x05, 'a'})),
		"entry truncated tag":              inHTTP(entry(fHTTPHeaders, []byte{0x8a})),
		"entry bad utf8 then good":         inHTTP(entry(fHTTPHeaders, strField(1, "\xff"), strField(1, "ok"))),
		"entry good then bad utf8 value":   inHTTP(entry(fHTTPHeaders, strField(2, "ok"), strField(2, "\xff"), strField(1, "k"))),
		"entry bad utf8 in unknown field":  inHTTP(entry(fHTTPHeaders, strField(3, "\xff"), strField(1, "k"))),
		"entry bad utf8 behind wrong type": inHTTP(entry(fHTTPHeaders, strField(1, "k"), tagged(2, protowire.Fixed32Type, []byte("\xff\xff\xff\xff")))),
		"map fields as other wire types": append(inHTTP(varintField(fHTTPHeaders, 1), tagged(fHTTPHeaders, protowire.Fixed64Type, make([]byte, 8)), group(fHTTPHeaders, strField(1, "k"))),
			attrs(varintField(fAttrContextExtensions, 1), msgField(fAttrSource, tagged(fPeerLabels, protowire.Fixed32Type, make([]byte, 4))))...),
		"context ext and labels corner cases": attrs(
			msgField(fAttrContextExtensions), msgField(fAttrContextExtensions, strField(2, "v1")), msgField(fAttrContextExtensions, strField(1, ""), strField(2, "v2")),
			msgField(fAttrContextExtensions, strField(1, "k"), strField(1, "k2"), varintField(3, 1)),
			msgField(fAttrSource, msgField(fPeerLabels, strField(1, "a")), msgField(fPeerLabels, strField(1, "a"), strField(2, "b"))),
			msgField(fAttrSource, msgField(fPeerLabels, strField(2, "c"), strField(1, "a")))),
		"label key not utf8":   source(msgField(fPeerLabels, strField(1, "\xc3"))),
		"label value not utf8": source(msgField(fPeerLabels, strField(1, "k"), strField(2, "\xe2\x82"))),
		"ctx ext key not utf8": attrs(msgField(fAttrContextExtensions, strField(1, "\xf8\x88\x80\x80\x80"))),
		"ctx ext val not utf8": attrs(msgField(fAttrContextExtensions, strField(2, "\xed\xb0\x80"))),

		// Varints: non-canonical tags, lengths and values are accepted;
		// more than ten bytes, or a tenth byte over 1, is not.
		"overlong tags":           append(append(overlong(fCheckAttributes<<3|2, 5), 0), append(overlong(99<<3, 10), 1)...),
		"overlong tag in entry":   inHTTP(msgField(fHTTPHeaders, append(append(overlong(1<<3|2, 3), 1), 'k'), append(overlong(2<<3|2, 9), 0))),
		"overlong length":         inHTTP(append(append(overlong(fHTTPPath<<3|2, 2), overlong(2, 10)...), "/x"...)),
		"overlong values":         append(inHTTP(append(rawTag(fHTTPSize, 0), overlong(7, 10)...)), inSocket(append(rawTag(fSocketPortValue, 0), overlong(443, 10)...), append(rawTag(fSocketIPv4, 0), overlong(0, 10)...))...),
		"overlong unknown values": inHTTP(append(rawTag(30, 0), overlong(1, 10)...), append(overlong(31<<3|2, 4), overlong(0, 6)...)),
		"varint eleven bytes":     inHTTP(append(rawTag(fHTTPSize, 0), append(bytes.Repeat([]byte{0x80}, 10), 0)...)),
		"varint tenth byte 2":     inHTTP(append(rawTag(fHTTPSize, 0), append(bytes.Repeat([]byte{0xff}, 9), 2)...)),
		"tag tenth byte 2":        append(bytes.Repeat([]byte{0xff}, 9), 2),
		"tag ten bytes max":       append(bytes.Repeat([]byte{0xff}, 9), 1),
		"length beyond int":       inHTTP(append(rawTag(fHTTPPath, 2), append(bytes.Repeat([]byte{0xff}, 9), 1)...)),
		"length 2^31":             inHTTP(append(rawTag(fHTTPPath, 2), protowire.AppendVarint(nil, 1<<31)...)),

		// Scalars out of range.
		"size negative and huge": inHTTP(varintField(fHTTPSize, 1<<64-1), varintField(fHTTPSize, 1<<63), varintField(fHTTPSize, 1<<63-1)),
		"size -1 last":           inHTTP(varintField(fHTTPSize, 1<<64-1)),
		"size fixed types":       inHTTP(varintField(fHTTPSize, 3), tagged(fHTTPSize, protowire.Fixed64Type, make([]byte, 8)), tagged(fHTTPSize, protowire.Fixed32Type, make([]byte, 4)), group(fHTTPSize)),
		"protocol enum range": append(append(inSocket(varintField(fSocketProtocol, 2)), inSocket(varintField(fSocketProtocol, 1<<31))...),
			append(inSocket(varintField(fSocketProtocol, 1<<32|1)), inSocket(varintField(fSocketProtocol, 1<<64-1))...)...),
		"protocol 2^31-1":      inSocket(varintField(fSocketProtocol, 1<<31-1)),
		"protocol -1":          inSocket(varintField(fSocketProtocol, 1<<64-1)),
		"protocol as bytes":    inSocket(varintField(fSocketProtocol, 1), strField(fSocketProtocol, "x")),
		"port wraps":           inSocket(varintField(fSocketPortValue, 1<<32)),
		"port max":             inSocket(varintField(fSocketPortValue, 1<<64-1)),
		"ipv4 compat huge":     inSocket(varintField(fSocketIPv4, 1<<63)),
		"ipv4 compat then 0":   inSocket(varintField(fSocketIPv4, 1), varintField(fSocketIPv4, 0)),
		"ipv4 compat as fixed": inSocket(tagged(fSocketIPv4, protowire.Fixed32Type, []byte{1, 0, 0, 0})),

		// Oneofs: Address.address and SocketAddress.port_specifier.
		"socket pipe socket":        inAddress(msgField(fAddressSocket, strField(fSocketAddress, "10.0.0.1")), msgField(fAddressPipe, strField(1, "/p")), msgField(fAddressSocket, varintField(fSocketPortValue, 1))),
		"socket socket merges":      inAddress(msgField(fAddressSocket, strField(fSocketAddress, "10.0.0.1"), varintField(fSocketProtocol, 1)), msgField(fAddressSocket, varintField(fSocketPortValue, 1))),
		"pipe internal pipe":        inAddress(msgField(fAddressPipe, strField(1, "/p"), varintField(2, 0o644)), msgField(fAddressInternal, strField(1, "l")), msgField(fAddressPipe, varintField(2, 1))),
		"pipe pipe merges":          inAddress(msgField(fAddressPipe, strField(1, "/p")), msgField(fAddressPipe, varintField(2, 0o600))),
		"internal internal merges":  inAddress(msgField(fAddressInternal, strField(1, "l")), msgField(fAddressInternal, strField(2, "e"))),
		"internal then socket":      inAddress(msgField(fAddressInternal, strField(1, "l")), msgField(fAddressSocket)),
		"empty members":             inAddress(msgField(fAddressSocket), msgField(fAddressPipe), msgField(fAddressInternal)),
		"member with wrong type":    inAddress(msgField(fAddressPipe, strField(1, "/p")), varintField(fAddressSocket, 1), tagged(fAddressInternal, protowire.Fixed32Type, make([]byte, 4))),
		"oneof across peer repeats": attrs(msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressSocket, strField(fSocketAddress, "a")))), msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressPipe))), msgField(fAttrSource, msgField(fPeerAddress, msgField(fAddressSocket, varintField(fSocketPortValue, 9))))),
		"oneof across address repeats": source(msgField(fPeerAddress, msgField(fAddressSocket, strField(fSocketAddress, "a"), strField(fSocketNamedPort, "n"))),
			msgField(fPeerAddress, msgField(fAddressSocket, varintField(fSocketPortValue, 9)))),
		"port value named value":  inSocket(varintField(fSocketPortValue, 1), strField(fSocketNamedPort, "http"), varintField(fSocketPortValue, 0)),
		"named named":             inSocket(strField(fSocketNamedPort, "a"), strField(fSocketNamedPort, "")),
		"named then bad port":     inSocket(strField(fSocketNamedPort, "a"), strField(fSocketPortValue, "x"), tagged(fSocketPortValue, protowire.Fixed32Type, make([]byte, 4))),
		"value then bad named":    inSocket(varintField(fSocketPortValue, 80), varintField(fSocketNamedPort, 1), group(fSocketNamedPort)),
		"named port bad utf8 2nd": inSocket(strField(fSocketNamedPort, "a"), strField(fSocketNamedPort, "\xff")),

		// Message fields that appear more than once merge.
		"http twice":         inRequest(msgField(fRequestHTTP, header("a", "1"), strField(fHTTPPath, "/a"), varintField(fHTTPSize, 4)), msgField(fRequestHTTP, header("b", "2"), header("a", "3"), strField(fHTTPMethod, "GET"))),
		"request twice":      attrs(msgField(fAttrRequest, msgField(fRequestTime, varintField(1, 5)), msgField(fRequestHTTP, header("a", "1"))), msgField(fAttrRequest, msgField(fRequestTime, varintField(2, 7)), msgField(fRequestHTTP, header("b", "1")))),
		"time twice":         inRequest(msgField(fRequestTime, varintField(1, 5), varintField(2, 6)), msgField(fRequestTime, varintField(2, 7), strField(9, "u"))),
		"header map twice":   inHTTP(msgField(fHTTPHeaderMap, msgField(1, strField(1, "k"), strField(3, "\xff"))), msgField(fHTTPHeaderMap, msgField(1, strField(1, "k"), strField(2, "v")))),
		"header map bad key": inHTTP(msgField(fHTTPHeaderMap, msgField(1, strField(1, "k\xff")))),
		"tls twice":          attrs(msgField(fAttrTLSSession, strField(1, "a")), msgField(fAttrTLSSession, strField(9, "u")), msgField(fAttrTLSSession, strField(1, "b"))),
		"metadata twice":     attrs(msgField(fAttrMetadataContext, msgField(1, strField(1, "f"), msgField(2))), msgField(fAttrMetadataContext, msgField(1, strField(1, "g")))),
		"route md twice":     attrs(msgField(fAttrRouteMetadataContext, msgField(2, strField(1, "t"), msgField(2, strField(1, "type.googleapis.com/x"), strField(2, "\xff")))), msgField(fAttrRouteMetadataContext)),
		"attributes twice with unknowns": append(append(attrs(varintField(3, 1), msgField(fAttrSource, strField(9, "a"))), varintField(2, 1)...),
			attrs(varintField(3, 2), msgField(fAttrSource, strField(9, "b"), strField(fPeerService, "s")))...),
		"unknowns interleaved": inHTTP(varintField(40, 1), header("a", "1"), varintField(41, 2), strField(fHTTPPath, "/"), varintField(40, 3), varintField(fHTTPPath, 4)),

		// UTF-8, and strings next to the common table's.
		"common strings":      inHTTP(header(":authority", "GET"), header(":path", "/"), header("cookie", "*/*"), strField(fHTTPMethod, "GET"), strField(fHTTPProtocol, "HTTP/1.1"), strField(fHTTPScheme, "https")),
		"near common valid":   inHTTP(header(":authority ", "GET "), header(":Path", "gzip,deflate"), header("cookie\x00", "\x00"), strField(fHTTPMethod, "get"), strField(fHTTPScheme, "httpé")),
		"near common invalid": inHTTP(header(":authority\xff", "x")),
		"common prefix bad":   inHTTP(header("x", "GET\xff")),
		"bad then common":     inHTTP(header("\xffcookie", "x")),
		"overlong slash":      inHTTP(strField(fHTTPPath, "\xc0\xaf")),
		"surrogate":           inHTTP(strField(fHTTPQuery, "\xed\xa0\x80")),
		"max rune":            inHTTP(strField(fHTTPFragment, "\xf4\x8f\xbf\xbf"), header("\xf4\x8f\xbf\xbf", "\xef\xbf\xbd")),
		"beyond max rune":     inHTTP(strField(fHTTPFragment, "\xf4\x90\x80\x80")),
		"nul and controls":    inHTTP(header("a", "\x00\r\n\x7f"), strField(fHTTPPath, "/\x00")),
		"raw body not utf8":   inHTTP(strField(fHTTPRawBody, "\xff\xfe"), strField(fHTTPBody, "ok")),
		"unknown not utf8":    attrs(strField(50, "\xff"), msgField(fAttrSource, strField(50, "\xff"))),
	}
	// Every string field of the hand-decoded messages, not UTF-8.
	for _, c := range []struct {
		level string
		nums  []protowire.Number
	}{
		{"http", []protowire.Number{fHTTPID, fHTTPMethod, fHTTPPath, fHTTPHost, fHTTPScheme, fHTTPQuery, fHTTPFragment, fHTTPProtocol, fHTTPBody}},
		{"peer", []protowire.Number{fPeerService, fPeerPrincipal, fPeerCertificate}},
		{"socket", []protowire.Number{fSocketAddress, fSocketNamedPort, fSocketResolver, fSocketNetns}},
		{"header", []protowire.Number{1, 2}},
	} {
		for _, n := range c.nums {
			s[fmt.Sprintf("%s field %d not utf8", c.level, n)] = handLevels[c.level](strField(n, "ok"), strField(n, "a\x80b"))
			s[fmt.Sprintf("%s field %d good after bad", c.level, n)] = handLevels[c.level](strField(n, "\xff"), strField(n, "ok"))
		}
	}
	// At every hand-decoded level: an empty message, the largest field
	// number, one too large, field 0, wire types 6 and 7, a stray end group,
	// an unknown group, a known field number as a group, truncation.
	for name, wrap := range handLevels {
		s[name+" empty"] = wrap()
		s[name+" max field"] = wrap(strField(protowire.MaxValidNumber, "x"), varintField(protowire.MaxValidNumber, 1))
		s[name+" reserved range field"] = wrap(varintField(19000, 1), strField(19999, "y"))
		s[name+" field too big"] = wrap(append(rawTag(uint64(protowire.MaxValidNumber)+1, protowire.VarintType), 0))
		s[name+" field 0"] = wrap(append(rawTag(0, protowire.VarintType), 0))
		s[name+" wire type 6"] = wrap(rawTag(1, 6))
		s[name+" wire type 7"] = wrap(append(rawTag(3, 7), 0))
		s[name+" stray end group"] = wrap(endGroup(1))
		s[name+" group"] = wrap(group(60, strField(1, "\xff"), group(61)), varintField(62, 1))
		for _, n := range []protowire.Number{1, 2, 3, 4, 9, 12, 13} {
			s[fmt.Sprintf("%s field %d as group", name, n)] = wrap(group(n, varintField(1, 1)))
		}
		s[name+" truncated"] = wrap([]byte{0x12, 0x03, 'a'})
		s[name+" unterminated group"] = wrap(tagged(70, protowire.StartGroupType, varintField(1, 1)))
		s[name+" unknown fixed"] = wrap(tagged(71, protowire.Fixed32Type, []byte{1, 2, 3, 4}), tagged(72, protowire.Fixed64Type, make([]byte, 8)))
		s[name+" fixed truncated"] = wrap(tagged(71, protowire.Fixed64Type, make([]byte, 7)))
	}
	return s
}

func TestAttackDecodeSeeds(t *testing.T) {
	for name, b := range attackSeeds() {
		t.Run(name, func(t *testing.T) { checkSameDecode(t, b) })
	}
}

// The seeds above must reach both outcomes where it matters.
func TestAttackDecodeSeedsOutcomes(t *testing.T) {
	seeds := attackSeeds()
	for name, wantOK := range map[string]bool{
		"entry key every wrong wire type": true, "entry group unterminated": false, "entry group wrong end": false,
		"entry field too big": false, "entry wire type 6": false, "entry bad utf8 then good": false,
		"entry bad utf8 in unknown field": true, "overlong tags": true, "overlong values": true,
		"varint eleven bytes": false, "varint tenth byte 2": false, "tag ten bytes max": false,
		"size -1 last": true, "protocol -1": true, "named port bad utf8 2nd": false, "header map bad key": false,
		"near common invalid": false, "common prefix bad": false, "max rune": true, "beyond max rune": false,
		"http field 4 not utf8": false, "socket field 7 not utf8": false, "header empty": true, "socket max field": true,
		"label field too big": false, "raw body not utf8": true, "unknown not utf8": true,
	} {
		b, ok := seeds[name]
		if !ok {
			t.Fatalf("no seed %q", name)
		}
		err := decodeCheckRequest(b, new(authv3.CheckRequest))
		if (err == nil) != wantOK {
			t.Errorf("%s: decodeCheckRequest error %v, want ok=%v", name, err, wantOK)
		}
	}
}

// valueListChain is metadata_context holding a google.protobuf.Value chain
// of n messages (Value, ListValue, Value, …) under a Struct under Metadata:
// the deepest thing a CheckRequest can nest, all of it below a
// hand-decoded message. Written in O(n): each level's only field starts
// its parent's contents, so the encoding is the fields' heads in order.
func valueListChain(n int) []byte {
	// size[i] is the length of level i's contents; level n-1 is empty.
	size := make([]int, n)
	for i := n - 2; i >= 0; i-- {
		size[i] = 1 + protowire.SizeVarint(uint64(size[i+1])) + size[i+1]
	}
	var chain []byte
	for i := 0; i < n-1; i++ {
		num := protowire.Number(1) // ListValue.values
		if i%2 == 0 {
			num = 6 // Value.list_value
		}
		chain = protowire.AppendTag(chain, num, protowire.BytesType)
		chain = protowire.AppendVarint(chain, uint64(size[i+1]))
	}
	st := msgField(1, strField(1, "k"), protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), chain)) // Struct.fields entry
	md := msgField(1, strField(1, "f"), msgField(2, st))                                                                // Metadata.filter_metadata entry
	return attrs(msgField(fAttrMetadataContext, md))
}

// At the recursion limit exactly: the deepest chain proto.Unmarshal takes,
// and one level more, decode alike (decodeSeeds only tries far beyond it).
func TestAttackRecursionLimitBoundary(t *testing.T) {
	lo, hi := 1, protowire.DefaultRecursionLimit+10 // proto accepts lo, refuses hi
	if proto.Unmarshal(valueListChain(hi), new(authv3.CheckRequest)) == nil {
		t.Fatal("the chain is never too deep")
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if proto.Unmarshal(valueListChain(mid), new(authv3.CheckRequest)) == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo < protowire.DefaultRecursionLimit-20 {
		t.Fatalf("proto.Unmarshal refuses a chain of %d: not the recursion limit", hi)
	}
	for _, n := range []int{lo - 1, lo, hi, hi + 1} {
		checkSameDecode(t, valueListChain(n))
	}
	if err := decodeCheckRequest(valueListChain(lo), new(authv3.CheckRequest)); err != nil {
		t.Errorf("chain of %d: %v", lo, err)
	}
	if decodeCheckRequest(valueListChain(hi), new(authv3.CheckRequest)) == nil {
		t.Errorf("chain of %d accepted", hi)
	}

	// Groups nested in an unknown field of the deepest hand-decoded
	// message: protowire's own limit, the same for both.
	nested := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, rawTag(80, protowire.StartGroupType)...)
		}
		for range n {
			b = append(b, endGroup(80)...)
		}
		return inHTTP(msgField(fHTTPHeaders, b))
	}
	for _, n := range []int{protowire.DefaultRecursionLimit - 1, protowire.DefaultRecursionLimit, protowire.DefaultRecursionLimit + 1, protowire.DefaultRecursionLimit + 2} {
		checkSameDecode(t, nested(n))
	}
}

// aliasWalk calls visit with every string's and bytes' backing array in m,
// map keys and values and unknown fields included.
func aliasWalk(m protoreflect.Message, path string, visit func(path string, p unsafe.Pointer, n int)) {
	if u := m.GetUnknown(); len(u) > 0 {
		visit(path+".<unknown>", unsafe.Pointer(unsafe.SliceData(u)), len(u))
	}
	value := func(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) {
		switch fd.Kind() {
		case protoreflect.StringKind:
			if s := v.String(); len(s) > 0 {
				visit(path, unsafe.Pointer(unsafe.StringData(s)), len(s))
			}
		case protoreflect.BytesKind:
			if b := v.Bytes(); len(b) > 0 {
				visit(path, unsafe.Pointer(unsafe.SliceData(b)), len(b))
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			aliasWalk(v.Message(), path, visit)
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				value(fd.MapKey(), k.Value(), p+"["+k.String()+"].key")
				value(fd.MapValue(), mv, p+"["+k.String()+"]")
				return true
			})
		case fd.IsList():
			for i := range v.List().Len() {
				value(fd, v.List().Get(i), fmt.Sprintf("%s[%d]", p, i))
			}
		default:
			value(fd, v, p)
		}
		return true
	})
}

// aliasRequest has every kind of string and bytes the decoder keeps: common
// and uncommon header names and values, every string field, raw_body,
// header_map's raw values, a pipe, labels, context extensions, metadata,
// and unknown fields at every hand-decoded level.
func aliasRequest(t *testing.T) []byte {
	full, err := proto.Marshal(envoyRequest())
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = append(b, full...)
	for name, wrap := range handLevels {
		b = append(b, wrap(strField(90, "unknown at "+name), varintField(91, 1<<40), tagged(92, protowire.Fixed64Type, []byte("fixed-64")))...)
	}
	b = append(b, inHTTP(header("cookie", "tenantgate="+strings.Repeat("s", 600)), header("x-custom", strings.Repeat("v", 300)), strField(fHTTPRawBody, "raw body bytes"),
		strField(fHTTPBody, "body text"), strField(fHTTPID, "request-id"))...)
	b = append(b, inAddress(msgField(fAddressPipe, strField(1, "/run/pipe/path")))...)
	sock := msgField(fAddressSocket, strField(fSocketAddress, "192.0.2.7"), strField(fSocketNamedPort, "named-port"),
		strField(fSocketResolver, "resolver"), strField(fSocketNetns, "/netns"))
	b = append(b, attrs(msgField(fAttrDestination, msgField(fPeerAddress, sock),
		msgField(fPeerLabels, strField(1, "label-key"), strField(2, "label-value")),
		strField(fPeerPrincipal, "principal"), strField(fPeerCertificate, "certificate")))...)
	return b
}

// Nothing decodeCheckRequest keeps points into the bytes it decoded: gRPC
// returns the buffer to its pool after Unmarshal, and the next message
// overwrites it (a session token cached by its string would change under
// the cache, a header under the decision).
func TestAttackDecodedKeepsNothingOfTheBuffer(t *testing.T) {
	b := aliasRequest(t)
	want := new(authv3.CheckRequest)
	if err := proto.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	got := new(authv3.CheckRequest)
	if err := decodeCheckRequest(b, got); err != nil {
		t.Fatal(err)
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))+uintptr(cap(b))
	n := 0
	aliasWalk(got.ProtoReflect(), "CheckRequest", func(path string, p unsafe.Pointer, _ int) {
		n++
		if a := uintptr(p); a >= lo && a < hi {
			t.Errorf("%s points into the decoded buffer", path)
		}
	})
	if n < 40 {
		t.Fatalf("walked only %d strings and bytes", n)
	}
	for i := range b {
		b[i] = 0xa5
	}
	if !proto.Equal(want, got) {
		t.Fatalf("the message changed with the buffer:\n%v", got)
	}
}

// scribblePool is a gRPC buffer pool that overwrites a buffer as it is put
// back, as its next user would.
type scribblePool struct {
	mu  sync.Mutex
	put int
}

func (p *scribblePool) Get(n int) *[]byte { b := make([]byte, n); return &b }
func (p *scribblePool) Put(b *[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.put++
	for i := range *b {
		(*b)[i] = 0x5a
	}
}

// serve's codec, given the request in a pooled buffer (one piece, which it
// decodes in place, or two, which it copies into the default pool's buffer):
// once gRPC frees the buffer, the request decoded from it is unchanged.
func TestAttackCodecBufferReuse(t *testing.T) {
	src := aliasRequest(t)
	want := new(authv3.CheckRequest)
	if err := proto.Unmarshal(src, want); err != nil {
		t.Fatal(err)
	}
	c := codec{nil}

	pool := new(scribblePool)
	buf := append([]byte(nil), src...)
	data := mem.BufferSlice{mem.NewBuffer(&buf, pool)}
	got := new(authv3.CheckRequest)
	if err := c.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	data.Free() // as gRPC does once the handler has its message
	if pool.put != 1 || buf[0] != 0x5a {
		t.Fatalf("the buffer did not go back to the pool (put %d)", pool.put)
	}
	if !proto.Equal(want, got) {
		t.Fatalf("one piece: the decoded request changed when its buffer was reused:\n%v", got)
	}

	// Two pieces: materialized into a buffer of gRPC's default pool and
	// freed by Unmarshal itself; take buffers of that size back and
	// overwrite them.
	half := len(src) / 2
	a, b := append([]byte(nil), src[:half]...), append([]byte(nil), src[half:]...)
	data = mem.BufferSlice{mem.NewBuffer(&a, pool), mem.NewBuffer(&b, pool)}
	got = new(authv3.CheckRequest)
	if err := c.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	data.Free()
	for range 8 {
		p := mem.DefaultBufferPool().Get(len(src))
		for i := range *p {
			(*p)[i] = 0x3c
		}
		defer mem.DefaultBufferPool().Put(p)
	}
	if !proto.Equal(want, got) {
		t.Fatalf("two pieces: the decoded request changed when its buffer was reused:\n%v", got)
	}
}

// allocated is the bytes f allocates (the test's goroutine only does f).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// amplification inputs: about 1 MiB each, all of it many tiny fields.
func amplificationInputs() map[string][]byte {
	const n = 1 << 19 // two-byte fields: 1 MiB
	rep := func(field []byte) []byte { return bytes.Repeat(field, n/(len(field)/2)) }
	return map[string][]byte{
		// One header, then empty map entries: proto.Unmarshal's map has two
		// keys ("a" and "").
		"empty header entries": inHTTP(header("a", "b"), rep([]byte{fHTTPHeaders<<3 | 2, 0})),
		// One header, then field 3 as varints: unknown fields to both.
		"headers as varints": inHTTP(header("a", "b"), rep([]byte{fHTTPHeaders<<3 | 0, 0})),
		// One header, then a field 3 that is malformed at the end: refused
		// by both, after the hint was counted.
		"refused after the count": inHTTP(header("a", "b"), rep([]byte{fHTTPHeaders<<3 | 0, 0}), []byte{fHTTPHeaders<<3 | 2, 0x7f}),
		"unknown varints":         inHTTP(rep([]byte{14 << 3, 0})),
		"oneof flips":             inAddress(rep([]byte{fAddressSocket<<3 | 2, 0, fAddressPipe<<3 | 2, 0})),
		"port flips":              inSocket(rep([]byte{fSocketPortValue << 3, 0, fSocketNamedPort<<3 | 2, 0})),
		"attribute repeats":       rep([]byte{fCheckAttributes<<3 | 2, 2, 0x18, 0}),
		"empty labels":            source(rep([]byte{fPeerLabels<<3 | 2, 0})),
	}
}

// A small request costs the hand decoder about what it costs proto.Unmarshal
// in memory. The headers map is made with room for every field numbered 3
// that follows the first header (countField): duplicates, empty entries,
// even varints that are not entries at all. A 4 MiB request (serve's
// MaxRecvMsgSize) of two-byte fields asks for a map of two million entries,
// where proto.Unmarshal builds a map of two.
func TestAttackDecodeAllocationAmplification(t *testing.T) {
	for name, b := range amplificationInputs() {
		t.Run(name, func(t *testing.T) {
			var errP, errD error
			p := allocated(func() { errP = proto.Unmarshal(b, new(authv3.CheckRequest)) })
			d := allocated(func() { errD = decodeCheckRequest(b, new(authv3.CheckRequest)) })
			if (errP == nil) != (errD == nil) {
				t.Fatalf("proto.Unmarshal: %v; decodeCheckRequest: %v", errP, errD)
			}
			t.Logf("%d bytes in: proto.Unmarshal allocates %d KiB, decodeCheckRequest %d KiB", len(b), p>>10, d>>10)
			if d > 2*p+1<<20 {
				t.Errorf("%d bytes in: decodeCheckRequest allocates %d KiB, %.1fx proto.Unmarshal's %d KiB", len(b), d>>10, float64(d)/float64(max(p, 1)), p>>10)
			}
		})
	}
}

// countField scans the rest of the http message once, when the first
// header is met, not once per header: 2^17 distinct headers (the most a
// 4 MiB request holds is about 2^20) decode in well under a second, where
// a scan per header would take minutes.
func TestAttackCountFieldIsLinear(t *testing.T) {
	const n = 1 << 17
	hs := make([][]byte, 0, n+1)
	for i := range n {
		hs = append(hs, header(fmt.Sprint("h", i), "v"))
	}
	hs = append(hs, header("cookie", "x"))
	b := inHTTP(hs...)
	start := time.Now()
	m := new(authv3.CheckRequest)
	if err := decodeCheckRequest(b, m); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("%d headers (%d KiB) took %v to decode", n+1, len(b)>>10, d)
	}
	if got := len(m.GetAttributes().GetRequest().GetHttp().GetHeaders()); got != n+1 {
		t.Errorf("%d headers decoded, want %d", got, n+1)
	}
}

// The differential fuzz target again, seeded with the attack seeds too.
func FuzzAttackDecodeCheckRequest(f *testing.F) {
	for _, b := range attackSeeds() {
		f.Add(b)
	}
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkSameDecode)
}

// rawCodec is a client codec that sends a request's bytes as they are, so
// a test speaks to the gRPC port as an arbitrary peer would.
type rawCodec struct{}

type rawRequest []byte

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawRequest))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// Hand-made requests sent to serve's gRPC stack (ServerCodec, pooled
// buffers) get the answer Check gives proto.Unmarshal's message of the same
// bytes: duplicate and half-empty header entries, the cookie in an entry
// whose key comes after its value, a key repeated in one entry, spoofed
// identity headers next to common names. After the others have gone
// through the same pooled buffers, the first request's answer is the same
// (nothing the verifier or the decision kept changed under it).
func TestAttackGRPCDecisionIsProtoUnmarshals(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, f.acme, "member")
	globex := f.token(t, f.globex, "member")
	cookie := func(tok string) string { return "__Host-tenantgate=" + tok }
	req := func(host, path string, hs ...[]byte) []byte {
		return inHTTP(append([][]byte{strField(fHTTPMethod, "GET"), strField(fHTTPHost, host), strField(fHTTPPath, path),
			header(":authority", host), header(":path", path), header(":method", "GET")}, hs...)...)
	}
	cases := []struct {
		name   string
		b      []byte
		wantOK bool
	}{
		{"member", req("acme.app.test", "/docs", header("cookie", cookie(acme))), true},
		{"other tenant's token", req("acme.app.test", "/docs", header("cookie", cookie(globex))), false},
		{"valid then garbage cookie entry", req("acme.app.test", "/docs", header("cookie", cookie(acme)), header("cookie", "x=1")), false},
		{"garbage then valid cookie entry", req("acme.app.test", "/docs", header("cookie", "x=1"), header("cookie", cookie(acme))), true},
		{"value before key", req("acme.app.test", "/docs", msgField(fHTTPHeaders, strField(2, cookie(acme)), strField(1, "cookie"))), true},
		{"key repeated in the entry", req("acme.app.test", "/docs", msgField(fHTTPHeaders, strField(1, "cookie"), strField(2, cookie(acme)), strField(1, "x-cookie"))), false},
		{"value repeated in the entry", req("acme.app.test", "/docs", msgField(fHTTPHeaders, strField(1, "cookie"), strField(2, cookie(acme)), strField(2, "x=1"))), false},
		{"authority entry repeated", req("acme.app.test", "/docs", header("cookie", cookie(globex)), header(":authority", "globex.app.test")), false},
		{"spoofed identity", req("acme.app.test", "/docs", header("cookie", cookie(acme)), header("x-tenant-id", "globex"), header("x-user-roles", "admin"), header("accept", "*/*")), true},
		// The last host field counts, as in proto.Unmarshal's message (Check
		// reads http.host, not the :authority header).
		{"host field repeated", append(req("globex.app.test", "/docs", header("cookie", cookie(acme))), inHTTP(strField(fHTTPHost, "acme.app.test"))...), true},
		{"unknown fields around", append(append(varintField(77, 1), req("acme.app.test", "/docs", varintField(77, 2), header("cookie", cookie(acme)))...), attrs(strField(77, "x"))...), true},
	}
	ctx := context.Background()
	conn := serveGRPC(t, f.srv)
	var first *authv3.CheckResponse
	send := func(t *testing.T, b []byte, wantOK bool) *authv3.CheckResponse {
		t.Helper()
		resp := new(authv3.CheckResponse)
		if err := conn.Invoke(ctx, authv3.Authorization_Check_FullMethodName, rawRequest(b), resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
			t.Fatalf("Check: %v", err)
		}
		m := new(authv3.CheckRequest)
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		want, _ := f.srv.Check(ctx, m)
		if !proto.Equal(resp, want) {
			t.Fatalf("over gRPC:\n%v\nCheck of proto.Unmarshal's message:\n%v", resp, want)
		}
		if got := resp.GetStatus().GetCode() == int32(codes.OK); got != wantOK {
			t.Fatalf("allowed %v, want %v: %v", got, wantOK, resp.GetStatus())
		}
		return resp
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, c.b, c.wantOK)
			if i == 0 {
				first = r
			}
		})
	}
	if again := send(t, cases[0].b, true); !proto.Equal(again, first) {
		t.Fatalf("the first request's answer changed:\n%v\nthen\n%v", first, again)
	}
	// Bytes proto.Unmarshal refuses are refused on the port too.
	err := conn.Invoke(ctx, authv3.Authorization_Check_FullMethodName, rawRequest(req("acme.app.test", "/docs", header("cookie", "\xff"))), new(authv3.CheckResponse), grpc.ForceCodecV2(rawCodec{}))
	if err == nil {
		t.Fatal("a cookie that is not UTF-8 was answered")
	}
}

// The same inputs cost the hand decoder no more time than a few times
// proto.Unmarshal's (the best of three runs each; a loose bound, for a
// busy machine).
func TestAttackDecodeTimeAmplification(t *testing.T) {
	best := func(f func()) time.Duration {
		d := time.Duration(math.MaxInt64)
		for range 3 {
			start := time.Now()
			f()
			d = min(d, time.Since(start))
		}
		return d
	}
	for name, b := range amplificationInputs() {
		t.Run(name, func(t *testing.T) {
			p := best(func() { _ = proto.Unmarshal(b, new(authv3.CheckRequest)) })
			d := best(func() { _ = decodeCheckRequest(b, new(authv3.CheckRequest)) })
			t.Logf("%d bytes: proto.Unmarshal %v, decodeCheckRequest %v", len(b), p, d)
			if d > 4*p+50*time.Millisecond {
				t.Errorf("%d bytes: decodeCheckRequest takes %v, proto.Unmarshal %v", len(b), d, p)
			}
		})
	}
}
