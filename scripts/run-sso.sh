#!/usr/bin/env bash
# `make run-sso`: `make run` plus single sign-on, over https, in one command.
#
#   - Keycloak (the pinned one `make tools` installs) in a private copy under
#     $RUN_SSO_DIR, so the install the tests use is never touched, with the
#     realms the tests use imported: acme-oidc (OpenID Connect) and
#     globex-saml (SAML 2.0);
#   - tenantgate with production cookies (no --insecure-cookies) and two
#     tenants: acme signs in with a password or Keycloak OIDC, globex with a
#     password or Keycloak SAML;
#   - Envoy with TLS on its listener, its certificate signed by a local CA
#     (scripts/local-tls.sh) whose path is printed: trust it in your
#     browser once;
#   - the demo upstream, which shows the headers it receives.
#
# Everything listens on 127.0.0.1; Ctrl-C stops it all. The URLs, accounts
# and passwords are printed once everything answers.
#
# Environment (defaults in brackets):
#   RUN_SSO_DIR             state and logs [.run/sso]; wiped on each start,
#                           except the Keycloak copy
#   RUN_SSO_TLS_DIR         the local CA and certificate [.run/tls]; the CA
#                           is kept across runs so the browser's trust stays
#   RUN_SSO_HTTPS_PORT      Envoy's https port [8443]
#   RUN_SSO_KEYCLOAK_PORT   Keycloak's http port [8180]
#   RUN_SSO_GRPC_PORT, RUN_SSO_HTTP_PORT, RUN_SSO_ADMIN_PORT
#                           tenantgate's ports [9001, 9002, 9003]
#   RUN_SSO_UPSTREAM_PORT   the demo upstream's port [8081]
#   RUN_SSO_TENANTGATE      the tenantgate binary [bin/tenantgate]
#   RUN_SSO_UPSTREAM        the demo upstream binary [built into bin/]
#   TENANTGATE_ENVOY        the Envoy binary [.tools/envoy/envoy/_bin/envoy]
#   TENANTGATE_KEYCLOAK_HOME  the Keycloak install [.tools/keycloak/<pin>]
#   JAVA_HOME               the JDK Keycloak runs on [the java on PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'run-sso: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'run-sso: %s\n' "$*" >&2; }

RUN=${RUN_SSO_DIR:-.run/sso}
TLS=${RUN_SSO_TLS_DIR:-.run/tls}
HTTPS_PORT=${RUN_SSO_HTTPS_PORT:-8443}
KC_PORT=${RUN_SSO_KEYCLOAK_PORT:-8180}
GRPC_PORT=${RUN_SSO_GRPC_PORT:-9001}
HTTP_PORT=${RUN_SSO_HTTP_PORT:-9002}
ADMIN_PORT=${RUN_SSO_ADMIN_PORT:-9003}
UPSTREAM_PORT=${RUN_SSO_UPSTREAM_PORT:-8081}
TG=${RUN_SSO_TENANTGATE:-bin/tenantgate}
ENVOY=${TENANTGATE_ENVOY:-.tools/envoy/envoy/_bin/envoy}
KC_VERSION=$(sed -n 's/^KEYCLOAK_VERSION=\([0-9A-Za-z.-]*\)$/\1/p' scripts/keycloak.sh)
KC_INSTALL=${TENANTGATE_KEYCLOAK_HOME:-.tools/keycloak/$KC_VERSION}

[ -x "$TG" ] || die "tenantgate not found at $TG (run: make build)"
[ -x "$ENVOY" ] || die "Envoy not found at $ENVOY (run: make tools)"
[ -x "$KC_INSTALL/bin/kc.sh" ] && [ -f "$KC_INSTALL/.tenantgate-installed" ] ||
  die "Keycloak $KC_VERSION not found at $KC_INSTALL (run: make tools)"
for tool in curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install $tool)"
done
if [ -n "${JAVA_HOME:-}" ]; then JAVA=$JAVA_HOME/bin/java; else JAVA=$(command -v java || true); fi
[ -n "$JAVA" ] && [ -x "$JAVA" ] || die "no java found: Keycloak needs Java 17 or 21 (set JAVA_HOME)"

