#!/usr/bin/env bash
# Builds gRPC's grpc_cli from Debian's own grpc source package, against the
# installed gRPC/protobuf/abseil libraries (Debian packages no grpc_cli).
#
# Usage: scripts/build-grpc-cli.sh [OUT_DIR]      (default: .dev/grpc_cli)
#
# Result: OUT_DIR/grpc_cli. Does nothing when that file already exists.
# The source package is downloaded and unpacked under OUT_DIR/src, objects go
# to OUT_DIR/obj/<source version>. Uses sudo only when not root, and only for apt.
#
# Steps:
#   1. If apt has no deb-src entry for <codename>/main, add one in
#      /etc/apt/sources.list.d/pdp-deb-src.sources (existing files untouched).
#   2. apt-get update (only when needed) and install the build needs, not the
#      package's whole build-dep: g++, pkg-config, dpkg-dev, protoc and
#      grpc_cpp_plugin, libgrpc++-dev, libprotobuf-dev, libprotoc-dev (for
#      the google/protobuf/compiler/importer.h header only; the code is in
#      libprotobuf), libabsl-dev. grpc 1.51 uses absl flags, not gflags.
#   3. apt-get source grpc=<source version of the installed libgrpc++-dev>.
#   4. protoc + grpc_cpp_plugin generate reflection.{pb,grpc.pb}.{h,cc}; the
#      headers are always needed (Debian does not ship them). The .cc files are
#      compiled only if linking against libgrpc++_reflection fails.
#   5. g++ compiles test/cpp/util/{grpc_cli,grpc_tool,cli_call,cli_credentials,
#      proto_file_parser,proto_reflection_descriptor_database,
#      service_describer,test_config_cc}.cc and links OUT_DIR/grpc_cli.
#
# grpc_cli 1.51 has no CA flag: with --channel_creds_type=ssl it trusts the
# roots in $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (default: system roots), e.g.
#   GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=certs/ca.pem OUT_DIR/grpc_cli ls 127.0.0.1:PORT \
#     --channel_creds_type=ssl --ssl_target=localhost \
#     --ssl_client_cert=certs/admin.pem --ssl_client_key=certs/admin.key
# shellcheck disable=SC2016  # '$(FIELD)' is apt-get indextargets syntax
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

usage() {
  echo "usage: $0 [OUT_DIR]" >&2
  exit 2
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case $# in
  0) out_dir="$repo_root/.dev/grpc_cli" ;;
  1) [[ "$1" != -* && -n "$1" ]] || usage; out_dir="$1" ;;
  *) usage ;;
esac

if [[ -x "$out_dir/grpc_cli" ]]; then
  echo "build-grpc-cli: $out_dir/grpc_cli exists; nothing to do"
  exit 0
fi

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
log() { echo "build-grpc-cli: $*"; }

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "build-grpc-cli: not root and sudo is not available" >&2
    exit 1
  fi
  SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
fi

