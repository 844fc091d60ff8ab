package login

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// The global session (docs/tenancy.md): a person with a tenantgate password
// who signs in on the apex host gets a session of no tenant, kept in a
// sealed, host-only cookie of the apex host. It opens no tenant by itself:
// it only lists the person's organisations and vouches for them when a
// tenant host asks for a one-time switch code (switch.go). Only password
// users hold one: an identity an SSO method of one tenant vouched for has no
// password, is not in the email index, and so never signs in here.
const (
	// DefaultGlobalTTL is how long a global session lasts when
	// Handler.GlobalTTL is zero.
	DefaultGlobalTTL = time.Hour
	// maxGlobalTTL bounds Handler.GlobalTTL like session.MaxTTL bounds a
	// tenant session, so revocations (kept for their token's life) work.
	maxGlobalTTL = session.MaxTTL
	// globalPurpose names the derived key that seals global sessions.
	globalPurpose = "global-session"
	// globalCookieBase is the global session cookie's name without prefix.
	globalCookieBase = "tenantgate-global"
	// maxGlobalCookie bounds the cookie value opened.
	maxGlobalCookie = 2048
	// globalRecordVersion is the "v" of globalRecord.
	globalRecordVersion = 1
)

// globalRecord is the sealed content of the global session cookie.
type globalRecord struct {
	V       int    `json:"v"`
	User    string `json:"u"`
	Email   string `json:"e"`
	SID     string `json:"s"`
	Issued  int64  `json:"i"`
	Expires int64  `json:"x"`
}

// globalSession is an opened, unexpired, unrevoked global session.
type globalSession struct {
	user, email, sid string
	issued, expires  time.Time
}

// globalContext binds a sealed global session to the apex host it was
// issued on.
func globalContext(host string) string { return "global-session:v1:" + host }

// globalEnabled reports whether the apex offers password sign-in and
// switching: both need the Sealer.
func (h *Handler) globalEnabled() bool { return h.globalSealer != nil && h.switchSealer != nil }

func (h *Handler) globalTTL() time.Duration {
	if h.GlobalTTL <= 0 {
		return DefaultGlobalTTL
	}
	return min(h.GlobalTTL, maxGlobalTTL)
}

// globalCookie is the global session cookie: __Host-tenantgate-global
// (tenantgate-global when insecure), host-only, Path=/, HttpOnly,
// SameSite=Lax, Secure unless insecure. maxAge < 0 deletes it.
func (h *Handler) globalCookie(q *request, value string, maxAge int) *http.Cookie {
	return h.hostCookie(q, globalCookieBase, value, maxAge)
}

// setGlobal starts a global session for user and sets its cookie.
func (h *Handler) setGlobal(q *request, user tenants.User) error {
	sid, err := session.NewSID(h.Rand)
	if err != nil {
		return err
	}
	h.waitPastRevocation(q, "", user.ID)
	now := h.now().UTC().Truncate(time.Second)
	ttl := h.globalTTL()
	rec := globalRecord{V: globalRecordVersion, User: user.ID, Email: user.Email, SID: sid,
		Issued: now.Unix(), Expires: now.Add(ttl).Unix()}
	v, err := sealJSON(h.globalSealer, rec, globalContext(q.res.Host))
	if err != nil {
		return fmt.Errorf("global session: %w", err)
	}
	q.setCookie(h.globalCookie(q, v, int(ttl/time.Second)))
	return nil
}

// openGlobal returns the request's global session when one opens for this
// apex host, has not expired and is not revoked, else nil.
func (h *Handler) openGlobal(q *request) *globalSession {
	if !h.globalEnabled() {
		return nil
	}
	now := h.now()
	for i, c := range cookiesNamed(q.r, h.hostCookieName(q, globalCookieBase)) {
		if i == maxCookieCandidates {
			break
		}
		var rec globalRecord
		if !openJSON(h.globalSealer, c.Value, maxGlobalCookie, globalContext(q.res.Host), &rec) ||
			rec.V != globalRecordVersion || rec.User == "" || rec.SID == "" {
			continue
		}
		g := &globalSession{user: rec.User, email: rec.Email, sid: rec.SID,
			issued: time.Unix(rec.Issued, 0), expires: time.Unix(rec.Expires, 0)}
		if !now.Before(g.expires) || g.issued.After(now.Add(time.Minute)) || g.expires.Sub(g.issued) > maxGlobalTTL {
			continue
		}
		if q.snap.Revoked("", g.user, g.sid, g.issued) {
			continue
		}
		return g
	}
	return nil
}

// globalUser returns the user a global session names, if it still exists
// as a password user: the same email still belongs to the same user id
// (a deleted and re-created account does not inherit the session) and has
// a password.
func (h *Handler) globalUser(q *request, g *globalSession) (tenants.User, bool, error) {
	u, err := h.Store.UserByEmail(q.r.Context(), g.email)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return tenants.User{}, false, nil
	case err != nil:
		return tenants.User{}, false, err
	case u.ID != g.user || u.PasswordHash == "":
		return tenants.User{}, false, nil
	}
	return u, true, nil
}

