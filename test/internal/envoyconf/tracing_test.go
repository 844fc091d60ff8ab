package envoyconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTracingConfigMatchesFrontProxy keeps envoy-tracing.yaml from
// drifting from envoy.yaml: without its comments, the connection manager's
// tracing block and the otel_collector cluster, it is envoy.yaml line for
// line, and it keeps the default ports the tests rewrite.
func TestTracingConfigMatchesFrontProxy(t *testing.T) {
	lines := func(name string) []string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", name))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if trimmed := strings.TrimSpace(l); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				out = append(out, l)
			}
		}
		return out
	}
	front, tracing := lines("envoy.yaml"), lines("envoy-tracing.yaml")
	// cut drops the block that starts with the line start: it and every
	// following line indented deeper than it.
	cut := func(ls []string, start string) []string {
		t.Helper()
		indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
		for i, l := range ls {
			if l != start {
				continue
			}
			j := i + 1
			for j < len(ls) && indent(ls[j]) > indent(l) {
				j++
			}
			return append(ls[:i:i], ls[j:]...)
		}
		t.Fatalf("envoy-tracing.yaml has no line %q", start)
		return nil
	}
	rest := cut(cut(tracing, "                tracing:"), "    - name: otel_collector")
	for i := range max(len(front), len(rest)) {
		var f, g string
		if i < len(front) {
			f = front[i]
		}
		if i < len(rest) {
			g = rest[i]
		}
		if f != g {
			t.Fatalf("envoy-tracing.yaml differs from envoy.yaml outside its tracing block and collector cluster, first at\n envoy.yaml:         %q\n envoy-tracing.yaml: %q", f, g)
		}
	}
	cfg, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "envoy-tracing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RewritePorts(cfg, map[int]int{8080: 18080, 9001: 19001, 9002: 19002, 8081: 18081, 4317: 14317}); err != nil {
		t.Error(err)
	}
}
