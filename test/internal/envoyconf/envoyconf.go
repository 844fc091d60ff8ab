// Package envoyconf adapts the shipped envoy/envoy.yaml for tests and
// benchmarks that must not use its fixed default ports.
package envoyconf

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
)

// portLine matches a YAML line that holds only a port_value (with optional
// indentation, list marker and trailing comment), capturing the number.
var portLine = regexp.MustCompile(`(?m)^(\s*(?:-\s+)?port_value:\s*)(\d+)(\s*(?:#.*)?)$`)

// RewritePorts returns config with every `port_value: N` line whose N is a key
// of ports changed to ports[N]. Only whole lines of that form are touched, so a
// number elsewhere (a timeout, a comment, another field) never changes. It
// fails, naming the port, if a key of ports occurs on no such line: a config
// that stopped using a default port must not silently keep a fixed one.
func RewritePorts(config []byte, ports map[int]int) ([]byte, error) {
	seen := make(map[int]bool, len(ports))
	out := portLine.ReplaceAllFunc(config, func(line []byte) []byte {
		m := portLine.FindSubmatch(line)
		n, err := strconv.Atoi(string(m[2]))
		if err != nil {
			return line
		}
		to, ok := ports[n]
		if !ok {
			return line
		}
		seen[n] = true
		return bytes.Join([][]byte{m[1], []byte(strconv.Itoa(to)), m[3]}, nil)
	})
	var missing []int
	for from := range ports {
		if !seen[from] {
			missing = append(missing, from)
		}
	}
	if len(missing) > 0 {
		sort.Ints(missing)
		return nil, fmt.Errorf("rewrite envoy ports: no `port_value: N` line for %v", missing)
	}
	return out, nil
}
