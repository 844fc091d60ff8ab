//go:build !unix

package boltstore

// lockedElsewhere cannot ask the operating system on this platform; bbolt's
// own lock still keeps a second writer out.
func lockedElsewhere(string) bool { return false }
