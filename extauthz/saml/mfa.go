package saml

import (
	"compress/flate"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// mfaPolicy is what a method that requires the provider's MFA accepts as
// proof of it: the authentication context class of the assertion's
// AuthnStatement (SAML core §2.7.2.2).
type mfaPolicy struct {
	// accepted are the class references that prove MFA.
	accepted []string
	// request: send them as the AuthnRequest's RequestedAuthnContext
	// (only when the method lists them; the defaults are not asked for,
	// since an IdP may refuse a class it does not know).
	request bool
}

// newMFAPolicy returns the policy of a method with Config c of tenant t,
// or nil when the method does not require MFA (signin.RequiresMFA).
func newMFAPolicy(c *Config, t *tenants.Tenant) *mfaPolicy {
	if !signin.RequiresMFA(c.RequireMFA, t) {
		return nil
	}
	if len(c.AcceptedAuthnContext) == 0 {
		return &mfaPolicy{accepted: slices.Clone(DefaultAcceptedAuthnContext)}
	}
	return &mfaPolicy{accepted: slices.Clone(c.AcceptedAuthnContext), request: true}
}

// confirm returns the session amr of a sign-in whose assertion as shows
// MFA: it has an AuthnStatement, and every one names an accepted class.
// Otherwise it returns the signin.MFAMissing refusal, wrapping
// ErrInvalidResponse.
func (p *mfaPolicy) confirm(as *etree.Element) ([]string, error) {
	stmts := children(as, nsAssertion, "AuthnStatement")
	if len(stmts) == 0 {
		return nil, signin.MFAMissing(refusal("no AuthnStatement"))
	}
	for _, st := range stmts {
		ctx, err := oneChild(st, nsAssertion, "AuthnContext")
		if err != nil || ctx == nil {
			return nil, signin.MFAMissing(refusal("AuthnStatement without one AuthnContext"))
		}
		ref, err := oneChild(ctx, nsAssertion, "AuthnContextClassRef")
		if err != nil || ref == nil {
			return nil, signin.MFAMissing(refusal("AuthnContext without one AuthnContextClassRef"))
		}
		v, err := text(ref)
		if err != nil || !slices.Contains(p.accepted, strings.TrimSpace(v)) {
			return nil, signin.MFAMissing(refusal("AuthnContextClassRef is not one of the accepted classes (acceptedAuthnContext)"))
		}
	}
	return signin.ProviderAMR(nil), nil
}

// requestedAuthnContext adds the policy's RequestedAuthnContext to the
// AuthnRequest element req (SAML core §3.3.2.2.1): every accepted class,
// Comparison exact (any one of them will do). It goes last: the schema
// puts it after NameIDPolicy and Conditions and before Scoping, which
// crewjam never writes. crewjam's own type holds one class only.
func (p *mfaPolicy) requestedAuthnContext(req *etree.Element) {
	rac := req.CreateElement("samlp:RequestedAuthnContext")
	rac.CreateAttr("Comparison", "exact")
	for _, c := range p.accepted {
		rac.CreateElement("saml:AuthnContextClassRef").SetText(c)
	}
}

// redirectURL is the HTTP-Redirect binding (SAML Bindings §3.4.4) of the
// AuthnRequest element req, to destination, as crewjam's
// AuthnRequest.Redirect makes it for a request it built whole: DEFLATE and
// base64, then SAMLRequest, RelayState and SigAlg signed in that order.
// It is used for a request that carries a RequestedAuthnContext of several
// classes, which crewjam's types cannot hold.
func redirectURL(req *etree.Element, destination, relayState string, sp *saml.ServiceProvider) (*url.URL, error) {
	var enc strings.Builder
	b64 := base64.NewEncoder(base64.StdEncoding, &enc)
	fw, err := flate.NewWriter(b64, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.SetRoot(req)
	if _, err := doc.WriteTo(fw); err != nil {
		return nil, err
	}
	if err := fw.Close(); err != nil {
		return nil, err
	}
	if err := b64.Close(); err != nil {
		return nil, err
	}
	u, err := url.Parse(destination)
	if err != nil {
		return nil, err
	}
	query := "SAMLRequest=" + url.QueryEscape(enc.String())
	if u.RawQuery != "" {
		query = u.RawQuery + "&" + query
	}
	if relayState != "" {
		query += "&RelayState=" + relayState
	}
	query += "&SigAlg=" + url.QueryEscape(sp.SignatureMethod)
	signer, err := saml.GetSigningContext(sp)
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignString(query)
	if err != nil {
		return nil, fmt.Errorf("sign authn request: %w", err)
	}
	u.RawQuery = query + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	return u, nil
}
