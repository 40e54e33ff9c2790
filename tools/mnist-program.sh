# Sourced by tools/docker-test.sh and tools/hosts-test.sh, so both deployments are checked
# against the same program and the same loopback run.
#
# mnist_program DIR: writes DIR/model/ (mnist-cnn with random parameters, 6 % of its DReLUs,
# exact truncation, so every honest run gives the same outputs bit for bit) and DIR/loopback.npy,
# the outputs of `ksnn-party local` on the first 12 MNIST test digits. Needs the release party
# binary, ksnn-tools (release, or in $KSNN_TOOLS_BIN) and tools/env.sh (KSNN_DATA).
mnist_program() {
  local dir="$1" repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  echo "==> an MNIST program (mnist-cnn, 6 % of its DReLUs, exact truncation) and its loopback run"
  "${KSNN_TOOLS_BIN:-$repo/target/release}/ksnn-tools" bench model --model mnist-cnn --budget 0.06 \
    --truncation exact --keep "$dir/model" >/dev/null || return 1
  "$repo/target/release/ksnn-party" local --model "$dir/model/model.ksnn" \
    --weights "$dir/model/weights.ksnw" --dataset mnist --n 12 \
    --out "$dir/loopback.npy" --report "$dir/loopback.json" >"$dir/loopback.log" 2>&1 || {
    tail -n 5 "$dir/loopback.log"
    echo "the loopback run failed (log: $dir/loopback.log)"
    return 1
  }
}
