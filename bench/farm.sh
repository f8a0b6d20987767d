#!/usr/bin/env bash
# bench/farm.sh: a remote-execution farm on 127.0.0.1 for runs by hand, such as the whole
# differential suite with remote execution on.
#
# Starts what tests/common/exec_servers.rs and bench/exec.sh start — a throwaway
# PostgreSQL cluster, BuildGrid 0.4.4 serving CAS, ByteStream, ActionCache, Execution and
# Bots on it (instance "xcache"), and N `cargo xcache worker` processes sharing one blob
# cache — prints the executor's URI, and keeps them up until it is interrupted (Ctrl-C,
# or SIGTERM to its PID), when it stops every process it started and removes its
# directory.
#
#   bash bench/farm.sh &          # prints: executor: grpc://127.0.0.1:PORT?instance=xcache
#   XCACHE_SOUNDNESS_EXECUTOR='grpc://127.0.0.1:PORT?instance=xcache' \
#     cargo nextest run -E 'test(/^soundness::/)'
#
# Options (environment):
#   XCACHE_FARM_WORKERS=N        workers (default: 2)
#   XCACHE_FARM_BIN=PATH         the cargo-xcache the workers run (default: target/debug/
#                                cargo-xcache of this checkout, built if missing)
#   XCACHE_FARM_URI_FILE=PATH    also write the URI to this file once the farm is up
#   XCACHE_FARM_HOSTS=1          workers on hosts of their own (as bench/exec.sh's default
#                                farm): BuildGrid and PostgreSQL in a network namespace,
#                                each worker in another, chrooted into a Debian trixie
#                                root with no Rust; the URI is the farm's address on its
#                                link from here (needs root, iproute2, util-linux,
#                                mmdebstrap once)
#
# Needs: PostgreSQL 15 (apt-get install postgresql; as root, the cluster runs as the
# `postgres` account through setpriv), bgd and psycopg2 (python3 -m pip install
# buildgrid==0.4.4 psycopg2-binary). `.ci/run` installs all of them.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=farm
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
WORKERS="${XCACHE_FARM_WORKERS:-2}"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_FARM_WORKERS must be a positive number, not '$WORKERS'"
PG_BIN=/usr/lib/postgresql/15/bin
INSTANCE=xcache
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed (apt-get install postgresql)"
BGD="$(find_server bgd "python3 -m pip install buildgrid==0.4.4 psycopg2-binary")"
XC="${XCACHE_FARM_BIN:-$REPO_DIR/target/debug/cargo-xcache}"
if [[ -z "${XCACHE_FARM_BIN:-}" && ! -x "$XC" ]]; then
  log "building cargo-xcache (cargo build --locked)"
  (cd "$REPO_DIR" && cargo build --locked -q)
fi
[[ -x "$XC" ]] || die "XCACHE_FARM_BIN=$XC is not an executable"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-farm.XXXXXX")"
STARTED=()
HOSTS="${XCACHE_FARM_HOSTS:-0}"
[[ "$HOSTS" == 0 || "$HOSTS" == 1 ]] || die "XCACHE_FARM_HOSTS must be 0 or 1, not '$HOSTS'"
NETNS_MADE=()
WORKER_PIDS=()
cleanup() {
  local rc=$? i pid name
  trap - EXIT
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid" worker || true; done
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    read -r pid name <<<"${STARTED[$i]}"
    stop_pid "$pid" "$name" || true
  done
  netns_cleanup || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$HOSTS" == 1 ]]; then
  [[ "$(id -u)" == 0 ]] || die "XCACHE_FARM_HOSTS=1 needs root (network namespaces, chroot)"
  trixie_root
  netns_slot
  farm_netns
  for ((w = 1; w <= WORKERS; w++)); do host_netns "$w"; done
  # PostgreSQL runs as its own account: it must reach its directory.
  chmod 755 "$WORK"
  start_farm "$WORK" "$WORK"
  EXECUTOR="grpc://$FARM_ADDR:$BGD_PORT?instance=$INSTANCE"
  for ((w = 1; w <= WORKERS; w++)); do
    host_worker "$w" "$WORK/hosts/h$w" "$WORK/h$w.log"
    WORKER_PIDS+=("$HOST_WORKER_PID" "$HOST_PID")
  done
else
  start_farm "$WORK" "$WORK"
  for ((w = 1; w <= WORKERS; w++)); do
    "$XC" xcache worker --server "$EXECUTOR" --name "w$w" --dir "$WORK/workers" \
      </dev/null >"$WORK/w$w.log" 2>&1 &
    STARTED+=("$! worker")
  done
fi
log "executor: $EXECUTOR ($WORKERS workers$([[ "$HOSTS" == 1 ]] && echo " on hosts of their own"); logs in $WORK)"
[[ -z "${XCACHE_FARM_URI_FILE:-}" ]] || printf '%s\n' "$EXECUTOR" >"$XCACHE_FARM_URI_FILE"
# Up until interrupted.
while :; do sleep 3600 & wait $! || true; done
