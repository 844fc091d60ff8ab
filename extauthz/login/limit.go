package login

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Limits bound sign-in attempts. The zero value of each field means its
// default. The account, address and sign-in counts are kept in the
// Handler's Counters (shared by every replica of a fleet, or in this
// process's memory); the discovery and switch-code counts in memory, per
// process.
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
	// AuditedRefusals is how many refused sign-ins per second this process
	// writes to the audit trail, over all tenants (a token bucket holding
	// ten seconds' worth). Each audit event is a store write, and a refusal
	// can cost the requester nothing (a 429, a form without its CSRF
	// token): without a bound, a flood of requests would be a flood of
	// store writes, which could fill an etcd cluster every replica needs.
	// Refusals beyond it are still answered and logged, and how many were
	// left out of the trail is logged once a minute. Successful sign-ins,
	// sign-outs and switches are always recorded. Default 50.
	AuditedRefusals int
	// Window is the counting window. Default 15 minutes.
	Window time.Duration
	// MaxEntries bounds how many accounts or addresses each counter kept
	// in memory tracks; the least recently used is forgotten first.
	// Default 100000.
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
	if l.AuditedRefusals <= 0 {
		l.AuditedRefusals = 50
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

// Counter counts events per key within a window: the failed sign-ins of an
// account, of a client address, the successful sign-ins of an account. The
// limits that hold for a fleet count in one Counter that every replica
// shares (etcdstore.Store.Counter); one process counts in memory
// (NewMemoryCounter). Keys are digests (counterKey), so a counter never
// holds an email or an address.
//
// The contract, which countertest.Run checks of every implementation:
//   - Add counts one event at now and returns the count of key's window
//     with it. Adds are atomic: of any number of concurrent Adds of one
//     key, by this process or any other sharing the counter, each returns
//     another count, so exactly the first n of them see at most n. This
//     is what makes a limit hold for the fleet: a check done on the count
//     Add returned lets no more attempts through than one process would.
//   - Count returns the count of key's window at now, without changing it.
//     A shared counter's Count may miss the last moment's Adds of other
//     processes: it may guide a decision (skip a write, take a narrow
//     lane), while a limit that must be exact decides on what Add returns.
//   - An event stops counting at most window after it happened, and does
//     count until then unless Reset or the window of an earlier event
//     ended: an implementation may count in a sliding window (etcd) or in
//     fixed windows that start at a key's first event (memory).
//   - Reset forgets every event of key.
//   - An error means the count is unknown: the caller fails closed.
type Counter interface {
	Count(ctx context.Context, key [sha256.Size]byte, now time.Time) (int, error)
	Add(ctx context.Context, key [sha256.Size]byte, now time.Time) (int, error)
	Reset(ctx context.Context, key [sha256.Size]byte) error
}

// Names of the counters a Handler opens with Handler.Counters: failed
// sign-ins per account (Limits.AccountFailures) and per client address
// (Limits.AddressFailures), successful sign-ins per account
// (Limits.AccountSignIns).
const (
	CounterAccountFailures = "accountFailures"
	CounterAddressFailures = "addressFailures"
	CounterAccountSignIns  = "accountSignIns"
	// CounterResetAddresses and CounterResetAccounts count the password
	// reset links asked for per client address and sent per account
	// (Accounts.ResetsPerAddress, Accounts.ResetsPerAccount).
	CounterResetAddresses = "resetAddresses"
	CounterResetAccounts  = "resetAccounts"
)

// NewMemoryCounter returns a Counter in this process's memory: fixed
// windows of length window that start at a key's first event, at most
// entries keys (the least recently used forgotten first; entries <= 0
// means 100000). It never fails, and it counts for this process alone.
func NewMemoryCounter(window time.Duration, entries int) Counter {
	if entries <= 0 {
		entries = 100000
	}
	return newCounter(0, window, entries)
}

// counter counts events per key in fixed windows, in bounded memory. Keys
// are hashed, so an attacker-chosen email costs 32 bytes however long it is.
// max is the limit of over and take (the counters Handler keeps for itself);
// the Counter methods leave the limit to the caller.
type counter struct {
	max    int
	window time.Duration

	mu      sync.Mutex
	windows *simplelru.LRU[[sha256.Size]byte, *window]
}

var _ Counter = (*counter)(nil)

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

// current returns key's window at now, nil when it has none or it ended;
// c.mu must be held.
func (c *counter) current(key [sha256.Size]byte, now time.Time) *window {
	w, ok := c.windows.Get(key)
	if !ok || now.Sub(w.start) >= c.window || now.Before(w.start) {
		return nil
	}
	return w
}

// Count returns key's count at now (Counter).
func (c *counter) Count(_ context.Context, key [sha256.Size]byte, now time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.current(key, now); w != nil {
		return w.n, nil
	}
	return 0, nil
}

// Add counts one event for key and returns the count with it (Counter).
func (c *counter) Add(_ context.Context, key [sha256.Size]byte, now time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.current(key, now)
	if w == nil {
		c.windows.Add(key, &window{start: now, n: 1})
		return 1, nil
	}
	w.n++
	return w.n, nil
}

// Reset forgets key (Counter).
func (c *counter) Reset(_ context.Context, key [sha256.Size]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.windows.Remove(key)
	return nil
}

// take counts one event for key and reports whether it was within c.max.
func (c *counter) take(key [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.current(key, now)
	if w == nil {
		c.windows.Add(key, &window{start: now, n: 1})
		return true
	}
	if w.n >= c.max {
		return false
	}
	w.n++
	return true
}

// limit is a Counter with its limit: the count at which an account or
// address is over it.
type limit struct {
	Counter
	max int
}

// over reports whether key has reached the limit at now.
func (l limit) over(ctx context.Context, key [sha256.Size]byte, now time.Time) (bool, error) {
	n, err := l.Count(ctx, key, now)
	return n >= l.max, err
}

// take counts one event for key and reports whether it was within the
// limit: exactly the first max Adds of a window are, across every process
// sharing the counter.
func (l limit) take(ctx context.Context, key [sha256.Size]byte, now time.Time) (bool, error) {
	n, err := l.Add(ctx, key, now)
	return n <= l.max, err
}

// takeUnlessOver is take for a limit whose events are cheap to send: a key
// already at its limit is refused on a read, without counting, so a flood
// past the limit costs a shared counter no writes. Exactly the first max
// events of a window are taken, however they race.
func takeUnlessOver(ctx context.Context, l limit, key [sha256.Size]byte, now time.Time) (bool, error) {
	if over, err := l.over(ctx, key, now); err != nil || over {
		return false, err
	}
	return l.take(ctx, key, now)
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
