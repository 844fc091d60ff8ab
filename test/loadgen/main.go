// Command loadgen is the load generator of `make bench` (test/bench.sh,
// docs/performance.md). It drives envoy.service.auth.v3.Authorization/Check
// over real gRPC connections with compiled stubs, at saturation, and reports
// throughput and latency.
//
//	loadgen run    -addr ADDR -case noop|session|fresh|redirect [flags]
//	loadgen mint   -db DB -master-key-file KEY -tenant ID -email EMAIL -out DIR [-n N]
//	loadgen report -results FILE [-cores N]
//	loadgen profile-server -db DB -cpuprofile FILE [-addr ADDR]
//	loadgen populate -etcd-endpoints URL -master-key-file KEY [-tenants N -users M]
//	loadgen propagate -admin URL -admin-token-file F -deny-file F -allow-file F -replicas ADDR,ADDR -token-file F
//	loadgen rss -pid PID -label NAME
//
// run prints one line per case and appends it as JSON to -results; it exits
// non-zero if any answer was wrong. mint writes session tokens offline (the
// database must not be open in a server) and measures what one signature
// verification costs. report prints the summary table, the ratios against the
// no-op server and whether each goal is met. profile-server serves Check as
// `tenantgate serve` wires it, under a CPU profile. populate, propagate
// and rss are the scale case (docs/performance.md): populate writes
// thousands of tenants and users into an etcd store through the Store API
// and times a snapshot build; propagate times a tenant change from one
// replica's admin API to every replica's Check; rss reads a process's
// resident memory.
//
// Tokens are secrets: loadgen never prints one.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: loadgen run|mint|report|profile-server|populate|propagate|rss [flags] (-h for each)")
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "mint":
		return cmdMint(ctx, args[1:], stdout)
	case "report":
		return cmdReport(args[1:], stdout)
	case "profile-server":
		return cmdProfileServer(ctx, args[1:], stdout)
	case "populate":
		return cmdPopulate(ctx, args[1:], stdout)
	case "propagate":
		return cmdPropagate(ctx, args[1:], stdout)
	case "rss":
		return cmdRSS(args[1:], stdout)
	default:
		return fmt.Errorf("unknown command %q: use run, mint, report, profile-server, populate, propagate or rss", args[0])
	}
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfg := &runConfig{}
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:9001", "gRPC address of the ext_authz server")
	fs.StringVar(&cfg.Case, "case", "", "noop, session, fresh or redirect")
	fs.StringVar(&cfg.Label, "label", "", "name of the run in the results and the report (default: the case)")
	fs.IntVar(&cfg.Workers, "workers", 32, "concurrent closed-loop callers (in-flight streams)")
	fs.IntVar(&cfg.Conns, "conns", 4, "gRPC connections the workers share")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before the measurement")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.StringVar(&cfg.Host, "host", "acme.bench.test", "request host (:authority)")
	fs.StringVar(&cfg.Path, "path", "/app/dashboard", "request path")
	fs.StringVar(&cfg.Tenant, "tenant", "acme", "tenant id an allowed answer must carry (x-tenant-id)")
	fs.StringVar(&cfg.CookieName, "cookie-name", "tenantgate", "session cookie name (__Host-tenantgate unless the server runs with --insecure-cookies)")
	tokenFile := fs.String("token-file", "", "file holding the session token (session and noop cases)")
	freshFile := fs.String("fresh-file", "", "file of tokens, one a line, each sent once (fresh case)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of the server, to measure its CPU time (Linux)")
	fs.StringVar(&cfg.Traceparent, "traceparent", "", "send this W3C traceparent in every call's gRPC metadata, as Envoy's tracer does (the session-on and session-off cases: flags 00, not sampled)")
	results := fs.String("results", "", "append the result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	if *tokenFile != "" {
		toks, err := readTokens(*tokenFile, 1)
		if err != nil {
			return err
		}
		cfg.SessionToken = toks[0]
	}
	if *freshFile != "" && cfg.Case == "fresh" {
		toks, err := readTokens(*freshFile, 10_000_000)
		if err != nil {
			return err
		}
		cfg.FreshTokens = toks
	}
	lc, err := newLoadCase(cfg)
	if err != nil {
		return err
	}
	res, err := runLoad(ctx, cfg, lc, stderr)
	if err != nil {
		return fmt.Errorf("case %s: %w", cfg.Case, err)
	}
	fmt.Fprintln(stdout, formatResult(res))
	if *results != "" {
		if err := appendJSON(*results, res); err != nil {
			return err
		}
	}
	if res.Errors > 0 {
		for _, m := range res.ErrorLog {
			fmt.Fprintln(stderr, "  error:", m)
		}
		return fmt.Errorf("case %s: %d of %d answers were wrong", cfg.Case, res.Errors, res.Calls)
	}
	if res.Calls == 0 {
		return fmt.Errorf("case %s: no call completed in the measured window", cfg.Case)
	}
	return nil
}

// formatResult is the one-line summary of a run.
func formatResult(r *result) string {
	line := fmt.Sprintf("%-8s qps=%-8.0f p50=%-9s p99=%-9s errors=%d calls=%d window=%.1fs",
		r.Case, r.QPS, fmtMicros(r.P50us), fmtMicros(r.P99us), r.Errors, r.Calls, r.Seconds)
	if r.ServerCPU >= 0 && r.Calls > 0 {
		line += fmt.Sprintf(" server_cpu=%.1fµs/call", r.ServerCPU/float64(r.Calls)*1e6)
	}
	if r.LoadgenCPU >= 0 && r.Calls > 0 {
		line += fmt.Sprintf(" loadgen_cpu=%.1fµs/call", r.LoadgenCPU/float64(r.Calls)*1e6)
	}
	if r.MachineBusy >= 0 {
		line += fmt.Sprintf(" machine_busy=%.0f%%", r.MachineBusy*100)
	}
	if r.RanOut {
		line += " RAN-OUT-OF-TOKENS"
	}
	return line
}

func fmtMicros(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

// readTokens reads up to limit non-empty lines; it fails on an empty file.
func readTokens(path string, limit int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer f.Close()
	var toks []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() && len(toks) < limit {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			toks = append(toks, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", path, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("read tokens: %s holds none", path)
	}
	return toks, nil
}

// appendJSON appends v as one JSON line to path.
func appendJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write results: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
