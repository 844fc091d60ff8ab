package tenants

import (
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"testing"
)

// weakKey hashes to one of a few values, so that whole-hash collisions
// (several keys in one leaf) and long shared prefixes get exercised.
type weakKey struct {
	name string
	h    uint64
}

func (k weakKey) hash(maphash.Seed) uint64 { return k.h }

// TestPmapMatchesMap applies random batches of sets and deletes to a pmap
// and to a Go map, and checks after every batch that they hold the same
// entries and that every earlier version still holds what it held.
func TestPmapMatchesMap(t *testing.T) {
	hashes := []uint64{0, 1, 1 << 60, 1<<60 | 1, 0xffffffffffffffff, 0x8000000000000000, 0x21, 0x21 << 5}
	for _, tc := range []struct {
		name string
		key  func(i int) weakKey
	}{
		{"distinct hashes", func(i int) weakKey {
			return weakKey{fmt.Sprint(i), maphash.String(maphash.MakeSeed(), fmt.Sprint(i))}
		}},
		{"colliding hashes", func(i int) weakKey { return weakKey{fmt.Sprint(i), hashes[i%len(hashes)]} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			keys := make([]weakKey, 300)
			for i := range keys {
				keys[i] = tc.key(i)
			}
			var m pmap[weakKey, int]
			want := map[weakKey]int{}
			type version struct {
				m    pmap[weakKey, int]
				want map[weakKey]int
			}
			var versions []version
			for round := range 200 {
				e := m.edit()
				for range rng.IntN(20) + 1 {
					k := keys[rng.IntN(len(keys))]
					if rng.IntN(3) == 0 {
						e.delete(k)
						delete(want, k)
					} else {
						e.set(k, round)
						want[k] = round
					}
				}
				m = e.finish()
				versions = append(versions, version{m, maps.Clone(want)})
			}
			for i, v := range versions {
				if got := maps.Collect(v.m.all()); !maps.Equal(got, v.want) || v.m.len() != len(v.want) {
					t.Fatalf("version %d: %d entries (len %d), want %d", i, len(got), v.m.len(), len(v.want))
				}
				for _, k := range keys {
					got, ok := v.m.get(k)
					w, wok := v.want[k]
					if ok != wok || got != w {
						t.Fatalf("version %d: get(%s) = %d, %v; want %d, %v", i, k.name, got, ok, w, wok)
					}
				}
			}
			// Deleting everything leaves an empty map.
			e := m.edit()
			for _, k := range keys {
				e.delete(k)
			}
			if m = e.finish(); m.len() != 0 || m.root != nil {
				t.Errorf("after deleting every key: len %d, root %v", m.len(), m.root)
			}
		})
	}
}

func TestPmapEditAfterFinishPanics(t *testing.T) {
	var m pmap[revocationKey, int]
	e := m.edit()
	e.set("a", 1)
	e.finish()
	defer func() {
		if recover() == nil {
			t.Error("set after finish did not panic")
		}
	}()
	e.set("b", 2)
}

// TestPmapGetDoesNotAllocate: a lookup is on the hot path of every Check.
func TestPmapGetDoesNotAllocate(t *testing.T) {
	var c SnapshotChange
	for i := range 1000 {
		c.PutMembership("tenant", fmt.Sprint("user-", i), []string{"member"})
		c.PutRevocation(Revocation{Key: SessionRevocationKey(fmt.Sprint(i))})
	}
	s := NewSnapshot(nil, nil).With(&c)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := s.Membership("tenant", "user-500"); !ok {
			t.Fatal("member missing")
		}
		if _, ok := s.revocations.get("sid:500"); !ok {
			t.Fatal("revocation missing")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per lookup, want 0", allocs)
	}
}
