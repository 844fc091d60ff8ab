package login

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// Passkeys on the account page (issue 11 item 5). The page posts to
// PathAccount like its other forms, with these actions:
//
//   - passkey-options (fetched by the page's script): the options for
//     navigator.credentials.create as JSON, and the ceremony sealed in a
//     short-lived cookie;
//   - passkey-register: the browser's answer (credential) and a name;
//   - passkey-rename and passkey-remove: one of the person's own passkeys
//     by id.
//
// Every action needs the page's CSRF token and a session of this tenant,
// and names passkeys only within the signed-in person's own (the store
// looks them up under the tenant and the session's user): another
// person's or another tenant's credential id is "no such passkey".
const (
	// passkeyCeremonyPurpose names the derived key of ceremony cookies.
	passkeyCeremonyPurpose = "passkey-ceremony"
	// maxPasskeyName bounds a passkey's name, in characters.
	maxPasskeyName = 64
	// defaultPasskeyName names a passkey the person did not name.
	defaultPasskeyName = "Passkey"
)

// passkeyKeys are the Handler's passkey secrets, derived from the master
// key: the ceremonies' sealer (user handles need none, passkey.Handle).
type passkeyKeys struct {
	ceremony *seal.Sealer
}

// passkeyView is what the account page's passkey section shows.
type passkeyView struct {
	// Unavailable explains why passkeys are not offered here ("" when
	// they are).
	Unavailable string
	List        []passkeyRow
	// Full: the person holds the most passkeys allowed.
	Full   bool
	Script template.JS
}

// passkeyRow is one passkey in the list.
type passkeyRow struct {
	ID       string
	Name     string
	Created  time.Time
	LastUsed time.Time
}

// passkeyScript registers a passkey: it fetches the options, converts
// their base64url fields for navigator.credentials.create, and submits
// the form with the answer as JSON. It is static, so the CSP allows it by
// hash (passkeyScriptHash) and nothing else runs on the page.
const passkeyScript = `(function () {
  var f = document.getElementById("passkey-add"), st = document.getElementById("passkey-status");
  if (!f) return;
  if (!window.PublicKeyCredential) { st.textContent = "This browser cannot create passkeys."; return; }
  function dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var r = atob(s), a = new Uint8Array(r.length);
    for (var i = 0; i < r.length; i++) a[i] = r.charCodeAt(i);
    return a.buffer;
  }
  function enc(b) {
    var a = new Uint8Array(b), s = "";
    for (var i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  f.addEventListener("submit", function (e) {
    e.preventDefault();
    st.textContent = "Follow your browser's prompt to create the passkey.";
    var body = new URLSearchParams({ csrf: f.elements.csrf.value, action: "passkey-options" });
    // f.action would be the form's input named "action", not its URL.
    fetch(f.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("options");
      return r.json();
    }).then(function (o) {
      var p = o.publicKey;
      p.challenge = dec(p.challenge);
      p.user.id = dec(p.user.id);
      (p.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
      return navigator.credentials.create({ publicKey: p });
    }).then(function (c) {
      var r = c.response;
      f.elements.credential.value = JSON.stringify({
        id: c.id, rawId: enc(c.rawId), type: c.type,
        response: { clientDataJSON: enc(r.clientDataJSON), attestationObject: enc(r.attestationObject),
          transports: r.getTransports ? r.getTransports() : [] },
        clientExtensionResults: c.getClientExtensionResults()
      });
      f.submit();
    }).catch(function () { st.textContent = "The passkey was not created. Try again."; });
  });
})();`

