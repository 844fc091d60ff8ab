package login

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/tenantgate/tenantgate/extauthz/passkey"
	"github.com/tenantgate/tenantgate/tenants"
)

// The passkey as a second factor (issue 11 item 5). The second sign-in
// step (/_auth/mfa, mfa.go) calls these two, in this order, for the
// member its sealed state names:
//
//   - beginPasskeyFactor when it shows the code page: it returns the
//     options for navigator.credentials.get (for this host's RP ID) and
//     the sealed ceremony, which the step carries to its POST in a cookie
//     of its own (mfaPasskeyCookieBase). The ceremony is sealed for the
//     tenant, the member and the step's state id (step), so it opens only
//     with the state it was begun for. It reads nothing from the store and
//     its options are the same for every person, so the step calls it
//     alike for a failed first step (a random user) and a right one, and
//     the page offers a passkey either way. errNoPasskey only when
//     passkeys are off here (no master key); on path tenancy the caller
//     gets passkey.ErrPathTenancy from passkeyRP first.
//   - checkPasskeyFactor on the POST with the browser's answer (the form
//     field "passkey" the page's passkeySignInScript fills): the ceremony
//     must open for this tenant, member and state and be spent for the
//     first time, the answer must verify, and the passkey's sign count
//     must grow inside the store's compare-and-swap. It returns nil (the
//     session then carries amr pwd+hwk), errWrongPasskey for every refusal
//     (counted like a wrong code), or an infrastructure error.
var (
	// errNoPasskey: passkeys are off (no master key).
	errNoPasskey = errors.New("passkeys are not available")
	// errWrongPasskey: the passkey step was refused.
	errWrongPasskey = errors.New("passkey refused")
)

// usedPasskey names the passkey factor for the step's amrOf (hwk).
const usedPasskey = "passkey"

// beginPasskeyFactor starts a passkey sign-in for userID (holder of
// email) in tenant t on rp, for the second step whose state id is step;
// see above.
func (h *Handler) beginPasskeyFactor(rp passkey.RP, t *tenants.Tenant, userID, email, step string) (options []byte, ceremony string, err error) {
	if h.passkeys == nil {
		return nil, "", errNoPasskey
	}
	acct := &passkey.Account{Handle: passkey.Handle(t.InternalID, userID), Name: email}
	options, c, err := passkey.BeginLogin(rp, acct, h.now())
	if err != nil {
		return nil, "", err
	}
	ceremony, err = passkey.Seal(h.passkeys.ceremony, c, t.InternalID, passkeyStepBinding(userID, step))
	if err != nil {
		return nil, "", err
	}
	return options, ceremony, nil
}

// beginPasskeyEnrolment starts the registration of a first passkey for
// userID (holder of email) in tenant t on rp, at the enrolment of the
// second step whose state id is step (mfa required, no factor yet): the
// options for navigator.credentials.create and the sealed ceremony, bound
// like beginPasskeyFactor's.
func (h *Handler) beginPasskeyEnrolment(rp passkey.RP, t *tenants.Tenant, userID, email, step string) (options []byte, ceremony string, err error) {
	if h.passkeys == nil {
		return nil, "", errNoPasskey
	}
	acct := &passkey.Account{Handle: passkey.Handle(t.InternalID, userID), Name: email}
	options, c, err := passkey.BeginRegistration(rp, acct, h.now())
	if err != nil {
		return nil, "", err
	}
	ceremony, err = passkey.Seal(h.passkeys.ceremony, c, t.InternalID, passkeyStepBinding(userID, step))
	if err != nil {
		return nil, "", err
	}
	return options, ceremony, nil
}

// finishPasskeyEnrolment checks the browser's answer to the ceremony
// begun by beginPasskeyEnrolment for the same step and returns the
// passkey to store: errWrongPasskey for every refusal, or another error.
// The ceremony is spent here, whatever follows.
func (h *Handler) finishPasskeyEnrolment(ctx context.Context, rp passkey.RP, t *tenants.Tenant, userID, email, step, ceremony string, response []byte) (tenants.Passkey, error) {
	if h.passkeys == nil {
		return tenants.Passkey{}, errWrongPasskey
	}
	refused := func(reason string, err error) (tenants.Passkey, error) {
		h.log().InfoContext(ctx, "passkey enrolment refused", "tenant", t.ID, "reason", reason, "err", err)
		return tenants.Passkey{}, errWrongPasskey
	}
	c, err := passkey.Open(h.passkeys.ceremony, ceremony, t.InternalID, passkeyStepBinding(userID, step), passkey.KindRegister, h.now())
	if err != nil {
		return refused("ceremony", err)
	}
	switch err := h.Store.UseAssertionID(ctx, t.InternalID, c.UseID(), c.Expires); {
	case errors.Is(err, tenants.ErrReplay):
		return refused("ceremony replayed", nil)
	case err != nil:
		return tenants.Passkey{}, fmt.Errorf("spend passkey ceremony: %w", err)
	}
	acct := &passkey.Account{Handle: passkey.Handle(t.InternalID, userID), Name: email}
	p, err := passkey.FinishRegistration(rp, acct, c, response, defaultPasskeyName, h.now())
	if err != nil {
		return refused("response", err)
	}
	return p, nil
}

