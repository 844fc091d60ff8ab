package login

import (
	"errors"
	"net/http"

	"github.com/tenantgate/tenantgate/extauthz/account"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// inviteLink opens an invitation token for the request's tenant and
// refuses one withdrawn since it was issued (`users invite --revoke`) or
// whose address is a member already. It does not spend it, and reports
// whether the address has an account.
func (h *Handler) inviteLink(q *request, token string) (account.Link, bool, *answer) {
	t := q.tenant()
	k, err := h.Accounts.Links.Open(token, account.KindInvite, t.InternalID)
	if err != nil {
		return k, false, h.invalidLink(q, "invite_link_invalid")
	}
	if nb, ok := q.snap.RevokedAt(account.InviteRevocationKey(t.InternalID, k.Email)); ok && !k.Issued.After(nb) {
		return k, false, h.invalidLink(q, "invite_revoked")
	}
	u, err := h.Store.UserByEmail(q.r.Context(), k.Email)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return k, false, nil
	case err != nil:
		return k, false, h.unavailable(q, "look up user", err)
	}
	if _, member := q.snap.Membership(t.InternalID, u.ID); member {
		// Accepted already (the store refuses a second use anyway), or
		// a member by another route: nothing left to accept.
		return k, true, h.invalidLink(q, "invite_already_member")
	}
	return k, true, nil
}

// invitePage: GET /_auth/invite?t=TOKEN. For a new address, a form to
// choose a password; for an address with an account, a form asking for
// that account's password: an invitation never sets the password of an
// account that exists, and never signs anyone into it.
func (h *Handler) invitePage(q *request) *answer {
	if a := h.passwordTenant(q); a != nil {
		return a
	}
	if h.Accounts == nil || h.Accounts.Links == nil {
		return h.mailOff(q)
	}
	token := q.r.URL.Query().Get("t")
	k, existing, a := h.inviteLink(q, token)
	if a != nil {
		return a
	}
	return h.inviteForm(q, http.StatusOK, token, k.Email, existing, "")
}

func (h *Handler) inviteForm(q *request, status int, token, email string, existing bool, errMsg string) *answer {
	t := q.tenant()
	return htmlPage(status, "invite", page{
		Title: "Accept the invitation", TenantName: displayName(t.Name, t.ID),
		Action: q.res.Prefix + PathInvite, CSRF: h.formCSRF(q), Email: email, Error: errMsg,
		Acct: accountView{Token: token, Existing: existing},
	})
}

// acceptInvite: POST /_auth/invite with t, csrf and either new_password
// and confirm_password (new address) or password (existing account,
// checked like a sign-in). The invitation is spent (single use, in the
// store) only once the form passes; then the membership is created with
// the invited roles and the person signed in.
func (h *Handler) acceptInvite(q *request) *answer {
	if a := h.passwordTenant(q); a != nil {
		return a
	}
	if h.Accounts == nil || h.Accounts.Links == nil {
		return h.mailOff(q)
	}
	if a := h.checkForm(q); a != nil {
		return a
	}
	t := q.tenant()
	token := q.r.PostForm.Get("t")
	k, existing, a := h.inviteLink(q, token)
	if a != nil {
		return a
	}
	var hash string
	if existing {
		_, _, a := h.checkFirstFactor(q, t.InternalID, k.Email, q.r.PostForm.Get("password"), nil, func() *answer {
			return h.inviteForm(q, http.StatusUnauthorized, token, k.Email, true, invalidCredentials)
		})
		if a != nil {
			return a
		}
	} else {
		var problem string
		var err error
		hash, problem, err = h.newPassword(q)
		switch {
		case err != nil:
			return h.unavailable(q, "hash password", err)
		case problem != "":
			return h.inviteForm(q, http.StatusBadRequest, token, k.Email, false, problem)
		}
	}
	if a := h.spend(q, token, k); a != nil {
		return a
	}
	created, err := h.Store.AddMember(q.r.Context(), t.ID, tenants.NewMember{Email: k.Email, Roles: k.Roles, PasswordHash: hash})
	if err != nil {
		return h.unavailable(q, "add member", err)
	}
	h.publish(q, "an accepted invitation")
	h.log().InfoContext(q.r.Context(), "invitation accepted", "tenant", t.ID, "email_digest", h.emailDigest(k.Email), "new_account", created)
	if !existing && !created {
		// The account was created meanwhile by another route: its password
		// is not the one just typed, so nobody is signed in.
		p := h.messagePage(q, "Invitation accepted", "An account with this address exists already. Sign in with its password.", false)
		return htmlPage(http.StatusOK, "message", p)
	}
	user, err := h.Store.UserByEmail(q.r.Context(), k.Email)
	if err != nil {
		return h.unavailable(q, "look up user", err)
	}
	roles, err := h.Store.Membership(q.r.Context(), t.InternalID, user.ID)
	if err != nil {
		return h.unavailable(q, "look up membership", err)
	}
	// Signed in as by a password, the tenant's second step included.
	return h.secondStep(q, user, roles, q.res.Prefix+"/", session.MethodPassword)
}
