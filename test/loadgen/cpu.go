package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat and /proc/stat:
// fixed at 100 by the Linux ABI (USER_HZ), whatever the kernel's HZ.
const userHZ = 100

// cpuSample is a reading of the CPU clocks a run compares before and after.
// A negative field was not readable (another OS, or no such process).
type cpuSample struct {
	server, self float64 // CPU seconds (user + system) of the server and of this process
	busy, total  float64 // machine-wide busy and total CPU seconds (/proc/stat)
}

func readCPU(serverPID int) cpuSample {
	s := cpuSample{server: -1, self: -1, busy: -1, total: -1}
	if serverPID > 0 {
		if v, err := procCPU(serverPID); err == nil {
			s.server = v
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = tv(ru.Utime) + tv(ru.Stime)
	}
	if b, t, err := machineCPU(); err == nil {
		s.busy, s.total = b, t
	}
	return s
}

// since returns the server's and this process's CPU seconds between two
// samples (-1 when unknown) and the fraction of the machine that was busy.
func (s cpuSample) since(before cpuSample) (server, self, busy float64) {
	diff := func(a, b float64) float64 {
		if a < 0 || b < 0 {
			return -1
		}
		return a - b
	}
	server, self = diff(s.server, before.server), diff(s.self, before.self)
	busy = -1
	if t := diff(s.total, before.total); t > 0 {
		busy = diff(s.busy, before.busy) / t
	}
	return server, self, busy
}

func tv(t syscall.Timeval) float64 {
	return float64(t.Sec) + float64(t.Usec)/float64(time.Second/time.Microsecond)
}

// procCPU reads utime+stime of a whole process (all threads) from
// /proc/<pid>/stat (proc(5): fields 14 and 15).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("read cpu time of pid %d: unexpected /proc format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu time of pid %d: unexpected /proc format", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: unexpected /proc format", pid)
	}
	return float64(utime+stime) / userHZ, nil
}

// machineCPU reads the busy and total CPU seconds of all CPUs from the first
// line of /proc/stat; idle and iowait count as not busy.
func machineCPU() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read machine cpu time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("read machine cpu time: unexpected /proc/stat format")
	}
	var idle, sum uint64
	// user nice system idle iowait irq softirq steal (guest time is already in user).
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read machine cpu time: unexpected /proc/stat format")
		}
		sum += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return float64(sum-idle) / userHZ, float64(sum) / userHZ, nil
}
