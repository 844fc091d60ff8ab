package saml

import (
	"fmt"

	"github.com/beevik/etree"

	"github.com/tenantgate/tenantgate/extauthz/signin"
)

// NameID formats as a tenant file names them (nameIDFormat).
const (
	NameIDPersistent   = "persistent"
	NameIDEmailAddress = "emailAddress"
	NameIDUnspecified  = "unspecified"
	NameIDTransient    = "transient"
)

// NameID format identifiers (SAML core §8.3). A NameID without Format is
// unspecified (SAML core §2.2.2), as is the SAML 1.0 spelling.
const (
	persistentNameIDFormat    = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	transientNameIDFormat     = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	unspecifiedNameIDFormat   = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	unspecified10NameIDFormat = "urn:oasis:names:tc:SAML:1.0:nameid-format:unspecified"
)

// Log reasons of the NameID refusals (signin.Refusal).
const (
	reasonTransientNameID  = "sso_saml_transient_nameid"
	reasonNameIDFormat     = "sso_saml_nameid_format"
	reasonSubjectAttribute = "sso_saml_subject_attribute"
)

// nameIDFormatURI returns the format identifier of a tenant file's
// nameIDFormat: persistent for "" (a method stored before the field
// existed included), false for a name it does not know.
func nameIDFormatURI(name string) (string, bool) {
	switch name {
	case "", NameIDPersistent:
		return persistentNameIDFormat, true
	case NameIDEmailAddress:
		return emailNameIDFormat, true
	case NameIDUnspecified:
		return unspecifiedNameIDFormat, true
	case NameIDTransient:
		return transientNameIDFormat, true
	}
	return "", false
}

// canonicalNameIDFormat is a response's NameID Format as compared: absent
// and the SAML 1.0 unspecified are the SAML 1.1 unspecified.
func canonicalNameIDFormat(format string) string {
	if format == "" || format == unspecified10NameIDFormat {
		return unspecifiedNameIDFormat
	}
	return format
}

// nameIDFormatName is format's name for the log and the page: its short
// name when it is one of nameIDFormat's, else "another format" (the page)
// or the identifier quoted and cut short (the log).
func nameIDFormatName(format string, forLog bool) string {
	switch canonicalNameIDFormat(format) {
	case persistentNameIDFormat:
		return NameIDPersistent
	case emailNameIDFormat:
		return NameIDEmailAddress
	case unspecifiedNameIDFormat:
		return NameIDUnspecified
	case transientNameIDFormat:
		return NameIDTransient
	}
	if forLog {
		return fmt.Sprintf("%.128q", format)
	}
	return "another format"
}

// nameIDRule decides what keys the account of a verified assertion: the
// NameID, or with subjectAttribute that attribute's one value.
//
//   - Keyed by the NameID: a transient NameID is refused (it is new at
//     every sign-in, so every sign-in would make a new account); a NameID
//     of another format than format is refused, so a change of format at
//     the IdP cannot silently give everyone new accounts (or, worse, let
//     one format's value reach the account another format's value made).
//     format unspecified accepts every format but transient.
//   - Keyed by subjectAttribute: the attribute must occur in the signed
//     assertion with exactly one AttributeValue in all (over every
//     AttributeStatement and every Attribute of that Name), plain
//     non-empty text of at most maxNameIDSize bytes; anything else is
//     refused. The NameID then keys nothing, and its format is not checked.
type nameIDRule struct {
	format           string // identifier, from nameIDFormatURI
	subjectAttribute string
}

// subject returns the account key of assertion as, whose NameID is nameID
// of format, or a signin.Refusal wrapping ErrInvalidResponse.
func (r nameIDRule) subject(as *etree.Element, nameID, format string) (string, error) {
	if r.subjectAttribute != "" {
		v, err := oneAttributeValue(as, r.subjectAttribute)
		if err != nil {
			return "", &signin.Refusal{
				Reason: reasonSubjectAttribute,
				Message: fmt.Sprintf("The identity provider's answer does not carry exactly one value of the attribute %q, which this organisation's SAML sign-in identifies people by (subjectAttribute). "+
					"Your administrator must have the identity provider send it, once, for every person.", r.subjectAttribute),
				Err: refusal("subjectAttribute %q: %v", r.subjectAttribute, err),
			}
		}
		return v, nil
	}
	got := canonicalNameIDFormat(format)
	switch {
	case got == transientNameIDFormat:
		return "", &signin.Refusal{
			Reason: reasonTransientNameID,
			Message: "The identity provider sent a transient Name ID, which is new at every sign-in and so cannot identify an account. " +
				"Your administrator must set the identity provider to send a persistent Name ID (Keycloak: the client's Name ID format persistent, Force name ID format On).",
			Err: refusal("NameID format is transient, which never keys an account: send persistent, or set subjectAttribute"),
		}
	case r.format == unspecifiedNameIDFormat, got == r.format:
		return nameID, nil
	}
	want := nameIDFormatName(r.format, false)
	return "", &signin.Refusal{
		Reason: reasonNameIDFormat,
		Message: fmt.Sprintf("The identity provider sent a Name ID of format %s, but this organisation's SAML sign-in expects %s. "+
			"Your administrator must set the identity provider's Name ID format to %s (Keycloak: the client's Name ID format, Force name ID format On).",
			nameIDFormatName(format, false), want, want),
		Err: refusal("NameID format %s, but the method's nameIDFormat is %s", nameIDFormatName(format, true), want),
	}
}

// oneAttributeValue returns the one value of the attributes called name
// in assertion as (see nameIDRule).
func oneAttributeValue(as *etree.Element, name string) (string, error) {
	var vals []*etree.Element
	for _, st := range children(as, nsAssertion, "AttributeStatement") {
		for _, a := range children(st, nsAssertion, "Attribute") {
			if attr(a, "Name") != name {
				continue
			}
			for _, c := range a.ChildElements() {
				// A value in another namespace is counted, never
				// skipped: it is one more value.
				if c.Tag == "AttributeValue" {
					vals = append(vals, c)
				}
			}
		}
	}
	if len(vals) != 1 {
		return "", fmt.Errorf("%d values, want exactly 1", len(vals))
	}
	if vals[0].NamespaceURI() != nsAssertion {
		return "", fmt.Errorf("value not in the assertion namespace")
	}
	v, err := text(vals[0])
	switch {
	case err != nil:
		return "", fmt.Errorf("value is not plain text")
	case v == "":
		return "", fmt.Errorf("empty value")
	case len(v) > maxNameIDSize:
		return "", fmt.Errorf("value longer than %d bytes", maxNameIDSize)
	}
	return v, nil
}
