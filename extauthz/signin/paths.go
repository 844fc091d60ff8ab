package signin

// Paths of the sign-in endpoints below a tenant's root (its host, or its
// path-tenancy prefix; Endpoint.URL joins them). Envoy routes everything
// under /_auth/ to the sign-in pages (CONTRACT.md, "Login endpoints"); a
// provider is registered with the redirect URI, ACS and metadata URLs these
// make.
const (
	// PathLogin is the sign-in page (GET) and the password form (POST); on
	// the apex host, home-realm discovery.
	PathLogin = "/_auth/login"
	// PathLogout is the sign-out confirmation (GET) and sign-out (POST).
	PathLogout = "/_auth/logout"
	// PathJWKS serves the tenant's public session signing keys.
	PathJWKS = "/_auth/jwks.json"
	// PathStart starts an SSO attempt (POST, from the sign-in page).
	PathStart = "/_auth/start"
	// PathCallback is where a RedirectMethod's provider sends the browser
	// back: the redirect URI.
	PathCallback = "/_auth/callback"
	// PathSAMLMetadata serves the tenant's SAML SP metadata; its URL is the
	// SP entity id.
	PathSAMLMetadata = "/_auth/saml/metadata"
	// PathSAMLACS is the tenant's SAML assertion consumer service.
	PathSAMLACS = "/_auth/saml/acs"
	// PathSignedOut is where a provider sends the browser back after
	// signing out there (RP-initiated logout's post_logout_redirect_uri).
	PathSignedOut = "/_auth/signed-out"
	// PathSwitch moves a person with a global session on the apex host
	// into one tenant (docs/tenancy.md).
	PathSwitch = "/_auth/switch"
)
