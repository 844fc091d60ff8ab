package freeport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestGet(t *testing.T) {
	lo, hi, ok := pool()
	if !ok {
		t.Skip("no room outside the ephemeral range on this machine: Get falls back to the kernel's ports")
	}
	seen := map[int]bool{}
	for range 20 {
		p, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if p < lo || p >= hi {
			t.Fatalf("port %d outside the pool [%d, %d)", p, lo, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		// Reserved: another process (here another open file) cannot take it.
		if f, err := reserve(filepath.Join(os.TempDir(), "tenantgate-test-ports"), p); err == nil {
			f.Close()
			t.Fatalf("port %d is not locked against other test processes", p)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d cannot be bound: %v", p, err)
		}
		ln.Close()
	}
}