// passkeyStepBinding is what a second step's passkey ceremony is sealed
// for: the member and the step's state id (user ids are hex, so the
// separator is unambiguous).
func passkeyStepBinding(userID, step string) string { return userID + "/" + step }

// checkPasskeyFactor checks the browser's answer to the ceremony begun by
// beginPasskeyFactor for the same step; see above.
func (h *Handler) checkPasskeyFactor(ctx context.Context, rp passkey.RP, t *tenants.Tenant, userID, step, ceremony string, response []byte) error {
	return h.checkPasskeyFactorOf(ctx, rp, t, userID, userID, step, ceremony, response)
}

// checkPasskeyFactorOf is checkPasskeyFactor for a ceremony begun for
// binder's step, checked against subject's passkeys. The code step passes
// a subject of no membership when the first step failed or the account is
// locked (checkCode): the same work, and never a verdict.
func (h *Handler) checkPasskeyFactorOf(ctx context.Context, rp passkey.RP, t *tenants.Tenant, binder, subject, step, ceremony string, response []byte) error {
	userID := subject
	if h.passkeys == nil {
		return errWrongPasskey
	}
	refused := func(reason string, err error) error {
		h.log().InfoContext(ctx, "passkey sign-in refused", "tenant", t.ID, "reason", reason, "err", err)
		return errWrongPasskey
	}
	c, err := passkey.Open(h.passkeys.ceremony, ceremony, t.InternalID, passkeyStepBinding(binder, step), passkey.KindLogin, h.now())
	if err != nil {
		return refused("ceremony", err)
	}
	switch err := h.Store.UseAssertionID(ctx, t.InternalID, c.UseID(), c.Expires); {
	case errors.Is(err, tenants.ErrReplay):
		return refused("ceremony replayed", nil)
	case err != nil:
		return fmt.Errorf("spend passkey ceremony: %w", err)
	}
	ps, err := h.Store.Passkeys(ctx, t.InternalID, userID)
	if err != nil {
		return fmt.Errorf("list passkeys: %w", err)
	}
	acct := &passkey.Account{Handle: passkey.Handle(t.InternalID, userID), Passkeys: ps}
	as, err := passkey.FinishLogin(rp, acct, c, response, h.now())
	if err != nil {
		return refused("response", err)
	}
	switch err := h.Store.UpdatePasskey(ctx, t.InternalID, userID, as.ID, as.Update); {
	case errors.Is(err, passkey.ErrCloned):
		// Logged as a warning: an operator should hear of a possibly
		// cloned authenticator (the credential id's digest names it).
		sum := sha256.Sum256(as.ID)
		h.log().WarnContext(ctx, "passkey sign count did not grow: refused, the authenticator may be cloned", "tenant", t.ID,
			"credential_digest", base64.RawURLEncoding.EncodeToString(sum[:8]))
		return errWrongPasskey
	case errors.Is(err, tenants.ErrNotFound):
		return refused("passkey removed meanwhile", nil)
	case err != nil:
		return fmt.Errorf("record passkey use: %w", err)
	}
	return nil
}

// passkeySignInScript runs the second step's passkey form: it reads the
// options from the page (a data-options attribute of #passkey-signin,
// JSON), calls navigator.credentials.get (the code step) or .create (the
// enrolment: options with a user) and submits the form with the answer in
// its "passkey" field. The form is hidden until the script finds WebAuthn.
// Static, so allowed by hash like passkeyScript.
const passkeySignInScript = `(function () {
  var f = document.getElementById("passkey-signin");
  if (!f || !window.PublicKeyCredential) return;
  f.hidden = false;
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
    if (f.elements.passkey.value) return;
    e.preventDefault();
    var p = JSON.parse(f.getAttribute("data-options")).publicKey, create = !!p.user;
    p.challenge = dec(p.challenge);
    if (create) {
      p.user.id = dec(p.user.id);
      (p.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    }
    (create ? navigator.credentials.create({ publicKey: p }) : navigator.credentials.get({ publicKey: p })).then(function (c) {
      var r = c.response, out = { clientDataJSON: enc(r.clientDataJSON) };
      if (create) {
        out.attestationObject = enc(r.attestationObject);
        out.transports = r.getTransports ? r.getTransports() : [];
      } else {
        out.authenticatorData = enc(r.authenticatorData);
        out.signature = enc(r.signature);
        out.userHandle = r.userHandle ? enc(r.userHandle) : null;
      }
      f.elements.passkey.value = JSON.stringify({ id: c.id, rawId: enc(c.rawId), type: c.type, response: out,
        clientExtensionResults: c.getClientExtensionResults() });
      f.submit();
    }).catch(function () {
      var st = document.getElementById("passkey-status");
      if (st) st.textContent = create ? "The passkey was not created. Try again, or set up an authenticator app." :
        "The passkey was not used. Try again, or enter a code.";
    });
  });
})();`

// passkeySignInScriptHash is the CSP source that allows
// passkeySignInScript.
var passkeySignInScriptHash = func() string {
	sum := sha256.Sum256([]byte(passkeySignInScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()
