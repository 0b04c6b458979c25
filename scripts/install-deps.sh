#!/usr/bin/env bash
# Installs everything needed to build and test pdp on Debian bookworm.
#
# Usage: scripts/install-deps.sh [--fuzz]
#   --fuzz  also clang-14 and its libFuzzer / sanitizer runtimes, which only
#           scripts/fuzz.sh needs (CI runs it; the image and the README's
#           test command do not)
#
# Idempotent: when every package is already installed it does not touch apt
# at all, so reruns take well under a second. Uses sudo only when not root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libre2-dev libssl-dev libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev libbenchmark-dev tzdata
  libcpp-httplib-dev prometheus-cpp-dev nginx
)
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)

case "${1:-}" in
  "") ;;
  --fuzz) PACKAGES+=("${FUZZ_PACKAGES[@]}") ;;
  *) echo "usage: scripts/install-deps.sh [--fuzz]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: not root and sudo is not available; missing: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
fi

echo "install-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done (${#missing[@]} installed)"
