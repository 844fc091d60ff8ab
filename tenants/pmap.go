package tenants

import (
	"hash/maphash"
	"iter"
	"math/bits"
	"slices"
)

// pmap is a persistent hash map: a value of it never changes, and an edit
// makes a new map that shares all but O(log n) nodes with the old one (a hash
// array mapped trie, Bagwell 2001, with path copying). It is how a Snapshot
// takes one more revocation or membership without copying the others, while
// every Snapshot already published stays exactly as it was. A lookup walks
// at most 13 nodes (a 64-bit hash, 5 bits a level) and allocates nothing.
// The zero value is an empty map.
type pmap[K pkey, V any] struct {
	root *pnode[K, V]
	n    int
	// seed keys the hash; every map derived from one shares its seed.
	seed maphash.Seed
}

// pkey is what a pmap can be keyed on: a comparable value that hashes itself
// without allocating.
type pkey interface {
	comparable
	hash(seed maphash.Seed) uint64
}

// pnode is an inner node: one slot for each set bit of bitmap, in bit order.
type pnode[K pkey, V any] struct {
	// owner is the edit that made this node; that edit, and only it, may
	// change the node in place, since nothing published holds it yet.
	owner  *pedit[K, V]
	bitmap uint32
	slots  []pslot[K, V]
}

// pslot is a subtree (node set) or a leaf.
type pslot[K pkey, V any] struct {
	node *pnode[K, V]
	leaf *pleaf[K, V]
}

// pleaf holds the entries whose keys share one whole hash: nearly always
// one. A leaf is never changed; an edit replaces it.
type pleaf[K pkey, V any] struct {
	hash    uint64
	entries []pentry[K, V]
}

type pentry[K pkey, V any] struct {
	key K
	val V
}

// levelBits is how many hash bits choose a slot at each level.
const levelBits = 5

// slotBit is the bitmap bit of the slot that hash h takes at shift.
func slotBit(h uint64, shift uint) uint32 { return 1 << ((h >> shift) & (1<<levelBits - 1)) }

