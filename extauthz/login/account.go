package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/account"
	"github.com/tenantgate/tenantgate/extauthz/mail"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Paths of the self-service account pages below a tenant's root.
const (
	// PathAccount is the signed-in person's account page: password
	// change, the list of their sessions, signing out one of them or
	// everywhere (POST with action=password|revoke-session|signout-all).
	PathAccount = "/_auth/account"
	// PathForgot asks for a password reset link (POST: email).
	PathForgot = "/_auth/forgot"
	// PathReset is where a reset link leads (GET ?t=, POST t and the new
	// password).
	PathReset = "/_auth/reset"
	// PathInvite is where an invitation leads (GET ?t=, POST t and a new
	// password, or the existing account's password).
	PathInvite = "/_auth/invite"
)

// Accounts configures the self-service account pages. Without it
// (Handler.Accounts nil) /_auth/forgot, /_auth/reset and /_auth/invite
// answer that mail is not configured, the sign-in page shows no "Forgot
// your password?" link, and /_auth/account still changes passwords, with
// no notice sent.
type Accounts struct {
	// Links seals and opens reset and invitation links; required.
	Links *account.Links
	// Outbox sends the messages, in the background.
	Outbox *mail.Outbox
	// Scheme is the scheme of the links ("https", or "http" with
	// --insecure-cookies).
	Scheme string
	// ResetsPerAddress is how many reset links one client address may ask
	// for per Limits.Window; ResetsPerAccount how many one account may be
	// sent. Zero means 10 and 3.
	ResetsPerAddress, ResetsPerAccount int

	once      sync.Once
	addresses limit
	accounts  limit
}

// init opens the reset limits with open, the Handler's counters: shared by
// every replica of a fleet, so that N replicas send no more links than one.
func (a *Accounts) init(open func(name string, window time.Duration) Counter, l Limits) {
	a.once.Do(func() {
		if a.ResetsPerAddress <= 0 {
			a.ResetsPerAddress = 10
		}
		if a.ResetsPerAccount <= 0 {
			a.ResetsPerAccount = 3
		}
		a.addresses = limit{open(CounterResetAddresses, l.Window), a.ResetsPerAddress}
		a.accounts = limit{open(CounterResetAccounts, l.Window), a.ResetsPerAccount}
	})
}

// mailOn reports whether links can be sent.
func (h *Handler) mailOn() bool {
	return h.Accounts != nil && h.Accounts.Links != nil && h.Accounts.Outbox.Configured()
}

// accountView is what the account templates see beyond page.
type accountView struct {
	// Token is the link's token, carried from GET to POST.
	Token string
	// Existing: an invitation to an address that has an account already.
	Existing bool
	// Password: the account page offers a password change.
	Password bool
	// Sessions: the account page's list of the person's sessions
	// (sessions.go).
	Sessions *sessionList
}

// accountRoute answers the account pages' routes; ok is false for any
// other route.
func (h *Handler) accountRoute(q *request) (a *answer, ok bool) {
	switch q.route {
	case PathForgot:
		return h.methods(q, h.forgotPage, h.forgot), true
	case PathReset:
		return h.methods(q, h.resetPage, h.reset), true
	case PathInvite:
		return h.methods(q, h.invitePage, h.acceptInvite), true
	case PathAccount:
		return h.methods(q, h.accountPage, h.accountPost), true
	}
	return nil, false
}

// forgotLink is the sign-in page's "Forgot your password?" link: shown
// only with a password form and mail configured.
func (h *Handler) forgotLink(q *request, password bool) string {
	if !password || !h.mailOn() {
		return ""
	}
	return q.res.Prefix + PathForgot
}

// mailOff answers the pages that need mail when there is none.
func (h *Handler) mailOff(q *request) *answer {
	return h.message(q, http.StatusNotImplemented, "Not available",
		"Email is not configured here, so links cannot be sent. Ask your administrator to reset your password.", true)
}

// invalidLink answers every refused link alike.
func (h *Handler) invalidLink(q *request, reason string) *answer {
	return h.message(q, http.StatusBadRequest, "Link not valid",
		"This link is not valid: it was used already, has expired, or was replaced by a newer one. Ask for a new one.", true).
		refused(reason, "")
}

