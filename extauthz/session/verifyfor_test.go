package session

import (
	"errors"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// TestVerifyForBindsTheTenant: VerifyFor answers only for the tenant it is
// given. A valid token of another tenant is ErrTenantMismatch (a 403, not a
// 401), an invalid one of another tenant is merely invalid, and without a
// tenant nothing verifies.
func TestVerifyForBindsTheTenant(t *testing.T) {
	f := newFixture(t)
	acmeTok, _ := f.mint(t, &f.acme)
	expired := forge(t, f.acmeHeader(), with(f.claimsFor("iacme"),
		"iat", f.now.Add(-2*time.Hour).Unix(), "exp", f.now.Add(-time.Hour).Unix()), edSigner(f.acmePriv))
	stranger := &tenants.Tenant{ID: "acme", InternalID: "iacme-recreated"}

	for _, tc := range []struct {
		name         string
		tenant       *tenants.Tenant
		token        string
		wantOK       bool
		wantMismatch bool
	}{
		{"own tenant", &f.acme, acmeTok, true, false},
		{"another tenant's valid token", &f.globex, acmeTok, false, true},
		{"same slug, another internal id", stranger, acmeTok, false, true},
		{"another tenant's expired token", &f.globex, expired, false, false},
		{"no tenant", nil, acmeTok, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := f.verifier()
			c, err := v.VerifyFor(f.snap, tc.tenant, tc.token)
			if tc.wantOK {
				if err != nil || c == nil || c.TenantID != tc.tenant.InternalID {
					t.Fatalf("VerifyFor = %+v, %v; want the claims of %s", c, err, tc.tenant.ID)
				}
				return
			}
			if c != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("VerifyFor = %+v, %v; want an error wrapping ErrInvalid", c, err)
			}
			if got := errors.Is(err, ErrTenantMismatch); got != tc.wantMismatch {
				t.Errorf("errors.Is(%v, ErrTenantMismatch) = %v, want %v", err, got, tc.wantMismatch)
			}
		})
	}

	// A mismatch is not a failure in the stats: the token itself is good.
	v := f.verifier()
	if _, err := v.VerifyFor(f.snap, &f.globex, acmeTok); !errors.Is(err, ErrTenantMismatch) {
		t.Fatal(err)
	}
	if s := v.Stats(); s.Failures != 0 {
		t.Errorf("a tenant mismatch counted as %d failures", s.Failures)
	}
}