// signedIn returns the request's global session and its user, or a nil
// session when there is none: no cookie opens, or its user is no longer
// the password user it names (the cookie is then cleared). An error is the
// store's.
func (h *Handler) signedIn(q *request) (*globalSession, tenants.User, error) {
	g := h.openGlobal(q)
	if g == nil {
		return nil, tenants.User{}, nil
	}
	u, ok, err := h.globalUser(q, g)
	if err != nil {
		return nil, tenants.User{}, err
	}
	if !ok {
		q.setCookie(h.globalCookie(q, "", -1))
		return nil, tenants.User{}, nil
	}
	return g, u, nil
}

// globalSignIn: POST /_auth/login on the apex host with email, password and
// csrf (already checked). Success starts a global session and shows the
// chooser (303 to /_auth/login); failure is the 401 "Invalid email or
// password." page. Failures count like a tenant's, under the account scope
// of the apex host.
func (h *Handler) globalSignIn(q *request) *answer {
	email := normaliseEmail(q.r.PostForm.Get("email"))
	user, _, a := h.checkPassword(q, "apex:"+q.res.Host, email, q.r.PostForm.Get("password"), nil, func() *answer {
		return h.apexForm(q, http.StatusUnauthorized, "", invalidCredentials)
	})
	if a != nil {
		return a
	}
	if err := h.setGlobal(q, user); err != nil {
		return h.unavailable(q, "start global session", err)
	}
	h.log().InfoContext(q.r.Context(), "signed in", "host", q.res.Host, "scope", "global", "method", session.MethodPassword, "email_digest", h.emailDigest(email))
	return seeOther(signin.PathLogin)
}

// tenantChoice is one organisation on the chooser: a button that posts ID
// to the apex's /_auth/switch, or, for a tenant without password sign-in
// (which the global session does not open), a link to its sign-in page
// with login_hint.
type tenantChoice struct {
	Name string
	ID   string
	URL  string
	SSO  bool
}

// chooser renders the organisations user belongs to: active tenants where
// they hold a membership, in tenant id order.
func (h *Handler) chooser(q *request, user tenants.User, notice string) *answer {
	ctx := q.r.Context()
	all, err := h.Store.Tenants(ctx)
	if err != nil {
		return h.unavailable(q, "list tenants", err)
	}
	var choices []tenantChoice
	for _, stored := range all {
		// The snapshot is what every other decision uses; a tenant the
		// store has and the snapshot not yet (or no longer) is left out.
		t := q.snap.ByInternalID(stored.InternalID)
		if t == nil || t.Suspended() {
			continue
		}
		if _, err := h.Store.Membership(ctx, t.InternalID, user.ID); errors.Is(err, tenants.ErrNotFound) {
			continue
		} else if err != nil {
			return h.unavailable(q, "look up membership", err)
		}
		c := tenantChoice{Name: displayName(t.Name, t.ID), ID: t.ID}
		if !t.HasMethod(tenants.MethodPassword) {
			c.SSO = true
			c.URL = h.tenantURL(q, t) + signin.PathLogin + "?" + url.Values{"login_hint": {user.Email}}.Encode()
		}
		choices = append(choices, c)
	}
	return htmlPage(http.StatusOK, "chooser", page{
		Title:        "Choose an organisation",
		Action:       signin.PathLogin,
		LogoutAction: signin.PathLogout,
		CSRF:         h.formCSRF(q),
		Notice:       notice,
		Email:        user.Email,
		Tenants:      choices,
		formTargets:  h.discoveryFormTargets(q),
	})
}

// apexLogoutPage: GET /_auth/logout on the apex host, a confirmation form.
func (h *Handler) apexLogoutPage(q *request) *answer {
	return htmlPage(http.StatusOK, "logout", page{Title: "Sign out", Action: signin.PathLogout, CSRF: h.formCSRF(q)})
}

// apexLogout: POST /_auth/logout on the apex host with csrf. Revokes the
// global session, clears its cookie and goes back to the apex sign-in page.
// Sessions already issued to tenants stay: each is signed out on its own
// host.
func (h *Handler) apexLogout(q *request) *answer {
	if a := h.checkForm(q); a != nil {
		return a
	}
	if g := h.openGlobal(q); g != nil {
		err := h.revoke(q, tenants.Revocation{
			Key:       tenants.SessionRevocationKey(g.sid),
			NotBefore: h.now(),
			Expires:   session.RevocationExpires(g.expires),
		})
		if err != nil {
			return h.unavailable(q, "revoke global session", err)
		}
		h.log().InfoContext(q.r.Context(), "signed out", "host", q.res.Host, "scope", "global")
	}
	q.setCookie(h.globalCookie(q, "", -1))
	return seeOther(signin.PathLogin)
}
