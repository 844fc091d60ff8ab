package login

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// The account page's list of sessions (docs/accounts.md, Sessions). Every
// session minted here is recorded in the store (recordSession), on the
// sign-in path only, never on Check's: the list is what the person sees
// and what they can revoke, one at a time, by an opaque handle that names
// a session only for its holder.

// recordSession records a session just minted for the request's tenant:
// who holds it, when it was issued and expires, a label of the device, the
// client address and how the person signed in (via: password, oidc, saml,
// social, switch). A sign-in whose session cannot be recorded is refused
// (503, no cookie): a session the list cannot show is one its holder
// cannot revoke, the same rule as for the audit trail (recordAudit).
func (h *Handler) recordSession(q *request, minted session.Claims, via string) error {
	address := h.auditClient(q.r)
	if address == "" {
		address = "unknown"
	}
	return h.Store.RecordSession(q.r.Context(), tenants.Session{
		TenantInternalID: minted.TenantID,
		UserID:           minted.Subject,
		SID:              minted.SID,
		Issued:           minted.IssuedAt,
		Expires:          minted.Expires,
		Device:           deviceLabel(q.r.UserAgent()),
		Address:          address,
		Method:           via,
	}, everySession(h.now()))
}

// withdrawSessions revokes, and drops from the list, the sessions this
// request recorded, when their cookies are withheld after all (a sign-in
// refused because its audit event could not be written). A failure is
// logged: the token was never handed out, and its record goes when it
// expires.
func (h *Handler) withdrawSessions(q *request) {
	for _, c := range q.recorded {
		rev := tenants.Revocation{NotBefore: h.now(), Expires: session.RevocationExpires(c.Expires)}
		err := h.Store.RevokeSession(context.WithoutCancel(q.r.Context()), c.TenantID, c.Subject, c.SID, rev)
		if err != nil {
			h.log().ErrorContext(q.r.Context(), "withdraw a session that was not handed out", "tenant", c.Tenant, "err", err)
		}
	}
	q.recorded = nil
}

// sessionList is the account page's Sessions section.
type sessionList struct {
	Rows []sessionRow
	// Unavailable: the store could not list them (the page says so and
	// still offers signing out everywhere).
	Unavailable bool
	// Logout is the sign-out page, where this session is signed out.
	Logout string
}

// sessionRow is one listed session. Every field is ours: the device is a
// label from a fixed vocabulary (deviceLabel), never the User-Agent, and
// the template escapes them all the same.
type sessionRow struct {
	// Handle names the session in the revoke form (sessionHandle).
	Handle  string
	Device  string
	Issued  string
	Address string
	Method  string
	// Current: the session this page was asked with.
	Current bool
}

// listSessions is the signed-in person's live sessions in this tenant,
// newest first: recorded, not expired, not revoked in the snapshot (by
// sid, or by a sign-out everywhere or password change after they were
// issued).
func (h *Handler) listSessions(q *request, c *session.Claims) ([]tenants.Session, error) {
	all, err := h.Store.Sessions(q.r.Context(), c.TenantID, c.Subject)
	if err != nil {
		return nil, err
	}
	now := h.now()
	live := all[:0]
	for _, s := range all {
		if s.Expires.After(now) && !q.snap.Revoked(s.TenantInternalID, s.UserID, s.SID, s.Issued) {
			live = append(live, s)
		}
	}
	return live, nil
}

// sessionSection is what the account page shows of the person's sessions.
func (h *Handler) sessionSection(q *request, c *session.Claims) *sessionList {
	live, err := h.listSessions(q, c)
	if err != nil {
		h.log().ErrorContext(q.r.Context(), "list sessions for the account page", "tenant", q.tenant().ID, "err", err)
		return &sessionList{Unavailable: true, Logout: q.res.Prefix + signin.PathLogout}
	}
	l := &sessionList{Logout: q.res.Prefix + signin.PathLogout}
	for _, s := range live {
		l.Rows = append(l.Rows, sessionRow{
			Handle:  h.sessionHandle(s),
			Device:  s.Device,
			Issued:  s.Issued.UTC().Format("2 Jan 2006, 15:04 UTC"),
			Address: s.Address,
			Method:  methodText(s.Method),
			Current: s.SID == c.SID,
		})
	}
	return l
}

