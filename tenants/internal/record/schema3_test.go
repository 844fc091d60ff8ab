package record

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestUpgradeToSchema3: a saml method keyed by its NameID that states no
// nameIDFormat gets "unspecified", where the saml package encodes it;
// every other method, and a saml method that states a format or is keyed
// by subjectAttribute, keeps its bytes. A saml Config schema 2 could not
// have written is corrupt.
func TestUpgradeToSchema3(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     string
		config  string
		want    string // "" when unchanged
		corrupt bool
	}{
		{"no format", "saml", `{"idpMetadataURL":"https://idp.example/m","allowIDPInitiated":true}`,
			`{"idpMetadataURL":"https://idp.example/m","nameIDFormat":"unspecified","allowIDPInitiated":true}`, false},
		{"every older field", "saml", `{"groupsClaim":"g","idpMetadataXML":"\u003cx/\u003e","emailAttribute":"mail"}`,
			`{"groupsClaim":"g","idpMetadataXML":"\u003cx/\u003e","emailAttribute":"mail","nameIDFormat":"unspecified"}`, false},
		{"no config at all", "saml", ``, `{"nameIDFormat":"unspecified"}`, false},
		{"persistent stated", "saml", `{"idpMetadataURL":"https://idp.example/m","nameIDFormat":"persistent"}`, "", false},
		{"unspecified stated", "saml", `{"idpMetadataURL":"https://idp.example/m","nameIDFormat":"unspecified"}`, "", false},
		{"keyed by an attribute", "saml", `{"idpMetadataURL":"https://idp.example/m","subjectAttribute":"uid"}`, "", false},
		{"oidc", "oidc", `{"issuer":"https://idp.example"}`, "", false},
		{"password", "password", ``, "", false},
		{"unknown saml field", "saml", `{"idpMetadataURL":"https://idp.example/m","issuer":"x"}`, "", true},
		{"not an object", "saml", `[1]`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Tenant{ID: "acme", Methods: []Method{{Type: "password"}, {Type: tc.typ, Config: json.RawMessage(tc.config)}}}
			changed, err := UpgradeToSchema3(&r)
			if tc.corrupt {
				if !errors.Is(err, tenants.ErrCorrupt) {
					t.Fatalf("UpgradeToSchema3 = %v, want tenants.ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				want = tc.config
			}
			if changed != (tc.want != "") || string(r.Methods[1].Config) != want || r.Methods[0].Config != nil {
				t.Errorf("UpgradeToSchema3: changed %v, config %s; want changed %v, config %s", changed, r.Methods[1].Config, tc.want != "", want)
			}
		})
	}
}
