package login

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// invalidCredentials is the only thing a failed sign-in ever says, whatever
// the cause (security catalogue §5 item 35).
const invalidCredentials = "Invalid email or password."

// suspendedPage answers every sign-in attempt on a suspended tenant.
func (h *Handler) suspendedPage(q *request) {
	h.refuse(q, "tenant_suspended", "")
	h.message(q, http.StatusForbidden, "Sign-in unavailable", "This organisation is suspended.", true)
}

// noMethodPage answers a tenant that offers no sign-in method this build
// implements. 501: the tenant's configuration asks for something not served
// here, which waiting will not fix.
func (h *Handler) noMethodPage(q *request) {
	h.refuse(q, "no_method", "")
	h.message(q, http.StatusNotImplemented, "Sign-in unavailable",
		"No sign-in method is available for this organisation. Contact your administrator.", true)
}

// loginPage: GET /_auth/login?rd=PATH&login_hint=EMAIL. The tenant's
// password form and one button per SSO method; a tenant whose only method
// is one SSO method is sent straight to its provider.
func (h *Handler) loginPage(q *request) {
	t := q.tenant()
	if t.Suspended() {
		h.suspendedPage(q)
		return
	}
	query := q.r.URL.Query()
	hint := emailHint(query.Get("login_hint"))
	rd := SafeRedirect(query.Get("rd"), q.res.Prefix)
	if len(t.Methods) == 1 && h.Methods[t.Methods[0].Type] != nil {
		h.startSSO(q, 0, rd, hint, http.StatusFound)
		return
	}
	h.renderLogin(q, http.StatusOK, rd, hint, "")
}

// renderLogin renders the sign-in page, or the no-method page when the
// tenant offers nothing this build serves.
func (h *Handler) renderLogin(q *request, status int, rd, hint, errMsg string) {
	t := q.tenant()
	choices := h.ssoChoices(q)
	password := t.HasMethod(tenants.MethodPassword)
	if !password && len(choices) == 0 {
		h.noMethodPage(q)
		return
	}
	p := page{
		Title:       "Sign in",
		TenantName:  displayName(t.Name, t.ID),
		Action:      q.res.Prefix + signin.PathLogin,
		StartAction: q.res.Prefix + signin.PathStart,
		CSRF:        h.formCSRF(q),
		RD:          rd,
		LoginHint:   hint,
		Error:       errMsg,
		Password:    password,
		SSO:         choices,
	}
	if len(choices) > 0 {
		p.formTargets = h.ssoFormTargets()
	}
	h.render(q, status, "login", p)
}

// login: POST /_auth/login with email, password, rd, csrf.
func (h *Handler) login(q *request) {
	t := q.tenant()
	if t.Suspended() {
		h.suspendedPage(q)
		return
	}
	if !t.HasMethod(tenants.MethodPassword) {
		h.noMethodPage(q)
		return
	}
	if !h.parseForm(q) || !h.checkCSRF(q) {
		return
	}
	form := q.r.PostForm
	email := normaliseEmail(form.Get("email"))
	rd := SafeRedirect(form.Get("rd"), q.res.Prefix)
	membership := func(ctx context.Context, u tenants.User) ([]string, error) {
		return h.Store.Membership(ctx, t.InternalID, u.ID)
	}
	user, roles, ok := h.checkPassword(q, t.InternalID, email, form.Get("password"), membership, func() {
		h.renderLogin(q, http.StatusUnauthorized, rd, "", invalidCredentials)
	})
	if !ok {
		return
	}
	if h.issueSession(q, user, roles) {
		h.log().Info("signed in", "tenant", t.ID, "method", session.MethodPassword, "email_digest", h.emailDigest(email))
		redirect(q.w, rd)
	}
}

// issueSession mints a password session of the request's tenant for user
// with roles and sets its cookie. On failure it has answered 503 and returns
// false.
func (h *Handler) issueSession(q *request, user tenants.User, roles []string) bool {
	token, minted, err := h.Minter.Mint(q.tenant(), session.Claims{
		Subject: user.ID,
		Email:   user.Email,
		Roles:   roles,
		Method:  session.MethodPassword,
	})
	if err != nil {
		h.unavailable(q, "mint session", err)
		return false
	}
	maxAge := int(minted.Expires.Sub(minted.IssuedAt).Seconds())
	if maxAge <= 0 {
		h.unavailable(q, "mint session", errors.New("minted session already expired"))
		return false
	}
	http.SetCookie(q.w, h.sessionCookie(q, token, maxAge))
	return true
}