KC=http://127.0.0.1:$KC_PORT
origin() { printf 'https://%s.localhost:%s' "$1" "$HTTPS_PORT"; }

# Fresh state on every start; the Keycloak copy is kept while it is a copy
# of the same install.
mkdir -p "$RUN"
rm -rf "$RUN/state"
mkdir -p "$RUN/state"
STATE=$RUN/state

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Keycloak, first: it takes a minute or more to start.
kc_home=$RUN/keycloak-$KC_VERSION
if ! cmp -s "$KC_INSTALL/.tenantgate-installed" "$kc_home/.tenantgate-installed"; then
  log "copying Keycloak $KC_VERSION from $KC_INSTALL to $kc_home"
  rm -rf "$kc_home" "$kc_home.tmp"
  cp -a "$KC_INSTALL" "$kc_home.tmp"
  mv "$kc_home.tmp" "$kc_home"
fi
rm -rf "$kc_home/data"
mkdir -p "$kc_home/data/import"
cp test/keycloak/realms/acme-oidc.json test/keycloak/realms/globex-saml.json "$kc_home/data/import/"
KC_ADMIN_PASSWORD=$(openssl rand -hex 12)
log "starting Keycloak on $KC (log: $STATE/keycloak.log)"
(
  # Settings from the caller's environment would change how Keycloak runs.
  for v in $(compgen -e); do
    case "$v" in KC_* | KEYCLOAK_* | QUARKUS_* | JAVA_OPTS*) unset "$v" ;; esac
  done
  export JAVA
  export KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$KC_ADMIN_PASSWORD
  export JAVA_OPTS_KC_HEAP="-Xms128m -Xmx512m" JAVA_OPTS_APPEND="-XX:-UseG1GC -XX:+UseSerialGC"
  # The realm files' redirect URIs, web origins and SAML entity id.
  export TG_ACME_ORIGIN=$(origin acme) TG_GLOBEX_ORIGIN=$(origin globex) TG_INITECH_ORIGIN=$(origin initech)
  exec "$kc_home/bin/kc.sh" start-dev --db=dev-mem --http-host=127.0.0.1 --http-port="$KC_PORT" \
    --import-realm --log-console-color=false
) >"$STATE/keycloak.log" 2>&1 &
pids+=($!)

# 2. While it starts: the certificate, the upstream and tenantgate's data.
bash scripts/local-tls.sh "$TLS" acme.localhost globex.localhost >&2

UPSTREAM=${RUN_SSO_UPSTREAM:-}
if [ -z "$UPSTREAM" ]; then
  go build -o bin/demo-upstream ./test/echo
  UPSTREAM=bin/demo-upstream
fi

DB=$STATE/tenantgate.db
KEY=$STATE/tenantgate.key
cat >"$STATE/tenants.yaml" <<YAML
tenants:
  - id: acme
    name: Acme Corp
    emailDomains: [acme.test]
    methods:
      - type: password
      - type: oidc
        label: Sign in with Acme SSO
        issuer: $KC/realms/acme-oidc
        clientID: tenantgate
        # The test realm's fixture secret (test/keycloak/realms/acme-oidc.json).
        clientSecret: acme-oidc-client-secret
        groupRoles: {admins: [admin]}
        defaultRoles: [member]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, permission: "admin:access"}
  - id: globex
    name: Globex Corporation
    emailDomains: [globex.test]
    methods:
      - type: password
      - type: saml
        label: Sign in with Globex SSO
        idpMetadataURL: $KC/realms/globex-saml/protocol/saml/descriptor
        groupRoles: {admins: [admin]}
        defaultRoles: [member]
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
YAML
store=(--db "$DB" --master-key-file "$KEY")
"$TG" tenants apply "${store[@]}" -f "$STATE/tenants.yaml" --allow-loopback-http-idp >&2
printf '%s' 'acme-demo-password' | "$TG" users add "${store[@]}" --tenant acme --email alice@acme.test --role admin --password-stdin >&2
printf '%s' 'globex-demo-password' | "$TG" users add "${store[@]}" --tenant globex --email gina@globex.test --role member --password-stdin >&2

