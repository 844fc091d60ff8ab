package keycloak

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestKeycloak starts one Keycloak and proves what the SSO end-to-end tests
// will rely on: every realm is served with the configuration in realms/, and
// a plain HTTP client with a cookie jar can sign in through Keycloak's own
// login form for each flavour (OIDC with PKCE, generic OAuth2, SAML).
func TestKeycloak(t *testing.T) {
	SkipIfDisabled(t)
	s := Start(t, Options{Origins: Origins{
		Acme:    "http://acme.app.test:18443",
		Globex:  "http://globex.app.test:18443",
		Initech: "http://initech.app.test:18443",
	}})

	t.Run("discovery", func(t *testing.T) {
		for _, realm := range []string{RealmOIDC, RealmSAML, RealmOAuth} {
			d := discover(t, s, realm)
			if d.Issuer != s.Issuer(realm) {
				t.Errorf("%s: issuer %q, want %q", realm, d.Issuer, s.Issuer(realm))
			}
			for name, v := range map[string]string{"authorization_endpoint": d.AuthorizationEndpoint,
				"token_endpoint": d.TokenEndpoint, "userinfo_endpoint": d.UserinfoEndpoint,
				"jwks_uri": d.JWKSURI, "end_session_endpoint": d.EndSessionEndpoint} {
				if !strings.HasPrefix(v, s.Issuer(realm)+"/") {
					t.Errorf("%s: %s = %q, not under the issuer", realm, name, v)
				}
			}
			if !slices.Contains(d.CodeChallengeMethods, "S256") {
				t.Errorf("%s: code_challenge_methods_supported %v lacks S256", realm, d.CodeChallengeMethods)
			}
			if !d.IssParameterSupported {
				t.Errorf("%s: authorization_response_iss_parameter_supported is false (RFC 9207)", realm)
			}
		}
	})

	t.Run("saml descriptor", func(t *testing.T) {
		md := samlDescriptor(t, s, RealmSAML)
		if md.EntityID != s.Issuer(RealmSAML) {
			t.Errorf("entityID %q, want %q", md.EntityID, s.Issuer(RealmSAML))
		}
		// The realm-wide descriptor always says WantAuthnRequestsSigned; the
		// client's saml.client.signature=false is what Keycloak enforces
		// (the unsigned request in "saml sp-initiated" proves it).
		if len(md.IDP.Keys) == 0 || md.IDP.Keys[0].Cert == "" {
			t.Fatalf("descriptor has no signing certificate")
		}
		if !slices.ContainsFunc(md.IDP.SSO, func(e endpoint) bool {
			return e.Binding == bindingRedirect && e.Location == s.SAMLEndpoint(RealmSAML)
		}) {
			t.Errorf("no HTTP-Redirect SingleSignOnService at %s in %+v", s.SAMLEndpoint(RealmSAML), md.IDP.SSO)
		}
	})

	t.Run("oidc code flow with pkce", func(t *testing.T) {
		alice, _ := UserByName(RealmOIDC, "alice")
		got := oidcSignIn(t, s, RealmOIDC, OIDCClientID, OIDCClientSecret, s.Origins().Acme+"/_auth/callback", alice, true)
		if got["email"] != alice.Email || got["email_verified"] != true {
			t.Errorf("id_token email %v verified %v, want %s verified", got["email"], got["email_verified"], alice.Email)
		}
		if g := claimStrings(got["groups"]); !equalSets(g, alice.Groups) {
			t.Errorf("id_token groups %v, want %v", g, alice.Groups)
		}
	})

	t.Run("oidc unverified email is flagged", func(t *testing.T) {
		m, _ := UserByName(RealmOIDC, "mallory")
		got := oidcSignIn(t, s, RealmOIDC, OIDCClientID, OIDCClientSecret, s.Origins().Acme+"/_auth/callback", m, true)
		if got["email_verified"] != false {
			t.Errorf("mallory's email_verified = %v, want false", got["email_verified"])
		}
	})

	t.Run("oidc refusals", func(t *testing.T) {
		ctx := context.Background()
		d := discover(t, s, RealmOIDC)
		redirect := s.Origins().Acme + "/_auth/callback"
		base := url.Values{"client_id": {OIDCClientID}, "response_type": {"code"}, "scope": {"openid"},
			"redirect_uri": {redirect}, "state": {"st"}, "nonce": {"nc"}}

		// PKCE is required: no code_challenge, no code.
		resp := get(t, newBrowser(t, s), d.AuthorizationEndpoint+"?"+base.Encode())
		loc := location(resp)
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" || loc.Query().Has("code") {
			t.Errorf("without PKCE: status %d location %q, want 302 with error=invalid_request", resp.StatusCode, loc)
		}

		// A redirect URI on another host is refused on Keycloak's own page.
		foreign := cloneValues(base)
		foreign.Set("redirect_uri", "http://evil.test:18443/_auth/callback")
		foreign.Set("code_challenge", pkceChallenge("x"))
		foreign.Set("code_challenge_method", "S256")
		resp = get(t, newBrowser(t, s), d.AuthorizationEndpoint+"?"+foreign.Encode())
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("foreign redirect_uri: status %d, want 400", resp.StatusCode)
		}

		// The wrong password shows the form again with Keycloak's message.
		ok := cloneValues(base)
		ok.Set("code_challenge", pkceChallenge("x"))
		ok.Set("code_challenge_method", "S256")
		b := newBrowser(t, s)
		page := get(t, b, d.AuthorizationEndpoint+"?"+ok.Encode())
		resp, err := SubmitLogin(ctx, b, page, "alice", "wrong-password")
		if err != nil {
			t.Fatal(err)
		}
		_, err = ReadForm(resp, IsLoginForm)
		if err != nil {
			t.Fatalf("after a wrong password: %v", err)
		}
	})

	t.Run("oidc code is single use", func(t *testing.T) {
		bob, _ := UserByName(RealmOIDC, "bob")
		redirect := s.Origins().Acme + "/_auth/callback"
		code, verifier := authorizeCode(t, s, RealmOIDC, OIDCClientID, redirect, bob, true)
		d := discover(t, s, RealmOIDC)
		if _, err := exchange(d.TokenEndpoint, OIDCClientID, OIDCClientSecret, redirect, code, verifier); err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		if _, err := exchange(d.TokenEndpoint, OIDCClientID, OIDCClientSecret, redirect, code, verifier); err == nil {
			t.Fatalf("second exchange of the same code succeeded")
		}
		// A wrong verifier fails too (fresh code).
		code, _ = authorizeCode(t, s, RealmOIDC, OIDCClientID, redirect, bob, true)
		if _, err := exchange(d.TokenEndpoint, OIDCClientID, OIDCClientSecret, redirect, code, "not-the-verifier-"+strings.Repeat("a", 40)); err == nil {
			t.Fatalf("exchange with the wrong code_verifier succeeded")
		}
	})

	t.Run("generic oauth2 userinfo", func(t *testing.T) {
		erin, _ := UserByName(RealmOAuth, "erin")
		redirect := s.Origins().Initech + "/_auth/callback"
		code, _ := authorizeCode(t, s, RealmOAuth, OAuthClientID, redirect, erin, false)
		d := discover(t, s, RealmOAuth)
		tok, err := exchange(d.TokenEndpoint, OAuthClientID, OAuthClientSecret, redirect, code, "")
		if err != nil {
			t.Fatal(err)
		}
		info := userinfo(t, d.UserinfoEndpoint, tok.AccessToken)
		if info["email"] != erin.Email || info["sub"] == nil || info["sub"] == "" {
			t.Errorf("userinfo %v: want sub and email %s", info, erin.Email)
		}
		if g := claimStrings(info["groups"]); !equalSets(g, erin.Groups) {
			t.Errorf("userinfo groups %v, want %v", g, erin.Groups)
		}
	})

	t.Run("saml sp-initiated", func(t *testing.T) {
		carol, _ := UserByName(RealmSAML, "carol")
		acs := s.Origins().Globex + SAMLACSPath
		entity := s.Origins().Globex + SAMLMetadataPath
		resp, reqID := samlSignIn(t, s, entity, acs, carol)
		if resp.Destination != acs || resp.InResponseTo != reqID {
			t.Errorf("Response Destination %q InResponseTo %q, want %q %q", resp.Destination, resp.InResponseTo, acs, reqID)
		}
		if resp.Status.Code.Value != "urn:oasis:names:tc:SAML:2.0:status:Success" {
			t.Fatalf("status %q", resp.Status.Code.Value)
		}
		a := resp.Assertion
		if resp.Signature == nil || a.Signature == nil {
			t.Errorf("response signed %v, assertion signed %v: want both", resp.Signature != nil, a.Signature != nil)
		}
		if a.Issuer != s.Issuer(RealmSAML) {
			t.Errorf("assertion issuer %q", a.Issuer)
		}
		if !slices.Contains(a.Conditions.Audiences, entity) {
			t.Errorf("audiences %v lack %s", a.Conditions.Audiences, entity)
		}
		sc := a.Subject.Confirmation.Data
		if sc.Recipient != acs || sc.InResponseTo != reqID {
			t.Errorf("SubjectConfirmationData recipient %q InResponseTo %q", sc.Recipient, sc.InResponseTo)
		}
		if a.Subject.NameID.Format != "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" || a.Subject.NameID.Value == "" {
			t.Errorf("NameID %+v, want a persistent id", a.Subject.NameID)
		}
		attrs := a.attributes()
		if !slices.Equal(attrs["email"], []string{carol.Email}) {
			t.Errorf("email attribute %v", attrs["email"])
		}
		if !equalSets(attrs["groups"], carol.Groups) {
			t.Errorf("groups attribute %v, want %v", attrs["groups"], carol.Groups)
		}
		// The signing certificate is the one the descriptor publishes.
		md := samlDescriptor(t, s, RealmSAML)
		if got, want := squash(a.Signature.Cert), squash(md.IDP.Keys[0].Cert); got != want {
			t.Errorf("assertion signed with a certificate the descriptor does not publish")
		}
	})

	t.Run("saml foreign acs refused", func(t *testing.T) {
		carol, _ := UserByName(RealmSAML, "carol")
		entity := s.Origins().Globex + SAMLMetadataPath
		b := newBrowser(t, s)
		page := get(t, b, samlRedirectURL(t, s, entity, "http://evil.test:18443"+SAMLACSPath, "_foreign"))
		if page.StatusCode == http.StatusOK {
			// Keycloak may show its login form before it checks; it must
			// still never post a response to the foreign ACS.
			if f, err := ReadForm(page, IsLoginForm); err == nil {
				f.Values.Set("username", carol.Username)
				f.Values.Set("password", carol.Password)
				page, err = f.Submit(context.Background(), b)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				return
			}
		}
		if f, err := ReadForm(page, func(f Form) bool { return f.Values.Has("SAMLResponse") }); err == nil {
			t.Fatalf("Keycloak posted a SAML response to %s", f.Action)
		}
	})
}

