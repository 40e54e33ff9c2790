#!/usr/bin/env bash
# The main job on the embedded default, from a fresh clone: set-up, then the MNIST pipeline
# (experiments/mnist.toml): train mnist-cnn, measure distortion, choose block sizes for 6 % of
# the DReLUs with the knapsack, fine-tune, compile, and classify 200 held-out digits by three
# separate party processes over mutual TLS on loopback; then the same flow on an external
# model (a PyTorch export in ONNX). Stages are cached in runs/, so a second run is quick.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)
stage() { printf '\n\033[1m==> %s\033[0m (%ds so far)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "set-up (libtorch, MNIST)"
bash tools/setup.sh
source tools/env.sh

stage "build (release)"
cargo build --release --quiet -p ksnn-compiler -p ksnn-tools -p ksnn-party

stage "compiler toolchain"
target/release/ksnn version

stage "MNIST pipeline at a 6 % DReLU budget (experiments/mnist.toml)"
target/release/ksnn pipeline --config experiments/mnist.toml

stage "the compiled program (public: all three parties hold it)"
target/release/ksnn-tools inspect runs/mnist/compiled/model.ksnn

stage "an external model: PyTorch dynamo export with external weights (experiments/mnist-onnx.toml)"
target/release/ksnn pipeline --config experiments/mnist-onnx.toml

stage "done in $(( $(date +%s) - start ))s; reports: runs/mnist/report.json, runs/mnist-onnx/report.json; plots: runs/mnist/sweep/sweep.png, runs/mnist/bytes_per_layer.png"
