#!/usr/bin/env bash
# Print envoy/envoy.yaml with TLS on its listener (the DownstreamTlsContext
# of envoy/README.md) and the given ports, for https in local development
# (make run-sso, docs/sso-keycloak.md#local-https):
#
#   bash scripts/envoy-https.sh --tls-dir DIR [--listen 8443] [--grpc 9001] [--http 9002] [--app 8081] > envoy-https.yaml
#
# DIR holds tls.crt and tls.key (scripts/local-tls.sh makes them); the paths
# written into the config are absolute. --listen is the https port Envoy
# listens on (127.0.0.1); --grpc and --http are tenantgate's --grpc-addr and
# --http-addr ports, --app your application's. Everything else is the
# shipped envoy.yaml, unchanged, so what you run locally is what you ship.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'envoy-https: error: %s\n' "$*" >&2; exit 1; }

tls="" listen=8443 grpc=9001 http=9002 app=8081
while [ $# -gt 0 ]; do
  case "$1" in
    --tls-dir) tls=${2:-}; shift 2 ;;
    --listen) listen=${2:-}; shift 2 ;;
    --grpc) grpc=${2:-}; shift 2 ;;
    --http) http=${2:-}; shift 2 ;;
    --app) app=${2:-}; shift 2 ;;
    *) die "unknown argument $1 (usage: --tls-dir DIR [--listen PORT] [--grpc PORT] [--http PORT] [--app PORT])" ;;
  esac
done
[ -n "$tls" ] || die "--tls-dir is required (make one with: bash scripts/local-tls.sh DIR HOST...)"
for f in tls.crt tls.key; do
  [ -s "$tls/$f" ] || die "no $tls/$f (make it with: bash scripts/local-tls.sh $tls HOST...)"
done
for p in "$listen" "$grpc" "$http" "$app"; do
  [[ "$p" =~ ^[1-9][0-9]{0,4}$ ]] && [ "$p" -le 65535 ] || die "port $p: not a port number"
done
tls=$(cd "$tls" && pwd)

awk -v crt="$tls/tls.crt" -v key="$tls/tls.key" \
  -v listen="$listen" -v grpc="$grpc" -v http="$http" -v app="$app" '
  /^ *port_value: 8080$/ { sub(/8080$/, listen); ports++ }
  /^ *port_value: 9001$/ { sub(/9001$/, grpc); ports++ }
  /^ *port_value: 9002$/ { sub(/9002$/, http); ports++ }
  /^ *port_value: 8081$/ { sub(/8081$/, app); ports++ }
  prev == "      filter_chains:" && $0 == "        - filters:" {
    print "        - transport_socket:"
    print "            name: envoy.transport_sockets.tls"
    print "            typed_config:"
    print "              \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    print "              common_tls_context:"
    print "                alpn_protocols: [h2, http/1.1]"
    print "                tls_params: {tls_minimum_protocol_version: TLSv1_2}"
    print "                tls_certificates:"
    print "                  - certificate_chain: {filename: \"" crt "\"}"
    print "                    private_key: {filename: \"" key "\"}"
    print "          filters:"
    tls++
    prev = $0
    next
  }
  { prev = $0; print }
  END { if (tls != 1 || ports != 4) exit 1 }
' envoy/envoy.yaml || die "envoy/envoy.yaml changed shape: expected one listener filter chain and the ports 8080, 9001, 9002, 8081"
