// Package extauthz answers Envoy's external-authorization Check calls.
//
// The work is split in two so that Envoy's types stop at the edge (STYLE.md):
// Authorizer.Decide turns a plain Request into a Decision using only the
// in-memory tenant snapshot and the verified-token cache, and Server is the
// gRPC adapter that converts an authv3.CheckRequest into a Request and a
// Decision into an authv3.CheckResponse — the one place where decisions become
// HTTP statuses, headers and bodies.
//
// Sub-packages hold what the Check path and the sign-in pages share: session
// (keys, tokens, the verified-token cache), cookie (the one Cookie header
// reader, and which cookie names are tenantgate's), password (argon2id) and
// login (the /_auth/ HTTP handler).
package extauthz
