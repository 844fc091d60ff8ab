package proc

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvDropsTenantgateVariables(t *testing.T) {
	t.Setenv("TENANTGATE_INSECURE_COOKIES", "true")
	t.Setenv("ETCD_DATA_DIR", "/elsewhere")
	t.Setenv("PROC_TEST_KEPT", "yes")
	env := Env()
	for _, prefix := range []string{"TENANTGATE_", "ETCD_"} {
		if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, prefix) }) {
			t.Errorf("Env() passes a %s* variable on", prefix)
		}
	}
	if !slices.Contains(env, "PROC_TEST_KEPT=yes") {
		t.Errorf("Env() dropped an unrelated variable")
	}
}

func TestStartWaitStop(t *testing.T) {
	p := Start(t, "/bin/sh", "-c", `echo ready; exec sleep 30`)
	p.WaitUntil(t, 10*time.Second, func() error {
		if !strings.Contains(p.Output(), "ready") {
			return fmt.Errorf("no output yet")
		}
		return nil
	})
	began := time.Now()
	p.Stop()
	if !p.Exited() {
		t.Fatal("process still running after Stop")
	}
	if d := time.Since(began); d > 4*time.Second {
		t.Errorf("Stop took %v: SIGTERM did not end the process", d)
	}
	p.Stop() // a second Stop returns at once
}

func TestKillEndsAProcessThatIgnoresSIGTERM(t *testing.T) {
	// The ignored SIGTERM survives exec, so Stop would wait its five seconds.
	p := StartNamed(t, "stubborn", "/bin/sh", "-c", `trap "" TERM; echo ready; exec sleep 30`)
	p.WaitUntil(t, 10*time.Second, func() error {
		if !strings.Contains(p.Output(), "ready") {
			return fmt.Errorf("no output yet")
		}
		return nil
	})
	began := time.Now()
	p.Kill()
	if !p.Exited() {
		t.Fatal("process still running after Kill")
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Kill took %v, want at once", d)
	}
	p.Kill() // a second Kill returns at once
	p.Stop()
}

func TestRunGivesStdin(t *testing.T) {
	Run(t, "secret-input", "/bin/sh", "-c", `test "$(cat)" = secret-input`)
}

func TestReadinessChecks(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name   string
		check  func() error
		wantOK bool
	}{
		{"200 is ready", HTTPOK(ok.URL), true},
		{"503 is not", HTTPOK(down.URL), false},
		{"a listening port is ready", Listening(ok.Listener.Addr().String()), true},
		{"a closed port is not", Listening(closed), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(); (err == nil) != tc.wantOK {
				t.Errorf("check = %v, want ready %v", err, tc.wantOK)
			}
		})
	}
}

func TestFreePortIsFree(t *testing.T) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))
	if err != nil {
		t.Fatalf("FreePort gave a port that cannot be bound: %v", err)
	}
	ln.Close()
}
