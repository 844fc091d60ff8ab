package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
)

// verifyResult is what one signature verification costs, measured in
// process on one core. It is a JSON line of the results file.
type verifyResult struct {
	Kind string `json:"kind"` // "verify"
	// Alg is the signing algorithm of the tenant's key (JOSE name).
	Alg string `json:"alg"`
	// SignatureUs is the bare signature check (e.g. ed25519.Verify) over a
	// minted token's signing input, in µs per call.
	SignatureUs float64 `json:"signature_us"`
	// VerifierUs is session.Verifier.Verify on a token it has not seen
	// (parse, signature, claims, revocation), in µs per call.
	VerifierUs float64 `json:"verifier_us"`
	// CachedUs is session.Verifier.Verify on a token it has seen.
	CachedUs   float64 `json:"cached_us"`
	Iterations int     `json:"iterations"`
}

// Goals from the issues.
const (
	goalSessionRatio = 0.85 // session >= 0.85 x noop (issue 10; issue 9 asked 0.7)
	goalFreshSlack   = 0.15 // fresh within 15% of the noop + 1 verification model
	// goalScaleDrop: the session ratio with 10 000 tenants and 100 000
	// users falls by at most 5% from the 3-tenant case on the same store.
	goalScaleDrop = 0.05
	// goalInstrumentation: the session case with metrics on and tracing
	// on but not sampled costs at most 3% more than the same binary with
	// both off (issue 10).
	goalInstrumentation = 0.03
)

// Labels of the runs bench.sh makes besides the four cases (loadgen run
// -label): the session and fresh cases against serve on the etcd store
// (3 tenants), the session case against a replica of the scale store, and
// the session case against a baseline binary (BENCH_BASELINE), and the
// session case against this binary with its instrumentation on and off.
const (
	labelSessionEtcd  = "session-etcd"
	labelFreshEtcd    = "fresh-etcd"
	labelSessionScale = "session-scale"
	labelSessionBase  = "session-base"
	// labelSessionOn: the session case against serve with metrics on and
	// tracing on, each call carrying Envoy's traceparent, not sampled, in
	// its metadata; labelSessionOff the same calls against the same binary
	// with both off (BENCH_OFF_FLAGS).
	labelSessionOn  = "session-on"
	labelSessionOff = "session-off"
	// labelNoopGC: the no-op case against a second no-op server whose
	// GOGC gives it serve's garbage-collection headroom (BENCH_NOOP_GOGC).
	labelNoopGC = "noop-gc"
)

// summary is the parsed results file.
type summary struct {
	// load holds every round of each case, in file order; order is the
	// cases in the order they first appear.
	load   map[string][]*result
	order  []string
	verify *verifyResult
	// The scale case's measurements, when it ran.
	populate  *populateResult
	propagate *propagateResult
	rss       []rssResult
}

// caseSummary is one case over all its rounds: the fastest round stands for
// the case (anything else on the machine can only slow a round down), and
// the slowest shows the spread.
type caseSummary struct {
	best       *result
	rounds     int
	slowestQPS float64
	errors     uint64 // over all rounds
	ranOut     bool   // in any round
}

// summarize returns the case's summary, or nil if it never ran.
func (s *summary) summarize(name string) *caseSummary {
	rs := s.load[name]
	if len(rs) == 0 {
		return nil
	}
	c := &caseSummary{rounds: len(rs), slowestQPS: rs[0].QPS}
	for _, r := range rs {
		if c.best == nil || r.QPS > c.best.QPS {
			c.best = r
		}
		c.slowestQPS = min(c.slowestQPS, r.QPS)
		c.errors += r.Errors
		c.ranOut = c.ranOut || r.RanOut
	}
	return c
}

