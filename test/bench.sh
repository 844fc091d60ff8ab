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
#   BENCH_ETCD      1: also run the etcd cases and the scale case (needs the
#                   etcd binary: $TENANTGATE_ETCD, else .tools/etcd/etcd from
#                   make tools); 0: bbolt only (default 1 when the binary
#                   exists)
#   BENCH_SCALE_TENANTS, BENCH_SCALE_USERS
#                   the scale store's population (default 10000 and 100000)
#   BENCH_CHANGES   tenant changes timed from one replica to every replica
#                   (default 6)
#   BENCH_OFF_FLAGS serve flags that turn instrumentation off, for the
#                   session-off case (default --metrics=false --tracing=false).
#                   Every round runs the session case against two more serve
#                   processes of this binary, on copies of the database, that
#                   differ only in these flags, each call carrying Envoy's
#                   traceparent, not sampled, in its gRPC metadata:
#                   session-on (metrics on, tracing on, exporting to an OTLP
#                   endpoint nobody listens on) and session-off
#   BENCH_NOOP_GOGC the GOGC of a second no-op server (default 800: serve's
#                   default --gc-headroom-mib 32 over the runtime's 4 MiB
#                   heap floor, the no-op's live heap being below it); every
#                   round also runs the no-op case against it (label
#                   noop-gc), so the report can set the session case against
#                   a no-op that collects garbage as rarely as serve does
#   BENCH_BASELINE  a tenantgate binary: each round also runs the session
#                   case against it (label session-base), on a copy of the
#                   same database, to compare two builds in one run
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
SCALE_TENANTS=${BENCH_SCALE_TENANTS:-10000}
SCALE_USERS=${BENCH_SCALE_USERS:-100000}
CHANGES=${BENCH_CHANGES:-6}
NOOP_GOGC=${BENCH_NOOP_GOGC:-800}
GO=${GO:-go}
ETCD_BIN=${TENANTGATE_ETCD:-.tools/etcd/etcd}
if [[ -z ${BENCH_ETCD:-} ]]; then
	if [[ -x $ETCD_BIN ]]; then BENCH_ETCD=1; else BENCH_ETCD=0; fi
fi
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

echo "== prepare: tenants, user, tokens (offline, with the real CLI and store)"
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
  - id: globex
    name: Globex Bench
    emailDomains: [globex.bench.test]
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
  - id: initech
    name: Initech Bench
    emailDomains: [initech.bench.test]
    methods:
      - type: password
    roles:
      member: {permissions: ["docs:read"]}
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
cp "$db" "$work/on.db" # bbolt allows one process a file
cp "$db" "$work/off.db"
if [[ -n ${BENCH_BASELINE:-} ]]; then
	[[ -x $BENCH_BASELINE ]] || die "BENCH_BASELINE=$BENCH_BASELINE is not an executable"
	cp "$db" "$work/baseline.db" # bbolt allows one process a file
fi

