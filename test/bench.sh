#!/usr/bin/env bash
# make bench: Check throughput of tenantgate against a no-op ext_authz server,
# both driven by test/loadgen over real gRPC on loopback. Method and figures:
# docs/performance.md. This is a benchmark, not a test: a missed goal is
# reported, not failed; a wrong answer (or any setup error) fails.
#
# Knobs (environment):
#   BENCH_ROUNDS    rounds of the four cases, interleaved (default 3)
#   BENCH_DURATION  measured time per case and round (default 5s)
#   BENCH_WARMUP    unmeasured time before it      (default 1s)
#   BENCH_WORKERS   concurrent in-flight calls     (default 32)
#   BENCH_CONNS     gRPC connections they share    (default 4)
#   BENCH_FRESH     tokens minted for the fresh case, over all rounds
#                   (default 400000)
#   BENCH_PIN       1: server on CPU 1, loadgen on CPU 0, GOMAXPROCS=1 each;
#                   0: no pinning, both see every core (default 1 when there
#                   are at least 2 CPUs and taskset exists)
#   BENCH_KEEP      1: keep the work directory (tokens, logs, results)
#   BENCH_PROFILE   a directory: afterwards, run the noop, session and fresh
#                   cases again against `loadgen profile-server` (Check wired
#                   as serve wires it, or the static OK with -noop, under a
#                   CPU profile) and write CASE.cpu, CASE.top (flat) and
#                   CASE.cum (cumulative) there
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-5s}
WARMUP=${BENCH_WARMUP:-1s}
WORKERS=${BENCH_WORKERS:-32}
CONNS=${BENCH_CONNS:-4}
FRESH=${BENCH_FRESH:-400000}
GO=${GO:-go}
CPUS=$(getconf _NPROCESSORS_ONLN)
if [[ -z ${BENCH_PIN:-} ]]; then
	if [[ $CPUS -ge 2 ]] && command -v taskset >/dev/null; then BENCH_PIN=1; else BENCH_PIN=0; fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "bench: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }

# stop PID: SIGTERM, then wait for it (tenantgate finishes in-flight calls).
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
}

# wait_for CMD...: retry CMD for up to 15s.
wait_for() {
	local i
	for i in $(seq 150); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	return 1
}

if [[ $BENCH_PIN == 1 ]]; then
	server_pin=(env GOMAXPROCS=1 taskset -c 1)
	loadgen_pin=(env GOMAXPROCS=1 taskset -c 0)
	cores=1
	setup="server pinned to CPU 1, loadgen to CPU 0, GOMAXPROCS=1 each"
else
	server_pin=(env)
	loadgen_pin=(env)
	cores=$CPUS
	setup="no pinning: server and loadgen share all $CPUS CPUs (GOMAXPROCS=$CPUS each)"
fi

echo "== build"
"$GO" build -o bin/tenantgate ./cmd/tenantgate
"$GO" build -o "$work/noop" ./test/noop
"$GO" build -o "$work/loadgen" ./test/loadgen

echo "== machine"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $CPUS"
echo "go:     $("$GO" env GOVERSION) $("$GO" env GOOS)/$("$GO" env GOARCH)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; anything else running skews the figures)"
echo "setup:  $setup; $WORKERS workers over $CONNS connections; $ROUNDS rounds of ${WARMUP} warm-up + ${DURATION} measured per case"

echo "== prepare: tenant, user, tokens (offline, with the real CLI and store)"
db=$work/tenantgate.db
key=$work/tenantgate.key
results=$work/results.jsonl
cat >"$work/tenants.yaml" <<'YAML'
tenants:
  - id: acme
    name: Acme Bench
    emailDomains: [acme.bench.test]
    status: active
    methods:
      - type: password
    roles:
      admin:  {permissions: ["*"], inherits: [member]}
      member: {permissions: ["docs:read"]}
    rules:
      - {path: /public/, access: anonymous}
      - {path: /admin/, permission: "admin:access"}
      - {path: /app/, methods: [GET, HEAD], permission: "docs:read"}
YAML
bin/tenantgate tenants apply --db "$db" --master-key-file "$key" -f "$work/tenants.yaml"
# A random password nobody needs: the bench signs in by minting offline.
head -c 24 /dev/urandom | base64 | bin/tenantgate users add --db "$db" --master-key-file "$key" \
	--tenant acme --email alice@acme.bench.test --role member --password-stdin
