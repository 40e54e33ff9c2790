#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh clone: set-up (libtorch, data),
# formatting, lints, the builds without libtorch, then all tests.
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

stage "runtime, party binaries and the compiler core build without libtorch"
env -u LIBTORCH -u LD_LIBRARY_PATH cargo build --quiet -p ksnn-runtime -p ksnn-party -p ksnn-graph
# What the compiler links: the runtime without its network stack.
env -u LIBTORCH -u LD_LIBRARY_PATH cargo build --quiet -p ksnn-runtime --no-default-features

stage "cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings

stage "tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo test --quiet --workspace --doc
  cargo nextest run --workspace --exclude ksnn-graph --no-fail-fast
else
  cargo test --workspace --exclude ksnn-graph --no-fail-fast
fi

# The compiler core (ksnn-graph) must build and pass its tests where there is no libtorch.
stage "compiler core tests without libtorch"
if command -v cargo-nextest >/dev/null 2>&1; then
  env -u LIBTORCH -u LD_LIBRARY_PATH cargo nextest run -p ksnn-graph --no-fail-fast
else
  env -u LIBTORCH -u LD_LIBRARY_PATH cargo test -p ksnn-graph --no-fail-fast
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
