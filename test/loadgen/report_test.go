package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelQPS(t *testing.T) {
	// 20k QPS is 50µs a call; 50µs more on one core halves it, on two cores
	// it costs 25µs of wall time per call.
	if got := modelQPS(20000, 50, 1); math.Abs(got-10000) > 1e-6 {
		t.Errorf("one core: %v, want 10000", got)
	}
	if got := modelQPS(20000, 50, 2); math.Abs(got-40000.0/3) > 1e-6 {
		t.Errorf("two cores: %v, want 13333", got)
	}
}

func TestReport(t *testing.T) {
	load := func(c string, qps float64, errs uint64) *result {
		return &result{Kind: "load", Case: c, QPS: qps, Calls: uint64(qps * 10), Seconds: 10, Errors: errs, ServerCPU: qps * 10 * 40e-6, LoadgenCPU: -1, MachineBusy: 1}
	}
	verify := &verifyResult{Kind: "verify", Alg: "EdDSA", SignatureUs: 50, VerifierUs: 60, CachedUs: 0.5, Iterations: 10}
	tests := []struct {
		name    string
		results []any
		want    []string
		wantErr string
	}{
		{
			name:    "goals met",
			results: []any{verify, load("noop", 20000, 0), load("session", 17500, 0), load("fresh", 9000, 0), load("redirect", 18000, 0)},
			want:    []string{"0.88x MET", "model 10000 QPS", "= 0.90x model MET", "redirect 1 18000 18000", "0.90x", "(40.0 + 50.0)/40.0µs = 2.25x"},
		},
		{
			name:    "the fastest round stands for a case",
			results: []any{verify, load("noop", 20000, 0), load("session", 12000, 0), load("noop", 18000, 0), load("session", 17000, 0)},
			want:    []string{"session 2 17000 12000", "0.85x MET"},
		},
		{
			name:    "goals missed",
			results: []any{verify, load("noop", 20000, 0), load("session", 16000, 0), load("fresh", 8000, 0)},
			want:    []string{"0.80x MISSED", "= 0.80x model MISSED", "(not run)"},
		},
		{
			name:    "wrong answers never meet a goal",
			results: []any{verify, load("noop", 20000, 0), load("session", 19000, 3)},
			want:    []string{"0.95x MISSED"},
		},
		{
			name: "etcd, scale and a baseline binary",
			results: []any{verify, load("noop", 20000, 0), load("session", 17000, 0), load(labelSessionBase, 16000, 0),
				load(labelSessionEtcd, 17200, 0), load(labelFreshEtcd, 9000, 0), load("fresh", 9100, 0), load(labelSessionScale, 16500, 0),
				&populateResult{Kind: "populate", Tenants: 10000, Users: 100000, TenantSeconds: 3, UserSeconds: 40, BuildMs: []float64{900, 700, 800}},
				rssResult{Kind: "rss", Label: "scale replica a", KiB: 204800},
				&propagateResult{Kind: "propagate", Replicas: 2, Ms: []float64{30, 10, 20, 50}, ApplyMs: []float64{5, 5, 7, 9}}},
			want: []string{
				"session-base 1 16000 16000", "this build / baseline: 1.062",
				"session-etcd 1 17200", "etcd store, 3 tenants: session 0.86x noop (bbolt 0.85x; etcd/bbolt 1.012)",
				"etcd store, 3 tenants: fresh 0.45x noop (bbolt 0.46x; etcd/bbolt 0.989)",
				"session-scale 1 16500", "0.82x vs 0.86x = 0.959 MET",
				"10000 tenants and 100000 users", "fastest 700ms of 900ms, 700ms, 800ms",
				"scale replica a: 200.0 MiB", "median 25ms, slowest 50ms over 4 changes (admin API call itself: median 6ms)",
			},
		},
		{
			name:    "a no-op with serve's GC headroom",
			results: []any{load("noop", 20000, 0), load(labelNoopGC, 21250, 0), load("session", 17000, 0)},
			want:    []string{"0.85x MET", "noop-gc 1 21250 21250", "(against noop-gc, the no-op with serve's GC headroom: 0.80x; in server CPU per call 1.00x)"},
		},
		{
			name:    "scale drop over 5%",
			results: []any{load("noop", 20000, 0), load(labelSessionEtcd, 17000, 0), load(labelSessionScale, 16000, 0)},
			want:    []string{"0.80x vs 0.85x = 0.941 MISSED"},
		},
		{
			name:    "no baseline",
			results: []any{load("session", 15000, 0)},
			wantErr: "no noop result",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "results.jsonl")
			for _, r := range tc.results {
				if err := appendJSON(path, r); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := cmdReport([]string{"-results", path, "-cores", "1"}, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Compare with runs of spaces squeezed: column widths vary.
			var lines []string
			for _, l := range strings.Split(out.String(), "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			squeezed := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(squeezed, w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestReadTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	toks, err := readTokens(write("ok", "a\n\nb\r\nc"), 2)
	if err != nil || len(toks) != 2 || toks[0] != "a" || toks[1] != "b" {
		t.Errorf("readTokens = %q, %v; want [a b]", toks, err)
	}
	if _, err := readTokens(write("empty", "\n\n"), 5); err == nil {
		t.Error("an empty token file was accepted")
	}
	if _, err := readTokens(filepath.Join(dir, "missing"), 5); err == nil {
		t.Error("a missing token file was accepted")
	}
}
