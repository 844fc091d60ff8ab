package fleet_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/echo"
)

// loadIDHeader carries the load generator's id of each request, so that
// what the upstream received can be matched with what was sent.
const loadIDHeader = "X-Load-Id"

// Bounds of the load generator: it never runs longer or sends more than
// this, whatever the scenarios do.
const (
	loadWorkers     = 4
	loadPause       = 5 * time.Millisecond // per worker, between requests
	loadMaxRequests = 200_000
	loadMaxDuration = 4 * time.Minute
)

// credKind is what a load request carries.
type credKind int

const (
	// kindLive: a session that was never signed out; must be allowed (200)
	// with its own identity, or fail (an error, never another identity).
	kindLive credKind = iota
	// kindAnonymous: no credential; must never be allowed.
	kindAnonymous
	// kindRevoked: a session signed out at revokedAt; must never be allowed
	// once revocationBound has passed since.
	kindRevoked
	// kindForged: a live session with its signature altered; must never be
	// allowed.
	kindForged
	// kindOtherTenant: a live session of one tenant sent to another tenant's
	// host; must never be allowed.
	kindOtherTenant
)

func (k credKind) String() string {
	return [...]string{"live", "anonymous", "revoked", "forged", "other-tenant"}[k]
}

// want is the status a request of kind k gets when nothing fails.
func (k credKind) want() int {
	switch k {
	case kindLive:
		return 200
	case kindOtherTenant:
		return 403
	}
	return 401
}

// cred is a session of one person at one tenant.
type cred struct {
	tenant, email, token string
	// revokedAt is when its sign-out answered; zero while live.
	revokedAt time.Time
}

// loadReq is one request the load generator sent through Envoy, and what
// came back.
type loadReq struct {
	id         string
	kind       credKind
	cred       cred
	host       string // the tenant host it was sent to
	sent, done time.Time
	status     int   // 0 when err
	err        error // transport error
	echoed     *echo.Request
}

// load is the load generator: loadWorkers goroutines sending requests of
// every credKind for several tenants through Envoy until stopped.
type load struct {
	f *fleet

	mu      sync.Mutex
	live    []cred
	revoked []cred
	reqs    []*loadReq
	// blackoutFrom..blackoutTo: every etcd member is down and the
	// staleness bound has passed; the upstream must receive nothing sent
	// then.
	blackoutFrom, blackoutTo time.Time
	phases                   []loadPhase

	stopc chan struct{}
	wg    sync.WaitGroup
	began time.Time
}

// loadPhase is one scenario's time span, and the part of it during which
// a fault was injected (errors are expected there, and only there).
type loadPhase struct {
	name               string
	from, to           time.Time
	faultFrom, faultTo time.Time
}

func newLoad(f *fleet) *load { return &load{f: f, stopc: make(chan struct{})} }

func (l *load) addLive(tenant, email, token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.live = append(l.live, cred{tenant: tenant, email: email, token: token})
}

// removeLive stops sending token as a live session (before it is signed
// out).
func (l *load) removeLive(token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, c := range l.live {
		if c.token == token {
			l.live = append(l.live[:i:i], l.live[i+1:]...)
			return
		}
	}
}

func (l *load) addRevoked(tenant, email, token string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked = append(l.revoked, cred{tenant: tenant, email: email, token: token, revokedAt: at})
}

// liveToken is a live session of email at tenant.
func (l *load) liveToken(tenant, email string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.live {
		if c.tenant == tenant && c.email == email {
			return c.token
		}
	}
	panic("no live session of " + email + " at " + tenant)
}

func (l *load) markBlackout(from time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blackoutFrom = from
}

func (l *load) markBlackoutEnd(to time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blackoutTo = to
}

func (l *load) phase(name string, from, to, faultFrom, faultTo time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, loadPhase{name: name, from: from, to: to, faultFrom: faultFrom, faultTo: faultTo})
}

