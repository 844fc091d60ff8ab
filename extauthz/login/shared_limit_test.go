package login

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/internal/smtpsink"
)

// sharedCounters opens each counter once, for every Handler given it, as
// the etcd store's do for a fleet (in memory here; test/fleet runs the
// real thing).
func sharedCounters() func(string, time.Duration) Counter {
	var mu sync.Mutex
	opened := map[string]Counter{}
	return func(name string, window time.Duration) Counter {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := opened[name]; ok {
			return c
		}
		c := NewMemoryCounter(window, 0)
		opened[name] = c
		return c
	}
}

// replicaOf returns an env whose Handler is another replica of e's: the
// same store, keys and clock, with counters from open.
func (e *env) replicaOf(open func(string, time.Duration) Counter) *env {
	h := e.h
	other := *e
	other.h = &Handler{Snapshots: h.Snapshots, Resolver: h.Resolver, Store: h.Store, Minter: h.Minter,
		Verifier: h.Verifier, Passwords: h.Passwords, CSRFKey: h.CSRFKey, Now: h.Now, Sleep: h.Sleep, Log: h.Log,
		Limits: h.Limits, Counters: open}
	return &other
}

// TestLimitsSharedByReplicas: Handlers given one set of counters (the
// replicas of a fleet) lock an account at the same count as one Handler,
// wherever the guesses land, and the lock ends with its window.
func TestLimitsSharedByReplicas(t *testing.T) {
	open := sharedCounters()
	one := newEnv(t, func(h *Handler) { h.Counters = open; h.Limits = Limits{AccountFailures: 3} })
	two := one.replicaOf(open)
	replicas := []*env{one, two}

	// Two failures, one at each replica, lock nothing: the right password
	// signs in (and starts the count afresh).
	for i := range 2 {
		if resp := replicas[i%2].signIn("acme.app.test", "", "alice@acme.test", "wrong", "/"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	if resp := two.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right password after 2 of 3 failures: status %d, want 303", resp.StatusCode)
	}
	// Three, spread over both, lock the account at both.
	for i := range 3 {
		replicas[i%2].signIn("acme.app.test", "", "alice@acme.test", "wrong", "/")
	}
	for i, e := range replicas {
		resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
		if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, invalidCredentials) {
			t.Fatalf("replica %d, right password after 3 failures spread over both: status %d, want the generic 401", i+1, resp.StatusCode)
		}
		if got := e.lastRefusal(); got["reason"] != "account_locked" {
			t.Errorf("replica %d logged %v, want account_locked", i+1, got["reason"])
		}
	}
	// The lock lasts the window (15 minutes by default), then ends.
	one.clock.Advance(15*time.Minute - time.Second)
	if resp := two.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("right password a second before the window ends: status %d, want 401", resp.StatusCode)
	}
	one.clock.Advance(time.Second)
	if resp := two.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right password once the window ended: status %d, want 303", resp.StatusCode)
	}
}