func readResults(path string) (*summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	s := &summary{load: map[string][]*result{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kind struct{ Kind string }
		line := sc.Bytes()
		if err := json.Unmarshal(line, &kind); err != nil {
			return nil, fmt.Errorf("read results from %s: %w", path, err)
		}
		switch kind.Kind {
		case "load":
			r := &result{}
			if err := json.Unmarshal(line, r); err != nil {
				return nil, fmt.Errorf("read results from %s: %w", path, err)
			}
			if s.load[r.Case] == nil {
				s.order = append(s.order, r.Case)
			}
			s.load[r.Case] = append(s.load[r.Case], r)
		case "populate":
			s.populate = &populateResult{}
			if err := json.Unmarshal(line, s.populate); err != nil {
				return nil, fmt.Errorf("read results from %s: %w", path, err)
			}
		case "propagate":
			s.propagate = &propagateResult{}
			if err := json.Unmarshal(line, s.propagate); err != nil {
				return nil, fmt.Errorf("read results from %s: %w", path, err)
			}
		case "rss":
			var r rssResult
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, fmt.Errorf("read results from %s: %w", path, err)
			}
			s.rss = append(s.rss, r)
		case "verify":
			v := &verifyResult{}
			if err := json.Unmarshal(line, v); err != nil {
				return nil, fmt.Errorf("read results from %s: %w", path, err)
			}
			s.verify = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results from %s: %w", path, err)
	}
	return s, nil
}

// modelQPS is the throughput the fresh case would reach if it cost exactly
// the no-op's work plus one verification: each call adds verifyUs of CPU on a
// pool of cores that was already saturated, so
// 1/QPS = 1/noopQPS + verify/cores.
func modelQPS(noopQPS, verifyUs, cores float64) float64 {
	return 1 / (1/noopQPS + verifyUs/1e6/cores)
}

func cmdReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	path := fs.String("results", "", "results file written by run and mint")
	cores := fs.Float64("cores", 2, "cores the added verification work competes for (1 when the server is pinned to one core, 2 when both processes share two)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *cores <= 0 {
		return errors.New("report: need -results FILE and -cores > 0")
	}
	s, err := readResults(*path)
	if err != nil {
		return err
	}
	return writeReport(stdout, s, *cores)
}