// start starts the workers.
func (l *load) start(t *testing.T) {
	l.began = time.Now()
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: loadWorkers, DisableCompression: true},
	}
	t.Cleanup(client.CloseIdleConnections)
	for w := range loadWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(l.began.UnixNano())))
			for n := 0; ; n++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				if time.Since(l.began) > loadMaxDuration {
					return
				}
				req := l.next(rng, fmt.Sprintf("%d-%d", w, n))
				if req == nil {
					return // loadMaxRequests sent
				}
				l.send(client, req)
				time.Sleep(loadPause)
			}
		}()
	}
}

// next picks the next request: half live sessions, the rest spread over
// the kinds that must be refused.
func (l *load) next(rng *rand.Rand, id string) *loadReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) >= loadMaxRequests {
		return nil
	}
	r := &loadReq{id: id}
	pickLive := func() cred { return l.live[rng.IntN(len(l.live))] }
	switch n := rng.IntN(10); {
	case n < 5:
		r.kind, r.cred = kindLive, pickLive()
	case n == 5:
		r.kind, r.cred = kindAnonymous, cred{tenant: loadTenants[rng.IntN(len(loadTenants))]}
	case n == 6:
		r.kind, r.cred = kindRevoked, l.revoked[rng.IntN(len(l.revoked))]
	case n == 7:
		r.kind, r.cred = kindForged, pickLive()
		r.cred.token = forge(r.cred.token, rng)
	default:
		r.kind, r.cred = kindOtherTenant, pickLive()
	}
	r.host = r.cred.tenant + ".app.test"
	if r.kind == kindOtherTenant {
		for _, t := range loadTenants {
			if t != r.cred.tenant {
				r.host = t + ".app.test"
				break
			}
		}
	}
	l.reqs = append(l.reqs, r)
	return r
}

// forge alters one character in the middle of token's signature: the same
// header and claims, a signature that does not verify.
func forge(token string, rng *rand.Rand) string {
	i := strings.LastIndexByte(token, '.') + 1 + rng.IntN(20)
	b := []byte(token)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// send sends r through Envoy and records the answer. Every request also
// carries identity headers of its own, which must never reach the app.
func (l *load) send(client *http.Client, r *loadReq) {
	req, _ := http.NewRequest("GET", l.f.envoyURL("/docs/"+r.id), nil)
	req.Host = r.host
	req.Header.Set("Accept", "application/json")
	req.Header.Set(loadIDHeader, r.id)
	req.Header.Set("X-User-Email", "mallory@evil.test")
	req.Header.Set("X-User-Id", "mallory")
	req.Header.Set("X-Tenant-Id", "evil")
	if r.cred.token != "" {
		if strings.HasSuffix(r.id, "0") || strings.HasSuffix(r.id, "5") {
			req.AddCookie(&http.Cookie{Name: "tenantgate", Value: r.cred.token})
		} else {
			req.Header.Set("Authorization", "Bearer "+r.cred.token)
		}
	}
	sent := time.Now()
	status, echoed, err := roundTrip(client, req)
	done := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r.sent, r.done, r.status, r.echoed, r.err = sent, done, status, echoed, err
}

// roundTrip sends req and returns the status and, for a 200, what the app
// says it received.
func roundTrip(client *http.Client, req *http.Request) (int, *echo.Request, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, nil
	}
	var e echo.Request
	if json.Unmarshal(body, &e) != nil {
		return resp.StatusCode, nil, nil
	}
	return resp.StatusCode, &e, nil
}

// waitAllowed returns how long after since a live request sent after
// since was first allowed, failing the test after d.
func (l *load) waitAllowed(t *testing.T, since time.Time, d time.Duration) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		var first time.Time
		for _, r := range l.reqs {
			if r.kind == kindLive && r.sent.After(since) && !r.done.IsZero() && r.status == 200 && (first.IsZero() || r.sent.Before(first)) {
				first = r.sent
			}
		}
		l.mu.Unlock()
		if !first.IsZero() {
			return first.Sub(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signed-in request allowed through Envoy %v after %v", d, since.Format(time.TimeOnly))
		}
	}
}

