#!/usr/bin/env bash
# Runs every benchmark and writes bench/RESULTS.md (see bench/README.md).
#
# Usage: bench/run.sh [--quick] [--no-build] [--build-dir=DIR] [--out=FILE]
#                     [--reps=N] [--duration=SECONDS] [--warmup=SECONDS] [--nice=N]
#
#   1. builds pdpd, pdpctl, engine_bench, load_gen, floor_server and
#      make_rules (Release) in --build-dir (default build-bench), unless
#      --no-build;
#   2. makes a dev PKI and a fresh SQLite file in a temporary directory,
#      starts pdpd and floor_server pinned to core 0 and pushes a 10k-rule
#      bench rule set (make_rules + pdpctl push);
#   3. engine_bench with repetitions (medians), pinned to core 0;
#   4. with load_gen pinned to core 1, --reps times each, interleaved:
#      floor at 1 and 32 in flight, Authorize at 1 and 32 in flight,
#      BatchAuthorize (50 per call) at 32 in flight, of complete requests and
#      of one user's requests sharing a common part, and Authorize at 32 in
#      flight while load_gen pushes a new 10k-rule version every second;
#   5. writes the medians, ratios and the issue's targets to --out.
#
# --nice=N runs the servers, engine_bench and load_gen at that nice value
# (negative needs root): on a machine shared with other work it keeps the
# benchmark's own processes from being time-sliced with it. RESULTS.md
# records the value and the load average.
#
# --quick runs everything very briefly (CI smoke, about 30 s). Exit status:
# 0 when every call succeeded, every decision was the expected one and every
# push succeeded (missed performance targets are reported, not fatal);
# 1 otherwise; 2 on usage errors.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
quick=0
build=1
build_dir="$root/build-bench"
out="$root/bench/RESULTS.md"
reps=""
duration=""
warmup=""
rules=10000
nice_value=0

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --build-dir=*) build_dir="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --reps=*) reps="${arg#*=}" ;;
    --duration=*) duration="${arg#*=}" ;;
    --warmup=*) warmup="${arg#*=}" ;;
    --nice=*) nice_value="${arg#*=}" ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument $arg" >&2; usage ;;
  esac
done
if [[ $quick -eq 1 ]]; then
  : "${reps:=1}" "${duration:=1}" "${warmup:=0.3}"
  engine_args=(--benchmark_filter='BM_Decide/(100|10000)$|BM_DecidePooled/100$|BM_Compile/10000$|BM_ClockOverhead|BM_DependentLoad'
               --benchmark_min_time=0.01 --benchmark_repetitions=1)
else
  : "${reps:=5}" "${duration:=10}" "${warmup:=2}"
  # Repetitions of all sizes in random order, so that a drift of the host
  # between the first sizes and the last does not bias the growth target.
  engine_args=(--benchmark_repetitions=5 --benchmark_min_time=0.5
               --benchmark_enable_random_interleaving=true)
fi
build_dir="$(mkdir -p "$build_dir" && cd "$build_dir" && pwd)"
bin_bench="$build_dir/bench"
bin_service="$build_dir/service"

log() { echo "run.sh: $*" >&2; }

if [[ $build -eq 1 ]]; then
  log "building (Release) in $build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$build_dir" pdpd pdpctl engine_bench load_gen floor_server make_rules
fi
for b in "$bin_service/pdpd" "$bin_service/pdpctl" "$bin_bench/engine_bench" \
         "$bin_bench/load_gen" "$bin_bench/floor_server" "$bin_bench/make_rules"; do
  [[ -x "$b" ]] || { echo "run.sh: $b is not built" >&2; exit 1; }
done

# Server on core 0, clients on core 1 (when there are two cores).
cores="$(nproc)"
prio=()
if [[ $nice_value != 0 ]]; then
  nice -n "$nice_value" true 2>/dev/null || { echo "run.sh: cannot run at nice $nice_value" >&2; exit 2; }
  prio=(nice -n "$nice_value")