// --- OIDC ---

type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	IssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

func discover(t *testing.T, s *Server, realm string) discovery {
	t.Helper()
	var d discovery
	getJSON(t, s.DiscoveryURL(realm), &d)
	return d
}

// authorizeCode signs user in at realm's authorization endpoint through
// the login form and returns the code from the redirect, checking state and
// the RFC 9207 iss parameter. With pkce it sends an S256 challenge and
// returns the verifier.
func authorizeCode(t *testing.T, s *Server, realm, clientID, redirect string, user User, pkce bool) (code, verifier string) {
	t.Helper()
	d := discover(t, s, realm)
	state, nonce := randomString(t), randomString(t)
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"state": {state}, "scope": {"openid email profile"}, "nonce": {nonce}}
	if realm == RealmOAuth {
		// Generic OAuth2: no nonce, no ID token used. Keycloak's userinfo
		// endpoint refuses access tokens without the openid scope ("Missing
		// openid scope"), so a generic-OAuth2 configuration for Keycloak
		// must still ask for it.
		q.Del("nonce")
	}
	if pkce {
		verifier = randomString(t) + randomString(t)
		q.Set("code_challenge", pkceChallenge(verifier))
		q.Set("code_challenge_method", "S256")
	}
	b := newBrowser(t, s)
	page := get(t, b, d.AuthorizationEndpoint+"?"+q.Encode())
	if page.StatusCode != http.StatusOK {
		t.Fatalf("authorization endpoint: status %d, location %q", page.StatusCode, page.Header.Get("Location"))
	}
	resp, err := SubmitLogin(context.Background(), b, page, user.Username, user.Password)
	if err != nil {
		t.Fatalf("sign in %s/%s: %v", realm, user.Username, err)
	}
	defer resp.Body.Close()
	loc := location(resp)
	if resp.StatusCode != http.StatusFound || loc.Host == "" {
		f, err := ReadForm(resp, nil)
		t.Fatalf("after login: status %d, want 302 to %s (form %+v, %v)", resp.StatusCode, redirect, f.ID, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Fatalf("redirected to %s, want %s", got, redirect)
	}
	if loc.Query().Get("state") != state {
		t.Errorf("state %q, want %q", loc.Query().Get("state"), state)
	}
	if loc.Query().Get("iss") != s.Issuer(realm) {
		t.Errorf("iss parameter %q, want %q", loc.Query().Get("iss"), s.Issuer(realm))
	}
	code = loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc.Redacted())
	}
	return code, verifier
}

