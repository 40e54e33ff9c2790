#!/usr/bin/env bash
# The parties on three separate hosts: three Linux network namespaces (h0, h1, h2) joined by
# veth pairs to a bridge in a fourth, with private test addresses (10.231.0.10-12) that exist
# only inside them; one party process per namespace, each with its own host folder (ca.pem,
# its own certificate and key, the program, the weights only on h1) and a config naming the
# others' addresses. Optional shaping with `tc tbf` on every host's link; one-way WAN latency
# is the transport's simulation (`latency_ms`; the kernel here has no netem).
#
#   tools/hosts-test.sh           the test: separation, outputs = the loopback run's, unshaped
#                                 and at 100 Mbit/s with 10 ms; the party binary's size
#   tools/hosts-test.sh --bench   the docs/deploy.md table: ResNet18-CIFAR (uniform 4x4) and
#                                 the MNIST demo model, both DReLU protocols, unshaped / 1 Gbit/s
#                                 / 100 Mbit/s, 0 / 10 / 50 ms; seconds per inference
#
# Exit 0: passed. Exit 3: skipped, with the reason on the last line (not root, or no network
# namespaces here). Anything else: failed. Namespaces and processes are removed on any exit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
mode="${1:-test}"
skip() { echo "hosts-test: skipped: $*"; exit 3; }
fail() { echo "hosts-test: FAILED: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || skip "network namespaces need root"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
tag="k$$"
probe="${tag}-probe"
ip netns add "$probe" 2>/dev/null || skip "ip netns add does not work here"
ip netns del "$probe"

source tools/env.sh
work="$repo/target/hosts-test"
party="$repo/target/release/ksnn-party"
# ksnn-tools from $KSNN_TOOLS_BIN when set (tools/test.sh: its debug build), else release.
tools="${KSNN_TOOLS_BIN:-$repo/target/release}/ksnn-tools"
addr=(10.231.0.10 10.231.0.11 10.231.0.12)
pids=()

teardown() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for n in h0 h1 h2 br; do ip netns del "$tag-$n" 2>/dev/null || true; done
}
trap teardown EXIT

# The bridge namespace and one host namespace per party, each with a veth to the bridge.
make_hosts() {
  ip netns add "$tag-br"
  ip -n "$tag-br" link add br0 type bridge
  ip -n "$tag-br" link set br0 up
  for i in 0 1 2; do
    ip netns add "$tag-h$i"
    ip link add eth0 netns "$tag-h$i" type veth peer name "p$i" netns "$tag-br"
    ip -n "$tag-br" link set "p$i" master br0
    ip -n "$tag-br" link set "p$i" up
    ip -n "$tag-h$i" addr add "${addr[$i]}/24" dev eth0
    ip -n "$tag-h$i" link set eth0 up
    ip -n "$tag-h$i" link set lo up
  done
}

# Every host's outgoing link at RATE (e.g. 1gbit, 100mbit), or unshaped with `none`.
shape() {
  for i in 0 1 2; do
    ip netns exec "$tag-h$i" tc qdisc del dev eth0 root 2>/dev/null || true
    if [[ "$1" != none ]]; then
      ip netns exec "$tag-h$i" tc qdisc add dev eth0 root tbf rate "$1" burst 256kb latency 400ms \
        || return 1
    fi
  done
}

# Host folders for the program in $1: each host gets ca.pem, its own pair and the program;
# h1 also the weights. Configs are written per run (their latency changes).
populate() {
  local model="$1"
  rm -rf "$work/hosts" && mkdir -p "$work/hosts"
  for i in 0 1 2; do
    local h="$work/hosts/h$i"
    mkdir -p "$h"
    cp "$work/certs/ca.pem" "$work/certs/p$i.pem" "$work/certs/p$i.key" "$model/model.ksnn" "$h/"
  done
  cp "$model/weights.ksnw" "$work/hosts/h1/"
}

