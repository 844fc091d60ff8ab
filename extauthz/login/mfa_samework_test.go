package login

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/tenants"
)

// callLog is a Store that records which of the second step's
// store calls are made, in order (names only: the arguments differ
// between a real and a failed state by design).
type callLog struct {
	Store
	mu    sync.Mutex
	calls []string
}

func (s *callLog) note(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, name)
}

func (s *callLog) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

func (s *callLog) SecondFactors(ctx context.Context, tid, uid string) (tenants.SecondFactors, error) {
	s.note("SecondFactors")
	return s.Store.SecondFactors(ctx, tid, uid)
}

func (s *callLog) UpdateSecondFactors(ctx context.Context, tid, uid string, fn func(*tenants.SecondFactors) error) error {
	s.note("UpdateSecondFactors")
	return s.Store.UpdateSecondFactors(ctx, tid, uid, fn)
}

func (s *callLog) Passkeys(ctx context.Context, tid, uid string) ([]tenants.Passkey, error) {
	s.note("Passkeys")
	return s.Store.Passkeys(ctx, tid, uid)
}

func (s *callLog) UpdatePasskey(ctx context.Context, tid, uid string, id []byte, fn func(*tenants.Passkey) error) error {
	s.note("UpdatePasskey")
	return s.Store.UpdatePasskey(ctx, tid, uid, id, fn)
}

func (s *callLog) UseAssertionID(ctx context.Context, tid, id string, until time.Time) error {
	s.note("UseAssertionID")
	return s.Store.UseAssertionID(ctx, tid, id, until)
}

func (s *callLog) Membership(ctx context.Context, tid, uid string) ([]string, error) {
	s.note("Membership")
	return s.Store.Membership(ctx, tid, uid)
}

// TestMFACodeStepSameWork: the code step does the same store work for a
// state whose password was wrong (or whose account is locked by the time
// of the code) as for one whose password was right, with a wrong code or
// passkey answer. Otherwise the step's time (a store transaction, in a
// fleet an etcd round trip, against none) tells a guesser who holds no
// factor whether the password was right, which the second step promises
// never to reveal before the factor is checked.
func TestMFACodeStepSameWork(t *testing.T) {
	e := newMFAEnv(t)
	const host = "vault.app.test"
	e.enrol(host)
	calls := &callLog{Store: e.h.Store}
	e.h.Store = calls
	vault := e.snaps.Load().BySlug("vault")

	type stepFn func(st *http.Cookie) *http.Response
	code := func(st *http.Cookie) *http.Response { return e.postCode(host, st, "123456") }
	pk := func(st *http.Cookie) *http.Response {
		_, pc := e.passkeyStep(host, st)
		return e.postForm(host, PathMFA, url.Values{"passkey": {`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}`}}, st, pc)
	}
	for _, answer := range []struct {
		name string
		post stepFn
	}{{"a wrong code", code}, {"a wrong passkey answer", pk}} {
		t.Run(answer.name, func(t *testing.T) {
			e.clock.Advance(time.Hour) // a fresh failure window
			run := func(what string, st *http.Cookie, before func()) []string {
				t.Helper()
				if before != nil {
					before()
				}
				calls.take()
				wantStatus(t, what, answer.post(st), http.StatusUnauthorized)
				return calls.take()
			}
			right := run("right password", e.mfaStep(host, "alice@acme.test", alicePassword), nil)
			if !slices.Contains(right, "UseAssertionID") || len(right) < 2 {
				t.Fatalf("right password: store calls %v", right)
			}
			for what, got := range map[string][]string{
				"wrong password":  run("wrong password", e.mfaStep(host, "alice@acme.test", "not-her-password"), nil),
				"unknown address": run("unknown address", e.mfaStep(host, "nobody@acme.test", "whatever"), nil),
				"locked meanwhile": func() []string {
					st := e.mfaStep(host, "alice@acme.test", alicePassword)
					return run("locked meanwhile", st, func() {
						for range e.h.limits.AccountFailures {
							if _, err := e.h.accounts.Add(t.Context(), counterKey("account", vault.InternalID, "alice@acme.test"), e.clock.Now()); err != nil {
								t.Fatal(err)
							}
						}
					})
				}(),
			} {
				if !slices.Equal(got, right) {
					t.Errorf("%s: store calls %v, right password %v", what, got, right)
				}
			}
		})
	}
}

// TestMFAFirstStepSameWork: the password form of a tenant with a second
// step does the same store work for a wrong password as for a right one
// of a member with a factor (who gets the code step): reading the
// member's factors only after a right password would time the verdict.
func TestMFAFirstStepSameWork(t *testing.T) {
	e := newMFAEnv(t)
	const host = "vault.app.test"
	e.enrol(host)
	calls := &callLog{Store: e.h.Store}
	e.h.Store = calls
	e.clock.Advance(time.Hour)
	calls.take()
	e.mfaStep(host, "alice@acme.test", alicePassword)
	right := calls.take()
	if !slices.Contains(right, "SecondFactors") {
		t.Fatalf("right password: store calls %v", right)
	}
	e.mfaStep(host, "alice@acme.test", "not-her-password")
	if wrong := calls.take(); !slices.Equal(wrong, right) {
		t.Errorf("wrong password: store calls %v, right password %v", wrong, right)
	}
}

