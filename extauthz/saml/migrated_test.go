package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"

	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// TestMigratedMethodKeepsUnspecifiedAccounts: acme's saml method as the
// last schema-2 release stored it (tenants/boltstore/testdata/49e6b0e)
// reads, once the store has migrated it, as nameIDFormat unspecified: its
// AuthnRequest still asks for no format, and a NameID without a Format,
// the username an IdP sends then, still keys the same account (the
// subject is the NameID, as the release keyed it). Read as persistent, as
// it would be without the migration, the same response is refused.
func TestMigratedMethodKeepsUnspecifiedAccounts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "tenants", "boltstore", "testdata", "49e6b0e", "tenantgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tenantgate.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.Tenant(t.Context(), "acme")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var migrated Config
	if err := stored.Methods[1].DecodeConfig(&migrated); err != nil {
		t.Fatal(err)
	}
	if migrated.NameIDFormat != NameIDUnspecified || migrated.SubjectAttribute != "" {
		t.Fatalf("acme's saml method after the migration: %+v, want nameIDFormat unspecified", migrated)
	}

	for _, tc := range []struct {
		name       string
		format     string
		wantReason string
	}{
		{"migrated", migrated.NameIDFormat, ""},
		{"read as persistent (no migration)", "", reasonNameIDFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openMethod(t, acmeTenant(t, func(e *entry) {
				// The stored method, but for the fixture IdP's metadata.
				cfg := migrated
				cfg.IDPMetadataXML = e.IDPMetadataXML
				cfg.NameIDFormat = tc.format
				e.Config = cfg
			}), nil)

			raw, _, err := m.AuthnRequestURL(context.Background(), acmeAttempt())
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			deflated, _ := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
			inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(inflated); err != nil {
				t.Fatal(err)
			}
			asked := doc.Root().SelectElement("NameIDPolicy").SelectAttrValue("Format", "")
			if want := map[bool]string{true: "", false: persistentNameIDFormat}[tc.wantReason == ""]; asked != want {
				t.Errorf("AuthnRequest asks for NameID format %q, want %q", asked, want)
			}

			id, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(),
				post(docBytes(t, build(t, resp{nameID: "alice", nameIDFormat: "-", attrs: map[string][]string{"mail": {"alice@acme.test"}}}))))
			if tc.wantReason == "" {
				if err != nil || id.Subject != "alice" || id.Issuer != acmeIDP {
					t.Errorf("sign-in = (%q, %q), %v; want alice's account, keyed by the NameID", id.Issuer, id.Subject, err)
				}
				return
			}
			if err == nil {
				t.Errorf("signed in as %+v, want refused (%s)", id, tc.wantReason)
			}
		})
	}
}
