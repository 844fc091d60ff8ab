// Command noop is the baseline for `make bench`: an
// envoy.service.auth.v3.Authorization server that answers every Check with a
// static OK and does nothing else. It is built with the same gRPC server
// options as `tenantgate serve`, so the difference between the two is the cost
// of tenantgate's decision, not of a different transport setup.
//
// Usage:
//
//	noop -addr 127.0.0.1:0
//
// It prints "listening on ADDR" to stdout once it accepts connections and
// stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// okServer answers every Check with the same OK response.
type okServer struct {
	authv3.UnimplementedAuthorizationServer
	ok *authv3.CheckResponse
}

var _ authv3.AuthorizationServer = (*okServer)(nil)

// Check returns the static OK. The response is shared and never mutated, so
// sharing it between concurrent calls is safe (gRPC only reads it).
func (s *okServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.ok, nil
}

func newOKServer() *okServer {
	return &okServer{ok: &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the gRPC server")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	// The options of cmd/tenantgate/serve.go: keep them in step.
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(4<<20), grpc.MaxConcurrentStreams(1024),
		grpc.NumStreamWorkers(uint32(32*runtime.GOMAXPROCS(0))))
	authv3.RegisterAuthorizationServer(gs, newOKServer())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
	}()
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := gs.Serve(lis); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
