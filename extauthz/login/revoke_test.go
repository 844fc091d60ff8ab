package login

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestSignedOutTokenStaysDeadThroughLeeway: a signed-out session stays
// refused after its exp, while the verifier's leeway would still accept it,
// even once later writes have dropped expired revocations (security
// catalogue item 47).
func TestSignedOutTokenStaysDeadThroughLeeway(t *testing.T) {
	e := newEnv(t)
	resp := e.signIn("acme.app.test", "", "alice@acme.test", alicePassword, "/")
	sess := cookieNamed(resp, "__Host-tenantgate")
	if sess == nil {
		t.Fatalf("sign-in: status %d", resp.StatusCode)
	}
	f := e.getForm("acme.app.test", "/_auth/logout")
	resp = e.do("POST", "acme.app.test", "/_auth/logout", url.Values{"csrf": {f.csrf}}, sameOrigin(), f.preauth, sess)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: status %d", resp.StatusCode)
	}

	// Past the session's exp (the Minter's TTL is an hour), within the
	// leeway the verifier allows for clock skew.
	e.clock.Advance(time.Hour + session.DefaultLeeway/2)
	// Any write drops the revocations that have expired.
	if _, err := e.store.AddMember(t.Context(), "globex", tenants.NewMember{Email: "carl@globex.test", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	if _, err := verifyOwnTenant(e.verifier, e.snaps.Load(), sess.Value); err == nil {
		t.Fatal("the signed-out session verifies again within the leeway after its revocation was dropped")
	}
}
