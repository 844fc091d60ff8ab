package login

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
)

// Attempt cookies (DESIGN.md, "State"): one per sign-in in progress, so
// several tabs can sign in at once with no server state. Each holds one
// signin.Attempt, sealed (AES-256-GCM) under a key derived from the master key for
// this purpose alone, and bound to the cookie's name, so a value moved to
// another cookie does not open.
const (
	// attemptTTL is how long an attempt may take, from start to callback.
	attemptTTL = 10 * time.Minute
	// maxAttempts is how many attempt cookies a browser keeps; starting
	// another evicts the oldest.
	maxAttempts = 5
	// maxAttemptCookiesRead bounds how many attempt cookies one request
	// makes us open.
	maxAttemptCookiesRead = 16
	// attemptIDBytes is the entropy of an attempt id (which is public: it
	// travels as SAML RelayState).
	attemptIDBytes = 16
	// stateBytes is the entropy of state and nonce: 256 bits.
	stateBytes = 32
	// maxStateParam bounds the state query parameter looked at.
	maxStateParam = 256
	// loginStatePurpose names the derived key of attempt and id-token
	// cookies (seal.Sealer.DeriveKey).
	loginStatePurpose = "login-state"
)

// attemptRecord is the sealed content of an attempt cookie. Field names are
// short: the cookie travels with every request to the host for ten minutes.
type attemptRecord struct {
	V             int    `json:"v"`
	TenantID      string `json:"t"`
	Method        int    `json:"m"`
	Type          string `json:"ty"`
	Origin        string `json:"o"`
	Prefix        string `json:"p,omitempty"`
	State         string `json:"s,omitempty"`
	Nonce         string `json:"n,omitempty"`
	PKCEVerifier  string `json:"k,omitempty"`
	SAMLRequestID string `json:"r,omitempty"`
	ReturnTo      string `json:"rd"`
	LoginHint     string `json:"h,omitempty"`
	Created       int64  `json:"c"`
	// CrossSite is set when the provider answers with a cross-site POST
	// (a SAML method), which the cookie must be sent with.
	CrossSite bool `json:"x,omitempty"`
}

const attemptRecordVersion = 1

// attempt is a signin.Attempt together with the method type it was started
// for, and whether the provider answers it with a cross-site POST.
type attempt struct {
	signin.Attempt
	typ       string
	crossSite bool
}

func (h *Handler) attemptCookiePrefix() string {
	if h.InsecureCookies {
		return "tg-attempt-"
	}
	return "__Host-tg-attempt-"
}

// attemptContext binds a sealed attempt to its cookie's attempt id.
func attemptContext(id string) string { return "login-attempt:v1:" + id }

