package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Store is the part of tenants.Store the sign-in handler uses.
type Store interface {
	UserByEmail(ctx context.Context, email string) (tenants.User, error)
	Membership(ctx context.Context, tenantInternalID, userID string) ([]string, error)
	Revoke(ctx context.Context, r tenants.Revocation) error
	UpsertExternalUser(ctx context.Context, tenantInternalID string, x tenants.ExternalIdentity) (tenants.User, error)
	// Tenants lists every tenant, for the apex's chooser.
	Tenants(ctx context.Context) ([]tenants.Tenant, error)
	// UseAssertionID makes tenant switch codes single-use (switch.go), as
	// it does SAML assertion ids.
	UseAssertionID(ctx context.Context, tenantInternalID, id string, expires time.Time) error
	// SetPassword and AddMember are the account pages' writes: password
	// change and reset, accepted invitations (account.go, invite.go).
	SetPassword(ctx context.Context, userID, oldHash, newHash string, rev tenants.Revocation) error
	AddMember(ctx context.Context, tenantID string, m tenants.NewMember) (bool, error)
	// RecordSession, Sessions and RevokeSession keep the list of sessions
	// the account page shows and revokes from (sessions.go).
	RecordSession(ctx context.Context, s tenants.Session, evict tenants.Revocation) error
	Sessions(ctx context.Context, tenantInternalID, userID string) ([]tenants.Session, error)
	RevokeSession(ctx context.Context, tenantInternalID, userID, sid string, rev tenants.Revocation) error
	// SecondFactors and UpdateSecondFactors are the second sign-in
	// step's: reading a member's factors, enrolling them and spending a
	// code (mfa.go).
	SecondFactors(ctx context.Context, tenantInternalID, userID string) (tenants.SecondFactors, error)
	UpdateSecondFactors(ctx context.Context, tenantInternalID, userID string, fn func(*tenants.SecondFactors) error) error
	// Snapshot lets a sign-out publish its revocation, and an SSO sign-in
	// its membership, at once (publish).
	Snapshot(ctx context.Context) (*tenants.Snapshot, error)
	// The passkey writes and reads of the account page (passkey.go).
	AddPasskey(ctx context.Context, tenantInternalID, userID string, p tenants.Passkey) error
	Passkeys(ctx context.Context, tenantInternalID, userID string) ([]tenants.Passkey, error)
	UpdatePasskey(ctx context.Context, tenantInternalID, userID string, id []byte, fn func(*tenants.Passkey) error) error
	RemovePasskey(ctx context.Context, tenantInternalID, userID string, id []byte) error
}

var _ Store = tenants.Store(nil)

// maxFormBytes bounds a POST body.
const maxFormBytes = 64 << 10

// maxEmailBytes bounds an email address (RFC 5321 §4.5.3.1: 64 + 1 + 255).
const maxEmailBytes = 320

