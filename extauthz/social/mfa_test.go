package social

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// TestMFARequiredByTenant: no social provider says whether a second factor
// was used, so under the tenant's mfa: required a social method refuses
// every sign-in (mfa_missing) before it redeems the code, unless it says
// requireMFA: false; other policies leave it alone, and its sessions never
// carry an amr.
func TestMFARequiredByTenant(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name      string
		tenantMFA string
		require   *bool
		refused   bool
	}{
		{name: "mfa off", tenantMFA: tenants.MFAOff},
		{name: "mfa optional", tenantMFA: tenants.MFAOptional},
		{name: "mfa required", tenantMFA: tenants.MFARequired, refused: true},
		{name: "mfa required, method exempt", tenantMFA: tenants.MFARequired, require: &no},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeOAuth(t)
			e := newEnv(t, p)
			me := e.generic(t, p)
			me.RequireMFA = tc.require
			tn := tenant(me)
			tn.MFA = tc.tenantMFA
			mm, err := e.opener(context.Background(), tn, 1)
			if err != nil {
				t.Fatal(err)
			}
			a := newAttempt(1)
			cb := authorize(t, mm.(*Method), a)
			id, err := mm.(*Method).Callback(context.Background(), a, httptest.NewRequest(http.MethodGet, cb.String(), nil))
			if !tc.refused {
				if err != nil || id.Subject == "" || id.AMR != nil {
					t.Fatalf("Callback = %+v, %v; want a sign-in without amr", id, err)
				}
				return
			}
			var r *signin.Refusal
			if !errors.As(err, &r) || r.Reason != signin.ReasonMFAMissing || !errors.Is(err, errNoMFA) {
				t.Fatalf("Callback = %+v, %v; want the mfa_missing refusal", id, err)
			}
			if p.pkceChecked.Load() != 0 {
				t.Error("the code was redeemed for a sign-in that is refused anyway")
			}
		})
	}
}

// TestMFAConfig: requireMFA: false is a social method's to write;
// requireMFA: true is refused with what to do instead.
func TestMFAConfig(t *testing.T) {
	types := tenants.MethodTypes{{Name: Type, NewConfig: NewConfig}}
	validate := func(extra string) error {
		ts, err := tenants.ParseFile([]byte("tenants:\n  - id: acme\n    methods:\n      - type: social\n        provider: github\n"+extra), types)
		if err != nil {
			return err
		}
		return tenants.Validate(ts, tenants.ValidateOptions{Methods: types})
	}
	if err := validate("        requireMFA: false\n"); err != nil {
		t.Errorf("requireMFA false: %v", err)
	}
	want := `tenant "acme": methods[0].requireMFA: true is not possible: a social provider does not say whether a second factor was used ` +
		`(use an oidc method, whose ID token can; or write requireMFA: false to exempt this method from the tenant's mfa: required)`
	if err := validate("        requireMFA: true\n"); err == nil || err.Error() != want {
		t.Errorf("requireMFA true: %v\nwant %s", err, want)
	}
}
