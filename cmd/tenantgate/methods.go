package main

import (
	"log/slog"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/oidc"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/extauthz/social"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/tenants"
)

// The sign-in method types of this build are wired here, the way dex wires
// its connectors: each method's package owns its Config (fields, Validate,
// sealing of its secrets) and its Opener, and main hands tenants the table
// of Configs and the sign-in pages the table of Openers. Adding a method
// type is a line in each table; adding a field to one is a change to its
// package alone.

// methodTypes are the sign-in method types tenant files may use, in the
// order they are named to an operator.
func methodTypes() tenants.MethodTypes {
	return tenants.MethodTypes{
		{Name: tenants.MethodPassword, NewConfig: password.NewConfig},
		{Name: oidc.Type, NewConfig: oidc.NewConfig},
		{Name: saml.Type, NewConfig: saml.NewConfig},
		{Name: social.Type, NewConfig: social.NewConfig},
	}
}

// newMethodRegistry builds the SSO method registry the sign-in handler
// opens tenants' methods from, one Opener per method type (password sign-in
// is the handler's own). The methods share one IdP HTTP client (https only,
// no metadata, link-local or private addresses, checked when dialling;
// loopback over http only with --allow-loopback-http-idp), so connections
// to an IdP are pooled; every exchange is reported to observe (the
// metrics; nil for none) and traced by tracer (nil for none), both with
// the idpclient.Kind its context says. The store is the SAML replay cache:
// used assertion ids survive a restart.
func newMethodRegistry(sealer *seal.Sealer, st tenants.Store, allowLoopback bool, observe func(idpclient.Kind, string), tracer *telemetry.Tracer, log *slog.Logger) map[string]signin.Opener {
	idp := idpclient.New(idpclient.Options{AllowLoopbackHTTP: allowLoopback, Observe: observe})
	idp.Transport = telemetry.RoundTripper(tracer, idp.Transport)
	return map[string]signin.Opener{
		oidc.Type: oidc.NewOpener(oidc.Options{
			Sealer: sealer, HTTPClient: idp, AllowLoopbackHTTP: allowLoopback, Now: time.Now, Log: log,
		}),
		social.Type: social.NewOpener(social.Options{
			Sealer: sealer, HTTPClient: idp, AllowLoopbackHTTP: allowLoopback, Log: log,
		}),
		saml.Type: saml.NewOpener(saml.Options{
			Sealer: sealer, HTTPClient: idp, Replay: st, Now: time.Now, Log: log,
		}),
	}
}

// notOffered returns, for each method of t that is stored but not offered
// at sign-in yet (signin.NotOffered), why, for the operator.
func notOffered(types tenants.MethodTypes, t *tenants.Tenant) map[int]string {
	out := map[int]string{}
	for i, m := range t.Methods {
		if why := signin.NotOffered(types, m); why != "" {
			out[i] = why
		}
	}
	return out
}