// Handler serves /_auth/ on every tenant host and on the apex host. Fill in
// the fields and serve it; the zero values of the optional fields are
// documented on each. A Handler must not be copied or have its fields changed
// after the first request; it is safe for concurrent use.
//
// SSO (Methods): the sign-in page offers one button per SSO method, in the
// tenant's order, each a POST to /_auth/start; a tenant whose only method is
// one SSO method is sent straight to it (302). /_auth/callback completes
// OIDC and OAuth2 attempts, /_auth/saml/acs SAML ones, and
// /_auth/saml/metadata serves the SP metadata. A failed SSO sign-in is a 400
// page saying only "Invalid login request"; a method that cannot be opened
// or reached is a 503 page, and the other methods keep working.
//
// Tenancy (docs/tenancy.md): on the apex host, /_auth/login is home-realm
// discovery and, with Sealer set, a password sign-in into a global session
// that lists the person's organisations; /_auth/switch there issues the
// one-time codes a tenant's /_auth/switch asks for and its /_auth/callback
// redeems (switch.go). Path tenants get cookies of their own (cookies.go).
//
// Statuses: HTML pages for people (200 forms; 303 after a successful POST;
// 401 "Invalid email or password."; 403 for a refused cross-origin or CSRF
// request and for a suspended tenant; 429 when argon2id is saturated, when
// an address over its failure limit finds the lane of such addresses taken
// (limit.go), an address is over its discovery or switching limit, or an
// account over its successful sign-ins per minute (Limits.AccountSignIns);
// 501 when the tenant offers no sign-in method this build implements; 503
// when tenants are not loaded, or the store or the attempt counters fail) and JSON for machines (404 {"error":"unknown_tenant"},
// 400 {"error":"bad_request"}, 404 {"error":"not_found"} for any other path,
// 405 {"error":"method_not_allowed"}).
type Handler struct {
	// Snapshots is the tenant snapshot requests are resolved against.
	Snapshots *tenants.Current
	// Resolver places a request with a tenant from its Host and path.
	Resolver *tenants.Resolver
	// Store looks up users and memberships and records revocations.
	// Revocations and memberships reach Verify once Snapshots is
	// refreshed: the handler refreshes it after its own writes (publish),
	// other writers through Current.Follow.
	Store Store
	// Minter mints session tokens; its TTL is the cookie's Max-Age.
	Minter *session.Minter
	// Verifier checks the session being signed out.
	Verifier *session.Verifier
	// Passwords verifies password hashes.
	Passwords *password.Hasher
	// InsecureCookies drops Secure and the __Host- prefix (plain-http
	// development), and makes discovery redirects http://.
	InsecureCookies bool
	// CSRFKey keys the HMAC of CSRF tokens (and of the email digests in
	// logs). At least 16 bytes, secret, stable across restarts and replicas;
	// without it every form is refused.
	CSRFKey []byte
	// TrustedProxyHops is --trusted-proxy-hops: how many trusted proxies in
	// front of Envoy append to X-Forwarded-For. 0 (or less) means Envoy is
	// the edge, and the client address used for rate limits is the one
	// Envoy saw; N means the (N+1)th X-Forwarded-For entry from the right
	// (clientAddress in forwarded.go).
	TrustedProxyHops int
	// Limits bound sign-in attempts; zero fields mean the defaults.
	Limits Limits
	// Counters opens, once per name (CounterAccountFailures,
	// CounterAddressFailures, CounterAccountSignIns, and with Accounts
	// CounterResetAddresses, CounterResetAccounts) at the first request
	// that needs it, the counters of the limits that must hold for every
	// replica together: failed sign-ins per account and per address,
	// successful sign-ins per account, reset links per address and per
	// account. A fleet passes counters every replica shares
	// (etcdstore.Store.Counter), so that spreading guesses over N replicas
	// buys no more than against one. nil means NewMemoryCounter with
	// Limits.MaxEntries: right for one process (bbolt). The discovery and
	// switch-code limits always count in memory, per process, and the
	// lane of limited addresses (Limits.LimitedConcurrent) and argon2id's
	// concurrency are per process too.
	Counters func(name string, window time.Duration) Counter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits on that clock; nil means a timer (tests that set Now
	// set Sleep to move their clock).
	Sleep func(time.Duration)
	// Log receives one line per refused or failed attempt, carrying the
	// tenant, a reason code and a keyed digest of the email, never a
	// password, token or cookie. nil means no logging.
	Log *slog.Logger
	// Rand is the source of pre-auth cookie values and of attempt ids,
	// state and nonces; nil means crypto/rand.
	Rand io.Reader

	// Methods opens the tenants' SSO methods, by method type (oidc, saml,
	// social); cmd builds it from the method packages. nil (or a type
	// missing from it) means those methods are not served: a tenant then
	// signs in with its password method only.
	Methods map[string]signin.Opener
	// MethodTypes are the method types' Configs, which tell a method that
	// is stored but not offered yet (signin.NotOffered) without opening
	// it; cmd builds them from the method packages. nil means every method
	// with an Opener is offered (its Opener may still say otherwise:
	// signin.ErrNotOffered).
	MethodTypes tenants.MethodTypes
	// Sealer seals the per-attempt sign-in cookies and the ID-token hint
	// cookie, under a key derived from its master key for this purpose
	// alone (DeriveKey("login-state")), and the apex's global sessions,
	// tenant switch codes and second-step states under keys of their own;
	// TOTP secrets are sealed under it directly, bound to the membership.
	// Required when Methods is set and for tenants with mfa; without it
	// the apex offers discovery only, and no switching, and a tenant's
	// second step answers 503.
	Sealer *seal.Sealer

	// GlobalTTL is how long a global session on the apex host lasts (the
	// password sign-in there, the chooser, tenant switching); zero means
	// DefaultGlobalTTL, and it is capped at session.MaxTTL.
	GlobalTTL time.Duration
	// Audit records sign-ins, refusals, sign-outs and switches in the
	// tenants' audit trails (audit.go); nil records nothing.
	Audit Auditor
	// Observer is told of every sign-in, refused sign-in, sign-out and
	// session issued (observe.go), for metrics; nil tells nobody.
	Observer Observer
	// Accounts turns on the account pages that send mail (account.go:
	// password reset, invitations, notices); nil leaves them off.
	Accounts *Accounts

	// PathLinks makes the apex host send people to tenants by path tenancy
	// (https://<apex><path-prefix>/<id>/) rather than at <id>.<apex>:
	// discovery's redirect and the chooser's links.
	PathLinks bool

	once      sync.Once
	limits    Limits
	accounts  limit
	addresses limit
	limited   lane // password checks of addresses over their limit
	discovery *counter
	switches  *counter
	signIns   limit
	refusals  *refusalBudget // refused sign-ins the audit trail records
	// openCounter is Counters, or the in-memory counters without it.
	openCounter func(name string, window time.Duration) Counter
	origins     *http.CrossOriginProtection
	loginState  *seal.Sealer
	// globalSealer seals global sessions, switchSealer switch codes and
	// verifiers; nil without Sealer.
	globalSealer *seal.Sealer
	switchSealer *seal.Sealer
	// mfaSealer seals second-step states (mfa.go); nil without Sealer.
	mfaSealer *seal.Sealer
	// passkeys seals passkey ceremonies (passkey.go); nil without Sealer.
	passkeys *passkeyKeys
	opened   *methodCache
	// warnedPlainHTTP is set once warnPlainHTTP has logged.
	warnedPlainHTTP atomic.Bool
}

// warnPlainHTTP logs, once per Handler, that requests arrive over plain
// http (X-Forwarded-Proto: http) while cookies are Secure. Nothing works
// then, and nothing else says why: browsers drop Secure cookies set over
// http, so every sign-in comes back to a lost attempt, and the URLs given
// to identity providers (redirect_uri, SAML ACS and entity id) are https://
// ones the IdP does not know (Keycloak: client_not_found).
func (h *Handler) warnPlainHTTP(r *http.Request) {
	if h.InsecureCookies || !forwardedPlainHTTP(r) || !h.warnedPlainHTTP.CompareAndSwap(false, true) {
		return
	}
	h.log().Warn("requests arrive over plain http (X-Forwarded-Proto: http) but cookies are Secure: browsers drop them and identity providers are given https:// URLs, so no sign-in can work; put TLS on Envoy's listener (docs/sso-keycloak.md#local-https), or run serve with --insecure-cookies for plain-http development (password and OIDC only: SAML needs https)",
		"host", r.Host)
}

func (h *Handler) init() {
	h.once.Do(func() {
		h.limits = h.Limits.withDefaults()
		open := h.Counters
		if open == nil {
			open = func(_ string, window time.Duration) Counter {
				return NewMemoryCounter(window, h.limits.MaxEntries)
			}
		}
		h.openCounter = open
		h.accounts = limit{open(CounterAccountFailures, h.limits.Window), h.limits.AccountFailures}
		h.addresses = limit{open(CounterAddressFailures, h.limits.Window), h.limits.AddressFailures}
		h.signIns = limit{open(CounterAccountSignIns, signInWindow), h.limits.AccountSignIns}
		h.limited = make(lane, h.limits.LimitedConcurrent)
		h.discovery = newCounter(h.limits.DiscoveryRequests, h.limits.Window, h.limits.MaxEntries)
		h.switches = newCounter(h.limits.SwitchCodes, h.limits.Window, h.limits.MaxEntries)
		h.refusals = newRefusalBudget(h.limits.AuditedRefusals)
		h.origins = http.NewCrossOriginProtection()
		h.opened = newMethodCache()
		if h.Sealer != nil {
			derive := func(purpose string) *seal.Sealer {
				s, err := seal.NewSealer(h.Sealer.DeriveKey(purpose))
				if err != nil {
					panic(err) // DeriveKey returns MasterKeySize bytes
				}
				return s
			}
			h.loginState = derive(loginStatePurpose)
			h.globalSealer = derive(globalPurpose)
			h.switchSealer = derive(switchPurpose)
			h.mfaSealer = mfaSealerFor(h.Sealer)
			h.passkeys = &passkeyKeys{ceremony: derive(passkeyCeremonyPurpose)}
		}
	})
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// request is one request placed with its tenant.
type request struct {
	snap *tenants.Snapshot
	// w is written by Handler.write alone (http.MaxBytesReader holds it
	// too, to close the connection after an oversized body).
	w   http.ResponseWriter
	r   *http.Request
	res tenants.Resolution
	// route is the path below the tenant's root, without the query.
	route string
	// cookies are the cookies set so far, which go out with the answer
	// whatever it is (Handler.write).
	cookies []*http.Cookie
	// audit is what the request did for the audit trail (audit.go).
	audit *auditNote
	// recorded are the sessions this request minted and recorded
	// (sessions.go), withdrawn if their cookies are withheld after all.
	recorded []session.Claims
	// revoked is the NotBefore of a revocation of every session of the
	// person this request wrote (a password change), which the snapshot
	// may not hold yet (waitPastRevocation).
	revoked time.Time
	// method is the sign-in method type this request is a step of, once
	// known (observe.go).
	method string
}

// waitPastRevocation returns once a session of user in the tenant with
// internal id tenantInternalID ("" for the apex's global sessions) issued
// now would outlive the latest revocation of all the user's sessions there:
// the one this request wrote, or the one the newest snapshot holds.
// Sessions carry their issue time in whole seconds, and such a revocation
// takes every session issued up to its NotBefore: a session issued in the
// same second, after it, would be taken for one it revoked. So a sign-in in
// that second waits for the next one (at most a second, and only right
// after a password change, reset or signing out everywhere). Issuing the
// session a second ahead instead would let a session outlive a second
// revocation in the same second; waiting keeps every issue time in the
// past. A session another replica issues before it sees the revocation is
// revoked with the others: that fails closed.
func (h *Handler) waitPastRevocation(q *request, tenantInternalID, userID string) {
	until := q.revoked
	snap := h.Snapshots.Load()
	if snap == nil {
		snap = q.snap
	}
	if nb, ok := snap.RevokedAt(tenants.UserRevocationKey(tenantInternalID, userID)); ok && nb.After(until) {
		until = nb
	}
	for range 3 { // a clock that jumps back does not hold the request
		now := h.now()
		second := now.Truncate(time.Second)
		if until.IsZero() || second.After(until) {
			return
		}
		h.sleep(q, second.Add(time.Second).Sub(now))
	}
}

// sleep waits d on the Handler's clock (Sleep), or until q is cancelled.
func (h *Handler) sleep(q *request, d time.Duration) {
	if h.Sleep != nil {
		h.Sleep(d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-q.r.Context().Done():
	}
}

// setCookie sets c on the response to this request, whatever the answer.
func (q *request) setCookie(c *http.Cookie) { q.cookies = append(q.cookies, c) }

// tenant returns the resolved tenant (nil on the apex host).
func (q *request) tenant() *tenants.Tenant { return q.res.Tenant }

// binding is what CSRF tokens are bound to: the tenant's internal id, or the
// apex host.
func (q *request) binding() string {
	if q.res.Apex {
		return "apex:" + q.res.Host
	}
	return "tenant:" + q.res.Tenant.InternalID
}

// ServeHTTP places the request with a tenant, answers it by its route and
// writes the answer (write).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	q := &request{w: w, r: r}
	h.write(q, h.serve(q))
}

// serve places q with its tenant and answers it by its route.
func (h *Handler) serve(q *request) *answer {
	snap := h.Snapshots.Load()
	if snap == nil {
		return jsonError(http.StatusServiceUnavailable, "unavailable")
	}
	h.warnPlainHTTP(q.r)
	r := withForwardedPort(q.r, h.scheme())
	q.r = r
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI() // absolute-form; Go took r.Host from it
	}
	res, err := h.Resolver.Resolve(snap, r.Host, target)
	switch {
	case errors.Is(err, tenants.ErrUnknownTenant):
		return jsonError(http.StatusNotFound, "unknown_tenant")
	case err != nil:
		return jsonError(http.StatusBadRequest, "bad_request")
	}
	path, _, _ := strings.Cut(target, "?")
	route, ok := strings.CutPrefix(path, res.Prefix)
	if !ok {
		return jsonError(http.StatusNotFound, "not_found")
	}
	q.snap, q.res, q.route = snap, res, route

	if res.Apex {
		switch route {
		case signin.PathLogin:
			return h.methods(q, h.apexPage, h.apexPost)
		case signin.PathLogout:
			if !h.globalEnabled() {
				return jsonError(http.StatusNotFound, "not_found")
			}
			return h.methods(q, h.apexLogoutPage, h.apexLogout)
		case signin.PathSwitch:
			if !h.globalEnabled() {
				return jsonError(http.StatusNotFound, "not_found")
			}
			return h.methods(q, h.issueSwitch, h.switchPost)
		}
		return jsonError(http.StatusNotFound, "not_found")
	}
	switch route {
	case signin.PathLogin:
		return h.methods(q, h.loginPage, h.login)
	case signin.PathLogout:
		return h.methods(q, h.logoutPage, h.logout)
	case signin.PathJWKS:
		return h.methods(q, h.jwks, nil)
	case signin.PathStart:
		return h.postOnly(q, h.start)
	case signin.PathCallback:
		return h.methods(q, h.callbackOrSwitch, nil)
	case signin.PathSwitch:
		return h.methods(q, h.startSwitch, nil)
	case signin.PathSAMLMetadata:
		return h.methods(q, h.samlMetadata, nil)
	case signin.PathSAMLACS:
		// Cross-site by design: no CrossOriginProtection, no CSRF field
		// (see acs).
		return h.acs(q)
	case signin.PathSignedOut:
		return h.methods(q, h.signedOut, nil)
	}
	if a, ok := h.accountRoute(q); ok {
		return a
	}
	if a, ok := h.mfaRoute(q); ok {
		return a
	}
	return jsonError(http.StatusNotFound, "not_found")
}

// methods answers GET/HEAD with get and POST (after the cross-origin check)
// with post; anything else is 405.
func (h *Handler) methods(q *request, get, post func(*request) *answer) *answer {
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		return get(q)
	case http.MethodPost:
		if post == nil {
			break
		}
		if err := h.origins.Check(q.r); err != nil {
			return h.forbidden(q).refused("cross_origin", "")
		}
		return post(q)
	}
	allow := "GET, HEAD"
	if post != nil {
		allow += ", POST"
	}
	return methodNotAllowed(allow)
}

