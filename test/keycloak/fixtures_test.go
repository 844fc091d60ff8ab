package keycloak

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strconv"
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
		Type, Value                string
		Temporary                  bool
		SecretData, CredentialData string
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
				creds := 1
				if want.OTPSecret != "" {
					creds = 2
				}
				if len(got.Credentials) != creds || got.Credentials[0].Type != "password" ||
					got.Credentials[0].Value != want.Password || got.Credentials[0].Temporary {
					t.Errorf("%s: want one permanent password credential equal to Users()'s, first", want.Username)
				}
				if want.OTPSecret != "" && len(got.Credentials) == 2 {
					checkOTPCredential(t, want, got.Credentials[1].Type, got.Credentials[1].SecretData, got.Credentials[1].CredentialData)
				}
			}
		})
	}
}

// checkOTPCredential: the user's second credential is a TOTP one whose
// secret is Users()'s, with the parameters every authenticator app and
// extauthz/otp use.
func checkOTPCredential(t *testing.T, want User, typ, secretData, credentialData string) {
	t.Helper()
	var secret struct{ Value string }
	var data struct {
		SubType        string
		Digits, Period int
		Algorithm      string
		SecretEncoding string
	}
	if typ != "otp" || json.Unmarshal([]byte(secretData), &secret) != nil || json.Unmarshal([]byte(credentialData), &data) != nil ||
		secret.Value != want.OTPSecret || data.SubType != "totp" || data.Digits != 6 || data.Period != 30 ||
		data.Algorithm != "HmacSHA1" || data.SecretEncoding != "BASE32" {
		t.Errorf("%s: want a TOTP credential (SHA-1, 6 digits, 30 s) with Users()'s base32 secret", want.Username)
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
			switch tc.realm {
			case RealmSAML:
				want = 4 // and the NameID clients, TestRealmNameIDClients
			case RealmOIDC:
				want = 2 // and OIDCMFAClientID, TestRealmMFAClient
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

// TestRealmMFAClient: OIDCMFAClientID redirects where OIDCClientID does,
// signs in through the flow "password and otp", whose executions name pwd
// and otp, and puts amr in the ID token.
func TestRealmMFAClient(t *testing.T) {
	data, err := fs.ReadFile(RealmFiles(), RealmOIDC+".json")
	if err != nil {
		t.Fatal(err)
	}
	type mapper struct {
		ProtocolMapper string
		Config         map[string]string
	}
	type client struct {
		ClientID, Secret                   string
		RedirectURIs                       []string `json:"redirectUris"`
		AuthenticationFlowBindingOverrides map[string]string
		ProtocolMappers                    []mapper
	}
	var r struct {
		AuthenticatorConfig []struct {
			Alias  string
			Config map[string]string
		}
		AuthenticationFlows []struct {
			ID                       string
			AuthenticationExecutions []struct {
				Authenticator, AuthenticatorConfig, Requirement string
			}
		}
		Clients []client
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.Clients, func(c client) bool { return c.ClientID == OIDCMFAClientID })
	if i < 0 {
		t.Fatalf("no client %s", OIDCMFAClientID)
	}
	c := r.Clients[i]
	if c.Secret != OIDCMFAClientSecret || !slices.Equal(c.RedirectURIs, []string{"${TG_ACME_ORIGIN}/_auth/callback"}) {
		t.Errorf("client %s: secret matches %v, redirect URIs %v", c.ClientID, c.Secret == OIDCMFAClientSecret, c.RedirectURIs)
	}
	if !slices.ContainsFunc(c.ProtocolMappers, func(m mapper) bool {
		return m.ProtocolMapper == "oidc-amr-mapper" && m.Config["id.token.claim"] == "true"
	}) {
		t.Error("no amr mapper into the ID token")
	}
	refs := map[string]string{}
	for _, ac := range r.AuthenticatorConfig {
		refs[ac.Alias] = ac.Config["default.reference.value"]
		// Keycloak names a reference in amr only while the execution's
		// time plus maxAge has not passed: 0 drops amr whenever the code
		// exchange lands a second after the sign-in.
		if age, err := strconv.Atoi(ac.Config["default.reference.maxAge"]); err != nil || age < 60 {
			t.Errorf("authenticator config %s: maxAge %q, want 60 s or more", ac.Alias, ac.Config["default.reference.maxAge"])
		}
	}
	var got []string
	for _, f := range r.AuthenticationFlows {
		if f.ID != c.AuthenticationFlowBindingOverrides["browser"] {
			continue
		}
		for _, e := range f.AuthenticationExecutions {
			if e.Requirement != "REQUIRED" {
				t.Errorf("%s: %s, want REQUIRED", e.Authenticator, e.Requirement)
			}
			got = append(got, e.Authenticator+"="+refs[e.AuthenticatorConfig])
		}
	}
	if want := []string{"auth-username-password-form=pwd", "auth-otp-form=otp"}; !slices.Equal(got, want) {
		t.Errorf("browser flow of %s: %v, want %v", OIDCMFAClientID, got, want)
	}
}
