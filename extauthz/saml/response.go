package saml

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/tenantgate/tenantgate/extauthz/signin"
)

const (
	// MaxResponseSize is the largest SAMLResponse form value accepted, in
	// base64 characters. Real responses are a few KiB.
	MaxResponseSize = 256 << 10
	// maxDecodedSize is the largest decoded response accepted.
	maxDecodedSize = MaxResponseSize / 4 * 3
	// maxFormBody bounds the whole POST body when HandleResponse parses the
	// form itself: the response, RelayState and some slack.
	maxFormBody = MaxResponseSize + 16<<10
	// maxNameIDSize bounds the NameID (it becomes the account's subject).
	maxNameIDSize = 1024
)

// MaxIssueDelay and MaxClockSkew are crewjam's limits, applied here
// explicitly: a response or assertion issued longer ago than MaxIssueDelay
// (plus the skew) is refused, and every NotBefore/NotOnOrAfter is allowed
// MaxClockSkew of disagreement between the IdP's clock and ours.
const (
	MaxIssueDelay = 90 * time.Second
	MaxClockSkew  = 180 * time.Second
)

// SAML constants.
const (
	statusSuccess      = "urn:oasis:names:tc:SAML:2.0:status:Success"
	bearerMethod       = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	emailNameIDFormat  = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	samlVersion        = "2.0"
	transformEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
)

// Accepted signature algorithms: RSA and ECDSA with SHA-2. RSA-SHA1 and the
// SHA-1 digest are refused (SHA-1 collisions are practical).
var (
	allowedSignatureMethods = []string{
		dsig.RSASHA256SignatureMethod, dsig.RSASHA384SignatureMethod, dsig.RSASHA512SignatureMethod,
		dsig.ECDSASHA256SignatureMethod, dsig.ECDSASHA384SignatureMethod, dsig.ECDSASHA512SignatureMethod,
	}
	allowedDigestMethods = []string{
		"http://www.w3.org/2001/04/xmlenc#sha256",
		"http://www.w3.org/2001/04/xmldsig-more#sha384",
		"http://www.w3.org/2001/04/xmlenc#sha512",
	}
)

// refusal wraps a reason in ErrInvalidResponse.
func refusal(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidResponse, fmt.Sprintf(format, args...))
}

// HandleResponse validates a SAMLResponse posted to endpoint e's ACS URL
// (HTTP-POST binding, SAML Bindings §3.5) for attempt a, or for an
// IdP-initiated sign-in when a is nil and the tenant allows it, and returns
// the identity it asserts. Every refusal wraps ErrInvalidResponse; the
// checks are listed in the package documentation. The assertion ID is
// recorded in the ReplayCache only once everything else holds. A refusal
// for the NameID rules (nameIDRule: a transient NameID, another format than
// the method's, a missing or ambiguous subjectAttribute), or, when the
// method requires MFA, for an authentication context class it does not
// accept (signin.MFAMissing) is also a *signin.Refusal, which the sign-in
// pages explain.
func (m *Method) HandleResponse(ctx context.Context, e signin.Endpoint, a *signin.Attempt, r *http.Request) (signin.Identity, error) {
	raw, err := readResponse(r)
	if err != nil {
		m.log.Info("saml: response refused", "tenant", m.tenantID, "err", err)
		return signin.Identity{}, err
	}
	v, err := m.validate(e, a, raw)
	if err != nil {
		m.log.Info("saml: response refused", "tenant", m.tenantID, "err", err)
		return signin.Identity{}, err
	}
	if err := m.replay.UseAssertionID(ctx, m.tenantID, v.assertionID, v.expires); err != nil {
		m.log.Warn("saml: assertion refused by the replay cache", "tenant", m.tenantID, "err", err)
		return signin.Identity{}, fmt.Errorf("%w: assertion id not usable: %w", ErrInvalidResponse, err)
	}
	return v.identity, nil
}

