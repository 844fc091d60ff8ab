package saml

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/test/keycloak"
)

// Attribute names crewjam's samlidp uses for a user's email and groups
// (DefaultAssertionMaker): mail and eduPersonAffiliation, as URIs. A tenant
// using such an IdP names them in emailAttribute and groupsClaim.
const (
	crewMailAttribute   = "urn:oid:0.9.2342.19200300.100.1.3"
	crewGroupsAttribute = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
	// crewPrincipalAttribute is eduPersonPrincipalName, the user's email
	// as crewjam sends it (also its transient NameID's value).
	crewPrincipalAttribute = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
)

// crewIDP is one of crewjam's samlidp servers (a real, third-party SAML
// IdP) on 127.0.0.1, configured only through its own REST API.
type crewIDP struct {
	srv *httptest.Server
}

// startCrewIDP starts a samlidp that signs with kp and signatureMethod (""
// leaves crewjam's default, RSA-SHA1). Its log is shown when the test
// fails.
func startCrewIDP(t *testing.T, kp keyPair, signatureMethod string) *crewIDP {
	t.Helper()
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
	idp, err := samlidp.New(samlidp.Options{
		URL:         *base,
		Key:         kp.key,
		Certificate: kp.cert,
		Logger:      log.New(&logBuf, "", log.Ltime),
		Store:       &samlidp.MemoryStore{},
	})
	if err != nil {
		t.Fatal(err)
	}
	idp.IDP.SignatureMethod = signatureMethod
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	return &crewIDP{srv: srv}
}

// metadataURL is the IdP's metadata URL, which is also its entity id.
func (c *crewIDP) metadataURL() string { return c.srv.URL + "/metadata" }

// put calls the IdP's REST API.
func (c *crewIDP) put(t *testing.T, path string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, c.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT %s: status %d", path, resp.StatusCode)
	}
}

// registerSP registers the SP metadata m serves at e as service name.
func (c *crewIDP) registerSP(t *testing.T, name string, m *Method, e signin.Endpoint) {
	t.Helper()
	md, err := m.Metadata(e)
	if err != nil {
		t.Fatal(err)
	}
	c.put(t, "/services/"+name, md)
}

// crewPassword is every test user's password at a crewIDP.
const crewPassword = "correct horse"

// addUser creates a user who signs in with crewPassword. The hash is made
// here at bcrypt's lowest cost (samlidp would use its default, slow under
// -race); samlidp still checks the password against it at sign-in.
func (c *crewIDP) addUser(t *testing.T, name, email string, groups ...string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(crewPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(samlidp.User{Name: name, Email: email, Groups: groups, HashedPassword: hash})
	if err != nil {
		t.Fatal(err)
	}
	c.put(t, "/users/"+name, body)
}

// addShortcut makes /login/<name> start an IdP-initiated sign-in to the SP
// spEntityID.
func (c *crewIDP) addShortcut(t *testing.T, name, spEntityID string) {
	t.Helper()
	body, err := json.Marshal(samlidp.Shortcut{ServiceProviderID: spEntityID})
	if err != nil {
		t.Fatal(err)
	}
	c.put(t, "/shortcuts/"+name, body)
}

// idpBrowser is a browser signed in (or about to be) at one crewIDP as one
// user.
type idpBrowser struct {
	client *http.Client
	user   string
}

func newIDPBrowser(t *testing.T, user string) *idpBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &idpBrowser{client: &http.Client{Jar: jar, Timeout: 30 * time.Second}, user: user}
}

// responseForm opens start (an AuthnRequest URL or a /login/<shortcut> URL)
// and returns the IdP's auto-POST form carrying the SAMLResponse. Without
// an IdP session it fills in samlidp's login form first. That form posts
// to /login, which answers with the new session rather than resuming the
// SAML request, so the browser then opens start again with its session
// cookie.
func (b *idpBrowser) responseForm(t *testing.T, start string) keycloak.Form {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		resp, err := b.client.Get(start)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			t.Fatalf("IdP answered %s with status %d", start, resp.StatusCode)
		}
		f, err := keycloak.ReadForm(resp, nil)
		if err != nil {
			t.Fatalf("IdP page: %v", err)
		}
		if f.Values.Has("SAMLResponse") {
			return f
		}
		if !f.Values.Has("user") || !f.Values.Has("password") {
			t.Fatalf("IdP page has neither a SAMLResponse nor a login form: %+v", f)
		}
		f.Values.Set("user", b.user)
		f.Values.Set("password", crewPassword)
		after, err := f.Submit(ctx, b.client)
		if err != nil {
			t.Fatal(err)
		}
		after.Body.Close()
		if after.StatusCode != http.StatusOK {
			t.Fatalf("IdP login answered status %d", after.StatusCode)
		}
	}
	t.Fatal("no SAMLResponse after signing in at the IdP")
	return keycloak.Form{}
}

