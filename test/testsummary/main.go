// Command testsummary reads `go test -json` on its standard input, writes
// what `go test` without -json would have shown, and ends with how many
// tests of the named packages ran and how many were skipped, and which
// tests of any package were skipped and why: an end-to-end test without its
// tool skips, and a run that skipped them must not read as a pass of them.
//
// Usage:
//
//	set -o pipefail; go test -json ./... | go run ./test/testsummary $(go list ./test ./test/browser)
//
// Shown as it arrives: the result line of every package, the output of every
// failed test (failed subtests and their logs indented under their parent,
// as go test prints them), build errors, and everything a package printed
// outside its tests (a panic, a timeout). The counts are of top-level tests:
// ran is passed plus failed; a package named but absent from the input is
// reported as not run. It exits 1 if any test, package or build failed, so
// with pipefail the pipeline fails when go test does.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
)

func main() {
	s := newSummary(os.Stdout, os.Args[1:])
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	s.report()
	if s.failed {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// frame matches the lines go test -v writes around a test's own output:
// === RUN, PAUSE, CONT, NAME and the --- PASS, FAIL or SKIP result.
var frame = regexp.MustCompile(`^\s*(===|---) (RUN|PAUSE|CONT|NAME|PASS|FAIL|SKIP)\b`)

// summary follows a stream of events for one report.
type summary struct {
	out    io.Writer
	named  []string // packages to count, in the order given
	pkgs   map[string]*pkg
	failed bool // a test, a package or a build failed
}

// pkg is what a package's events have said so far.
type pkg struct {
	passed, failed, skipped int
	skips                   []string // "TestName: reason"
	running                 map[string]*topTest
}

// topTest collects the output of one top-level test and its subtests until
// it ends, for printing if it fails.
type topTest struct {
	order  []string            // the test and its subtests, as they started
	lines  map[string][]string // each one's output, without frames
	result map[string]string   // each one's "--- FAIL: …" line, once ended
	failed map[string]bool
}

func newSummary(out io.Writer, named []string) *summary {
	return &summary{out: out, named: named, pkgs: map[string]*pkg{}}
}

// read handles every line of r: events, and anything else (which go test
// writes when it cannot run at all) passed on as it is.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if !strings.HasPrefix(sc.Text(), "{") || json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Fprintln(s.out, sc.Text())
			continue
		}
		s.handle(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read go test -json: %w", err)
	}
	return nil
}

func (s *summary) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
		return
	case "build-fail":
		s.failed = true
		return
	}
	p := s.pkgs[e.Package]
	if p == nil {
		p = &pkg{running: map[string]*topTest{}}
		s.pkgs[e.Package] = p
	}
	if e.Test == "" {
		s.packageEvent(p, e)
		return
	}
	top, _, _ := strings.Cut(e.Test, "/")
	tt := p.running[top]
	if tt == nil {
		tt = &topTest{lines: map[string][]string{}, result: map[string]string{}, failed: map[string]bool{}}
		p.running[top] = tt
	}
	switch e.Action {
	case "run":
		tt.order = append(tt.order, e.Test)
	case "output":
		if m := frame.FindStringSubmatch(e.Output); m != nil {
			if m[1] == "---" {
				tt.result[e.Test] = strings.TrimLeft(e.Output, " ")
			}
			return
		}
		tt.lines[e.Test] = append(tt.lines[e.Test], e.Output)
	case "fail":
		tt.failed[e.Test] = true
	}
	if e.Test != top {
		return
	}
	switch e.Action {
	case "pass":
		p.passed++
	case "fail":
		p.failed++
		s.failed = true
		tt.print(s.out)
	case "skip":
		p.skipped++
		p.skips = append(p.skips, top+": "+skipReason(tt.lines[top]))
	default:
		return
	}
	delete(p.running, top)
}

// packageEvent handles what a package says outside its tests. go test
// without -v shows none of it for a passing package but its ok line.
func (s *summary) packageEvent(p *pkg, e event) {
	switch e.Action {
	case "output":
		if e.Output != "PASS\n" {
			fmt.Fprint(s.out, e.Output)
		}
	case "fail":
		s.failed = true
		// Tests still running when the package failed (a panic, a
		// timeout): all they said may explain it.
		for top, tt := range p.running {
			for _, name := range tt.order {
				fmt.Fprint(s.out, strings.Join(tt.lines[name], ""))
			}
			delete(p.running, top)
		}
	}
}

// print writes a failed top-level test as go test without -v does: each
// failed test's result line, then its output, indented by its depth.
func (tt *topTest) print(w io.Writer) {
	for _, name := range tt.order {
		if !tt.failed[name] {
			continue
		}
		indent := strings.Repeat("    ", strings.Count(name, "/"))
		fmt.Fprint(w, indent+tt.result[name])
		for _, l := range tt.lines[name] {
			if strings.HasPrefix(l, "    ") { // t.Log and t.Error lines
				l = indent + l
			}
			fmt.Fprint(w, l)
		}
	}
}

// logPrefix is the file:line go test puts before t.Log output.
var logPrefix = regexp.MustCompile(`^\s*\S+\.go:\d+: `)

// skipReason is the last line a skipped test logged (what t.Skip said),
// without its file:line.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(logPrefix.ReplaceAllString(lines[i], "")); l != "" {
			return l
		}
	}
	return "(no reason given)"
}

// report writes the counts of the named packages, every skipped test with
// its reason, and the counts of all packages.
func (s *summary) report() {
	if len(s.named) > 0 {
		fmt.Fprintln(s.out, "\ntop-level tests (ran = passed + failed):")
		tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "ran\tpassed\tfailed\tskipped\t\tpackage")
		for _, name := range s.named {
			if p := s.pkgs[name]; p != nil {
				fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\t%s\n", p.passed+p.failed, p.passed, p.failed, p.skipped, name)
			} else {
				fmt.Fprintf(tw, "-\t-\t-\t-\t\t%s (not run)\n", name)
			}
		}
		tw.Flush()
	}
	var all pkg
	for _, name := range slices.Sorted(maps.Keys(s.pkgs)) {
		p := s.pkgs[name]
		all.passed += p.passed
		all.failed += p.failed
		all.skipped += p.skipped
		for _, sk := range p.skips {
			fmt.Fprintf(s.out, "skipped %s.%s\n", name, sk)
		}
	}
	fmt.Fprintf(s.out, "all packages: %d top-level tests ran (%d passed, %d failed), %d skipped\n",
		all.passed+all.failed, all.passed, all.failed, all.skipped)
}