# The three configs, with one-way latency $1 ms on every link.
configs() {
  local ms="$1" common
  common="model = \"model.ksnn\"\nca = \"ca.pem\"\ntimeout_seconds = 60\nlatency_ms = $ms\n"
  printf "role = \"server\"\nweights = \"weights.ksnw\"\nlisten = \"${addr[1]}:7001\"\ncert = \"p1.pem\"\nkey = \"p1.key\"\n$common" \
    >"$work/hosts/h1/p1.toml"
  printf "role = \"helper\"\nlisten = \"${addr[2]}:7002\"\nserver = \"${addr[1]}:7001\"\ncert = \"p2.pem\"\nkey = \"p2.key\"\n$common" \
    >"$work/hosts/h2/p2.toml"
  printf "role = \"client\"\nserver = \"${addr[1]}:7001\"\nhelper = \"${addr[2]}:7002\"\ncert = \"p0.pem\"\nkey = \"p0.key\"\n$common" \
    >"$work/hosts/h0/p0.toml"
}

# Waits until `ksnn-party health` passes in host $1 with config $2.
wait_healthy() {
  for _ in $(seq 100); do
    ip netns exec "$tag-$1" "$party" health --config "$2" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  ip netns exec "$tag-$1" "$party" health --config "$2" || true
  fail "the party in $1 did not come up; its log: $(tail -n 5 "$work/hosts/$1/party.log")"
}

# One run with latency $1 ms; the client's arguments follow. Writes h0/report.json.
run() {
  local ms="$1"; shift
  configs "$ms"
  pids=()
  ip netns exec "$tag-h1" "$party" serve --config "$work/hosts/h1/p1.toml" \
    >"$work/hosts/h1/party.log" 2>&1 &
  pids+=($!)
  wait_healthy h1 "$work/hosts/h1/p1.toml"
  ip netns exec "$tag-h2" "$party" serve --config "$work/hosts/h2/p2.toml" \
    >"$work/hosts/h2/party.log" 2>&1 &
  pids+=($!)
  wait_healthy h2 "$work/hosts/h2/p2.toml"
  ip netns exec "$tag-h0" "$party" health --config "$work/hosts/h0/p0.toml" >/dev/null
  ip netns exec "$tag-h0" "$party" infer --config "$work/hosts/h0/p0.toml" \
    --report "$work/hosts/h0/report.json" "$@" >"$work/hosts/h0/party.log" 2>&1 \
    || fail "the client failed: $(tail -n 5 "$work/hosts/h0/party.log")"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

# offline online rounds of the last run's report.
figures() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["per_inference"]; print(r["seconds"]["offline"], r["seconds"]["online"], r["rounds"])' \
    "$work/hosts/h0/report.json"
}

if [[ -n "${KSNN_TOOLS_BIN:-}" && "$mode" == test ]]; then
  echo "==> release build of ksnn-party (ksnn-tools from $KSNN_TOOLS_BIN)"
  cargo build --release --quiet -p ksnn-party
  [[ -x "$tools" ]] || fail "$tools is not built"
else
  echo "==> release build of ksnn-party and ksnn-tools"
  cargo build --release --quiet -p ksnn-party -p ksnn-tools
  tools="$repo/target/release/ksnn-tools"
fi
rm -rf "$work" && mkdir -p "$work"
"$tools" keygen --out "$work/certs" >/dev/null
make_hosts

