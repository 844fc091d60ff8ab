package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/internal/gcheadroom"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// staticOK is the no-op server's answer, for profiling the baseline.
type staticOK struct {
	authv3.UnimplementedAuthorizationServer
}

func (staticOK) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}, nil
}

// cmdProfileServer serves Check the way `tenantgate serve` wires it (same
// store, snapshot, resolver, verifier and gRPC options; no login or admin
// listeners) while recording a CPU profile, because the real server exposes
// none. It stops on SIGINT/SIGTERM and then writes the profile.
func cmdProfileServer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("profile-server", flag.ContinueOnError)
	db := fs.String("db", "", "the bbolt database (no other process may have it open)")
	addr := fs.String("addr", "127.0.0.1:0", "gRPC listen address")
	baseDomain := fs.String("base-domain", "bench.test", "the one base domain")
	insecureCookies := fs.Bool("insecure-cookies", true, "cookie name tenantgate instead of __Host-tenantgate")
	cpuProfile := fs.String("cpuprofile", "", "write the CPU profile here")
	gcHeadroom := fs.Int("gc-headroom-mib", gcheadroom.DefaultHeadroom>>20, "serve's --gc-headroom-mib (0: Go's default; GOGC in the environment wins)")
	streamWorkers := fs.Uint("stream-workers", uint(32*runtime.GOMAXPROCS(0)), "grpc.NumStreamWorkers (default: what serve uses; 0: a new goroutine per stream), for trying the option out")
	noop := fs.Bool("noop", false, "answer every Check with a static OK instead (the no-op baseline, for comparing profiles)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" || *cpuProfile == "" || fs.NArg() != 0 {
		return errors.New("profile-server: need -db and -cpuprofile, and no arguments")
	}
	st, err := boltstore.Open(*db, boltstore.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("profile-server: open database: %w", err)
	}
	defer st.Close()
	snaps := &tenants.Current{}
	if err := snaps.Refresh(ctx, st); err != nil {
		return fmt.Errorf("profile-server: read tenants: %w", err)
	}
	base, err := tenants.CanonicalDomain(*baseDomain)
	if err != nil {
		return fmt.Errorf("profile-server: -base-domain: %w", err)
	}
	srv := &extauthz.Server{
		Authorizer: &extauthz.Authorizer{
			Snapshots:  snaps,
			Resolver:   &tenants.Resolver{BaseDomains: []string{base}, PathPrefix: "/org"},
			Verifier:   session.NewVerifier(),
			CookieName: session.CookieName(*insecureCookies),
		},
		// serve collects metrics by default.
		Observer: metrics.New(metrics.Options{}),
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("profile-server: listen on %s: %w", *addr, err)
	}
	// The options of cmd/tenantgate/serve.go: keep them in step.
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(4 << 20), grpc.MaxConcurrentStreams(1024), extauthz.ServerCodec()}
	if *streamWorkers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(*streamWorkers)))
	}
	gs := grpc.NewServer(opts...)
	if *noop {
		authv3.RegisterAuthorizationServer(gs, staticOK{})
	} else {
		extauthz.Register(gs, srv)
	}

	if *gcHeadroom > 0 && !gcheadroom.FromEnvironment() {
		if _, err := gcheadroom.Start(ctx, uint64(*gcHeadroom)<<20); err != nil {
			return fmt.Errorf("profile-server: %w", err)
		}
	}
	f, err := os.Create(*cpuProfile)
	if err != nil {
		return fmt.Errorf("profile-server: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("profile-server: start cpu profile: %w", err)
	}
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
	}()
	fmt.Fprintf(stdout, "listening on %s\n", lis.Addr())
	serveErr := gs.Serve(lis)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile-server: write cpu profile: %w", err)
	}
	if serveErr != nil {
		return fmt.Errorf("profile-server: serve: %w", serveErr)
	}
	return nil
}