// randomString returns n random bytes from r (crypto/rand when nil) in
// unpadded base64url.
func randomString(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validAttemptID reports whether s has the shape of an attempt id.
func validAttemptID(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(attemptIDBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// newAttempt fills an attempt for method index i of the request's tenant:
// fresh id, state, nonce and PKCE verifier. crossSite says whether the
// method's provider answers with a cross-site POST (signin.SAMLMethod).
func (h *Handler) newAttempt(q *request, i int, typ string, crossSite bool, rd, hint string) (*attempt, error) {
	id, err := randomString(h.Rand, attemptIDBytes)
	if err != nil {
		return nil, err
	}
	state, err := randomString(h.Rand, stateBytes)
	if err != nil {
		return nil, err
	}
	nonce, err := randomString(h.Rand, stateBytes)
	if err != nil {
		return nil, err
	}
	return &attempt{
		Attempt: signin.Attempt{
			ID:           id,
			TenantID:     q.tenant().InternalID,
			Method:       i,
			Endpoint:     h.endpoint(q),
			State:        state,
			Nonce:        nonce,
			PKCEVerifier: oauth2.GenerateVerifier(),
			ReturnTo:     rd,
			LoginHint:    hint,
			Created:      h.now().UTC().Truncate(time.Second),
		},
		typ:       typ,
		crossSite: crossSite,
	}, nil
}

// endpoint is where the request's tenant's /_auth/ lives: the scheme tenantgate
// is served with (https unless InsecureCookies), the canonical host with the
// request's port, and the path-tenancy prefix.
func (h *Handler) endpoint(q *request) signin.Endpoint {
	return signin.Endpoint{Origin: h.scheme() + "://" + q.res.Host + requestPort(q.r.Host), Prefix: q.res.Prefix}
}

// stateSealer is the Sealer of attempt and id-token cookies, keyed by
// DeriveKey(loginStatePurpose); nil when Handler.Sealer is not set.
func (h *Handler) stateSealer() *seal.Sealer { return h.loginState }

// setAttemptCookie seals a and sets its cookie, first evicting the oldest
// attempts so that at most maxAttempts remain with it.
func (h *Handler) setAttemptCookie(q *request, a *attempt) error {
	s := h.stateSealer()
	if s == nil {
		return errors.New("no sealer for login state")
	}
	rec := attemptRecord{
		V: attemptRecordVersion, TenantID: a.TenantID, Method: a.Method, Type: a.typ,
		Origin: a.Endpoint.Origin, Prefix: a.Endpoint.Prefix, State: a.State, Nonce: a.Nonce,
		PKCEVerifier: a.PKCEVerifier, SAMLRequestID: a.SAMLRequestID, ReturnTo: a.ReturnTo,
		LoginHint: a.LoginHint, Created: a.Created.Unix(), CrossSite: a.crossSite,
	}
	plain, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode attempt: %w", err)
	}
	sealed, err := s.Seal(plain, attemptContext(a.ID))
	if err != nil {
		return fmt.Errorf("seal attempt: %w", err)
	}

	// Evict: keep the newest maxAttempts-1 others.
	type held struct {
		name    string
		created int64
	}
	var others []held
	for _, c := range h.attemptCookies(q.r) {
		created := int64(0) // unreadable or foreign: evict first
		if r, ok := h.openAttempt(c); ok {
			created = r.Created.Unix()
		}
		others = append(others, held{c.Name, created})
	}
	slices.SortFunc(others, func(x, y held) int { return cmp.Compare(x.created, y.created) })
	for len(others) > maxAttempts-1 {
		http.SetCookie(q.w, h.attemptCookie(others[0].name, "", -1, a.crossSite))
		others = others[1:]
	}
	http.SetCookie(q.w, h.attemptCookie(h.attemptCookiePrefix()+a.ID,
		base64.RawURLEncoding.EncodeToString(sealed), int(attemptTTL/time.Second), a.crossSite))
	return nil
}

// attemptCookie is an attempt cookie: host-only, Path=/, HttpOnly, Secure
// unless insecure, Max-Age of the attempt's life. Attempts answered by a
// cross-site POST (SAML) are SameSite=None, because the IdP's response
// must carry the cookie; with InsecureCookies (plain http, where
// browsers refuse SameSite=None without Secure) they are Lax, which a
// browser withholds from the IdP's cross-site POST: SAML sign-in in a
// browser needs https (run without --insecure-cookies behind TLS), unless
// the IdP and the app share a site. Redirect-method attempts are SameSite=Lax: the provider's
// redirect back is a top-level GET.
func (h *Handler) attemptCookie(name, value string, maxAge int, crossSite bool) *http.Cookie {
	ss := http.SameSiteLaxMode
	if crossSite && !h.InsecureCookies {
		ss = http.SameSiteNoneMode
	}
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !h.InsecureCookies,
		SameSite: ss,
	}
}

// attemptCookies returns the request's attempt cookies, at most
// maxAttemptCookiesRead of them.
func (h *Handler) attemptCookies(r *http.Request) []*http.Cookie {
	prefix := h.attemptCookiePrefix()
	var out []*http.Cookie
	for _, c := range requestCookies(r) {
		if len(out) == maxAttemptCookiesRead {
			break
		}
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// openAttempt opens an attempt cookie. It does not check expiry, tenant or
// method: the caller does.
func (h *Handler) openAttempt(c *http.Cookie) (*attempt, bool) {
	s := h.stateSealer()
	id, ok := strings.CutPrefix(c.Name, h.attemptCookiePrefix())
	if s == nil || !ok || !validAttemptID(id) || len(c.Value) > 4096 {
		return nil, false
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(c.Value)
	if err != nil {
		return nil, false
	}
	plain, err := s.Open(sealed, attemptContext(id))
	if err != nil {
		return nil, false
	}
	var rec attemptRecord
	if err := json.Unmarshal(plain, &rec); err != nil || rec.V != attemptRecordVersion {
		return nil, false
	}
	return &attempt{
		Attempt: signin.Attempt{
			ID: id, TenantID: rec.TenantID, Method: rec.Method,
			Endpoint: signin.Endpoint{Origin: rec.Origin, Prefix: rec.Prefix},
			State:    rec.State, Nonce: rec.Nonce, PKCEVerifier: rec.PKCEVerifier,
			SAMLRequestID: rec.SAMLRequestID, ReturnTo: rec.ReturnTo, LoginHint: rec.LoginHint,
			Created: time.Unix(rec.Created, 0).UTC(),
		},
		typ:       rec.Type,
		crossSite: rec.CrossSite,
	}, true
}

// clearAttempt deletes an attempt's cookie: attempts are single use.
func (h *Handler) clearAttempt(q *request, a *attempt) {
	http.SetCookie(q.w, h.attemptCookie(h.attemptCookiePrefix()+a.ID, "", -1, a.crossSite))
}

// attemptByState finds the request's attempt whose State equals state,
// compared in constant time. It returns nil when none does.
func (h *Handler) attemptByState(q *request, state string) *attempt {
	if state == "" || len(state) > maxStateParam {
		return nil
	}
	var found *attempt
	for _, c := range h.attemptCookies(q.r) {
		a, ok := h.openAttempt(c)
		if !ok || a.State == "" {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(a.State), []byte(state)) == 1 && found == nil {
			found = a
		}
	}
	return found
}

// attemptByID finds the request's attempt with that id, or nil.
func (h *Handler) attemptByID(q *request, id string) *attempt {
	if !validAttemptID(id) {
		return nil
	}
	for _, c := range h.attemptCookies(q.r) {
		if c.Name != h.attemptCookiePrefix()+id {
			continue
		}
		if a, ok := h.openAttempt(c); ok {
			return a
		}
	}
	return nil
}

// checkAttempt returns "" when a may be completed here and now by the
// method at index i of type typ, else a reason code for the log.
func (h *Handler) checkAttempt(q *request, a *attempt, i int, typ string) string {
	now := h.now()
	switch {
	case a.TenantID != q.tenant().InternalID:
		return "sso_attempt_other_tenant"
	case a.Method != i || a.typ != typ:
		return "sso_attempt_other_method"
	case a.Endpoint != h.endpoint(q):
		return "sso_attempt_other_endpoint"
	case now.Sub(a.Created) > attemptTTL || a.Created.After(now.Add(time.Minute)):
		return "sso_attempt_expired"
	}
	return ""
}
