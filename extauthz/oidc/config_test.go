package oidc

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestPrompt: a method's prompt reaches the IdP with every authentication
// request; without one there is no prompt parameter; a tenant file may set
// only the OIDC values, and tenants get prints it back.
func TestPrompt(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	for _, prompt := range []string{"", "none", "login", "consent", "select_account"} {
		me := e.oidcMethod(t, p)
		c := config(t, me)
		c.Prompt = prompt
		if err := me.EncodeConfig(c); err != nil {
			t.Fatal(err)
		}
		raw, err := e.open(t, tenant(me), 1).AuthURL(context.Background(), newAttempt(1))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(raw)
		if got, has := u.Query().Get("prompt"), u.Query().Has("prompt"); got != prompt || has != (prompt != "") {
			t.Errorf("prompt %q: the authorization URL has prompt %q (present %v)", prompt, got, has)
		}
	}

	types := tenants.MethodTypes{{Name: Type, NewConfig: NewConfig}}
	file := func(prompt string) string {
		return "tenants:\n  - id: acme\n    methods:\n      - type: oidc\n        issuer: https://idp.example/\n        clientID: tg\n        prompt: " + prompt + "\n"
	}
	ts, err := tenants.ParseFile([]byte(file("select_account")), types)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenants.Validate(ts, tenants.ValidateOptions{Methods: types}); err != nil {
		t.Fatalf("prompt select_account: %v", err)
	}
	out, err := tenants.MarshalFile(ts, "yaml")
	if err != nil || !strings.HasSuffix(string(out), "        clientID: tg\n        prompt: select_account\n") {
		t.Errorf("tenants get prints:\n%s(%v)", out, err)
	}
	for _, bad := range []string{"always", "LOGIN", "login consent", "none "} {
		ts, err := tenants.ParseFile([]byte(file(`"`+bad+`"`)), types)
		if err != nil {
			t.Fatal(err)
		}
		err = tenants.Validate(ts, tenants.ValidateOptions{Methods: types})
		if want := `tenant "acme": methods[0].prompt "` + bad + `": must be one of none, login, consent, select_account`; err == nil || err.Error() != want {
			t.Errorf("prompt %q: Validate = %v, want %s", bad, err, want)
		}
	}
}
