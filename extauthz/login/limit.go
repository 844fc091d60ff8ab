package login

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Limits bound sign-in attempts. The zero value of each field means its
// default. Counts are kept in memory per process, in fixed windows that start
// at the first counted event.
type Limits struct {
	// AccountFailures is how many failed sign-ins one account may have in
	// one tenant per Window before every further attempt, right or wrong, is
	// refused. Default 10 (NIST SP 800-63B §5.2.2 allows at most 100).
	AccountFailures int
	// AddressFailures is how many failed sign-ins one client address (an
	// IPv4 address or IPv6 /64) may have per Window, over all tenants and
	// accounts, before its further attempts go through the narrow lane of
	// LimitedConcurrent. Default 50. An address over it is never a reason to
	// refuse a right password: many people may share one address (a NAT, a
	// load balancer whose hops are not configured), and one of them must not
	// lock the others out (docs/load-balancer.md).
	AddressFailures int
	// LimitedConcurrent is how many password checks (argon2id runs) may be
	// under way at once for all the addresses over AddressFailures together;
	// an attempt from such an address that finds them all taken is answered
	// 429 at once, without looking at the password. The rest of the hashing
	// capacity stays free for everyone else. Default 1.
	LimitedConcurrent int
	// DiscoveryRequests is how many home-realm discovery lookups one client
	// address may make per Window. Default 60.
	DiscoveryRequests int
	// SwitchCodes is how many tenant switch codes the apex issues to one
	// client address per Window (each one redeemed is a store write).
	// Default 60.
	SwitchCodes int
	// AccountSignIns is how many successful sign-ins one account may make
	// per minute (not per Window): into one tenant, counting password,
	// SSO and switching from the apex alike, or on the apex host. Beyond
	// it every attempt on the account is answered 429 until the minute has
	// passed. Each sign-in can be followed by a sign-out, whose revocation
	// every snapshot holds for the session's lifetime: this bounds what one
	// account can add. Default 10.
	AccountSignIns int
	// Window is the counting window. Default 15 minutes.
	Window time.Duration
	// MaxEntries bounds how many accounts or addresses each counter tracks;
	// the least recently used is forgotten first. Default 100000.
	MaxEntries int
}

func (l Limits) withDefaults() Limits {
	if l.AccountFailures <= 0 {
		l.AccountFailures = 10
	}
	if l.AddressFailures <= 0 {
		l.AddressFailures = 50
	}
	if l.LimitedConcurrent <= 0 {
		l.LimitedConcurrent = 1
	}
	if l.DiscoveryRequests <= 0 {
		l.DiscoveryRequests = 60
	}
	if l.SwitchCodes <= 0 {
		l.SwitchCodes = 60
	}
	if l.AccountSignIns <= 0 {
		l.AccountSignIns = 10
	}
	if l.Window <= 0 {
		l.Window = 15 * time.Minute
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = 100000
	}
	return l
}

// signInWindow is the window of Limits.AccountSignIns.
const signInWindow = time.Minute

// counter counts events per key in fixed windows, in bounded memory. Keys
// are hashed, so an attacker-chosen email costs 32 bytes however long it is.
type counter struct {
	max    int
	window time.Duration

	mu      sync.Mutex
	windows *simplelru.LRU[[sha256.Size]byte, *window]
}

type window struct {
	start time.Time
	n     int
}

func newCounter(max int, w time.Duration, entries int) *counter {
	lru, err := simplelru.NewLRU[[sha256.Size]byte, *window](entries, nil)
	if err != nil {
		panic(err) // entries > 0 is guaranteed by withDefaults
	}
	return &counter{max: max, window: w, windows: lru}
}

func counterKey(parts ...string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// over reports whether key has reached the limit in the current window.
func (c *counter) over(key [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.windows.Get(key)
	return ok && now.Sub(w.start) < c.window && w.n >= c.max
}

// add counts one event for key.
func (c *counter) add(key [sha256.Size]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.windows.Get(key)
	if !ok || now.Sub(w.start) >= c.window || now.Before(w.start) {
		c.windows.Add(key, &window{start: now, n: 1})
		return
	}
	w.n++
}

// take counts one event for key and reports whether it was within the limit.
func (c *counter) take(key [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.windows.Get(key)
	if !ok || now.Sub(w.start) >= c.window || now.Before(w.start) {
		c.windows.Add(key, &window{start: now, n: 1})
		return true
	}
	if w.n >= c.max {
		return false
	}
	w.n++
	return true
}

// reset forgets key.
func (c *counter) reset(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.windows.Remove(key)
}

// lane is a bounded set of slots, taken without waiting.
type lane chan struct{}

// tryTake takes a slot and reports whether there was one free.
func (l lane) tryTake() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// give returns a slot taken by tryTake.
func (l lane) give() { <-l }