// checkPassword runs one password sign-in attempt for email and pw against
// the account scope (a tenant's internal id, or "apex:<host>" for the apex
// host's global sign-in): limits, timing and logs are the same for every
// sign-in. membership, when set, gives the user's roles once the user is
// found; ErrNotFound from it is a failure like a wrong password. It returns
// the user and roles, or false after answering: fail renders the 401 page
// saying only invalidCredentials; 429 and 503 are answered here.
func (h *Handler) checkPassword(q *request, scope, email, pw string,
	membership func(context.Context, tenants.User) ([]string, error), fail func()) (tenants.User, []string, bool) {
	now := h.now()
	addrKey := counterKey("address", h.clientKey(q.r))
	acctKey := counterKey("account", scope, email)
	signIn := signInKey(scope, email)

	// An address over its failure limit may be shared (a NAT, or a load
	// balancer whose hops are not configured), so it is no reason to refuse
	// a right password: its attempts are checked like any other, right ones
	// sign in, wrong ones fail and still count. What the limit bounds is
	// their cost: together they hold at most the limited lane's slots of
	// argon2id, and one that finds the lane full gets 429 before any lookup.
	limited := h.addresses.over(addrKey, now)
	if limited {
		if !h.limited.tryTake() {
			h.refuse(q, "address_busy", email)
			h.tooBusy(q)
			return tenants.User{}, nil, false
		}
		defer h.limited.give()
	}
	if h.signIns.over(signIn, now) {
		// Before the password is looked at, right or wrong alike: a 429
		// only for the right one would tell a guesser it was right.
		h.tooManySignIns(q, email)
		return tenants.User{}, nil, false
	}

	reason := ""
	var user tenants.User
	var roles []string
	switch {
	case h.accounts.over(acctKey, now):
		reason = "account_locked"
	case email == "" || len(email) > maxEmailBytes:
		reason = "bad_email"
	case len(pw) > password.MaxBytes:
		reason = "password_too_long"
	}
	if reason == "" {
		var err error
		user, err = h.Store.UserByEmail(q.r.Context(), email)
		switch {
		case errors.Is(err, tenants.ErrNotFound):
			reason = "unknown_user"
		case err != nil:
			h.unavailable(q, "look up user", err)
			return tenants.User{}, nil, false
		case user.PasswordHash == "":
			reason = "no_password"
		}
	}
	if reason == "" && membership != nil {
		var err error
		roles, err = membership(q.r.Context(), user)
		switch {
		case errors.Is(err, tenants.ErrNotFound):
			reason = "not_member"
		case err != nil:
			h.unavailable(q, "look up membership", err)
			return tenants.User{}, nil, false
		}
	}

	var match bool
	var err error
	if reason == "" {
		match, err = h.Passwords.Verify(user.PasswordHash, pw)
		if err != nil && !errors.Is(err, password.ErrBusy) {
			attrs := []any{"email_digest", h.emailDigest(email), "err", err}
			if t := q.tenant(); t != nil {
				attrs = append(attrs, "tenant", t.ID)
			}
			h.log().Error("stored password hash unusable", attrs...)
			reason = "bad_hash"
		} else if err == nil && !match {
			reason = "wrong_password"
		}
	} else {
		_, err = h.Passwords.VerifyDummy(pw)
	}
	if errors.Is(err, password.ErrBusy) {
		h.refuse(q, "busy", email)
		h.tooBusy(q)
		return tenants.User{}, nil, false
	}
	if reason != "" {
		h.accounts.add(acctKey, now)
		h.addresses.add(addrKey, now)
		h.refuse(q, reason, email, "address_limited", limited)
		fail()
		return tenants.User{}, nil, false
	}
	h.accounts.reset(acctKey)
	if !h.signIns.take(signIn, now) {
		h.tooManySignIns(q, email)
		return tenants.User{}, nil, false
	}
	return user, roles, true
}

// tooBusy answers 429: no password check could start now. It says nothing
// about the password, and asks for another try in a moment.
func (h *Handler) tooBusy(q *request) {
	q.w.Header().Set("Retry-After", "1")
	h.message(q, http.StatusTooManyRequests, "Too many sign-ins",
		"Too many people are signing in right now. Wait a moment and try again.", true)
}

// signInKey is the Limits.AccountSignIns counter of an account: an email in
// a scope (a tenant's internal id, or "apex:<host>"), or, for an identity an
// SSO method vouched for, the method type, issuer and subject in a tenant.
func signInKey(scope string, account ...string) [sha256.Size]byte {
	return counterKey(append([]string{"signin", scope}, account...)...)
}