codename=""
if [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
fi
codename="${codename:-bookworm}"

# --- 1. deb-src -----------------------------------------------------------
# apt's own view of its configuration (sources.list, *.list, *.sources).
# With --no-release-info indextargets lists every configured target; without
# it, only targets whose index has been downloaded by apt-get update.
has_deb_src() {
  apt-get indextargets --no-release-info --format '$(RELEASE) $(COMPONENT)' \
    'Created-By: Sources' 2>/dev/null | grep -qx "$codename main"
}
have_sources_index() {
  apt-get indextargets --format '$(RELEASE) $(COMPONENT)' 'Created-By: Sources' \
    2>/dev/null | grep -qx "$codename main"
}

need_update=0
if ! has_deb_src; then
  # Reuse the mirror and keyring of the existing binary entry for
  # <codename>/main; fall back to deb.debian.org.
  site="$(apt-get indextargets --no-release-info \
            --format '$(RELEASE) $(COMPONENT) $(SITE)' 'Created-By: Packages' \
            2>/dev/null \
          | awk -v c="$codename" '$1 == c && $2 == "main" { print $3; exit }')"
  site="${site:-http://deb.debian.org/debian}"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  entry="/etc/apt/sources.list.d/pdp-deb-src.sources"
  log "no deb-src entry for $codename/main; writing $entry ($site)"
  {
    echo "# Added by pdp scripts/build-grpc-cli.sh (for apt-get source grpc)."
    echo "Types: deb-src"
    echo "URIs: $site"
    echo "Suites: $codename"
    echo "Components: main"
    if [[ -r "$keyring" ]]; then echo "Signed-By: $keyring"; fi
  } | "${SUDO[@]}" tee "$entry" >/dev/null
  has_deb_src || { echo "build-grpc-cli: apt still sees no deb-src for $codename/main" >&2; exit 1; }
fi
have_sources_index || need_update=1

# --- 2. packages ------------------------------------------------------------
PACKAGES=(
  g++ pkg-config dpkg-dev xz-utils
  protobuf-compiler protobuf-compiler-grpc
  libgrpc++-dev libprotobuf-dev libprotoc-dev libabsl-dev
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] || need_update=1

if [[ $need_update -eq 1 ]]; then
  log "apt-get update"
  "${SUDO[@]}" apt-get update -qq
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 3. source --------------------------------------------------------------
# The source version that built the installed libraries (1.51.1-3 for
# libgrpc++-dev 1.51.1-3+b1), so the tool matches the headers it links with.
src_pkg="$(dpkg-query -W -f='${source:Package}' libgrpc++-dev)"
src_ver="$(dpkg-query -W -f='${source:Version}' libgrpc++-dev)"
upstream_ver="${src_ver#*:}"
upstream_ver="${upstream_ver%-*}"
src_root="$out_dir/src"
src_dir="$src_root/$src_pkg-$upstream_ver"
mkdir -p "$src_root"
if [[ ! -e "$src_dir/.unpacked" ]]; then
  log "fetching source $src_pkg=$src_ver into $src_root"
  # As root apt would fall back to an unsandboxed download with a warning
  # when _apt cannot write here; ask for that directly.
  apt_opts=()
  [[ "$(id -u)" -ne 0 ]] || apt_opts=(-o APT::Sandbox::User=root)
  (cd "$src_root" && apt-get source -qq --download-only "${apt_opts[@]}" "$src_pkg=$src_ver")
  dsc="$src_root/${src_pkg}_${src_ver#*:}.dsc"
  [[ -f "$dsc" ]] || { echo "build-grpc-cli: no .dsc downloaded in $src_root" >&2; exit 1; }
  rm -rf "$src_dir"
  # apt-get source already checked the files against the signed Sources
  # index; dpkg-source's own gpg check would need the debian-keyring package.
  dpkg-source --no-check -x "$dsc" "$src_dir" >/dev/null
  touch "$src_dir/.unpacked"
fi
util="$src_dir/test/cpp/util"
[[ -f "$util/grpc_cli.cc" ]] || { echo "build-grpc-cli: $util/grpc_cli.cc missing" >&2; exit 1; }

# --- 4. reflection proto code ---------------------------------------------------
obj="$out_dir/obj/${src_ver#*:}"  # per version: unpacked sources keep old mtimes
gens="$obj/gens"
refl_proto=src/proto/grpc/reflection/v1alpha/reflection.proto
mkdir -p "$gens"
log "generating $refl_proto code"
protoc -I"$src_dir" --cpp_out="$gens" --grpc_out="$gens" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" "$src_dir/$refl_proto"

# --- 5. compile and link ------------------------------------------------------
pc_mods=(grpc++ protobuf absl_flags absl_flags_parse)
read -r -a cflags <<<"$(pkg-config --cflags "${pc_mods[@]}")"
read -r -a libs <<<"$(pkg-config --libs "${pc_mods[@]}")"
# -I$src_dir: test/cpp/util/*.h and the core-internal load_file.h that
# cli_credentials.cc uses; the public <grpc/...> headers still come from
# /usr/include (the source's include/ is deliberately not on the path).
cxxflags=(-std=c++17 -O2 -g0 -w "${cflags[@]}" -I"$src_dir" -I"$gens")
jobs="$(nproc 2>/dev/null || echo 2)"

compile() { # compile SRC... in batches of $jobs; objects named after basenames
  local pids=() fail=0 src o p
  for src in "$@"; do
    o="$obj/$(basename "${src%.cc}").o"
    [[ -e "$o" && "$o" -nt "$src" ]] && continue
    g++ "${cxxflags[@]}" -c "$src" -o "$o.tmp" && mv "$o.tmp" "$o" &
    pids+=($!)
    if [[ ${#pids[@]} -ge $jobs ]]; then
      for p in "${pids[@]}"; do wait "$p" || fail=1; done
      pids=()
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  return $fail
}

tool_srcs=()
for f in grpc_cli grpc_tool cli_call cli_credentials proto_file_parser \
         proto_reflection_descriptor_database service_describer test_config_cc; do
  tool_srcs+=("$util/$f.cc")
done
log "compiling ${#tool_srcs[@]} sources (-j$jobs)"
compile "${tool_srcs[@]}"
tool_objs=()
for f in "${tool_srcs[@]}"; do tool_objs+=("$obj/$(basename "${f%.cc}").o"); done

bin_tmp="$out_dir/grpc_cli.tmp"
# Prefer the reflection stubs libgrpc++_reflection already exports.
if g++ -o "$bin_tmp" "${tool_objs[@]}" -lgrpc++_reflection "${libs[@]}" \
     2>"$obj/link-reflection-lib.log"; then
  log "linked against libgrpc++_reflection"
else
  log "libgrpc++_reflection lacks symbols (see $obj/link-reflection-lib.log); compiling generated reflection code"
  gen_srcs=("$gens/${refl_proto%.proto}.pb.cc" "$gens/${refl_proto%.proto}.grpc.pb.cc")
  compile "${gen_srcs[@]}"
  g++ -o "$bin_tmp" "${tool_objs[@]}" "$obj/reflection.pb.o" "$obj/reflection.grpc.pb.o" \
    "${libs[@]}"
fi
# `grpc_cli help` prints the command list and exits 1.
help_out="$("$bin_tmp" help 2>&1 || true)"
[[ "$help_out" == *"grpc_cli ls"* ]] || {
  echo "build-grpc-cli: built binary does not run: $help_out" >&2; exit 1; }
mv "$bin_tmp" "$out_dir/grpc_cli"
log "built $out_dir/grpc_cli"