// writeReport prints the table and the goal verdicts. It fails only when the
// no-op baseline is missing; a missed goal is a figure, not an error.
func writeReport(w io.Writer, s *summary, cores float64) error {
	noopSum := s.summarize("noop")
	if noopSum == nil || noopSum.best.QPS <= 0 {
		return errors.New("report: no noop result to compare against")
	}
	noop := noopSum.best
	perCall := func(r *result, cpu float64) string {
		if cpu < 0 || r.Calls == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fµs", cpu/float64(r.Calls)*1e6)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\trounds\tQPS\tslowest\tp50\tp99\terrors\tserver CPU/call\tloadgen CPU/call\tvs noop\t")
	names := []string{"noop", "session", "fresh", "redirect"}
	for _, name := range s.order {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		c := s.summarize(name)
		if c == nil {
			fmt.Fprintf(tw, "%s\t0\t(not run)\t\t\t\t\t\t\t\t\n", name)
			continue
		}
		r := c.best
		flag := ""
		if c.ranOut {
			flag = " (ran out of tokens)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%s\t%s\t%d\t%s\t%s\t%.2fx%s\t\n", name, c.rounds, r.QPS, c.slowestQPS,
			fmtMicros(r.P50us), fmtMicros(r.P99us), c.errors, perCall(r, r.ServerCPU), perCall(r, r.LoadgenCPU), r.QPS/noop.QPS, flag)
	}
	tw.Flush()
	fmt.Fprintln(w, "(QPS, latency and CPU are from each case's fastest round; slowest is its slowest round's QPS)")

	fmt.Fprintln(w)
	if v := s.verify; v != nil {
		fmt.Fprintf(w, "one verification (%s, one core, in process): signature %.1fµs, session.Verifier uncached %.1fµs, cached %.2fµs\n",
			v.Alg, v.SignatureUs, v.VerifierUs, v.CachedUs)
	}
	verdict := func(ok bool) string {
		if ok {
			return "MET"
		}
		return "MISSED"
	}
	if c := s.summarize("session"); c != nil {
		ratio := c.best.QPS / noop.QPS
		fmt.Fprintf(w, "goal session >= %.2fx noop:  %.2fx  %s\n", goalSessionRatio, ratio, verdict(ratio >= goalSessionRatio && c.errors == 0))
		if cpu := cpuRatio(noop, c.best); cpu > 0 {
			fmt.Fprintf(w, "  (server CPU per call, noop/session: %.2fx)\n", cpu)
		}
	}
	if c, ngc := s.summarize("session"), s.summarize(labelNoopGC); c != nil && ngc != nil && ngc.best.QPS > 0 {
		// serve keeps --gc-headroom-mib between collections; the issue's
		// no-op runs with Go's default. Against a no-op that collects as
		// rarely, the ratio shows what tenantgate's own work costs.
		fmt.Fprintf(w, "  (against %s, the no-op with serve's GC headroom: %.2fx; in server CPU per call %.2fx)\n",
			labelNoopGC, c.best.QPS/ngc.best.QPS, cpuRatio(ngc.best, c.best))
	}
	if c, base := s.summarize("session"), s.summarize(labelSessionBase); c != nil && base != nil {
		fmt.Fprintf(w, "  (the baseline binary, %s: %.2fx; this build / baseline: %.3f, in server CPU per call baseline/this: %.3f)\n",
			labelSessionBase, base.best.QPS/noop.QPS, c.best.QPS/base.best.QPS, cpuRatio(base.best, c.best))
	}
	if on, off := s.summarize(labelSessionOn), s.summarize(labelSessionOff); on != nil && off != nil {
		// The same calls (Envoy's unsampled traceparent in the metadata)
		// to the same binary, instrumentation on and off.
		rel := on.best.QPS / off.best.QPS
		fmt.Fprintf(w, "goal session with metrics on and tracing on, not sampled, within %.0f%% of instrumentation off (same binary): %s/%s %.3f (%.2fx and %.2fx noop)  %s\n",
			goalInstrumentation*100, labelSessionOn, labelSessionOff, rel, on.best.QPS/noop.QPS, off.best.QPS/noop.QPS,
			verdict(rel >= 1-goalInstrumentation && on.errors == 0 && off.errors == 0))
		if cpu := cpuRatio(off.best, on.best); cpu > 0 {
			fmt.Fprintf(w, "  (server CPU per call, %s/%s: %.3f)\n", labelSessionOff, labelSessionOn, cpu)
		}
		if qps, cpu := pairedMedians(s.load[labelSessionOff], s.load[labelSessionOn]); qps > 0 {
			fmt.Fprintf(w, "  (round by round, the two ran back to back: median on/off QPS %.3f, median off/on server CPU per call %.3f)\n", qps, cpu)
		}
	}
	if c, v := s.summarize("fresh"), s.verify; c != nil && v != nil {
		r := c.best
		model := modelQPS(noop.QPS, v.SignatureUs, cores)
		ratio := r.QPS / model
		fmt.Fprintf(w, "goal fresh within %.0f%% of noop + 1 signature verification: model %.0f QPS (1/(1/%.0f + %.1fµs/%g cores)), fresh %.0f = %.2fx model  %s\n",
			goalFreshSlack*100, model, noop.QPS, v.SignatureUs, cores, r.QPS, ratio, verdict(ratio >= 1-goalFreshSlack && c.errors == 0))
		full := modelQPS(noop.QPS, v.VerifierUs, cores)
		fmt.Fprintf(w, "  (against noop + one full session.Verifier call, %.1fµs: model %.0f QPS, fresh = %.2fx)\n", v.VerifierUs, full, r.QPS/full)
		if r.ServerCPU > 0 && noop.ServerCPU > 0 && r.Calls > 0 && noop.Calls > 0 {
			noopUs, freshUs := noop.ServerCPU/float64(noop.Calls)*1e6, r.ServerCPU/float64(r.Calls)*1e6
			fmt.Fprintf(w, "  server CPU per fresh call above the no-op: %.1fµs (one signature: %.1fµs, one full Verify: %.1fµs)\n", freshUs-noopUs, v.SignatureUs, v.VerifierUs)
			// The same model in CPU per call, which other load on the
			// machine disturbs far less than QPS: noop + signature over fresh.
			fmt.Fprintf(w, "  (server CPU per call, (noop + signature)/fresh: (%.1f + %.1f)/%.1fµs = %.2fx)\n", noopUs, v.SignatureUs, freshUs, (noopUs+v.SignatureUs)/freshUs)
		}
	}
	writeStoreReport(w, s, noop, verdict)
	return nil
}

