#!/usr/bin/env bash
# A certificate authority of your own and a certificate it signs for
# localhost and the *.localhost hosts you name, so that Envoy can serve https in local
# development (make run-sso, docs/sso-keycloak.md#local-https): SAML sign-in
# needs https in a real browser, and so do tenantgate's production cookies.
#
#   bash scripts/local-tls.sh DIR [HOST...]
#
# writes, in DIR:
#   ca.crt, ca.key    the CA. Made once and kept: trust ca.crt in your browser
#                     once, and every later certificate from it is trusted.
#   tls.crt, tls.key  the server certificate (renewed on every run), for
#                     localhost, 127.0.0.1 and each HOST given (each must
#                     end in .localhost: acme.localhost, app.localhost).
#
# Name every host: Chromium and OpenSSL (so curl) ignore a wildcard
# directly under a top-level name, so *.localhost would match nothing.
# Add a tenant later by running this again with its host too; the CA stays.
#
# The CA can only vouch for those names: it carries a name constraint
# (RFC 5280 §4.2.1.10) permitting localhost, its subdomains and
# 127.0.0.0/8, which browsers and Go enforce. Were ca.key ever stolen, it
# could not impersonate any other site to a browser that trusts ca.crt.
# Keep ca.key to yourself all the same (it is written 0600).
#
# Environment:
#   OPENSSL   the openssl command (default: openssl)
set -euo pipefail

OPENSSL=${OPENSSL:-openssl}

die() { printf 'local-tls: error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: bash scripts/local-tls.sh DIR [HOST...]"
dir=$1
shift
command -v "$OPENSSL" >/dev/null 2>&1 || die "$OPENSSL not found (apt-get install openssl)"

sans="DNS:localhost,IP:127.0.0.1"
for h in "$@"; do
  case "$h" in
    localhost) continue ;;
    \** ) die "host $h: name each host (browsers ignore a wildcard under .localhost)" ;;
    *.localhost) ;;
    *) die "host $h: the local CA only vouches for localhost and names under .localhost" ;;
  esac
  [[ "$h" =~ ^[a-z0-9.-]+$ ]] || die "host $h: use lower-case letters, digits, '-' and '.'"
  sans="$sans,DNS:$h"
done

mkdir -p "$dir"
umask 077

# The CA: reused while it has more than 30 days left, so a browser told to
# trust it once goes on trusting what it signs.
if ! [ -s "$dir/ca.crt" ] || ! [ -s "$dir/ca.key" ] ||
   ! "$OPENSSL" x509 -in "$dir/ca.crt" -noout -checkend $((30 * 24 * 3600)) >/dev/null 2>&1; then
  "$OPENSSL" req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 825 \
    -subj "/O=tenantgate development/CN=tenantgate local CA $(hostname 2>/dev/null || echo host) $(date -u +%Y-%m-%d)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "nameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null ||
    die "could not make the CA in $dir"
  printf 'local-tls: made a new CA: %s\n' "$dir/ca.crt"
fi

# The server certificate, signed by the CA; at most 397 days, what browsers
# accept of a server certificate.
ext=$(mktemp)
csr=$(mktemp)
trap 'rm -f "$ext" "$csr"' EXIT
printf '%s\n' \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" \
  "subjectAltName=$sans" \
  "authorityKeyIdentifier=keyid" >"$ext"
"$OPENSSL" req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$dir/tls.key" -out "$csr" -subj "/CN=localhost" 2>/dev/null ||
  die "could not make the server key in $dir"
"$OPENSSL" x509 -req -in "$csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -set_serial "0x$("$OPENSSL" rand -hex 16)" -days 397 -extfile "$ext" \
  -out "$dir/tls.crt" 2>/dev/null ||
  die "could not sign the server certificate in $dir"
chmod 644 "$dir/ca.crt" "$dir/tls.crt"
"$OPENSSL" verify -CAfile "$dir/ca.crt" "$dir/tls.crt" >/dev/null ||
  die "the new server certificate does not verify against $dir/ca.crt"
printf 'local-tls: %s for %s, signed by %s\n' "$dir/tls.crt" "${sans//DNS:/}" "$dir/ca.crt"
