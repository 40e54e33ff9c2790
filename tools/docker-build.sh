#!/usr/bin/env bash
# Builds the two images FROM scratch (no image registry is needed):
#   ksnn-party     the stripped party binary and the shared libraries it links
#   ksnn-compiler  ksnn and ksnn-tools with libtorch (skip with --party-only)
# Each image's root file system is gathered here from the release build and `ldd`, then
# `docker build` copies it. Prints each image's size and the party binary's.
#
# KSNN_TOOLS_BIN=DIR takes ksnn and ksnn-tools from DIR (built already) instead of the release
# build; tools/test.sh passes its debug build. The party binary is always the release build.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
party_only=0
[[ "${1:-}" == "--party-only" ]] && party_only=1
source tools/env.sh

out="$repo/target/docker"

# Copies the binary and every shared library `ldd` resolves for it into $2, libraries into
# $3 (inside the rootfs) and the loader at the path the binary names.
gather() {
  local bin="$1" root="$2" libdir="$3"
  mkdir -p "$root$libdir"
  cp "$bin" "$root/"
  ldd "$bin" | while read -r line; do
    local path
    case "$line" in
      *"=> not found"*) echo "error: $bin needs a library that is not found: $line" >&2; exit 1 ;;
      *"=>"*) path="$(awk '{print $3}' <<<"$line")" ;;
      /*) path="$(awk '{print $1}' <<<"$line")"
          mkdir -p "$root$(dirname "$path")"
          cp -L "$path" "$root$path"
          continue ;;
      *) continue ;;
    esac
    [[ -n "$path" && -e "$path" ]] && cp -L "$path" "$root$libdir/"
  done
}

# docker build of docker/Dockerfile.$1 from the context $2, as image ksnn-$1; its output only
# on failure (the client's notice that the classic builder is deprecated is noise here).
build_image() {
  if ! docker build -f "docker/Dockerfile.$1" -t "ksnn-$1" "$2" >"$2.log" 2>&1; then
    cat "$2.log" >&2
    echo "error: docker build of ksnn-$1 failed" >&2
    exit 1
  fi
}

printf '==> release build\n'
pkgs=(-p ksnn-party)
(( party_only )) || [[ -n "${KSNN_TOOLS_BIN:-}" ]] || pkgs+=(-p ksnn-compiler -p ksnn-tools)
cargo build --release --quiet "${pkgs[@]}"
bin="${KSNN_TOOLS_BIN:-$repo/target/release}"

printf '==> party image\n'
rm -rf "$out/party" && mkdir -p "$out/party/rootfs"
gather target/release/ksnn-party "$out/party/rootfs" /lib/x86_64-linux-gnu
strip "$out/party/rootfs/ksnn-party"
size=$(stat -c %s "$out/party/rootfs/ksnn-party")
awk -v s="$size" 'BEGIN { printf "ksnn-party stripped: %d bytes (%.2f MB)\n", s, s / 1e6 }'
build_image party "$out/party"
printf 'image ksnn-party: %s\n' "$(docker image inspect -f '{{.Size}}' ksnn-party) bytes"

(( party_only )) && exit 0
printf '==> compiler image\n'
rm -rf "$out/compiler" && mkdir -p "$out/compiler/rootfs"
for b in ksnn ksnn-tools; do
  [[ -x "$bin/$b" ]] || { echo "error: $bin/$b is not built" >&2; exit 1; }
  gather "$bin/$b" "$out/compiler/rootfs" /usr/lib/ksnn
done
strip "$out/compiler/rootfs/ksnn" "$out/compiler/rootfs/ksnn-tools"
# Folders the unprivileged user owns (COPY --chown in the Dockerfile; ownership in the
# context is not kept).
mkdir -p "$out/compiler/owned/certs" "$out/compiler/owned/work" "$out/compiler/rootfs/tmp"
chmod 1777 "$out/compiler/rootfs/tmp"
build_image compiler "$out/compiler"
printf 'image ksnn-compiler: %s\n' "$(docker image inspect -f '{{.Size}}' ksnn-compiler) bytes"
