package login

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Tenant switching (docs/tenancy.md) moves a person holding a global
// session on the apex host into one tenant without a password, in three
// redirects, and never shares a cookie between hosts:
//
//  1. GET <tenant>/_auth/switch?rd=PATH: the tenant host sets a verifier
//     cookie of its own (a random secret and rd, sealed, one minute) and
//     sends the browser to the apex with the secret's SHA-256 as challenge
//     (like PKCE, RFC 7636 S256): GET <apex>/_auth/switch?tenant=ID&host=HOST&challenge=C.
//  2. The apex checks the global session, that its user is still a
//     password user and a member of that active tenant, which offers
//     password sign-in, and that HOST with the tenant's path resolves to
//     that very tenant (so a code is only ever sent to the tenant's own
//     /_auth/callback, on the apex's port). Unless the person chose that
//     tenant on the apex's chooser a moment ago (which POSTs to the apex's
//     /_auth/switch, leaving a sealed intent cookie, before step 1), they
//     confirm with a button (a CSRF-checked POST). It issues a code: the user, the
//     challenge, the tenant endpoint and 30 seconds of life, sealed
//     (AES-256-GCM) under a key for this purpose alone and bound to the
//     tenant's internal id, then 303 to <tenant>/_auth/callback?tg_switch=CODE.
//  3. The tenant's /_auth/callback opens the code (a code for another
//     tenant does not open), checks its life, its endpoint and the
//     challenge against this browser's verifier cookie (a code leaked from
//     a log or a Referer is useless in another browser, and nobody can make
//     a victim's browser redeem a code of theirs), spends it with
//     Store.UseAssertionID (atomic and durable, so it is single use across
//     concurrent redemptions and restarts), re-reads the membership and
//     mints a session of that tenant alone.
//
// Codes are never logged; failures log a reason code only.
const (
	// switchCodeParam carries a code to /_auth/callback; OIDC's "code" and
	// "state" are never read as one.
	switchCodeParam = "tg_switch"
	// switchCodeTTL is the life of a code: it only has to survive one
	// redirect.
	switchCodeTTL = 30 * time.Second
	// switchVerifierTTL is the life of the verifier cookie: the apex
	// answers at once, or the person starts again.
	switchVerifierTTL = time.Minute
	// switchPurpose names the derived key of codes and verifiers.
	switchPurpose = "tenant-switch"
	// switchCookieBase is the verifier cookie's name without prefix.
	switchCookieBase = "tenantgate-switch"
	// maxSwitchCode bounds the code and verifier values opened.
	maxSwitchCode = 4096
	// switchIDPrefix namespaces spent codes among a tenant's used SAML
	// assertion ids; "/" never appears in an xs:ID.
	switchIDPrefix      = "tg-switch/"
	switchRecordVersion = 1
)

// switchVerifier is the sealed content of the verifier cookie.
type switchVerifier struct {
	V       int    `json:"v"`
	Secret  string `json:"k"`
	Return  string `json:"rd"`
	Created int64  `json:"c"`
}

// switchCode is the sealed content of a code.
type switchCode struct {
	V         int    `json:"v"`
	ID        string `json:"j"`
	User      string `json:"u"`
	Email     string `json:"e"`
	Global    string `json:"s"`
	Issued    int64  `json:"gi"`
	Challenge string `json:"c"`
	Endpoint  string `json:"o"`
	Expires   int64  `json:"x"`
}

func switchVerifierContext(tenantInternalID string) string {
	return "switch-verifier:v1:" + tenantInternalID
}

func switchCodeContext(tenantInternalID string) string {
	return "switch-code:v1:" + tenantInternalID
}

