#!/usr/bin/env bash
# `make run`: a working demo on the embedded store. Envoy on :8080 in front of a
# demo upstream, tenantgate deciding every request, two password tenants on
# *.localhost. Everything listens on 127.0.0.1 and stops with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY=${TENANTGATE_ENVOY:-.tools/envoy/envoy/_bin/envoy}
[ -x "$ENVOY" ] || { echo "demo: Envoy not found at $ENVOY (run: make tools)" >&2; exit 1; }
RUN=.run
mkdir -p "$RUN"
DB=$RUN/demo.db
KEY=$RUN/demo.key
TG=bin/tenantgate

# A fresh database each time, so the demo always starts from the same state.
rm -f "$DB"
"$TG" tenants apply --db "$DB" --master-key-file "$KEY" -f scripts/demo-tenants.yaml
printf '%s' 'acme-demo-password' | "$TG" users add --db "$DB" --master-key-file "$KEY" --tenant acme --email alice@acme.test --role admin --password-stdin
printf '%s' 'globex-demo-password' | "$TG" users add --db "$DB" --master-key-file "$KEY" --tenant globex --email gina@globex.test --role member --password-stdin
printf '%s' 'shared-demo-password' | "$TG" users add --db "$DB" --master-key-file "$KEY" --tenant acme --email bob@example.test --role member --password-stdin
"$TG" users add --db "$DB" --master-key-file "$KEY" --tenant globex --email bob@example.test --role member

go build -o bin/demo-upstream ./test/echo

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$TG" serve --db "$DB" --master-key-file "$KEY" --base-domain localhost --insecure-cookies 2>"$RUN/tenantgate.log" &
pids+=($!)
bin/demo-upstream -addr 127.0.0.1:8081 2>"$RUN/upstream.log" &
pids+=($!)
"$ENVOY" -c envoy/envoy.yaml --base-id 7001 -l warning --log-path "$RUN/envoy.log" --file-flush-interval-msec 1000 >"$RUN/access.log" &
pids+=($!)

for i in $(seq 1 100); do
  if curl -fsS -o /dev/null http://127.0.0.1:9003/readyz 2>/dev/null && curl -s -o /dev/null http://127.0.0.1:8080/ 2>/dev/null; then break; fi
  sleep 0.1
done

cat <<MSG

tenantgate demo is running (logs in $RUN/; Envoy access log: $RUN/access.log). Open in a browser:

  http://acme.localhost:8080/         Acme Corp     alice@acme.test   / acme-demo-password   (admin)
  http://globex.localhost:8080/       Globex        gina@globex.test  / globex-demo-password (member)
  bob@example.test / shared-demo-password is a member of both: one password, a session per tenant.

  http://acme.localhost:8080/public/  anonymous area (no sign-in)
  http://acme.localhost:8080/admin/   admins only (bob gets 403)

The upstream echoes the headers it receives: look for x-tenant-id and x-user-*.
From a terminal:  curl -i -H 'Accept: text/html' http://acme.localhost:8080/
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "demo: a process exited; see $RUN/*.log" >&2
