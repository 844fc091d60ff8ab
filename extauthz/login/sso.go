package login

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// maxACSBytes bounds the body of a POST to the SAML ACS, before base64
// decoding (the saml method bounds the decoded response again).
const maxACSBytes = 256 << 10

// maxIDTokenCookie bounds the sealed id_token hint cookie; a longer ID token
// is not kept, and sign-out at the provider then goes without the hint
// (the provider asks the person to confirm instead).
const maxIDTokenCookie = 3 << 10

// invalidLoginRequest is all a failed SSO sign-in ever says: provider error
// text is never shown (the log gets a reason code).
const invalidLoginRequest = "Invalid login request. Go back to the sign-in page and try again."

// ssoFormTargets extends the form-action of pages whose forms redirect to an
// identity provider (start and logout): browsers apply form-action to the
// redirect that follows a form POST, and the provider's endpoints are only
// known after discovery. https: (and loopback http, for local IdPs; any
// http: with InsecureCookies) still refuses javascript:, data: and plain
// http to the network.
func (h *Handler) ssoFormTargets() string {
	if h.InsecureCookies {
		return "https: http:"
	}
	return "https: http://localhost:* http://127.0.0.1:*"
}

// ssoChoice is one SSO button on the sign-in page.
type ssoChoice struct {
	Index     int
	Label     string
	Available bool
}

// serves reports whether the handler offers method entry m at sign-in: its
// type has an Opener in Methods, and it is not stored-but-not-offered
// (signin.NotOffered), which is told without opening it.
func (h *Handler) serves(m tenants.Method) bool {
	return h.Methods[m.Type] != nil && signin.NotOffered(h.MethodTypes, m) == ""
}

// ssoChoices lists the tenant's SSO methods this build serves, in
// configured order, leaving out those not offered yet (h.serves, or an
// Opener's signin.ErrNotOffered). A method that fails to open is listed as
// unavailable.
func (h *Handler) ssoChoices(q *request) []ssoChoice {
	t := q.tenant()
	var out []ssoChoice
	for i, m := range t.Methods {
		if !h.serves(m) {
			continue
		}
		c := ssoChoice{Index: i, Label: m.Label}
		switch opened, err := h.method(q.r.Context(), t, i); {
		case errors.Is(err, signin.ErrNotOffered):
			continue
		case err == nil:
			c.Available = true
			c.Label = opened.Label()
		}
		if c.Label == "" {
			c.Label = "Sign in with " + strings.ToUpper(m.Type[:1]) + m.Type[1:]
		}
		out = append(out, c)
	}
	return out
}

// postOnly answers a POST (after the cross-origin check) with post, and
// anything else with 405.
func (h *Handler) postOnly(q *request, post func(*request) *answer) *answer {
	if q.r.Method != http.MethodPost {
		return methodNotAllowed("POST")
	}
	if err := h.origins.Check(q.r); err != nil {
		return h.forbidden(q).refused("cross_origin", "")
	}
	return post(q)
}

// start: POST /_auth/start with m (method index), rd, login_hint and csrf.
// It starts an attempt and sends the browser to the provider (303).
func (h *Handler) start(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	form := q.r.PostForm
	i, err := strconv.Atoi(form.Get("m"))
	if err != nil || i < 0 || i >= len(t.Methods) || !h.serves(t.Methods[i]) {
		return h.ssoFail(q, "sso_bad_method", nil)
	}
	if _, err := h.method(q.r.Context(), t, i); errors.Is(err, signin.ErrNotOffered) {
		return h.ssoFail(q, "sso_bad_method", nil)
	}
	return h.startSSO(q, i, SafeRedirect(form.Get("rd"), q.res.Prefix), loginHint(form.Get("login_hint")), http.StatusSeeOther)
}

// loginHint returns a login_hint worth passing on, or "".
func loginHint(s string) string {
	if len(s) > maxEmailBytes || hasControl(s) {
		return ""
	}
	return s
}

