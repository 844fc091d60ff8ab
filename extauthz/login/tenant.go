package login

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
func (h *Handler) suspendedPage(q *request) *answer {
	return h.message(q, http.StatusForbidden, "Sign-in unavailable", "This organisation is suspended.", true).
		refused("tenant_suspended", "")
}

// noMethodPage answers a tenant that offers no sign-in method this build
// implements. 501: the tenant's configuration asks for something not served
// here, which waiting will not fix.
func (h *Handler) noMethodPage(q *request) *answer {
	return h.message(q, http.StatusNotImplemented, "Sign-in unavailable",
		"No sign-in method is available for this organisation. Contact your administrator.", true).
		refused("no_method", "")
}

// loginPage: GET /_auth/login?rd=PATH&login_hint=EMAIL. The tenant's
// password form and one button per SSO method; a tenant whose only method
// is one SSO method is sent straight to its provider.
func (h *Handler) loginPage(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	query := q.r.URL.Query()
	hint := emailHint(query.Get("login_hint"))
	rd := SafeRedirect(query.Get("rd"), q.res.Prefix)
	if len(t.Methods) == 1 && h.Methods[t.Methods[0].Type] != nil {
		return h.startSSO(q, 0, rd, hint, http.StatusFound)
	}
	return h.loginForm(q, http.StatusOK, rd, hint, "")
}

// loginForm is the sign-in page, or the no-method page when the tenant
// offers nothing this build serves.
func (h *Handler) loginForm(q *request, status int, rd, hint, errMsg string) *answer {
	t := q.tenant()
	choices := h.ssoChoices(q)
	password := t.HasMethod(tenants.MethodPassword)
	if !password && len(choices) == 0 {
		return h.noMethodPage(q)
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
		ForgotLink:  h.forgotLink(q, password),
	}
	if len(choices) > 0 {
		p.formTargets = h.ssoFormTargets()
	}
	return htmlPage(status, "login", p)
}

