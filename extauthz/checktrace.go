package extauthz

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tenantgate/tenantgate/extauthz/telemetry"
)

// outcomeNames name a Decision's Outcome in spans.
var outcomeNames = [...]string{Allow: "allow", AllowAnonymous: "allow_anonymous", Redirect: "redirect", Deny: "deny"}

// endCheckSpan ends the Check span with d: the tenant, the outcome, the
// CONTRACT error code of a refusal and the status Envoy answers with. It
// reads d only: the OK answer's template, shared between calls, is never
// touched.
func endCheckSpan(span telemetry.CheckSpan, d Decision) {
	if !span.Recording() {
		return
	}
	var tenant, outcome string
	if d.Tenant != nil {
		tenant = d.Tenant.ID
	}
	if int(d.Outcome) < len(outcomeNames) {
		outcome = outcomeNames[d.Outcome]
	}
	status := d.Status
	if d.Outcome == Redirect {
		status = 302
	}
	span.End(tenant, outcome, d.Code, status)
}

// endInlineSpan ends the Check span of a sign-in request answered inline
// (outcome signin) with the status of resp; the sign-in span below it
// holds the tenant and the reason.
func endInlineSpan(span telemetry.CheckSpan, resp *authv3.CheckResponse) {
	if !span.Recording() {
		return
	}
	span.End("", "signin", "", int(resp.GetDeniedResponse().GetStatus().GetCode()))
}