// startSSO opens method i, makes an attempt, sets its cookie and redirects
// to the provider with status (302 for the direct GET, 303 after a POST).
func (h *Handler) startSSO(q *request, i int, rd, hint string, status int) *answer {
	t := q.tenant()
	q.method = t.Methods[i].Type
	ctx := q.r.Context()
	m, err := h.method(ctx, t, i)
	if err != nil {
		return h.methodUnavailable(q, "sso_method_unavailable", err)
	}
	_, crossSite := m.(signin.SAMLMethod)
	a, err := h.newAttempt(q, i, t.Methods[i].Type, crossSite, rd, hint)
	if err != nil {
		return h.unavailable(q, "start sign-in attempt", err)
	}
	var target string
	switch mm := m.(type) {
	case signin.SAMLMethod:
		var reqID string
		target, reqID, err = mm.AuthnRequestURL(ctx, &a.Attempt)
		a.SAMLRequestID = reqID
		if err == nil && reqID == "" {
			err = errors.New("saml method returned no request id")
		}
	case signin.RedirectMethod:
		target, err = mm.AuthURL(ctx, &a.Attempt)
	default:
		err = errors.New("method signs in neither by redirect nor by SAML")
	}
	if err == nil && !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") {
		err = errors.New("method returned a provider URL that is not http(s)")
	}
	if err != nil {
		return h.methodUnavailable(q, "sso_start_failed", err)
	}
	if err := h.setAttemptCookie(q, a); err != nil {
		return h.unavailable(q, "start sign-in attempt", err)
	}
	return redirectTo(status, target)
}

// methodUnavailable answers 503 for a method that cannot be used right now
// (it failed to open, or its provider cannot be reached).
func (h *Handler) methodUnavailable(q *request, reason string, err error) *answer {
	return h.message(q, http.StatusServiceUnavailable, "Sign-in unavailable",
		"This sign-in method is temporarily unavailable. Try again in a moment, or contact your administrator.", true).
		refused(reason, "").
		logging(slog.LevelError, "sign-in method unavailable", "tenant", q.tenant().ID, "reason", reason, "err", err)
}

// ssoFail answers 400 "invalid login request" and logs the reason code (and
// the method's error, which carries no secret and is never shown).
func (h *Handler) ssoFail(q *request, reason string, err error) *answer {
	a := h.message(q, http.StatusBadRequest, "Sign-in failed", invalidLoginRequest, true).refused(reason, "")
	if err != nil {
		a.logging(slog.LevelInfo, "sso sign-in failed", "tenant", q.tenant().ID, "reason", reason, "err", err)
	}
	return a
}

// ssoExplained answers a refusal the method explained (signin.Refusal):
// 400, "Invalid login request" with the method's Message as the cause, and
// the method's Reason in the log.
func (h *Handler) ssoExplained(q *request, r *signin.Refusal) *answer {
	p := h.messagePage(q, "Sign-in failed", invalidLoginRequest, true)
	p.Causes = []string{r.Message}
	return htmlPage(http.StatusBadRequest, "message", p).refused(r.Reason, "").
		logging(slog.LevelInfo, "sso sign-in failed", "tenant", q.tenant().ID, "reason", r.Reason, "err", r.Err)
}

// lostAttempt answers a callback or ACS request that names an attempt this
// browser holds no cookie for (reason sso_no_attempt): 400, "Invalid login
// request", and the likely causes, since from the outside a lost attempt
// looks like any other failure. Over plain http (--insecure-cookies, or
// X-Forwarded-Proto: http) the causes lead with that one, and the log line
// carries a hint saying why: the SAML attempt cookie is SameSite=Lax there,
// and a browser withholds it from the IdP's cross-site POST.
func (h *Handler) lostAttempt(q *request) *answer {
	plain := h.InsecureCookies || forwardedPlainHTTP(q.r)
	var extra []any
	if plain {
		extra = append(extra, "hint", "plain http: browsers withhold the attempt cookie from a SAML IdP's cross-site POST (and drop Secure cookies); sign in over https")
	}
	causes := []string{
		"More than 10 minutes passed between starting to sign in and coming back.",
		"The sign-in was finished in another browser, or at another address of this site than the one it started on.",
		"This page was reloaded or sent twice: each sign-in can be completed once.",
		"This browser blocks cookies for this site.",
	}
	if plain {
		causes = append([]string{"This site is reached over plain http: browsers do not send the sign-in cookie back with a SAML identity provider's reply. Sign in over https."}, causes...)
	}
	p := h.messagePage(q, "Sign-in failed", invalidLoginRequest, true)
	p.Causes = causes
	return htmlPage(http.StatusBadRequest, "message", p).refused("sso_no_attempt", "", extra...)
}

