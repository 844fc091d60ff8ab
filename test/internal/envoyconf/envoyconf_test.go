package envoyconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewritePorts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ports   map[int]int
		want    string
		wantErr string
	}{
		{
			name:  "rewrites only matching port_value lines",
			in:    "a:\n  port_value: 8080\n  timeout: 8080s\n# port_value: 8080 in a comment\n  - port_value: 9001 # grpc\n  port_value: 7000\n",
			ports: map[int]int{8080: 1234, 9001: 5678},
			want:  "a:\n  port_value: 1234\n  timeout: 8080s\n# port_value: 8080 in a comment\n  - port_value: 5678 # grpc\n  port_value: 7000\n",
		},
		{
			name:  "every occurrence",
			in:    "port_value: 80\nport_value: 80\n",
			ports: map[int]int{80: 81},
			want:  "port_value: 81\nport_value: 81\n",
		},
		{
			name:    "missing port is an error",
			in:      "port_value: 8080\n",
			ports:   map[int]int{8080: 1, 9002: 2, 9001: 3},
			wantErr: "[9001 9002]",
		},
		{
			name:    "a longer number is not a match",
			in:      "port_value: 80800\n",
			ports:   map[int]int{8080: 1},
			wantErr: "[8080]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RewritePorts([]byte(tc.in), tc.ports)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestShippedConfigHasDefaultPorts keeps envoy/envoy.yaml rewritable: each
// default port the tests replace is on a port_value line of its own.
func TestShippedConfigHasDefaultPorts(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RewritePorts(cfg, map[int]int{8080: 18080, 9001: 19001, 9002: 19002, 8081: 18081})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"8080", "9001", "9002", "8081"} {
		if strings.Contains(string(out), "port_value: "+p+"\n") {
			t.Errorf("port %s left in the rewritten config", p)
		}
	}
}

// TestShippedInlineConfigHasDefaultPorts keeps envoy/envoy-inline.yaml
// rewritable, and holds it to inline mode's promise: nothing in it points at
// tenantgate's HTTP port.
func TestShippedInlineConfigHasDefaultPorts(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "envoy-inline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RewritePorts(cfg, map[int]int{8080: 18080, 9001: 19001, 8081: 18081})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"8080", "9001", "8081", "9002"} {
		if strings.Contains(string(out), "port_value: "+p+"\n") {
			t.Errorf("port %s left in the rewritten config", p)
		}
	}
	if strings.Contains(string(cfg), "tenantgate_http") {
		t.Error("envoy-inline.yaml routes to tenantgate's HTTP port")
	}
}

// TestInlineConfigMatchesFrontProxy keeps envoy-inline.yaml from drifting
// from envoy.yaml: everything up to the routes (listener, connection
// manager, filters, ext_authz) must be the same settings, comments aside.
// Only routes and clusters may differ.
func TestInlineConfigMatchesFrontProxy(t *testing.T) {
	shared := func(name string) []string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		from, to := strings.Index(s, "\nstatic_resources:"), strings.Index(s, "\n                      routes:")
		if from < 0 || to < from {
			t.Fatalf("%s: no static_resources … routes: section", name)
		}
		var lines []string
		for _, l := range strings.Split(s[from:to], "\n") {
			if trimmed := strings.TrimSpace(l); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	front, inline := shared("envoy.yaml"), shared("envoy-inline.yaml")
	if strings.Join(front, "\n") != strings.Join(inline, "\n") {
		for i := range max(len(front), len(inline)) {
			var f, g string
			if i < len(front) {
				f = front[i]
			}
			if i < len(inline) {
				g = inline[i]
			}
			if f != g {
				t.Fatalf("envoy-inline.yaml differs from envoy.yaml before the routes, first at\n envoy.yaml:        %q\n envoy-inline.yaml: %q", f, g)
			}
		}
	}
}

// TestShippedMTLSConfigHasDefaultPorts keeps envoy/envoy-mtls.yaml
// rewritable, like envoy.yaml.
func TestShippedMTLSConfigHasDefaultPorts(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "envoy-mtls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RewritePorts(cfg, map[int]int{8080: 18080, 9001: 19001, 9002: 19002, 8081: 18081})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"8080", "9001", "9002", "8081"} {
		if strings.Contains(string(out), "port_value: "+p+"\n") {
			t.Errorf("port %s left in the rewritten config", p)
		}
	}
}

// TestMTLSConfigMatchesFrontProxy keeps envoy-mtls.yaml from drifting from
// envoy.yaml: without its comments and the one transport_socket block of
// the tenantgate_grpc cluster, it is envoy.yaml line for line.
func TestMTLSConfigMatchesFrontProxy(t *testing.T) {
	settings := func(name string) []string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", name))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if trimmed := strings.TrimSpace(l); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	front, mtls := settings("envoy.yaml"), settings("envoy-mtls.yaml")

	// Cut the cluster-level transport_socket block out of envoy-mtls.yaml,
	// checking it is the tenantgate_grpc cluster's.
	const block = "      transport_socket:"
	var rest []string
	cluster, blocks := "", 0
	for i := 0; i < len(mtls); i++ {
		if name, ok := strings.CutPrefix(mtls[i], "    - name: "); ok {
			cluster = name
		}
		if mtls[i] != block {
			rest = append(rest, mtls[i])
			continue
		}
		blocks++
		if cluster != "tenantgate_grpc" {
			t.Errorf("envoy-mtls.yaml: transport_socket in cluster %q, want only in tenantgate_grpc", cluster)
		}
		for i+1 < len(mtls) && strings.HasPrefix(mtls[i+1], block[:len(block)-len("transport_socket:")]+" ") {
			i++
		}
	}
	if blocks != 1 {
		t.Fatalf("envoy-mtls.yaml has %d cluster-level transport_socket blocks, want 1", blocks)
	}
	for i := range max(len(front), len(rest)) {
		var f, g string
		if i < len(front) {
			f = front[i]
		}
		if i < len(rest) {
			g = rest[i]
		}
		if f != g {
			t.Fatalf("envoy-mtls.yaml differs from envoy.yaml outside tenantgate_grpc's transport_socket, first at\n envoy.yaml:      %q\n envoy-mtls.yaml: %q", f, g)
		}
	}
}
