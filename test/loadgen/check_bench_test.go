package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/tenants"
)

// These benchmarks run the server's Check path in process, without gRPC, on
// the bench's tenant and requests, so a CPU profile shows where tenantgate's
// own time goes (docs/performance.md, "Profiling"):
//
//	go test ./test/loadgen -run '^$' -bench Check -cpuprofile /tmp/cpu.out
//	go tool pprof -top -cum /tmp/cpu.out
//
// Each iteration also marshals the response, the one transport cost that
// differs from the no-op server's (its OK carries no headers or metadata).

// benchStaticStore serves one fixed snapshot.
type benchStaticStore struct{ s *tenants.Snapshot }

func (s benchStaticStore) Snapshot(context.Context) (*tenants.Snapshot, error) { return s.s, nil }

type checkBench struct {
	srv    *extauthz.Server
	minter *session.Minter
	tenant *tenants.Tenant
	claims session.Claims
	// ctx is every call's context: the gRPC metadata Envoy sent.
	ctx context.Context
}

// newCheckBench builds the tenant of test/bench.sh and a Check server wired
// as cmd/tenantgate wires it.
func newCheckBench(b testing.TB) *checkBench { return newCheckBenchScale(b, 0, 0) }

// newCheckBenchScale is newCheckBench with n more tenants (scaleTenant,
// without keys) and m more members spread over them, like the scale store.
func newCheckBenchScale(b testing.TB, n, m int) *checkBench {
	b.Helper()
	key := make([]byte, seal.MasterKeySize)
	rand.Read(key)
	sealer, err := seal.NewSealer(key)
	if err != nil {
		b.Fatal(err)
	}
	k, err := session.NewSigningKey(sealer, "iacme", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	t := tenants.Tenant{
		ID: "acme", InternalID: "iacme", Name: "Acme Bench", Status: tenants.StatusActive,
		EmailDomains: []string{"acme.bench.test"},
		Keys:         []tenants.SigningKey{k},
		Methods:      []tenants.Method{{Type: tenants.MethodPassword}},
		Roles: map[string]tenants.Role{
			"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
			"member": {Permissions: []string{"docs:read"}},
		},
		Rules: []tenants.Rule{
			{Path: "/public/", Access: tenants.AccessAnonymous},
			{Path: "/admin/", Permission: "admin:access"},
			{Path: "/app/", Methods: []string{"GET", "HEAD"}, Permission: "docs:read"},
		},
	}
	var alice tenants.SnapshotChange
	alice.PutMembership("iacme", "u-alice", []string{"member"})
	all := []tenants.Tenant{t}
	for i := range n {
		st := scaleTenant("scale", i)
		st.InternalID = fmt.Sprintf("iscale%05d", i)
		all = append(all, st)
	}
	for j := range m {
		alice.PutMembership(fmt.Sprintf("iscale%05d", j%n), fmt.Sprintf("u-%06d", j), []string{"member"})
	}
	snaps := &tenants.Current{}
	if err := snaps.Refresh(context.Background(), benchStaticStore{tenants.NewSnapshot(all, nil).With(&alice)}); err != nil {
		b.Fatal(err)
	}
	return &checkBench{
		srv: &extauthz.Server{Authorizer: &extauthz.Authorizer{
			Snapshots:  snaps,
			Resolver:   &tenants.Resolver{BaseDomains: []string{"bench.test"}, PathPrefix: "/org"},
			Verifier:   session.NewVerifier(),
			CookieName: session.CookieName(true),
		}, Observer: metrics.New(metrics.Options{})},
		minter: &session.Minter{Sealer: sealer},
		tenant: snaps.Load().BySlug("acme"),
		claims: session.Claims{Subject: "u-alice", Email: "alice@acme.bench.test", Roles: []string{"member"}, Method: session.MethodPassword},
		ctx:    context.Background(),
	}
}

// traceUnsampled turns tracing on (spans would be recorded, never
// exported) and has every call carry Envoy's traceparent, not sampled, in
// its gRPC metadata: bench.sh's session-on case.
func (cb *checkBench) traceUnsampled(b testing.TB) {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cb.srv.Tracer = telemetry.New(tp, true)
	cb.ctx = metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", unsampledTraceparent))
}

// unsampledTraceparent is the one bench.sh's pair sends.
const unsampledTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

func (cb *checkBench) mint(b testing.TB, n int) []string {
	b.Helper()
	toks, err := mintMany(cb.minter, cb.tenant, cb.claims, n)
	if err != nil {
		b.Fatal(err)
	}
	return toks
}

func (cb *checkBench) run(b *testing.B, next func(i int) *authv3.CheckRequest, check func(*authv3.CheckResponse) error) {
	b.Helper()
	ctx := cb.ctx
	// One call outside the timer checks the answer, as the gRPC service
	// encodes it; the timed calls are Check with that encoding.
	wire, err := cb.srv.AnswerBytes(ctx, next(-1))
	if err == nil {
		resp := &authv3.CheckResponse{}
		if err = proto.Unmarshal(wire, resp); err == nil {
			err = check(resp)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cb.srv.AnswerBytes(ctx, next(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSession(b *testing.B) {
	cb := newCheckBench(b)
	tok := cb.mint(b, 1)[0]
	req := baseRequest("acme.bench.test", "/app/dashboard", acceptHTML, map[string]string{"cookie": "tenantgate=" + tok})
	cb.run(b, func(int) *authv3.CheckRequest { return req }, expectOK("acme"))
}

// BenchmarkCheckSessionNoMetrics is BenchmarkCheckSession without the
// metrics observer (serve --metrics=false): the difference is what the
// metrics cost a cached session (docs/performance.md).
func BenchmarkCheckSessionNoMetrics(b *testing.B) {
	cb := newCheckBench(b)
	cb.srv.Observer = nil
	tok := cb.mint(b, 1)[0]
	req := baseRequest("acme.bench.test", "/app/dashboard", acceptHTML, map[string]string{"cookie": "tenantgate=" + tok})
	cb.run(b, func(int) *authv3.CheckRequest { return req }, expectOK("acme"))
}

// BenchmarkCheckSessionTraced is BenchmarkCheckSession with tracing on
// and Envoy's parent not sampled (bench.sh's session-on): against
// BenchmarkCheckSessionNoMetrics (session-off), what the whole
// instrumentation costs a cached session.
func BenchmarkCheckSessionTraced(b *testing.B) {
	cb := newCheckBench(b)
	cb.traceUnsampled(b)
	tok := cb.mint(b, 1)[0]
	req := baseRequest("acme.bench.test", "/app/dashboard", acceptHTML, map[string]string{"cookie": "tenantgate=" + tok})
	cb.run(b, func(int) *authv3.CheckRequest { return req }, expectOK("acme"))
}

// TestCheckInstrumentationAllocs: a cached session's Check with metrics on
// and tracing on but not sampled allocates what it does with metrics on
// and tracing off plus at most one (grpc-go's copy of the traceparent
// value, the one way to read the sampled flag), and the metrics allocate
// nothing: with both off it allocates the same as with metrics alone.
func TestCheckInstrumentationAllocs(t *testing.T) {
	allocs := func(metricsOn, traced bool) float64 {
		cb := newCheckBench(t)
		if !metricsOn {
			cb.srv.Observer = nil
		}
		if traced {
			cb.traceUnsampled(t)
		} else {
			cb.ctx = metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", unsampledTraceparent))
		}
		tok := cb.mint(t, 1)[0]
		req := baseRequest("acme.bench.test", "/app/dashboard", acceptHTML, map[string]string{"cookie": "tenantgate=" + tok})
		for range 3 { // into the verifier's cache, the OK template built
			if resp, err := cb.srv.Check(cb.ctx, req); err != nil || resp.GetOkResponse() == nil {
				t.Fatalf("Check: %v, %v", resp, err)
			}
		}
		return testing.AllocsPerRun(200, func() { _, _ = cb.srv.Check(cb.ctx, req) })
	}
	off, metricsOnly, both := allocs(false, false), allocs(true, false), allocs(true, true)
	t.Logf("allocations per cached-session Check: %.0f both off, %.0f metrics on, %.0f metrics on and tracing on, not sampled", off, metricsOnly, both)
	if metricsOnly != off {
		t.Errorf("metrics on: %.0f allocations, off: %.0f; want the same", metricsOnly, off)
	}
	if both > metricsOnly+1 {
		t.Errorf("metrics and unsampled tracing on: %.0f allocations, metrics alone %.0f; want at most one more", both, metricsOnly)
	}
}

// BenchmarkCheckSessionScale is BenchmarkCheckSession with the scale
// case's 10 000 more tenants and 100 000 more members in the snapshot.
func BenchmarkCheckSessionScale(b *testing.B) {
	cb := newCheckBenchScale(b, 10_000, 100_000)
	tok := cb.mint(b, 1)[0]
	req := baseRequest("acme.bench.test", "/app/dashboard", acceptHTML, map[string]string{"cookie": "tenantgate=" + tok})
	cb.run(b, func(int) *authv3.CheckRequest { return req }, expectOK("acme"))
}

func BenchmarkCheckFresh(b *testing.B) {
	cb := newCheckBench(b)
	toks := cb.mint(b, b.N+1)
	req := baseRequest("acme.bench.test", "/app/dashboard", acceptJSON, nil)
	h := req.Attributes.Request.Http.Headers
	cb.run(b, func(i int) *authv3.CheckRequest {
		h["authorization"] = "Bearer " + toks[i+1]
		return req
	}, expectOK("acme"))
}

func BenchmarkCheckRedirect(b *testing.B) {
	cb := newCheckBench(b)
	req := baseRequest("acme.bench.test", "/app/dashboard", acceptHTML, nil)
	cb.run(b, func(int) *authv3.CheckRequest { return req }, expectRedirect)
}

// BenchmarkCheckNoop is the no-op server's work on the same footing: its
// static OK, marshalled.
func BenchmarkCheckNoop(b *testing.B) {
	ok := &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := proto.Marshal(ok); err != nil {
			b.Fatal(err)
		}
	}
}