// wronglyAllowed says why r was wrongly allowed, or "" if it was not: a
// 200 for a request without a credential that holds (none, forged, another
// tenant's, signed out revocationBound ago or more), or an identity the
// app received that is not the session's.
func (r *loadReq) wronglyAllowed() string {
	if r.status != 200 {
		return ""
	}
	switch {
	case r.kind == kindAnonymous || r.kind == kindForged || r.kind == kindOtherTenant:
		return fmt.Sprintf("%s request allowed", r.kind)
	case r.kind == kindRevoked && !r.sent.Before(r.cred.revokedAt.Add(revocationBound)):
		return fmt.Sprintf("session signed out %v before it was sent allowed", r.sent.Sub(r.cred.revokedAt).Round(time.Millisecond))
	case r.echoed == nil:
		return "allowed, but the app's answer is not echo's"
	}
	return identityMismatch(r.cred, r.echoed.Values("x-tenant-id"), r.echoed.Values("x-user-email"))
}

// identityMismatch describes how the identity the app received differs
// from c's, or "" when it is exactly c's.
func identityMismatch(c cred, tenant, email []string) string {
	if len(tenant) != 1 || tenant[0] != c.tenant || len(email) != 1 || email[0] != c.email {
		return fmt.Sprintf("the app received tenant %q email %q for a session of %s at %s", tenant, email, c.email, c.tenant)
	}
	return ""
}

// isError reports whether r failed without being wrongly allowed: a
// transport error, or a status other than its kind's (a 503 while Envoy
// or tenantgate could not decide, a live session refused). A revoked
// session allowed within the bound is not an error.
func (r *loadReq) isError() bool {
	if r.err != nil {
		return true
	}
	if r.kind == kindRevoked && r.status == 200 {
		return false
	}
	return r.status != r.kind.want()
}

// counts summarises requests.
type counts struct {
	requests, wrong, errors int
	statuses                map[string]int
}

func (c counts) String() string {
	var keys []string
	for k := range c.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, c.statuses[k]))
	}
	return fmt.Sprintf("%d requests, wrongly allowed %d, errors %d (%s)", c.requests, c.wrong, c.errors, strings.Join(parts, " "))
}

// count summarises the finished requests sent in [from, to).
func (l *load) count(from, to time.Time) counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := counts{statuses: map[string]int{}}
	for _, r := range l.reqs {
		if r.done.IsZero() || r.sent.Before(from) || !r.sent.Before(to) {
			continue
		}
		c.requests++
		if r.wronglyAllowed() != "" {
			c.wrong++
		}
		if r.isError() {
			c.errors++
		}
		if r.err != nil {
			c.statuses["transport-error"]++
		} else {
			c.statuses[strconv.Itoa(r.status)]++
		}
	}
	return c
}

// summary is what the load saw during the named phase.
func (l *load) summary(name string) string {
	l.mu.Lock()
	var p loadPhase
	for _, q := range l.phases {
		if q.name == name {
			p = q
		}
	}
	l.mu.Unlock()
	return fmt.Sprintf("load during %q (%v): %s", name, p.to.Sub(p.from).Round(time.Millisecond), l.count(p.from, p.to))
}

// loadResult is the whole run's record, checked once the load stopped.
type loadResult struct {
	all     counts
	elapsed time.Duration
	// wrong are the requests wrongly allowed, by the load's answers and by
	// what the upstream received.
	wrong []string
	// strayErrors are errors outside every fault window.
	strayErrors []string
	// faultErrors are the errors inside each phase's fault window, with
	// the span from the fault to the last error sent.
	faultErrors  []string
	upstreamHits int
}

