package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/tenants"
)

// Schema 3 changes what a saml method's Config means, not how records are
// laid out: from schema 3 on, a saml method without "nameIDFormat" asks for,
// and accepts only, persistent NameIDs. Before (schema 2 and earlier),
// tenantgate asked for no format and keyed accounts by whatever NameID the
// IdP sent. Read as persistent, such a method would make the AuthnRequest
// ask for persistent, and an IdP that follows the request (Keycloak with
// "Force name ID format" Off) would answer with new NameIDs: every person a
// new account, silently. So the move to schema 3 writes the format those
// methods had, unspecified, into their Config (UpgradeToSchema3), in the
// same write as the schema record. Tenant records keep TenantVersion: their
// layout does not change.

// samlConfigV2 is a saml method's Config as schema 2 stored it, in the
// order the saml package encodes it (so that the upgraded bytes are the
// ones it would write). NameIDFormat and SubjectAttribute appeared late in
// schema 2 (issue 12); every other field is older. It is frozen here: the
// migration describes what a schema-2 store holds, whatever the saml
// package's Config becomes.
type samlConfigV2 struct {
	GroupsClaim       string `json:"groupsClaim,omitempty"`
	IDPMetadataURL    string `json:"idpMetadataURL,omitempty"`
	IDPMetadataXML    string `json:"idpMetadataXML,omitempty"`
	EmailAttribute    string `json:"emailAttribute,omitempty"`
	NameIDFormat      string `json:"nameIDFormat,omitempty"`
	SubjectAttribute  string `json:"subjectAttribute,omitempty"`
	AllowIDPInitiated bool   `json:"allowIDPInitiated,omitempty"`
}

// nameIDFormatBeforeSchema3 is the format a saml method stored before
// schema 3 without nameIDFormat had: unspecified (any format accepted). The
// one difference from then: a transient NameID, which schema 3 refuses
// under unspecified too (it is new at every sign-in, so every sign-in had
// made a new account).
const nameIDFormatBeforeSchema3 = "unspecified"

// UpgradeToSchema3 rewrites, in r (a tenant record of a schema-2 store, or
// one just upgraded from schema 1), the Config of every saml method that is
// keyed by its NameID (no subjectAttribute) and states no nameIDFormat so
// that it states "unspecified", the format it had; it reports whether
// anything changed. A method keyed by subjectAttribute is left alone: its
// NameID keys nothing. A saml Config that does not decode as schema 2 wrote
// it is an error wrapping tenants.ErrCorrupt.
func UpgradeToSchema3(r *Tenant) (bool, error) {
	changed := false
	for i, m := range r.Methods {
		if m.Type != tenants.MethodSAML {
			continue
		}
		var c samlConfigV2
		if err := decodeStrict(m.Config, &c); err != nil {
			return false, fmt.Errorf("%w: tenant %q: methods[%d] (saml): config: %w", tenants.ErrCorrupt, r.ID, i, err)
		}
		if c.NameIDFormat != "" || c.SubjectAttribute != "" {
			continue
		}
		c.NameIDFormat = nameIDFormatBeforeSchema3
		cfg, err := json.Marshal(c)
		if err != nil {
			return false, fmt.Errorf("tenant %q: methods[%d] (saml): config: %w", r.ID, i, err)
		}
		r.Methods[i].Config = cfg
		changed = true
	}
	return changed, nil
}

// decodeStrict decodes one JSON object into v, refusing fields v does not
// have and trailing data; empty data leaves v as it is.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}
