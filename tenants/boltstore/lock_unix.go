//go:build unix

package boltstore

import (
	"errors"
	"os"
	"syscall"
)

// lockedElsewhere reports whether another open file description (another
// process, or another Store in this one) holds bbolt's exclusive lock on
// path. It takes the lock for an instant when it is free.
func lockedElsewhere(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	return false
}