// slotIndex is the position in slots of the slot with bit.
func slotIndex(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

// len is the number of entries.
func (m pmap[K, V]) len() int { return m.n }

// get returns the value stored under k.
func (m pmap[K, V]) get(k K) (V, bool) {
	var zero V
	n := m.root
	if n == nil {
		return zero, false
	}
	h := k.hash(m.seed)
	for shift := uint(0); ; shift += levelBits {
		bit := slotBit(h, shift)
		if n.bitmap&bit == 0 {
			return zero, false
		}
		s := n.slots[slotIndex(n.bitmap, bit)]
		if s.node != nil {
			n = s.node
			continue
		}
		if s.leaf.hash != h {
			return zero, false
		}
		for _, e := range s.leaf.entries {
			if e.key == k {
				return e.val, true
			}
		}
		return zero, false
	}
}

// all yields every entry, in no particular order.
func (m pmap[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if m.root != nil {
			m.root.walk(yield)
		}
	}
}

func (n *pnode[K, V]) walk(yield func(K, V) bool) bool {
	for _, s := range n.slots {
		if s.node != nil {
			if !s.node.walk(yield) {
				return false
			}
			continue
		}
		for _, e := range s.leaf.entries {
			if !yield(e.key, e.val) {
				return false
			}
		}
	}
	return true
}

// pedit is one batch of changes to a pmap. Nodes it creates are its own and
// are changed in place by its later changes, so a batch of k changes copies
// each node on their paths once, not k times; a batch loading n entries
// into an empty map costs O(n). Nodes of the map it started from are copied
// before they change. An edit is used by one goroutine and not after done.
type pedit[K pkey, V any] struct {
	m    pmap[K, V]
	done bool
}

// edit starts a batch of changes to m; m itself never changes.
func (m pmap[K, V]) edit() *pedit[K, V] {
	if m.seed == (maphash.Seed{}) {
		m.seed = maphash.MakeSeed()
	}
	return &pedit[K, V]{m: m}
}

// finish returns the edited map. The edit must not be used again: the nodes
// it owned now belong to a map others may read. The edit lets go of the map,
// so that the nodes naming it as owner keep no old version alive.
func (e *pedit[K, V]) finish() pmap[K, V] {
	m := e.m
	e.m, e.done = pmap[K, V]{}, true
	return m
}

// own returns n itself when this edit made it, else a copy this edit owns.
func (e *pedit[K, V]) own(n *pnode[K, V]) *pnode[K, V] {
	if n.owner == e {
		return n
	}
	return &pnode[K, V]{owner: e, bitmap: n.bitmap, slots: slices.Clone(n.slots)}
}

// set stores v under k, replacing any value there.
func (e *pedit[K, V]) set(k K, v V) {
	if e.done {
		panic("tenants: pmap edit used after finish")
	}
	root := e.m.root
	if root == nil {
		root = &pnode[K, V]{owner: e}
	}
	h := k.hash(e.m.seed)
	root, added := e.setIn(root, 0, h, k, v)
	e.m.root = root
	if added {
		e.m.n++
	}
}

func (e *pedit[K, V]) setIn(n *pnode[K, V], shift uint, h uint64, k K, v V) (*pnode[K, V], bool) {
	bit := slotBit(h, shift)
	i := slotIndex(n.bitmap, bit)
	leaf := func() *pleaf[K, V] { return &pleaf[K, V]{hash: h, entries: []pentry[K, V]{{k, v}}} }
	if n.bitmap&bit == 0 {
		n = e.own(n)
		n.bitmap |= bit
		n.slots = slices.Insert(n.slots, i, pslot[K, V]{leaf: leaf()})
		return n, true
	}
	s := n.slots[i]
	added := false
	switch {
	case s.node != nil:
		var child *pnode[K, V]
		child, added = e.setIn(s.node, shift+levelBits, h, k, v)
		if child == s.node {
			return n, added // changed in place below
		}
		s = pslot[K, V]{node: child}
	case s.leaf.hash == h:
		entries := slices.Clone(s.leaf.entries)
		j := slices.IndexFunc(entries, func(en pentry[K, V]) bool { return en.key == k })
		if j >= 0 {
			entries[j].val = v
		} else {
			entries = append(entries, pentry[K, V]{k, v})
			added = true
		}
		s = pslot[K, V]{leaf: &pleaf[K, V]{hash: h, entries: entries}}
	default:
		s = pslot[K, V]{node: e.split(shift+levelBits, s.leaf, leaf())}
		added = true
	}
	n = e.own(n)
	n.slots[i] = s
	return n, added
}

// split makes the subtree at shift that holds two leaves whose hashes agree
// on every level above shift and differ somewhere at or below it (so the
// recursion ends by shift 60).
func (e *pedit[K, V]) split(shift uint, a, b *pleaf[K, V]) *pnode[K, V] {
	n := &pnode[K, V]{owner: e}
	ba, bb := slotBit(a.hash, shift), slotBit(b.hash, shift)
	if ba == bb {
		n.bitmap = ba
		n.slots = []pslot[K, V]{{node: e.split(shift+levelBits, a, b)}}
		return n
	}
	n.bitmap = ba | bb
	if ba < bb {
		n.slots = []pslot[K, V]{{leaf: a}, {leaf: b}}
	} else {
		n.slots = []pslot[K, V]{{leaf: b}, {leaf: a}}
	}
	return n
}

// delete removes k, if it is there.
func (e *pedit[K, V]) delete(k K) {
	if e.done {
		panic("tenants: pmap edit used after finish")
	}
	if e.m.root == nil {
		return
	}
	root, removed := e.deleteIn(e.m.root, 0, k.hash(e.m.seed), k)
	e.m.root = root
	if removed {
		e.m.n--
	}
}

// deleteIn returns n without k (nil when nothing is left) and whether k was
// there. A subtree left with a single leaf is replaced by that leaf, so
// deletes undo the depth inserts added.
func (e *pedit[K, V]) deleteIn(n *pnode[K, V], shift uint, h uint64, k K) (*pnode[K, V], bool) {
	bit := slotBit(h, shift)
	if n.bitmap&bit == 0 {
		return n, false
	}
	i := slotIndex(n.bitmap, bit)
	s := n.slots[i]
	var repl pslot[K, V]
	switch {
	case s.node != nil:
		child, removed := e.deleteIn(s.node, shift+levelBits, h, k)
		if !removed {
			return n, false
		}
		switch {
		case child == nil:
		case len(child.slots) == 1 && child.slots[0].leaf != nil:
			repl = child.slots[0]
		default:
			repl = pslot[K, V]{node: child}
		}
	case s.leaf.hash == h:
		j := slices.IndexFunc(s.leaf.entries, func(en pentry[K, V]) bool { return en.key == k })
		if j < 0 {
			return n, false
		}
		if len(s.leaf.entries) > 1 {
			repl = pslot[K, V]{leaf: &pleaf[K, V]{hash: h, entries: slices.Delete(slices.Clone(s.leaf.entries), j, j+1)}}
		}
	default:
		return n, false
	}
	if repl.node == nil && repl.leaf == nil {
		if len(n.slots) == 1 {
			return nil, true
		}
		n = e.own(n)
		n.bitmap &^= bit
		n.slots = slices.Delete(n.slots, i, i+1)
		return n, true
	}
	n = e.own(n)
	n.slots[i] = repl
	return n, true
}
