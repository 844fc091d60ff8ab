package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
)

// startWarning is one thing serve says at start about a tenant it will
// serve but whose sign-in cannot work as configured: the tenant, what is
// wrong, and the fix. They are warnings, not errors: serve still starts, and
// the tenant's other methods keep working.
type startWarning struct {
	tenant string
	msg    string
}

// samlOverPlainHTTP is the warning for a SAML method with --insecure-cookies.
const samlOverPlainHTTP = "SAML sign-in cannot complete in a browser with --insecure-cookies: " +
	"the attempt cookie is then SameSite=Lax, and browsers withhold it from the IdP's cross-site POST to the ACS " +
	"(every sign-in ends in \"Invalid login request\", log reason sso_no_attempt); " +
	"serve https without --insecure-cookies (docs/sso-keycloak.md#local-https, or make run-sso)"

// startWarnings returns, per tenant in ts and in order, what serve run with
// insecureCookies and allowLoopback (--insecure-cookies,
// --allow-loopback-http-idp) should warn about, types being the method
// types this build serves:
//
//   - what configWarnings finds (tenants apply says the same);
//   - a saml method while cookies are insecure (samlOverPlainHTTP);
//   - IdP URLs that tenants apply accepted only with
//     --allow-loopback-http-idp (http:// or loopback), while serve runs
//     without it: the method cannot reach its IdP. Which URLs those are is
//     asked of tenants.Validate itself (the problems it finds without the
//     flag but not with it), so this never drifts from what apply allowed.
func startWarnings(ts []tenants.Tenant, types tenants.MethodTypes, insecureCookies, allowLoopback bool) []startWarning {
	var out []startWarning
	for _, t := range ts {
		out = append(out, configWarnings(t, types)...)
		if insecureCookies && slices.ContainsFunc(t.Methods, func(m tenants.Method) bool { return m.Type == tenants.MethodSAML }) {
			out = append(out, startWarning{t.ID, samlOverPlainHTTP})
		}
		if !allowLoopback {
			if problems := needLoopbackFlag(t, types); len(problems) > 0 {
				out = append(out, startWarning{t.ID, "its SSO sign-in fails: serve runs without --allow-loopback-http-idp (tests and local development only), which these IdP URLs need: " +
					strings.Join(problems, "; ")})
			}
		}
	}
	return out
}

// configWarner is a method Config that can say what is risky, though
// valid, about itself (saml: nameIDFormat unspecified).
type configWarner interface {
	Warnings() []string
}

// tenantConfigWarner is a method Config that can say what is wrong with
// it in its tenant (social: the tenant's mfa: required refuses every
// sign-in).
type tenantConfigWarner interface {
	TenantWarnings(t *tenants.Tenant) []string
}

// configWarnings returns, per method of t in order, the warnings of its
// Config (configWarner), each naming the method ("methods[1] (saml): …").
// Both tenants apply and serve's start print them. A Config that does not
// decode is Validate's to report, not this.
func configWarnings(t tenants.Tenant, types tenants.MethodTypes) []startWarning {
	var out []startWarning
	for i, m := range t.Methods {
		mt, ok := types.Lookup(m.Type)
		if !ok {
			continue
		}
		cfg := mt.NewConfig()
		if m.DecodeConfig(cfg) != nil {
			continue
		}
		var msgs []string
		if w, ok := cfg.(configWarner); ok {
			msgs = w.Warnings()
		}
		if w, ok := cfg.(tenantConfigWarner); ok {
			msgs = append(msgs, w.TenantWarnings(&t)...)
		}
		for _, msg := range msgs {
			out = append(out, startWarning{t.ID, fmt.Sprintf("methods[%d] (%s): %s", i, m.Type, msg)})
		}
	}
	return out
}

// needLoopbackFlag returns the validation problems of t that
// --allow-loopback-http-idp would clear, each naming the field and URL
// (never a secret: Validate does not echo secrets).
func needLoopbackFlag(t tenants.Tenant, types tenants.MethodTypes) []string {
	without := validationProblems(t, tenants.ValidateOptions{Methods: types})
	if len(without) == 0 {
		return nil
	}
	with := validationProblems(t, tenants.ValidateOptions{Methods: types, AllowLoopbackHTTPIDP: true})
	var out []string
	for _, p := range without {
		if !slices.Contains(with, p) {
			out = append(out, p)
		}
	}
	return out
}

// validationProblems validates a copy of t alone (Validate canonicalises
// some lists in place) and returns each problem's text, without the
// tenant prefix every one of them carries.
func validationProblems(t tenants.Tenant, opts tenants.ValidateOptions) []string {
	t.Domains = slices.Clone(t.Domains)
	t.EmailDomains = slices.Clone(t.EmailDomains)
	t.TrustedOrigins = slices.Clone(t.TrustedOrigins)
	err := tenants.Validate([]tenants.Tenant{t}, opts)
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	prefix := fmt.Sprintf("tenant %q: ", t.ID)
	var out []string
	for _, e := range errs {
		if e != nil {
			out = append(out, strings.TrimPrefix(e.Error(), prefix))
		}
	}
	return out
}
