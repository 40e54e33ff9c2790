#!/usr/bin/env bash
# The main job on the embedded default. What runs today: set-up, the compiler's libtorch
# check, an example program with every layer kind, its inspection, and a secure three-party
# run of it (in one process) checked against the cleartext reference. Training, distortion,
# knapsack, fine-tuning, lowering and TLS parties join as their issues land.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)
stage() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

stage "set-up (libtorch, MNIST)"
bash tools/setup.sh
source tools/env.sh

stage "build (release)"
cargo build --release --quiet -p ksnn-compiler -p ksnn-tools -p ksnn-party
cargo build --release --quiet -p ksnn-runtime --examples

stage "compiler toolchain"
target/release/ksnn version

out=runs/demo
stage "an example program (every layer kind, pseudo-random weights) in $out"
target/release/ksnn-tools sample --out "$out"
target/release/ksnn-tools inspect "$out/model.ksnn"
target/release/ksnn-tools inspect "$out/spec.json" --program "$out/model.ksnn"
target/release/ksnn-party check --model "$out/model.ksnn" --weights "$out/weights.ksnw"

stage "secure inference: P0, P1, P2 in one process, 8 inputs, against the reference"
(cd "$out" && "$repo/target/release/examples/three_party" . 8)

stage "done in $(( $(date +%s) - start ))s; report: $out/report.json"
