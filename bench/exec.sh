#!/usr/bin/env bash
# bench/exec.sh: cold builds with remote execution (XCACHE_EXECUTOR), on a farm of hosts
# of their own (the default) or on this machine's loopback.
#
# XCACHE_BENCH_FARM=hosts (the default; needs root): the farm is other machines, modelled
# with network namespaces on this one. PostgreSQL and BuildGrid 0.4.4 (Execution and Bots,
# instance "xcache") run in a farm namespace; each worker host is a namespace of its own,
# linked to the farm's by a veth pair, whose `cargo xcache worker` runs chrooted into a
# Debian trixie root without Rust (made once with mmdebstrap and kept, see
# XCACHE_BENCH_ROOTS) in mount, UTS and PID namespaces of its own, one worker per host.
# The build runs here and reaches BuildGrid over another veth pair, through the delay
# proxy (bench/delay-proxy) in the farm namespace: a distant farm. The proxy forwards
# each chunk RTT/2 after it arrived, in each direction, without serialising chunks
# (bandwidth is not limited), and a new connection's first bytes reach the server one
# round trip late, as after a TCP handshake; gRPC keeps one connection, so what the
# delay costs is round trips. The workers reach BuildGrid without delay (near it). Each
# round builds the project cold (fresh copy, empty target dir, empty store):
#
#   plain         plain `cargo build` (the reference of `unserved`)
#   workers-0     `cargo xcache build` without XCACHE_EXECUTOR (the model's reference)
#   first         a fresh farm (empty CAS, hosts with empty caches), the largest number
#                 of hosts: the front-end sends the toolchain before cargo starts, and
#                 the hosts make it from the CAS on their first compile. Run with
#                 XCACHE_EXECUTOR_HEDGE=off: with the compile here meanwhile, every
#                 compile here ends before a fresh farm takes one (measured: 0 of 106
#                 on the hosts), so the run would measure neither, and the hosts-N runs
#                 would pay for the hosts' first toolchain
#   hosts-N       the same farm, N hosts up: the server and hosts have the toolchain
#   unserved      XCACHE_EXECUTOR_TOOLCHAIN=installed: the actions ask for this
#                 machine's rustc, which no host has, so none can take them; each
#                 compile sent is compiled here meanwhile (XCACHE_EXECUTOR_HEDGE, on
#                 by default) until the platform's XCACHE_EXECUTOR_QUEUE_WAIT passes
#   unserved-off  the same with XCACHE_EXECUTOR_HEDGE=off: each platform waits the
#                 queue wait once, then compiles here
#
# XCACHE_BENCH_FARM=loopback: what this script measured before: the farm on 127.0.0.1,
# workers-0 and workers-N, N `cargo xcache worker` processes of this machine (with its
# Rust) sharing one blob cache, no delay.
#
# Every host runs on this machine, so the workers share its cores with cargo: expect no
# speed-up. What the runs measure is what remote execution costs — per action, the time
# from the first request to the last output in place against the same unit's local
# compile time in workers-0, and the bytes sent and received — and the report's numbers a
# model of N workers on other machines needs (compile CPU, critical path). The model and
# its check against these runs are printed at the end; the book (Design → Remote
# execution) explains them.
#
# Options (environment):
#   XCACHE_BENCH_FARM=hosts|loopback  the farm (default: hosts, see above)
#   XCACHE_BENCH_PROJECT=DIR     project to build (default: bench/project)
#   XCACHE_BENCH_HOSTS="1 2"     hosts-N runs (default: 1 2; hosts mode)
#   XCACHE_BENCH_WORKERS="0 1 2" worker counts (default: 0 1 2; loopback mode)
#   XCACHE_BENCH_RTT_MS=MS       round trip the delay proxy adds between this machine and
#                                the farm (default: 20; 0: no proxy; hosts mode)
#   XCACHE_BENCH_QUEUE_WAIT=DUR  XCACHE_EXECUTOR_QUEUE_WAIT for every run with an executor
#                                (default: unset, the product's 10s)
#   XCACHE_BENCH_ROOTS=DIR       where the hosts' root is made and kept (default:
#                                /var/cache/xcache-bench/roots; DIR/trixie)
#   XCACHE_BENCH_REPEAT=N        rounds (default: 1); medians are reported
#   XCACHE_BENCH_BIN=PATH        use this cargo-xcache binary instead of building it
#   XCACHE_BENCH_BUILD_DIR=DIR   target dir for building cargo-xcache and the delay proxy
#                                (default: /tmp/xcache-bench-build)
#   XCACHE_BENCH_OUT=DIR         where exec-results.json and exec-logs go (default: bench/out)
#   XCACHE_BENCH_KEEP_TMP=1      keep the temporary directory (its path is printed)
#
# Needs: cargo, python3, GNU time, PostgreSQL 15 (apt-get install postgresql; run as root,
# the cluster runs as the `postgres` account through setpriv, from util-linux), bgd and
# psycopg2 (python3 -m pip install buildgrid==0.4.4 psycopg2-binary). `.ci/run` installs
# all of them. Hosts mode also: root, iproute2, util-linux's unshare and, the first time,
# mmdebstrap (apt-get install mmdebstrap) and access to deb.debian.org.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=exec-bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

