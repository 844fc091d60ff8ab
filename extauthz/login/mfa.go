package login

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"html/template"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/otp"
	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// The second sign-in step (docs/accounts.md, "Two-step sign-in"). In a
// tenant with mfa optional or required, the password form never signs in
// by itself: it leads to /_auth/mfa, carried by a sealed, short-lived,
// single-use state cookie (mfaState), where the person types a code from
// their authenticator app (or a recovery code), or, under required and
// with no factor yet, enrols one.
//
// The password form answers the same way whether the password was right
// or not: a wrong password, an unknown address or a locked account also
// get a state (marked failed, of the very same size) and the code page,
// and the code step then refuses with the one message that names the
// password and the code together. So nothing tells a guesser whether the
// password was right before the factor is checked. A right password of a
// person without a factor is the exception that cannot be hidden: under
// optional they sign in at once, under required they are shown the
// enrolment; neither has a factor the hiding would protect.
//
// The state is bound to the tenant and the user, sealed under a key of
// its own, expires after mfaStateTTL, and its id is spent in the store
// (UseAssertionID) by the POST that uses it, whatever the outcome: a code
// step is one try, and a retry starts at the password again. Codes are
// counted against the account's failure limit like passwords (the
// shared counters), and the account's count is cleared only once the
// whole sign-in succeeds.
//
// Factor types plug in at four places: hasSecondFactor says whether a
// member holds one (TOTP in SecondFactors, passkeys in their own
// records), checkCode dispatches what the step receives (the "code" field
// to checkFactor, the "passkey" field, a WebAuthn assertion, to
// checkPasskeyFactor), and amrOf says what the session records: otp for a
// TOTP or recovery code, hwk for a passkey. The code page offers a passkey
// to everyone, whatever the first step's verdict, where passkeys work
// (mfaPasskeyOffer).

// Paths of the second step below a tenant's root.
const (
	// PathMFA is the second step: GET shows the code or enrolment form of
	// the pending state, POST checks it.
	PathMFA = "/_auth/mfa"
)

const (
	// mfaStateTTL is how long the second step may take after the
	// password.
	mfaStateTTL = 5 * time.Minute
	// mfaPurpose names the derived key that seals second-step states.
	mfaPurpose = "mfa-state"
	// mfaCookieBase is the state cookie's name (hostCookieName).
	mfaCookieBase = "tenantgate-mfa"
	// mfaPasskeyCookieBase is the name of the cookie that carries the code
	// page's passkey ceremony to the POST (beginPasskeyFactor).
	mfaPasskeyCookieBase = "tenantgate-mfa-passkey"
	// maxMFACookie bounds the state cookie value opened.
	maxMFACookie = 2048
	// mfaIDPrefix keeps spent state ids apart from the other ids
	// UseAssertionID records for a tenant.
	mfaIDPrefix = "mfa/"
	// mfaStateVersion is mfaState's V.
	mfaStateVersion = 1
	// userIDLen is the length of a store user id (16 random bytes in hex):
	// a failed state carries a random one of the same length.
	userIDLen = 32
)

// Second-step kinds (mfaState.Step).
const (
	stepVerify = "verify"
	stepEnrol  = "enrol"
)

// mfaState is the sealed content of the second-step cookie. Every field has
// the same length whether the password was right or not (Failed is 0 or 1,
// User a real or a random id), so the sealed value's size says nothing.
type mfaState struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	Tenant string `json:"t"`
	User   string `json:"u"`
	Email  string `json:"e"`
	// Failed is 1 when the first step failed: the code step then refuses
	// whatever it gets.
	Failed int    `json:"f"`
	Step   string `json:"s"`
	// Secret is the TOTP secret being enrolled (stepEnrol only).
	Secret []byte `json:"k,omitempty"`
	// Via is how the first step was passed, for the audit trail:
	// "password" or "switch".
	Via string `json:"via"`
	// Account is set for an enrolment started from the account page by a
	// signed-in person: it issues no session.
	Account bool   `json:"acct,omitempty"`
	RD      string `json:"rd"`
	Expires int64  `json:"x"`
}

// mfaContext binds a sealed state to its purpose and tenant.
func mfaContext(tenantInternalID string) string { return "mfa-state:v1:" + tenantInternalID }

// recoveryBinding binds recovery code hashes to one membership.
func recoveryBinding(tenantInternalID, userID string) string {
	return tenantInternalID + "/" + userID
}

// mfaOn reports whether the request's tenant has a second step (mfa
// optional or required).
func (h *Handler) mfaOn(q *request) bool { return q.tenant() != nil && q.tenant().MFAOn() }