// oidcSignIn runs the whole code flow and returns the verified ID token's
// claims.
func oidcSignIn(t *testing.T, s *Server, realm, clientID, secret, redirect string, user User, pkce bool) jwt.MapClaims {
	t.Helper()
	code, verifier := authorizeCode(t, s, realm, clientID, redirect, user, pkce)
	d := discover(t, s, realm)
	tok, err := exchange(d.TokenEndpoint, clientID, secret, redirect, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.IDToken == "" {
		t.Fatal("token response has no id_token")
	}
	keys := jwks(t, d.JWKSURI)
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok.IDToken, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.Issuer(realm)), jwt.WithAudience(clientID),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	if claims["azp"] != clientID {
		t.Errorf("azp %v, want %s", claims["azp"], clientID)
	}
	return claims
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	TokenType   string `json:"token_type"`
}

func exchange(tokenURL, clientID, secret, redirect, code, verifier string) (tokenResponse, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return tokenResponse{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return tokenResponse{}, fmt.Errorf("token endpoint: status %d error %q", resp.StatusCode, e.Error)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return tokenResponse{}, fmt.Errorf("token response: %w", err)
	}
	return tok, nil
}

func userinfo(t *testing.T, endpoint, accessToken string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: status %d: %s (%s)", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	return m
}

