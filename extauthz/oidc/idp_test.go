package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeIdP is an in-process OpenID provider: discovery, JWKS, an
// authorization endpoint that approves at once, a token endpoint that checks
// the client, the redirect URI and the PKCE verifier, userinfo and
// end-session. Tests bend it through its hook fields.
type fakeIdP struct {
	srv      *httptest.Server
	issuer   string
	clientID string
	secret   string
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey

	// What discovery advertises and how the authorization endpoint answers.
	advertiseIss bool // authorization_response_iss_parameter_supported
	sendIss      bool // add iss to the authorization response
	endSession   bool
	userinfo     bool
	discoveryIss string // the issuer discovery claims; default issuer

	// alg signs ID tokens: RS256 (default), ES256, none, or "foreign" (RS256
	// with a key not in the JWKS but the same kid).
	alg string
	// claims edits the ID token's claims before signing.
	claims func(c jwt.MapClaims)
	// userinfoClaims edits the userinfo response.
	userinfoClaims func(c map[string]any)
	now            func() time.Time

	mu            sync.Mutex
	codes         map[string]authRequest
	discoveryHits atomic.Int32
	pkceChecked   atomic.Int32
}

// testKeys are generated once per test binary: RSA generation dominates the
// run time otherwise. Each fake IdP uses rsa[0]; rsa[1] is "another key".
var testKeys = sync.OnceValue(func() (k struct {
	rsa [2]*rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}) {
	for i := range k.rsa {
		var err error
		if k.rsa[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	var err error
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

type authRequest struct {
	clientID, redirectURI, challenge, nonce string
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	keys := testKeys()
	rk, ek := keys.rsa[0], keys.ec
	p := &fakeIdP{
		clientID:     "tenantgate",
		secret:       "s3cret-" + rand.Text(),
		rsaKey:       rk,
		ecKey:        ek,
		advertiseIss: true,
		sendIss:      true,
		endSession:   true,
		userinfo:     true,
		alg:          "RS256",
		now:          time.Now,
		codes:        make(map[string]authRequest),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfoHandler)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + "/realms/acme"
	// Serve everything below the issuer path too, as Keycloak does.
	mux.Handle("/realms/acme/", http.StripPrefix("/realms/acme", mux))
	return p
}

func (p *fakeIdP) discovery(w http.ResponseWriter, r *http.Request) {
	p.discoveryHits.Add(1)
	iss := p.issuer
	if p.discoveryIss != "" {
		iss = p.discoveryIss
	}
	doc := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"jwks_uri":                              p.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	if p.advertiseIss {
		doc["authorization_response_iss_parameter_supported"] = true
	}
	if p.endSession {
		doc["end_session_endpoint"] = p.issuer + "/logout?realm=acme"
	}
	if p.userinfo {
		doc["userinfo_endpoint"] = p.issuer + "/userinfo"
	}
	writeJSON(w, http.StatusOK, doc)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *fakeIdP) jwks(w http.ResponseWriter, r *http.Request) {
	ec := p.ecKey.PublicKey
	x, y := ec.X.FillBytes(make([]byte, 32)), ec.Y.FillBytes(make([]byte, 32))
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256",
			"n": b64(p.rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(p.rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec1", "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(x), "y": b64(y)},
	}})
}

func (p *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != p.clientID ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("redirect_uri") == "" || q.Get("state") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	p.mu.Lock()
	p.codes[code] = authRequest{
		clientID:    q.Get("client_id"),
		redirectURI: q.Get("redirect_uri"),
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
	}
	p.mu.Unlock()
	back, _ := url.Parse(q.Get("redirect_uri"))
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	if p.sendIss {
		bq.Set("iss", p.issuer)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if id != p.clientID || secret != p.secret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	req, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // single use
	p.mu.Unlock()
	if r.PostForm.Get("grant_type") != "authorization_code" || !found ||
		req.redirectURI != r.PostForm.Get("redirect_uri") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "<script>leak</script>"})
		return
	}
	// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if b64(sum[:]) != req.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
		return
	}
	p.pkceChecked.Add(1)
	access := rand.Text()
	now := p.now()
	c := jwt.MapClaims{
		"iss":            p.issuer,
		"sub":            "user-1",
		"aud":            p.clientID,
		"exp":            now.Add(5 * time.Minute).Unix(),
		"iat":            now.Unix(),
		"nonce":          req.nonce,
		"email":          "ada@acme.test",
		"email_verified": true,
		"name":           "Ada Lovelace",
		"groups":         []string{"/engineering", "staff"},
	}
	if p.claims != nil {
		p.claims(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   300,
		"id_token":     p.sign(c),
	})
}

func (p *fakeIdP) sign(c jwt.MapClaims) string {
	var (
		tok *jwt.Token
		key any
	)
	switch p.alg {
	case "ES256":
		tok, key = jwt.NewWithClaims(jwt.SigningMethodES256, c), p.ecKey
		tok.Header["kid"] = "ec1"
	case "none":
		tok, key = jwt.NewWithClaims(jwt.SigningMethodNone, c), jwt.UnsafeAllowNoneSignatureType
	case "foreign":
		tok, key = jwt.NewWithClaims(jwt.SigningMethodRS256, c), testKeys().rsa[1]
		tok.Header["kid"] = "rsa1"
	case "HS256":
		// The algorithm-confusion attack: HMAC keyed with public material.
		tok, key = jwt.NewWithClaims(jwt.SigningMethodHS256, c), []byte(b64(p.rsaKey.N.Bytes()))
		tok.Header["kid"] = "rsa1"
	default:
		tok, key = jwt.NewWithClaims(jwt.SigningMethodRS256, c), p.rsaKey
		tok.Header["kid"] = "rsa1"
	}
	s, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

func (p *fakeIdP) userinfoHandler(w http.ResponseWriter, r *http.Request) {
	if len(r.Header.Get("Authorization")) < len("Bearer x") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	c := map[string]any{"sub": "user-1", "email": "ada@userinfo.acme.test", "email_verified": true}
	if p.userinfoClaims != nil {
		p.userinfoClaims(c)
	}
	writeJSON(w, http.StatusOK, c)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
