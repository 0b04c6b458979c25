#!/usr/bin/env bash
# Builds pdp with sanitizers (PDP_SANITIZE, see CMakeLists.txt) and runs
# tests under them.
#
# Usage: scripts/sanitize.sh [address|thread] [extra ctest args]
#   address  build-asan/, -fsanitize=address,undefined: the whole CTest
#            suite, with leak checking (tests/lsan.supp silences leaks
#            inside gRPC's and protobuf's process-lifetime singletons only)
#   thread   build-tsan/, -fsanitize=thread: the concurrency tests
#            (hot swap under load, concurrent store puts, the concurrency
#            test, the differential test, the decision log's queue and
#            writer, metrics, graceful shutdown, the forward-auth server,
#            certificate rotation, the ops end-to-end tests, the background
#            worker's scheduling), with
#            tests/tsan.supp for reports
#            inside Debian's uninstrumented gRPC / protobuf / Abseil
# Compiler: $CXX, else c++ (g++ 12 on Debian bookworm); clang works too.
# Any sanitizer report fails the test that triggered it (UBSan aborts,
# ASan/TSan halt), so the script's exit status is ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
mode="${1:-address}"
shift || true

case "$mode" in
  address)
    build=build-asan
    sanitizers=address,undefined
    # Everything: the full suite.
    filter=()
    ;;
  thread)
    build=build-tsan
    sanitizers=thread
    filter=(-R 'HotSwap|PolicyRegistryTest|StoreTest\.Concurrent|ConcurrencyTest|WorkerTest|DifferentialTest|DecisionLog|MetricsTest|MetricsServerTest|ShutdownTest|ForwardAuthServerTest|TlsRotationTest|OpsE2e')
    ;;
  *)
    echo "usage: scripts/sanitize.sh [address|thread] [ctest args]" >&2
    exit 2
    ;;
esac

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPDP_SANITIZE="$sanitizers" -DPDP_BUILD_BENCH=OFF >/dev/null
ninja -C "$build"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# ignore_noninstrumented_modules: memory that Debian's uninstrumented
# libraries (gRPC, upb, Abseil, OpenSSL) touch through TSan's interceptors
# (memcpy, malloc/free) is not judged; their other accesses are invisible to
# TSan, so such reports are half-seen. pdp's own accesses are all checked.
export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp:ignore_noninstrumented_modules=1:halt_on_error=1:second_deadlock_stack=1:history_size=4:${TSAN_OPTIONS:-}"

cd "$build"
started=$(date +%s)
set +e
ctest --output-on-failure --timeout 1800 -j2 "${filter[@]}" "$@"
rc=$?
set -e
echo "sanitize.sh: $mode ($sanitizers) tests finished in $(( $(date +%s) - started ))s, exit $rc"
exit $rc