// sessionHandle is the opaque name of a session in the revoke form: a
// keyed digest (CSRFKey) of its tenant, holder and sid. It reveals no sid,
// and revokeSession resolves it only among the signed-in person's own
// sessions in this tenant, so no handle, guessed or copied, reaches
// anyone else's.
func (h *Handler) sessionHandle(s tenants.Session) string {
	m := hmac.New(sha256.New, h.CSRFKey)
	io.WriteString(m, "tenantgate session handle v1\x00")
	for _, part := range []string{s.TenantInternalID, s.UserID, s.SID} {
		io.WriteString(m, part)
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// revokeSession: POST /_auth/account with action=revoke-session and
// session=<handle>. The handle is looked for among the signed-in person's
// live sessions in this tenant; found, that session is revoked by its sid
// (Store.RevokeSession, which again looks it up under this tenant and
// person only) and the snapshot published, so Check refuses it from the
// very next request on this process. The page this session asked from
// comes back with the list; revoking this session itself is signing out
// (/_auth/logout), which the list offers instead.
func (h *Handler) revokeSession(q *request, c *session.Claims) *answer {
	handle := q.r.PostForm.Get("session")
	live, err := h.listSessions(q, c)
	if err != nil {
		return h.unavailable(q, "list sessions", err)
	}
	var target *tenants.Session
	for i := range live {
		if handle != "" && hmac.Equal([]byte(handle), []byte(h.sessionHandle(live[i]))) {
			target = &live[i]
			break
		}
	}
	if target == nil || target.SID == c.SID {
		return h.accountForm(q, http.StatusNotFound, c, "", "That session is signed out already, or is not one of yours.").
			refused("session_not_found", "")
	}
	now := h.now()
	rev := tenants.Revocation{NotBefore: now, Expires: session.RevocationExpires(target.Expires)}
	err = h.Store.RevokeSession(q.r.Context(), c.TenantID, c.Subject, target.SID, rev)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return h.accountForm(q, http.StatusNotFound, c, "", "That session is signed out already, or is not one of yours.").
			refused("session_not_found", "")
	case err != nil:
		return h.unavailable(q, "revoke session", err)
	}
	h.publish(q, "a session revocation")
	h.noteSessionRevoked(q, c)
	h.log().InfoContext(q.r.Context(), "session revoked by its holder", "tenant", q.tenant().ID)
	return h.accountForm(q, http.StatusOK, c, "The session on "+target.Device+" was signed out.", "")
}

// methodText is how the list names a sign-in method.
func methodText(m string) string {
	first, factors, _ := strings.Cut(m, "+")
	text := firstStepText(first)
	named := false
	for _, f := range strings.Split(factors, "+") {
		switch f {
		case session.AMROTP:
			text, named = text+" and a one-time code", true
		case session.AMRHardware:
			text, named = text+" and a passkey", true
		case session.AMRMFA:
			// An SSO sign-in the provider confirmed as multi-factor
			// without saying which factor (amr ["mfa"], or a SAML class).
			if !named {
				text += " and a second factor at the identity provider"
			}
		}
	}
	return text
}

// sessionVia is the method a session's record names: via, how its first
// step was done, then "+otp", "+hwk" or "+mfa" for each second factor amr
// holds (after the second step, mfa.go, or an SSO sign-in whose provider
// confirmed MFA, sso.go), so the list says which sessions passed one. The
// record needs no field of its own for it.
func sessionVia(via string, amr []string) string {
	for _, m := range amr {
		if m != session.AMRPassword {
			via += "+" + m
		}
	}
	return via
}

// firstStepText is methodText's words for the first step's method.
func firstStepText(m string) string {
	switch m {
	case session.MethodPassword:
		return "Password"
	case session.MethodOIDC:
		return "Single sign-on (OIDC)"
	case session.MethodSAML:
		return "Single sign-on (SAML)"
	case session.MethodSocial:
		return "Social sign-in"
	case "switch":
		return "Switched from your organisations"
	}
	return "Other"
}

// deviceLabel names the device a session was signed in from, from its
// User-Agent: "Firefox on Linux", "Safari on iOS", "curl". The label is
// built from the fixed words below only, so nothing of the header itself
// is ever stored or shown; an agent it cannot read is "Unknown browser".
// Order matters: Edge and Opera claim Chrome, Chrome claims Safari, and
// iPads and Android phones claim Linux or Mac OS X.
func deviceLabel(ua string) string {
	if len(ua) > 1024 {
		ua = ua[:1024]
	}
	browser := firstMatch(ua, []labelRule{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"OPR/", "Opera"},
		{"SamsungBrowser/", "Samsung Internet"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"},
		{"Chromium/", "Chromium"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	})
	os := firstMatch(ua, []labelRule{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"},
		{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	})
	switch {
	case browser == "" && os == "":
		return "Unknown browser"
	case browser == "":
		return "Unknown browser on " + os
	case os == "":
		return browser
	}
	return browser + " on " + os
}

// labelRule maps a token of a User-Agent to the word shown for it.
type labelRule struct{ token, label string }

func firstMatch(ua string, rules []labelRule) string {
	for _, r := range rules {
		if strings.Contains(ua, r.token) {
			return r.label
		}
	}
	return ""
}