# free_port: a loopback TCP port nothing listens on now.
free_port() {
	local p
	for p in $(shuf -i 20000-59999 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}

if [[ $BENCH_ETCD == 1 ]]; then
	echo "== etcd: one member on loopback ($ETCD_BIN)"
	[[ -x $ETCD_BIN ]] || die "no etcd binary at $ETCD_BIN: run make tools, set TENANTGATE_ETCD, or BENCH_ETCD=0"
	etcd_client=$(free_port) && etcd_peer=$(free_port) || die "no free port for etcd"
	etcd_url=http://127.0.0.1:$etcd_client
	"$ETCD_BIN" --name bench --data-dir "$work/etcd" \
		--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
		--initial-cluster "bench=http://127.0.0.1:$etcd_peer" --initial-cluster-state new \
		--log-level warn >"$work/etcd.log" 2>&1 &
	etcd_pid=$!
	pids+=("$etcd_pid")
	wait_for curl -fsS "$etcd_url/health" || die "etcd did not start: $(tail -5 "$work/etcd.log")"
	etcd_flags=(--etcd-endpoints "$etcd_url" --master-key-file "$key")

	echo "== prepare the etcd store: the same three tenants and user (prefix /bench/)"
	mkdir -m 700 "$work/etcd-tok" "$work/scale-tok"
	bin/tenantgate tenants apply "${etcd_flags[@]}" --etcd-prefix /bench/ -f "$work/tenants.yaml"
	head -c 24 /dev/urandom | base64 | bin/tenantgate users add "${etcd_flags[@]}" --etcd-prefix /bench/ \
		--tenant acme --email alice@acme.bench.test --role member --password-stdin
	"$work/loadgen" mint -etcd-endpoints "$etcd_url" -etcd-prefix /bench/ -master-key-file "$key" -tenant acme \
		-email alice@acme.bench.test -n "$FRESH" -verify-iterations 3 -out "$work/etcd-tok" >/dev/null
	split -d -a 3 -n "l/$ROUNDS" "$work/etcd-tok/fresh.tok" "$work/etcd-tok/fresh."
	rm "$work/etcd-tok/fresh.tok"

	echo "== prepare the scale store: the same, plus $SCALE_TENANTS tenants and $SCALE_USERS users (prefix /scale/)"
	bin/tenantgate tenants apply "${etcd_flags[@]}" --etcd-prefix /scale/ -f "$work/tenants.yaml"
	head -c 24 /dev/urandom | base64 | bin/tenantgate users add "${etcd_flags[@]}" --etcd-prefix /scale/ \
		--tenant acme --email alice@acme.bench.test --role member --password-stdin
	"$work/loadgen" populate -etcd-endpoints "$etcd_url" -etcd-prefix /scale/ -master-key-file "$key" \
		-tenants "$SCALE_TENANTS" -users "$SCALE_USERS" -results "$results"
	"$work/loadgen" mint -etcd-endpoints "$etcd_url" -etcd-prefix /scale/ -master-key-file "$key" -tenant acme \
		-email alice@acme.bench.test -n 3 -verify-iterations 1 -out "$work/scale-tok" >/dev/null
	# The tenant change the propagation measurement makes: acme's /app/
	# rule wants a permission alice lacks (deny), and back (allow).
	awk '/^  - id: globex/{exit} {print}' "$work/tenants.yaml" >"$work/acme-allow.yaml"
	sed 's/permission: "docs:read"}/permission: "docs:write"}/' "$work/acme-allow.yaml" >"$work/acme-deny.yaml"
	cmp -s "$work/acme-allow.yaml" "$work/acme-deny.yaml" && die "cannot build the tenant change"
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/admin.token")
fi

run_extra=() # more loadgen run flags, for one case
run_case() { # run_case CASE ADDR PID FRESH-FILE [RESULTS [LABEL [TOKEN-FILE]]]
	"${loadgen_pin[@]}" "$work/loadgen" run -addr "$2" -case "$1" -server-pid "$3" ${run_extra[@]+"${run_extra[@]}"} \
		-workers "$WORKERS" -conns "$CONNS" -warmup "$WARMUP" -duration "$DURATION" \
		-host acme.bench.test -path /app/dashboard -tenant acme -cookie-name tenantgate \
		-token-file "${7:-$work/session.tok}" -fresh-file "$4" ${5:+-results "$5"} ${6:+-label "$6"}
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
# The same no-op with serve's garbage-collection headroom (BENCH_NOOP_GOGC).
GOGC=$NOOP_GOGC "${server_pin[@]}" "$work/noop" -addr 127.0.0.1:0 >"$work/noop-gc.out" 2>&1 &
noop_gc_pid=$!
pids+=("$noop_gc_pid")
wait_for grep -q '^listening on ' "$work/noop-gc.out" || die "the no-op server (GOGC=$NOOP_GOGC) did not start: $(cat "$work/noop-gc.out")"
noop_gc_addr=$(awk '/^listening on /{print $3; exit}' "$work/noop-gc.out")

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

# start_serve NAME READY-TIMEOUT-SECONDS FLAGS...: start `tenantgate serve`
# with FLAGS, wait until it is ready, and set serve_pid, serve_grpc,
# serve_admin and serve_ready_ms (start to ready) from its log.
start_serve() {
	local name=$1 timeout=$2 log=$work/serve-$1.log t0 i
	shift 2
	t0=$(date +%s%N)
	"${server_pin[@]}" bin/tenantgate serve --master-key-file "$key" \
		--grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 \
		--base-domain bench.test --insecure-cookies "$@" 2>"$log" &
	serve_pid=$!
	pids+=("$serve_pid")
	for ((i = 0; i < timeout * 10; i++)); do
		grep -q '"msg":"serving"' "$log" && break
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q '"msg":"serving"' "$log" || die "tenantgate ($name) did not start: $(tail -5 "$log")"
	serve_grpc=$(grep -m1 '"msg":"serving"' "$log" | grep -o '"grpc":"[^"]*"' | cut -d'"' -f4)
	serve_admin=$(grep -m1 '"msg":"serving"' "$log" | grep -o '"admin":"[^"]*"' | cut -d'"' -f4)
	[[ -n $serve_grpc && -n $serve_admin ]] || die "cannot read the listen addresses from the serve log ($name)"
	wait_for curl -fsS "http://$serve_admin/readyz" || die "tenantgate ($name) never became ready"
	serve_ready_ms=$((($(date +%s%N) - t0) / 1000000))
}

cases=(session session-on session-off fresh redirect)
# What the instrumentation costs on the cached-session path: session-on
# (metrics on, tracing on but the call not sampled) against session-off
# (the same binary with both off; goal: within 3%). Both are servers of the
# same history, not the one the fresh case fills with tokens (a bigger heap
# means rarer garbage collections); the session-on one exports to a port
# nothing listens on, and the calls come unsampled, so nothing is exported.
otlp_port=$(free_port) || die "no free port for the OTLP endpoint"
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$otlp_port start_serve on 15 --db "$work/on.db" --metrics=true
on_pid=$serve_pid on_grpc=$serve_grpc
grep -q '"msg":"tracing"' "$work/serve-on.log" || die "serve did not turn tracing on: $(tail -5 "$work/serve-on.log")"
read -r -a off_flags <<<"${BENCH_OFF_FLAGS:---metrics=false --tracing=false}"
start_serve off 15 --db "$work/off.db" "${off_flags[@]}"
off_pid=$serve_pid off_grpc=$serve_grpc
if [[ -n ${BENCH_BASELINE:-} ]]; then
	"${server_pin[@]}" "$BENCH_BASELINE" serve --db "$work/baseline.db" --master-key-file "$key" \
		--grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 \
		--base-domain bench.test --insecure-cookies 2>"$work/serve-base.log" &
	base_pid=$!
	pids+=("$base_pid")
	wait_for grep -q '"msg":"serving"' "$work/serve-base.log" || die "the baseline did not start: $(tail -5 "$work/serve-base.log")"
	base_grpc=$(grep -m1 '"msg":"serving"' "$work/serve-base.log" | grep -o '"grpc":"[^"]*"' | cut -d'"' -f4)
	cases+=(session-base)
fi
if [[ $BENCH_ETCD == 1 ]]; then
	echo "== start tenantgate serve on etcd: 3 tenants, and two replicas of the scale store"
	start_serve etcd 15 "${etcd_flags[@]:0:2}" --etcd-prefix /bench/
	etcd_pid_serve=$serve_pid etcd_grpc=$serve_grpc
	start_serve scale-a 120 "${etcd_flags[@]:0:2}" --etcd-prefix /scale/ --admin-token-file "$work/admin.token"
	scale_pid=$serve_pid scale_grpc=$serve_grpc scale_admin=$serve_admin
	echo "scale replica a: started and ready in ${serve_ready_ms}ms"
	start_serve scale-b 120 "${etcd_flags[@]:0:2}" --etcd-prefix /scale/
	scale_b_pid=$serve_pid scale_b_grpc=$serve_grpc
	echo "scale replica b: started and ready in ${serve_ready_ms}ms"
	"$work/loadgen" rss -pid "$tg_pid" -label "the bbolt replica (3 tenants), ready" -results "$results"
	"$work/loadgen" rss -pid "$etcd_pid_serve" -label "the etcd replica (3 tenants), ready" -results "$results"
	"$work/loadgen" rss -pid "$scale_pid" -label "a scale replica, ready" -results "$results"
	cases+=(session-etcd fresh-etcd session-scale)
fi

for ((round = 0; round < ROUNDS; round++)); do
	echo "== round $((round + 1)) of $ROUNDS"
	fresh=$(printf '%s/fresh.%03d' "$work" "$round")
	run_case noop "$noop_addr" "$noop_pid" "$fresh" "$results"
	run_case noop "$noop_gc_addr" "$noop_gc_pid" "$fresh" "$results" noop-gc
	round_cases=("${cases[@]}")
	if ((round % 2 == 1)); then
		# The on/off pair runs in the other order every other round, so
		# that what comes before a run (and what the machine does then)
		# falls on both alike.
		for i in "${!round_cases[@]}"; do
			case ${round_cases[$i]} in
			session-on) round_cases[i]=session-off ;;
			session-off) round_cases[i]=session-on ;;
			esac
		done
	fi
	for c in "${round_cases[@]}"; do
		case $c in
		session-base) run_case session "$base_grpc" "$base_pid" "$fresh" "$results" "$c" ;;
		session-on | session-off)
			run_extra=(-traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00)
			if [[ $c == session-on ]]; then
				run_case session "$on_grpc" "$on_pid" "$fresh" "$results" "$c"
			else
				run_case session "$off_grpc" "$off_pid" "$fresh" "$results" "$c"
			fi
			run_extra=()
			;;
		session-etcd) run_case session "$etcd_grpc" "$etcd_pid_serve" "$fresh" "$results" "$c" "$work/etcd-tok/session.tok" ;;
		fresh-etcd) run_case fresh "$etcd_grpc" "$etcd_pid_serve" "$(printf '%s/etcd-tok/fresh.%03d' "$work" "$round")" "$results" "$c" ;;
		session-scale) run_case session "$scale_grpc" "$scale_pid" "$fresh" "$results" "$c" "$work/scale-tok/session.tok" ;;
		*) run_case "$c" "$tg_grpc" "$tg_pid" "$fresh" "$results" ;;
		esac
	done
done
stop "$noop_pid"
stop "$noop_gc_pid"
stop "$tg_pid"
stop "$on_pid"
stop "$off_pid"
[[ -n ${base_pid:-} ]] && stop "$base_pid"
if [[ $BENCH_ETCD == 1 ]]; then
	"$work/loadgen" rss -pid "$etcd_pid_serve" -label "the etcd replica (3 tenants), after the rounds" -results "$results"
	"$work/loadgen" rss -pid "$scale_pid" -label "a scale replica, after the rounds" -results "$results"
	echo "== propagation: $CHANGES tenant changes at replica a, until both replicas answer by each"
	"$work/loadgen" propagate -admin "http://$scale_admin" -admin-token-file "$work/admin.token" \
		-deny-file "$work/acme-deny.yaml" -allow-file "$work/acme-allow.yaml" -replicas "$scale_grpc,$scale_b_grpc" \
		-token-file "$work/scale-tok/session.tok" -host acme.bench.test -path /app/dashboard -cookie-name tenantgate \
		-n "$CHANGES" -results "$results"
	stop "$etcd_pid_serve"
	stop "$scale_pid"
	stop "$scale_b_pid"
fi

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