# Envoy: the shipped envoy/envoy.yaml with this script's ports and TLS on
# its listener.
bash scripts/envoy-https.sh --tls-dir "$TLS" --listen "$HTTPS_PORT" --grpc "$GRPC_PORT" --http "$HTTP_PORT" \
  --app "$UPSTREAM_PORT" >"$STATE/envoy.yaml"

# 3. Wait for Keycloak to serve both realms, then start the rest: an SSO
# method that cannot reach its IdP on first use waits a minute to retry.
log "waiting for Keycloak (a minute or more on a busy machine)"
deadline=$((SECONDS + 600))
until curl -fsS -o /dev/null "$KC/realms/acme-oidc/.well-known/openid-configuration" 2>/dev/null &&
  curl -fsS -o /dev/null "$KC/realms/globex-saml/protocol/saml/descriptor" 2>/dev/null; do
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 30 "$STATE/keycloak.log" >&2; die "Keycloak exited (log: $STATE/keycloak.log)"; }
  [ $SECONDS -lt $deadline ] || die "Keycloak not ready after 10 minutes (log: $STATE/keycloak.log)"
  sleep 1
done

"$TG" serve "${store[@]}" --base-domain localhost --allow-loopback-http-idp \
  --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
  2>"$STATE/tenantgate.log" &
pids+=($!)
"$UPSTREAM" -addr "127.0.0.1:$UPSTREAM_PORT" 2>"$STATE/upstream.log" &
pids+=($!)
"$ENVOY" -c "$STATE/envoy.yaml" --use-dynamic-base-id -l warning --log-path "$STATE/envoy.log" \
  --file-flush-interval-msec 1000 >"$STATE/access.log" &
pids+=($!)

# Ready when each tenant's sign-in page answers through Envoy, over https,
# with a certificate the local CA vouches for.
deadline=$((SECONDS + 60))
for t in acme globex; do
  until curl -fsS -o /dev/null --cacert "$TLS/ca.crt" --resolve "$t.localhost:$HTTPS_PORT:127.0.0.1" \
    "$(origin "$t")/_auth/login" 2>/dev/null; do
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a process exited; see $STATE/*.log"; done
    [ $SECONDS -lt $deadline ] || die "$(origin "$t") does not answer; see $STATE/*.log"
    sleep 0.2
  done
done

ca=$(cd "$TLS" && pwd)/ca.crt
cat <<MSG

tenantgate SSO demo is running (logs in $STATE/). Open in a browser:

  $(origin acme)/     Acme Corp
      password:                alice@acme.test / acme-demo-password   (admin)
      "Sign in with Acme SSO": Keycloak OIDC, user alice / alice-acme-pw   (group admins: admin)
  $(origin globex)/   Globex Corporation
      password:                  gina@globex.test / globex-demo-password   (member)
      "Sign in with Globex SSO": Keycloak SAML, user carol / carol-globex-pw   (group admins: admin)

  An SSO account is never the password account with the same email: alice
  signs in as two different users, one per method.

First trust the local CA, once (Envoy's certificate is signed by it):
  CA certificate: $ca
  Chrome/Chromium on Linux (certutil is in libnss3-tools), then restart the browser:
    mkdir -p \$HOME/.pki/nssdb && certutil -d sql:\$HOME/.pki/nssdb -A -t C,, -n "tenantgate local CA" -i "$ca"
  macOS:   security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db $ca
  Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import
  The CA can only vouch for localhost names (a name constraint), and is kept in $TLS for later runs.

Keycloak: $KC/admin/   user admin / $KC_ADMIN_PASSWORD   (realms acme-oidc and globex-saml)
The upstream echoes the headers it receives: look for x-tenant-id, x-user-* and x-auth-method.
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
die "a process exited; see $STATE/*.log"
