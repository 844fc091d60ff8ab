package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

func ptr[T any](v T) *T { return &v }

// TestMFA: a method that requires the provider's MFA (by its requireMFA, or
// by the tenant's mfa: required) signs in only an ID token whose acr or
// amr shows it, and the identity then carries the provider's known amr
// references and mfa; anything else is the mfa_missing refusal, which
// names the failed check and none of the provider's values. A method that
// does not require it neither checks nor carries anything.
func TestMFA(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		require    *bool
		tenantMFA  string
		acr, amr   []string // acceptedACR, acceptedAMR
		claims     map[string]any
		want       []string // the identity's AMR; nil with refused
		refused    bool
		notInError string
	}{
		{name: "not required, nothing asked", claims: map[string]any{"amr": []string{"pwd"}}},
		{name: "not required, provider amr not carried over", claims: map[string]any{"amr": []string{"pwd", "otp"}}},
		{name: "required off explicitly in a tenant that requires mfa", require: ptr(false), tenantMFA: tenants.MFARequired},
		{name: "default amr: otp", require: ptr(true), claims: map[string]any{"amr": []string{"pwd", "otp"}}, want: []string{"pwd", "otp", "mfa"}},
		{name: "default amr: hwk, unknown references dropped", require: ptr(true), claims: map[string]any{"amr": []string{"hwk", "user", "pin"}}, want: []string{"hwk", "mfa"}},
		{name: "default amr: mfa alone", require: ptr(true), claims: map[string]any{"amr": []string{"mfa"}}, want: []string{"mfa"}},
		{name: "default amr: sms and pwd repeated", require: ptr(true), claims: map[string]any{"amr": []string{"pwd", "sms", "pwd"}}, want: []string{"pwd", "mfa"}},
		{name: "default amr: password only", require: ptr(true), claims: map[string]any{"amr": []string{"pwd"}}, refused: true},
		{name: "default amr: no amr", require: ptr(true), refused: true},
		{name: "default amr: amr a string, not an array", require: ptr(true), claims: map[string]any{"amr": "otp"}, refused: true},
		{name: "default amr: an acr does not count", require: ptr(true), claims: map[string]any{"acr": "gold"}, refused: true},
		{name: "tenant mfa required, method silent", tenantMFA: tenants.MFARequired, claims: map[string]any{"amr": []string{"pwd"}}, refused: true},
		{name: "tenant mfa required, method silent, otp", tenantMFA: tenants.MFARequired, claims: map[string]any{"amr": []string{"otp"}}, want: []string{"otp", "mfa"}},
		{name: "tenant mfa optional does not require it", tenantMFA: tenants.MFAOptional},
		{name: "acceptedACR: accepted", require: ptr(true), acr: []string{"gold", "platinum"}, claims: map[string]any{"acr": "platinum"}, want: []string{"mfa"}},
		{name: "acceptedACR: another acr", require: ptr(true), acr: []string{"gold"}, claims: map[string]any{"acr": "silver-secret"}, refused: true, notInError: "silver-secret"},
		{name: "acceptedACR: no acr", require: ptr(true), acr: []string{"gold"}, refused: true},
		{name: "acceptedACR: acr a number", require: ptr(true), acr: []string{"2"}, claims: map[string]any{"acr": 2}, refused: true},
		{name: "acceptedACR only: the default amr does not count", require: ptr(true), acr: []string{"gold"}, claims: map[string]any{"amr": []string{"otp"}}, refused: true},
		{name: "acceptedACR and acceptedAMR: amr", require: ptr(true), acr: []string{"gold"}, amr: []string{"hwk"}, claims: map[string]any{"acr": "1", "amr": []string{"pwd", "hwk"}}, want: []string{"pwd", "hwk", "mfa"}},
		{name: "acceptedAMR: a reference outside the list", require: ptr(true), amr: []string{"hwk"}, claims: map[string]any{"amr": []string{"pwd", "otp"}}, refused: true},
		{name: "acceptedAMR: case matters", require: ptr(true), amr: []string{"hwk"}, claims: map[string]any{"amr": []string{"HWK"}}, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeIdP(t)
			p.claims = func(c jwt.MapClaims) {
				for k, v := range tc.claims {
					c[k] = v
				}
			}
			me := e.oidcMethod(t, p)
			c := config(t, me)
			c.RequireMFA, c.AcceptedACR, c.AcceptedAMR = tc.require, tc.acr, tc.amr
			if err := me.EncodeConfig(c); err != nil {
				t.Fatal(err)
			}
			tn := tenant(me)
			tn.MFA = tc.tenantMFA
			m := e.open(t, tn, 1)
			a := newAttempt(1)
			id, err := callback(m, a, authorize(t, m, a))
			if tc.refused {
				var r *signin.Refusal
				if !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing || !errors.Is(err, errMFA) {
					t.Fatalf("Callback = %+v, %v; want the mfa_missing refusal", id, err)
				}
				if !strings.Contains(r.Message, "did not confirm a second factor") {
					t.Errorf("refusal message %q", r.Message)
				}
				if tc.notInError != "" && strings.Contains(err.Error(), tc.notInError) {
					t.Errorf("the error quotes the provider's value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if !slices.Equal(id.AMR, tc.want) {
				t.Errorf("identity AMR = %q, want %q", id.AMR, tc.want)
			}
			if id.AMR != nil {
				cl := session.Claims{AMR: id.AMR}
				if !cl.MFA() {
					t.Errorf("a session with amr %q would not say x-auth-mfa: true", id.AMR)
				}
			}
		})
	}
}