// login: POST /_auth/login with email, password, rd, csrf.
func (h *Handler) login(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	if !t.HasMethod(tenants.MethodPassword) {
		return h.noMethodPage(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	form := q.r.PostForm
	email := normaliseEmail(form.Get("email"))
	rd := SafeRedirect(form.Get("rd"), q.res.Prefix)
	membership := func(ctx context.Context, u tenants.User) ([]string, error) {
		return h.Store.Membership(ctx, t.InternalID, u.ID)
	}
	fail := func() *answer {
		return h.loginForm(q, http.StatusUnauthorized, rd, "", invalidCredentials)
	}
	if t.MFAOn() {
		// Right password or not, the second step comes next (mfa.go).
		fail = func() *answer { return h.failedFirstStep(q, email, rd) }
	}
	user, roles, a := h.checkFirstFactor(q, t.InternalID, email, form.Get("password"), membership, fail)
	if a != nil {
		return a
	}
	return h.secondStep(q, user, roles, rd, session.MethodPassword)
}

// issueSession mints a password session of the request's tenant for user
// with roles and amr (session.Claims.AMR), records it (recordSession; via
// is how the person's first step was done: password, switch; the record
// adds the second factor, sessionVia) and sets its cookie, or returns why
// it could not.
func (h *Handler) issueSession(q *request, user tenants.User, roles, amr []string, via string) (session.Claims, error) {
	return h.mintSession(q, session.Claims{
		Subject: user.ID,
		Email:   user.Email,
		Roles:   roles,
		Method:  session.MethodPassword,
		AMR:     amr,
	}, sessionVia(via, amr))
}

// mintSession mints a session of the request's tenant with claims c,
// records it (recordSession) and sets its cookie. A session that cannot be
// recorded sets no cookie: the error refuses the sign-in.
func (h *Handler) mintSession(q *request, c session.Claims, via string) (session.Claims, error) {
	h.waitPastRevocation(q, q.tenant().InternalID, c.Subject)
	token, minted, err := h.Minter.Mint(q.tenant(), c)
	if err != nil {
		return session.Claims{}, err
	}
	maxAge := int(minted.Expires.Sub(minted.IssuedAt).Seconds())
	if maxAge <= 0 {
		return session.Claims{}, errors.New("minted session already expired")
	}
	if err := h.recordSession(q, minted, via); err != nil {
		return session.Claims{}, fmt.Errorf("record session: %w", err)
	}
	q.recorded = append(q.recorded, minted)
	h.sessionIssued(minted.Method)
	q.setCookie(h.sessionCookie(q, token, maxAge))
	return minted, nil
}

// checkPassword runs one password sign-in attempt for email and pw against
// the account scope (a tenant's internal id, or "apex:<host>" for the apex
// host's global sign-in): limits, timing and logs are the same for every
// sign-in. membership, when set, gives the user's roles once the user is
// found; ErrNotFound from it is a failure like a wrong password. It returns
// the user and roles, or the answer to give instead: fail's page (the 401
// saying only invalidCredentials) for a failed attempt, else 429 or 503
// (the store or the attempt counters failed: nothing is decided without
// them).
//
// The account's limit holds exactly, for a fleet as for one process: an
// attempt that reaches a verdict (its password was checked) first counts
// itself (Counter.Add) and keeps its verdict only when its count is within
// Limits.AccountFailures; beyond it the attempt is a locked one, right
// password or not. Counts are atomic in the shared counter, so however
// guesses are spread over replicas and raced in parallel, at most
// AccountFailures of them per window get a verdict. The count is taken
// after argon2id has run, never before: an attempt that could not get a
// hashing slot (429) writes nothing, so the counter's writes per second
// are bounded by what the process can hash (docs/fleet.md).
func (h *Handler) checkPassword(q *request, scope, email, pw string,
	membership func(context.Context, tenants.User) ([]string, error), fail func() *answer) (tenants.User, []string, *answer) {
	user, roles, a := h.checkFirstFactor(q, scope, email, pw, membership, fail)
	if a != nil {
		return user, roles, a
	}
	if err := h.accounts.Reset(q.r.Context(), counterKey("account", scope, email)); err != nil {
		return tenants.User{}, nil, h.unavailable(q, "reset account failures", err)
	}
	if a := h.admitSignIn(q, signInKey(scope, email), email); a != nil {
		return tenants.User{}, nil, a
	}
	return user, roles, nil
}

// checkFirstFactor is checkPassword up to the verdict: a right password
// leaves the account's failure count as it is and counts no sign-in, for
// the caller to do once the whole sign-in succeeds (completeSignIn), so
// that a right password followed by a wrong code is a failure like any
// other.
func (h *Handler) checkFirstFactor(q *request, scope, email, pw string,
	membership func(context.Context, tenants.User) ([]string, error), fail func() *answer) (tenants.User, []string, *answer) {
	ctx := q.r.Context()
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
	limited, err := h.addresses.over(ctx, addrKey, now)
	if err != nil {
		return tenants.User{}, nil, h.unavailable(q, "count address failures", err)
	}
	if limited {
		if !h.limited.tryTake() {
			return tenants.User{}, nil, h.tooBusy(q).refused("address_busy", email)
		}
		defer h.limited.give()
	}
	if over, err := h.signIns.over(ctx, signIn, now); err != nil {
		return tenants.User{}, nil, h.unavailable(q, "count sign-ins", err)
	} else if over {
		// Before the password is looked at, right or wrong alike: a 429
		// only for the right one would tell a guesser it was right.
		return tenants.User{}, nil, h.tooManySignIns(q, email)
	}
	locked, err := h.accounts.over(ctx, acctKey, now)
	if err != nil {
		return tenants.User{}, nil, h.unavailable(q, "count account failures", err)
	}

	reason := ""
	var user tenants.User
	var roles []string
	switch {
	case locked:
		reason = "account_locked"
	case email == "" || len(email) > maxEmailBytes:
		reason = "bad_email"
	case len(pw) > password.MaxBytes:
		reason = "password_too_long"
	}
	if reason == "" {
		var err error
		user, err = h.Store.UserByEmail(ctx, email)
		switch {
		case errors.Is(err, tenants.ErrNotFound):
			reason = "unknown_user"
		case err != nil:
			return tenants.User{}, nil, h.unavailable(q, "look up user", err)
		case user.PasswordHash == "":
			reason = "no_password"
		}
	}
	if reason == "" && membership != nil {
		var err error
		roles, err = membership(ctx, user)
		switch {
		case errors.Is(err, tenants.ErrNotFound):
			reason = "not_member"
		case err != nil:
			return tenants.User{}, nil, h.unavailable(q, "look up membership", err)
		}
	}

	var match bool
	if reason == "" {
		match, err = h.Passwords.Verify(user.PasswordHash, pw)
		if err != nil && !errors.Is(err, password.ErrBusy) {
			attrs := []any{"email_digest", h.emailDigest(email), "err", err}
			if t := q.tenant(); t != nil {
				attrs = append(attrs, "tenant", t.ID)
			}
			h.log().ErrorContext(q.r.Context(), "stored password hash unusable", attrs...)
			reason = "bad_hash"
		} else if err == nil && !match {
			reason = "wrong_password"
		}
	} else {
		_, err = h.Passwords.VerifyDummy(pw)
	}
	if errors.Is(err, password.ErrBusy) {
		return tenants.User{}, nil, h.tooBusy(q).refused("busy", email)
	}
	if !locked {
		// The verdict stands only if this attempt is within the limit
		// when counted: attempts racing on other replicas (or here) past
		// the check above are refused as locked once the limit is
		// reached. A locked attempt is not counted again: it changes no
		// verdict, and costs the shared counter no write.
		n, err := h.accounts.Add(ctx, acctKey, now)
		if err != nil {
			return tenants.User{}, nil, h.unavailable(q, "count account failure", err)
		}
		if n > h.accounts.max {
			reason = "account_locked"
		}
	}
	if reason != "" {
		// An address over its limit stays over it for the rest of its
		// window, so counting more of its failures changes nothing
		// (and would cost a shared counter a write for each).
		if !limited {
			if _, err := h.addresses.Add(ctx, addrKey, now); err != nil {
				return tenants.User{}, nil, h.unavailable(q, "count address failure", err)
			}
		}
		return tenants.User{}, nil, fail().refused(reason, email, "address_limited", limited)
	}
	return user, roles, nil
}

// tooBusy answers 429: no password check could start now. It says nothing
// about the password, and asks for another try in a moment.
func (h *Handler) tooBusy(q *request) *answer {
	return h.message(q, http.StatusTooManyRequests, "Too many sign-ins",
		"Too many people are signing in right now. Wait a moment and try again.", true).retry(1)
}

// signInKey is the Limits.AccountSignIns counter of an account: an email in
// a scope (a tenant's internal id, or "apex:<host>"), or, for an identity an
// SSO method vouched for, the method type, issuer and subject in a tenant.
func signInKey(scope string, account ...string) [sha256.Size]byte {
	return counterKey(append([]string{"signin", scope}, account...)...)
}

// admitSignIn counts one successful sign-in of the account with counter key.
// It returns nil when that is within Limits.AccountSignIns, else the 429
// (tooManySignIns), or 503 when the count failed. email, when known, is
// for the log.
func (h *Handler) admitSignIn(q *request, key [sha256.Size]byte, email string) *answer {
	ok, err := h.signIns.take(q.r.Context(), key, h.now())
	switch {
	case err != nil:
		return h.unavailable(q, "count sign-ins", err)
	case !ok:
		return h.tooManySignIns(q, email)
	}
	return nil
}

// tooManySignIns answers an account over Limits.AccountSignIns: 429 with
// Retry-After, in the style of the other rate-limit pages.
func (h *Handler) tooManySignIns(q *request, email string) *answer {
	return h.message(q, http.StatusTooManyRequests, "Too many sign-ins",
		"This account has signed in too many times in the last minute. Wait a minute and try again.", true).
		retry(int(signInWindow/time.Second)).refused("signin_limited", email)
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

// unavailable answers 503 for a failure on our side (the store, minting,
// sealing): the page says only to try again, the log says what failed.
func (h *Handler) unavailable(q *request, what string, err error) *answer {
	attrs := []any{"err", err}
	if t := q.tenant(); t != nil {
		attrs = append(attrs, "tenant", t.ID)
	}
	return h.message(q, http.StatusServiceUnavailable, "Temporarily unavailable",
		"Something went wrong on our side. Try again in a moment.", true).
		logging(slog.LevelError, what, attrs...)
}

// normaliseEmail is how an email is looked up and counted: surrounding
// space removed, lower-cased (the store compares lower-case), so "Alice@X"
// and "alice@x" share one failure count.
func normaliseEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// logoutPage: GET /_auth/logout, a confirmation form.
func (h *Handler) logoutPage(q *request) *answer {
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
	return htmlPage(http.StatusOK, "logout", p)
}

// logout: POST /_auth/logout with csrf. Revokes the request's session of
// this tenant, if any, clears the cookie and sends the browser to the sign-in
// page, or, for a session from a method that offers RP-initiated logout
// and whose ID token was kept, to the provider's end-session URL (which
// brings the browser back to /_auth/signed-out). A session of another
// tenant found in the cookie is not revoked, only cleared.
func (h *Handler) logout(q *request) *answer {
	if a := h.checkForm(q); a != nil {
		return a
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
			return h.unavailable(q, "revoke session", err)
		}
		h.noteSignOut(q, claims.Subject, claims.Email)
		h.log().InfoContext(q.r.Context(), "signed out", "tenant", t.ID)
	}
	q.setCookie(h.sessionCookie(q, "", -1))
	if h.Methods != nil {
		target := h.providerLogoutURL(q, sid)
		q.setCookie(h.idTokenCookie(q, "", -1))
		if target != "" {
			return seeOther(target)
		}
	}
	return seeOther(q.res.Prefix + signin.PathLogin)
}

// jwks: GET /_auth/jwks.json, the tenant's public signing keys.
func (h *Handler) jwks(q *request) *answer {
	b, err := session.JWKS(q.tenant(), h.now())
	if err != nil {
		return jsonError(http.StatusInternalServerError, "internal").
			logging(slog.LevelError, "tenant JWKS", "tenant", q.tenant().ID, "err", err)
	}
	return document("application/json", "public, max-age=300", b)
}
