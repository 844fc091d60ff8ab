package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// serve refuses a --gc-headroom-mib out of range with one line, before it
// opens anything.
func TestServeGCHeadroomFlag(t *testing.T) {
	for _, v := range []string{"-1", "65537", "lots"} {
		var out, errb bytes.Buffer
		code := run([]string{"serve", "--gc-headroom-mib", v, "--db", t.TempDir() + "/x.db"}, strings.NewReader(""), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), "--gc-headroom-mib") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("--gc-headroom-mib %s: exit %d, stderr %q; want one line naming the flag", v, code, errb.String())
		}
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

func currentGCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// startGCHeadroom runs the tuner unless the flag is 0 or GOGC is set, and
// stops it with serve's context.
func TestStartGCHeadroom(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	settle := func() int {
		for range 3 {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		return currentGCPercent()
	}

	startGCHeadroom(context.Background(), 0, log)
	if p := settle(); p != 100 {
		t.Fatalf("--gc-headroom-mib 0: percentage %d, want Go's 100", p)
	}

	t.Setenv("GOGC", "100")
	startGCHeadroom(context.Background(), 64, log)
	if p := settle(); p != 100 {
		t.Fatalf("GOGC set: percentage %d, want it left at 100", p)
	}
	if !strings.Contains(logs.String(), "GOGC is set in the environment") {
		t.Errorf("no line says GOGC wins: %s", logs.String())
	}

	// Unset for the tuner (t.Setenv restores it after the test).
	t.Setenv("GOGC", "")
	unsetenv(t, "GOGC")
	ctx, cancel := context.WithCancel(context.Background())
	startGCHeadroom(ctx, 64, log)
	// 64 MiB over the live heap or the runtime's 4 MiB floor: at most
	// 1600, and well above Go's 100 for a test binary's heap.
	if p := settle(); p <= 200 || p > 1600 {
		t.Fatalf("--gc-headroom-mib 64: percentage %d, want the tuner's (200–1600)", p)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for currentGCPercent() != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("after serve's context ended the percentage is %d, want 100 back", currentGCPercent())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