// forwardedPlainHTTP reports whether the proxy in front says the browser
// connected over plain http (Envoy sets X-Forwarded-Proto from the
// connection, overwriting a client's copy).
func forwardedPlainHTTP(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "http")
}

// callback: GET /_auth/callback?state=…, where OIDC and OAuth2 providers
// send the browser back.
func (h *Handler) callback(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	a := h.attemptByState(q, q.r.URL.Query().Get("state"))
	if a == nil {
		return h.lostAttempt(q)
	}
	h.clearAttempt(q, a) // single use, whatever happens next
	q.method = a.typ
	if reason := h.checkAttempt(q, a, a.Method, a.typ); reason != "" {
		return h.ssoFail(q, reason, nil)
	}
	if a.Method >= len(t.Methods) || t.Methods[a.Method].Type != a.typ {
		return h.ssoFail(q, "sso_attempt_other_method", nil)
	}
	m, err := h.method(q.r.Context(), t, a.Method)
	if err != nil {
		return h.methodUnavailable(q, "sso_method_unavailable", err)
	}
	rm, ok := m.(signin.RedirectMethod)
	if !ok {
		return h.ssoFail(q, "sso_attempt_other_method", nil)
	}
	id, err := rm.Callback(q.r.Context(), &a.Attempt, q.r)
	if r := (*signin.Refusal)(nil); errors.As(err, &r) {
		return h.ssoExplained(q, r)
	}
	if err != nil {
		return h.ssoFail(q, "sso_callback_refused", err)
	}
	return h.completeSSO(q, a.Method, m, id, a.ReturnTo)
}

// samlMethod returns the tenant's SAML method, the one of its methods that
// opens as a signin.SAMLMethod (a tenant has at most one), and its index.
// It returns nil when there is none, with an error when some method failed
// to open (it may have been the SAML one).
func (h *Handler) samlMethod(q *request) (signin.SAMLMethod, int, error) {
	t := q.tenant()
	var failed error
	for i, m := range t.Methods {
		if !h.serves(m) {
			continue
		}
		opened, err := h.method(q.r.Context(), t, i)
		if err != nil {
			if !errors.Is(err, signin.ErrNotOffered) {
				failed = err
			}
			continue
		}
		if sm, ok := opened.(signin.SAMLMethod); ok {
			return sm, i, nil
		}
	}
	return nil, -1, failed
}

// samlMetadata: GET /_auth/saml/metadata, the tenant's SP metadata.
func (h *Handler) samlMetadata(q *request) *answer {
	t := q.tenant()
	sm, _, err := h.samlMethod(q)
	switch {
	case sm == nil && err != nil:
		return jsonError(http.StatusServiceUnavailable, "unavailable").
			logging(slog.LevelError, "saml metadata", "tenant", t.ID, "err", err)
	case sm == nil:
		return jsonError(http.StatusNotFound, "not_found")
	}
	b, err := sm.Metadata(h.endpoint(q))
	if err != nil {
		return jsonError(http.StatusServiceUnavailable, "unavailable").
			logging(slog.LevelError, "saml metadata", "tenant", t.ID, "err", err)
	}
	return document("application/samlmetadata+xml", "no-cache", b)
}