// writeStoreReport prints the etcd store's figures next to bbolt's and the
// scale case's.
func writeStoreReport(w io.Writer, s *summary, noop *result, verdict func(bool) string) {
	ratio := func(name string) (float64, bool) {
		c := s.summarize(name)
		if c == nil || c.errors > 0 {
			return 0, false
		}
		return c.best.QPS / noop.QPS, true
	}
	for _, pair := range [][2]string{{"session", labelSessionEtcd}, {"fresh", labelFreshEtcd}} {
		bolt, ok1 := ratio(pair[0])
		etcd, ok2 := ratio(pair[1])
		if ok1 && ok2 {
			fmt.Fprintf(w, "etcd store, 3 tenants: %s %.2fx noop (bbolt %.2fx; etcd/bbolt %.3f)\n", pair[0], etcd, bolt, etcd/bolt)
		}
	}
	if small, ok := ratio(labelSessionEtcd); ok {
		if big, ok := ratio(labelSessionScale); ok {
			rel := big / small
			fmt.Fprintf(w, "goal scale: session ratio with the scale store falls <= %.0f%% from 3 tenants (etcd): %.2fx vs %.2fx = %.3f  %s\n",
				goalScaleDrop*100, big, small, rel, verdict(rel >= 1-goalScaleDrop))
			if cpu := cpuRatio(s.summarize(labelSessionEtcd).best, s.summarize(labelSessionScale).best); cpu > 0 {
				fmt.Fprintf(w, "  (server CPU per call, 3 tenants/scale: %.3f)\n", cpu)
			}
		}
	}
	if p := s.populate; p != nil {
		fmt.Fprintf(w, "scale store: %d tenants and %d users (SSO members), written in %.1fs + %.1fs; snapshot build (open + first snapshot, a new Store): fastest %.0fms of %s\n",
			p.Tenants, p.Users, p.TenantSeconds, p.UserSeconds, slices.Min(p.BuildMs), fmtMs(p.BuildMs))
	}
	for _, r := range s.rss {
		fmt.Fprintf(w, "resident memory (VmRSS) of %s: %.1f MiB\n", r.Label, float64(r.KiB)/1024)
	}
	if p := s.propagate; p != nil && len(p.Ms) > 0 {
		ms := slices.Clone(p.Ms)
		fmt.Fprintf(w, "a tenant change reaches every replica (%d, etcd): median %.0fms, slowest %.0fms over %d changes (admin API call itself: median %.0fms)\n",
			p.Replicas, median(ms), slices.Max(p.Ms), len(p.Ms), median(slices.Clone(p.ApplyMs)))
	}
}

// cpuRatio is a's server CPU per call over b's, or 0 when unknown.
func cpuRatio(a, b *result) float64 {
	if a.ServerCPU <= 0 || b.ServerCPU <= 0 || a.Calls == 0 || b.Calls == 0 {
		return 0
	}
	return (a.ServerCPU / float64(a.Calls)) / (b.ServerCPU / float64(b.Calls))
}

// pairedMedians compares two cases run back to back in every round (in
// either order): the median over rounds of on/off QPS and of off/on server
// CPU per call. On a busy machine a round's load moves both runs alike, so
// the per-round ratio is steadier than the ratio of each case's best
// round.
func pairedMedians(off, on []*result) (qps, cpu float64) {
	var qs, cs []float64
	for i := range min(len(off), len(on)) {
		if off[i].QPS > 0 {
			qs = append(qs, on[i].QPS/off[i].QPS)
		}
		if c := cpuRatio(off[i], on[i]); c > 0 {
			cs = append(cs, c)
		}
	}
	return median(qs), median(cs)
}
