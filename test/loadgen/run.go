package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// runConfig is one load run: which case, against which server, how hard and
// for how long.
type runConfig struct {
	Addr string
	Case string
	// Label names the run in the results (the report's row); empty means
	// Case. It tells apart runs of one case against different servers
	// (session on bbolt, on etcd, on 10 000 tenants).
	Label    string
	Workers  int
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	// Host and Path are the request's :authority and :path.
	Host, Path string
	// Tenant is the tenant id an allowed answer must carry in x-tenant-id;
	// empty for the noop case.
	Tenant string
	// CookieName is the session cookie's name (tenantgate or __Host-tenantgate).
	CookieName string
	// SessionToken is the token sent on every call of the session and noop
	// cases.
	SessionToken string
	// FreshTokens are the tokens of the fresh case, each sent once.
	FreshTokens []string
	// ConnectTimeout bounds the first call on each connection; zero means 10s.
	ConnectTimeout time.Duration
	// ServerPID, when non-zero, is the process whose CPU time is measured over
	// the measurement window.
	ServerPID int
	// Traceparent, when set, goes in every call's gRPC metadata, where
	// Envoy's tracer puts the context of its ext_authz span.
	Traceparent string
}

// result is what one run measured. It is also the JSON line written to the
// results file.
type result struct {
	Kind     string   `json:"kind"` // "load"
	Case     string   `json:"case"` // runConfig.Label, else Case
	Workers  int      `json:"workers"`
	Conns    int      `json:"conns"`
	Seconds  float64  `json:"seconds"` // the measured window
	Calls    uint64   `json:"calls"`
	Errors   uint64   `json:"errors"`
	QPS      float64  `json:"qps"`
	P50us    float64  `json:"p50_us"`
	P99us    float64  `json:"p99_us"`
	MaxUs    float64  `json:"max_us"`
	RanOut   bool     `json:"ran_out,omitempty"` // the fresh case used up its tokens
	ErrorLog []string `json:"error_log,omitempty"`
	// CPU seconds over the measured window; -1 when unknown.
	ServerCPU  float64 `json:"server_cpu_s"`
	LoadgenCPU float64 `json:"loadgen_cpu_s"`
	// MachineBusy is the fraction of all CPUs busy over the window.
	MachineBusy float64 `json:"machine_busy"`
}

// maxErrorLog bounds how many distinct error messages a run keeps.
const maxErrorLog = 5

// loadCase is a benchmark case: the requests to send and the answer that
// counts as correct.
type loadCase struct {
	// newWorker returns the request source of one worker; it returns nil
	// when it has nothing more to send.
	newWorker func() func() *authv3.CheckRequest
	check     func(*authv3.CheckResponse) error
}

// baseRequest is a CheckRequest shaped like the ones Envoy sends for an
// HTTP/1.1 request through a front proxy: addresses, request id, pseudo
// headers and the usual browser headers, plus extra.
func baseRequest(host, path, accept string, extra map[string]string) *authv3.CheckRequest {
	headers := map[string]string{
		":authority":        host,
		":method":           "GET",
		":path":             path,
		":scheme":           "http",
		"accept":            accept,
		"accept-encoding":   "gzip, deflate, br",
		"user-agent":        "Mozilla/5.0 (X11; Linux x86_64) tenantgate-loadgen",
		"x-forwarded-proto": "http",
		"x-request-id":      "6f0b2c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f",
	}
	for k, v := range extra {
		headers[k] = v
	}
	sock := func(port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock(51234)},
		Destination: &authv3.AttributeContext_Peer{Address: sock(8080)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       "1234567890",
				Method:   "GET",
				Headers:  headers,
				Path:     path,
				Host:     host,
				Scheme:   "http",
				Protocol: "HTTP/1.1",
			},
		},
	}}
}

const (
	acceptHTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	acceptJSON = "application/json"
)

