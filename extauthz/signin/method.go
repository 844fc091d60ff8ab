package signin

import (
	"context"
	"net/http"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// Method is a sign-in method configured for one tenant.
type Method interface {
	// Type is the tenant-file method type: oidc, saml or social.
	Type() string
	// Label is the text of the method's button on the sign-in page
	// ("Sign in with Acme SSO").
	Label() string
}

// RedirectMethod signs people in by sending the browser to a provider and
// receiving it back at PathCallback: OIDC and OAuth2.
type RedirectMethod interface {
	Method
	// AuthURL returns where to send the browser for this attempt. The
	// attempt's State, Nonce and PKCEVerifier are already set and are
	// remembered by the sign-in pages in this browser's attempt cookie.
	AuthURL(ctx context.Context, a *Attempt) (string, error)
	// Callback completes the attempt from the provider's redirect. It must
	// check everything the protocol requires (the sign-in pages have
	// already matched state to the attempt) and return an identity only
	// when all holds.
	Callback(ctx context.Context, a *Attempt, r *http.Request) (Identity, error)
}

// SAMLMethod signs people in with SAML 2.0 Web Browser SSO: an HTTP-Redirect
// AuthnRequest and an HTTP-POST Response at PathSAMLACS. A tenant has at
// most one: its SAML service provider is the tenant's, at PathSAMLMetadata.
type SAMLMethod interface {
	Method
	// Metadata is this tenant's SP metadata for the endpoint's host.
	Metadata(e Endpoint) ([]byte, error)
	// AuthnRequestURL returns the IdP URL (HTTP-Redirect binding) for this
	// attempt and the AuthnRequest ID the response must be InResponseTo.
	AuthnRequestURL(ctx context.Context, a *Attempt) (url, requestID string, err error)
	// HandleResponse validates a posted SAMLResponse. a is the browser's
	// attempt (nil for IdP-initiated, which the method refuses unless the
	// tenant enabled it).
	HandleResponse(ctx context.Context, e Endpoint, a *Attempt, r *http.Request) (Identity, error)
}

// LogoutMethod is a method that can also sign the person out at the
// provider (OIDC RP-initiated logout).
type LogoutMethod interface {
	Method
	// LogoutURL returns the provider's end-session URL, or "" when the
	// provider offers none.
	LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirect string) (string, error)
}

// Endpoint is where a tenant's /_auth/ lives for one request.
type Endpoint struct {
	// Origin is scheme://host[:port] of the request, e.g.
	// "https://acme.app.example".
	Origin string
	// Prefix is "" for host tenancy, "/org/<id>" for path tenancy.
	Prefix string
}

// URL returns the absolute URL of an /_auth/ path below the endpoint.
func (e Endpoint) URL(path string) string { return e.Origin + e.Prefix + path }

// Attempt is one sign-in in progress in one browser. The sign-in pages keep
// it in a short-lived, sealed, per-attempt cookie, so several tabs can sign
// in at once and no server state is needed.
type Attempt struct {
	// ID names the attempt (and its cookie).
	ID string
	// TenantID is the tenant's internal id; an attempt is only ever
	// completed for the tenant that started it.
	TenantID string
	// Method is the index of the method in the tenant's Methods.
	Method int
	// Endpoint is where the attempt started; redirect URIs, the ACS URL and
	// the SP entity id derive from it.
	Endpoint Endpoint
	// State, Nonce and PKCEVerifier are OIDC/OAuth2 per-attempt secrets.
	State, Nonce, PKCEVerifier string
	// SAMLRequestID is the ID of the AuthnRequest sent.
	SAMLRequestID string
	// ReturnTo is the validated same-host path to go to afterwards.
	ReturnTo string
	// LoginHint is passed on to the provider when set.
	LoginHint string
	Created   time.Time
}

// Identity is who a method says the person is.
type Identity struct {
	// Issuer and Subject identify the person at the provider. Together with
	// the tenant and the method they key the account: an identity never
	// reaches another tenant, whatever its email says.
	Issuer, Subject string
	// Email is used only when EmailVerified.
	Email         string
	EmailVerified bool
	Name          string
	// Roles are the tenant roles the method mapped from the provider's
	// groups (groupRoles) plus its default roles.
	Roles []string
	// IDTokenHint is kept for RP-initiated logout, when the method offers
	// it.
	IDTokenHint string
	// AMR is the session's amr (RFC 8176) when the method required the
	// provider's MFA and the provider confirmed it (ProviderAMR: it ends
	// in "mfa"); nil otherwise, and the session then has none.
	AMR []string
}

// Opener builds the Method for one of a tenant's method entries. It is
// called when a snapshot first needs that method and the result is reused
// until the tenant changes; it must not block on the network for long (use
// ctx) and must not keep the tenant pointer beyond what it copies.
type Opener func(ctx context.Context, t *tenants.Tenant, index int) (Method, error)
