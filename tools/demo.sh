#!/usr/bin/env bash
# The main job on the embedded default. What runs today: set-up, the compiler's libtorch
# check, an example program with every layer kind (pseudo-random weights, so its answers are
# meaningless), its inspection, and secure inference of real MNIST digits by three separate
# party processes over mutual TLS on loopback, checked against the cleartext reference.
# Training, distortion, knapsack, fine-tuning and lowering join as their issues land.
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

stage "compiler toolchain"
target/release/ksnn version

out=runs/demo
stage "an example program (every layer kind, pseudo-random weights) in $out"
target/release/ksnn-tools sample --out "$out"
target/release/ksnn-tools inspect "$out/model.ksnn"
target/release/ksnn-tools inspect "$out/spec.json" --program "$out/model.ksnn"
target/release/ksnn-party check --model "$out/model.ksnn" --weights "$out/weights.ksnw"

stage "secure inference: P0, P1, P2 as three processes over mutual TLS, 20 MNIST test digits"
target/release/ksnn-party local --model "$out/model.ksnn" --weights "$out/weights.ksnw" \
  --dataset mnist --n 20 --data "$repo/data" --report "$out/report.json"
target/release/ksnn-tools inspect "$out/report.json"

stage "done in $(( $(date +%s) - start ))s; report: $out/report.json"