func jwks(t *testing.T, uri string) map[string]*rsa.PublicKey {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid, Kty, Use, Alg, N, E string
		} `json:"keys"`
	}
	getJSON(t, uri, &set)
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Use != "sig" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("jwks key %s: %v", k.Kid, err)
		}
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(out) == 0 {
		t.Fatalf("no RSA signing keys at %s", uri)
	}
	return out
}

func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// --- SAML ---

const (
	bindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	bindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
)

type endpoint struct {
	Binding  string `xml:"Binding,attr"`
	Location string `xml:"Location,attr"`
}

type entityDescriptor struct {
	EntityID string `xml:"entityID,attr"`
	IDP      struct {
		WantAuthnRequestsSigned string `xml:"WantAuthnRequestsSigned,attr"`
		Keys                    []struct {
			Use  string `xml:"use,attr"`
			Cert string `xml:"KeyInfo>X509Data>X509Certificate"`
		} `xml:"KeyDescriptor"`
		SSO []endpoint `xml:"SingleSignOnService"`
	} `xml:"IDPSSODescriptor"`
}

func samlDescriptor(t *testing.T, s *Server, realm string) entityDescriptor {
	t.Helper()
	resp := get(t, &http.Client{Timeout: 30 * time.Second}, s.SAMLDescriptorURL(realm))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("descriptor: status %d", resp.StatusCode)
	}
	var md entityDescriptor
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
		t.Fatalf("descriptor: %v", err)
	}
	return md
}

type signature struct {
	Cert string `xml:"KeyInfo>X509Data>X509Certificate"`
}

type samlResponse struct {
	Destination  string     `xml:"Destination,attr"`
	InResponseTo string     `xml:"InResponseTo,attr"`
	Signature    *signature `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
	Status       struct {
		Code struct {
			Value string `xml:"Value,attr"`
		} `xml:"StatusCode"`
	} `xml:"Status"`
	Assertion samlAssertion `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
}

