package fleet_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// readyWithin bounds how long a replica that waited for etcd takes to
// serve once etcd is back: the attempt under way (at most the store's 5 s
// call timeout) reaches the returned member, or the next one starts (at
// most 2 s later) and does. Measured: 1–4 s.
const readyWithin = 20 * time.Second

// TestStartWithoutEtcd: a replica started while etcd is unreachable keeps
// running, not ready (/readyz 503, gRPC health NOT_SERVING), denying every
// Check with the 503 of a stale snapshot and answering its sign-in pages
// and admin API with 503; once etcd answers it loads the store and serves
// without a restart, a session signed in before the outage is allowed and
// signing in works. A replica with another master key waits the same way
// and, once etcd answers, exits non-zero with the one-line master key
// error, never having served.
func TestStartWithoutEtcd(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	store := []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-prefix", prefix(t),
		"--etcd-ca-file", c.CAFile, "--etcd-cert-file", c.CertFile, "--etcd-key-file", c.KeyFile,
		"--master-key-file", filepath.Join(dir, "tg.key")}
	file := filepath.Join(dir, "acme.yaml")
	token := filepath.Join(dir, "admin.token")
	for path, content := range map[string]string{file: fleetTenants, token: "fleet-admin-token-0123456789abcdef\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proc.Run(t, "", bin, append([]string{"tenants", "apply", "-f", file}, store...)...)
	proc.Run(t, "correct-horse-battery\n", bin, append([]string{"users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin"}, store...)...)
	first := startReplica(t, bin, "replica 1", store...)
	session := first.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	first.proc.Stop()

	c.Kill(0)
	r := launchReplica(t, bin, "replica 2", append(store, "--admin-token-file", token)...)
	// Another master key: the mismatch can only be found once etcd answers.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, store...)
	other[len(other)-1] = filepath.Join(dir, "other.key")
	wrongKey := exec.CommandContext(ctx, bin, other...)
	wrongKey.Env = proc.Env()
	var wrongOut strings.Builder
	wrongKey.Stdout, wrongKey.Stderr = &wrongOut, &wrongOut
	if err := wrongKey.Start(); err != nil {
		t.Fatal(err)
	}
	wrongDone := make(chan error, 1)
	go func() { wrongDone <- wrongKey.Wait() }()

	// Long enough for two attempts to open the store to have failed: the
	// replica must have stayed up, and closed, through them.
	r.proc.WaitUntil(t, 10*time.Second, proc.Listening(r.adm))
	deadline := time.Now().Add(7 * time.Second)
	probes := 0
	for time.Now().Before(deadline) {
		for _, tc := range []struct{ what, token string }{{"with the session", session.Value}, {"without a session", ""}} {
			if a := r.ask(t, "acme.app.test", tc.token); a.status != 503 {
				t.Fatalf("etcd down at start, Check %s: %d %v, want 503", tc.what, a.status, a.headers)
			}
		}
		if got := r.readyz(t); got != 503 {
			t.Fatalf("etcd down at start: /readyz %d, want 503", got)
		}
		if got := r.healthOf(t); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("etcd down at start: health %v, want NOT_SERVING", got)
		}
		probes++
		time.Sleep(200 * time.Millisecond)
	}
	if r.proc.Exited() {
		t.Fatalf("the replica exited while etcd was down:\n%s", r.proc.Output())
	}
	select {
	case err := <-wrongDone:
		t.Fatalf("the replica with another master key exited (%v) before etcd answered:\n%s", err, wrongOut.String())
	default:
	}
	t.Logf("etcd down at start: %d rounds of probes over 7 s, every Check 503, /readyz 503, health NOT_SERVING", probes)

	t.Run("sign-in and admin API answer 503", func(t *testing.T) {
		get := func(url, host string, header http.Header) (int, string, http.Header) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = host
			for k, v := range header {
				req.Header[k] = v
			}
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body), resp.Header
		}
		code, body, h := get("http://"+r.http+"/_auth/login", "acme.app.test", http.Header{"Accept": {"text/html"}})
		if code != 503 || strings.TrimSpace(body) != `{"error":"unavailable"}` || h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET /_auth/login: %d %q (Cache-Control %q), want 503 {\"error\":\"unavailable\"}, no-store", code, body, h.Get("Cache-Control"))
		}
		code, body, _ = get("http://"+r.adm+"/admin/v1/tenants", "", http.Header{"Authorization": {"Bearer fleet-admin-token-0123456789abcdef"}})
		var e struct{ Error string }
		if code != 503 || json.Unmarshal([]byte(body), &e) != nil || e.Error != "unavailable" {
			t.Errorf("GET /admin/v1/tenants: %d %q, want 503 unavailable", code, body)
		}
	})

	restarted := time.Now()
	c.Restart(0)
	healthy := time.Since(restarted)
	r.waitReady(t, readyWithin)
	took := time.Since(restarted)
	if got := r.healthOf(t); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("etcd back: health %v, want SERVING", got)
	}
	if a := r.ask(t, "acme.app.test", session.Value); a.status != 200 || a.headers["x-user-email"] != "ann@acme.test" {
		t.Errorf("etcd back: Check with the session = %d %v, want 200 for ann", a.status, a.headers)
	}
	r.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	t.Logf("ready %v after etcd was started again (healthy after %v), without a restart", took.Round(time.Millisecond), healthy.Round(time.Millisecond))

	select {
	case err := <-wrongDone:
		if err == nil {
			t.Fatal("serve with another master key exited 0")
		}
	case <-ctx.Done():
		t.Fatal("serve with another master key still runs a minute after etcd answered")
	}
	if strings.Contains(wrongOut.String(), `"msg":"serving"`) {
		t.Errorf("the replica with another master key logged that it was serving:\n%s", wrongOut.String())
	}
	lines := strings.Split(strings.TrimSpace(wrongOut.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "tenantgate: master key ") || !strings.Contains(last, "does not open") {
		t.Errorf("last line %q, want the one-line master key error", last)
	}
}