// secondStep continues a sign-in whose first step proved user, a member
// of the request's tenant with roles: the password (via "password") or a
// switch code a password opened (via "switch"). Without a second step
// (mfa off, or optional for a member without a factor) the sign-in
// completes here; otherwise the browser goes to /_auth/mfa with a fresh
// state: the code step for a member with a factor, enrolment for one
// without under required.
func (h *Handler) secondStep(q *request, user tenants.User, roles []string, rd, via string) *answer {
	t := q.tenant()
	if !t.MFAOn() {
		return h.completeSignIn(q, user, roles, []string{session.AMRPassword}, rd, via)
	}
	has, err := h.hasSecondFactor(q.r.Context(), t, user.ID)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		// Removed between the first step and now: a failure like any other.
		return h.startMFA(q, mfaState{User: user.ID, Email: user.Email, Failed: 1, Step: stepVerify, Via: via, RD: rd})
	case err != nil:
		return h.unavailable(q, "read second factors", err)
	}
	switch {
	case has:
		return h.startMFA(q, mfaState{User: user.ID, Email: user.Email, Step: stepVerify, Via: via, RD: rd})
	case t.MFARequired():
		secret, err := otp.NewSecret(h.Rand)
		if err != nil {
			return h.unavailable(q, "make totp secret", err)
		}
		return h.startMFA(q, mfaState{User: user.ID, Email: user.Email, Step: stepEnrol, Secret: secret, Via: via, RD: rd})
	}
	return h.completeSignIn(q, user, roles, []string{session.AMRPassword}, rd, via)
}

// hasSecondFactor reports whether a member of t holds a second factor: a
// TOTP app or at least one passkey. A passkey counts wherever the person
// signs in, also on an address where passkeys cannot be used (path
// tenancy): a member who chose one is never let in on the password alone.
// ErrNotFound when the membership is gone. Both are read whatever the
// first says, so the reads are the same for every member and for the
// user of no membership a failed first step asks about (failedFirstStep).
func (h *Handler) hasSecondFactor(ctx context.Context, t *tenants.Tenant, userID string) (bool, error) {
	f, err := h.Store.SecondFactors(ctx, t.InternalID, userID)
	ps, perr := h.Store.Passkeys(ctx, t.InternalID, userID)
	switch {
	case err != nil:
		return false, err
	case perr != nil:
		return false, perr
	}
	return f.Enrolled() || len(ps) > 0, nil
}

// failedFirstStep is the answer to a wrong password (or any failed first
// step) in a tenant with a second step: the same state and redirect as a
// right one, marked failed (see the package comment above). It reads the
// factors of its random user as secondStep reads a member's, so that the
// store work, and the time, are the same as after a right password.
func (h *Handler) failedFirstStep(q *request, email, rd string) *answer {
	fake, err := randomHex(h.Rand, userIDLen/2)
	if err != nil {
		return h.unavailable(q, "read randomness", err)
	}
	if _, err := h.hasSecondFactor(q.r.Context(), q.tenant(), fake); err != nil && !errors.Is(err, tenants.ErrNotFound) {
		return h.unavailable(q, "read second factors", err)
	}
	if len(email) > maxEmailBytes {
		// No account has it; kept out of the cookie, which must stay
		// under maxMFACookie.
		email = ""
	}
	return h.startMFA(q, mfaState{User: fake, Email: email, Failed: 1, Step: stepVerify, Via: "password", RD: rd})
}

// startMFA seals st (with a fresh id and expiry) into the state cookie and
// sends the browser to /_auth/mfa.
func (h *Handler) startMFA(q *request, st mfaState) *answer {
	if a := h.setMFAState(q, st); a != nil {
		return a
	}
	return seeOther(q.res.Prefix + PathMFA)
}

// setMFAState seals st into the state cookie with a fresh id. A new state
// (Expires unset) expires mfaStateTTL from now; one shown again (a wrong
// first code at the enrolment) keeps its deadline, so the second step
// never outlives the password it began with by more than mfaStateTTL,
// however many wrong codes renew it. It returns nil, or the 503 when that
// cannot be done.
func (h *Handler) setMFAState(q *request, st mfaState) *answer {
	if h.mfaSealer == nil {
		return h.unavailable(q, "second sign-in step", errors.New("no sealer configured"))
	}
	id, err := randomString(h.Rand, attemptIDBytes)
	if err != nil {
		return h.unavailable(q, "make second-step id", err)
	}
	now := h.now()
	st.V, st.ID, st.Tenant = mfaStateVersion, id, q.tenant().InternalID
	if st.Expires == 0 {
		st.Expires = now.Add(mfaStateTTL).Unix()
	}
	left := time.Unix(st.Expires, 0).Sub(now)
	if left <= 0 {
		return h.mfaExpired(q, "mfa_no_state")
	}
	v, err := sealJSON(h.mfaSealer, st, mfaContext(st.Tenant))
	if err != nil {
		return h.unavailable(q, "seal second-step state", err)
	}
	q.setCookie(h.hostCookie(q, mfaCookieBase, v, int((left+time.Second-1)/time.Second)))
	return nil
}