// checkForm reads a sign-in form POST (parseForm) and checks its csrf
// field (checkCSRF). It returns nil when both pass, else the refusal to
// answer with.
func (h *Handler) checkForm(q *request) *answer {
	if a := h.parseForm(q); a != nil {
		return a
	}
	return h.checkCSRF(q)
}

// parseForm reads a POST body of at most maxFormBytes. It returns nil, or
// the refusal of a form that cannot be read (400; 413 when too large).
func (h *Handler) parseForm(q *request) *answer {
	if err := readForm(q, maxFormBytes); err != nil {
		return h.message(q, formStatus(err), "Sign-in request refused", "The form could not be read. Go back and try again.", true).
			refused("bad_form", "")
	}
	return nil
}

// readForm reads a POST body of at most limit bytes into q.r.PostForm.
func readForm(q *request, limit int64) error {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, limit)
	return q.r.ParseForm()
}

// formStatus is the status that refuses a body readForm failed on: 413
// when it was over its limit, else 400.
func formStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// checkCSRF verifies the form's csrf field against the pre-auth cookie, for
// this tenant (or apex host). It returns nil when it matches, else the 403
// refusal.
func (h *Handler) checkCSRF(q *request) *answer {
	got := q.r.PostForm.Get("csrf")
	if got != "" && len(h.CSRFKey) >= minCSRFKeyLen {
		for i, c := range cookiesNamed(q.r, h.preauthCookieName()) {
			if i == maxCookieCandidates {
				break
			}
			if !validPreauth(c.Value) {
				continue
			}
			want := h.csrfToken(c.Value, q.binding())
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
				return nil
			}
		}
	}
	return h.forbidden(q).refused("csrf", "")
}