// acs: POST /_auth/saml/acs, the SAML assertion consumer. The POST comes
// from the IdP's page, cross-site, so it passes neither the cross-origin
// check nor CSRF: what protects it is the signed assertion, bound by
// InResponseTo to the attempt named by RelayState, whose cookie only this
// browser holds. Without RelayState the response is unsolicited
// (IdP-initiated), which the method refuses unless the tenant allows it.
func (h *Handler) acs(q *request) *answer {
	if q.r.Method != http.MethodPost {
		return methodNotAllowed("POST")
	}
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	sm, i, err := h.samlMethod(q)
	switch {
	case sm == nil && err != nil:
		return h.methodUnavailable(q, "sso_method_unavailable", err)
	case sm == nil:
		return jsonError(http.StatusNotFound, "not_found")
	}
	if err := readForm(q, maxACSBytes); err != nil {
		return h.message(q, formStatus(err), "Sign-in failed", invalidLoginRequest, true).refused("sso_bad_form", "")
	}
	var a *attempt
	returnTo := q.res.Prefix + "/"
	if relay := q.r.PostForm.Get("RelayState"); validAttemptID(relay) {
		if a = h.attemptByID(q, relay); a == nil {
			return h.lostAttempt(q)
		}
		h.clearAttempt(q, a)
		if reason := h.checkAttempt(q, a, i, t.Methods[i].Type); reason != "" {
			return h.ssoFail(q, reason, nil)
		}
		returnTo = a.ReturnTo
	}
	var ap *signin.Attempt
	if a != nil {
		ap = &a.Attempt
	}
	id, err := sm.HandleResponse(q.r.Context(), h.endpoint(q), ap, q.r)
	if r := (*signin.Refusal)(nil); errors.As(err, &r) {
		return h.ssoExplained(q, r)
	}
	if err != nil {
		return h.ssoFail(q, "sso_saml_refused", err)
	}
	return h.completeSSO(q, i, sm, id, returnTo)
}

// completeSSO turns an identity a method vouched for into a session of the
// request's tenant: the account is keyed on (tenant, method type, issuer,
// subject) and never found by email; the email is kept only when verified.
// The session's amr is the identity's: set only by a method that required
// the provider's MFA and got it (signin.Identity.AMR).
func (h *Handler) completeSSO(q *request, i int, m signin.Method, id signin.Identity, returnTo string) *answer {
	t := q.tenant()
	typ := t.Methods[i].Type
	if id.Subject == "" || id.Issuer == "" {
		return h.ssoFail(q, "sso_no_subject", nil)
	}
	email := ""
	if id.EmailVerified {
		if e := normaliseEmail(id.Email); len(e) <= maxEmailBytes && !hasControl(e) && strings.Contains(e, "@") {
			email = e
		}
	}
	roles := make([]string, 0, len(id.Roles))
	for _, r := range id.Roles {
		if _, ok := t.Roles[r]; ok {
			roles = append(roles, r)
		}
	}
	if a := h.admitSignIn(q, signInKey(t.InternalID, typ, id.Issuer, id.Subject), email); a != nil {
		return a
	}
	user, err := h.Store.UpsertExternalUser(q.r.Context(), t.InternalID, tenants.ExternalIdentity{
		Method: typ, Issuer: id.Issuer, Subject: id.Subject, Email: email, Roles: roles,
	})
	if errors.Is(err, tenants.ErrNotFound) {
		return h.ssoFail(q, "sso_tenant_gone", err)
	}
	if err != nil {
		return h.unavailable(q, "record sso user", err)
	}
	h.publish(q, "an SSO sign-in")
	minted, err := h.mintSession(q, session.Claims{
		Subject: user.ID,
		Email:   email,
		Roles:   roles,
		Method:  typ,
		AMR:     id.AMR,
	}, sessionVia(typ, id.AMR))
	if err != nil {
		return h.unavailable(q, "mint session", err)
	}
	maxAge := int(minted.Expires.Sub(minted.IssuedAt).Seconds())
	if _, ok := m.(signin.LogoutMethod); ok && id.IDTokenHint != "" {
		h.setIDTokenCookie(q, t, minted.SID, i, id.IDTokenHint, maxAge)
	} else {
		q.setCookie(h.idTokenCookie(q, "", -1))
	}
	h.noteSignIn(q, user, typ)
	h.log().InfoContext(q.r.Context(), "signed in", "tenant", t.ID, "method", typ, "user", user.ID, "mfa", minted.MFA())
	return seeOther(SafeRedirect(returnTo, q.res.Prefix))
}