// challengeOf is the S256 challenge of a verifier secret.
func challengeOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validChallenge reports whether s has the shape of challengeOf's output.
func validChallenge(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// switchCookie is the verifier cookie (hostCookie): SameSite=Lax suits it,
// as the apex's redirect back is a top-level GET; named for the tenant
// under path tenancy (cookies.go).
func (h *Handler) switchCookie(q *request, value string, maxAge int) *http.Cookie {
	return h.hostCookie(q, switchCookieBase, value, maxAge)
}

// apexHostOf is the apex host a tenant request asks for a switch code: the
// request's own host under path tenancy, the base domain of <id>.<base>,
// else (a custom domain) the first base domain; "" when there is none.
func (h *Handler) apexHostOf(q *request) string {
	if q.res.Prefix != "" {
		return q.res.Host
	}
	if base, ok := strings.CutPrefix(q.res.Host, q.tenant().ID+"."); ok && slices.Contains(h.Resolver.BaseDomains, base) {
		return base
	}
	if len(h.Resolver.BaseDomains) > 0 {
		return h.Resolver.BaseDomains[0]
	}
	return ""
}

// startSwitch: GET /_auth/switch?rd=PATH on a tenant host (step 1). A
// tenant that cannot be switched into (no password sign-in, no apex,
// switching off) sends the browser to its sign-in page instead.
func (h *Handler) startSwitch(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	rd := SafeRedirect(q.r.URL.Query().Get("rd"), q.res.Prefix)
	apex := h.apexHostOf(q)
	if !h.globalEnabled() || apex == "" || !t.HasMethod(tenants.MethodPassword) {
		return found(q.res.Prefix + signin.PathLogin + "?" + url.Values{"rd": {rd}}.Encode())
	}
	secret, err := randomString(h.Rand, stateBytes)
	if err != nil {
		return h.unavailable(q, "start switch", err)
	}
	v, err := sealJSON(h.switchSealer, switchVerifier{V: switchRecordVersion, Secret: secret, Return: rd, Created: h.now().Unix()},
		switchVerifierContext(t.InternalID))
	if err != nil {
		return h.unavailable(q, "start switch", err)
	}
	q.setCookie(h.switchCookie(q, v, int(switchVerifierTTL/time.Second)))
	target := h.scheme() + "://" + apex + requestPort(q.r.Host) + signin.PathSwitch + "?" + url.Values{
		"tenant":    {t.ID},
		"host":      {q.res.Host},
		"challenge": {challengeOf(secret)},
	}.Encode()
	return found(target)
}

// issueSwitch: GET /_auth/switch?tenant=ID&host=HOST&challenge=C on the
// apex host (step 2). A code is issued at once only when this browser chose
// the tenant on the chooser a moment ago (the intent cookie); otherwise,
// for instance when the tenant's own page started the switch or another
// site sent the browser here, the person confirms with a button first, so
// no page elsewhere can make a browser carry a code on its own.
func (h *Handler) issueSwitch(q *request) *answer {
	query := q.r.URL.Query()
	sw, a := h.switchTarget(q, query.Get("tenant"), query.Get("host"), query.Get("challenge"))
	if a != nil {
		return a
	}
	if h.takeIntent(q, sw) {
		return h.sendSwitchCode(q, sw)
	}
	origin, _, _ := strings.Cut(strings.TrimPrefix(sw.endpoint, h.scheme()+"://"), "/")
	return htmlPage(http.StatusOK, "switch", page{
		Title:      "Switch organisation",
		TenantName: displayName(sw.tenant.Name, sw.tenant.ID),
		Email:      sw.user.Email,
		Action:     signin.PathSwitch,
		CSRF:       h.formCSRF(q),
		Hidden: []hiddenField{
			{"tenant", sw.tenant.ID}, {"host", query.Get("host")}, {"challenge", query.Get("challenge")},
		},
		Link:        signin.PathLogin,
		LinkText:    "Choose another organisation",
		formTargets: h.scheme() + "://" + origin,
	})
}

// switchPost: POST /_auth/switch on the apex host with csrf (checked here)
// and either tenant alone, a choice on the chooser, or tenant, host and
// challenge, the confirmation of a switch a tenant host asked for.
func (h *Handler) switchPost(q *request) *answer {
	if a := h.checkForm(q); a != nil {
		return a
	}
	form := q.r.PostForm
	if _, confirm := form["challenge"]; confirm {
		sw, a := h.switchTarget(q, form.Get("tenant"), form.Get("host"), form.Get("challenge"))
		if a != nil {
			return a
		}
		return h.sendSwitchCode(q, sw)
	}
	// A choice on the chooser: remember it for a minute on this host and
	// let the tenant host start the switch.
	g, user, err := h.signedIn(q)
	if err != nil {
		return h.unavailable(q, "look up user", err)
	}
	if g == nil {
		return seeOther(signin.PathLogin)
	}
	t, a := h.switchableTenant(q, user, form.Get("tenant"))
	if a != nil {
		return a
	}
	if err := h.setIntent(q, g, t); err != nil {
		return h.unavailable(q, "choose tenant", err)
	}
	return seeOther(h.tenantURL(q, t) + signin.PathSwitch)
}

// switchRequest is a switch the apex has checked and may issue a code for.
type switchRequest struct {
	tenant    *tenants.Tenant
	global    *globalSession
	user      tenants.User
	challenge string
	endpoint  string
}

// switchTarget checks a switch request: its shape, the global session and
// its user, the tenant (switchableTenant) and the host (switchEndpoint).
// It returns the switch, or the answer to give instead: 303 to the apex
// sign-in page without a global session, 403 for a tenant the person
// cannot switch into, 400 for anything malformed, 503 when the store
// fails.
func (h *Handler) switchTarget(q *request, id, host, challenge string) (*switchRequest, *answer) {
	if !tenants.ValidTenantID(id) || !validChallenge(challenge) || host == "" {
		return nil, h.message(q, http.StatusBadRequest, "Cannot switch organisation", invalidLoginRequest, true).
			refused("switch_bad_request", "")
	}
	g, user, err := h.signedIn(q)
	if err != nil {
		return nil, h.unavailable(q, "look up user", err)
	}
	if g == nil {
		// Sign in here first; the chooser then leads back.
		return nil, seeOther(signin.PathLogin)
	}
	t, a := h.switchableTenant(q, user, id)
	if a != nil {
		return nil, a
	}
	endpoint, ok := h.switchEndpoint(q, t, host)
	if !ok {
		return nil, h.message(q, http.StatusBadRequest, "Cannot switch organisation", invalidLoginRequest, true).
			refused("switch_bad_host", user.Email)
	}
	return &switchRequest{tenant: t, global: g, user: user, challenge: challenge, endpoint: endpoint}, nil
}

// switchableTenant returns the tenant with slug id if user may switch into
// it: it exists, is active, offers password sign-in, and user is a member.
// Otherwise it returns the answer: 403 (the same page whatever the reason)
// or 503.
func (h *Handler) switchableTenant(q *request, user tenants.User, id string) (*tenants.Tenant, *answer) {
	cannot := func(reason string) *answer {
		return h.message(q, http.StatusForbidden, "Cannot switch organisation",
			"Your account cannot be used to sign in to that organisation here. Choose another one, or use its own sign-in page.", true).
			refused(reason, user.Email)
	}
	t := q.snap.BySlug(id)
	if t == nil || t.Suspended() || !t.HasMethod(tenants.MethodPassword) {
		return nil, cannot("switch_tenant_closed")
	}
	if _, err := h.Store.Membership(q.r.Context(), t.InternalID, user.ID); errors.Is(err, tenants.ErrNotFound) {
		return nil, cannot("switch_not_member")
	} else if err != nil {
		return nil, h.unavailable(q, "look up membership", err)
	}
	return t, nil
}

// sendSwitchCode issues a code for sw and sends the browser with it to the
// tenant's /_auth/callback (303).
func (h *Handler) sendSwitchCode(q *request, sw *switchRequest) *answer {
	if !h.switches.take(counterKey("switch", h.clientKey(q.r)), h.now()) {
		return h.message(q, http.StatusTooManyRequests, "Too many attempts",
			"Too many organisation switches from your network. Wait a few minutes and try again.", true).
			retry(60).refused("switch_limited", sw.user.Email)
	}
	code, err := h.sealSwitchCode(sw.tenant, sw.global, sw.user, sw.challenge, sw.endpoint)
	if err != nil {
		return h.unavailable(q, "issue switch code", err)
	}
	h.noteSwitch(q, sw.tenant, sw.user)
	h.log().InfoContext(q.r.Context(), "switch code issued", "host", q.res.Host, "tenant", sw.tenant.ID, "email_digest", h.emailDigest(sw.user.Email))
	return seeOther(sw.endpoint + signin.PathCallback + "?" + url.Values{switchCodeParam: {code}}.Encode())
}

// hiddenField is a hidden input of a form.
type hiddenField struct{ Name, Value string }

// The intent cookie remembers, for switchIntentTTL, which tenant the person
// chose on the apex's chooser, so the switch that tenant host then asks for
// needs no second click. It is sealed, bound to the apex host and to the
// global session, and cleared when used.
const (
	switchIntentTTL      = time.Minute
	switchIntentBase     = "tenantgate-intent"
	switchIntentMaxValue = 1024
)

type switchIntent struct {
	V       int    `json:"v"`
	Tenant  string `json:"t"`
	Global  string `json:"s"`
	Created int64  `json:"c"`
}

func switchIntentContext(host string) string { return "switch-intent:v1:" + host }

func (h *Handler) intentCookie(q *request, value string, maxAge int) *http.Cookie {
	return h.hostCookie(q, switchIntentBase, value, maxAge)
}

// setIntent remembers that the person chose tenant t.
func (h *Handler) setIntent(q *request, g *globalSession, t *tenants.Tenant) error {
	v, err := sealJSON(h.switchSealer, switchIntent{V: switchRecordVersion, Tenant: t.InternalID, Global: g.sid, Created: h.now().Unix()},
		switchIntentContext(q.res.Host))
	if err != nil {
		return fmt.Errorf("switch intent: %w", err)
	}
	q.setCookie(h.intentCookie(q, v, int(switchIntentTTL/time.Second)))
	return nil
}

// takeIntent reports whether this browser chose sw's tenant on the chooser
// within switchIntentTTL, under the same global session, and clears the
// intent.
func (h *Handler) takeIntent(q *request, sw *switchRequest) bool {
	now := h.now()
	found := false
	for i, c := range cookiesNamed(q.r, h.hostCookieName(q, switchIntentBase)) {
		if i == maxCookieCandidates {
			break
		}
		var in switchIntent
		if !openJSON(h.switchSealer, c.Value, switchIntentMaxValue, switchIntentContext(q.res.Host), &in) || in.V != switchRecordVersion {
			continue
		}
		created := time.Unix(in.Created, 0)
		if in.Tenant == sw.tenant.InternalID && in.Global == sw.global.sid &&
			now.Sub(created) <= switchIntentTTL && !created.After(now.Add(time.Minute)) {
			found = true
		}
	}
	if found {
		q.setCookie(h.intentCookie(q, "", -1))
	}
	return found
}

// switchEndpoint returns where tenant t's /_auth/ lives at host, as seen
// from this apex request (its scheme and port), if and only if the
// resolver places host, with the tenant's path when host is this apex,
// at t: a code never goes anywhere but to its own tenant.
func (h *Handler) switchEndpoint(q *request, t *tenants.Tenant, host string) (string, bool) {
	canon, err := tenants.CanonicalHost(host)
	if err != nil || canon != host {
		return "", false
	}
	prefix := ""
	if host == q.res.Host {
		prefix = h.pathPrefix() + "/" + t.ID
	}
	res, err := h.Resolver.Resolve(q.snap, host, prefix+signin.PathCallback)
	if err != nil || res.Apex || res.Tenant == nil || res.Tenant.InternalID != t.InternalID || res.Prefix != prefix {
		return "", false
	}
	return h.scheme() + "://" + host + requestPort(q.r.Host) + prefix, true
}

// sealSwitchCode seals a code for user into tenant t.
func (h *Handler) sealSwitchCode(t *tenants.Tenant, g *globalSession, user tenants.User, challenge, endpoint string) (string, error) {
	jti, err := randomString(h.Rand, attemptIDBytes)
	if err != nil {
		return "", err
	}
	code, err := sealJSON(h.switchSealer, switchCode{
		V: switchRecordVersion, ID: jti, User: user.ID, Email: user.Email,
		Global: g.sid, Issued: g.issued.Unix(), Challenge: challenge, Endpoint: endpoint,
		Expires: h.now().Add(switchCodeTTL).Unix(),
	}, switchCodeContext(t.InternalID))
	if err != nil {
		return "", fmt.Errorf("switch code: %w", err)
	}
	return code, nil
}

// callbackOrSwitch: GET /_auth/callback. With tg_switch it redeems a switch
// code (step 3); anything else is an SSO callback.
func (h *Handler) callbackOrSwitch(q *request) *answer {
	if _, ok := q.r.URL.Query()[switchCodeParam]; ok {
		return h.redeemSwitch(q)
	}
	return h.callback(q)
}

// redeemSwitch completes a switch: every failure is the same 400 "Invalid
// login request" page, with a reason code in the log.
func (h *Handler) redeemSwitch(q *request) *answer {
	t := q.tenant()
	q.method = methodSwitch
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	if !h.globalEnabled() || !t.HasMethod(tenants.MethodPassword) {
		return h.ssoFail(q, "switch_unavailable", nil)
	}
	// The verifier is single use, whatever happens next.
	v := h.openSwitchVerifier(q)
	q.setCookie(h.switchCookie(q, "", -1))
	if v == nil {
		return h.ssoFail(q, "switch_no_verifier", nil)
	}
	code := h.openSwitchCode(q, q.r.URL.Query().Get(switchCodeParam))
	if code == nil {
		return h.ssoFail(q, "switch_bad_code", nil)
	}
	now := h.now()
	expires := time.Unix(code.Expires, 0)
	switch {
	case !now.Before(expires) || expires.After(now.Add(switchCodeTTL+time.Minute)):
		return h.ssoFail(q, "switch_code_expired", nil)
	case subtle.ConstantTimeCompare([]byte(challengeOf(v.Secret)), []byte(code.Challenge)) != 1:
		return h.ssoFail(q, "switch_other_browser", nil)
	case code.Endpoint != h.endpoint(q).URL(""):
		return h.ssoFail(q, "switch_other_endpoint", nil)
	}
	err := h.Store.UseAssertionID(q.r.Context(), t.InternalID, switchIDPrefix+code.ID, expires.Add(time.Minute))
	if errors.Is(err, tenants.ErrReplay) {
		return h.ssoFail(q, "switch_code_reused", nil)
	}
	if err != nil {
		return h.unavailable(q, "spend switch code", err)
	}
	if q.snap.Revoked("", code.User, code.Global, time.Unix(code.Issued, 0)) {
		return h.ssoFail(q, "switch_global_revoked", nil)
	}
	user, ok, err := h.globalUser(q, &globalSession{user: code.User, email: code.Email})
	if err != nil {
		return h.unavailable(q, "look up user", err)
	}
	if !ok {
		return h.ssoFail(q, "switch_user_gone", nil)
	}
	roles, err := h.Store.Membership(q.r.Context(), t.InternalID, user.ID)
	if errors.Is(err, tenants.ErrNotFound) {
		return h.ssoFail(q, "switch_not_member", nil)
	}
	if err != nil {
		return h.unavailable(q, "look up membership", err)
	}
	// The apex's password stands for this tenant's first step; its second
	// step, if it has one, still comes (mfa.go).
	return h.secondStep(q, user, roles, SafeRedirect(v.Return, q.res.Prefix), methodSwitch)
}

// openSwitchVerifier opens this browser's verifier cookie for the
// request's tenant, if it is there and young enough, else nil.
func (h *Handler) openSwitchVerifier(q *request) *switchVerifier {
	now := h.now()
	for i, c := range cookiesNamed(q.r, h.hostCookieName(q, switchCookieBase)) {
		if i == maxCookieCandidates {
			break
		}
		var v switchVerifier
		if !openJSON(h.switchSealer, c.Value, maxSwitchCode, switchVerifierContext(q.tenant().InternalID), &v) ||
			v.V != switchRecordVersion || v.Secret == "" {
			continue
		}
		created := time.Unix(v.Created, 0)
		if now.Sub(created) > switchVerifierTTL || created.After(now.Add(time.Minute)) {
			continue
		}
		return &v
	}
	return nil
}

// openSwitchCode opens a code sealed for the request's tenant, or returns
// nil.
func (h *Handler) openSwitchCode(q *request, raw string) *switchCode {
	var c switchCode
	if !openJSON(h.switchSealer, raw, maxSwitchCode, switchCodeContext(q.tenant().InternalID), &c) || c.V != switchRecordVersion || c.ID == "" || c.User == "" || !validChallenge(c.Challenge) {
		return nil
	}
	return &c
}