// forbidden is the 403 page of a refused cross-origin or CSRF request.
func (h *Handler) forbidden(q *request) *answer {
	return h.message(q, http.StatusForbidden, "Sign-in request refused",
		"This form has expired or was sent from another site. Reload the page and try again.", true)
}

// minCSRFKeyLen is the shortest CSRFKey accepted.
const minCSRFKeyLen = 16

// maxCookieCandidates bounds how many same-named cookies are tried.
const maxCookieCandidates = 4

// preauthLen is the length of an encoded pre-auth value: 32 random bytes in
// unpadded base64url.
const preauthLen = 43

func validPreauth(v string) bool {
	if len(v) != preauthLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

func (h *Handler) preauthCookieName() string {
	if h.InsecureCookies {
		return "tenantgate-csrf"
	}
	return "__Host-tenantgate-csrf"
}

// csrfToken is HMAC-SHA256(CSRFKey, purpose, preauth value, binding).
func (h *Handler) csrfToken(preauth, binding string) string {
	m := hmac.New(sha256.New, h.CSRFKey)
	io.WriteString(m, "tenantgate csrf v1\x00")
	io.WriteString(m, preauth)
	m.Write([]byte{0})
	io.WriteString(m, binding)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// formCSRF returns the csrf field for a form, reusing a valid pre-auth
// cookie (so several tabs keep working) or setting a new one. It returns ""
// when no token can be made; forms then fail closed on POST.
func (h *Handler) formCSRF(q *request) string {
	if len(h.CSRFKey) < minCSRFKeyLen {
		h.log().Error("sign-in forms disabled: CSRF key missing or shorter than 16 bytes")
		return ""
	}
	for i, c := range cookiesNamed(q.r, h.preauthCookieName()) {
		if i == maxCookieCandidates {
			break
		}
		if validPreauth(c.Value) {
			return h.csrfToken(c.Value, q.binding())
		}
	}
	var b [32]byte
	rnd := h.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		h.log().ErrorContext(q.r.Context(), "read randomness for pre-auth cookie", "err", err)
		return ""
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	q.setCookie(&http.Cookie{
		Name:     h.preauthCookieName(),
		Value:    v,
		Path:     "/",
		HttpOnly: true,
		Secure:   !h.InsecureCookies,
		SameSite: http.SameSiteLaxMode,
	})
	return h.csrfToken(v, q.binding())
}

// clientKey is the rate-limit key of the client r came from (clientAddress,
// addressKey).
func (h *Handler) clientKey(r *http.Request) string {
	return addressKey(clientAddress(r, h.TrustedProxyHops))
}

// emailDigest is a short keyed digest of an email for logs: it lets an
// operator correlate attempts on one account without the log holding the
// address.
func (h *Handler) emailDigest(email string) string {
	m := hmac.New(sha256.New, h.CSRFKey)
	io.WriteString(m, "tenantgate log email v1\x00")
	io.WriteString(m, email)
	return hex.EncodeToString(m.Sum(nil)[:6])
}

// revoke records r and publishes a snapshot that holds it before the
// response goes out, so the signed-out session is refused from the very next
// request on this process (the store's watch would publish it a moment
// later, and other replicas learn it that way). An error means nothing was
// recorded.
func (h *Handler) revoke(q *request, r tenants.Revocation) error {
	if err := h.Store.Revoke(q.r.Context(), r); err != nil {
		return err
	}
	h.publish(q, "a sign-out")
	return nil
}

// publish refreshes the snapshot after this request's own write, before the
// response goes out: the next request, which Check answers from the
// snapshot, must see it (a sign-out's revocation; an SSO sign-in's
// membership, which Check requires of every session). The store keeps its
// snapshot up to date write by write, so this costs no full read. A failure
// is only logged, because the store's watch retries it.
func (h *Handler) publish(q *request, after string) {
	if err := h.Snapshots.Refresh(context.WithoutCancel(q.r.Context()), h.Store); err != nil {
		h.log().ErrorContext(q.r.Context(), "refresh tenant snapshot after "+after, "err", err)
	}
}
