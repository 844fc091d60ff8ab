// Package freeport hands out TCP ports on 127.0.0.1 for servers a test
// starts later: child processes, and configs written before they start.
//
// A port the kernel picked (listen on port 0, then close) is back in the
// ephemeral range the moment it is closed, and the kernel hands that range
// to every other socket on the machine: an outgoing connection of a
// parallel test package, another test's httptest server. Whoever gets it
// first leaves the child that was promised it with "address already in
// use" (seen in CI: an etcd-backed replica, a browser test's tenantgate).
// So the ports come from below the ephemeral range, which the kernel never
// assigns on its own, and each is reserved machine-wide for the life of
// the test process by a lock on a file named for it: two test processes
// never get the same port, and a port is never handed out twice by one.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// lowest is the first port of the pool below the ephemeral range.
const lowest = 10000

var (
	mu sync.Mutex
	// held are the lock files of the ports handed out: open until the
	// process exits, when the kernel drops the locks.
	held = map[int]*os.File{}
)

// Get returns a port on 127.0.0.1 that is free now, outside the kernel's
// ephemeral range, and reserved for this process until it exits.
func Get() (int, error) {
	lo, hi, ok := pool()
	if !ok {
		return kernelPort() // no room below or above the ephemeral range
	}
	dir := filepath.Join(os.TempDir(), "tenantgate-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 500 {
		p := lo + rand.IntN(hi-lo)
		if held[p] != nil {
			continue
		}
		f, err := reserve(dir, p)
		if err != nil {
			continue // another test process holds it
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			f.Close() // something that is not a test listens there
			continue
		}
		ln.Close()
		held[p] = f
		return p, nil
	}
	return 0, errors.New("freeport: no free port after 500 tries")
}

// reserve takes the machine-wide lock of port p, without waiting.
func reserve(dir string, p int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// pool is the range [lo, hi) ports come from: below the ephemeral range
// (net.ipv4.ip_local_port_range, 32768–60999 by default), else above it.
func pool() (lo, hi int, ok bool) {
	first, last := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, errA := strconv.Atoi(f[0])
			z, errZ := strconv.Atoi(f[1])
			if errA == nil && errZ == nil {
				first, last = a, z
			}
		}
	}
	if first-lowest >= 1000 {
		return lowest, first, true
	}
	if 65535-last >= 1000 {
		return last + 1, 65536, true
	}
	return 0, 0, false
}

// kernelPort is a port the kernel picked that was free a moment ago.
func kernelPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