// admitSignIn counts one successful sign-in of the account with counter key
// and reports whether it is within Limits.AccountSignIns; when it is not it
// has answered 429. email, when known, is for the log.
func (h *Handler) admitSignIn(q *request, key [sha256.Size]byte, email string) bool {
	if h.signIns.take(key, h.now()) {
		return true
	}
	h.tooManySignIns(q, email)
	return false
}

// tooManySignIns answers an account over Limits.AccountSignIns: 429 with
// Retry-After, in the style of the other rate-limit pages.
func (h *Handler) tooManySignIns(q *request, email string) {
	h.refuse(q, "signin_limited", email)
	q.w.Header().Set("Retry-After", strconv.Itoa(int(signInWindow/time.Second)))
	h.message(q, http.StatusTooManyRequests, "Too many sign-ins",
		"This account has signed in too many times in the last minute. Wait a minute and try again.", true)
}

// sessionCookie is the request's tenant's session cookie (CONTRACT.md):
// host-only, HttpOnly, SameSite=Lax, Secure unless insecure; for path
// tenancy named and scoped for the tenant alone (cookies.go). maxAge < 0
// deletes it.
func (h *Handler) sessionCookie(q *request, token string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     h.sessionCookieName(q),
		Value:    token,
		Path:     sessionCookiePath(q),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !h.InsecureCookies,
		SameSite: http.SameSiteLaxMode,
	}
}

func (h *Handler) unavailable(q *request, what string, err error) {
	attrs := []any{"err", err}
	if t := q.tenant(); t != nil {
		attrs = append(attrs, "tenant", t.ID)
	}
	h.log().Error(what, attrs...)
	h.message(q, http.StatusServiceUnavailable, "Temporarily unavailable",
		"Something went wrong on our side. Try again in a moment.", true)
}

// redirect answers 303 See Other to a location already made safe.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// normaliseEmail is how an email is looked up and counted: surrounding
// space removed, lower-cased (the store compares lower-case), so "Alice@X"
// and "alice@x" share one failure count.
func normaliseEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// logoutPage: GET /_auth/logout, a confirmation form.
func (h *Handler) logoutPage(q *request) {
	t := q.tenant()
	p := page{
		Title:      "Sign out",
		TenantName: displayName(t.Name, t.ID),
		Action:     q.res.Prefix + signin.PathLogout,
		CSRF:       h.formCSRF(q),
	}
	if h.signsOutAtProvider(q) {
		// Signing out may continue at the provider.
		p.formTargets = h.ssoFormTargets()
	}
	h.render(q, http.StatusOK, "logout", p)
}

// logout: POST /_auth/logout with csrf. Revokes the request's session of
// this tenant, if any, clears the cookie and sends the browser to the sign-in
// page, or, for a session from a method that offers RP-initiated logout
// and whose ID token was kept, to the provider's end-session URL (which
// brings the browser back to /_auth/signed-out). A session of another
// tenant found in the cookie is not revoked, only cleared.
func (h *Handler) logout(q *request) {
	if !h.parseForm(q) || !h.checkCSRF(q) {
		return
	}
	t := q.tenant()
	sid := "" // of this tenant's SSO session, for provider logout
	for i, c := range cookiesNamed(q.r, h.sessionCookieName(q)) {
		if i == maxCookieCandidates {
			break
		}
		claims, err := h.Verifier.VerifyFor(q.snap, t, c.Value)
		if err != nil {
			continue
		}
		if claims.Method != session.MethodPassword && sid == "" {
			sid = claims.SID
		}
		// Kept past the token's exp by the verifier's leeway, or the
		// token would work again once the revocation was dropped.
		err = h.revoke(q, claims.Revocation(h.now()))
		if err != nil {
			// Keep the cookie: clearing it would leave a live session the
			// person can no longer sign out of.
			h.unavailable(q, "revoke session", err)
			return
		}
		h.log().Info("signed out", "tenant", t.ID)
	}
	http.SetCookie(q.w, h.sessionCookie(q, "", -1))
	if h.Methods != nil {
		target := h.providerLogoutURL(q, sid)
		http.SetCookie(q.w, h.idTokenCookie(q, "", -1))
		if target != "" {
			redirect(q.w, target)
			return
		}
	}
	redirect(q.w, q.res.Prefix+signin.PathLogin)
}

// jwks: GET /_auth/jwks.json, the tenant's public signing keys.
func (h *Handler) jwks(q *request) {
	b, err := session.JWKS(q.tenant())
	if err != nil {
		h.log().Error("tenant JWKS", "tenant", q.tenant().ID, "err", err)
		writeJSONError(q.w, http.StatusInternalServerError, "internal")
		return
	}
	hd := q.w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method != http.MethodHead {
		q.w.Write(b)
	}
}
