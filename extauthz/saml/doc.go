// Package saml is the SAML 2.0 sign-in method (type: saml) for tenantgate:
// Web Browser SSO with an HTTP-Redirect AuthnRequest and an HTTP-POST
// Response at /_auth/saml/acs (SAML Profiles §4.1).
//
// Each tenant is its own service provider: its entity id is the endpoint's
// /_auth/saml/metadata URL, its ACS URL the endpoint's /_auth/saml/acs, and
// it signs AuthnRequests with its own RSA key (tenants.SAMLKey, made by
// NewSPKey and sealed under the master key). A tenant trusts only the
// certificates in its own IdP's metadata.
//
// crewjam/saml builds the SP metadata and the AuthnRequests. Responses are
// NOT validated by crewjam's ServiceProvider.ParseResponse: v0.5.1 accepts an
// assertion without AudienceRestriction, skips InResponseTo and Recipient
// when there are zero SubjectConfirmations, keeps no replay cache, and is
// affected by GO-2026-6909 (nil dereference on a signed assertion without
// Issuer; NameID matched without its namespace), for which no fixed release
// exists. HandleResponse therefore never calls crewjam's response parsing
// or unmarshals a response into crewjam's types. It does every check itself,
// in this order, each refusal wrapping ErrInvalidResponse:
//
//  1. size of the form value, base64, size after decoding; DOCTYPE and
//     ENTITY refused on the raw bytes; well-formed XML with bounded depth
//     (encoding/xml, then the xml round-trip validator, then etree); all of
//     it under recover(), so a panic in a library is a refusal;
//  2. structure: the root is a protocol Response; exactly one element named
//     Assertion anywhere in the document, in the assertion namespace and a
//     direct child of the Response (CVE-2022-41912, XML signature wrapping);
//     no EncryptedAssertion; no two elements with the same ID;
//  3. signature (goxmldsig ≥ 1.6.0): an enveloped ds:Signature that is a
//     direct child of the Response or of the Assertion and references that
//     element's ID, verified against each of this tenant's IdP certificates
//     in turn with KeyInfo removed first (so a certificate an attacker puts
//     in KeyInfo plays no part); SHA-1 signature and digest methods refused.
//     Everything after this step reads the element goxmldsig returns — the
//     bytes that were actually signed — never the posted tree;
//  4. the Response: Status Success, Issuer (if present) equal to the IdP
//     entity id, Destination equal to the ACS URL (required when the
//     Response is signed), InResponseTo equal to the attempt's request id;
//  5. the Assertion: Issuer present and equal to the IdP entity id (checked
//     before anything dereferences it); IssueInstant not older than
//     MaxIssueDelay plus MaxClockSkew; Conditions NotBefore/NotOnOrAfter
//     within MaxClockSkew; at least one AudienceRestriction, every one of
//     which names this endpoint's SP entity id; at least one bearer
//     SubjectConfirmation, and every bearer one with Recipient equal to the
//     ACS URL, NotOnOrAfter present and not past, and InResponseTo equal to
//     the request id (absent only for an enabled IdP-initiated sign-in);
//     exactly one NameID in the assertion namespace and none in any other
//     (GO-2026-6909), its value the concatenation of all its text, so a
//     comment cannot truncate it (CVE-2017-11427 class);
//  6. the assertion ID is recorded with ReplayCache.UseAssertionID until the
//     assertion expires; a second use is refused.
//
// The identity is (IdP entity id, NameID), the NameID checked against the
// method's nameIDFormat (persistent by default; never transient), or with
// subjectAttribute (IdP entity id, that attribute's one value): see
// nameIDRule. The SP metadata states the format and the AuthnRequest's
// NameIDPolicy asks for it. Email comes from the configured
// attribute or an emailAddress-format NameID, and is marked verified: the
// tenant chose this IdP, and identities never cross tenants.
package saml
