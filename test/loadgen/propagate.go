package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// propagateConfig is the change-propagation measurement: one replica's
// admin API takes a tenant change, and every replica's Check is watched
// until it answers by the change.
type propagateConfig struct {
	// AdminURL is one replica's admin listener (http://host:port).
	AdminURL   string
	AdminToken string
	// DenyFile and AllowFile are tenant files of the same tenant that
	// differ in whether the session's request is allowed.
	DenyFile, AllowFile []byte
	// Replicas are the gRPC addresses of every replica.
	Replicas []string
	// Request is what each replica is asked (the session case's request).
	Request *authv3.CheckRequest
	// Changes is how many changes are timed, alternately deny and allow.
	Changes int
	// Timeout bounds the wait for one change.
	Timeout time.Duration
}

// propagateResult is the JSON line propagate writes.
type propagateResult struct {
	Kind string `json:"kind"` // "propagate"
	// Ms holds, per change, the time from sending it to the admin API until
	// the last replica answered by it, in milliseconds.
	Ms []float64 `json:"ms"`
	// ApplyMs is, per change, how long the admin API call itself took.
	ApplyMs  []float64 `json:"apply_ms"`
	Replicas int       `json:"replicas"`
}

// allowed reports whether a replica's answer lets the request through (OK)
// or refuses it by the rules (403); any other answer is an error.
func allowedAnswer(resp *authv3.CheckResponse) (bool, error) {
	if resp.GetStatus().GetCode() == 0 && resp.GetOkResponse() != nil {
		return true, nil
	}
	if c := resp.GetDeniedResponse().GetStatus().GetCode(); c != 403 {
		return false, fmt.Errorf("answer HTTP %d (grpc status %d), want 200 or 403", c, resp.GetStatus().GetCode())
	}
	return false, nil
}