// responseXML is the decoded SAMLResponse of f.
func responseXML(t *testing.T, f keycloak.Form) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// withResponse returns a copy of f carrying raw as its SAMLResponse.
func withResponse(f keycloak.Form, raw []byte) keycloak.Form {
	g := f
	g.Values = url.Values{}
	for k, v := range f.Values {
		g.Values[k] = append([]string(nil), v...)
	}
	g.Values.Set("SAMLResponse", base64.StdEncoding.EncodeToString(raw))
	return g
}

// editResponse returns f with its response parsed, changed by edit and
// serialised again; the signatures are left as the IdP made them.
func editResponse(t *testing.T, f keycloak.Form, edit func(t *testing.T, root *etree.Element)) keycloak.Form {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(responseXML(t, f)); err != nil {
		t.Fatal(err)
	}
	edit(t, doc.Root())
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return withResponse(f, raw)
}

// unwrapAssertion removes what the IdP signed at the Response level — its
// Signature, Destination and InResponseTo — leaving the IdP's signed
// Assertion untouched in an unsigned Response. This is what an attacker
// holding someone's response can make of it, and it lets a test reach the
// assertion-level checks with a real IdP signature.
func unwrapAssertion(t *testing.T, root *etree.Element) {
	t.Helper()
	sig := root.SelectElement("Signature")
	if sig == nil {
		t.Fatal("the IdP did not sign the Response")
	}
	root.RemoveChild(sig)
	root.RemoveAttr("Destination")
	root.RemoveAttr("InResponseTo")
}

// acsPost is the browser's auto-POST of f to the ACS URL.
func acsPost(f keycloak.Form) *http.Request {
	r := httptest.NewRequest(http.MethodPost, f.Action.String(), strings.NewReader(f.Values.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
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

// crewTenant is a tenant whose only method is SAML against idp's metadata
// URL, mapping crewjam's mail and eduPersonAffiliation attributes. crewjam's
// IdP sends only transient NameIDs, so the account is keyed by its
// eduPersonPrincipalName (subjectAttribute), as an operator would have to.
func crewTenant(name, internalID string, sk tenants.SAMLKey, idp *crewIDP, cfg ...tenantCfg) *tenants.Tenant {
	m := entry{
		Type: Type,
		Config: Config{IDPMetadataURL: idp.metadataURL(), EmailAttribute: crewMailAttribute, GroupsClaim: crewGroupsAttribute,
			NameIDFormat: NameIDTransient, SubjectAttribute: crewPrincipalAttribute},
		Roles: tenants.RoleMapping{GroupRoles: map[string][]string{"admins": {"admin"}, "devs": {"dev"}}, DefaultRoles: []string{"member"}},
	}
	for _, c := range cfg {
		c(&m)
	}
	return &tenants.Tenant{ID: name, InternalID: internalID, SAMLKey: &sk, Methods: []tenants.Method{m.method()}}
}

// openCrewMethod opens t's method the way cmd does, fetching the IdP
// metadata from idp over HTTP; now nil is the real clock.
func openCrewMethod(t *testing.T, tn *tenants.Tenant, idp *crewIDP, replay ReplayCache, now func() time.Time) *Method {
	t.Helper()
	lm, err := NewOpener(Options{Sealer: keys(t).sealer, HTTPClient: idp.srv.Client(), Replay: replay, Now: now})(context.Background(), tn, 0)
	if err != nil {
		t.Fatal(err)
	}
	return lm.(*Method)
}

// begin starts a sign-in attempt at m for endpoint e, as the /_auth/
// handler does, and returns it with the AuthnRequest URL.
func begin(t *testing.T, m *Method, id string, e signin.Endpoint) (*signin.Attempt, string) {
	t.Helper()
	a := &signin.Attempt{ID: id, TenantID: m.tenantID, Endpoint: e, Created: time.Now()}
	u, reqID, err := m.AuthnRequestURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	a.SAMLRequestID = reqID
	return a, u
}

// signIn runs an SP-initiated sign-in at m through b's IdP and returns the
// attempt and the IdP's auto-POST form, checking that the form goes to
// the attempt's ACS URL with the attempt as RelayState.
func signIn(t *testing.T, m *Method, b *idpBrowser, attemptID string, e signin.Endpoint) (*signin.Attempt, keycloak.Form) {
	t.Helper()
	a, u := begin(t, m, attemptID, e)
	f := b.responseForm(t, u)
	if f.Action.String() != ACSURL(e) || f.Method != http.MethodPost || f.Values.Get("RelayState") != a.ID {
		t.Fatalf("IdP form: %s %s with RelayState %q, want POST %s with %q", f.Method, f.Action, f.Values.Get("RelayState"), ACSURL(e), a.ID)
	}
	return a, f
}