if [[ "$mode" == test ]]; then
  cp "$party" "$work/ksnn-party.stripped" && strip "$work/ksnn-party.stripped"
  size=$(stat -c %s "$work/ksnn-party.stripped")
  awk -v s="$size" 'BEGIN { printf "ksnn-party, release, stripped: %d bytes (%.2f MB; the limit is 10 MB)\n", s, s / 1e6 }'
  (( size <= 10000000 )) || fail "the stripped party binary is over 10 MB"

  source tools/mnist-program.sh
  mnist_program "$work" || fail "no MNIST program"
  populate "$work/model"

  echo "==> the hosts are separate: h0 reaches the server at ${addr[1]}, not on its own loopback"
  configs 0
  ip netns exec "$tag-h1" "$party" serve --config "$work/hosts/h1/p1.toml" \
    >"$work/hosts/h1/party.log" 2>&1 &
  pids+=($!)
  wait_healthy h1 "$work/hosts/h1/p1.toml"
  # (The helper is not up yet, so the check as a whole fails; the server's line must pass.)
  seen="$(ip netns exec "$tag-h0" "$party" health --config "$work/hosts/h0/p0.toml" 2>&1 || true)"
  grep -q "the server at ${addr[1]}:7001: reachable" <<<"$seen" \
    || fail "h0 cannot reach the server at ${addr[1]}: $seen"
  sed "s/${addr[1]}/127.0.0.1/" "$work/hosts/h0/p0.toml" >"$work/hosts/h0/loopback.toml"
  if ip netns exec "$tag-h0" "$party" health --config "$work/hosts/h0/loopback.toml" >/dev/null 2>&1; then
    fail "the server is reachable on h0's loopback: the hosts are not separate"
  fi
  kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()

  for case in "none 0" "100mbit 10"; do
    read -r rate ms <<<"$case"
    echo "==> across the hosts: link $rate, one-way latency $ms ms (simulated)"
    if ! shape "$rate"; then
      echo "   (tc tbf does not work here: this run is unshaped)"
      shape none
    fi
    run "$ms" --dataset mnist --n 12 --out "$work/hosts/h0/outputs.npy"
    cmp "$work/loopback.npy" "$work/hosts/h0/outputs.npy" \
      || fail "outputs across the hosts ($rate, $ms ms) differ from the loopback run's"
    read -r off on rounds <<<"$(figures)"
    echo "   12 images equal the loopback run's; per inference offline $off s, online $on s, $rounds rounds"
    if [[ "$ms" != 0 ]]; then
      awk -v on="$on" -v r="$rounds" -v ms="$ms" 'BEGIN { exit !(on >= r * ms / 1000 / 2) }' \
        || fail "online $on s is under half of $rounds rounds at $ms ms: the latency was not applied"
    fi
  done
  grep -h "simulated WAN latency" "$work"/hosts/h*/party.log | head -n 3
  echo "hosts-test: passed"
  exit 0
fi

[[ "$mode" == --bench ]] || { echo "usage: tools/hosts-test.sh [--bench]"; exit 2; }
# The programs: random parameters, the real layers and blocks (timing does not depend on
# the weights' values). The MNIST model uses the demo's knapsack spec when the demo has run.
demo_spec="$repo/runs/mnist/compiled/spec.json"
mnist_blocks=(--budget 0.06)
mnist_name="mnist-cnn (6 %, synthetic knapsack)"
if [[ -f "$demo_spec" ]]; then
  mnist_blocks=(--spec "$demo_spec")
  mnist_name="mnist-cnn (the demo's 6 % spec)"
fi
images=3
declare -A names
for drelu in securenn fss; do
  "$tools" bench model --model mnist-cnn "${mnist_blocks[@]}" --drelu "$drelu" --images $images \
    --keep "$work/mnist-$drelu" >/dev/null
  "$tools" bench model --model resnet18-cifar --uniform 4x4 --drelu "$drelu" --images $images \
    --keep "$work/resnet18-$drelu" >/dev/null
done
names[mnist]="$mnist_name"
names[resnet18]="ResNet18-CIFAR (uniform 4x4)"
echo
echo "| model | DReLU | link | one-way latency | offline s | online s | total s | rounds |"
echo "|---|---|---|---|---|---|---|---|"
for model in mnist resnet18; do
  for drelu in securenn fss; do
    populate "$work/$model-$drelu"
    inputs=("$work/$model-$drelu"/x*.npy)
    for rate in none 1gbit 100mbit; do
      shape "$rate"
      for ms in 0 10 50; do
        run "$ms" --input "${inputs[@]}"
        read -r off on rounds <<<"$(figures)"
        link="$rate"; [[ "$rate" == none ]] && link="unshaped"
        awk -v m="${names[$model]}" -v d="$drelu" -v l="$link" -v ms="$ms" -v off="$off" -v on="$on" -v r="$rounds" \
          'BEGIN { printf "| %s | %s | %s | %s ms | %.3f | %.3f | %.3f | %d |\n", m, d, l, ms, off, on, off + on, r }'
      done
    done
  done
done
