package login

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// balancer is the address of the one load balancer in front of Envoy in
// these tests.
const balancer = "10.0.0.5"

// postBehindBalancer posts a sign-in as Envoy forwards it from behind the
// balancer: the balancer appended client to whatever X-Forwarded-For the
// client sent (sent), Envoy appended the balancer and, taking the balancer
// for the client (xff_num_trusted_hops: 0), set x-envoy-external-address to
// it.
func (e *env) postBehindBalancer(client, sent, email, pw string) *http.Response {
	e.t.Helper()
	f := e.getForm("acme.app.test", "/_auth/login")
	hdr := sameOrigin()
	xff := client + ", " + balancer
	if sent != "" {
		xff = sent + ", " + xff
	}
	hdr.Set("X-Forwarded-For", xff)
	hdr.Set(HeaderExternalAddress, balancer)
	return e.do("POST", "acme.app.test", "/_auth/login",
		url.Values{"email": {email}, "password": {pw}, "rd": {"/"}, "csrf": {f.csrf}}, hdr, f.preauth)
}

// refusals returns the "sign-in refused" log records, oldest first.
func (e *env) refusals() []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			e.t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "sign-in refused" {
			out = append(out, rec)
		}
	}
	return out
}

// lastRefusal returns the newest "sign-in refused" record.
func (e *env) lastRefusal() map[string]any {
	e.t.Helper()
	rs := e.refusals()
	if len(rs) == 0 {
		e.t.Fatal("no sign-in refused in the log")
	}
	return rs[len(rs)-1]
}

// failFrom makes n failed sign-ins from client behind the balancer, each
// for another unknown account (so no account locks) and with another
// X-Forwarded-For prefix of the client's choosing.
func (e *env) failFrom(client string, n int) {
	e.t.Helper()
	for i := range n {
		resp := e.postBehindBalancer(client, "6.6.6."+strconv.Itoa(i), "nobody"+strconv.Itoa(i)+"@acme.test", "wrong")
		if resp.StatusCode != http.StatusUnauthorized {
			e.t.Fatalf("failure %d: status %d, want 401", i, resp.StatusCode)
		}
	}
}

// TestAddressLimitNeverRefusesARightPassword: behind one load balancer
// whose hop is not configured, everyone shares the balancer's address; 50
// failures by one of them must not keep the others (or the attacker's
// neighbours) from signing in with their right password. Wrong passwords
// still fail alike, and a locked account stays locked.
func TestAddressLimitNeverRefusesARightPassword(t *testing.T) {
	e := newEnv(t) // the default limits: 50 failures per address, 10 per account
	e.failFrom("203.0.113.66", 50)
	if got := e.lastRefusal(); got["client"] != balancer || got["address_limited"] != false {
		t.Errorf("50th failure logged %v, want client %s not yet limited", got, balancer)
	}

	resp := e.postBehindBalancer("198.51.100.7", "", "alice@acme.test", alicePassword)
	if resp.StatusCode != http.StatusSeeOther || cookieNamed(resp, "__Host-tenantgate") == nil {
		t.Fatalf("right password from the shared address after 50 failures: status %d, want 303 with a session", resp.StatusCode)
	}

	resp = e.postBehindBalancer("198.51.100.7", "", "alice@acme.test", "wrong")
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Invalid email or password.") {
		t.Fatalf("wrong password from the limited address: status %d, want the generic 401", resp.StatusCode)
	}
	if got := e.lastRefusal(); got["reason"] != "wrong_password" || got["address_limited"] != true {
		t.Errorf("failure over the address limit logged %v, want wrong_password with address_limited", got)
	}

	// An account over its own limit is refused even the right password,
	// from a limited address as from any other.
	for range 10 {
		e.postBehindBalancer("198.51.100.7", "", "alice@acme.test", "wrong")
	}
	resp = e.postBehindBalancer("198.51.100.7", "", "alice@acme.test", alicePassword)
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Invalid email or password.") {
		t.Fatalf("locked account, right password: status %d, want the generic 401", resp.StatusCode)
	}
}

// TestTrustedProxyHopsSeparateClients: with --trusted-proxy-hops 1 each
// client behind the balancer is its own address, whatever it puts in
// X-Forwarded-For itself or in x-envoy-external-address.
func TestTrustedProxyHopsSeparateClients(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.TrustedProxyHops = 1 })
	e.failFrom("203.0.113.66", 50)
	if got := e.lastRefusal(); got["client"] != "203.0.113.66" {
		t.Errorf("failure logged client %v, want 203.0.113.66", got["client"])
	}

	// Another client behind the same balancer has a bucket of its own.
	e.postBehindBalancer("198.51.100.7", "203.0.113.66", "alice@acme.test", "wrong")
	if got := e.lastRefusal(); got["client"] != "198.51.100.7" || got["address_limited"] != false {
		t.Errorf("other client's failure logged %v, want client 198.51.100.7 not limited", got)
	}
	resp := e.postBehindBalancer("198.51.100.7", "", "alice@acme.test", alicePassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("other client, right password: status %d, want 303", resp.StatusCode)
	}

	// The attacker's own address is over its limit; naming another address
	// in the headers a client controls changes nothing.
	f := e.getForm("acme.app.test", "/_auth/login")
	hdr := sameOrigin()
	hdr.Set("X-Forwarded-For", "198.51.100.7, 203.0.113.66, "+balancer)
	hdr.Set(HeaderExternalAddress, "198.51.100.7")
	e.do("POST", "acme.app.test", "/_auth/login",
		url.Values{"email": {"nobody@acme.test"}, "password": {"x"}, "rd": {"/"}, "csrf": {f.csrf}}, hdr, f.preauth)
	if got := e.lastRefusal(); got["client"] != "203.0.113.66" || got["address_limited"] != true {
		t.Errorf("attacker's failure logged %v, want client 203.0.113.66 limited", got)
	}
	// ... and a right password from it still signs in.
	resp = e.postBehindBalancer("203.0.113.66", "", "alice@acme.test", alicePassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("limited client, right password: status %d, want 303", resp.StatusCode)
	}
}

// TestLimitedLane: the attempts of addresses over their limit share a
// narrow lane of password checks; with it taken (a flood in progress) such
// an address gets 429 without a check, while every other address signs in
// as usual.
func TestLimitedLane(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.TrustedProxyHops = 1; h.Limits = Limits{AddressFailures: 3} })
	e.failFrom("203.0.113.66", 3)
	e.h.init()
	if !e.h.limited.tryTake() { // the one slot, held by a flood
		t.Fatal("lane full before any limited attempt")
	}
	before := len(e.refusals())
	resp := e.postBehindBalancer("203.0.113.66", "", "alice@acme.test", alicePassword)
	if body := readBody(t, resp); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "Too many people are signing in right now") || strings.Contains(body, "Invalid email or password") {
		t.Fatalf("limited address, lane full: status %d, Retry-After %q; want 429 asking to retry", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if rs := e.refusals(); len(rs) != before+1 || rs[len(rs)-1]["reason"] != "address_busy" {
		t.Errorf("lane full logged %v, want one address_busy", rs[before:])
	}
	if resp := e.postBehindBalancer("198.51.100.7", "", "alice@acme.test", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another address while the lane is full: status %d, want 303", resp.StatusCode)
	}
	e.h.limited.give()
	if resp := e.postBehindBalancer("203.0.113.66", "", "alice@acme.test", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("limited address, lane free: status %d, want 303", resp.StatusCode)
	}
}
