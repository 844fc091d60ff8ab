package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tenantgate/tenantgate/internal/tlsfiles"
)

// grpcTLSFlags are serve's --grpc-tls-* and --grpc-client-ca-file flags
// (CONTRACT.md): TLS, and with a client CA mutual TLS, on --grpc-addr.
type grpcTLSFlags struct {
	certFile, keyFile, clientCAFile string
}

func (f *grpcTLSFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.certFile, "grpc-tls-cert-file", "", "certificate chain (PEM) for TLS on --grpc-addr, with --grpc-tls-key-file; read again when the file changes")
	fl.StringVar(&f.keyFile, "grpc-tls-key-file", "", "private key (PEM) of --grpc-tls-cert-file; read again when the file changes")
	fl.StringVar(&f.clientCAFile, "grpc-client-ca-file", "", "mTLS: Envoy must present a client certificate signed by a CA in this file (PEM); read again when the file changes")
}

// serverOption returns the grpc.ServerOption that puts TLS on the gRPC
// port (Check and health alike), or grpc.EmptyServerOption without
// --grpc-tls-cert-file. It fails with one line naming the flag or file at
// fault: a certificate without a key or the reverse, a client CA without
// TLS, or files that cannot be used.
func (f *grpcTLSFlags) serverOption(log *slog.Logger) (grpc.ServerOption, error) {
	switch {
	case f.certFile == "" && f.keyFile == "" && f.clientCAFile == "":
		return grpc.EmptyServerOption{}, nil
	case f.certFile == "" && f.keyFile == "":
		return nil, errors.New("--grpc-client-ca-file needs --grpc-tls-cert-file and --grpc-tls-key-file: mTLS is TLS with a client certificate (also check TENANTGATE_GRPC_TLS_* and --config)")
	case f.certFile == "" || f.keyFile == "":
		return nil, errors.New("--grpc-tls-cert-file and --grpc-tls-key-file go together (also check TENANTGATE_GRPC_TLS_* and --config)")
	}
	files := tlsfiles.Files{Cert: f.certFile, Key: f.keyFile, ClientCA: f.clientCAFile}
	src, err := tlsfiles.New(files, log.With("listener", "grpc"), time.Now)
	if err != nil {
		return nil, fmt.Errorf("gRPC TLS (--grpc-tls-cert-file, --grpc-tls-key-file, --grpc-client-ca-file): %w", err)
	}
	log.Info("grpc tls on", "cert_file", f.certFile, "client_ca_file", f.clientCAFile, "client_cert_required", f.clientCAFile != "")
	return grpc.Creds(&loggedHandshakes{TransportCredentials: credentials.NewTLS(src.Config()), log: log}), nil
}

// loggedHandshakes logs each refused TLS handshake on the gRPC port, one
// warning line with the peer and the reason ("client didn't provide a
// certificate", "unknown authority"): without it an Envoy refused for its
// client certificate shows only as 503s, and gRPC's own log is silent.
// A peer that connects and closes without a word (a TCP probe) is not
// logged.
type loggedHandshakes struct {
	credentials.TransportCredentials
	log *slog.Logger
}

func (c *loggedHandshakes) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil && !errors.Is(err, io.EOF) {
		c.log.Warn("grpc tls handshake refused", "peer", conn.RemoteAddr().String(), "err", err.Error())
	}
	return out, info, err
}

func (c *loggedHandshakes) Clone() credentials.TransportCredentials {
	return &loggedHandshakes{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}
