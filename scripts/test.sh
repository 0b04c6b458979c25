#!/usr/bin/env bash
# From a fresh clone to a passing test suite: installs dependencies (apt),
# builds everything (library, binaries, tests, benchmarks) and runs every
# test with CTest. CI (.ci/run) runs this first, then the suite under
# ASan+UBSan, then the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 -j2