// newLoadCase builds the case cfg.Case names.
func newLoadCase(cfg *runConfig) (*loadCase, error) {
	same := func(req *authv3.CheckRequest) func() func() *authv3.CheckRequest {
		return func() func() *authv3.CheckRequest { return func() *authv3.CheckRequest { return req } }
	}
	cookie := map[string]string{"cookie": cfg.CookieName + "=" + cfg.SessionToken}
	switch cfg.Case {
	case "noop":
		// The same request as the session case, so both move the same bytes.
		if cfg.SessionToken == "" {
			return nil, errors.New("the noop case sends the session request: give -token-file")
		}
		return &loadCase{newWorker: same(baseRequest(cfg.Host, cfg.Path, acceptHTML, cookie)), check: expectOK("")}, nil
	case "session":
		if cfg.SessionToken == "" || cfg.CookieName == "" {
			return nil, errors.New("the session case needs -token-file and -cookie-name")
		}
		return &loadCase{newWorker: same(baseRequest(cfg.Host, cfg.Path, acceptHTML, cookie)), check: expectOK(cfg.Tenant)}, nil
	case "redirect":
		return &loadCase{newWorker: same(baseRequest(cfg.Host, cfg.Path, acceptHTML, nil)), check: expectRedirect}, nil
	case "fresh":
		if len(cfg.FreshTokens) == 0 {
			return nil, errors.New("the fresh case needs -fresh-file with at least one token")
		}
		var next atomic.Int64
		toks := cfg.FreshTokens
		return &loadCase{
			newWorker: func() func() *authv3.CheckRequest {
				// Each worker owns its request and rewrites one header per
				// call: Check has marshalled the request before it returns.
				req := baseRequest(cfg.Host, cfg.Path, acceptJSON, map[string]string{"authorization": ""})
				h := req.Attributes.Request.Http.Headers
				return func() *authv3.CheckRequest {
					i := next.Add(1) - 1
					if i >= int64(len(toks)) {
						return nil
					}
					h["authorization"] = "Bearer " + toks[i]
					return req
				}
			},
			check: expectOK(cfg.Tenant),
		}, nil
	default:
		return nil, fmt.Errorf("unknown case %q: use noop, session, fresh or redirect", cfg.Case)
	}
}

// expectOK accepts an OK answer; with a tenant, it must also carry that
// tenant and a user id, as an authenticated tenantgate answer does.
func expectOK(tenant string) func(*authv3.CheckResponse) error {
	return func(resp *authv3.CheckResponse) error {
		if c := resp.GetStatus().GetCode(); c != 0 {
			if d := resp.GetDeniedResponse(); d != nil {
				return fmt.Errorf("denied with HTTP %d (grpc status %d), want OK", d.GetStatus().GetCode(), c)
			}
			return fmt.Errorf("grpc status %d in the response, want OK", c)
		}
		ok := resp.GetOkResponse()
		if ok == nil {
			return errors.New("OK status without an OkHttpResponse")
		}
		if tenant == "" {
			return nil
		}
		var gotTenant, gotUser string
		for _, h := range ok.GetHeaders() {
			switch h.GetHeader().GetKey() {
			case "x-tenant-id":
				gotTenant = h.GetHeader().GetValue()
			case "x-user-id":
				gotUser = h.GetHeader().GetValue()
			}
		}
		if gotTenant != tenant || gotUser == "" {
			return fmt.Errorf("allowed with x-tenant-id %q and x-user-id set=%t, want %q and set", gotTenant, gotUser != "", tenant)
		}
		return nil
	}
}

// expectRedirect accepts a 302 to the tenant's sign-in page.
func expectRedirect(resp *authv3.CheckResponse) error {
	d := resp.GetDeniedResponse()
	if d == nil {
		return fmt.Errorf("grpc status %d without a denied response, want a 302", resp.GetStatus().GetCode())
	}
	if c := d.GetStatus().GetCode(); c != 302 {
		return fmt.Errorf("denied with HTTP %d, want 302", c)
	}
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "location" {
			if !strings.HasPrefix(h.GetHeader().GetValue(), "/_auth/login?rd=") {
				return errors.New("302 to somewhere other than /_auth/login?rd=")
			}
			return nil
		}
	}
	return errors.New("302 without a location header")
}

// Phases of a run, in order.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// worker is one closed-loop client: it sends a call, waits for the answer,
// and sends the next.
type worker struct {
	hist   histogram
	errs   uint64
	errLog []string
}

