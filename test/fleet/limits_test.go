package fleet_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/login/countertest"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// counters opens counters of st as Handler.Counters does.
func counters(st *etcdstore.Store) countertest.Open {
	return func(name string, window time.Duration) login.Counter { return st.Counter(name, window) }
}

// TestCounterConformance holds the etcd store's sign-in counters to the
// Counter contract the memory counter keeps, and to what two processes
// sharing them promise.
func TestCounterConformance(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	countertest.Run(t, func(t *testing.T) countertest.Open { return counters(o.open(t, prefix(t))) })
	countertest.RunShared(t, func(t *testing.T) (countertest.Open, countertest.Open) {
		p := prefix(t)
		return counters(o.open(t, p)), counters(o.open(t, p))
	})
}

// TestEtcdCounter holds what is the etcd counter's own: the attempts it
// counts are no change to any snapshot (a flood of failed sign-ins must
// not make every replica refresh), and each is on a lease that outlasts
// its window, so etcd deletes them.
func TestEtcdCounter(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	p := prefix(t)
	one, two := o.open(t, p), o.open(t, p)
	ctx := t.Context()
	if _, err := two.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	changes := two.Watch(ctx)
	select {
	case <-changes: // a load's
	default:
	}

	counter := one.Counter(login.CounterAccountFailures, time.Minute)
	k := sha256.Sum256([]byte("alice"))
	for range 5 {
		if _, err := counter.Add(ctx, k, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// The other process's snapshot reaches etcd's revision (Snapshot
	// waits for it), past the five attempts, without telling its
	// watchers of a change.
	if _, err := two.Snapshot(ctx); err != nil {
		t.Fatalf("snapshot after attempts counted: %v", err)
	}
	select {
	case <-changes:
		t.Fatal("counting an attempt told the other process's watchers of a change")
	case <-time.After(200 * time.Millisecond):
	}
	mustApplySimple(t, one, "acme")
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("a tenant applied did not reach the other process's watchers")
	}

	cli := c.Client()
	resp, err := cli.Get(ctx, p+"counters/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 5 {
		t.Fatalf("%d counter keys, want one per attempt (5)", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			t.Fatalf("counter key %s has no lease", kv.Key)
		}
		ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
		if err != nil {
			t.Fatal(err)
		}
		if ttl.TTL < 60 {
			t.Errorf("counter key %s expires in %ds, before its window of 60s ends", kv.Key, ttl.TTL)
		}
	}
	t.Logf("counter key: %s (%d bytes)", resp.Kvs[0].Key, len(resp.Kvs[0].Key))
}

// guesser posts password sign-ins to replicas' sign-in ports as a browser
// posts the form, from one loopback source address: the client address the
// limits count (no proxy in front, --trusted-proxy-hops 0). Its form's
// csrf and pre-auth cookie are good at every replica (one master key). It
// is safe for concurrent use and returns its failures, for goroutines.
type guesser struct {
	client  *http.Client
	csrf    string
	cookies []*http.Cookie
}

// newGuesser opens acme's sign-in form at r from the address from.
func newGuesser(t *testing.T, r *replica, from string) *guesser {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	g := &guesser{client: &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	t.Cleanup(g.client.CloseIdleConnections)
	get, _ := http.NewRequest("GET", "http://"+r.http+"/_auth/login", nil)
	get.Host = "acme.app.test"
	get.Header.Set("Accept", "text/html")
	resp, err := g.client.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("GET /_auth/login at %s from %s: %d, csrf field found: %v", r.name, from, resp.StatusCode, m != nil)
	}
	g.csrf, g.cookies = string(m[1]), resp.Cookies()
	return g
}

// guess posts email and pw to acme's sign-in at r and returns the status.
func (g *guesser) guess(r *replica, email, pw string) (int, error) {
	form := url.Values{"email": {email}, "password": {pw}, "rd": {"/"}, "csrf": {g.csrf}}
	post, _ := http.NewRequest("POST", "http://"+r.http+"/_auth/login", strings.NewReader(form.Encode()))
	post.Host = "acme.app.test"
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Sec-Fetch-Site", "same-origin")
	post.Header.Set("Origin", "http://acme.app.test")
	post.Header.Set("Accept", "text/html")
	for _, c := range g.cookies {
		post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := g.client.Do(post)
	if err != nil {
		return 0, fmt.Errorf("POST /_auth/login at %s: %w", r.name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// mustGuess is guess on the test's goroutine.
func (g *guesser) mustGuess(t *testing.T, r *replica, email, pw string) int {
	t.Helper()
	status, err := g.guess(r, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// logMarks returns where each replica's output ends now.
func logMarks(rs []*replica) []int {
	marks := make([]int, len(rs))
	for i, r := range rs {
		marks[i] = len(r.proc.Output())
	}
	return marks
}

// refusalsSince counts the "sign-in refused" lines the replicas logged
// after marks (logMarks), by reason, once there are want of them (a line
// may reach the output just after its response): it waits up to five
// seconds, then returns what there is.
func refusalsSince(rs []*replica, marks []int, want int) map[string]int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		reasons, n := map[string]int{}, 0
		for i, r := range rs {
			for _, line := range strings.Split(r.proc.Output()[marks[i]:], "\n") {
				var rec struct{ Msg, Reason string }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sign-in refused" {
					reasons[rec.Reason]++
					n++
				}
			}
		}
		if n >= want || time.Now().After(deadline) {
			return reasons
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSignInLimitsAcrossReplicas is issue 9's proof that the attempt
// limits hold for the fleet: three `tenantgate serve` replicas on a
// three-member etcd cluster, with the default limits (10 failures per
// account, 50 per address, per 15 minutes). Guesses for one account
// spread over the replicas lock it at the same count as one replica, and
// guesses raced at all three at once get no more verdicts than that; then
// the right password is refused by every replica. It measures what a
// failed attempt and a flood cost etcd (etcd's revision counts the
// writes: each transaction that changes something is one).
func TestSignInLimitsAcrossReplicas(t *testing.T) {
	const accountFailures, addressFailures = 10, 50 // login.Limits' defaults
	c := etcdcluster.Start(t, etcdcluster.Options{ClientCertAuth: true})
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	p := prefix(t)
	store := []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-prefix", p,
		"--etcd-ca-file", c.CAFile, "--etcd-cert-file", c.CertFile, "--etcd-key-file", c.KeyFile,
		"--master-key-file", filepath.Join(dir, "tg.key")}
	tenantsFile := filepath.Join(dir, "acme.yaml")
	if err := os.WriteFile(tenantsFile, []byte(fleetTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	proc.Run(t, "", bin, append([]string{"tenants", "apply", "-f", tenantsFile}, store...)...)
	const password = "correct-horse-battery"
	for _, email := range []string{"ann@acme.test", "bob@acme.test"} {
		proc.Run(t, password+"\n", bin, append([]string{"users", "add", "--tenant", "acme", "--email", email, "--role", "member", "--password-stdin"}, store...)...)
	}
	var replicas []*replica
	for i := range 3 {
		replicas = append(replicas, startReplica(t, bin, fmt.Sprintf("replica %d", i+1), store...))
	}
	cli := c.Client()
	revision := func() int64 {
		t.Helper()
		resp, err := cli.Get(t.Context(), p+"schema")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}

	t.Run("guesses spread over the replicas", func(t *testing.T) {
		g := newGuesser(t, replicas[0], "127.0.0.2")
		for i := range accountFailures - 1 {
			if s := g.mustGuess(t, replicas[i%3], "ann@acme.test", "wrong"); s != http.StatusUnauthorized {
				t.Fatalf("wrong password %d at %s: %d, want 401", i+1, replicas[i%3].name, s)
			}
		}
		if s := g.mustGuess(t, replicas[2], "ann@acme.test", password); s != http.StatusSeeOther {
			t.Fatalf("right password after %d failures spread over the replicas: %d, want 303", accountFailures-1, s)
		}
		before := revision()
		for i := range accountFailures {
			if s := g.mustGuess(t, replicas[i%3], "ann@acme.test", "wrong"); s != http.StatusUnauthorized {
				t.Fatalf("wrong password %d at %s: %d, want 401", i+1, replicas[i%3].name, s)
			}
		}
		writes := revision() - before
		t.Logf("%d failed attempts spread over 3 replicas: %d etcd writes, %.1f per failed attempt (account, address and audit event)",
			accountFailures, writes, float64(writes)/accountFailures)
		if writes != 3*accountFailures {
			t.Errorf("%d failed attempts cost %d etcd writes, want 3 each (account, address and audit event)", accountFailures, writes)
		}
		for _, r := range replicas {
			marks := logMarks([]*replica{r})
			if s := g.mustGuess(t, r, "ann@acme.test", password); s != http.StatusUnauthorized {
				t.Errorf("%s: right password after %d failures spread over the replicas: %d, want 401", r.name, accountFailures, s)
			}
			if got := refusalsSince([]*replica{r}, marks, 1); got["account_locked"] != 1 {
				t.Errorf("%s logged %v, want one account_locked", r.name, got)
			}
		}
	})

	t.Run("guesses raced at every replica at once", func(t *testing.T) {
		const guesses = 3 * accountFailures
		g := newGuesser(t, replicas[0], "127.0.0.3")
		marks := logMarks(replicas)
		statuses := make([]int, guesses)
		errs := make([]error, guesses)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range guesses {
			wg.Go(func() {
				<-start
				statuses[i], errs[i] = g.guess(replicas[i%3], "bob@acme.test", "wrong")
			})
		}
		before := revision()
		close(start)
		wg.Wait()
		writes := revision() - before
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		reasons := refusalsSince(replicas, marks, guesses) // every guess is refused (401 or 429)
		t.Logf("%d wrong guesses raced at 3 replicas: statuses %v; logged %v; %d etcd writes", guesses, statuses, reasons, writes)
		checked := guesses - reasons["busy"] // the rest got no password check (429)
		if reasons["wrong_password"] > accountFailures || (checked >= accountFailures && reasons["wrong_password"] != accountFailures) {
			t.Errorf("%d raced guesses, %d of them checked, got %d verdicts (wrong_password), want exactly %d",
				guesses, checked, reasons["wrong_password"], accountFailures)
		}
		for _, r := range replicas {
			if s := g.mustGuess(t, r, "bob@acme.test", password); s != http.StatusUnauthorized {
				t.Errorf("%s: right password after the race: %d, want 401", r.name, s)
			}
		}
	})

	t.Run("what a flood costs etcd", func(t *testing.T) {
		// Unknown accounts, each attempt a new one: every attempt reaches
		// the password check (argon2id on a dummy hash) and is counted.
		flood := func(n, parallel int, from func(i int) *guesser) (statuses map[int]int, writes int64, took time.Duration) {
			t.Helper()
			statuses = map[int]int{}
			var mu sync.Mutex
			var errs []error
			next := make(chan int)
			var wg sync.WaitGroup
			before, began := revision(), time.Now()
			for range parallel {
				wg.Go(func() {
					for i := range next {
						s, err := from(i).guess(replicas[0], fmt.Sprintf("flood-%d-%d@acme.test", i, time.Now().UnixNano()), "guess")
						mu.Lock()
						statuses[s]++
						if err != nil {
							errs = append(errs, err)
						}
						mu.Unlock()
					}
				})
			}
			for i := range n {
				next <- i
			}
			close(next)
			wg.Wait()
			took = time.Since(began)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			return statuses, revision() - before, took
		}
		// Many addresses, each under its limit (a botnet): every attempt
		// is a verdict and three writes (the account, the address and the
		// refusal's audit event); what bounds them is argon2id.
		const many = 40
		guessers := make([]*guesser, many)
		for i := range many {
			guessers[i] = newGuesser(t, replicas[0], fmt.Sprintf("127.0.1.%d", i+1))
		}
		statuses, writes, took := flood(many, 8, func(i int) *guesser { return guessers[i] })
		rate := float64(statuses[http.StatusUnauthorized]) / took.Seconds()
		t.Logf("flood from %d addresses at one replica, 8 at a time: %v in %v: %.0f checked attempts/s, %d etcd writes (%.1f per attempt), %.0f writes/s",
			many, statuses, took.Round(time.Millisecond), rate, writes, float64(writes)/float64(many), float64(writes)/took.Seconds())
		if writes > 3*int64(statuses[http.StatusUnauthorized]) {
			t.Errorf("%d failed attempts cost %d etcd writes, want at most 3 each", statuses[http.StatusUnauthorized], writes)
		}

		// One address, past its limit: its attempts share one argon2id
		// lane per replica, the rest answered 429 with no counter write
		// (only the refusal's audit event), and once over the limit only
		// the account is counted.
		const one = 3 * addressFailures
		g := newGuesser(t, replicas[0], "127.0.0.4")
		statuses, writes, took = flood(one, 8, func(int) *guesser { return g })
		failed := int64(statuses[http.StatusUnauthorized])
		t.Logf("flood of %d attempts from one address at one replica, 8 at a time: %v in %v: %.0f checked attempts/s, %d etcd writes, %.0f writes/s",
			one, statuses, took.Round(time.Millisecond), float64(failed)/took.Seconds(), writes, float64(writes)/took.Seconds())
		limited := int64(statuses[http.StatusTooManyRequests])
		if over := failed - addressFailures; over > 0 && writes > 3*(addressFailures+8)+2*over+limited {
			t.Errorf("%d failed attempts and %d answered 429 from one address cost %d etcd writes, want 3 each up to its limit of %d (and the 8 in flight), then 2, and 1 (the audit event) per 429",
				failed, limited, writes, addressFailures)
		}
		resp, err := cli.Get(t.Context(), p+"counters/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("counter keys in etcd after the test: %d", resp.Count)
	})
}
