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
	v := &pageVerifier{r: f, pageSize: ps, hwm: m.pgid, used: map[uint64]bool{0: true, 1: true}, free: map[uint64]bool{}}
	if m.free != noFreelist {
		if err := v.freelist(m.free); err != nil {
			return err
		}
	}
	return v.tree(m.root, 0)
}

// Page layout constants: elements follow the page header, 16 bytes each
// (branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32,
// vsize u32), with pos counted from the element itself. A leaf element
// flagged as a bucket holds {root pgid u64, sequence u64}, followed by the
// bucket's own page when root is 0 (an inline bucket).
const (
	elementSize    = 16
	bucketLeafFlag = 0x01
	bucketHeader   = 16
	maxTreeDepth   = 64
)

// pageVerifier walks bbolt's page structure straight from the file, so that
// nothing bbolt will later trust blindly (page ids, element offsets, counts)
// points outside the file, at a page used twice, or round in a cycle.
type pageVerifier struct {
	r        io.ReaderAt
	pageSize int64
	hwm      uint64
	used     map[uint64]bool
	free     map[uint64]bool
}

// read returns the whole page id, overflow pages included, after checking
// that it lies below the high-water mark and is claimed only once.
func (v *pageVerifier) read(id uint64, what string) ([]byte, error) {
	if id < 2 || id >= v.hwm {
		return nil, fmt.Errorf("%s page %d is out of range", what, id)
	}
	_, overflow, ok := pageHeader(v.r, int64(id)*v.pageSize)
	if !ok {
		return nil, fmt.Errorf("%s page %d cannot be read", what, id)
	}
	if uint64(overflow) >= v.hwm-id {
		return nil, fmt.Errorf("%s page %d claims %d overflow pages past the end", what, id, overflow)
	}
	for i := id; i <= id+uint64(overflow); i++ {
		if v.used[i] {
			return nil, fmt.Errorf("page %d is referenced twice", i)
		}
		v.used[i] = true
	}
	buf := make([]byte, (1+int64(overflow))*v.pageSize)
	if _, err := v.r.ReadAt(buf, int64(id)*v.pageSize); err != nil {
		return nil, fmt.Errorf("%s page %d cannot be read: %v", what, id, err)
	}
	return buf, nil
}

func (v *pageVerifier) freelist(id uint64) error {
	buf, err := v.read(id, "freelist")
	if err != nil {
		return err
	}
	le := binary.NativeEndian
	if le.Uint16(buf[8:]) != freelistPageFlag {
		return fmt.Errorf("freelist page %d has the wrong type", id)
	}
	start, count := uint64(pageHeaderSize), uint64(le.Uint16(buf[10:]))
	if count == 0xFFFF {
		count = le.Uint64(buf[pageHeaderSize:])
		start += 8
	}
	if count > (uint64(len(buf))-start)/8 {
		return fmt.Errorf("freelist page %d claims %d entries", id, count)
	}
	for i := range count {
		p := le.Uint64(buf[start+8*i:])
		if p < 2 || p >= v.hwm {
			return fmt.Errorf("freelist names page %d, out of range", p)
		}
		v.free[p] = true
	}
	return nil
}

// tree checks the bucket tree rooted at page id.
func (v *pageVerifier) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d levels", id, maxTreeDepth)
	}
	if v.free[id] {
		return fmt.Errorf("page %d is in use and free", id)
	}
	buf, err := v.read(id, "tree")
	if err != nil {
		return err
	}
	return v.page(buf, id, depth)
}

// page checks one branch or leaf page held in buf (a page read from the
// file, or an inline bucket's page inside a value).
func (v *pageVerifier) page(buf []byte, id uint64, depth int) error {
	le := binary.NativeEndian
	if len(buf) < pageHeaderSize {
		return fmt.Errorf("page %d: shorter than its header", id)
	}
	flags, count := le.Uint16(buf[8:]), int(le.Uint16(buf[10:]))
	if pageHeaderSize+count*elementSize > len(buf) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	for i := range count {
		e := pageHeaderSize + i*elementSize
		pos, ksize := int64(le.Uint32(buf[e+4:])), int64(le.Uint32(buf[e+8:]))
		switch flags {
		case branchPageFlag:
			pos, ksize = int64(le.Uint32(buf[e:])), int64(le.Uint32(buf[e+4:]))
			if int64(e)+pos+ksize > int64(len(buf)) {
				return fmt.Errorf("page %d: branch key %d lies outside the page", id, i)
			}
			if err := v.tree(le.Uint64(buf[e+8:]), depth+1); err != nil {
				return err
			}
		case leafPageFlag:
			vsize := int64(le.Uint32(buf[e+12:]))
			end := int64(e) + pos + ksize + vsize
			if end > int64(len(buf)) {
				return fmt.Errorf("page %d: leaf entry %d lies outside the page", id, i)
			}
			if le.Uint32(buf[e:])&bucketLeafFlag == 0 {
				continue
			}
			val := buf[int64(e)+pos+ksize : end]
			if len(val) < bucketHeader {
				return fmt.Errorf("page %d: bucket entry %d is too short", id, i)
			}
			if root := le.Uint64(val); root != 0 {
				if err := v.tree(root, depth+1); err != nil {
					return err
				}
			} else if err := v.page(val[bucketHeader:], id, depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("page %d: not a tree page (flags %#x)", id, flags)
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
