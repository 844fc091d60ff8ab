package fleet_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenantgate/tenantgate/test/keycloak"
)

// crewMailAttribute is the attribute crewjam's samlidp puts a user's email
// in (mail, as a URI).
const crewMailAttribute = "urn:oid:0.9.2342.19200300.100.1.3"

// crewUIDAttribute is the attribute crewjam's samlidp puts a user's name
// in (uid, as a URI): set by the IdP, not by the person.
const crewUIDAttribute = "urn:oid:0.9.2342.19200300.100.1.1"

// crewPassword is the password of the IdP's user.
const crewPassword = "correct horse"

// crewIDP is crewjam's samlidp (a real, third-party SAML IdP) on
// 127.0.0.1, configured through its REST API; its log is shown when the
// test fails.
type crewIDP struct {
	srv *httptest.Server
}

func startCrewIDP(t *testing.T) *crewIDP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleet test IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("samlidp log:\n%s", logBuf.String())
		}
	})
	srv := httptest.NewUnstartedServer(nil)
	base, err := url.Parse("http://" + srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	idp, err := samlidp.New(samlidp.Options{URL: *base, Key: key, Certificate: cert,
		Logger: log.New(&logBuf, "", log.Ltime), Store: &samlidp.MemoryStore{}})
	if err != nil {
		t.Fatal(err)
	}
	// crewjam signs with RSA-SHA1 unless told otherwise, which tenantgate
	// refuses.
	idp.IDP.SignatureMethod = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	c := &crewIDP{srv: srv}
	hash, err := bcrypt.GenerateFromPassword([]byte(crewPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := json.Marshal(samlidp.User{Name: "carol", Email: "carol@umbrella.test", HashedPassword: hash})
	c.put(t, "/users/carol", user)
	return c
}

// metadataURL is the IdP's metadata URL, which is also its entity id.
func (c *crewIDP) metadataURL() string { return c.srv.URL + "/metadata" }

// put calls the IdP's REST API.
func (c *crewIDP) put(t *testing.T, path string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, c.srv.URL+path, bytes.NewReader(body))
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("IdP: PUT %s: %d", path, resp.StatusCode)
	}
}

// umbrellaHost is umbrella's host as a browser sends it to Envoy.
func (f *fleet) umbrellaHost() string { return fmt.Sprintf("umbrella.app.test:%d", f.envoyPort) }

// registerSAML registers umbrella's SP metadata, as served through Envoy,
// at the IdP.
func (f *fleet) registerSAML(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.envoyURL("/_auth/saml/metadata"), nil)
	req.Host = f.umbrellaHost()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("umbrella's SP metadata through Envoy: %d %s", resp.StatusCode, md)
	}
	f.idp.put(t, "/services/umbrella", md)
}

// samlReplay signs carol in to umbrella through Envoy and the IdP, up to
// the IdP's auto-POST of the SAMLResponse, and posts that response (with
// the browser's attempt cookie) to replica A, which signs carol in, then
// the very same POST to replica B, which must refuse it: the assertion id
// is spent for the whole fleet.
func (f *fleet) samlReplay(t *testing.T) {
	t.Helper()
	start, _ := http.NewRequest("GET", f.envoyURL("/_auth/login?rd=%2F"), nil)
	start.Host = f.umbrellaHost()
	start.Header.Set("Accept", "text/html")
	resp, err := noRedirects.Do(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), f.idp.srv.URL) {
		t.Fatalf("umbrella's sign-in through Envoy: %d to %q, want 302 to the IdP", resp.StatusCode, resp.Header.Get("Location"))
	}
	attempt := resp.Cookies()
	form := idpResponseForm(t, resp.Header.Get("Location"))
	if want := "http://" + f.umbrellaHost() + "/_auth/saml/acs"; form.Action.String() != want {
		t.Fatalf("the IdP posts to %s, want %s", form.Action, want)
	}

	// What Envoy would send each replica: the Host without its port, the
	// port and scheme in X-Forwarded-*.
	acs := func(r *replica) *http.Response {
		req, _ := http.NewRequest("POST", "http://"+r.http+"/_auth/saml/acs", strings.NewReader(form.Values.Encode()))
		req.Host = "umbrella.app.test"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Port", fmt.Sprint(f.envoyPort))
		req.Header.Set("X-Envoy-External-Address", "127.0.0.1")
		for _, c := range attempt {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	a, b, c := f.replicas[0], f.replicas[1], f.replicas[2]
	first := acs(a)
	var session string
	for _, ck := range first.Cookies() {
		if ck.Name == "tenantgate" && ck.Value != "" {
			session = ck.Value
		}
	}
	if first.StatusCode != http.StatusSeeOther || session == "" {
		t.Fatalf("the SAML response at %s: %d, session cookie set: %v; want 303 with a session", a.name, first.StatusCode, session != "")
	}
	if got := c.ask(t, "umbrella.app.test", session); got.status != 200 || got.headers["x-user-email"] != "carol@umbrella.test" || got.headers["x-auth-method"] != "saml" {
		t.Fatalf("carol's SAML session at %s: %d %v", c.name, got.status, got.headers)
	}
	replayed := acs(b)
	for _, ck := range replayed.Cookies() {
		if ck.Name == "tenantgate" && ck.Value != "" {
			t.Errorf("the replayed SAML response at %s set a session cookie", b.name)
		}
	}
	if replayed.StatusCode < 400 {
		t.Fatalf("the same SAML response at %s: %d, want it refused", b.name, replayed.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.proc.Output(), "assertion refused by the replay cache") {
		if time.Now().After(deadline) {
			t.Fatalf("%s refused the replay (%d) but did not log the replay cache's refusal", b.name, replayed.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("one SAML response: %s signed carol in (303), %s refused the same POST (%d, the assertion id already spent)",
		a.name, b.name, replayed.StatusCode)
}

// idpResponseForm opens the AuthnRequest URL start at the IdP, signs in as
// carol, and returns the IdP's auto-POST form carrying the SAMLResponse.
// samlidp's login form posts to /login, which answers with the new IdP
// session rather than resuming the request, so start is opened again.
func idpResponseForm(t *testing.T, start string) keycloak.Form {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	for range 2 {
		resp, err := client.Get(start)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			t.Fatalf("IdP answered %s with %d", start, resp.StatusCode)
		}
		f, err := keycloak.ReadForm(resp, nil)
		if err != nil {
			t.Fatalf("IdP page: %v", err)
		}
		if f.Values.Has("SAMLResponse") {
			return f
		}
		f.Values.Set("user", "carol")
		f.Values.Set("password", crewPassword)
		after, err := f.Submit(context.Background(), client)
		if err != nil {
			t.Fatal(err)
		}
		after.Body.Close()
		if after.StatusCode != http.StatusOK {
			t.Fatalf("IdP login: %d", after.StatusCode)
		}
	}
	t.Fatal("no SAMLResponse after signing in at the IdP")
	return keycloak.Form{}
}

// syncBuffer is a bytes.Buffer safe for the IdP's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