// mfaState opens the request's state cookie for its tenant: sealed by us,
// for this tenant, of this version, not expired. nil otherwise.
func (h *Handler) openMFAState(q *request) *mfaState {
	if h.mfaSealer == nil {
		return nil
	}
	now := h.now()
	for i, c := range cookiesNamed(q.r, h.hostCookieName(q, mfaCookieBase)) {
		if i == maxCookieCandidates {
			break
		}
		var st mfaState
		if !openJSON(h.mfaSealer, c.Value, maxMFACookie, mfaContext(q.tenant().InternalID), &st) {
			continue
		}
		if st.V != mfaStateVersion || st.Tenant != q.tenant().InternalID || !now.Before(time.Unix(st.Expires, 0)) ||
			(st.Step != stepVerify && st.Step != stepEnrol) || (st.Step == stepEnrol && len(st.Secret) != otp.SecretBytes) {
			continue
		}
		return &st
	}
	return nil
}

// mfaExpired answers a code step without a usable state: it expired, was
// used, or never was.
func (h *Handler) mfaExpired(q *request, reason string) *answer {
	return h.message(q, http.StatusBadRequest, "Sign-in expired",
		"This sign-in step has expired or was used already. Sign in again.", true).refused(reason, "")
}

// mfaRefused is the one answer to a failed code step, whatever failed:
// the password before it, the code, or the account's limit. The sign-in
// form again, 401.
func (h *Handler) mfaRefused(q *request, st *mfaState, reason string) *answer {
	return h.loginForm(q, http.StatusUnauthorized, SafeRedirect(st.RD, q.res.Prefix), "", invalidCredentialsOrCode).
		refused(reason, st.Email)
}

// invalidCredentialsOrCode is what a failed sign-in with a second step
// says: it names the password and the code together, never which.
const invalidCredentialsOrCode = "Invalid email, password or code."

// mfaPage: GET /_auth/mfa, the form of the pending state.
func (h *Handler) mfaPage(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	st := h.openMFAState(q)
	if st == nil {
		return h.mfaExpired(q, "mfa_no_state")
	}
	return h.mfaForm(q, http.StatusOK, st, "")
}

// mfaForm renders st's form: the code step, or enrolment with the QR code
// and the secret as text.
func (h *Handler) mfaForm(q *request, status int, st *mfaState, errMsg string) *answer {
	t := q.tenant()
	p := page{
		Title: "Two-step verification", TenantName: displayName(t.Name, t.ID),
		Action: q.res.Prefix + PathMFA, CSRF: h.formCSRF(q), Error: errMsg,
	}
	if st.Step == stepVerify {
		offer, a := h.mfaPasskeyOffer(q, st)
		if a != nil {
			return a
		}
		p.MFA.Passkey = offer
		return htmlPage(status, "mfa", p)
	}
	issuer := displayName(t.Name, t.ID)
	qr, err := otp.NewQR(otp.URI(issuer, st.Email, st.Secret))
	if err != nil {
		return h.unavailable(q, "draw qr code", err)
	}
	p.Title = "Set up two-step verification"
	p.Email = st.Email
	p.MFA = mfaView{Enrol: true, QR: qr, Secret: otp.SecretText(st.Secret)}
	if !st.Account {
		// At sign-in, a passkey may be the first factor instead; the
		// account page's enrolment is the app's (passkeys have their own
		// section there).
		offer, a := h.mfaPasskeyOffer(q, st)
		if a != nil {
			return a
		}
		p.MFA.Passkey = offer
	}
	return htmlPage(status, "mfa", p)
}