// readResponse returns the decoded SAMLResponse form value, refusing it
// before decoding when it is too long, and after when it decodes to too
// much.
func readResponse(r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, refusal("method %s, want POST", r.Method)
	}
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			return nil, refusal("read form: %v", err)
		}
	}
	vals := r.PostForm["SAMLResponse"]
	if len(vals) != 1 {
		return nil, refusal("want exactly one SAMLResponse form value, got %d", len(vals))
	}
	v := vals[0]
	if len(v) > MaxResponseSize {
		return nil, refusal("SAMLResponse longer than %d bytes", MaxResponseSize)
	}
	// Some IdPs wrap the base64 at 76 columns.
	v = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '\t', ' ':
			return -1
		}
		return r
	}, v)
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, refusal("SAMLResponse is not base64")
	}
	if len(raw) > maxDecodedSize {
		return nil, refusal("decoded SAMLResponse larger than %d bytes", maxDecodedSize)
	}
	if len(raw) == 0 {
		return nil, refusal("empty SAMLResponse")
	}
	return raw, nil
}

// validated is what a response that passed every check yields.
type validated struct {
	identity    signin.Identity
	assertionID string
	// expires is when the assertion can no longer be accepted anyway: the
	// replay cache need not remember it longer.
	expires time.Time
}

// expectation is what this tenant, at this endpoint and for this attempt,
// requires of a response.
type expectation struct {
	idp       *idpMetadata
	entityID  string // our SP entity id
	acs       string
	requestID string // "" for IdP-initiated
	now       time.Time
}

// validate runs every check on a decoded response. A panic anywhere below
// (ours or a library's) becomes a refusal, never a crash.
func (m *Method) validate(e signin.Endpoint, a *signin.Attempt, raw []byte) (v validated, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("saml: panic while validating a response", "tenant", m.tenantID, "panic", fmt.Sprint(p))
			v, err = validated{}, refusal("response could not be validated")
		}
	}()
	x := expectation{
		idp:      m.idp.get(),
		entityID: EntityID(e),
		acs:      ACSURL(e),
		now:      m.now(),
	}
	if a != nil {
		switch {
		case a.TenantID != m.tenantID:
			return validated{}, refusal("attempt belongs to another tenant")
		case a.Method != m.index:
			return validated{}, refusal("attempt is for another method")
		case a.Endpoint != e:
			return validated{}, refusal("attempt started at another endpoint")
		case a.SAMLRequestID == "":
			return validated{}, refusal("attempt has no saml request id")
		}
		x.requestID = a.SAMLRequestID
	} else if !m.allowIDPInitiated {
		return validated{}, refusal("unsolicited (IdP-initiated) response and the tenant does not allow it")
	}
	return m.check(x, raw)
}

