package oidc

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// mfaPolicy is what a method that requires the provider's MFA accepts as
// proof of it, from the ID token (OIDC Core §2: acr, amr).
type mfaPolicy struct {
	// acr are the accepted acr values, also sent as acr_values.
	acr []string
	// amr are the accepted amr references: one of them proves MFA.
	amr []string
}

// newMFAPolicy returns the policy of a method with Config c of tenant t,
// or nil when the method does not require MFA (signin.RequiresMFA). With
// neither list set, the amr references of DefaultAcceptedAMR prove it.
func newMFAPolicy(c *Config, t *tenants.Tenant) *mfaPolicy {
	if !signin.RequiresMFA(c.RequireMFA, t) {
		return nil
	}
	p := &mfaPolicy{acr: slices.Clone(c.AcceptedACR), amr: slices.Clone(c.AcceptedAMR)}
	if len(p.acr) == 0 && len(p.amr) == 0 {
		p.amr = slices.Clone(DefaultAcceptedAMR)
	}
	return p
}

// errMFA is wrapped by every refusal of confirm. Its text names the
// checks that failed, never the provider's values.
var errMFA = errors.New("id token does not show MFA")

// confirm returns the session amr of a sign-in whose ID token claims c
// prove MFA (signin.ProviderAMR of its amr): an acr among p.acr, or an amr
// holding one of p.amr. Otherwise it returns the signin.MFAMissing
// refusal. An acr or amr of the wrong type counts as absent.
func (p *mfaPolicy) confirm(c claims) ([]string, error) {
	acr, amr := c.str("acr"), c.strs("amr")
	if acr != "" && slices.Contains(p.acr, acr) ||
		slices.ContainsFunc(amr, func(r string) bool { return slices.Contains(p.amr, r) }) {
		return signin.ProviderAMR(amr), nil
	}
	var why []string
	if len(p.acr) > 0 {
		why = append(why, absentOr(acr == "", "acr", "not one of acceptedACR"))
	}
	if len(p.amr) > 0 {
		why = append(why, absentOr(len(amr) == 0, "amr", "holds none of the accepted references"))
	}
	return nil, signin.MFAMissing(fmt.Errorf("%w: %v", errMFA, why))
}

// absentOr says "<claim> absent" or "<claim> <notAccepted>".
func absentOr(absent bool, claim, notAccepted string) string {
	if absent {
		return claim + " absent"
	}
	return claim + " " + notAccepted
}