// TestRacedGuessesGetNoMoreVerdicts: guesses raced in parallel, more of
// them in flight than the limit, get at most AccountFailures verdicts
// between them; the rest are locked ones. Counting before the password
// check and adding after, as this Handler once did, gave a verdict to
// every guess in flight. The account is an unknown one, whose failures
// count alike, so that each check costs the Hasher's own (slower) Params
// and many overlap.
func TestRacedGuessesGetNoMoreVerdicts(t *testing.T) {
	const failures, guesses = 3, 24
	e := newEnv(t, func(h *Handler) {
		h.Limits = Limits{AccountFailures: failures}
		h.Passwords = &password.Hasher{Params: password.Params{Memory: 4096, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, MaxConcurrent: guesses}
	})
	f := e.getForm("acme.app.test", "/_auth/login")
	statuses := make([]int, guesses)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range guesses {
		wg.Go(func() {
			<-start
			resp := e.do("POST", "acme.app.test", "/_auth/login",
				url.Values{"email": {"nobody@acme.test"}, "password": {"guess"}, "rd": {"/"}, "csrf": {f.csrf}}, sameOrigin(), f.preauth)
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	reasons := map[any]int{}
	for _, r := range e.refusals() {
		reasons[r["reason"]]++
	}
	if reasons["unknown_user"] != failures || reasons["account_locked"] != guesses-failures {
		t.Errorf("%d raced guesses got %d verdicts (unknown_user) and %d locked, want exactly %d and %d; statuses %v",
			guesses, reasons["unknown_user"], reasons["account_locked"], failures, guesses-failures, statuses)
	}
}

// failingCounter is a shared counter that cannot be reached.
type failingCounter struct{}

var errUnreachable = errors.New("counter store unreachable")

func (failingCounter) Count(context.Context, [sha256.Size]byte, time.Time) (int, error) {
	return 0, errUnreachable
}
func (failingCounter) Add(context.Context, [sha256.Size]byte, time.Time) (int, error) {
	return 0, errUnreachable
}
func (failingCounter) Reset(context.Context, [sha256.Size]byte) error { return errUnreachable }

// TestCountersUnreachable: with the shared counters out of reach (etcd
// down), a password sign-in is answered 503 and signs no one in, right
// password or not: a limit that cannot be counted is not skipped.
func TestCountersUnreachable(t *testing.T) {
	for _, name := range []string{CounterAccountFailures, CounterAddressFailures, CounterAccountSignIns} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(h *Handler) {
				h.Counters = func(n string, w time.Duration) Counter {
					if n == name {
						return failingCounter{}
					}
					return NewMemoryCounter(w, 0)
				}
			})
			for _, pw := range []string{alicePassword, "wrong"} {
				resp := e.signIn("acme.app.test", "", "alice@acme.test", pw, "/")
				body := readBody(t, resp)
				if resp.StatusCode != http.StatusServiceUnavailable || cookieNamed(resp, "__Host-tenantgate") != nil ||
					strings.Contains(body, errUnreachable.Error()) {
					t.Errorf("password %q with %s unreachable: status %d, want 503 without a session or the error", pw, name, resp.StatusCode)
				}
			}
		})
	}
}

// TestResetLimitsSharedByReplicas: the password reset limits count in the
// Handler's counters, so the replicas of a fleet send no more links, and
// answer no more requests from one address, than one replica.
func TestResetLimitsSharedByReplicas(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	open := sharedCounters()
	one := newEnv(t, withMail(t, sink), func(h *Handler) {
		h.Counters = open
		h.TrustedProxyHops = 1
		h.Accounts.ResetsPerAddress, h.Accounts.ResetsPerAccount = 3, 1
	})
	two := one.replicaOf(open)
	two.h.TrustedProxyHops = 1
	two.h.Accounts = &Accounts{Links: one.h.Accounts.Links, Outbox: one.h.Accounts.Outbox, Scheme: "https",
		ResetsPerAddress: 3, ResetsPerAccount: 1}
	forgot := func(e *env, from, email string) *http.Response {
		f := e.getForm("acme.app.test", "/_auth/forgot")
		hdr := sameOrigin()
		hdr.Set("X-Forwarded-For", from+", 198.51.100.1")
		return e.do("POST", "acme.app.test", "/_auth/forgot", url.Values{"email": {email}, "csrf": {f.csrf}}, hdr, f.preauth)
	}

	// One link per account, wherever it is asked for: the second replica
	// answers the same page and sends nothing.
	wantStatus(t, "forgot at replica 1", forgot(one, "203.0.113.1", "alice@acme.test"), 200)
	wantStatus(t, "forgot at replica 2", forgot(two, "203.0.113.2", "alice@acme.test"), 200)
	sink.Wait(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 1 {
		t.Errorf("one account asked twice at two replicas with a limit of 1: %d messages, want 1", n)
	}
	if got := two.lastRefusal(); got["reason"] != "reset_account_limited" {
		t.Errorf("replica 2 logged %v, want reset_account_limited", got["reason"])
	}

	// Three requests per address, spread over both replicas; the fourth
	// is refused at either.
	for i := range 3 {
		wantStatus(t, fmt.Sprintf("request %d from one address", i+1), forgot([]*env{one, two}[i%2], "203.0.113.9", "nobody@acme.test"), 200)
	}
	for i, e := range []*env{one, two} {
		wantStatus(t, fmt.Sprintf("replica %d, request 4 from one address", i+1), forgot(e, "203.0.113.9", "nobody@acme.test"), http.StatusTooManyRequests)
	}
}