// check is validate without the recover.
func (m *Method) check(x expectation, raw []byte) (validated, error) {
	// 1. Input.
	if err := refuseDTD(raw); err != nil {
		return validated{}, refusal("%v", err)
	}
	if err := checkWellFormed(raw); err != nil {
		return validated{}, refusal("%v", err)
	}
	if err := xrv.Validate(bytes.NewReader(raw)); err != nil {
		return validated{}, refusal("xml does not round-trip: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return validated{}, refusal("parse xml: %v", err)
	}
	root := doc.Root()
	if root == nil {
		return validated{}, refusal("xml has no root element")
	}

	// 2. Structure.
	if !is(root, nsProtocol, "Response") {
		return validated{}, refusal("root element is not a protocol Response")
	}
	if n := countLocal(root, "EncryptedAssertion"); n != 0 {
		return validated{}, refusal("encrypted assertions are not accepted")
	}
	if n := countLocal(root, "Assertion"); n != 1 {
		return validated{}, refusal("want exactly one Assertion, found %d", n)
	}
	assertionEl, err := oneChild(root, nsAssertion, "Assertion")
	if err != nil || assertionEl == nil {
		return validated{}, refusal("the Assertion is not a direct child of the Response in the assertion namespace")
	}
	if err := uniqueIDs(root); err != nil {
		return validated{}, refusal("%v", err)
	}
	respSigs := children(root, nsDSig, "Signature")
	assertSigs := children(assertionEl, nsDSig, "Signature")
	if len(respSigs) > 1 || len(assertSigs) > 1 {
		return validated{}, refusal("more than one Signature on one element")
	}
	if n := countDSigSignatures(root); n != len(respSigs)+len(assertSigs) {
		return validated{}, refusal("a Signature outside the Response and Assertion")
	}

	// 3. Signature. From here on, only verified bytes are read.
	var resp, assertion *etree.Element
	respSigned := len(respSigs) == 1
	switch {
	case respSigned:
		vr, err := verifySignature(root, respSigs[0], x.idp.certs, x.now)
		if err != nil {
			return validated{}, refusal("response signature: %v", err)
		}
		resp = vr
		assertion, err = oneChild(vr, nsAssertion, "Assertion")
		if err != nil || assertion == nil {
			return validated{}, refusal("signed response holds no single Assertion")
		}
		if len(assertSigs) == 1 {
			if _, err := verifySignature(assertionEl, assertSigs[0], x.idp.certs, x.now); err != nil {
				return validated{}, refusal("assertion signature: %v", err)
			}
		}
	case len(assertSigs) == 1:
		resp = root
		va, err := verifySignature(assertionEl, assertSigs[0], x.idp.certs, x.now)
		if err != nil {
			return validated{}, refusal("assertion signature: %v", err)
		}
		assertion = va
	default:
		return validated{}, refusal("neither the Response nor the Assertion is signed")
	}
	if !is(assertion, nsAssertion, "Assertion") {
		return validated{}, refusal("signed element is not an Assertion")
	}

	// 4. Response.
	if err := checkResponse(x, resp, respSigned); err != nil {
		return validated{}, err
	}

	// 5. Assertion.
	return m.checkAssertion(x, assertion)
}

// uniqueIDs refuses a document in which two elements share an ID: with
// duplicates, which one a signature reference means is up to the parser.
func uniqueIDs(root *etree.Element) error {
	seen := make(map[string]bool)
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		for _, a := range el.Attr {
			if a.Space == "" && strings.EqualFold(a.Key, "ID") {
				if seen[a.Value] {
					return errors.New("two elements share an ID")
				}
				seen[a.Value] = true
			}
		}
		for _, c := range el.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// countDSigSignatures counts ds:Signature elements anywhere below root.
func countDSigSignatures(el *etree.Element) int {
	n := 0
	if is(el, nsDSig, "Signature") {
		n++
	}
	for _, c := range el.ChildElements() {
		n += countDSigSignatures(c)
	}
	return n
}

// verifySignature verifies the enveloped signature sigEl (a direct child of
// el) with each of certs in turn and returns the verified element — a fresh
// tree parsed from the exact bytes that were digested. The signature must
// have one Reference, to "#" + el's ID, and use SHA-2 algorithms. KeyInfo
// is removed before verifying: which key verifies is decided by the
// tenant's metadata alone, never by the message.
func verifySignature(el, sigEl *etree.Element, certs []*x509.Certificate, now time.Time) (*etree.Element, error) {
	id := attr(el, "ID")
	if id == "" {
		return nil, errors.New("signed element has no ID")
	}
	signedInfo, err := oneChild(sigEl, nsDSig, "SignedInfo")
	if err != nil || signedInfo == nil {
		return nil, errors.New("want exactly one SignedInfo")
	}
	sm, err := oneChild(signedInfo, nsDSig, "SignatureMethod")
	if err != nil || sm == nil {
		return nil, errors.New("want exactly one SignatureMethod")
	}
	if alg := attr(sm, "Algorithm"); !slices.Contains(allowedSignatureMethods, alg) {
		return nil, fmt.Errorf("signature method %q not accepted", alg)
	}
	refs := children(signedInfo, nsDSig, "Reference")
	if len(refs) != 1 {
		return nil, fmt.Errorf("want exactly one Reference, got %d", len(refs))
	}
	if uri := attr(refs[0], "URI"); uri != "#"+id {
		return nil, errors.New("signature does not reference the signed element")
	}
	dm, err := oneChild(refs[0], nsDSig, "DigestMethod")
	if err != nil || dm == nil {
		return nil, errors.New("want exactly one DigestMethod")
	}
	if alg := attr(dm, "Algorithm"); !slices.Contains(allowedDigestMethods, alg) {
		return nil, fmt.Errorf("digest method %q not accepted", alg)
	}
	if ts, _ := oneChild(refs[0], nsDSig, "Transforms"); ts == nil || !slices.ContainsFunc(children(ts, nsDSig, "Transform"), func(t *etree.Element) bool {
		return attr(t, "Algorithm") == transformEnveloped
	}) {
		return nil, errors.New("signature is not enveloped")
	}

	nsCtx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	detached, err := etreeutils.NSDetatch(nsCtx, el)
	if err != nil {
		return nil, err
	}
	for _, s := range children(detached, nsDSig, "Signature") {
		for _, ki := range children(s, nsDSig, "KeyInfo") {
			s.RemoveChild(ki)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no idp certificate")
	}
	clock := dsig.NewFakeClockAt(now)
	var lastErr error
	for _, cert := range certs {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = clock
		out, err := vc.Validate(detached)
		if err == nil {
			if out == nil {
				return nil, errors.New("no verified element")
			}
			return out, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("not verified by the idp's certificate(s): %w", lastErr)
}

// checkResponse checks the Response element (verified when respSigned).
func checkResponse(x expectation, resp *etree.Element, respSigned bool) error {
	if attr(resp, "Version") != samlVersion {
		return refusal("response version is not 2.0")
	}
	status, err := oneChild(resp, nsProtocol, "Status")
	if err != nil || status == nil {
		return refusal("response has no single Status")
	}
	code, err := oneChild(status, nsProtocol, "StatusCode")
	if err != nil || code == nil {
		return refusal("response has no single StatusCode")
	}
	if v := attr(code, "Value"); v != statusSuccess {
		return refusal("idp answered status %q", v)
	}
	issuer, err := oneChild(resp, nsAssertion, "Issuer")
	if err != nil {
		return refusal("response: %v", err)
	}
	if issuer != nil {
		v, err := text(issuer)
		if err != nil || v != x.idp.entityID {
			return refusal("response Issuer is not the idp's entity id")
		}
	}
	// SAML Bindings §3.5.5.2: a signed message must carry Destination.
	if hasAttr(resp, "Destination") || respSigned {
		if attr(resp, "Destination") != x.acs {
			return refusal("response Destination is not this tenant's ACS URL")
		}
	}
	irt := attr(resp, "InResponseTo")
	if x.requestID == "" {
		if irt != "" {
			return refusal("response InResponseTo set but no sign-in attempt is in progress")
		}
	} else if hasAttr(resp, "InResponseTo") && irt != x.requestID {
		return refusal("response InResponseTo is not this attempt's request")
	}
	if err := checkIssueInstant(x.now, attr(resp, "IssueInstant")); err != nil {
		return refusal("response %v", err)
	}
	return nil
}

// checkIssueInstant refuses a missing IssueInstant, one older than
// MaxIssueDelay plus MaxClockSkew, and one in the future beyond the skew.
func checkIssueInstant(now time.Time, v string) error {
	t, err := parseTime(v)
	if err != nil {
		return fmt.Errorf("IssueInstant: %w", err)
	}
	if now.After(t.Add(MaxIssueDelay + MaxClockSkew)) {
		return errors.New("IssueInstant too old")
	}
	if t.After(now.Add(MaxClockSkew)) {
		return errors.New("IssueInstant in the future")
	}
	return nil
}

// parseTime parses an xs:dateTime as SAML uses it.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("missing")
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errors.New("not a date-time")
	}
	return t, nil
}

// checkAssertion checks the verified assertion and maps it to an identity.
func (m *Method) checkAssertion(x expectation, as *etree.Element) (validated, error) {
	if attr(as, "Version") != samlVersion {
		return validated{}, refusal("assertion version is not 2.0")
	}
	id := attr(as, "ID")
	if id == "" {
		return validated{}, refusal("assertion has no ID")
	}
	// Issuer: present (GO-2026-6909 dereferences a missing one) and ours.
	issuer, err := oneChild(as, nsAssertion, "Issuer")
	if err != nil || issuer == nil {
		return validated{}, refusal("assertion has no single Issuer")
	}
	if v, err := text(issuer); err != nil || v != x.idp.entityID {
		return validated{}, refusal("assertion Issuer is not the idp's entity id")
	}
	if err := checkIssueInstant(x.now, attr(as, "IssueInstant")); err != nil {
		return validated{}, refusal("assertion %v", err)
	}

	expires, err := checkConditions(x, as)
	if err != nil {
		return validated{}, err
	}
	nameID, format, scdExpiry, err := checkSubject(x, as)
	if err != nil {
		return validated{}, err
	}
	if scdExpiry.After(expires) {
		expires = scdExpiry
	}
	if err := checkAuthnStatements(x, as); err != nil {
		return validated{}, err
	}
	subject, err := m.nameID.subject(as, nameID, format)
	if err != nil {
		return validated{}, err
	}
	attrs := attributes(as)

	ident := signin.Identity{Issuer: x.idp.entityID, Subject: subject}
	if v := firstValue(attrs, m.emailAttribute); v != "" {
		if e, ok := normEmail(v); ok {
			ident.Email = e
		}
	}
	if ident.Email == "" && format == emailNameIDFormat {
		if e, ok := normEmail(nameID); ok {
			ident.Email = e
		}
	}
	ident.EmailVerified = ident.Email != ""
	for _, n := range []string{"displayName", "name", "cn"} {
		if v := firstValue(attrs, n); v != "" {
			ident.Name = v
			break
		}
	}
	ident.Roles = m.roles.RolesFor(attrs[m.groupsAttribute])
	if m.mfa != nil {
		if ident.AMR, err = m.mfa.confirm(as); err != nil {
			return validated{}, err
		}
	}
	return validated{identity: ident, assertionID: id, expires: expires.Add(MaxClockSkew)}, nil
}

// checkConditions checks the assertion's Conditions (SAML core §2.5) and
// returns its NotOnOrAfter (zero when absent).
func checkConditions(x expectation, as *etree.Element) (time.Time, error) {
	cond, err := oneChild(as, nsAssertion, "Conditions")
	if err != nil || cond == nil {
		return time.Time{}, refusal("assertion has no single Conditions")
	}
	if hasAttr(cond, "NotBefore") {
		t, err := parseTime(attr(cond, "NotBefore"))
		if err != nil {
			return time.Time{}, refusal("Conditions NotBefore: %v", err)
		}
		if t.After(x.now.Add(MaxClockSkew)) {
			return time.Time{}, refusal("assertion not yet valid")
		}
	}
	var notOnOrAfter time.Time
	if hasAttr(cond, "NotOnOrAfter") {
		notOnOrAfter, err = parseTime(attr(cond, "NotOnOrAfter"))
		if err != nil {
			return time.Time{}, refusal("Conditions NotOnOrAfter: %v", err)
		}
		if !x.now.Before(notOnOrAfter.Add(MaxClockSkew)) {
			return time.Time{}, refusal("assertion expired")
		}
	}
	// SAML core §2.5.1.4: every AudienceRestriction must name us; and
	// unlike crewjam we require at least one, or an assertion meant for
	// any SP (another tenant's) would do.
	restrictions := 0
	for _, c := range cond.ChildElements() {
		switch {
		case is(c, nsAssertion, "AudienceRestriction"):
			restrictions++
			ok := false
			for _, aud := range children(c, nsAssertion, "Audience") {
				if v, err := text(aud); err == nil && v == x.entityID {
					ok = true
				}
			}
			if !ok {
				return time.Time{}, refusal("AudienceRestriction does not name this tenant's SP")
			}
		case is(c, nsAssertion, "OneTimeUse"), is(c, nsAssertion, "ProxyRestriction"):
			// OneTimeUse is what the replay cache enforces anyway.
		default:
			// SAML core §2.5.1: a condition we do not understand makes the
			// assertion Indeterminate, which we must not accept.
			return time.Time{}, refusal("unknown condition %s", c.Tag)
		}
	}
	if restrictions == 0 {
		return time.Time{}, refusal("assertion has no AudienceRestriction")
	}
	return notOnOrAfter, nil
}

// checkSubject checks the Subject (SAML Profiles §4.1.4.2) and returns the
// NameID value and format and the latest bearer NotOnOrAfter.
func checkSubject(x expectation, as *etree.Element) (nameID, format string, expires time.Time, err error) {
	subject, err := oneChild(as, nsAssertion, "Subject")
	if err != nil || subject == nil {
		return "", "", time.Time{}, refusal("assertion has no single Subject")
	}
	// GO-2026-6909: NameID is matched with its namespace. A NameID in any
	// other namespace is an attempt to be read by a namespace-blind parser.
	var nameIDs []*etree.Element
	for _, c := range subject.ChildElements() {
		switch {
		case c.Tag == "NameID" && c.NamespaceURI() == nsAssertion:
			nameIDs = append(nameIDs, c)
		case c.Tag == "NameID", c.Tag == "BaseID", c.Tag == "EncryptedID":
			return "", "", time.Time{}, refusal("Subject holds a %s this method does not accept", c.Tag)
		}
	}
	if len(nameIDs) != 1 {
		return "", "", time.Time{}, refusal("Subject has %d NameIDs, want 1", len(nameIDs))
	}
	nameID, err = text(nameIDs[0])
	if err != nil || nameID == "" {
		return "", "", time.Time{}, refusal("empty or malformed NameID")
	}
	if len(nameID) > maxNameIDSize {
		return "", "", time.Time{}, refusal("NameID longer than %d bytes", maxNameIDSize)
	}
	format = attr(nameIDs[0], "Format")

	// Zero bearer confirmations would skip every check below: refuse.
	bearers := 0
	for _, sc := range children(subject, nsAssertion, "SubjectConfirmation") {
		if attr(sc, "Method") != bearerMethod {
			continue
		}
		bearers++
		data, err := oneChild(sc, nsAssertion, "SubjectConfirmationData")
		if err != nil || data == nil {
			return "", "", time.Time{}, refusal("bearer SubjectConfirmation has no single SubjectConfirmationData")
		}
		if attr(data, "Recipient") != x.acs {
			return "", "", time.Time{}, refusal("SubjectConfirmationData Recipient is not this tenant's ACS URL")
		}
		irt := attr(data, "InResponseTo")
		if x.requestID == "" {
			if irt != "" {
				return "", "", time.Time{}, refusal("SubjectConfirmationData InResponseTo set but no sign-in attempt is in progress")
			}
		} else if irt != x.requestID {
			return "", "", time.Time{}, refusal("SubjectConfirmationData InResponseTo is not this attempt's request")
		}
		t, err := parseTime(attr(data, "NotOnOrAfter"))
		if err != nil {
			return "", "", time.Time{}, refusal("SubjectConfirmationData NotOnOrAfter: %v", err)
		}
		if !x.now.Before(t.Add(MaxClockSkew)) {
			return "", "", time.Time{}, refusal("SubjectConfirmationData expired")
		}
		if t.After(expires) {
			expires = t
		}
		if hasAttr(data, "NotBefore") {
			nb, err := parseTime(attr(data, "NotBefore"))
			if err != nil {
				return "", "", time.Time{}, refusal("SubjectConfirmationData NotBefore: %v", err)
			}
			if nb.After(x.now.Add(MaxClockSkew)) {
				return "", "", time.Time{}, refusal("SubjectConfirmationData not yet valid")
			}
		}
	}
	if bearers == 0 {
		return "", "", time.Time{}, refusal("no bearer SubjectConfirmation")
	}
	return nameID, format, expires, nil
}

// checkAuthnStatements requires an AuthnStatement (SAML Profiles §4.1.4.2)
// and refuses one whose SessionNotOnOrAfter has passed.
func checkAuthnStatements(x expectation, as *etree.Element) error {
	stmts := children(as, nsAssertion, "AuthnStatement")
	if len(stmts) == 0 {
		return refusal("assertion has no AuthnStatement")
	}
	for _, s := range stmts {
		if hasAttr(s, "SessionNotOnOrAfter") {
			t, err := parseTime(attr(s, "SessionNotOnOrAfter"))
			if err != nil {
				return refusal("AuthnStatement SessionNotOnOrAfter: %v", err)
			}
			if !x.now.Before(t.Add(MaxClockSkew)) {
				return refusal("idp session expired")
			}
		}
	}
	return nil
}

// attributes collects the assertion's attribute values by Name. Several
// Attribute elements with one Name add up (Keycloak sends one per role).
// Values that are not plain text are skipped.
func attributes(as *etree.Element) map[string][]string {
	out := make(map[string][]string)
	for _, st := range children(as, nsAssertion, "AttributeStatement") {
		for _, a := range children(st, nsAssertion, "Attribute") {
			name := attr(a, "Name")
			if name == "" {
				continue
			}
			for _, v := range children(a, nsAssertion, "AttributeValue") {
				if s, err := text(v); err == nil && s != "" {
					out[name] = append(out[name], s)
				}
			}
		}
	}
	return out
}

func firstValue(attrs map[string][]string, name string) string {
	if vs := attrs[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// normEmail returns v lower-cased when it looks like an address: one @,
// something either side, no spaces or control characters, at most 254
// bytes.
func normEmail(v string) (string, bool) {
	if len(v) > 254 || strings.Count(v, "@") != 1 {
		return "", false
	}
	local, domain, _ := strings.Cut(v, "@")
	if local == "" || domain == "" || !strings.Contains(domain, ".") {
		return "", false
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return "", false
		}
	}
	return strings.ToLower(v), true
}