// TestMFAACRValues: acr_values is sent, in the listed order, exactly when
// the method requires MFA and lists acceptedACR; never the claims
// parameter (an essential acr would make the provider fail the sign-in
// with an error instead of the page that says why).
func TestMFAACRValues(t *testing.T) {
	e := newEnv(t)
	p := newFakeIdP(t)
	for _, tc := range []struct {
		require   *bool
		tenantMFA string
		acr, amr  []string
		want      string
	}{
		{},
		{require: ptr(true)},
		{require: ptr(true), amr: []string{"otp"}},
		{require: ptr(true), acr: []string{"gold", "urn:mace:incommon:iap:silver"}, want: "gold urn:mace:incommon:iap:silver"},
		{tenantMFA: tenants.MFARequired},
	} {
		me := e.oidcMethod(t, p)
		c := config(t, me)
		c.RequireMFA, c.AcceptedACR, c.AcceptedAMR = tc.require, tc.acr, tc.amr
		if err := me.EncodeConfig(c); err != nil {
			t.Fatal(err)
		}
		tn := tenant(me)
		tn.MFA = tc.tenantMFA
		raw, err := e.open(t, tn, 1).AuthURL(context.Background(), newAttempt(1))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(raw)
		q := u.Query()
		if got := q.Get("acr_values"); got != tc.want || q.Has("acr_values") != (tc.want != "") || q.Has("claims") {
			t.Errorf("acr %q: the authorization URL has acr_values %q (claims %v), want %q", tc.acr, got, q.Has("claims"), tc.want)
		}
	}
}

// TestMFAConfig: requireMFA, acceptedACR and acceptedAMR in a tenant file:
// valid ones print back as written; every mistake is one line naming the
// field and what to do.
func TestMFAConfig(t *testing.T) {
	types := tenants.MethodTypes{{Name: Type, NewConfig: NewConfig}}
	file := func(extra string) string {
		return "tenants:\n  - id: acme\n    methods:\n      - type: oidc\n        issuer: https://idp.example/\n        clientID: tg\n" + extra
	}
	validate := func(extra string) ([]tenants.Tenant, error) {
		ts, err := tenants.ParseFile([]byte(file(extra)), types)
		if err != nil {
			return ts, err
		}
		return ts, tenants.Validate(ts, tenants.ValidateOptions{Methods: types})
	}
	good := "        requireMFA: true\n        acceptedACR:\n          - gold\n        acceptedAMR:\n          - hwk\n          - otp\n"
	ts, err := validate(good)
	if err != nil {
		t.Fatalf("valid: %v", err)
	}
	out, err := tenants.MarshalFile(ts, "yaml")
	if err != nil || !strings.HasSuffix(string(out), "        clientID: tg\n"+good) {
		t.Errorf("tenants get prints:\n%s(%v)", out, err)
	}
	if _, err := validate("        requireMFA: false\n"); err != nil {
		t.Errorf("requireMFA false: %v", err)
	}
	const pre = `tenant "acme": methods[0].`
	for _, tc := range []struct{ extra, want string }{
		{"        acceptedACR: [gold]\n", pre + "acceptedACR: only with requireMFA: true (add requireMFA: true to the method, or remove acceptedACR)"},
		{"        requireMFA: false\n        acceptedAMR: [otp]\n", pre + "acceptedAMR: only with requireMFA: true (add requireMFA: true to the method, or remove acceptedAMR)"},
		{"        requireMFA: true\n        acceptedACR: [gold, gold]\n", pre + `acceptedACR[1] "gold": listed twice`},
		{"        requireMFA: true\n        acceptedACR: [\"gold silver\"]\n", pre + "acceptedACR[0]: must be 1-1024 printable ASCII characters without spaces"},
		{"        requireMFA: true\n        acceptedAMR: [\"\"]\n", pre + "acceptedAMR[0]: must be 1-1024 printable ASCII characters without spaces"},
		{"        requireMFA: true\n        acceptedAMR: [" + strings.Repeat("otp,", 32) + "hwk]\n", pre + "acceptedAMR: more than 32 values"},
	} {
		_, err := validate(tc.extra)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: Validate = %v\nwant %s", tc.extra, err, tc.want)
		}
	}
}

// FuzzMFAConfirm feeds arbitrary ID token payloads to the MFA check of a
// method that requires it: it must not panic, and a sign-in it accepts
// carries an amr a session can be minted with, ending in mfa.
func FuzzMFAConfirm(f *testing.F) {
	for _, s := range []string{
		`{"amr":["pwd","otp"]}`, `{"amr":"otp"}`, `{"acr":"gold"}`, `{"acr":2,"amr":[1,"hwk"]}`,
		`{"amr":["pwd","pwd","mfa","mfa"]}`, `{"amr":null}`, `{}`, `{"amr":["` + strings.Repeat("x", 300) + `"]}`,
	} {
		f.Add([]byte(s))
	}
	policies := []*mfaPolicy{
		newMFAPolicy(&Config{RequireMFA: ptr(true)}, nil),
		newMFAPolicy(&Config{RequireMFA: ptr(true), AcceptedACR: []string{"gold"}, AcceptedAMR: []string{"hwk"}}, nil),
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var c claims
		if json.Unmarshal(payload, &c.m) != nil {
			return
		}
		for _, p := range policies {
			amr, err := p.confirm(c)
			if err != nil {
				if amr != nil || !errors.Is(err, errMFA) {
					t.Fatalf("confirm = %q, %v", amr, err)
				}
				continue
			}
			if len(amr) == 0 || amr[len(amr)-1] != session.AMRMFA || len(amr) > 4 {
				t.Fatalf("confirm %s = %q", payload, amr)
			}
			for i, r := range amr {
				if !slices.Contains([]string{"pwd", "otp", "hwk", "mfa"}, r) || slices.Contains(amr[:i], r) {
					t.Fatalf("confirm %s = %q", payload, amr)
				}
			}
		}
	})
}