// propagate times cfg.Changes changes, each until every replica answers by
// it. Before the first, every replica must allow the request.
func propagate(ctx context.Context, cfg propagateConfig) (*propagateResult, error) {
	clients := make([]authv3.AuthorizationClient, len(cfg.Replicas))
	for i, addr := range cfg.Replicas {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("propagate: replica %s: %w", addr, err)
		}
		defer conn.Close()
		clients[i] = authv3.NewAuthorizationClient(conn)
	}
	// until waits for every replica to answer want, polling each.
	until := func(want bool, deadline time.Time) error {
		errs := make([]error, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				for {
					cctx, cancel := context.WithDeadline(ctx, deadline)
					resp, err := c.Check(cctx, cfg.Request)
					cancel()
					if err != nil {
						errs[i] = fmt.Errorf("replica %s: %w", cfg.Replicas[i], err)
						return
					}
					got, err := allowedAnswer(resp)
					if err != nil {
						errs[i] = fmt.Errorf("replica %s: %w", cfg.Replicas[i], err)
						return
					}
					if got == want {
						return
					}
					if time.Now().After(deadline) {
						errs[i] = fmt.Errorf("replica %s: still answering allowed=%t after %s", cfg.Replicas[i], got, cfg.Timeout)
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	if err := until(true, time.Now().Add(cfg.Timeout)); err != nil {
		return nil, fmt.Errorf("propagate: before any change: %w", err)
	}
	res := &propagateResult{Kind: "propagate", Replicas: len(cfg.Replicas)}
	for i := range cfg.Changes {
		want, file := false, cfg.DenyFile
		if i%2 == 1 {
			want, file = true, cfg.AllowFile
		}
		start := time.Now()
		if err := adminApply(ctx, cfg.AdminURL, cfg.AdminToken, file); err != nil {
			return nil, fmt.Errorf("propagate: change %d: %w", i+1, err)
		}
		applied := time.Since(start)
		if err := until(want, start.Add(cfg.Timeout)); err != nil {
			return nil, fmt.Errorf("propagate: change %d: %w", i+1, err)
		}
		res.Ms = append(res.Ms, float64(time.Since(start))/float64(time.Millisecond))
		res.ApplyMs = append(res.ApplyMs, float64(applied)/float64(time.Millisecond))
	}
	if cfg.Changes%2 == 1 { // leave the tenant as it was found
		if err := adminApply(ctx, cfg.AdminURL, cfg.AdminToken, cfg.AllowFile); err != nil {
			return nil, fmt.Errorf("propagate: restore: %w", err)
		}
		if err := until(true, time.Now().Add(cfg.Timeout)); err != nil {
			return nil, fmt.Errorf("propagate: restore: %w", err)
		}
	}
	return res, nil
}

// adminApply posts a tenant file to the admin API (tenants apply --server).
func adminApply(ctx context.Context, base, token string, file []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/admin/v1/tenants", bytes.NewReader(file))
	if err != nil {
		return fmt.Errorf("admin apply: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin apply: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin apply: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// cmdPropagate is `loadgen propagate`.
func cmdPropagate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("propagate", flag.ContinueOnError)
	admin := fs.String("admin", "", "admin listener URL of the replica that takes the changes (http://host:port)")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin API token")
	denyFile := fs.String("deny-file", "", "tenant file under which the request is refused (403)")
	allowFile := fs.String("allow-file", "", "tenant file under which it is allowed")
	replicas := fs.String("replicas", "", "gRPC addresses of every replica, comma-separated")
	sessionFile := fs.String("token-file", "", "file holding the session token")
	host := fs.String("host", "acme.bench.test", "request host")
	path := fs.String("path", "/app/dashboard", "request path")
	cookieName := fs.String("cookie-name", "tenantgate", "session cookie name")
	n := fs.Int("n", 6, "changes to time (alternately refusing and allowing)")
	timeout := fs.Duration("timeout", 30*time.Second, "longest wait for one change")
	results := fs.String("results", "", "append the result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *admin == "" || *tokenFile == "" || *denyFile == "" || *allowFile == "" || *replicas == "" || *sessionFile == "" || *n < 1 || fs.NArg() != 0 {
		return errors.New("propagate: need -admin, -admin-token-file, -deny-file, -allow-file, -replicas, -token-file and -n >= 1")
	}
	cfg := propagateConfig{AdminURL: *admin, Replicas: strings.Split(*replicas, ","), Changes: *n, Timeout: *timeout}
	var err error
	read := func(path string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = os.ReadFile(path)
		return b
	}
	cfg.AdminToken = strings.TrimSpace(string(read(*tokenFile)))
	cfg.DenyFile, cfg.AllowFile = read(*denyFile), read(*allowFile)
	if err != nil {
		return fmt.Errorf("propagate: %w", err)
	}
	toks, err := readTokens(*sessionFile, 1)
	if err != nil {
		return err
	}
	cfg.Request = baseRequest(*host, *path, acceptHTML, map[string]string{"cookie": *cookieName + "=" + toks[0]})
	res, err := propagate(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "change propagation over %d replicas (%d changes): %s to every replica (admin call %s)\n",
		res.Replicas, len(res.Ms), fmtMs(res.Ms), fmtMs(res.ApplyMs))
	if *results != "" {
		return appendJSON(*results, res)
	}
	return nil
}

// rssResult is a process's resident memory, a JSON line of the results.
type rssResult struct {
	Kind  string `json:"kind"` // "rss"
	Label string `json:"label"`
	KiB   int64  `json:"kib"`
}

// readRSS returns VmRSS of a process, in KiB (Linux).
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("rss: no VmRSS in /proc/%d/status", pid)
}

// cmdRSS is `loadgen rss -pid PID -label NAME`: a process's VmRSS.
func cmdRSS(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	pid := fs.Int("pid", 0, "process id")
	label := fs.String("label", "", "what the process is, for the report")
	results := fs.String("results", "", "append the result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 || *label == "" || fs.NArg() != 0 {
		return errors.New("rss: need -pid and -label")
	}
	kib, err := readRSS(*pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rss %s: %.1f MiB\n", *label, float64(kib)/1024)
	if *results != "" {
		return appendJSON(*results, rssResult{Kind: "rss", Label: *label, KiB: kib})
	}
	return nil
}

// median of xs (which it sorts), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
