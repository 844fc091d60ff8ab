//go:build unix

package tlsfiles

import (
	"os"
	"syscall"
)

// fileID is the device and inode of fi: a file replaced by a rename (how
// cert-manager, secret volumes and Istio write) is a new inode even when
// its size and modification time happen to match the old one's.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