"$work/loadgen" mint -db "$db" -master-key-file "$key" -tenant acme -email alice@acme.bench.test \
	-n "$FRESH" -out "$work" -results "$results"

# Each round's fresh case gets tokens no server has seen.
split -d -a 3 -n "l/$ROUNDS" "$work/fresh.tok" "$work/fresh."
rm "$work/fresh.tok"

run_case() { # run_case NAME ADDR PID FRESH-FILE [RESULTS]
	"${loadgen_pin[@]}" "$work/loadgen" run -addr "$2" -case "$1" -server-pid "$3" \
		-workers "$WORKERS" -conns "$CONNS" -warmup "$WARMUP" -duration "$DURATION" \
		-host acme.bench.test -path /app/dashboard -tenant acme -cookie-name tenantgate \
		-token-file "$work/session.tok" -fresh-file "$4" ${5:+-results "$5"}
}

# Both servers run for the whole bench, on the same CPU, but only the one
# under load uses it: an idle gRPC server costs nothing. Interleaving the
# cases round by round spreads whatever else the machine does over all of
# them instead of over one.
echo "== start the no-op ext_authz server and tenantgate serve"
"${server_pin[@]}" "$work/noop" -addr 127.0.0.1:0 >"$work/noop.out" 2>&1 &
noop_pid=$!
pids+=("$noop_pid")
wait_for grep -q '^listening on ' "$work/noop.out" || die "the no-op server did not start: $(cat "$work/noop.out")"
noop_addr=$(awk '/^listening on /{print $3; exit}' "$work/noop.out")

"${server_pin[@]}" bin/tenantgate serve --db "$db" --master-key-file "$key" \
	--grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 \
	--base-domain bench.test --insecure-cookies 2>"$work/serve.log" &
tg_pid=$!
pids+=("$tg_pid")
wait_for grep -q '"msg":"serving"' "$work/serve.log" || die "tenantgate did not start: $(tail -5 "$work/serve.log")"
field() { grep -m1 '"msg":"serving"' "$work/serve.log" | grep -o "\"$1\":\"[^\"]*\"" | cut -d'"' -f4; }
tg_grpc=$(field grpc)
tg_admin=$(field admin)
[[ -n $tg_grpc && -n $tg_admin ]] || die "cannot read the listen addresses from the serve log"
wait_for curl -fsS "http://$tg_admin/readyz" || die "tenantgate never became ready"

for ((round = 0; round < ROUNDS; round++)); do
	echo "== round $((round + 1)) of $ROUNDS"
	fresh=$(printf '%s/fresh.%03d' "$work" "$round")
	run_case noop "$noop_addr" "$noop_pid" "$fresh" "$results"
	for c in session fresh redirect; do
		run_case "$c" "$tg_grpc" "$tg_pid" "$fresh" "$results"
	done
done
stop "$noop_pid"
stop "$tg_pid"

if [[ -n ${BENCH_PROFILE:-} ]]; then
	mkdir -p "$BENCH_PROFILE"
	for c in noop session fresh; do
		echo "== profile: $c -> $BENCH_PROFILE/$c.cpu"
		"${server_pin[@]}" "$work/loadgen" profile-server -db "$db" -cpuprofile "$BENCH_PROFILE/$c.cpu" \
			-base-domain bench.test $([[ $c == noop ]] && echo -noop) >"$work/profile.out" 2>&1 &
		prof_pid=$!
		pids+=("$prof_pid")
		wait_for grep -q '^listening on ' "$work/profile.out" || die "profile-server did not start: $(cat "$work/profile.out")"
		prof_addr=$(awk '/^listening on /{print $3; exit}' "$work/profile.out")
		run_case "$c" "$prof_addr" "$prof_pid" "$work/fresh.000"
		stop "$prof_pid"
		"$GO" tool pprof -top "$work/loadgen" "$BENCH_PROFILE/$c.cpu" >"$BENCH_PROFILE/$c.top" 2>/dev/null || true
		"$GO" tool pprof -top -cum "$work/loadgen" "$BENCH_PROFILE/$c.cpu" >"$BENCH_PROFILE/$c.cum" 2>/dev/null || true
		cp "$work/loadgen" "$BENCH_PROFILE/loadgen"
	done
fi

echo "== summary ($setup)"
"$work/loadgen" report -results "$results" -cores "$cores"