PROJECT="${XCACHE_BENCH_PROJECT:-$BENCH_DIR/project}"
FARM="${XCACHE_BENCH_FARM:-hosts}"
WORKERS="${XCACHE_BENCH_WORKERS:-0 1 2}"
HOSTS="${XCACHE_BENCH_HOSTS:-1 2}"
RTT_MS="${XCACHE_BENCH_RTT_MS:-20}"
QUEUE_WAIT="${XCACHE_BENCH_QUEUE_WAIT:-}"
REPEAT="${XCACHE_BENCH_REPEAT:-1}"
BUILD_DIR="${XCACHE_BENCH_BUILD_DIR:-/tmp/xcache-bench-build}"
OUT_DIR="${XCACHE_BENCH_OUT:-$BENCH_DIR/out}"
KEEP_TMP="${XCACHE_BENCH_KEEP_TMP:-0}"
PG_BIN=/usr/lib/postgresql/15/bin
INSTANCE=xcache

[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_BENCH_REPEAT must be a positive number, not '$REPEAT'"
case "$FARM" in
  hosts)
    MAX_HOSTS=0
    for n in $HOSTS; do
      [[ "$n" =~ ^[1-9][0-9]*$ && "$n" -le 62 ]] || die "XCACHE_BENCH_HOSTS must list numbers from 1 to 62, not '$n'"
      ((n > MAX_HOSTS)) && MAX_HOSTS=$n
    done
    ((MAX_HOSTS > 0)) || die "XCACHE_BENCH_HOSTS names no host"
    [[ "$RTT_MS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "XCACHE_BENCH_RTT_MS must be a number of milliseconds, not '$RTT_MS'"
    [[ "$(id -u)" == 0 ]] || die "XCACHE_BENCH_FARM=hosts needs root (network namespaces, chroot); XCACHE_BENCH_FARM=loopback does not"
    command -v ip >/dev/null || die "ip is missing (apt-get install iproute2)"
    command -v unshare >/dev/null || die "unshare is missing (apt-get install util-linux)"
    ;;
  loopback)
    for n in $WORKERS; do
      [[ "$n" =~ ^[0-9]+$ ]] || die "XCACHE_BENCH_WORKERS must list whole numbers, not '$n'"
    done
    ;;
  *) die "XCACHE_BENCH_FARM must be hosts or loopback, not '$FARM'" ;;
esac
[[ -f "$PROJECT/Cargo.toml" ]] || die "no Cargo.toml in XCACHE_BENCH_PROJECT=$PROJECT"
PROJECT="$(cd "$PROJECT" && pwd)"
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed (apt-get install postgresql)"
BGD="$(find_server bgd "python3 -m pip install buildgrid==0.4.4 psycopg2-binary")"
find_gnu_time 0
[[ -n "$TIME_BIN" ]] || die "GNU time is not installed (apt-get install time)"