// TestMFAEnrolmentKeepsDeadline: a wrong first code at the enrolment
// shows the page again under a new state, but with the deadline of the
// first: the step may take mfaStateTTL after the password, not forever.
// (A state renewed by a wrong code every few minutes outlived the
// password it was opened with, a password reset included.)
func TestMFAEnrolmentKeepsDeadline(t *testing.T) {
	e := newMFAEnv(t)
	const host = "vault.app.test"
	st := e.mfaStep(host, "alice@acme.test", alicePassword)
	page := wantStatus(t, "enrolment page", e.do("GET", host, PathMFA, nil, nil, st), 200)
	m := secretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", page)
	}
	secret := decodeSecret(t, m[1])
	e.clock.Advance(mfaStateTTL - time.Minute)
	resp := e.postCode(host, st, "000000")
	wantStatus(t, "wrong first code", resp, http.StatusBadRequest)
	again := lastCookie(resp, mfaCookie)
	if again == nil || again.Value == "" {
		t.Fatal("no new state after a wrong first code")
	}
	if again.MaxAge > int(time.Minute/time.Second) {
		t.Errorf("the new state's cookie lives %ds, past the step's deadline", again.MaxAge)
	}
	e.clock.Advance(2 * time.Minute)
	// Posted straight away (postCode would fetch the expired page first).
	f := e.getForm(host, "/_auth/login")
	late := url.Values{"csrf": {f.csrf}, "code": {otp.Code(secret, otp.Step(e.clock.Now()))}}
	wantStatus(t, "the right code past the deadline", e.do("POST", host, PathMFA, late, sameOrigin(), f.preauth, again), http.StatusBadRequest)
	alice, err := e.store.UserByEmail(t.Context(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	factors, err := e.store.SecondFactors(t.Context(), e.snaps.Load().BySlug("vault").InternalID, alice.ID)
	if err != nil || factors.Enrolled() {
		t.Fatalf("enrolled past the deadline: %+v, %v", factors, err)
	}
}

// barrierStore holds every UpdateSecondFactors call until n have arrived
// (or a second has passed), so that code steps posted together all reach
// the factor check together, and records whose factors each one read.
type barrierStore struct {
	Store
	n       int
	mu      sync.Mutex
	arrived int
	release chan struct{}
	users   []string
}

func (s *barrierStore) UpdateSecondFactors(ctx context.Context, tid, uid string, fn func(*tenants.SecondFactors) error) error {
	s.mu.Lock()
	s.users = append(s.users, uid)
	s.arrived++
	if s.arrived == s.n {
		close(s.release)
	}
	s.mu.Unlock()
	select {
	case <-s.release:
	case <-time.After(time.Second):
	}
	return s.Store.UpdateSecondFactors(ctx, tid, uid, fn)
}

// TestMFACodeLimitHoldsUnderConcurrency: code steps posted together get
// at most Limits.AccountFailures verdicts per window, as passwords do.
// States that cost the account's count nothing (a switch from the apex
// gives them; here the count is cleared between them) and are all posted
// at once must not each pass the limit's check before any is counted.
func TestMFACodeLimitHoldsUnderConcurrency(t *testing.T) {
	e := newMFAEnv(t)
	const host = "vault.app.test"
	e.enrol(host)
	e.clock.Advance(time.Hour)
	vault := e.snaps.Load().BySlug("vault")
	key := counterKey("account", vault.InternalID, "alice@acme.test")
	n := e.h.limits.AccountFailures + 6
	states := make([]*http.Cookie, n)
	forms := make([]struct {
		csrf    string
		preauth *http.Cookie
	}, n)
	for i := range states {
		states[i] = e.mfaStep(host, "alice@acme.test", alicePassword)
		if err := e.h.accounts.Reset(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		f := e.getForm(host, "/_auth/login")
		forms[i].csrf, forms[i].preauth = f.csrf, f.preauth
	}
	alice, err := e.store.UserByEmail(t.Context(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	bs := &barrierStore{Store: e.h.Store, n: n, release: make(chan struct{})}
	e.h.Store = bs
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"csrf": {forms[i].csrf}, "code": {"000000"}}
			resp := e.do("POST", host, PathMFA, form, sameOrigin(), forms[i].preauth, states[i])
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusUnauthorized {
			t.Errorf("code step %d: status %d, want 401", i, s)
		}
	}
	checked := 0
	for _, u := range bs.users {
		if u == alice.ID {
			checked++
		}
	}
	if checked > e.h.limits.AccountFailures {
		t.Errorf("%d of %d codes posted together were checked against alice's factors, limit %d", checked, n, e.h.limits.AccountFailures)
	}
}
