package signin

import (
	"fmt"
	"slices"

	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// ReasonMFAMissing is the log, metrics and audit reason of a sign-in
// refused because the method requires the identity provider's MFA and the
// provider did not confirm it (docs/sso.md, "Requiring MFA at the identity
// provider").
const ReasonMFAMissing = "mfa_missing"

// MFAMissing returns the refusal of such a sign-in. err says, for the log,
// which check failed; it must not carry the provider's own words.
func MFAMissing(err error) *Refusal {
	return &Refusal{
		Reason: ReasonMFAMissing,
		Message: "Your identity provider did not confirm a second factor, and this organisation requires one for this sign-in. " +
			"Sign in again and use your second factor (an authenticator app, security key or the like) at the identity provider; " +
			"if it never asks for one, your administrator must set it up there.",
		Err: fmt.Errorf("%s: %w", ReasonMFAMissing, err),
	}
}

// ProviderAMR returns the amr of a session whose sign-in the provider
// confirmed as multi-factor: the provider's references that sessions know
// (pwd, otp, hwk), in the provider's order and each once, then mfa. Every
// other reference is dropped: a session carries only what tenantgate
// defines.
func ProviderAMR(provider []string) []string {
	out := make([]string, 0, 4)
	for _, r := range provider {
		switch r {
		case session.AMRPassword, session.AMROTP, session.AMRHardware:
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return append(out, session.AMRMFA)
}

// Limits of the values a method accepts as MFA (CheckMFAValues).
const (
	maxMFAValues   = 32
	maxMFAValueLen = 1024
)

// CheckMFAValues checks a list of values a method accepts as proof of the
// provider's MFA (OIDC acceptedACR and acceptedAMR, SAML
// acceptedAuthnContext): at most 32, each 1-1024 printable ASCII
// characters without spaces (acr_values is space-separated), none twice
// (tenants.MethodCheck.Tokens); and a list only with requireMFA: true, so
// that a list never looks like it requires something it does not.
func CheckMFAValues(v *tenants.MethodCheck, field string, values []string, requireMFA *bool) {
	if len(values) == 0 {
		return
	}
	if requireMFA == nil || !*requireMFA {
		v.Errorf(field, "only with requireMFA: true (add requireMFA: true to the method, or remove %s)", field)
	}
	v.Tokens(field, values, maxMFAValues, maxMFAValueLen)
}

// RequiresMFA reports whether a method with this requireMFA setting, of
// tenant t, requires the provider's MFA: as the method says when it says
// so, else when the tenant's mfa is required. A tenant that requires a
// second factor thus gets it from every SSO method that does not opt out
// in writing (requireMFA: false).
func RequiresMFA(requireMFA *bool, t *tenants.Tenant) bool {
	if requireMFA != nil {
		return *requireMFA
	}
	return t != nil && t.MFARequired()
}
