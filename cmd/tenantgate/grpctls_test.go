package main

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/internal/testca"
)

// TestGRPCTLSFlags: the TLS flags that do not make a TLS server are refused
// at start with one line naming the flags (or the file and what is wrong
// with it), however they are given.
func TestGRPCTLSFlags(t *testing.T) {
	c := newCLI(t)
	ca := testca.New(t, "test CA")
	srv := ca.Server(t)
	cert, key := c.writeFile("tls.crt", string(srv.CertPEM)), c.writeFile("tls.key", string(srv.KeyPEM))
	otherKey := c.writeFile("other.key", string(ca.Server(t).KeyPEM))
	serve := []string{"serve", "--db", c.db, "--master-key-file", c.key, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"certificate without key", nil, []string{"--grpc-tls-cert-file", cert}, []string{"--grpc-tls-cert-file and --grpc-tls-key-file go together"}},
		{"key without certificate", nil, []string{"--grpc-tls-key-file", key}, []string{"--grpc-tls-cert-file and --grpc-tls-key-file go together"}},
		{"TENANTGATE_GRPC_TLS_CERT_FILE without key", map[string]string{"TENANTGATE_GRPC_TLS_CERT_FILE": cert}, nil, []string{"go together"}},
		{"client CA without TLS", nil, []string{"--grpc-client-ca-file", ca.File}, []string{"--grpc-client-ca-file needs --grpc-tls-cert-file and --grpc-tls-key-file"}},
		{"client CA without TLS, config file", nil, []string{"--config", c.writeFile("ca-only.yaml", "grpc-client-ca-file: "+ca.File+"\n")}, []string{"--grpc-client-ca-file needs"}},
		{"key of another certificate", nil, []string{"--grpc-tls-cert-file", cert, "--grpc-tls-key-file", otherKey}, []string{"other.key", "does not match"}},
		{"certificate file missing", nil, []string{"--grpc-tls-cert-file", cert + ".missing", "--grpc-tls-key-file", key}, []string{"tls.crt.missing", "no such file"}},
		{"client CA not PEM", nil, []string{"--grpc-tls-cert-file", cert, "--grpc-tls-key-file", key, "--grpc-client-ca-file", key}, []string{"client CA " + key, "no PEM CERTIFICATE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, errs, ok := runBounded(append(append([]string(nil), serve...), tc.args...), 20*time.Second)
			if !ok || code == 0 {
				t.Fatalf("serve started (exit %d, stopped by the test: %v)", code, !ok)
			}
			if !strings.HasPrefix(errs, "tenantgate: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("stderr %q is not one line", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not say %q", errs, w)
				}
			}
		})
	}
}

// TestGRPCMutualTLS: with the three files (here from the config file), the
// gRPC port, Check and health alike, answers only a TLS client presenting a
// certificate of the client CA; the others are refused in the handshake,
// each with a warning line saying why.
func TestGRPCMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t, "tenantgate CA")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Server(t).WriteFiles(t, certFile, keyFile)
	clientCA := testca.New(t, "envoy client CA")
	config := filepath.Join(dir, "serve.yaml")
	testca.Write(t, config, []byte("grpc-tls-cert-file: "+certFile+"\ngrpc-tls-key-file: "+keyFile+"\ngrpc-client-ca-file: "+clientCA.File+"\n"))
	ts := startServer(t, false, "--config", config)

	dial := func(t *testing.T, creds credentials.TransportCredentials) error {
		t.Helper()
		conn, err := grpc.NewClient(ts.grpcAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health: %v, want SERVING", resp.Status)
		}
		if _, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{}); err != nil {
			t.Errorf("Check over mTLS: %v", err)
		}
		return nil
	}
	tlsClient := func(cert *testca.Leaf) credentials.TransportCredentials {
		cfg := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
		if cert != nil {
			pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		return credentials.NewTLS(cfg)
	}

	if err := dial(t, tlsClient(clientCA.Client(t, "envoy"))); err != nil {
		t.Fatalf("client certificate of the client CA: %v", err)
	}
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		log   string // in the warning tenantgate logs; "" for none
	}{
		{"plaintext", insecure.NewCredentials(), "first record does not look like a TLS handshake"},
		{"TLS without a client certificate", tlsClient(nil), "didn't provide a certificate"},
		{"client certificate of another CA", tlsClient(ca.Client(t, "envoy")), "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := dial(t, tc.creds); err == nil {
				t.Fatal("answered")
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(ts.logs.String(), tc.log) {
				if time.Now().After(deadline) {
					t.Fatalf("no log line saying %q; log:\n%s", tc.log, ts.logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