func (w *worker) fail(err error) {
	w.errs++
	msg := err.Error()
	if len(w.errLog) < maxErrorLog && !contains(w.errLog, msg) {
		w.errLog = append(w.errLog, msg)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runLoad drives cfg.Workers closed-loop workers over cfg.Conns connections:
// cfg.Warmup unmeasured, then cfg.Duration measured. A call counts in the
// window it completes in. It returns early if the case runs out of requests.
// Progress and problems go to log.
func runLoad(ctx context.Context, cfg *runConfig, lc *loadCase, log io.Writer) (*result, error) {
	if cfg.Workers < 1 || cfg.Conns < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return nil, errors.New("need -workers >= 1, -conns >= 1, -duration > 0 and -warmup >= 0")
	}
	// Every call must finish by then; a hung server cannot hang the bench.
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+30*time.Second)
	defer cancel()
	if cfg.Traceparent != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", cfg.Traceparent)
	}

	clients := make([]authv3.AuthorizationClient, cfg.Conns)
	for i := range clients {
		conn, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", cfg.Addr, err)
		}
		defer conn.Close()
		clients[i] = authv3.NewAuthorizationClient(conn)
	}
	// One call per connection before the clock starts: connects, and fails
	// fast with the reason if the server answers wrongly.
	for i, c := range clients {
		req := lc.newWorker()()
		if req == nil {
			return nil, errors.New("the case has no request to send")
		}
		timeout := cfg.ConnectTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		callCtx, callCancel := context.WithTimeout(ctx, timeout)
		resp, err := c.Check(callCtx, req, grpc.WaitForReady(true))
		callCancel()
		if err != nil {
			return nil, fmt.Errorf("first call on connection %d: %w", i, err)
		}
		if err := lc.check(resp); err != nil {
			return nil, fmt.Errorf("first call on connection %d: %w", i, err)
		}
	}

	var phase atomic.Int32
	var ranOut atomic.Bool
	exhausted := make(chan struct{})
	var once sync.Once
	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{}
		workers[i] = w
		client := clients[i%len(clients)]
		next := lc.newWorker()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for phase.Load() != phaseStop {
				req := next()
				if req == nil {
					ranOut.Store(true)
					once.Do(func() { close(exhausted) })
					return
				}
				start := time.Now()
				resp, err := client.Check(ctx, req)
				elapsed := time.Since(start)
				if phase.Load() != phaseMeasure {
					continue
				}
				w.hist.record(elapsed)
				if err == nil {
					err = lc.check(resp)
				}
				if err != nil {
					w.fail(err)
				}
			}
		}()
	}

	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-exhausted:
			return false
		case <-ctx.Done():
			return false
		}
	}
	full := wait(cfg.Warmup)
	before := readCPU(cfg.ServerPID)
	start := time.Now()
	phase.Store(phaseMeasure)
	if full {
		wait(cfg.Duration)
	}
	phase.Store(phaseStop)
	window := time.Since(start)
	after := readCPU(cfg.ServerPID)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run did not finish in time: %w", err)
	}

	var all histogram
	label := cfg.Label
	if label == "" {
		label = cfg.Case
	}
	res := &result{Kind: "load", Case: label, Workers: cfg.Workers, Conns: cfg.Conns, Seconds: window.Seconds(), RanOut: ranOut.Load()}
	for _, w := range workers {
		all.merge(&w.hist)
		res.Errors += w.errs
		for _, m := range w.errLog {
			if len(res.ErrorLog) < maxErrorLog && !contains(res.ErrorLog, m) {
				res.ErrorLog = append(res.ErrorLog, m)
			}
		}
	}
	res.Calls = all.n
	res.QPS = float64(all.n) / window.Seconds()
	res.P50us = micros(all.quantile(0.50))
	res.P99us = micros(all.quantile(0.99))
	res.MaxUs = micros(all.max)
	res.ServerCPU, res.LoadgenCPU, res.MachineBusy = after.since(before)
	if res.RanOut {
		fmt.Fprintf(log, "loadgen: case %s ran out of tokens after %.1fs of measurement; figures cover that window only (mint more with -n)\n", cfg.Case, window.Seconds())
	}
	return res, nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