type samlAssertion struct {
	Issuer    string     `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	Signature *signature `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
	Subject   struct {
		NameID struct {
			Format string `xml:"Format,attr"`
			Value  string `xml:",chardata"`
		} `xml:"NameID"`
		Confirmation struct {
			Data struct {
				Recipient    string `xml:"Recipient,attr"`
				InResponseTo string `xml:"InResponseTo,attr"`
			} `xml:"SubjectConfirmationData"`
		} `xml:"SubjectConfirmation"`
	} `xml:"Subject"`
	Conditions struct {
		Audiences []string `xml:"AudienceRestriction>Audience"`
	} `xml:"Conditions"`
	Attributes []struct {
		Name   string   `xml:"Name,attr"`
		Values []string `xml:"AttributeValue"`
	} `xml:"AttributeStatement>Attribute"`
}

func (a samlAssertion) attributes() map[string][]string {
	m := map[string][]string{}
	for _, at := range a.Attributes {
		m[at.Name] = append(m[at.Name], at.Values...)
	}
	return m
}

// samlRedirectURL builds an SP-initiated, unsigned AuthnRequest for the
// HTTP-Redirect binding (SAML bindings §3.4.4.1: DEFLATE, base64, URL).
func samlRedirectURL(t *testing.T, s *Server, entity, acs, id string) string {
	t.Helper()
	req := fmt.Sprintf(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" `+
		`xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID=%q Version="2.0" IssueInstant=%q `+
		`Destination=%q AssertionConsumerServiceURL=%q ProtocolBinding=%q>`+
		`<saml:Issuer>%s</saml:Issuer></samlp:AuthnRequest>`,
		id, time.Now().UTC().Format("2006-01-02T15:04:05Z"), s.SAMLEndpoint(RealmSAML), acs, bindingPOST, entity)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	if _, err := w.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(buf.Bytes())}, "RelayState": {"relay-" + id}}
	return s.SAMLEndpoint(RealmSAML) + "?" + q.Encode()
}

// samlSignIn signs user in through an SP-initiated request and returns the
// decoded SAMLResponse that Keycloak's auto-POST form would send to the ACS.
func samlSignIn(t *testing.T, s *Server, entity, acs string, user User) (samlResponse, string) {
	t.Helper()
	id := "_" + randomString(t)
	b := newBrowser(t, s)
	page := get(t, b, samlRedirectURL(t, s, entity, acs, id))
	if page.StatusCode != http.StatusOK {
		t.Fatalf("SAML endpoint: status %d", page.StatusCode)
	}
	resp, err := SubmitLogin(context.Background(), b, page, user.Username, user.Password)
	if err != nil {
		t.Fatalf("sign in %s: %v", user.Username, err)
	}
	f, err := ReadForm(resp, func(f Form) bool { return f.Values.Has("SAMLResponse") })
	if err != nil {
		t.Fatalf("after login: %v", err)
	}
	if f.Action.String() != acs || f.Method != http.MethodPost {
		t.Fatalf("form posts (%s) to %s, want POST to %s", f.Method, f.Action, acs)
	}
	if f.Values.Get("RelayState") != "relay-"+id {
		t.Errorf("RelayState %q", f.Values.Get("RelayState"))
	}
	raw, err := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
	if err != nil {
		t.Fatalf("SAMLResponse: %v", err)
	}
	var r samlResponse
	if err := xml.Unmarshal(raw, &r); err != nil {
		t.Fatalf("SAMLResponse: %v", err)
	}
	return r, id
}

// --- HTTP helpers ---

// newBrowser returns a client with a cookie jar that follows redirects
// within Keycloak and stops at the first one that leaves it (to the app's
// callback or ACS), as the app's server would receive it.
func newBrowser(t *testing.T, s *Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, _ := url.Parse(s.URL())
	return &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != kc.Host || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp := get(t, &http.Client{Timeout: 30 * time.Second}, u)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func location(resp *http.Response) *url.URL {
	loc, err := resp.Location()
	if err != nil {
		return &url.URL{}
	}
	return loc
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func claimStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func squash(s string) string { return strings.Join(strings.Fields(s), "") }