// passwordTenant refuses the account pages on a suspended tenant or one
// without the password method.
func (h *Handler) passwordTenant(q *request) *answer {
	t := q.tenant()
	if t == nil {
		return jsonError(http.StatusNotFound, "not_found")
	}
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	if !t.HasMethod(tenants.MethodPassword) {
		return h.noMethodPage(q)
	}
	return nil
}

// forgotNotice is the one answer to every reset request, whatever the
// address: it never says whether an account exists.
const forgotNotice = "If an account with a password here has that address, a link to choose a new password is on its way. It works for 30 minutes."

// forgotPage: GET /_auth/forgot.
func (h *Handler) forgotPage(q *request) *answer {
	if a := h.passwordTenant(q); a != nil {
		return a
	}
	if !h.mailOn() {
		return h.mailOff(q)
	}
	return h.forgotForm(q, "", "")
}

func (h *Handler) forgotForm(q *request, notice, errMsg string) *answer {
	t := q.tenant()
	return htmlPage(http.StatusOK, "forgot", page{
		Title: "Reset your password", TenantName: displayName(t.Name, t.ID),
		Action: q.res.Prefix + PathForgot, CSRF: h.formCSRF(q), Notice: notice, Error: errMsg,
		Link: q.res.Prefix + signin.PathLogin,
	})
}

// forgot: POST /_auth/forgot with email and csrf. The answer and the work
// done before it are the same for every address: one user lookup, then
// the same page; the message, when there is one, goes out in the
// background, so the mail server's time never shows. Limited per client
// address (429) and per account (silently: the same page, no mail).
func (h *Handler) forgot(q *request) *answer {
	if a := h.passwordTenant(q); a != nil {
		return a
	}
	if !h.mailOn() {
		return h.mailOff(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	ac := h.Accounts
	ac.init(h.openCounter, h.limits)
	t := q.tenant()
	now := h.now()
	email := normaliseEmail(q.r.PostForm.Get("email"))
	if email == "" || len(email) > maxEmailBytes {
		return h.forgotForm(q, "", "Enter an email address.")
	}
	ok, err := takeUnlessOver(q.r.Context(), ac.addresses, counterKey("reset-address", h.clientKey(q.r)), now)
	if err != nil {
		return h.unavailable(q, "count reset requests", err)
	}
	if !ok {
		return h.message(q, http.StatusTooManyRequests, "Too many requests",
			"Too many reset links were asked for from your network. Wait a few minutes and try again.", true).
			retry(int(h.limits.Window/time.Second)).refused("reset_address_limited", email)
	}
	user, err := h.Store.UserByEmail(q.r.Context(), email)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return h.forgotForm(q, forgotNotice, "").refused("reset_unknown_user", email)
	case err != nil:
		return h.unavailable(q, "look up user", err)
	}
	if _, member := q.snap.Membership(t.InternalID, user.ID); !member || user.PasswordHash == "" {
		return h.forgotForm(q, forgotNotice, "").refused("reset_not_member", email)
	}
	ok, err = takeUnlessOver(q.r.Context(), ac.accounts, counterKey("reset-account", t.InternalID, email), now)
	if err != nil {
		return h.unavailable(q, "count reset links", err)
	}
	if !ok {
		return h.forgotForm(q, forgotNotice, "").refused("reset_account_limited", email)
	}
	token, _, err := ac.Links.Issue(account.Link{
		Kind: account.KindReset, UserID: user.ID, Email: user.Email,
		Password: ac.Links.PasswordFingerprint(user.PasswordHash),
	}, t.InternalID, account.ResetTTL)
	if err != nil {
		return h.unavailable(q, "issue reset link", err)
	}
	msg, err := account.ResetMessage(account.BrandOf(t), user.Email, h.linkURL(q, PathReset, token))
	if err != nil {
		return h.unavailable(q, "compose reset mail", err)
	}
	ac.Outbox.Post(msg, "password reset", "tenant", t.ID, "email_digest", h.emailDigest(email))
	h.log().InfoContext(q.r.Context(), "password reset link issued", "tenant", t.ID, "email_digest", h.emailDigest(email))
	return h.forgotForm(q, forgotNotice, "")
}

// linkURL is the absolute URL of a link on the request's tenant host.
func (h *Handler) linkURL(q *request, path, token string) string {
	u := url.URL{Scheme: h.Accounts.Scheme, Host: q.r.Host, Path: q.res.Prefix + path, RawQuery: url.Values{"t": {token}}.Encode()}
	if u.Scheme == "" {
		u.Scheme = h.scheme()
	}
	return u.String()
}

// resetLink opens the reset link token for the request's tenant and checks
// it against the account as it is now: the user still exists, and the
// password is the one the link was issued against. It does not spend it.
func (h *Handler) resetLink(q *request, token string) (account.Link, tenants.User, *answer) {
	t := q.tenant()
	k, err := h.Accounts.Links.Open(token, account.KindReset, t.InternalID)
	if err != nil {
		return k, tenants.User{}, h.invalidLink(q, "reset_link_invalid")
	}
	user, err := h.Store.UserByEmail(q.r.Context(), k.Email)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return k, user, h.invalidLink(q, "reset_link_user_gone")
	case err != nil:
		return k, user, h.unavailable(q, "look up user", err)
	}
	if user.ID != k.UserID || h.Accounts.Links.PasswordFingerprint(user.PasswordHash) != k.Password {
		return k, user, h.invalidLink(q, "reset_link_password_changed")
	}
	return k, user, nil
}

