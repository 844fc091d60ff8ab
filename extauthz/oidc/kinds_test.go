package oidc

import (
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
)

// TestIdPRequestKinds: a sign-in through a fake IdP reports each exchange
// to the IdP client's observer under its kind: the discovery document,
// the signing keys (fetched by go-oidc under its own context), the code
// exchange and userinfo, each once and each ok.
func TestIdPRequestKinds(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	observe := func(k idpclient.Kind, result string) {
		mu.Lock()
		defer mu.Unlock()
		seen[string(k)+" "+result]++
	}
	e := newEnv(t)
	e.opener = NewOpener(Options{
		Sealer:            e.sealer,
		HTTPClient:        idpclient.New(idpclient.Options{AllowLoopbackHTTP: true, Observe: observe}),
		AllowLoopbackHTTP: true,
		Now:               e.clock.Now,
	})
	p := newFakeIdP(t)
	// Without an email in the ID token, the method asks userinfo.
	p.claims = func(c jwt.MapClaims) { delete(c, "email"); delete(c, "email_verified") }
	m := e.open(t, tenant(e.oidcMethod(t, p)), 1)
	a := newAttempt(1)
	if _, err := callback(m, a, authorize(t, m, a)); err != nil {
		t.Fatalf("Callback: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"discovery ok", "jwks ok", "token ok", "userinfo ok"} {
		if seen[want] != 1 {
			t.Errorf("%q observed %d times, want 1 (all: %v)", want, seen[want], seen)
		}
	}
	if len(seen) != 4 {
		t.Errorf("observed %v, want exactly discovery, jwks, token and userinfo", seen)
	}
}