// stop stops the workers and checks every request, and every request the
// upstream received, against the rules.
func (l *load) stop(t *testing.T) loadResult {
	close(l.stopc)
	l.wg.Wait()
	res := loadResult{all: l.count(l.began, time.Now().Add(time.Hour)), elapsed: time.Since(l.began)}
	l.mu.Lock()
	defer l.mu.Unlock()
	flags := envoyFlags(l.f.envoy.Output())
	byID := map[string]*loadReq{}
	for _, r := range l.reqs {
		if r.done.IsZero() {
			continue // picked, never sent: the load stopped
		}
		byID[r.id] = r
		if why := r.wronglyAllowed(); why != "" {
			res.wrong = append(res.wrong, fmt.Sprintf("%s %s at %s sent %s: %s", r.id, r.kind, r.host, r.sent.Format("15:04:05.000"), why))
		}
		if r.isError() && !l.inFault(r.sent) {
			res.strayErrors = append(res.strayErrors, fmt.Sprintf("%s %s at %s sent %s: status %d err %v (Envoy's access log: %s)",
				r.id, r.kind, r.host, r.sent.Format("15:04:05.000"), r.status, r.err, flags["/docs/"+r.id]))
		}
	}
	for id, seen := range l.f.upstream.seen.all() {
		res.upstreamHits++
		r, ok := byID[id]
		switch {
		case !ok:
			res.wrong = append(res.wrong, fmt.Sprintf("the app received %s, which the load did not send", id))
		case r.kind != kindLive && r.kind != kindRevoked:
			res.wrong = append(res.wrong, fmt.Sprintf("the app received %s, a %s request", id, r.kind))
		case r.kind == kindRevoked && !r.sent.Before(r.cred.revokedAt.Add(revocationBound)):
			res.wrong = append(res.wrong, fmt.Sprintf("the app received %s, sent %v after its session was signed out", id, r.sent.Sub(r.cred.revokedAt)))
		case !l.blackoutFrom.IsZero() && !r.sent.Before(l.blackoutFrom) && r.sent.Before(l.blackoutTo):
			res.wrong = append(res.wrong, fmt.Sprintf("the app received %s, sent %v after every etcd member was down and the staleness bound passed", id, r.sent.Sub(l.blackoutFrom.Add(-fleetMaxStaleness))))
		default:
			if why := identityMismatch(r.cred, split(seen.tenant), split(seen.email)); why != "" {
				res.wrong = append(res.wrong, id+": "+why)
			}
		}
	}
	for _, p := range l.phases {
		if p.faultFrom.IsZero() {
			continue
		}
		n, last := 0, time.Duration(0)
		for _, r := range l.reqs {
			if !r.done.IsZero() && r.isError() && !r.sent.Before(p.faultFrom) && r.sent.Before(p.faultTo) {
				n++
				last = max(last, r.sent.Sub(p.faultFrom))
			}
		}
		res.faultErrors = append(res.faultErrors, fmt.Sprintf("%s: %d errors, the last sent %v after the fault", p.name, n, last.Round(time.Millisecond)))
	}
	return res
}

// envoyFlags returns the access log line (envoy.yaml's JSON) of every
// request in Envoy's output, by path.
func envoyFlags(output string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(output, "\n") {
		var entry struct{ Path string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Path != "" {
			out[entry.Path] = line
		}
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// inFault reports whether at lies in some phase's fault window; l.mu must
// be held.
func (l *load) inFault(at time.Time) bool {
	for _, p := range l.phases {
		if !p.faultFrom.IsZero() && !at.Before(p.faultFrom) && at.Before(p.faultTo) {
			return true
		}
	}
	return false
}

func (r loadResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "load over %v: %s; the app received %d requests\n", r.elapsed.Round(time.Millisecond), r.all, r.upstreamHits)
	for _, f := range r.faultErrors {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	fmt.Fprintf(&b, "  wrongly allowed: %d; errors outside the faults: %d", len(r.wrong), len(r.strayErrors))
	return b.String()
}

// check fails the test for anything wrongly allowed and for errors
// outside the fault windows, and if the load did not run.
func (r loadResult) check(t *testing.T) {
	t.Helper()
	for i, w := range r.wrong {
		if i == 20 {
			t.Errorf("… and %d more wrongly allowed", len(r.wrong)-i)
			break
		}
		t.Errorf("wrongly allowed: %s", w)
	}
	for i, e := range r.strayErrors {
		if i == 20 {
			t.Errorf("… and %d more errors outside the faults", len(r.strayErrors)-i)
			break
		}
		t.Errorf("error outside the faults: %s", e)
	}
	if r.all.requests < 1000 || r.upstreamHits == 0 {
		t.Errorf("the load sent %d requests and the app received %d: too few to prove anything", r.all.requests, r.upstreamHits)
	}
}

// syncMap is a map safe for concurrent use.
type syncMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (s *syncMap[K, V]) store(k K, v V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[K]V{}
	}
	s.m[k] = v
}

func (s *syncMap[K, V]) all() map[K]V {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[K]V, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out
}