// resetPage: GET /_auth/reset?t=TOKEN, the new-password form.
func (h *Handler) resetPage(q *request) *answer {
	if a := h.passwordTenant(q); a != nil {
		return a
	}
	if !h.mailOn() {
		return h.mailOff(q)
	}
	token := q.r.URL.Query().Get("t")
	k, _, a := h.resetLink(q, token)
	if a != nil {
		return a
	}
	return h.resetForm(q, http.StatusOK, token, k.Email, "")
}

func (h *Handler) resetForm(q *request, status int, token, email, errMsg string) *answer {
	t := q.tenant()
	return htmlPage(status, "reset", page{
		Title: "Choose a new password", TenantName: displayName(t.Name, t.ID),
		Action: q.res.Prefix + PathReset, CSRF: h.formCSRF(q), Email: email, Error: errMsg,
		Acct: accountView{Token: token},
	})
}

// newPassword checks the new password fields against the policy and each
// other, and hashes it. It returns the hash, or the message to show.
func (h *Handler) newPassword(q *request) (string, string, error) {
	pw := q.r.PostForm.Get("new_password")
	if pw != q.r.PostForm.Get("confirm_password") {
		return "", "The two new passwords differ.", nil
	}
	if err := password.CheckPolicy(pw); err != nil {
		return "", "The new password " + policyText(err) + ".", nil
	}
	hash, err := h.Passwords.Hash(pw)
	if errors.Is(err, password.ErrBusy) {
		return "", "Too many people are signing in right now. Wait a moment and try again.", nil
	}
	return hash, "", err
}

// policyText says what the policy wants, from CheckPolicy's error.
func policyText(err error) string {
	switch {
	case errors.Is(err, password.ErrTooShort):
		return "must be at least 12 characters"
	case errors.Is(err, password.ErrTooLong):
		return "is too long"
	default:
		return "must be text"
	}
}

