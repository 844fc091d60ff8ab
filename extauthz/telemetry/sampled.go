package telemetry

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"
)

// The sampled flag is read here without building a span context, so that
// an unsampled Check costs a few string comparisons. The formats are the
// propagators' (W3C Trace Context §3.2, B3): a header this code cannot read
// is "unknown", and the full extraction decides.

// grpcSampled reads the sampled flag of the trace context in the gRPC
// metadata of ctx: traceparent, else B3. known is false when there is
// none (or it cannot be read).
func grpcSampled(ctx context.Context) (sampled, known bool) {
	return sampledFlag(func(name string) string {
		if v := metadata.ValueFromIncomingContext(ctx, name); len(v) > 0 {
			return v[0]
		}
		return ""
	})
}

// sampledFlag reads the sampled flag of the trace context in headers
// (get returns a header by lower-case name): traceparent, else B3 single
// (b3), else B3 multi (x-b3-sampled, x-b3-flags).
func sampledFlag(get func(string) string) (sampled, known bool) {
	if tp := get("traceparent"); tp != "" {
		return traceparentSampled(tp)
	}
	if v := get("b3"); v != "" {
		return b3Sampled(v)
	}
	if get("x-b3-flags") == "1" {
		return true, true // debug implies sampled
	}
	switch get("x-b3-sampled") {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// traceparentSampled reads version-00 traceparent
// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>": bit 0 of the
// flags. A later version may be longer; its first four fields are the same.
func traceparentSampled(tp string) (sampled, known bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || (len(tp) > 55 && tp[55] != '-') {
		return false, false
	}
	lo := tp[54]
	switch {
	case lo >= '0' && lo <= '9':
		return (lo-'0')&1 == 1, true
	case lo >= 'a' && lo <= 'f':
		return (lo-'a'+10)&1 == 1, true
	}
	return false, false
}

// b3Sampled reads the single b3 header: "0", "1", "d", or
// "<trace id>-<span id>[-<sampling state>[-<parent span id>]]"; without a
// sampling state the receiver decides (unknown).
func b3Sampled(v string) (sampled, known bool) {
	state := v
	if len(v) > 1 {
		dashes := 0
		state = ""
		for i := 0; i < len(v); i++ {
			if v[i] != '-' {
				continue
			}
			dashes++
			if dashes == 2 {
				state = v[i+1:]
				if j := strings.IndexByte(state, '-'); j >= 0 {
					state = state[:j]
				}
				break
			}
		}
	}
	switch state {
	case "1", "d":
		return true, true
	case "0":
		return false, true
	}
	return false, false
}
