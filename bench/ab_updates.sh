#!/usr/bin/env bash
# A/B of two pdpd binaries under pushes: both serve side by side on core 0
# (each with its own SQLite file and the 10k-rule bench set); load_gen on
# core 1 runs Authorize at 32 in flight against A without pushes, A with a
# push every second, then the same against B, for each round. Prints every
# run and, per binary, the median over rounds of p99(with) / p99(without),
# the push round trip and how many pushes overran their second.
#
#   bench/ab_updates.sh OLD_PDPD NEW_PDPD [ROUNDS] [SECONDS] [BUILD_DIR]
#   bench/ab_updates.sh ./pdpd.before build-bench/service/pdpd 4 10
#
# load_gen, make_rules and pdpctl come from BUILD_DIR (default build-bench).
# Runs at nice -10 when allowed (root), else at the current priority.
set -euo pipefail

usage="usage: ab_updates.sh OLD_PDPD NEW_PDPD [ROUNDS] [SECONDS] [BUILD_DIR]"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin_a="$(realpath "${1:?$usage}")"
bin_b="$(realpath "${2:?$usage}")"
rounds="${3:-4}"
seconds="${4:-10}"
build="$(realpath "${5:-$root/build-bench}")"

prio=()
if nice -n -10 true 2>/dev/null; then prio=(nice -n -10); fi
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

"$root/scripts/dev-certs.sh" "$tmp/certs" >/dev/null
certs="$tmp/certs"
"$build/bench/make_rules" --rules=10000 --out="$tmp/rules.json"

start() {  # NAME BINARY
  mkdir -p "$tmp/$1"
  "${prio[@]}" taskset -c 0 "$2" --listen=127.0.0.1:0 --port_file="$tmp/$1/port" \
    --db="$tmp/$1/pdp.db" --tls_cert="$certs/server.pem" --tls_key="$certs/server.key" \
    --tls_ca="$certs/ca.pem" --admin_identities='spiffe://pdp.local/admin/*' \
    --gateway_identities='spiffe://pdp.local/gateway/*' --default_rule_set=bench \
    2>"$tmp/$1/log" &
  pids+=("$!")
  echo "$!" >"$tmp/$1/pid"
  for _ in $(seq 1 200); do
    [[ -s "$tmp/$1/port" ]] && break
    sleep 0.05
  done
  [[ -s "$tmp/$1/port" ]] || { echo "ab_updates.sh: $1 did not start" >&2; cat "$tmp/$1/log" >&2; exit 1; }
  taskset -c 1 "$build/service/pdpctl" --addr="127.0.0.1:$(cat "$tmp/$1/port")" \
    --ca="$certs/ca.pem" --cert="$certs/admin.pem" --key="$certs/admin.key" \
    push "$tmp/rules.json" >/dev/null
}
start A "$bin_a"
start B "$bin_b"

# num FILE KEY: a number from load_gen's JSON.
num() { grep -o "\"$2\": [0-9.]*" "$1" | head -1 | awk '{ print $2 }'; }
for round in $(seq 1 "$rounds"); do
  echo "round $round/$rounds (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  for side in A B; do
    for mode in steady push; do
      extra=()
      if [[ $mode == push ]]; then
        extra=(--push_every_seconds=1 --push_cert="$certs/admin.pem" --push_key="$certs/admin.key")
      fi
      out="$tmp/$side.$mode.$round.json"
      "${prio[@]}" taskset -c 1 "$build/bench/load_gen" --port_file="$tmp/$side/port" \
        --server_pid="$(cat "$tmp/$side/pid")" --ca="$certs/ca.pem" --cert="$certs/gateway.pem" \
        --key="$certs/gateway.key" --rules=10000 --rule_set=bench --channels=4 \
        --warmup_seconds=1 --duration_seconds="$seconds" --mode=authorize --in_flight=32 \
        "${extra[@]}" >"$out"
      line="$side $mode round $round: $(num "$out" calls_per_second) calls/s, p99 $(num "$out" p99) µs"
      if [[ $mode == push ]]; then
        line="$line, $(num "$out" pushes) pushes, $(num "$out" pushes_late) late, round trip p50 $(num "$out" push_ms_p50) ms"
        echo "$side $(num "$tmp/$side.steady.$round.json" p99) $(num "$out" p99) $(num "$out" push_ms_p50) $(num "$out" pushes) $(num "$out" pushes_late)" >>"$tmp/summary"
      fi
      echo "$line"
    done
  done
done

echo
echo "median over $rounds rounds (p99 with pushes / p99 without, push round trip):"
for side in A B; do
  awk -v side="$side" '
    $1 == side { n++; ratio[n] = $3 / $2; trip[n] = $4; pushes += $5; late += $6 }
    function median(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END { printf "%s: p99 x%.3f, push round trip %.0f ms, %d of %d pushes late\n",
          side, median(ratio, n), median(trip, n), late, pushes }' "$tmp/summary"
done
