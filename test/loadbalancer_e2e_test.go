package test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestSignInBehindLoadBalancer: one client's 50 failed sign-ins never keep
// another from signing in, and with --trusted-proxy-hops 1 (Envoy's shipped
// xff_num_trusted_hops: 0 left as it is) each client behind a load balancer
// that appends to X-Forwarded-For is limited on its own address, whatever
// it sends itself, through a real Envoy in both transports. The balancer is
// simulated: each request carries the X-Forwarded-For it would forward (the
// client's own header, then the client's address).
func TestSignInBehindLoadBalancer(t *testing.T) {
	const attacker, victim = "203.0.113.66", "198.51.100.7"
	cases := []struct {
		name string
		opts []stack.Option
		// the client addresses tenantgate should log for the attacker and
		// the victim
		attackerKey, victimKey string
	}{
		{"routed, one trusted hop", []stack.Option{stack.ServeArgs("--trusted-proxy-hops", "1")}, attacker, victim},
		{"inline, one trusted hop", []stack.Option{stack.EnvoyConfig("envoy-inline.yaml"), stack.ServeConfig("inline-auth: true\ntrusted-proxy-hops: 1\n")}, attacker, victim},
		// No hops: the address Envoy saw, the test's own loopback, which
		// attacker and victim share as they would a balancer's.
		{"routed, Envoy is the edge", nil, "127.0.0.1", "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHarness(t, tc.opts...)
			host := "acme." + baseDomain
			cookies, csrf := s.loginPage(t, host)
			post := func(client, sent, email, pw string, more ...header) *response {
				t.Helper()
				xff := client
				if sent != "" {
					xff = sent + ", " + client
				}
				hs := append([]header{{"Origin", "http://" + host}, {"Sec-Fetch-Site", "same-origin"}, {"X-Forwarded-For", xff}}, more...)
				return s.postLogin(t, host, cookies, url.Values{"email": {email}, "password": {pw}, "rd": {"/"}, "csrf": {csrf}}, hs...)
			}

			// 50 failures, each on another unknown account (no account
			// locks), each claiming another address in the part of
			// X-Forwarded-For the client writes, and the victim's in
			// x-envoy-external-address.
			for i := range 50 {
				resp := post(attacker, "10.66.0."+strconv.Itoa(i), "nobody"+strconv.Itoa(i)+"@acme.test", "wrong",
					header{"X-Envoy-External-Address", victim})
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("failure %d: want 401, got\n%s", i, resp)
				}
			}
			refused := refusalsAtLeast(t, s, 50)
			for _, r := range refused[len(refused)-50:] {
				if r.Client != tc.attackerKey {
					t.Fatalf("failure logged for client %q, want %q", r.Client, tc.attackerKey)
				}
			}

			// The victim, behind the same balancer: a failure is counted on
			// its own address (or the shared one without hops), and its
			// right password signs in.
			if resp := post(victim, "", alice.Email, "wrong"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("victim, wrong password: want 401, got\n%s", resp)
			}
			last := refusalsAtLeast(t, s, len(refused)+1)
			if r := last[len(last)-1]; r.Client != tc.victimKey || r.AddressLimited != (tc.victimKey == tc.attackerKey) {
				t.Errorf("victim's failure logged client %q limited %v, want %q limited %v", r.Client, r.AddressLimited, tc.victimKey, tc.victimKey == tc.attackerKey)
			}
			if resp := post(victim, "", alice.Email, alice.Password); resp.StatusCode != http.StatusSeeOther || resp.cookie("tenantgate") == nil {
				t.Fatalf("victim, right password: want 303 with a session, got\n%s", resp)
			}

			// The attacker's own address is over its limit: its failures
			// say so, and a right password for an account that is not
			// locked still signs in.
			if resp := post(attacker, "", "nobody@acme.test", "wrong"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("attacker, wrong password: want 401, got\n%s", resp)
			}
			last = refusalsAtLeast(t, s, len(refused)+2)
			if r := last[len(last)-1]; r.Client != tc.attackerKey || !r.AddressLimited {
				t.Errorf("attacker's 51st failure logged client %q limited %v, want %q limited", r.Client, r.AddressLimited, tc.attackerKey)
			}
			if resp := post(attacker, "", carol.Email, carol.Password); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("right password from the limited address: want 303, got\n%s", resp)
			}
		})
	}
}

// refusal is one "sign-in refused" line of tenantgate's log.
type refusal struct {
	Reason         string `json:"reason"`
	Client         string `json:"client"`
	AddressLimited bool   `json:"address_limited"`
}

// refusalsAtLeast returns the "sign-in refused" lines tenantgate has logged,
// once there are at least n. The answer to a request comes before its log
// line reaches the test: the log travels through a pipe that a goroutine
// copies, so it is waited for, for at most 10 s.
func refusalsAtLeast(t *testing.T, s *harness, n int) []refusal {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := signInRefusals(t, s)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sign-in refusals logged after 10 s, want at least %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signInRefusals returns the "sign-in refused" lines tenantgate has logged
// so far, oldest first.
func signInRefusals(t *testing.T, s *harness) []refusal {
	t.Helper()
	var out []refusal
	for _, line := range strings.Split(s.Tenantgate.Output(), "\n") {
		var rec struct {
			Msg string `json:"msg"`
			refusal
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sign-in refused" {
			out = append(out, rec.refusal)
		}
	}
	return out
}

// TestSpoofedExternalAddress: Envoy passes a client's x-envoy-external-address
// on when it counts the request as internal (here: loopback peers listed in
// internal_address_config, a request without X-Forwarded-For). The /_auth/
// routes of envoy.yaml overwrite it, and inline mode replaces it with the
// Check's source, so the client cannot choose the address it is limited on.
func TestSpoofedExternalAddress(t *testing.T) {
	internalLoopback := func(config string) string {
		return replaceOnce(t, config, "address_prefix: 255.255.255.255\n                      prefix_len: 32",
			"address_prefix: 127.0.0.0\n                      prefix_len: 8")
	}
	cases := []struct {
		name string
		opts []stack.Option
	}{
		{"routed", []stack.Option{stack.EnvoyConfig("envoy.yaml", internalLoopback)}},
		{"inline", []stack.Option{stack.EnvoyConfig("envoy-inline.yaml", internalLoopback), stack.ServeConfig("inline-auth: true\n")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHarness(t, tc.opts...)
			host := "acme." + baseDomain
			cookies, csrf := s.loginPage(t, host)
			resp := s.postLogin(t, host, cookies, url.Values{"email": {"nobody@acme.test"}, "password": {"wrong"}, "rd": {"/"}, "csrf": {csrf}},
				header{"Origin", "http://" + host}, header{"Sec-Fetch-Site", "same-origin"}, header{"X-Envoy-External-Address", "198.51.100.7"})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failed sign-in: want 401, got\n%s", resp)
			}
			refused := refusalsAtLeast(t, s, 1)
			if r := refused[len(refused)-1]; r.Client != "127.0.0.1" {
				t.Errorf("failure logged for client %q, want the peer 127.0.0.1", r.Client)
			}
		})
	}
}