// idTokenRecord is the sealed content of the id-token cookie.
type idTokenRecord struct {
	Method int    `json:"m"`
	Hint   string `json:"h"`
}

// idTokenCookieName is "__Host-tg-idt" ("__Host-tg-idt.<id>" for a path
// tenant; see cookies.go).
func (h *Handler) idTokenCookieName(q *request) string { return h.hostCookieName(q, idTokenCookieBase) }

// idTokenCookieBase is the id-token hint cookie's name without prefix.
const idTokenCookieBase = "tg-idt"

// idTokenContext binds the id-token cookie to one session of one tenant.
func idTokenContext(tenantInternalID, sid string) string {
	return "id-token-hint:v1:" + tenantInternalID + ":" + sid
}

// idTokenCookie is the id-token hint cookie (hostCookie); like the session
// cookie, host-only, HttpOnly, SameSite=Lax, Secure unless insecure.
func (h *Handler) idTokenCookie(q *request, value string, maxAge int) *http.Cookie {
	return h.hostCookie(q, idTokenCookieBase, value, maxAge)
}

// setIDTokenCookie keeps the ID token for RP-initiated logout, sealed and
// bound to the session it came with. Too large a token is not kept.
func (h *Handler) setIDTokenCookie(q *request, t *tenants.Tenant, sid string, i int, hint string, maxAge int) {
	s := h.stateSealer()
	plain, err := json.Marshal(idTokenRecord{Method: i, Hint: hint})
	if err != nil || s == nil {
		return
	}
	sealed, err := s.Seal(plain, idTokenContext(t.InternalID, sid))
	if err != nil {
		return
	}
	v := base64.RawURLEncoding.EncodeToString(sealed)
	if len(v) > maxIDTokenCookie {
		q.setCookie(h.idTokenCookie(q, "", -1))
		return
	}
	q.setCookie(h.idTokenCookie(q, v, maxAge))
}

// providerLogoutURL returns where to send the browser to sign out at the
// provider after the session sid of the request's tenant was ended, or "".
func (h *Handler) providerLogoutURL(q *request, sid string) string {
	s := h.stateSealer()
	t := q.tenant()
	if s == nil || sid == "" {
		return ""
	}
	for i, c := range cookiesNamed(q.r, h.idTokenCookieName(q)) {
		if i == maxCookieCandidates {
			break
		}
		sealed, err := base64.RawURLEncoding.Strict().DecodeString(c.Value)
		if err != nil {
			continue
		}
		plain, err := s.Open(sealed, idTokenContext(t.InternalID, sid))
		if err != nil {
			continue
		}
		var rec idTokenRecord
		if json.Unmarshal(plain, &rec) != nil || rec.Method < 0 || rec.Method >= len(t.Methods) {
			return ""
		}
		m, err := h.method(q.r.Context(), t, rec.Method)
		if err != nil {
			return ""
		}
		lm, ok := m.(signin.LogoutMethod)
		if !ok {
			return ""
		}
		u, err := lm.LogoutURL(q.r.Context(), rec.Hint, h.endpoint(q).URL(signin.PathSignedOut))
		if err != nil {
			h.log().WarnContext(q.r.Context(), "provider logout url", "tenant", t.ID, "err", err)
			return ""
		}
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return ""
		}
		return u
	}
	return ""
}

// signsOutAtProvider reports whether any of the tenant's methods can also
// sign the person out at its provider (a signin.LogoutMethod), so that the
// sign-out form may continue there.
func (h *Handler) signsOutAtProvider(q *request) bool {
	t := q.tenant()
	for i, m := range t.Methods {
		if !h.serves(m) {
			continue
		}
		if opened, err := h.method(q.r.Context(), t, i); err == nil {
			if _, ok := opened.(signin.LogoutMethod); ok {
				return true
			}
		}
	}
	return false
}

// signedOut: GET /_auth/signed-out, where a provider sends the browser
// back after signing out there.
func (h *Handler) signedOut(q *request) *answer {
	return h.message(q, http.StatusOK, "Signed out", "You are signed out.", false)
}