// mfaPasskeyOffer begins a passkey ceremony for st's page and sets the
// cookie that carries it to the POST: on the code page "Use a passkey"
// (a sign-in ceremony; every state gets the same offer, a failed first
// step's too: the options name no credential), on the enrolment page "Add
// a passkey" (a registration). nil, and no cookie, where passkeys cannot
// be used (no master key, path tenancy); an answer only when the ceremony
// cannot be made.
func (h *Handler) mfaPasskeyOffer(q *request, st *mfaState) (*mfaPasskeyView, *answer) {
	if h.passkeys == nil {
		return nil, nil
	}
	rp, err := h.passkeyRP(q)
	if err != nil {
		return nil, nil
	}
	begin := h.beginPasskeyFactor
	if st.Step == stepEnrol {
		begin = h.beginPasskeyEnrolment
	}
	options, ceremony, err := begin(rp, q.tenant(), st.User, st.Email, st.ID)
	if err != nil {
		return nil, h.unavailable(q, "begin passkey ceremony", err)
	}
	q.setCookie(h.hostCookie(q, mfaPasskeyCookieBase, ceremony, int(passkey.CeremonyTTL/time.Second)))
	return &mfaPasskeyView{Options: string(options), Script: template.JS(passkeySignInScript)}, nil
}

// mfaPasskeyView is the code page's passkey form: the options for
// navigator.credentials.get (JSON, in an attribute) and the script that
// uses them, allowed by its hash (withPageScripts).
type mfaPasskeyView struct {
	Options string
	Script  template.JS
}

// mfaView is what the second-step templates see beyond page.
type mfaView struct {
	// Passkey: the code page offers a passkey (nil: not here).
	Passkey *mfaPasskeyView
	// Enrol: the enrolment form (QR and Secret), else the code form.
	Enrol  bool
	QR     otp.QR
	Secret string
	// RecoveryCodes, shown once after an enrolment, and Continue, where
	// the person goes next.
	RecoveryCodes []string
	Continue      string
	// Enrolled, RecoveryLeft and Since: the account page's section.
	Enrolled     bool
	RecoveryLeft int
	Since        string
	// Offered: the tenant has a second step at all (account page).
	Offered bool
	// Passkeys is how many passkeys the person holds here (account page):
	// with none of TOTP, they are the second factor.
	Passkeys int
}

