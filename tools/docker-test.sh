#!/usr/bin/env bash
# The party and compiler images really build and run: installs Debian's docker.io (and
# docker-compose) if missing, starts a daemon if none runs, builds both images FROM scratch
# (tools/docker-build.sh), fills the certificate volume with the compiler image's keygen,
# runs an MNIST program through the three party containers on 127.0.0.1 with the compose
# file, and checks the client's outputs equal those of a loopback run (`ksnn-party local`),
# bit for bit (the program uses exact truncation).
#
# Exit 0: passed. Exit 3: skipped, with the reason on the last line (no root to install
# Docker, or no daemon can run here). Anything else: failed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
skip() { echo "docker-test: skipped: $*"; exit 3; }

work="$repo/target/docker/test"
project="ksnn-test-$$"
compose() {
  KSNN_MODEL="$work/model" KSNN_DATA="${KSNN_DATA:-}" KSNN_OUT="$work/out" KSNN_N=12 \
    docker-compose --log-level ERROR -p "$project" -f docker/compose.yaml "$@"
}
cleanup() {
  compose --profile setup down -v --remove-orphans >/dev/null 2>&1 || true
  if [[ -n "$dockerd_pid" ]]; then
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
}
dockerd_pid=""
trap cleanup EXIT

if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null; then
  [[ $(id -u) -eq 0 ]] || skip "Docker is not installed and installing it needs root"
  echo "==> installing docker.io and docker-compose (Debian packages)"
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose >/dev/null 2>&1; }
  install || { apt-get update -qq >/dev/null 2>&1 && install; } \
    || skip "apt-get could not install docker.io and docker-compose"
fi
if ! docker info >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || skip "no Docker daemon runs and starting one needs root"
  echo "==> starting dockerd (log: target/docker/dockerd.log; stopped again at the end)"
  mkdir -p target/docker
  setsid nohup dockerd >target/docker/dockerd.log 2>&1 </dev/null &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 \
    || skip "dockerd does not start here: $(tail -n 1 target/docker/dockerd.log)"
fi

bash tools/docker-build.sh
source tools/env.sh
rm -rf "$work" && mkdir -p "$work/out"

echo "==> the compiler image runs: ksnn version"
docker run --rm ksnn-compiler version

source tools/mnist-program.sh
mnist_program "$work" || { echo "docker-test: FAILED: no MNIST program"; exit 1; }
chown -R 10001:10001 "$work/out"

echo "==> certificates: the compiler image's keygen into the compose volume"
compose --profile setup run --rm keygen
echo "==> the daemons' containers, until healthy"
compose up -d p1 p2
echo "==> the client's container"
compose run --rm p0
compose ps
compose logs --no-color p1 p2 | tail -n 8

cmp "$work/loopback.npy" "$work/out/outputs.npy" \
  || { echo "docker-test: the containers' outputs differ from the loopback run's"; exit 1; }
echo "docker-test: passed: 12 MNIST images through three containers; outputs equal the loopback run's bit for bit"