// passkeyScriptHash is the CSP source that allows passkeyScript.
var passkeyScriptHash = func() string {
	sum := sha256.Sum256([]byte(passkeyScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// withPageScripts extends a page's CSP for the passkey scripts, the only
// scripts the sign-in pages run: the account page's passkey section (its
// script by hash, and fetches to this origin only) or the second step's
// "Use a passkey" (its script by hash; its options are in the page).
func withPageScripts(csp string, p page) string {
	switch {
	case p.Passkeys != nil && p.Passkeys.Script != "":
		return csp + "; script-src " + passkeyScriptHash + "; connect-src 'self'"
	case p.MFA.Passkey != nil:
		return csp + "; script-src " + passkeySignInScriptHash
	}
	return csp
}

// passkeyRP is the relying party of the request's tenant host, or
// passkey.ErrPathTenancy.
func (h *Handler) passkeyRP(q *request) (passkey.RP, error) {
	t := q.tenant()
	return passkey.RPFor(q.res.Host, h.endpoint(q).Origin, displayName(t.Name, t.ID), q.res.Prefix != "")
}

// passkeyAccount is the signed-in person as a passkey account, with
// their passkeys in this tenant.
func (h *Handler) passkeyAccount(q *request, c *session.Claims) (*passkey.Account, error) {
	t := q.tenant()
	ps, err := h.Store.Passkeys(q.r.Context(), t.InternalID, c.Subject)
	if err != nil {
		return nil, err
	}
	return &passkey.Account{Handle: passkey.Handle(t.InternalID, c.Subject), Name: c.Email, Passkeys: ps}, nil
}

// passkeySection is the account page's passkey section, nil without a
// master key.
func (h *Handler) passkeySection(q *request, c *session.Claims) *passkeyView {
	if h.passkeys == nil {
		return nil
	}
	if _, err := h.passkeyRP(q); err != nil {
		return &passkeyView{Unavailable: "Passkeys need this organisation's own address (a custom domain or its subdomain); they are not offered on shared paths."}
	}
	ps, err := h.Store.Passkeys(q.r.Context(), q.tenant().InternalID, c.Subject)
	if err != nil {
		h.log().ErrorContext(q.r.Context(), "list passkeys", "tenant", q.tenant().ID, "err", err)
		return &passkeyView{Unavailable: "Your passkeys could not be read. Try again later."}
	}
	v := &passkeyView{Full: len(ps) >= tenants.MaxPasskeysPerUser, Script: template.JS(passkeyScript)}
	for _, p := range ps {
		v.List = append(v.List, passkeyRow{ID: base64.RawURLEncoding.EncodeToString(p.ID), Name: p.Name, Created: p.Created, LastUsed: p.LastUsed})
	}
	return v
}

// passkeyCookieName is the ceremony cookie's name.
func (h *Handler) passkeyCookieName() string {
	if h.InsecureCookies {
		return "tg-passkey"
	}
	return "__Host-tg-passkey"
}

// passkeyAction answers the passkey actions of the account form; ok is
// false for any other action.
func (h *Handler) passkeyAction(q *request, c *session.Claims) (a *answer, ok bool) {
	action := q.r.PostForm.Get("action")
	if !strings.HasPrefix(action, "passkey-") {
		return nil, false
	}
	if h.passkeys == nil {
		return jsonError(http.StatusNotImplemented, "passkeys_unavailable"), true
	}
	rp, err := h.passkeyRP(q)
	if err != nil {
		return h.accountForm(q, http.StatusBadRequest, c, "", "Passkeys are not offered on this address."), true
	}
	switch action {
	case "passkey-options":
		return h.passkeyOptions(q, c, rp), true
	case "passkey-register":
		return h.passkeyRegister(q, c, rp), true
	case "passkey-rename":
		return h.passkeyRename(q, c), true
	case "passkey-remove":
		return h.passkeyRemove(q, c), true
	}
	return nil, false
}

// passkeyOptions begins a registration: JSON options for the page's
// script, and the sealed ceremony in its cookie.
func (h *Handler) passkeyOptions(q *request, c *session.Claims, rp passkey.RP) *answer {
	acct, err := h.passkeyAccount(q, c)
	if err != nil {
		return h.unavailable(q, "list passkeys", err)
	}
	if len(acct.Passkeys) >= tenants.MaxPasskeysPerUser {
		return jsonError(http.StatusConflict, "too_many_passkeys")
	}
	opts, cer, err := passkey.BeginRegistration(rp, acct, h.now())
	if err != nil {
		return h.unavailable(q, "begin passkey registration", err)
	}
	v, err := passkey.Seal(h.passkeys.ceremony, cer, q.tenant().InternalID, c.Subject)
	if err != nil {
		return h.unavailable(q, "seal passkey ceremony", err)
	}
	q.setCookie(h.attemptCookie(h.passkeyCookieName(), v, int(passkey.CeremonyTTL/time.Second), false))
	return document("application/json", "no-store", opts)
}

// passkeyRegister finishes a registration: the ceremony must open for
// this tenant and person, be spent for the first time, and the browser's
// answer must verify; then the passkey is stored.
func (h *Handler) passkeyRegister(q *request, c *session.Claims, rp passkey.RP) *answer {
	t := q.tenant()
	q.setCookie(h.attemptCookie(h.passkeyCookieName(), "", -1, false))
	failed := func(reason string, err error) *answer {
		h.log().InfoContext(q.r.Context(), "passkey registration refused", "tenant", t.ID, "reason", reason, "err", err)
		return h.accountForm(q, http.StatusBadRequest, c, "", "The passkey could not be added: it took too long, or the page was used twice. Try again.")
	}
	ck, err := q.r.Cookie(h.passkeyCookieName())
	if err != nil {
		return failed("no ceremony", nil)
	}
	cer, err := passkey.Open(h.passkeys.ceremony, ck.Value, t.InternalID, c.Subject, passkey.KindRegister, h.now())
	if err != nil {
		return failed("ceremony", err)
	}
	switch err := h.Store.UseAssertionID(q.r.Context(), t.InternalID, cer.UseID(), cer.Expires); {
	case errors.Is(err, tenants.ErrReplay):
		return failed("ceremony replayed", nil)
	case err != nil:
		return h.unavailable(q, "spend passkey ceremony", err)
	}
	acct, err := h.passkeyAccount(q, c)
	if err != nil {
		return h.unavailable(q, "list passkeys", err)
	}
	p, err := passkey.FinishRegistration(rp, acct, cer, []byte(q.r.PostForm.Get("credential")), passkeyName(q.r.PostForm.Get("name")), h.now())
	if err != nil {
		return failed("response", err)
	}
	switch err := h.Store.AddPasskey(q.r.Context(), t.InternalID, c.Subject, p); {
	case errors.Is(err, tenants.ErrConflict):
		return h.accountForm(q, http.StatusConflict, c, "", "This passkey is registered already.")
	case errors.Is(err, tenants.ErrTooManyPasskeys):
		return h.accountForm(q, http.StatusConflict, c, "", "You have the most passkeys allowed. Remove one first.")
	case err != nil:
		return h.unavailable(q, "add passkey", err)
	}
	h.notePasskey(q, c, tenants.AuditPasskeyAdded)
	h.log().InfoContext(q.r.Context(), "passkey added", "tenant", t.ID)
	return h.accountForm(q, http.StatusOK, c, "Your passkey was added.", "")
}

// passkeyID reads the form's passkey id, or nil.
func passkeyID(q *request) []byte {
	v := q.r.PostForm.Get("id")
	if v == "" || len(v) > base64.RawURLEncoding.EncodedLen(tenants.MaxPasskeyIDLen) {
		return nil
	}
	id, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil {
		return nil
	}
	return id
}

// noSuchPasskey answers an id that is not one of the person's passkeys
// in this tenant (another person's, another tenant's, removed, garbage).
func (h *Handler) noSuchPasskey(q *request, c *session.Claims) *answer {
	return h.accountForm(q, http.StatusNotFound, c, "", "There is no such passkey in your account.")
}

// passkeyRename renames one of the person's passkeys.
func (h *Handler) passkeyRename(q *request, c *session.Claims) *answer {
	id := passkeyID(q)
	if id == nil {
		return h.noSuchPasskey(q, c)
	}
	name := passkeyName(q.r.PostForm.Get("name"))
	err := h.Store.UpdatePasskey(q.r.Context(), q.tenant().InternalID, c.Subject, id, func(p *tenants.Passkey) error {
		p.Name = name
		return nil
	})
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return h.noSuchPasskey(q, c)
	case err != nil:
		return h.unavailable(q, "rename passkey", err)
	}
	h.notePasskey(q, c, tenants.AuditPasskeyRenamed)
	return h.accountForm(q, http.StatusOK, c, "Your passkey was renamed.", "")
}

// passkeyRemove removes one of the person's passkeys.
func (h *Handler) passkeyRemove(q *request, c *session.Claims) *answer {
	id := passkeyID(q)
	if id == nil {
		return h.noSuchPasskey(q, c)
	}
	switch err := h.Store.RemovePasskey(q.r.Context(), q.tenant().InternalID, c.Subject, id); {
	case errors.Is(err, tenants.ErrNotFound):
		return h.noSuchPasskey(q, c)
	case err != nil:
		return h.unavailable(q, "remove passkey", err)
	}
	h.notePasskey(q, c, tenants.AuditPasskeyRemoved)
	h.log().InfoContext(q.r.Context(), "passkey removed", "tenant", q.tenant().ID)
	return h.accountForm(q, http.StatusOK, c, "Your passkey was removed.", "")
}

// notePasskey records a passkey change for the audit trail.
func (h *Handler) notePasskey(q *request, c *session.Claims, event string) {
	q.audit = &auditNote{event: event, tenant: q.tenant().ID, user: c.Subject, email: c.Email}
}

// passkeyName is what a person typed as a passkey's name, made safe to
// show: control and format characters dropped, spaces collapsed, cut to
// maxPasskeyName characters, defaultPasskeyName when nothing is left.
func passkeyName(s string) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if n == maxPasskeyName {
			break
		}
		switch {
		case unicode.IsSpace(r): // before Cc: a tab is a space here
			space = b.Len() > 0
			continue
		case r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
			if n == maxPasskeyName {
				break
			}
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return defaultPasskeyName
	}
	return b.String()
}
