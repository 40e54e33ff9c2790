#!/usr/bin/env bash
# The first run on a CUDA machine, in one command (docs/gpu.md): the ring-GEMM kernels on the
# CPU and on the device for ResNet18-CIFAR and ResNet50-ImageNet convolution shapes, batched
# distortion against one perturbation at a time, and ResNet50's secure inference with every
# party's linear layers on the device; then one table. Needs a CUDA driver (libcuda.so.1) and
# NVRTC (libnvrtc.so) on the loader's path, and `tools/setup.sh --cuda` for the compiler's GPU.
#   tools/gpu-bench.sh [--out DIR]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="runs/gpu-bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "tools/gpu-bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
source tools/env.sh
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

step "building (release)"
cargo build --release -p ksnn-party -p ksnn-tools -p ksnn-compiler 2>&1 | tail -1
bin=target/release

for model in resnet18-cifar resnet50; do
  step "bench kernels --model $model --backend cuda"
  "$bin/ksnn-tools" bench kernels --model "$model" --backend cuda | tee "$out/kernels-$model.txt"
done
step "bench distortion (batched vs one at a time; GPU batch size)"
"$bin/ksnn" bench distortion --model resnet18-cifar | tee "$out/distortion.txt"
step "ResNet50 secure inference, backend = cuda, and the CPU for comparison"
"$bin/ksnn-tools" bench model --model resnet50 --uniform 4x4 --images 2 --backend cuda | tee "$out/resnet50-cuda.txt"
"$bin/ksnn-tools" bench model --model resnet50 --uniform 4x4 --images 2 --backend cpu | tee "$out/resnet50-cpu.txt"

rate() { grep -F "$2" "$1" | head -1 | grep -oE '[0-9.]+ G MAC/s' | head -1; }
per() { grep -E '^per inference' "$1" | head -1 | sed 's/^per inference: //'; }
{
  echo
  echo "| measurement | result |"
  echo "|---|---|"
  echo "| device, and the route its opening check chose | $(grep -m1 '^CUDA device' "$out/kernels-resnet50.txt") |"
  for model in resnet18-cifar resnet50; do
    f="$out/kernels-$model.txt"
    echo "| $model ring GEMM, best CPU build | $(grep -E 'GEMMs alone on Z_2\^64' "$f" | head -1 | grep -oE '[0-9.]+ G MAC/s') |"
    echo "| $model ring convolutions, CUDA u64 kernels, weights resident | $(rate "$f" 'on CUDA, u64 kernels, weights resident') |"
    echo "| $model ring convolutions, CUDA u64 kernels, weights uploaded too | $(rate "$f" 'on CUDA, u64 kernels, weights uploaded') |"
    echo "| $model ring convolutions, cuBLAS limb route, weights resident | $(rate "$f" 'on CUDA, cuBLAS limbs, weights resident') |"
    echo "| $model f64 GEMM, faer on the CPU (reference) | $(rate "$f" 'f64 GEMMs of the same shapes (faer') |"
    echo "| $model f64 DGEMM, cuBLAS on the device | $(rate "$f" 'on CUDA (cuBLAS)') |"
  done
  echo "| distortion | $(grep -iE 'batched|sparse|per second' "$out/distortion.txt" | tail -2 | tr '\n' ' ') |"
  echo "| ResNet50 4x4, backend = cuda | $(per "$out/resnet50-cuda.txt") |"
  echo "| ResNet50 4x4, backend = cpu | $(per "$out/resnet50-cpu.txt") |"
} | tee "$out/table.md"
echo "outputs in $out/"
