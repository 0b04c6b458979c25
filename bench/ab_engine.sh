#!/usr/bin/env bash
# A/B of two engine_bench binaries on a busy, shared machine: runs them
# alternately (A, B, A, B, ...) so that both see the same drifts of the
# machine's load, and prints each one's median p50 and p99 per rule-set size,
# the growth of p50 from 100 to 100k rules, and B/A ratios.
#
#   bench/ab_engine.sh OLD_ENGINE_BENCH NEW_ENGINE_BENCH [ROUNDS] [MIN_TIME]
#   bench/ab_engine.sh ./baseline_engine_bench build/bench/engine_bench 7
#
# Runs at nice -5 when allowed (root), else at the current priority.
set -euo pipefail

a="${1:?usage: ab_engine.sh OLD NEW [ROUNDS] [MIN_TIME]}"
b="${2:?usage: ab_engine.sh OLD NEW [ROUNDS] [MIN_TIME]}"
rounds="${3:-5}"
min_time="${4:-0.3}"
sizes=(100 1000 10000 100000)

prio=()
if nice -n -5 true 2>/dev/null; then prio=(nice -n -5); fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

filter="BM_Decide/($(IFS='|'; echo "${sizes[*]}"))\$"
# run LABEL BINARY: one run, appended to $tmp/all.tsv as label, size, p50, p99.
run() {
  "${prio[@]}" "$2" --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
    --benchmark_format=json 2>/dev/null |
    awk -v label="$1" '
      /"name":/ { n = $0; sub(/.*"name": "BM_Decide\//, "", n); sub(/".*/, "", n) }
      /"p50_ns":/ { p50 = $2; sub(/,$/, "", p50) }
      /"p99_ns":/ { p99 = $2; sub(/,$/, "", p99); print label "\t" n "\t" p50 "\t" p99 }' \
    >>"$tmp/all.tsv"
}
for round in $(seq 1 "$rounds"); do
  echo "round $round/$rounds (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  run A "$a"
  run B "$b"
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan";
  else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { awk -F'\t' -v l="$1" -v n="$2" -v c="$3" '$1 == l && $2 == n { print $c }' \
  "$tmp/all.tsv" | median; }

printf 'A = %s\nB = %s\n%s rounds each, alternating, --benchmark_min_time=%s; medians (ns)\n\n' \
  "$a" "$b" "$rounds" "$min_time"
printf '| rules | A p50 | B p50 | B/A | A p99 | B p99 | B/A |\n|---:|---:|---:|---:|---:|---:|---:|\n'
for n in "${sizes[@]}"; do
  a50="$(med A "$n" 3)" b50="$(med B "$n" 3)" a99="$(med A "$n" 4)" b99="$(med B "$n" 4)"
  awk -v n="$n" -v a50="$a50" -v b50="$b50" -v a99="$a99" -v b99="$b99" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", n, a50, b50, b50 / a50, a99, b99, b99 / a99 }'
done
# Growth: the median over rounds of each round's 100k/100 ratio, and the
# ratio of the medians.
for l in A B; do
  paired="$(awk -F'\t' -v l="$l" '$1 == l && $2 == 100 { lo[++i] = $3 }
    $1 == l && $2 == 100000 { hi[++j] = $3 }
    END { for (k = 1; k <= i && k <= j; ++k) print hi[k] / lo[k] }' "$tmp/all.tsv" | median)"
  awk -v l="$l" -v lo="$(med "$l" 100 3)" -v hi="$(med "$l" 100000 3)" -v p="$paired" 'BEGIN {
    printf "%s: p50 growth 100 -> 100k rules: x%.2f (ratio of medians), x%.2f (median of per-round ratios)\n", l, hi / lo, p }'
done
