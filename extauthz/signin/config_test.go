package signin

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// clientConfig is a stand-in Config with a client secret, needed once it
// has a client id, and not offered without one.
type clientConfig struct {
	ClientID     string `json:"clientID,omitempty" yaml:"clientID,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty" yaml:"clientSecret,omitempty"`
	Realm        string `json:"realm,omitempty" yaml:"realm,omitempty"`
}

func (*clientConfig) Validate(tenants.Method, *tenants.MethodCheck) {}
func (c *clientConfig) TakeClientSecret() string {
	s := c.ClientSecret
	c.ClientSecret = ""
	return s
}
func (c *clientConfig) NeedsClientSecret() bool { return c.ClientID != "" }
func (c *clientConfig) NotOffered() string {
	if c.ClientID == "" {
		return "(client) has no clientID"
	}
	return ""
}

// plainConfig is a stand-in Config without secrets.
type plainConfig struct {
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
}

func (*plainConfig) Validate(tenants.Method, *tenants.MethodCheck) {}

var testTypes = tenants.MethodTypes{
	{Name: "client", NewConfig: func() tenants.MethodConfig { return &clientConfig{} }},
	{Name: "plain", NewConfig: func() tenants.MethodConfig { return &plainConfig{} }},
}

func testSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	s, err := seal.NewSealer(bytes.Repeat([]byte{3}, seal.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSealMethods: a plaintext client secret leaves the Config and is
// sealed for the tenant; without one the stored entry's sealed secret is
// kept; an entry that needs a secret and has none is a FieldError wrapping
// ErrSecretRequired; the Config is stored as its type encodes it.
func TestSealMethods(t *testing.T) {
	s := testSealer(t)
	sealMethod := SealMethods(s, testTypes)
	const tid = "tenant-1"

	m, err := sealMethod(tenants.Method{Type: "client", Config: []byte(`{"realm":"r","clientSecret":"hunter2","clientID":"c"}`),
		Sealed: []byte("forged")}, nil, tid)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Config) != `{"clientID":"c","realm":"r"}` {
		t.Errorf("Config = %s, want the type's encoding without the secret", m.Config)
	}
	if pt, err := seal.OpenSecret(s, m.Sealed, tid); err != nil || string(pt) != "hunter2" {
		t.Errorf("sealed secret opens to %q, %v", pt, err)
	}
	if _, err := seal.OpenSecret(s, m.Sealed, "tenant-2"); err == nil {
		t.Error("the sealed secret opens for another tenant")
	}

	kept, err := sealMethod(tenants.Method{Type: "client", Config: []byte(`{"clientID":"c"}`)}, &m, tid)
	if err != nil || !bytes.Equal(kept.Sealed, m.Sealed) {
		t.Errorf("re-applied without a secret: sealed %q, %v; want the stored one kept", kept.Sealed, err)
	}

	_, err = sealMethod(tenants.Method{Type: "client", Config: []byte(`{"clientID":"c"}`)}, nil, tid)
	var fe *tenants.FieldError
	if !errors.Is(err, tenants.ErrSecretRequired) || !errors.As(err, &fe) || fe.Field != "clientSecret" {
		t.Errorf("a client without a secret: %v; want a clientSecret FieldError wrapping ErrSecretRequired", err)
	}
	if bare, err := sealMethod(tenants.Method{Type: "client", Config: []byte(`{"realm":"r"}`)}, nil, tid); err != nil || bare.Sealed != nil {
		t.Errorf("an entry without a client id: %+v, %v", bare, err)
	}

	plain, err := sealMethod(tenants.Method{Type: "plain", Config: []byte(`{"url":"u"}`), Sealed: []byte("forged")}, nil, tid)
	if err != nil || plain.Sealed != nil || string(plain.Config) != `{"url":"u"}` {
		t.Errorf("a type without secrets: %+v, %v", plain, err)
	}
	if _, err := sealMethod(tenants.Method{Type: "plain", Config: []byte(`{"clientSecret":"hunter2"}`)}, nil, tid); err == nil ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a field the type lacks: %v", err)
	}
	if _, err := sealMethod(tenants.Method{Type: "ldap"}, nil, tid); err == nil {
		t.Error("an unknown type was sealed")
	}
}

func TestNotOffered(t *testing.T) {
	for _, tc := range []struct {
		m    tenants.Method
		want string
	}{
		{tenants.Method{Type: "client", Config: []byte(`{"realm":"r"}`)}, "(client) has no clientID"},
		{tenants.Method{Type: "client", Config: []byte(`{"clientID":"c"}`)}, ""},
		{tenants.Method{Type: "plain"}, ""},
		{tenants.Method{Type: "unknown"}, ""},
		{tenants.Method{Type: "client", Config: []byte(`{"colour":"red"}`)}, ""},
	} {
		if got := NotOffered(testTypes, tc.m); got != tc.want {
			t.Errorf("NotOffered(%s %s) = %q, want %q", tc.m.Type, tc.m.Config, got, tc.want)
		}
	}
}

func TestEntryAndClientSecret(t *testing.T) {
	s := testSealer(t)
	sealed, err := seal.SealSecret(s, []byte("hunter2"), "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	tn := &tenants.Tenant{ID: "acme", InternalID: "tenant-1", Methods: []tenants.Method{
		{Type: "plain"}, {Type: "client", Config: []byte(`{"clientID":"c"}`), Sealed: sealed},
	}}
	var c clientConfig
	m, err := Entry(tn, 1, "client", &c)
	if err != nil || c.ClientID != "c" {
		t.Fatalf("Entry = %+v, %v", c, err)
	}
	if secret, err := OpenClientSecret(s, m, c.ClientSecret, tn.InternalID); err != nil || secret != "hunter2" {
		t.Errorf("OpenClientSecret = %q, %v", secret, err)
	}
	for _, tc := range []struct {
		name  string
		t     *tenants.Tenant
		index int
		typ   string
	}{
		{"no tenant", nil, 0, "plain"},
		{"index out of range", tn, 2, "plain"},
		{"another type", tn, 0, "client"},
		{"no internal id", &tenants.Tenant{Methods: tn.Methods}, 0, "plain"},
		{"a field the Config lacks", &tenants.Tenant{InternalID: "x", Methods: []tenants.Method{{Type: "plain", Config: []byte(`{"realm":"r"}`)}}}, 0, "plain"},
	} {
		if _, err := Entry(tc.t, tc.index, tc.typ, &plainConfig{}); err == nil {
			t.Errorf("%s: Entry accepted it", tc.name)
		}
	}
	if _, err := OpenClientSecret(s, tenants.Method{}, "plaintext", "tenant-1"); err == nil {
		t.Error("a plaintext secret was used")
	}
	if _, err := OpenClientSecret(s, m, "", "tenant-2"); err == nil {
		t.Error("a secret sealed for another tenant opened")
	}
	if secret, err := OpenClientSecret(s, tenants.Method{}, "", "tenant-1"); err != nil || secret != "" {
		t.Errorf("a public client: %q, %v", secret, err)
	}
}
