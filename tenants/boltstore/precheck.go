package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's file format (version 2), as far as precheck needs it. Every page
// starts with a 16-byte header: id u64, flags u16, count u16, overflow u32.
// Pages 0 and 1 hold a meta record right after the header.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	metaSize         = 56 // magic … txid; the u64 checksum follows
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	noFreelist       = ^uint64(0)
)

type boltMeta struct {
	pageSize         uint32
	root, free, pgid uint64
	txid             uint64
}

// precheck reads the meta pages of an existing database file before bbolt
// maps it, and refuses a file whose live meta page points past the end of
// the file or at pages of the wrong kind. bbolt trusts those pointers: it
// would fault or panic reading them, and a panic inside bolt.Open leaves its
// memory map, and with it the file lock, behind. Files bbolt can refuse
// cleanly on its own (garbage meta pages) pass through to it.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return nil // bbolt initialises empty files
	}

	m0, ok0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize())
	if ok0 {
		pageSize = int64(m0.pageSize)
	}
	m1, ok1 := readMeta(f, pageSize)
	var m boltMeta
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
	case ok1:
		m = m1
	default:
		return nil // bbolt reports invalid meta pages itself
	}
	ps := int64(m.pageSize)
	if int64(m.pgid) < 2 || int64(m.pgid) > size/ps {
		return fmt.Errorf("file is truncated: %d bytes, its header needs %d pages of %d bytes", size, m.pgid, ps)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Errorf("root page %d is out of range", m.root)
	}
	if flags, _, ok := pageHeader(f, int64(m.root)*ps); !ok || (flags != leafPageFlag && flags != branchPageFlag) {
		return fmt.Errorf("root page %d is not a tree page", m.root)
	}
	if m.free != noFreelist {
		if m.free < 2 || m.free >= m.pgid {
			return fmt.Errorf("freelist page %d is out of range", m.free)
		}
		flags, overflow, ok := pageHeader(f, int64(m.free)*ps)
		if !ok || flags != freelistPageFlag || m.free+uint64(overflow) >= m.pgid {
			return fmt.Errorf("freelist page %d is damaged", m.free)
		}
	}
	return nil
}

// readMeta reads and validates the meta record of the page at off.
func readMeta(r io.ReaderAt, off int64) (boltMeta, bool) {
	var buf [pageHeaderSize + metaSize + 8]byte
	if _, err := r.ReadAt(buf[:], off); err != nil {
		return boltMeta{}, false
	}
	le := binary.NativeEndian
	meta := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(meta[:metaSize])
	if le.Uint32(meta[0:]) != boltMagic || le.Uint32(meta[4:]) != boltVersion || le.Uint64(meta[metaSize:]) != h.Sum64() {
		return boltMeta{}, false
	}
	m := boltMeta{
		pageSize: le.Uint32(meta[8:]),
		root:     le.Uint64(meta[16:]),
		free:     le.Uint64(meta[32:]),
		pgid:     le.Uint64(meta[40:]),
		txid:     le.Uint64(meta[48:]),
	}
	if m.pageSize < 512 || m.pageSize > 1<<16 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, false
	}
	return m, true
}

// pageHeader reads the flags and overflow count of the page at off.
func pageHeader(r io.ReaderAt, off int64) (flags uint16, overflow uint32, ok bool) {
	var buf [pageHeaderSize]byte
	if _, err := r.ReadAt(buf[:], off); err != nil {
		return 0, 0, false
	}
	return binary.NativeEndian.Uint16(buf[8:]), binary.NativeEndian.Uint32(buf[12:]), true
}
