package keycloak

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

type realmUser struct {
	Username      string   `json:"username"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"emailVerified"`
	FirstName     string   `json:"firstName"`
	LastName      string   `json:"lastName"`
	Groups        []string `json:"groups"`
	Credentials   []struct {
		Type, Value string
		Temporary   bool
	} `json:"credentials"`
}

// realmRep is the part of Keycloak's RealmRepresentation the fixtures
// promise.
type realmRep struct {
	Realm          string        `json:"realm"`
	Enabled        bool          `json:"enabled"`
	PasswordPolicy string        `json:"passwordPolicy"`
	Users          []realmUser   `json:"users"`
	Clients        []realmClient `json:"clients"`
}

type realmClient struct {
	ClientID                  string            `json:"clientId"`
	Protocol                  string            `json:"protocol"`
	Secret                    string            `json:"secret"`
	PublicClient              bool              `json:"publicClient"`
	DirectAccessGrantsEnabled bool              `json:"directAccessGrantsEnabled"`
	ImplicitFlowEnabled       bool              `json:"implicitFlowEnabled"`
	RedirectURIs              []string          `json:"redirectUris"`
	Attributes                map[string]string `json:"attributes"`
}

func readRealm(t *testing.T, name string) realmRep {
	t.Helper()
	data, err := fs.ReadFile(RealmFiles(), name+".json")
	if err != nil {
		t.Fatal(err)
	}
	var r realmRep
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	return r
}

// TestRealmFilesMatchFixtures checks, without Keycloak, that the realm files
// say what the exported constants and Users promise, so end-to-end tests can
// rely on the Go values.
func TestRealmFilesMatchFixtures(t *testing.T) {
	byRealm := map[string][]User{}
	for _, u := range Users() {
		byRealm[u.Realm] = append(byRealm[u.Realm], u)
	}
	for _, name := range []string{RealmOIDC, RealmSAML, RealmOAuth} {
		t.Run(name, func(t *testing.T) {
			r := readRealm(t, name)
			if r.Realm != name || !r.Enabled {
				t.Fatalf("realm %q enabled=%v, want %q enabled", r.Realm, r.Enabled, name)
			}
			if r.PasswordPolicy == "" {
				t.Errorf("no passwordPolicy: Keycloak's default hashing costs about a second per user at import and at each login")
			}
			if len(r.Users) != len(byRealm[name]) {
				t.Errorf("%d users in the file, %d in Users()", len(r.Users), len(byRealm[name]))
			}
			for _, want := range byRealm[name] {
				i := slices.IndexFunc(r.Users, func(u realmUser) bool {
					return u.Username == want.Username
				})
				if i < 0 {
					t.Errorf("user %s missing from the file", want.Username)
					continue
				}
				got := r.Users[i]
				if got.Email != want.Email || got.EmailVerified != want.EmailVerified {
					t.Errorf("%s: email %q verified %v, want %q %v", want.Username, got.Email, got.EmailVerified, want.Email, want.EmailVerified)
				}
				// Keycloak's user profile requires first and last name; a
				// user without them is stopped at an "update profile" page.
				if got.FirstName == "" || got.LastName == "" {
					t.Errorf("%s: first and last name are required", want.Username)
				}
				var groups []string
				for _, g := range got.Groups {
					groups = append(groups, strings.TrimPrefix(g, "/"))
				}
				if !equalSets(groups, want.Groups) {
					t.Errorf("%s: groups %v, want %v", want.Username, groups, want.Groups)
				}
				if len(got.Credentials) != 1 || got.Credentials[0].Type != "password" ||
					got.Credentials[0].Value != want.Password || got.Credentials[0].Temporary {
					t.Errorf("%s: want one permanent password credential equal to Users()'s", want.Username)
				}
			}
		})
	}
}

func TestRealmClients(t *testing.T) {
	tests := []struct {
		realm, clientID, secret, protocol string
		redirects                         []string
		attrs                             map[string]string
	}{
		{RealmOIDC, OIDCClientID, OIDCClientSecret, "openid-connect",
			[]string{"${TG_ACME_ORIGIN}/_auth/callback"},
			map[string]string{"pkce.code.challenge.method": "S256"}},
		{RealmOAuth, OAuthClientID, OAuthClientSecret, "openid-connect",
			[]string{"${TG_INITECH_ORIGIN}/_auth/callback"}, nil},
		{RealmSAML, "${TG_GLOBEX_ORIGIN}" + SAMLMetadataPath, "", "saml",
			[]string{"${TG_GLOBEX_ORIGIN}" + SAMLACSPath},
			map[string]string{
				"saml.assertion.signature":         "true",
				"saml.server.signature":            "true",
				"saml_assertion_consumer_url_post": "${TG_GLOBEX_ORIGIN}" + SAMLACSPath,
				"saml_idp_initiated_sso_url_name":  SAMLIdPInitiatedName,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.realm, func(t *testing.T) {
			r := readRealm(t, tc.realm)
			want := 1
			if tc.realm == RealmSAML {
				want = 4 // and the NameID clients, TestRealmNameIDClients
			}
			if len(r.Clients) != want {
				t.Fatalf("%d clients, want %d", len(r.Clients), want)
			}
			c := r.Clients[0]
			if c.ClientID != tc.clientID || c.Secret != tc.secret || c.Protocol != tc.protocol {
				t.Errorf("client %q secret-matches=%v protocol %q", c.ClientID, c.Secret == tc.secret, c.Protocol)
			}
			if c.PublicClient || c.DirectAccessGrantsEnabled || c.ImplicitFlowEnabled {
				t.Errorf("client must be confidential with only the code flow")
			}
			// Exact redirect URIs: no wildcards, which Keycloak matches as
			// prefixes.
			if !slices.Equal(c.RedirectURIs, tc.redirects) {
				t.Errorf("redirect URIs %v, want %v", c.RedirectURIs, tc.redirects)
			}
			for k, v := range tc.attrs {
				if c.Attributes[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, c.Attributes[k], v)
				}
			}
		})
	}
}

// TestRealmNameIDClients: each NameID client of RealmSAML is where
// SAMLNameIDPrefix says and forces the format its name promises.
func TestRealmNameIDClients(t *testing.T) {
	r := readRealm(t, RealmSAML)
	for name, format := range map[string]string{
		SAMLNameIDPersistent: "persistent", SAMLNameIDTransient: "transient", SAMLNameIDUnspecified: "username",
	} {
		origin := "${TG_GLOBEX_ORIGIN}" + SAMLNameIDPrefix(name)
		i := slices.IndexFunc(r.Clients, func(c realmClient) bool { return c.ClientID == origin+SAMLMetadataPath })
		if i < 0 {
			t.Errorf("no client %s", origin+SAMLMetadataPath)
			continue
		}
		c := r.Clients[i]
		if c.Protocol != "saml" || !slices.Equal(c.RedirectURIs, []string{origin + SAMLACSPath}) ||
			c.Attributes["saml_assertion_consumer_url_post"] != origin+SAMLACSPath ||
			c.Attributes["saml_name_id_format"] != format || c.Attributes["saml_force_name_id_format"] != "true" {
			t.Errorf("client %s: %+v", c.ClientID, c)
		}
	}
}
