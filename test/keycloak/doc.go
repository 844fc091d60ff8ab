// Package keycloak runs a real Keycloak for tenantgate's SSO end-to-end tests
// and holds the realms it is loaded with.
//
// The server is the pinned keycloak-quarkus-dist that scripts/keycloak.sh
// installs under .tools/keycloak/<version>/ (or the install named by
// TENANTGATE_KEYCLOAK_HOME), run on the machine's Java 17 in dev mode with an
// in-memory database. Each [Server] gets its own home directory (a copy of
// bin/, links to the read-only install) so concurrent test binaries never
// share state, its own free 127.0.0.1 port, and the three realms in realms/
// imported at start:
//
//   - [RealmOIDC] "acme-oidc": OIDC confidential client [OIDCClientID],
//     PKCE S256 required, a "groups" claim in the ID token;
//   - [RealmSAML] "globex-saml": a SAML SP client whose entity id and ACS are
//     on the globex origin, signed responses and assertions, "email" and
//     "groups" attributes;
//   - [RealmOAuth] "initech-oauth": a confidential client used as a generic
//     OAuth2 provider (authorization, token and userinfo endpoints only).
//
// The app origins the clients redirect to are placeholders in the realm
// files (${TG_ACME_ORIGIN}, ${TG_GLOBEX_ORIGIN}, ${TG_INITECH_ORIGIN}) that
// Keycloak resolves from the environment at import: pass the origins the
// test's Envoy listens on in [Options.Origins].
//
// Start it once per test binary: [Start] from a test, [StartAsync] to boot
// it while the test builds and starts what it tests, or [Launch] from
// TestMain; [SkipIfDisabled] honours -short and TENANTGATE_KEYCLOAK_TESTS=0.
// A cold start takes 15-40 s on a 2-core machine, minutes under heavy load
// (see docs/keycloak-notes.md), so share one server across tests; realms
// are read-only fixtures, and tests that need isolation use distinct users.
//
// [SubmitLogin] and [ReadForm] drive Keycloak's own HTML login form and the
// SAML auto-POST form with a plain http.Client and cookie jar, so
// end-to-end tests need no browser.
package keycloak