mkdir -p "$OUT_DIR"
LOG_DIR="$OUT_DIR/exec-logs"
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log "$LOG_DIR"/*.json "$LOG_DIR"/*.tsv "$OUT_DIR/exec-results.json"
START_EPOCH="$(date +%s)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-exec-bench.XXXXXX")"
# Background processes this script started: "PID NAME" lines (servers and proxy).
STARTED=()
# Workers of the current run: PIDs to stop, in order (loopback: the worker; hosts: the
# worker, then the host's unshare) and the PIDs whose CPU counts as the workers'.
WORKER_PIDS=()
WORKER_CPU_PIDS=()
# Network namespaces made (hosts mode), removed at the end.
NETNS_MADE=()
cleanup() {
  local rc=$? i pid name
  trap - EXIT
  [[ "$rc" == 0 ]] || log "stopping (exit code $rc): ending what the run started"
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid" worker || true; done
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    read -r pid name <<<"${STARTED[$i]}"
    stop_pid "$pid" "$name" || true
  done
  netns_cleanup || true
  if [[ "$KEEP_TMP" == 1 ]]; then log "kept temporary directory $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

server_pids() {
  local e
  for e in "${STARTED[@]}"; do printf '%s ' "${e%% *}"; done
}

build_xcache "$REPO_DIR" "$BUILD_DIR" "$LOG_DIR/product-build.log" --locked
TEMPLATE="$WORK/template"
fetch_template "$PROJECT" "$TEMPLATE" "$LOG_DIR/fetch.log"
# The private directory of every build (the memos of compiler probes and of the digests
# of files sent): the bench's own, shared by its runs, not this user's everyday one.
mkdir -m 700 "$WORK/runtime"

# ---------------------------------------------------------------- the farm

# hosts mode: (re)starts the farm in its namespace with an empty CAS and database, the
# delay proxy in front of it, and empties the hosts' directories (new machines).
# Sets EXECUTOR to the address a build here uses.
fresh_farm() {
  local i pid name
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    read -r pid name <<<"${STARTED[$i]}"
    stop_pid "$pid" "$name"
  done
  STARTED=()
  rm -rf "$WORK/farm" "$WORK/hosts"
  mkdir -p "$WORK/farm"
  # PostgreSQL runs as its own account: it must reach its directory.
  chmod 755 "$WORK"
  start_farm "$WORK/farm" "$LOG_DIR"
  if [[ "$RTT_MS" == 0 ]]; then
    EXECUTOR="grpc://$FARM_ADDR:$BGD_PORT?instance=$INSTANCE"
  else
    ip netns exec "$FARM_NS" "$PROXY" "$FARM_ADDR:50052" "127.0.0.1:$BGD_PORT" "$RTT_MS" \
      </dev/null >>"$LOG_DIR/proxy.log" 2>&1 &
    STARTED+=("$! delay-proxy")
    for ((i = 0; i < 100; i++)); do
      (exec 3<>"/dev/tcp/$FARM_ADDR/50052") 2>/dev/null && break
      sleep 0.1
    done
    ((i < 100)) || { tail -n 20 "$LOG_DIR/proxy.log" >&2; die "the delay proxy did not listen on $FARM_ADDR:50052"; }
    EXECUTOR="grpc://$FARM_ADDR:50052?instance=$INSTANCE"
  fi
}

if [[ "$FARM" == hosts ]]; then
  trixie_root
  if [[ "$RTT_MS" != 0 ]]; then
    log "building the delay proxy (release) into $BUILD_DIR/delay-proxy (log: $LOG_DIR/proxy-build.log)"
    cargo build --release --locked --manifest-path "$BENCH_DIR/delay-proxy/Cargo.toml" \
      --target-dir "$BUILD_DIR/delay-proxy" >"$LOG_DIR/proxy-build.log" 2>&1 || {
      tail -n 20 "$LOG_DIR/proxy-build.log" >&2
      die "the delay proxy does not build (see $LOG_DIR/proxy-build.log)"
    }
    PROXY="$BUILD_DIR/delay-proxy/release/xcache-delay-proxy"
  fi
  netns_slot
  farm_netns
  for ((i = 1; i <= MAX_HOSTS; i++)); do host_netns "$i"; done
  log "slot $SLOT: farm namespace $FARM_NS at $FARM_ADDR (link $CLIENT_LINK), $MAX_HOSTS host namespaces, ${RTT_MS} ms of round trip to the farm"
else
  start_farm "$WORK" "$LOG_DIR"
fi

# start_workers TAG N: N workers for run TAG (loopback: processes here sharing one blob
# cache; hosts: hosts 1 to N), each with an open session when it returns.
start_workers() {
  local tag="$1" n="$2" w k logf
  WORKER_PIDS=() WORKER_CPU_PIDS=()
  for ((w = 1; w <= n; w++)); do
    logf="$LOG_DIR/$tag.w$w.log"
    if [[ "$FARM" == hosts ]]; then
      host_worker "$w" "$WORK/hosts/h$w" "$logf"
      # The worker first (SIGTERM reaches it: it is its PID namespace's first process,
      # with a handler), then unshare, which ends with it.
      WORKER_PIDS+=("$HOST_WORKER_PID" "$HOST_PID")
      WORKER_CPU_PIDS+=("$HOST_WORKER_PID")
    else
      "$XC" xcache worker --server "$EXECUTOR" --name "w$w" --dir "$WORK/workers" \
        </dev/null >"$logf" 2>&1 &
      WORKER_PIDS+=("$!")
      WORKER_CPU_PIDS+=("$!")
    fi
  done
  # Wait for their sessions: a compile asked for before that waits in the queue
  # (counted in its action time), and `first` and `unserved` would wait for nothing.
  for ((w = 1; w <= n; w++)); do
    logf="$LOG_DIR/$tag.w$w.log"
    for ((k = 0; k < 600; k++)); do
      grep -q 'session .* open$' "$logf" 2>/dev/null && break
      kill -0 "${WORKER_CPU_PIDS[$((w - 1))]}" 2>/dev/null || { tail -n 20 "$logf" >&2; die "worker $w of $tag exited (log: $logf)"; }
      sleep 0.1
    done
    ((k < 600)) || { tail -n 20 "$logf" >&2; die "worker $w of $tag opened no session within 60 s (log: $logf)"; }
  done
}

stop_workers() {
  local pid
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid" worker; done
  WORKER_PIDS=() WORKER_CPU_PIDS=()
}

# link_bytes: what the link to the farm has sent and received so far ("TX RX"; hosts mode).
link_bytes() {
  if [[ "$FARM" == hosts ]]; then
    echo "$(cat "/sys/class/net/$CLIENT_LINK/statistics/tx_bytes") $(cat "/sys/class/net/$CLIENT_LINK/statistics/rx_bytes")"
  else
    echo "- -"
  fi
}

# ---------------------------------------------------------------- runs

RECORDS="$LOG_DIR/records.tsv"
: >"$RECORDS"
UNSET_ENV=(-u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u RUSTC_WRAPPER -u CARGO_BUILD_RUSTC_WRAPPER
  -u XCACHE_REMOTE -u XCACHE_EXECUTOR -u XCACHE_DISABLE -u XCACHE_READ_ONLY
  -u XCACHE_EXECUTOR_TOOLCHAIN -u XCACHE_EXECUTOR_QUEUE_WAIT -u XCACHE_EXECUTOR_LOCAL
  -u XCACHE_EXECUTOR_TIMEOUT -u XCACHE_EXECUTOR_HEDGE)

# run KIND N ROUND [VAR=VALUE...]: one cold build of the project, timed. KIND is plain
# (`cargo build`), workers-N, hosts-N, first, unserved or unserved-off (`cargo xcache build`, with
# XCACHE_EXECUTOR unless N is 0); N workers are up during it. Appends a record.
run() {
  local kind="$1" n="$2" it="$3" tag run_dir rc srv0 srv wcpu out bin secs rss usr sys up0 down0 up1 down1 report="-"
  shift 3
  tag="$kind.$it"
  run_dir="$WORK/runs/$tag"
  mkdir -p "$run_dir"
  start_workers "$tag" "$n"
  copy_project "$TEMPLATE" "$run_dir/project"
  sync
  local envs=(CARGO_INCREMENTAL=0 CARGO_NET_OFFLINE=true XCACHE_DIR="$run_dir/store"
    XDG_RUNTIME_DIR="$WORK/runtime" "$@")
  [[ "$kind" == plain || "$kind" == workers-0 ]] || envs+=(XCACHE_EXECUTOR="$EXECUTOR")
  [[ -z "$QUEUE_WAIT" || "$kind" == plain || "$kind" == workers-0 ]] || envs+=(XCACHE_EXECUTOR_QUEUE_WAIT="$QUEUE_WAIT")
  local cmd=("$XC" xcache build)
  [[ "$kind" == plain ]] && cmd=(cargo build)
  log "run $tag ($n worker(s) up)"
  # shellcheck disable=SC2046
  srv0="$(proc_cpu 0 $(server_pids))"
  read -r up0 down0 < <(link_bytes)
  rc=0
  (cd "$run_dir/project" && exec "$TIME_BIN" -f '%e %M %U %S' -o "$run_dir/time.txt" \
    env "${UNSET_ENV[@]}" "${envs[@]}" "${cmd[@]}") </dev/null >"$LOG_DIR/$tag.log" 2>&1 || rc=$?
  read -r up1 down1 < <(link_bytes)
  # shellcheck disable=SC2046
  srv="$(fsum "$(proc_cpu 0 $(server_pids))" "-$srv0")"
  wcpu="$(proc_cpu 1 "${WORKER_CPU_PIDS[@]}")"
  stop_workers
  [[ "$rc" == 0 ]] || {
    tail -n 30 "$LOG_DIR/$tag.log" >&2
    die "run $tag failed with exit code $rc (log: $LOG_DIR/$tag.log)"
  }
  if [[ "$kind" != plain ]]; then
    report="$LOG_DIR/$tag.report.json"
    cp "$run_dir/project/target/xcache/report.json" "$report"
  fi
  out="-"
  bin="$run_dir/project/target/debug/xcache-bench-project"
  [[ -x "$bin" ]] && out="$("$bin" --records 300 --seed 7 2>/dev/null | cksum | tr ' ' ':')"
  read -r secs rss usr sys < <(tail -n 1 "$run_dir/time.txt")
  [[ "$up0" == - ]] || { up1=$((up1 - up0)) down1=$((down1 - down0)); }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$n" "$it" "$secs" "$(fsum "$usr" "$sys")" \
    "$wcpu" "$srv" "$out" "$report" "$rss" "$up1" "$down1" >>"$RECORDS"
  log "run $tag: $secs s (CPU: build $(fsum "$usr" "$sys") s, workers $wcpu s, servers $srv s)"
  rm -rf "$run_dir"
}

for ((it = 1; it <= REPEAT; it++)); do
  if [[ "$FARM" == hosts ]]; then
    run plain 0 "$it"
    run workers-0 0 "$it"
    fresh_farm
    run first "$MAX_HOSTS" "$it" XCACHE_EXECUTOR_HEDGE=off
    for n in $HOSTS; do run "hosts-$n" "$n" "$it"; done
    run unserved "$MAX_HOSTS" "$it" XCACHE_EXECUTOR_TOOLCHAIN=installed
    run unserved-off "$MAX_HOSTS" "$it" XCACHE_EXECUTOR_TOOLCHAIN=installed XCACHE_EXECUTOR_HEDGE=off
  else
    for n in $WORKERS; do run "workers-$n" "$n" "$it"; done
  fi
done

# ---------------------------------------------------------------- report

export RB_RECORDS="$RECORDS" RB_OUT="$OUT_DIR/exec-results.json" RB_PROJECT="$PROJECT" \
  RB_SECONDS_TOTAL="$(($(date +%s) - START_EPOCH))" RB_CPUS="$(nproc)" RB_FARM="$FARM" \
  RB_RTT_MS="$([[ "$FARM" == hosts ]] && echo "$RTT_MS")" RB_QUEUE_WAIT="${QUEUE_WAIT:-10s}" \
  RB_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$BENCH_DIR/exec_report.py"