fi
if [[ $cores -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
  server_pin=("${prio[@]}" taskset -c 0)
  client_pin=("${prio[@]}" taskset -c 1)
  pinning="servers and engine_bench on core 0 (taskset -c 0), load_gen and pdpctl on core 1 (taskset -c 1)"
else
  server_pin=("${prio[@]}")
  client_pin=("${prio[@]}")
  pinning="none (fewer than 2 cores or no taskset)"
fi
pinning="$pinning; nice $nice_value"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

started_at="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"
"$root/scripts/dev-certs.sh" "$tmp/certs" >/dev/null
certs="$tmp/certs"
"$bin_bench/make_rules" --rules="$rules" --out="$tmp/rules.json"

wait_port() {  # FILE PID NAME
  for _ in $(seq 1 200); do
    [[ -s "$1" ]] && { cat "$1"; return 0; }
    kill -0 "$2" 2>/dev/null || { echo "run.sh: $3 exited; log:" >&2; cat "$tmp/$3.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "run.sh: $3 did not start within 10 s" >&2
  exit 1
}

"${server_pin[@]}" "$bin_service/pdpd" --listen=127.0.0.1:0 --port_file="$tmp/pdpd.port" \
  --db="$tmp/pdp.db" --tls_cert="$certs/server.pem" --tls_key="$certs/server.key" \
  --tls_ca="$certs/ca.pem" --admin_identities='spiffe://pdp.local/admin/*' \
  --gateway_identities='spiffe://pdp.local/gateway/*' --default_rule_set=bench \
  2>"$tmp/pdpd.log" &
pdpd_pid=$!
pids+=("$pdpd_pid")
"${server_pin[@]}" "$bin_bench/floor_server" --listen=127.0.0.1:0 --port_file="$tmp/floor.port" \
  --tls_cert="$certs/server.pem" --tls_key="$certs/server.key" --tls_ca="$certs/ca.pem" \
  2>"$tmp/floor.log" &
floor_pid=$!
pids+=("$floor_pid")
pdpd_port="$(wait_port "$tmp/pdpd.port" "$pdpd_pid" pdpd)"
floor_port="$(wait_port "$tmp/floor.port" "$floor_pid" floor)"

pdpctl=("${client_pin[@]}" "$bin_service/pdpctl" --addr="127.0.0.1:$pdpd_port"
        --ca="$certs/ca.pem" --cert="$certs/admin.pem" --key="$certs/admin.key")
"${pdpctl[@]}" push "$tmp/rules.json" --comment="bench rules" >"$tmp/push0.json"
log "pdpd on port $pdpd_port (10k-rule set 'bench' pushed), floor_server on port $floor_port"

# --- engine ---------------------------------------------------------------
log "engine_bench ${engine_args[*]}"
"${server_pin[@]}" "$bin_bench/engine_bench" "${engine_args[@]}" \
  --benchmark_report_aggregates_only=true --benchmark_format=json \
  >"$tmp/engine.json" 2>"$tmp/engine.err" || { cat "$tmp/engine.err" >&2; exit 1; }
# name <TAB> key <TAB> value for every numeric field of every aggregate.
awk '
  /"name":/ { n = $0; sub(/.*"name": "/, "", n); sub(/".*/, "", n) }
  /^ *"[a-z_0-9]+": -?[0-9.e+-]+,?$/ {
    k = $1; gsub(/[":]/, "", k); v = $2; sub(/,$/, "", v); print n "\t" k "\t" v
  }' "$tmp/engine.json" >"$tmp/engine.tsv"
# engine_value NAME KEY: the median aggregate (or the single run in --quick).
engine_value() {
  awk -F'\t' -v a="$1_median" -v b="$1" -v k="$2" '
    ($1 == a || $1 == b) && $2 == k { v = $3 } END { if (v == "") print "nan"; else print v }' \
    "$tmp/engine.tsv"
}

# --- service --------------------------------------------------------------
common=(--ca="$certs/ca.pem" --cert="$certs/gateway.pem" --key="$certs/gateway.key"
        --rules="$rules" --rule_set=bench --duration_seconds="$duration"
        --warmup_seconds="$warmup" --channels=4)
load() {  # NAME REP SERVER(floor|pdpd) ARGS...
  local name="$1" rep="$2" server="$3"
  shift 3
  local port_file="$tmp/pdpd.port" pid="$pdpd_pid"
  if [[ $server == floor ]]; then port_file="$tmp/floor.port"; pid="$floor_pid"; fi
  "${client_pin[@]}" "$bin_bench/load_gen" --port_file="$port_file" --server_pid="$pid" \
    --label="$name" "${common[@]}" "$@" >"$tmp/$name.$rep.json" 2>"$tmp/$name.$rep.err" || {
      echo "run.sh: load_gen $name failed:" >&2; cat "$tmp/$name.$rep.err" >&2; exit 1; }
}
configs=(floor_1 authorize_1 floor_32 authorize_32 batch_32 batch_common_32 updates_32)
for rep in $(seq 1 "$reps"); do
  log "service rep $rep/$reps (${duration}s + ${warmup}s warmup each)"
  load floor_1 "$rep" floor --mode=authorize --in_flight=1 --check=false
  load authorize_1 "$rep" pdpd --mode=authorize --in_flight=1
  load floor_32 "$rep" floor --mode=authorize --in_flight=32 --check=false
  load authorize_32 "$rep" pdpd --mode=authorize --in_flight=32
  load batch_32 "$rep" pdpd --mode=batch --batch_size=50 --in_flight=32
  load batch_common_32 "$rep" pdpd --mode=batch --batch_size=50 --batch_common --in_flight=32
  load updates_32 "$rep" pdpd --mode=authorize --in_flight=32 --push_every_seconds=1 \
    --push_cert="$certs/admin.pem" --push_key="$certs/admin.key"
done

# jget FILE KEY: a top-level number; jlat FILE PCT: a latency percentile.
jget() { sed -n "s/^  \"$2\": \([-0-9.]*\),\{0,1\}$/\1/p" "$1"; }
jlat() { sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p" <(grep '"latency_us"' "$1"); }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan";
  else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# med CONFIG METRIC: median over reps (METRIC p50/p90/p99/p99.9 is a latency).
med() {
  local f
  for f in "$tmp/$1".*.json; do
    case "$2" in p[0-9]*) jlat "$f" "$2" ;; *) jget "$f" "$2" ;; esac
  done | median
}
# paired CONFIG_A METRIC_A CONFIG_B METRIC_B: the median over repetitions of
# A/B, each pair measured back to back (cancels slow drifts in machine load).
paired() {
  local rep a b
  for rep in $(seq 1 "$reps"); do
    a="$(case "$2" in p[0-9]*) jlat "$tmp/$1.$rep.json" "$2" ;; *) jget "$tmp/$1.$rep.json" "$2" ;; esac)"
    b="$(case "$4" in p[0-9]*) jlat "$tmp/$3.$rep.json" "$4" ;; *) jget "$tmp/$3.$rep.json" "$4" ;; esac)"
    awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.4f\n", a / b }'
  done | median
}
sum() {
  local f total=0 v
  for f in "$tmp/$1".*.json; do v="$(jget "$f" "$2")"; total=$((total + ${v:-0})); done
  echo "$total"
}
fmt() { awk -v v="$1" -v p="${2:-0}" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%.*f\n", p, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f\n", a / b }'; }
# verdict VALUE OP LIMIT
verdict() {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "nan" || v == "") { print "n/a"; exit }
    ok = (op == "<=") ? v <= l : (op == "<") ? v < l : (op == ">=") ? v >= l : v == l
    print ok ? "PASS" : "FAIL" }'
}

failures=0
for c in "${configs[@]}"; do
  e="$(sum "$c" errors)"
  w="$(sum "$c" wrong_decisions)"
  if [[ $e -ne 0 || $w -ne 0 ]]; then
    log "$c: $e failed calls, $w wrong decisions"
    failures=$((failures + 1))
  fi
done
pushes="$(sum updates_32 pushes)"
push_failures="$(sum updates_32 push_failures)"
pushes_late="$(sum updates_32 pushes_late)"
push_ms_median="$(med updates_32 push_ms_p50)"
push_ms_max="$(for f in "$tmp"/updates_32.*.json; do jget "$f" push_ms_max; done | sort -g | tail -1)"
if [[ $push_failures -ne 0 ]]; then
  log "$push_failures pushes failed:"
  grep -h '"push_errors"' "$tmp"/updates_32.*.json >&2
  failures=$((failures + 1))
fi

# --- report ---------------------------------------------------------------
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
kernel="$(uname -sr)"
compiler="$(c++ --version 2>/dev/null | head -1 || echo unknown)"
grpc_version="$(dpkg-query -W -f='${Version}' libgrpc++-dev 2>/dev/null || echo unknown)"
load_at_end="$(cut -d' ' -f1-3 /proc/loadavg)"

e_p50_10k="$(engine_value BM_Decide/10000 p50_ns)"
e_p99_10k="$(engine_value BM_Decide/10000 p99_ns)"
e_p50_100="$(engine_value BM_Decide/100 p50_ns)"
e_p50_100k="$(engine_value BM_Decide/100000 p50_ns)"
e_growth="$(ratio "$e_p50_100k" "$e_p50_100")"
e_compile_100k_ms="$(engine_value BM_Compile/100000 real_time)"
e_bpr_max="nan"
for n in 1000 10000 100000; do
  v="$(engine_value "BM_Decide/$n" bytes_per_rule)"
  [[ $v == nan ]] && continue
  e_bpr_max="$(awk -v a="$e_bpr_max" -v b="$v" 'BEGIN { print (a == "nan" || b > a) ? b : a }')"
done

f32="$(med floor_32 calls_per_second)"
a32="$(med authorize_32 calls_per_second)"
f1p50="$(med floor_1 p50)"
a1p50="$(med authorize_1 p50)"
a32d="$(med authorize_32 decisions_per_second)"
b32d="$(med batch_32 decisions_per_second)"
bc32d="$(med batch_common_32 decisions_per_second)"
a32p99="$(med authorize_32 p99)"
u32p99="$(med updates_32 p99)"
r_calls="$(ratio "$a32" "$f32")"
r_p50="$(ratio "$a1p50" "$f1p50")"
r_batch="$(ratio "$b32d" "$a32d")"
r_batch_common="$(ratio "$bc32d" "$a32d")"
r_upd="$(ratio "$u32p99" "$a32p99")"
pr_calls="$(paired authorize_32 calls_per_second floor_32 calls_per_second)"
pr_p50="$(paired authorize_1 p50 floor_1 p50)"
pr_batch="$(paired batch_32 decisions_per_second authorize_32 decisions_per_second)"
pr_batch_common="$(paired batch_common_32 decisions_per_second authorize_32 decisions_per_second)"
pr_upd="$(paired updates_32 p99 authorize_32 p99)"
upd_errors="$(sum updates_32 errors)"

mkdir -p "$(dirname "$out")"
{
  echo "# pdp benchmark results"
  echo
  if [[ $quick -eq 1 ]]; then
    echo "**QUICK RUN (smoke test): ${duration}s windows, ${reps} rep(s); numbers are not meaningful.**"
    echo
  fi
  echo "Written by \`bench/run.sh\` (see \`bench/README.md\` for the design and how to read this)."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $started_at |"
  echo "| machine | $cores cores, $cpu_model, $kernel |"
  echo "| load average (1/5/15 min) | at start $load_at_start, at end $load_at_end (machine shared with other builds) |"
  echo "| build | Release, $compiler, gRPC $grpc_version |"
  echo "| pinning | $pinning |"
  echo "| service runs | ${reps} repetitions of each configuration, interleaved; each ${warmup} s warmup + ${duration} s measured; medians below |"
  echo "| connections | 4 channels (separate TCP+TLS connections), calls in flight spread over them |"
  echo
  echo "## Commands"
  echo
  echo '```sh'
  echo "bench/run.sh $*"
  echo "# servers (core 0):"
  echo "pdpd --listen=127.0.0.1:0 --db=\$TMP/pdp.db --tls_cert=server.pem --tls_key=server.key --tls_ca=ca.pem \\"
  echo "     --admin_identities='spiffe://pdp.local/admin/*' --gateway_identities='spiffe://pdp.local/gateway/*' --default_rule_set=bench"
  echo "floor_server --listen=127.0.0.1:0 --tls_cert=server.pem --tls_key=server.key --tls_ca=ca.pem"
  echo "make_rules --rules=$rules --out=rules.json && pdpctl push rules.json   # admin certificate"
  echo "# engine (core 0):"
  echo "engine_bench ${engine_args[*]} --benchmark_report_aggregates_only=true"
  echo "# load (core 1), gateway certificate; floor runs add --check=false:"
  echo "load_gen --port_file=F --ca=ca.pem --cert=gateway.pem --key=gateway.key --rules=$rules --rule_set=bench \\"
  echo "         --channels=4 --warmup_seconds=$warmup --duration_seconds=$duration --mode=authorize|batch --in_flight=1|32 [--batch_size=50 [--batch_common]]"
  echo "# updates: the authorize 32-in-flight run plus --push_every_seconds=1 --push_cert=admin.pem --push_key=admin.key"
  echo '```'
  echo
  echo "## Engine (in process, one decision per iteration, median of repetitions)"
  echo
  echo "| rules | p50 ns | p99 ns | mean ns | decision structure bytes/rule | compile ms |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for n in 10 100 1000 10000 100000; do
    p50="$(engine_value "BM_Decide/$n" p50_ns)"
    [[ $p50 == nan ]] && continue
    echo "| $n | $(fmt "$p50") | $(fmt "$(engine_value "BM_Decide/$n" p99_ns)") |" \
         "$(fmt "$(engine_value "BM_Decide/$n" mean_ns)") |" \
         "$(fmt "$(engine_value "BM_Decide/$n" bytes_per_rule)") |" \
         "$(fmt "$(engine_value "BM_Compile/$n" real_time)" 1) |"
  done
  echo
  echo "Each decision is timed on its own with \`steady_clock\`; p50/p99 include the clock's cost" \
       "($(fmt "$(engine_value BM_ClockOverhead real_time)" 1) ns for two reads). Requests: a third each permit, deny, not applicable;" \
       "each parsed from its bytes onto an arena just before its decision (untimed), as pdpd parses a call's request."
  pooled_100="$(engine_value BM_DecidePooled/100 p50_ns)"
  pooled_100k="$(engine_value BM_DecidePooled/100000 p50_ns)"
  if [[ $pooled_100k != nan ]]; then
    echo
    echo "The same decisions on requests read from a pool of 3000 (\`BM_DecidePooled\`, how this section" \
         "measured before 2026-12-04: each request last touched 3000 decisions earlier, so its own lines are" \
         "cache misses, the more so the more of the cache the rule set takes): p50 $(fmt "$pooled_100") ns at 100" \
         "rules, $(fmt "$pooled_100k") ns at 100k (×$(fmt "$(ratio "$pooled_100k" "$pooled_100")" 2))."
  fi
  load_80="$(engine_value BM_DependentLoad/MiB:80 real_time)"
  if [[ $load_80 != nan ]]; then
    echo
    echo "The machine's memory latency during this section (\`BM_DependentLoad\`: one dependent load" \
         "after another through random 64-byte lines): $(fmt "$(engine_value BM_DependentLoad/MiB:1 real_time)" 1) ns" \
         "within 1 MiB, $(fmt "$(engine_value BM_DependentLoad/MiB:8 real_time)") ns over 8 MiB," \
         "$(fmt "$load_80") ns over 80 MiB (about the 100k-rule structure). It moves with other tenants'" \
         "use of the cache and memory, and the 100k-rule p50 with it."
  fi
  per() { awk -v a="$1" 'BEGIN { printf "%.0f", a / 50 }'; }
  for shape in 0 1; do
    w0="$(engine_value "BM_BatchCallWork/0/$shape" real_time)"
    w1="$(engine_value "BM_BatchCallWork/1/$shape" real_time)"
    w2="$(engine_value "BM_BatchCallWork/2/$shape" real_time)"
    [[ $w2 == nan ]] && continue
    if [[ $shape == 0 ]]; then what="complete requests"; else what="one user's requests with a common part"; fi
    echo
    echo "A BatchAuthorize ×50 call's own work without gRPC (\`BM_BatchCallWork/*/$shape\`, $what;" \
         "pdpd's per-call arena, 10k rules): $(per "$w2") ns per decision for parsing, deciding and" \
         "serializing; $(per "$w0") ns parsing alone, $(per "$w1") ns parsing and deciding."
  done
  echo
  echo "## Service (loopback, mTLS, 10k-rule set; medians of ${reps})"
  echo
  echo "| configuration | calls/s | decisions/s | p50 µs | p90 µs | p99 µs | p99.9 µs | failed calls | server CPU µs/call | client CPU |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${configs[@]}"; do
    case "$c" in
      floor_1) d="floor (empty handler), 1 in flight" ;;
      floor_32) d="floor (empty handler), 32 in flight" ;;
      authorize_1) d="Authorize, 1 in flight" ;;
      authorize_32) d="Authorize, 32 in flight" ;;
      batch_32) d="BatchAuthorize ×50, 32 in flight" ;;
      batch_common_32) d="BatchAuthorize ×50 with a common part, 32 in flight" ;;
      updates_32) d="Authorize, 32 in flight, push every 1 s" ;;
    esac
    echo "| $d | $(fmt "$(med "$c" calls_per_second)") | $(fmt "$(med "$c" decisions_per_second)") |" \
         "$(fmt "$(med "$c" p50)") | $(fmt "$(med "$c" p90)") | $(fmt "$(med "$c" p99)") |" \
         "$(fmt "$(med "$c" p99.9)") | $(sum "$c" errors) |" \
         "$(fmt "$(med "$c" server_cpu_us_per_call)" 1) | $(fmt "$(med "$c" client_cpu_util)" 2) |"
  done
  echo
  echo "Failed calls are summed over all repetitions, warmup included; every Authorize/BatchAuthorize" \
       "decision was checked against the workload's expected answer: $(( $(sum authorize_1 wrong_decisions) + $(sum authorize_32 wrong_decisions) + $(sum batch_32 wrong_decisions) + $(sum batch_common_32 wrong_decisions) + $(sum updates_32 wrong_decisions) )) wrong." \
       "Server CPU is pdpd's or floor_server's user+system time in the window divided by calls;" \
       "client CPU is load_gen's share of its core."
  echo
  echo "Updates: $pushes pushes of the 10k-rule set by load_gen's admin connection, one per second" \
       "(each a new version: compile, SQLite, swap), $push_failures failed, $pushes_late overran their second;" \
       "PutRuleSet round trip median $(fmt "$push_ms_median") ms, max $(fmt "$push_ms_max") ms."
  echo
  echo "## Targets (issue 3)"
  echo
  echo "Service ratios are ratios of the medians above; \"paired\" is the median of the per-repetition"
  echo "ratios of runs made back to back, which cancels slow changes in the machine's load."
  echo
  echo "| target | measured | paired | result |"
  echo "|---|---|---|---|"
  echo "| engine p50 ≤ 1 µs at 10k rules | $(fmt "$e_p50_10k") ns | | $(verdict "$e_p50_10k" "<=" 1000) |"
  echo "| engine p99 ≤ 5 µs at 10k rules | $(fmt "$e_p99_10k") ns | | $(verdict "$e_p99_10k" "<=" 5000) |"
  echo "| engine p50 grows < 2× from 100 to 100k rules | $(fmt "$e_p50_100") → $(fmt "$e_p50_100k") ns (×$(fmt "$e_growth" 2)) | | $(verdict "$e_growth" "<" 2) |"
  echo "| compile 100k rules ≤ 1 s | $(fmt "$e_compile_100k_ms") ms | | $(verdict "$e_compile_100k_ms" "<=" 1000) |"
  echo "| ≤ 1 KiB decision structure per rule (largest of 1k, 10k, 100k rules; smaller sets are mostly fixed overhead, see the engine table) | $(fmt "$e_bpr_max") B | | $(verdict "$e_bpr_max" "<=" 1024) |"
  echo "| Authorize ≥ 90% of floor calls/s at 32 in flight | $(fmt "$a32") / $(fmt "$f32") = $(fmt "$r_calls" 3) | $(fmt "$pr_calls" 3) | $(verdict "$r_calls" ">=" 0.9) |"
  echo "| Authorize p50 within 15% of floor at 1 in flight | $(fmt "$a1p50" 1) / $(fmt "$f1p50" 1) µs = $(fmt "$r_p50" 3) | $(fmt "$pr_p50" 3) | $(verdict "$r_p50" "<=" 1.15) |"
  echo "| BatchAuthorize ×50 ≥ 10× single-call decisions/s (32 in flight), complete requests | $(fmt "$b32d") / $(fmt "$a32d") = $(fmt "$r_batch" 2) | $(fmt "$pr_batch" 2) | $(verdict "$r_batch" ">=" 10) |"
  echo "| the same, one user's requests with a common part | $(fmt "$bc32d") / $(fmt "$a32d") = $(fmt "$r_batch_common" 2) | $(fmt "$pr_batch_common" 2) | $(verdict "$r_batch_common" ">=" 10) |"
  echo "| push every 1 s under load raises p99 < 20% | $(fmt "$u32p99" 1) / $(fmt "$a32p99" 1) µs = $(fmt "$r_upd" 3) | $(fmt "$pr_upd" 3) | $(verdict "$r_upd" "<" 1.2) |"
  echo "| no call fails during updates | $upd_errors failed, $push_failures failed pushes | | $(verdict "$((upd_errors + push_failures))" "==" 0) |"
  echo
  echo "<details><summary>Every service run</summary>"
  echo
  echo "| run | calls/s | decisions/s | p50 | p90 | p99 | p99.9 µs | errors | wrong | server µs/call | client CPU |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${configs[@]}"; do
    for rep in $(seq 1 "$reps"); do
      f="$tmp/$c.$rep.json"
      echo "| $c #$rep | $(fmt "$(jget "$f" calls_per_second)") | $(fmt "$(jget "$f" decisions_per_second)") |" \
           "$(jlat "$f" p50) | $(jlat "$f" p90) | $(jlat "$f" p99) | $(jlat "$f" p99.9) |" \
           "$(jget "$f" errors) | $(jget "$f" wrong_decisions) | $(fmt "$(jget "$f" server_cpu_us_per_call)" 1) |" \
           "$(fmt "$(jget "$f" client_cpu_util)" 2) |"
    done
  done
  echo
  echo "</details>"
} >"$out"
log "wrote $out"

if [[ $failures -ne 0 ]]; then
  log "FAILED: failed calls, wrong decisions or failed pushes (see above)"
  exit 1
fi
