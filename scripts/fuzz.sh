#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang into build-fuzz/ and
# runs each for SECONDS (default 60). Exits non-zero when a fuzzer finds a
# crash, a sanitizer report, a timeout, an out-of-memory or an engine /
# reference disagreement, and prints the input that reproduces it.
#
# Usage: scripts/fuzz.sh [SECONDS] [FUZZER...]
#   FUZZER: compile_fuzzer, evaluate_fuzzer (default: both)
# Needs clang-14 and libclang-rt-14-dev (apt-get install clang-14
# libclang-rt-14-dev). Environment: PDP_FUZZ_JOBS (parallel workers per
# fuzzer, default 1), PDP_FUZZ_BUILD_DIR (default build-fuzz), CC / CXX
# (default clang-14 / clang++-14).
#
# Corpora persist in build-fuzz/corpus/<fuzzer> (seeded from rules/*.json
# and rules/examples/*.json), so later runs continue where earlier ones
# stopped. Reproduce a finding with: build-fuzz/tests/fuzz/<fuzzer> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${1:-60}"
shift || true
fuzzers=("$@")
[[ ${#fuzzers[@]} -gt 0 ]] || fuzzers=(compile_fuzzer evaluate_fuzzer)
jobs="${PDP_FUZZ_JOBS:-1}"
build="${PDP_FUZZ_BUILD_DIR:-$root/build-fuzz}"

export CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}"
for tool in "$CC" "$CXX"; do
  command -v "$tool" >/dev/null || {
    echo "fuzz.sh: $tool not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
  }
done

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDP_FUZZ=ON \
  -DPDP_BUILD_TESTS=OFF -DPDP_BUILD_BENCH=OFF >/dev/null
ninja -C "$build" "${fuzzers[@]}"

# Seeds: the rule files as JSON, and (written by compile_fuzzer at start-up)
# their binary pdp.v1.RuleSet form. evaluate_fuzzer's input is a seed and
# edit choices, so a few random byte strings are enough to start from.
mkdir -p "$build/corpus/compile_fuzzer" "$build/corpus/evaluate_fuzzer"
cp rules/*.json rules/examples/*.json "$build/corpus/compile_fuzzer/"
if [[ -z "$(ls -A "$build/corpus/evaluate_fuzzer")" ]]; then
  for i in $(seq 1 16); do
    head -c 64 /dev/urandom >"$build/corpus/evaluate_fuzzer/seed-$i"
  done
fi

status=0
for fuzzer in "${fuzzers[@]}"; do
  bin="$build/tests/fuzz/$fuzzer"
  out="$build/findings/$fuzzer"
  mkdir -p "$out"
  log="$out/fuzz.log"
  extra=()
  [[ "$jobs" -le 1 ]] || extra+=(-jobs="$jobs" -workers="$jobs")
  if [[ "$fuzzer" == compile_fuzzer ]]; then
    extra+=(-dict="$root/tests/fuzz/rules.dict" -max_len=16384)
    PDP_FUZZ_BINARY_SEEDS="$build/corpus/compile_fuzzer" "$bin" -runs=0 \
      "$build/corpus/compile_fuzzer" >/dev/null 2>&1 || true
  else
    # Entropic scheduling costs ~3x the executions here (many features per
    # input), more than it gains.
    extra+=(-max_len=512 -entropic=0)
  fi
  echo "fuzz.sh: $fuzzer for ${seconds}s ($jobs job(s)), log $log"
  started=$(date +%s)
  set +e
  # -timeout: one input over 10 s is a hang; -rss_limit_mb: memory bound;
  # -artifact_prefix: where crash-/timeout-/oom- inputs go.
  (cd "$out" && ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    "$bin" "$build/corpus/$fuzzer" "${extra[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 \
      -artifact_prefix="$out/" >"$log" 2>&1)
  rc=$?
  set -e
  # With -jobs, each worker logs to fuzz-<n>.log in the working directory.
  cat "$out"/fuzz-*.log >>"$log" 2>/dev/null || true
  rm -f "$out"/fuzz-*.log
  artifacts=$(find "$out" -maxdepth 1 -newermt "@$started" \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" |
    awk '{s += $2} END {print s + 0}')
  if [[ $rc -ne 0 || -n "$artifacts" ]]; then
    status=1
    echo "fuzz.sh: $fuzzer FAILED (exit $rc) after $((  $(date +%s) - started ))s, $execs runs" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|==== pdp fuzz check failed)' "$log" | head -5 >&2 || true
    for a in $artifacts; do
      echo "fuzz.sh: reproduce with: $bin $a" >&2
    done
    echo "fuzz.sh: full log: $log" >&2
  else
    echo "fuzz.sh: $fuzzer OK: $execs runs in $(( $(date +%s) - started ))s," \
      "corpus $(ls "$build/corpus/$fuzzer" | wc -l) inputs"
  fi
done
exit $status
