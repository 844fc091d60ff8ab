package tenants

import (
	"slices"
	"time"
)

// SecondFactors are what a member holds beyond the password in one tenant
// (Tenant.MFA). They belong to the membership, not the global user: a
// tenant's administrator resets them (tenantgate users reset-mfa) without
// touching the person's other tenants, and a membership removed takes
// them along. A factor type added later (passkeys) is one more field.
type SecondFactors struct {
	// TOTP is the TOTP secret sealed under the master key, bound to the
	// tenant and user (nil: no TOTP enrolled). The store never sees it in
	// the clear.
	TOTP []byte
	// TOTPStep is the last TOTP time step a code was accepted for: a code
	// of that step or an earlier one is refused (single use, across
	// replicas, since the step is written by the store's atomic update).
	TOTPStep int64
	// TOTPEnrolled is when TOTP was enrolled.
	TOTPEnrolled time.Time
	// RecoveryCodes are the hashes of the recovery codes not yet used.
	RecoveryCodes []string
}

// Enrolled reports whether the member has any second factor.
func (f *SecondFactors) Enrolled() bool { return len(f.TOTP) > 0 }

// Clone returns a copy that shares no slice with f.
func (f SecondFactors) Clone() SecondFactors {
	f.TOTP = slices.Clone(f.TOTP)
	f.RecoveryCodes = slices.Clone(f.RecoveryCodes)
	return f
}
