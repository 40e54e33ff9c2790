# Sourced by tools/test.sh and tools/demo.sh after tools/setup.sh: points tch at the
# repository's libtorch and the programs at the repository's data.
_ksnn_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_ksnn_site="$(ls -d "$_ksnn_repo"/.torch/lib/python3*/site-packages 2>/dev/null | head -1)"
if [ -z "$_ksnn_site" ]; then
  echo "tools/env.sh: no libtorch in $_ksnn_repo/.torch; run tools/setup.sh first" >&2
  return 1
fi
export LIBTORCH="$_ksnn_site/torch"
# The compiler's build script bakes an rpath in; this is only belt and braces.
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KSNN_DATA="$_ksnn_repo/data"
# NVRTC for the tests that compile the CUDA kernel (tools/setup.sh installs it).
if [ -d "$_ksnn_repo/.nvrtc/lib" ]; then
  export LD_LIBRARY_PATH="$_ksnn_repo/.nvrtc/lib:$LD_LIBRARY_PATH"
fi
# `tools/setup.sh --cuda` installed the CUDA libtorch: link libtorch_cuda into the compiler.
if grep -q "CUDA dependencies" "$_ksnn_repo/.torch/.ksnn-stamp" 2>/dev/null; then
  export TCH_LINK_CUDA=1
fi
unset _ksnn_repo _ksnn_site
