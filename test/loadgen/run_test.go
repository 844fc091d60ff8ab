package main

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// fakeAuthz answers like tenantgate would for the bench tenant: OK with
// identity headers when a credential is present, a 302 for a browser without
// one. wrong makes it answer OK with another tenant's id.
type fakeAuthz struct {
	authv3.UnimplementedAuthorizationServer
	wrong     bool
	failAfter int64 // when > 0, every call after this many answers 403
	calls     atomic.Int64
}

func (f *fakeAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	hv := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}}
	}
	if n := f.calls.Add(1); f.failAfter > 0 && n > f.failAfter {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: 7},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
			}},
		}, nil
	}
	if h["cookie"] == "" && h["authorization"] == "" {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: 16},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Found},
				Headers: []*corev3.HeaderValueOption{hv("location", "/_auth/login?rd=%2Fapp")},
			}},
		}, nil
	}
	tenant := "acme"
	if f.wrong {
		tenant = "globex"
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{hv("x-tenant-id", tenant), hv("x-user-id", "u1")},
		}},
	}, nil
}

func startFake(t *testing.T, f *fakeAuthz) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, f)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func TestRunLoad(t *testing.T) {
	good := startFake(t, &fakeAuthz{})
	bad := startFake(t, &fakeAuthz{wrong: true})
	flaky := startFake(t, &fakeAuthz{failAfter: 20})
	tests := []struct {
		name       string
		addr       string
		cfg        runConfig
		wantErr    string // from runLoad
		wantErrors bool   // wrong answers counted
		wantRanOut bool
	}{
		{name: "noop", addr: good, cfg: runConfig{Case: "noop", SessionToken: "tok"}},
		{name: "session", addr: good, cfg: runConfig{Case: "session", SessionToken: "tok", Tenant: "acme"}},
		{name: "redirect", addr: good, cfg: runConfig{Case: "redirect", Tenant: "acme"}},
		{name: "fresh runs out early", addr: good, cfg: runConfig{Case: "fresh", Tenant: "acme", FreshTokens: make50("t")}, wantRanOut: true},
		{name: "wrong answers during the run are counted", addr: flaky, cfg: runConfig{Case: "session", SessionToken: "tok", Tenant: "acme"}, wantErrors: true},
		{name: "another tenant's answer fails fast", addr: bad, cfg: runConfig{Case: "session", SessionToken: "tok", Tenant: "acme"}, wantErr: `x-tenant-id "globex"`},
		{name: "nothing listening", addr: "127.0.0.1:1", cfg: runConfig{Case: "redirect", Tenant: "acme"}, wantErr: "first call"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Addr, cfg.Workers, cfg.Conns = tc.addr, 4, 2
			cfg.Warmup, cfg.Duration = 50*time.Millisecond, 200*time.Millisecond
			cfg.ConnectTimeout = 500 * time.Millisecond
			cfg.Host, cfg.Path, cfg.CookieName = "acme.bench.test", "/app", "tenantgate"
			lc, err := newLoadCase(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := runLoad(ctx, &cfg, lc, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.RanOut != tc.wantRanOut {
				t.Errorf("RanOut = %t, want %t", res.RanOut, tc.wantRanOut)
			}
			if !tc.wantRanOut && (res.Calls == 0 || res.QPS <= 0 || res.P50us <= 0 || res.P99us < res.P50us) {
				t.Errorf("implausible result %+v", res)
			}
			if (res.Errors > 0) != tc.wantErrors {
				t.Errorf("errors = %d (%v), want errors: %t", res.Errors, res.ErrorLog, tc.wantErrors)
			}
		})
	}
}

func make50(prefix string) []string {
	s := make([]string, 50)
	for i := range s {
		s[i] = prefix
	}
	return s
}