// reset: POST /_auth/reset with t, new_password, confirm_password, csrf.
// The link is spent (single use, across replicas: the store) only once
// the new password passes the policy; then the password changes from the
// one the link was issued against (a change by any other route meanwhile
// wins), every session of the person in every tenant is revoked, the
// account's sign-in lock-out here is cleared, and a notice is sent.
func (h *Handler) reset(q *request) *answer {
	if a := h.passwordTenant(q); a != nil {
		return a
	}
	if !h.mailOn() {
		return h.mailOff(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	t := q.tenant()
	token := q.r.PostForm.Get("t")
	k, user, a := h.resetLink(q, token)
	if a != nil {
		return a
	}
	hash, problem, err := h.newPassword(q)
	switch {
	case err != nil:
		return h.unavailable(q, "hash password", err)
	case problem != "":
		return h.resetForm(q, http.StatusBadRequest, token, k.Email, problem)
	}
	if a := h.spend(q, token, k); a != nil {
		return a
	}
	now := h.now()
	err = h.Store.SetPassword(q.r.Context(), user.ID, user.PasswordHash, hash, everySession(now))
	switch {
	case errors.Is(err, tenants.ErrConflict):
		return h.invalidLink(q, "reset_link_password_changed")
	case err != nil:
		return h.unavailable(q, "set password", err)
	}
	h.publish(q, "a password reset")
	h.clearLockout(q.r.Context(), t, user.Email)
	h.notifyPasswordChanged(t, user.Email)
	h.log().InfoContext(q.r.Context(), "password reset", "tenant", t.ID, "email_digest", h.emailDigest(user.Email))
	p := h.messagePage(q, "Password changed", "Your password was changed and every session was signed out. Sign in with the new password.", false)
	return htmlPage(http.StatusOK, "message", p)
}

// spend makes a link single use: the SHA-256 of its token is recorded in
// the store until the link expires, and a second use is refused.
func (h *Handler) spend(q *request, token string, k account.Link) *answer {
	err := h.Store.UseAssertionID(q.r.Context(), q.tenant().InternalID, account.UseID(token), k.Expires)
	switch {
	case errors.Is(err, tenants.ErrReplay):
		return h.invalidLink(q, "link_reused")
	case err != nil:
		return h.unavailable(q, "spend link", err)
	}
	return nil
}

// everySession is the revocation of every session issued up to now, kept
// as long as any of them can live.
func everySession(now time.Time) tenants.Revocation {
	return tenants.Revocation{NotBefore: now, Expires: session.RevocationExpires(now.Add(session.MaxTTL))}
}

// clearLockout forgets the account's failed sign-ins in the tenant: a
// person who proved they hold the mailbox is not kept out by a guesser.
// The password is changed already: a counter that cannot be reset (etcd
// out of reach) is logged, and the lock-out ends with its window.
func (h *Handler) clearLockout(ctx context.Context, t *tenants.Tenant, email string) {
	if err := h.accounts.Reset(ctx, counterKey("account", t.InternalID, email)); err != nil {
		h.log().WarnContext(ctx, "lock-out not cleared after a password reset", "tenant", t.ID, "err", err)
	}
}

// notifyPasswordChanged sends the "your password was changed" notice, when
// mail is configured.
func (h *Handler) notifyPasswordChanged(t *tenants.Tenant, email string) {
	if !h.mailOn() {
		return
	}
	msg, err := account.PasswordChangedMessage(account.BrandOf(t), email)
	if err != nil {
		h.log().Error("compose password changed mail", "tenant", t.ID, "err", err)
		return
	}
	h.Accounts.Outbox.Post(msg, "password changed", "tenant", t.ID, "email_digest", h.emailDigest(email))
}

// accountSession returns the claims of the request's valid session of this
// tenant whose holder is still a member, or nil.
func (h *Handler) accountSession(q *request) *session.Claims {
	t := q.tenant()
	for i, c := range cookiesNamed(q.r, h.sessionCookieName(q)) {
		if i == maxCookieCandidates {
			break
		}
		claims, err := h.Verifier.VerifyFor(q.snap, t, c.Value)
		if err != nil {
			continue
		}
		if _, member := q.snap.Membership(t.InternalID, claims.Subject); member {
			return claims
		}
	}
	return nil
}

// accountPage: GET /_auth/account. Without a session: to the sign-in page,
// coming back here.
func (h *Handler) accountPage(q *request) *answer {
	t := q.tenant()
	if t == nil {
		return jsonError(http.StatusNotFound, "not_found")
	}
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	c := h.accountSession(q)
	if c == nil {
		return found(q.res.Prefix + signin.PathLogin + "?rd=" + url.QueryEscape(q.res.Prefix+PathAccount))
	}
	return h.accountForm(q, http.StatusOK, c, "", "")
}

func (h *Handler) accountForm(q *request, status int, c *session.Claims, notice, errMsg string) *answer {
	t := q.tenant()
	password := c.Method == session.MethodPassword && t.HasMethod(tenants.MethodPassword)
	p := page{
		Title: "Your account", TenantName: displayName(t.Name, t.ID),
		Action: q.res.Prefix + PathAccount, CSRF: h.formCSRF(q), Email: c.Email,
		Notice: notice, Error: errMsg,
		Acct:     accountView{Password: password, Sessions: h.sessionSection(q, c)},
		Passkeys: h.passkeySection(q, c),
	}
	if password && t.MFAOn() {
		f, err := h.Store.SecondFactors(q.r.Context(), t.InternalID, c.Subject)
		if err != nil {
			return h.unavailable(q, "read second factors", err)
		}
		p.MFA = mfaView{Offered: true, Enrolled: f.Enrolled(), RecoveryLeft: len(f.RecoveryCodes)}
		if p.Passkeys != nil {
			p.MFA.Passkeys = len(p.Passkeys.List)
		}
		if f.Enrolled() {
			p.MFA.Since = f.TOTPEnrolled.UTC().Format("2 January 2006")
		}
	}
	return htmlPage(status, "account", p)
}

// accountPost: POST /_auth/account with csrf and action.
func (h *Handler) accountPost(q *request) *answer {
	t := q.tenant()
	if t == nil {
		return jsonError(http.StatusNotFound, "not_found")
	}
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	c := h.accountSession(q)
	if c == nil {
		return found(q.res.Prefix + signin.PathLogin + "?rd=" + url.QueryEscape(q.res.Prefix+PathAccount))
	}
	switch q.r.PostForm.Get("action") {
	case "password":
		return h.changePassword(q, c)
	case "signout-all":
		return h.signOutEverywhere(q, c)
	case "revoke-session":
		return h.revokeSession(q, c)
	case "totp-enrol":
		return h.startAccountEnrolment(q, c)
	case "recovery-codes":
		return h.renewRecoveryCodes(q, c)
	}
	if a, ok := h.passkeyAction(q, c); ok {
		return a
	}
	return h.message(q, http.StatusBadRequest, "Request refused", "The form could not be read. Go back and try again.", true).
		refused("bad_form", "")
}

// changePassword checks the current password (counted like a sign-in: the
// same limits and lock-out), the new one against the policy, changes it
// from exactly the hash it checked, revokes every session of the person
// in every tenant, and gives this browser a fresh session. Sessions are
// revoked by issue time in whole seconds (JWT iat): those issued earlier
// in the very second of the change survive it.
func (h *Handler) changePassword(q *request, c *session.Claims) *answer {
	t := q.tenant()
	if c.Method != session.MethodPassword || !t.HasMethod(tenants.MethodPassword) {
		return h.accountForm(q, http.StatusBadRequest, c, "", "This account's password is managed by your identity provider.")
	}
	membership := func(ctx context.Context, u tenants.User) ([]string, error) {
		if u.ID != c.Subject {
			return nil, tenants.ErrNotFound
		}
		return h.Store.Membership(ctx, t.InternalID, u.ID)
	}
	user, roles, a := h.checkPassword(q, t.InternalID, c.Email, q.r.PostForm.Get("current_password"), membership, func() *answer {
		return h.accountForm(q, http.StatusUnauthorized, c, "", "The current password is wrong.")
	})
	if a != nil {
		return a
	}
	hash, problem, err := h.newPassword(q)
	switch {
	case err != nil:
		return h.unavailable(q, "hash password", err)
	case problem != "":
		return h.accountForm(q, http.StatusBadRequest, c, "", problem)
	}
	now := h.now()
	rev := everySession(now)
	err = h.Store.SetPassword(q.r.Context(), user.ID, user.PasswordHash, hash, rev)
	switch {
	case errors.Is(err, tenants.ErrConflict):
		return h.accountForm(q, http.StatusConflict, c, "", "Your password was changed elsewhere meanwhile. Sign in again.")
	case err != nil:
		return h.unavailable(q, "set password", err)
	}
	q.revoked = rev.NotBefore
	h.publish(q, "a password change")
	// The new session proves what the old one did: its amr carries over.
	minted, err := h.issueSession(q, user, roles, c.AMR, session.MethodPassword)
	if err != nil {
		return h.unavailable(q, "mint session", err)
	}
	h.notifyPasswordChanged(t, user.Email)
	h.log().InfoContext(q.r.Context(), "password changed", "tenant", t.ID, "email_digest", h.emailDigest(user.Email))
	fresh := *c
	fresh.SID = minted.SID // the list marks the new session as this one
	return h.accountForm(q, http.StatusOK, &fresh, "Your password was changed. Every other session was signed out.", "")
}

// signOutEverywhere revokes every session of the person in this tenant,
// this one included, and sends the browser to the sign-in page.
func (h *Handler) signOutEverywhere(q *request, c *session.Claims) *answer {
	t := q.tenant()
	r := everySession(h.now())
	r.Key = tenants.UserRevocationKey(t.InternalID, c.Subject)
	if err := h.revoke(q, r); err != nil {
		return h.unavailable(q, "revoke sessions", err)
	}
	q.setCookie(h.sessionCookie(q, "", -1))
	h.noteSessionRevoked(q, c)
	h.log().InfoContext(q.r.Context(), "signed out everywhere", "tenant", t.ID)
	return seeOther(q.res.Prefix + signin.PathLogin)
}