// mfaPost: POST /_auth/mfa with csrf and code. The state is spent first,
// whatever follows.
func (h *Handler) mfaPost(q *request) *answer {
	t := q.tenant()
	if t.Suspended() {
		return h.suspendedPage(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	st := h.openMFAState(q)
	q.setCookie(h.hostCookie(q, mfaCookieBase, "", -1))
	ceremony := h.mfaPasskeyCeremony(q)
	if ceremony != "" {
		q.setCookie(h.hostCookie(q, mfaPasskeyCookieBase, "", -1))
	}
	if st == nil {
		return h.mfaExpired(q, "mfa_no_state")
	}
	err := h.Store.UseAssertionID(q.r.Context(), t.InternalID, mfaIDPrefix+st.ID, time.Unix(st.Expires, 0).Add(time.Minute))
	switch {
	case errors.Is(err, tenants.ErrReplay):
		return h.mfaExpired(q, "mfa_state_reused")
	case err != nil:
		return h.unavailable(q, "spend second-step state", err)
	}
	if st.Step == stepEnrol {
		if answer := q.r.PostForm.Get("passkey"); answer != "" && !st.Account {
			return h.confirmPasskeyEnrolment(q, st, ceremony, []byte(answer))
		}
		return h.confirmEnrolment(q, st)
	}
	return h.checkCode(q, st, ceremony)
}

// mfaPasskeyCeremony is the sealed passkey ceremony the request's cookie
// carries ("" without one). It is opened, and checked against the state,
// by checkPasskeyFactor.
func (h *Handler) mfaPasskeyCeremony(q *request) string {
	for i, c := range cookiesNamed(q.r, h.hostCookieName(q, mfaPasskeyCookieBase)) {
		if i == maxCookieCandidates {
			break
		}
		if c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// errWrongCode is checkFactor's refusal of a code that matches nothing
// usable.
var errWrongCode = errors.New("wrong code")

// checkCode is the code step of a sign-in: limits first, then the code
// (or the passkey's answer, with ceremony, the code page's) against the
// member's factors; the session on success.
//
// The account's limit holds exactly, as for passwords (checkFirstFactor):
// a step first counts itself, and only the first Limits.AccountFailures
// of a window are checked against the member's factors. Checking the
// count and adding to it after the factor let steps posted together all
// pass the check before any was counted; states that cost the count
// nothing (a switch from the apex) then bought any number of code guesses
// in one burst. completeSignIn clears the count of a step that succeeds.
func (h *Handler) checkCode(q *request, st *mfaState, ceremony string) *answer {
	t := q.tenant()
	ctx := q.r.Context()
	now := h.now()
	acctKey := counterKey("account", t.InternalID, st.Email)
	locked, err := h.accounts.over(ctx, acctKey, now)
	if err != nil {
		return h.unavailable(q, "count account failures", err)
	}
	if !locked {
		// A locked step is not counted again: it changes no verdict.
		n, err := h.accounts.Add(ctx, acctKey, now)
		if err != nil {
			return h.unavailable(q, "count account failure", err)
		}
		locked = n > h.accounts.max
	}
	// The factor is checked whatever the first step's verdict and the
	// account's limit, so that the step does the same store work (in a
	// fleet, etcd round trips) either way and its time does not tell
	// whether the password was right. A failed or locked state checks it
	// against a user of no membership: the same reads, never a verdict,
	// and no code of the member's is spent.
	subject := st.User
	if st.Failed == 1 || locked {
		if subject, err = randomHex(h.Rand, userIDLen/2); err != nil {
			return h.unavailable(q, "read randomness", err)
		}
	}
	used, err := h.checkEitherFactor(q, st, ceremony, subject)
	reason := ""
	switch {
	case err != nil && !errors.Is(err, errWrongCode) && !errors.Is(err, errWrongPasskey) && !errors.Is(err, tenants.ErrNotFound):
		return h.unavailable(q, "check second factor", err)
	case st.Failed == 1:
		reason = "mfa_first_step_failed"
	case locked:
		reason = "account_locked"
	case errors.Is(err, errWrongCode):
		reason = "mfa_wrong_code"
	case errors.Is(err, errWrongPasskey):
		reason = "mfa_wrong_passkey"
	case errors.Is(err, tenants.ErrNotFound):
		reason = "not_member"
	}
	if reason != "" {
		if _, err := h.addresses.Add(ctx, counterKey("address", h.clientKey(q.r)), now); err != nil {
			return h.unavailable(q, "count address failure", err)
		}
		return h.mfaRefused(q, st, reason)
	}
	roles, err := h.Store.Membership(ctx, t.InternalID, st.User)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return h.mfaRefused(q, st, "not_member")
	case err != nil:
		return h.unavailable(q, "look up membership", err)
	}
	user := tenants.User{ID: st.User, Email: st.Email}
	a := h.completeSignIn(q, user, roles, amrOf(used), SafeRedirect(st.RD, q.res.Prefix), st.Via)
	if used == usedRecoveryCode && q.audit != nil {
		q.audit.also = append(q.audit.also, tenants.AuditRecoveryCodeUsed)
	}
	return a
}

// checkEitherFactor checks what the code step received against
// subject's factors (st.User's, or one of no membership: checkCode): a
// passkey's answer in the "passkey" field (the code page's script fills
// it; its ceremony is st's), else the "code" field (checkFactor). It
// returns what was used, or errWrongCode or errWrongPasskey, ErrNotFound,
// or another error.
func (h *Handler) checkEitherFactor(q *request, st *mfaState, ceremony, subject string) (string, error) {
	t := q.tenant()
	answer := q.r.PostForm.Get("passkey")
	if answer == "" {
		return h.checkFactor(q.r.Context(), t, subject, q.r.PostForm.Get("code"), h.now())
	}
	rp, err := h.passkeyRP(q)
	if err != nil || ceremony == "" {
		// Path tenancy, or no ceremony begun: nothing to check it against.
		return usedPasskey, errWrongPasskey
	}
	return usedPasskey, h.checkPasskeyFactorOf(q.r.Context(), rp, t, st.User, subject, st.ID, ceremony, []byte(answer))
}

// What checkFactor accepted.
const (
	usedTOTP         = "totp"
	usedRecoveryCode = "recovery"
)

// amrOf is the amr of a session whose second step accepted used: a TOTP
// code, or a recovery code, which is a one-time password too (RFC 8176
// "otp"); a passkey, a key held in hardware ("hwk").
func amrOf(used string) []string {
	switch used {
	case usedTOTP, usedRecoveryCode:
		return []string{session.AMRPassword, session.AMROTP}
	case usedPasskey:
		return []string{session.AMRPassword, session.AMRHardware}
	}
	return []string{session.AMRPassword}
}

// checkFactor checks code against the member's factors and spends it in
// the same store write: a TOTP code for a step later than the last one
// used, or one of the unused recovery codes. It returns what was used, or
// errWrongCode (also for input that is neither), ErrNotFound when the
// membership is gone, or a store or sealing error.
func (h *Handler) checkFactor(ctx context.Context, t *tenants.Tenant, userID, input string, now time.Time) (string, error) {
	if code, ok := otp.ParseCode(input); ok {
		err := h.Store.UpdateSecondFactors(ctx, t.InternalID, userID, func(f *tenants.SecondFactors) error {
			if !f.Enrolled() {
				return errWrongCode
			}
			secret, err := h.Sealer.Open(f.TOTP, seal.TOTPContext(t.InternalID, userID))
			if err != nil {
				return err
			}
			step, ok := otp.Verify(secret, code, now, f.TOTPStep)
			if !ok {
				return errWrongCode
			}
			f.TOTPStep = step
			return nil
		})
		return usedTOTP, err
	}
	if code, ok := otp.ParseRecoveryCode(input); ok {
		hash := otp.HashRecoveryCode(code, recoveryBinding(t.InternalID, userID))
		err := h.Store.UpdateSecondFactors(ctx, t.InternalID, userID, func(f *tenants.SecondFactors) error {
			i := slices.Index(f.RecoveryCodes, hash)
			if i < 0 || !f.Enrolled() {
				return errWrongCode
			}
			f.RecoveryCodes = slices.Delete(f.RecoveryCodes, i, i+1)
			return nil
		})
		return usedRecoveryCode, err
	}
	return "", errWrongCode
}

// confirmEnrolment checks the first code of the app being enrolled and
// stores the factor with fresh recovery codes, shown once. A wrong code
// shows the same secret again under a new state (nothing is guessed
// here: the secret is on the page).
func (h *Handler) confirmEnrolment(q *request, st *mfaState) *answer {
	t := q.tenant()
	now := h.now()
	code, ok := otp.ParseCode(q.r.PostForm.Get("code"))
	step := int64(0)
	if ok {
		step, ok = otp.Verify(st.Secret, code, now, 0)
	}
	if !ok {
		if a := h.setMFAState(q, *st); a != nil {
			return a
		}
		return h.mfaForm(q, http.StatusBadRequest, st, "That code is not right. Check the time on your phone, and enter the code the app shows now.")
	}
	if !st.Account {
		// A sign-in's enrolment is for a member without a factor: one who
		// added a passkey meanwhile signs in with it. (The account page
		// adds the app beside passkeys.)
		switch ps, err := h.Store.Passkeys(q.r.Context(), t.InternalID, st.User); {
		case err != nil:
			return h.unavailable(q, "list passkeys", err)
		case len(ps) > 0:
			return h.alreadyEnrolled(q, st)
		}
	}
	sealed, err := h.Sealer.Seal(st.Secret, seal.TOTPContext(t.InternalID, st.User))
	if err != nil {
		return h.unavailable(q, "seal totp secret", err)
	}
	codes, hashes, err := h.newRecoveryCodes(t, st.User)
	if err != nil {
		return h.unavailable(q, "make recovery codes", err)
	}
	err = h.Store.UpdateSecondFactors(q.r.Context(), t.InternalID, st.User, func(f *tenants.SecondFactors) error {
		if f.Enrolled() {
			return errAlreadyEnrolled
		}
		f.TOTP, f.TOTPStep, f.TOTPEnrolled, f.RecoveryCodes = sealed, step, now, hashes
		return nil
	})
	switch {
	case errors.Is(err, errAlreadyEnrolled):
		return h.alreadyEnrolled(q, st)
	case errors.Is(err, tenants.ErrNotFound):
		return h.mfaRefused(q, st, "not_member")
	case err != nil:
		return h.unavailable(q, "store second factor", err)
	}
	user := tenants.User{ID: st.User, Email: st.Email}
	next := SafeRedirect(st.RD, q.res.Prefix)
	if st.Account {
		q.audit = &auditNote{event: tenants.AuditMFAEnrolled, tenant: t.ID, user: st.User, email: st.Email, method: usedTOTP}
		h.log().InfoContext(q.r.Context(), "totp enrolled", "tenant", t.ID, "email_digest", h.emailDigest(st.Email))
		return h.recoveryCodesPage(q, codes, next)
	}
	roles, err := h.Store.Membership(q.r.Context(), t.InternalID, st.User)
	if err != nil {
		return h.unavailable(q, "look up membership", err)
	}
	a := h.completeSignIn(q, user, roles, amrOf(usedTOTP), next, st.Via)
	if a.kind != redirectAnswer {
		return a
	}
	q.audit.also = append(q.audit.also, tenants.AuditMFAEnrolled)
	h.log().InfoContext(q.r.Context(), "totp enrolled", "tenant", t.ID, "email_digest", h.emailDigest(st.Email))
	return h.recoveryCodesPage(q, codes, next)
}

// confirmPasskeyEnrolment stores the passkey the enrolment page's
// "Add a passkey" created as the member's first factor, and completes the
// sign-in with amr pwd and hwk. A refused answer shows the enrolment again
// under a new state, as a wrong first code does (nothing is guessed: the
// authenticator makes the key); a member who got a factor meanwhile is
// refused as for the app.
func (h *Handler) confirmPasskeyEnrolment(q *request, st *mfaState, ceremony string, response []byte) *answer {
	t := q.tenant()
	ctx := q.r.Context()
	again := func() *answer {
		if a := h.setMFAState(q, *st); a != nil {
			return a
		}
		return h.mfaForm(q, http.StatusBadRequest, st, "The passkey could not be added. Try again, or set up the authenticator app.")
	}
	rp, err := h.passkeyRP(q)
	if err != nil || ceremony == "" {
		return again()
	}
	p, err := h.finishPasskeyEnrolment(ctx, rp, t, st.User, st.Email, st.ID, ceremony, response)
	switch {
	case errors.Is(err, errWrongPasskey):
		return again()
	case err != nil:
		return h.unavailable(q, "finish passkey enrolment", err)
	}
	switch has, err := h.hasSecondFactor(ctx, t, st.User); {
	case errors.Is(err, tenants.ErrNotFound):
		return h.mfaRefused(q, st, "not_member")
	case err != nil:
		return h.unavailable(q, "read second factors", err)
	case has:
		return h.alreadyEnrolled(q, st)
	}
	switch err := h.Store.AddPasskey(ctx, t.InternalID, st.User, p); {
	case errors.Is(err, tenants.ErrConflict):
		return again()
	case errors.Is(err, tenants.ErrNotFound):
		return h.mfaRefused(q, st, "not_member")
	case err != nil:
		return h.unavailable(q, "add passkey", err)
	}
	roles, err := h.Store.Membership(ctx, t.InternalID, st.User)
	if err != nil {
		return h.unavailable(q, "look up membership", err)
	}
	user := tenants.User{ID: st.User, Email: st.Email}
	a := h.completeSignIn(q, user, roles, amrOf(usedPasskey), SafeRedirect(st.RD, q.res.Prefix), st.Via)
	if a.kind == redirectAnswer {
		q.audit.also = append(q.audit.also, tenants.AuditPasskeyAdded)
		h.log().InfoContext(q.r.Context(), "passkey enrolled", "tenant", t.ID, "email_digest", h.emailDigest(st.Email))
	}
	return a
}

// alreadyEnrolled refuses an enrolment of a member who got a factor
// meanwhile (in another tab or sign-in).
func (h *Handler) alreadyEnrolled(q *request, st *mfaState) *answer {
	return h.message(q, http.StatusConflict, "Already set up",
		"Two-step verification was set up for this account meanwhile. Sign in with it.", true).refused("mfa_already_enrolled", st.Email)
}

// errAlreadyEnrolled refuses an enrolment over an existing factor.
var errAlreadyEnrolled = errors.New("a second factor is enrolled already")

// newRecoveryCodes makes otp.RecoveryCodes codes for a member: as shown,
// and as stored.
func (h *Handler) newRecoveryCodes(t *tenants.Tenant, userID string) (codes, hashes []string, err error) {
	codes, err = otp.NewRecoveryCodes(h.Rand)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range codes {
		n, _ := otp.ParseRecoveryCode(c)
		hashes = append(hashes, otp.HashRecoveryCode(n, recoveryBinding(t.InternalID, userID)))
	}
	return codes, hashes, nil
}

// recoveryCodesPage shows new recovery codes, once, and where to go next.
func (h *Handler) recoveryCodesPage(q *request, codes []string, next string) *answer {
	t := q.tenant()
	return htmlPage(http.StatusOK, "recovery-codes", page{
		Title: "Save your recovery codes", TenantName: displayName(t.Name, t.ID),
		MFA: mfaView{RecoveryCodes: codes, Continue: next},
	})
}

// completeSignIn ends a sign-in of user to the request's tenant: the
// account's failure count is cleared, the sign-in counted
// (Limits.AccountSignIns), the session minted with amr, and the browser
// sent to rd.
func (h *Handler) completeSignIn(q *request, user tenants.User, roles, amr []string, rd, via string) *answer {
	t := q.tenant()
	if err := h.accounts.Reset(q.r.Context(), counterKey("account", t.InternalID, user.Email)); err != nil {
		return h.unavailable(q, "reset account failures", err)
	}
	if a := h.admitSignIn(q, signInKey(t.InternalID, user.Email), user.Email); a != nil {
		return a
	}
	if _, err := h.issueSession(q, user, roles, amr, via); err != nil {
		return h.unavailable(q, "mint session", err)
	}
	h.noteSignIn(q, user, via)
	h.log().InfoContext(q.r.Context(), "signed in", "tenant", t.ID, "method", via, "mfa", len(amr) > 1, "email_digest", h.emailDigest(user.Email))
	return seeOther(rd)
}

// randomHex returns n random bytes from r (crypto/rand when nil) in
// lower-case hex.
func randomHex(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// mfaSealerFor derives the second-step state sealer from the master
// sealer, or nil without one.
func mfaSealerFor(s *seal.Sealer) *seal.Sealer {
	if s == nil {
		return nil
	}
	d, err := seal.NewSealer(s.DeriveKey(mfaPurpose))
	if err != nil {
		panic(err) // DeriveKey returns MasterKeySize bytes
	}
	return d
}

// mfaRoute answers the second step's route; ok is false for any other.
func (h *Handler) mfaRoute(q *request) (*answer, bool) {
	if q.route != PathMFA {
		return nil, false
	}
	if !h.mfaOn(q) {
		return jsonError(http.StatusNotFound, "not_found"), true
	}
	return h.methods(q, h.mfaPage, h.mfaPost), true
}

// secondFactorAccount refuses the account page's second-factor actions
// where they do not apply: a tenant without a second step, or a session
// not signed in with a password. It returns nil when they do.
func (h *Handler) secondFactorAccount(q *request, c *session.Claims) *answer {
	t := q.tenant()
	if !t.MFAOn() || c.Method != session.MethodPassword || !t.HasMethod(tenants.MethodPassword) {
		return h.accountForm(q, http.StatusBadRequest, c, "", "Two-step verification is not offered for this account here.")
	}
	return nil
}

// startAccountEnrolment: the account page's "Set up an authenticator
// app", for a member without a factor. It goes through the same
// enrolment step as a sign-in under required, with a state that issues
// no session and comes back to the account page.
func (h *Handler) startAccountEnrolment(q *request, c *session.Claims) *answer {
	if a := h.secondFactorAccount(q, c); a != nil {
		return a
	}
	t := q.tenant()
	f, err := h.Store.SecondFactors(q.r.Context(), t.InternalID, c.Subject)
	if err != nil {
		return h.unavailable(q, "read second factors", err)
	}
	if f.Enrolled() {
		return h.accountForm(q, http.StatusConflict, c, "", "Two-step verification is on already.")
	}
	secret, err := otp.NewSecret(h.Rand)
	if err != nil {
		return h.unavailable(q, "make totp secret", err)
	}
	return h.startMFA(q, mfaState{User: c.Subject, Email: c.Email, Step: stepEnrol, Secret: secret, Via: session.MethodPassword,
		Account: true, RD: q.res.Prefix + PathAccount})
}

// renewRecoveryCodes: the account page's "Make new recovery codes": the
// old ones stop working, the new ones are shown once.
func (h *Handler) renewRecoveryCodes(q *request, c *session.Claims) *answer {
	if a := h.secondFactorAccount(q, c); a != nil {
		return a
	}
	t := q.tenant()
	codes, hashes, err := h.newRecoveryCodes(t, c.Subject)
	if err != nil {
		return h.unavailable(q, "make recovery codes", err)
	}
	err = h.Store.UpdateSecondFactors(q.r.Context(), t.InternalID, c.Subject, func(f *tenants.SecondFactors) error {
		if !f.Enrolled() {
			return errNotEnrolled
		}
		f.RecoveryCodes = hashes
		return nil
	})
	switch {
	case errors.Is(err, errNotEnrolled):
		return h.accountForm(q, http.StatusConflict, c, "", "Two-step verification is off: there are no recovery codes to renew.")
	case err != nil:
		return h.unavailable(q, "store recovery codes", err)
	}
	q.audit = &auditNote{event: tenants.AuditRecoveryCodesRenewed, tenant: t.ID, user: c.Subject, email: c.Email}
	h.log().InfoContext(q.r.Context(), "recovery codes renewed", "tenant", t.ID, "email_digest", h.emailDigest(c.Email))
	return h.recoveryCodesPage(q, codes, q.res.Prefix+PathAccount)
}

// errNotEnrolled refuses to renew the recovery codes of a member without
// a factor.
var errNotEnrolled = errors.New("no second factor enrolled")
