package keycloak

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// page returns a response carrying testdata/name as if fetched from rawURL.
// The pages were captured from Keycloak 26.0.8 (login.ftl of the keycloak.v2
// theme and the SAML HTTP-POST binding page) with curl.
func page(t *testing.T, name, rawURL string) *http.Response {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Response{StatusCode: http.StatusOK, Body: f, Request: &http.Request{URL: u}}
}

func TestReadForm(t *testing.T) {
	const kc = "http://127.0.0.1:54999/realms/acme-oidc/protocol/openid-connect/auth?client_id=tenantgate"
	tests := []struct {
		name       string
		file       string
		match      func(Form) bool
		wantAction string // prefix
		wantMethod string
		wantValues map[string]string
		wantErr    string // substring; also means errors.Is(err, ErrNoForm)
	}{
		{
			name: "login form", file: "login.html", match: IsLoginForm,
			wantAction: "http://127.0.0.1:54999/realms/acme-oidc/login-actions/authenticate?session_code=",
			wantMethod: http.MethodPost,
			wantValues: map[string]string{"username": "", "password": "", "credentialId": ""},
		},
		{
			name: "wrong password shows the form again", file: "login-wrong-password.html", match: IsLoginForm,
			wantAction: "http://127.0.0.1:54999/realms/acme-oidc/login-actions/authenticate?session_code=",
			wantMethod: http.MethodPost,
			wantValues: map[string]string{"username": "alice"},
		},
		{
			name: "saml post binding", file: "saml-post.html",
			match:      func(f Form) bool { return f.Values.Has("SAMLResponse") },
			wantAction: "http://globex.app.test:18443/_auth/saml/acs",
			wantMethod: http.MethodPost,
			wantValues: map[string]string{"RelayState": "relay-capture"},
		},
		{
			name: "no login form on the saml post page", file: "saml-post.html", match: IsLoginForm,
			wantErr: "no matching form",
		},
		{
			name: "error message is reported", file: "login-wrong-password.html",
			match:   func(f Form) bool { return f.Values.Has("SAMLResponse") },
			wantErr: "Invalid username or password.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadForm(page(t, tc.file, kc), tc.match)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrNoForm) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrNoForm containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(f.Action.String(), tc.wantAction) || f.Method != tc.wantMethod {
				t.Errorf("form %s %s, want %s %s…", f.Method, f.Action, tc.wantMethod, tc.wantAction)
			}
			// HTML entities in the action are decoded: &amp; separates
			// query parameters.
			if f.Action.RawQuery != "" && strings.Contains(f.Action.RawQuery, "amp;") {
				t.Errorf("action query not unescaped: %s", f.Action.RawQuery)
			}
			for k, v := range tc.wantValues {
				if !f.Values.Has(k) || f.Values.Get(k) != v {
					t.Errorf("value %s = %q (present %v), want %q", k, f.Values.Get(k), f.Values.Has(k), v)
				}
			}
		})
	}
}

func TestSubmitLoginPostsCredentials(t *testing.T) {
	var got url.Values
	client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		got, _ = url.ParseQuery(string(body))
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
			!strings.HasPrefix(r.URL.Path, "/realms/acme-oidc/login-actions/authenticate") ||
			r.URL.Query().Get("client_id") != "tenantgate" {
			t.Errorf("request %s %s %s", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		return &http.Response{StatusCode: http.StatusFound, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	resp, err := SubmitLogin(t.Context(), client, page(t, "login.html", "http://127.0.0.1:54999/x"), "alice", "pw & more")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("username") != "alice" || got.Get("password") != "pw & more" || !got.Has("credentialId") {
		t.Errorf("posted %v", got)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
