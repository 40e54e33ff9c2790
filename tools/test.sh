#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh clone: set-up (libtorch, data),
# formatting, the crates that must not need libtorch, lints, all tests, the deployment.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)
stage() { printf '\n\033[1m==> %s\033[0m (%ds so far)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "set-up"
bash tools/setup.sh
source tools/env.sh

stage "cargo fmt --check"
cargo fmt --all --check

# What ships to the parties, and the compiler core, must not need libtorch: torch-sys is in
# none of their dependency trees (so no LIBTORCH can matter to their builds).
stage "the runtime, the party binaries and the compiler core need no libtorch"
for pkg in ksnn-formats ksnn-runtime ksnn-party ksnn-graph ksnn-knapsack ksnn-tools; do
  if cargo tree --quiet -p "$pkg" -e normal,build --prefix none | grep -q '^torch-sys '; then
    echo "$pkg depends on torch-sys (libtorch):"
    cargo tree --quiet -p "$pkg" -e normal,build -i torch-sys
    exit 1
  fi
done

stage "cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
# Feature sets the workspace build never sees: the compiler core alone (without clap), and the
# runtime without its network stack (what the compiler links).
cargo clippy --quiet -p ksnn-graph --all-targets -- -D warnings
cargo clippy --quiet -p ksnn-runtime --no-default-features -- -D warnings

stage "tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo test --quiet --workspace --doc
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

# Fixed pair secrets exist only in a debug build with this non-default feature; the one test
# that needs them (networked run = in-memory run, bit for bit) runs in that build alone.
stage "fixed-secret test (feature insecure-test-secrets)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run -p ksnn-party --features insecure-test-secrets -E 'test(bit_for_bit)'
else
  cargo test -p ksnn-party --features insecure-test-secrets --test parties bit_for_bit
fi
# The deployment on one machine: images FROM scratch through Docker, and three hosts in
# network namespaces (docs/deploy.md). Both need root; each says why when it cannot run.
# They build only the party binary in release (it ships, and its size is checked); ksnn and
# ksnn-tools are the debug builds the test stage made.
export KSNN_TOOLS_BIN="$repo/target/debug"
for script in docker-test hosts-test; do
  stage "deployment: tools/$script.sh"
  status=0
  bash "tools/$script.sh" || status=$?
  if (( status == 3 )); then
    echo "(tools/$script.sh skipped; the reason is above)"
  elif (( status != 0 )); then
    echo "tools/$script.sh failed (exit $status)"
    exit "$status"
  fi
done
stage "all checks passed in $(( $(date +%s) - start ))s"
