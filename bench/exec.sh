#!/usr/bin/env bash
# bench/exec.sh: cold builds with remote execution (XCACHE_EXECUTOR) on 0, 1 and 2 workers.
#
# Starts a farm on free loopback ports — a throwaway PostgreSQL cluster, BuildGrid 0.4.4
# serving CAS, ByteStream, ActionCache, Execution and Bots on it (instance "xcache"), and
# N `cargo xcache worker` processes sharing one blob cache — then builds the benchmark
# project (bench/project by default) cold, from a fresh copy with an empty target dir and
# an empty store, once per worker count and round:
#
#   workers-0   no XCACHE_EXECUTOR: every miss compiles here (the reference)
#   workers-N   XCACHE_EXECUTOR set, N workers up: library and proc-macro compiles that
#               miss go to the workers; the rest compiles here
#
# Every worker runs on this machine, so the workers share its cores with cargo: expect no
# speed-up. What the runs measure is what remote execution costs — per action, the time
# from the first request to the last output in place against the same unit's local
# compile time in workers-0, and the bytes sent and received — and the report's numbers a
# model of N workers on other machines needs (compile CPU, critical path). The model and
# its check against these runs are printed at the end; the book (Design → Remote
# execution) explains them.
#
# Options (environment):
#   XCACHE_BENCH_PROJECT=DIR     project to build (default: bench/project)
#   XCACHE_BENCH_WORKERS="0 1 2" worker counts (default: 0 1 2)
#   XCACHE_BENCH_REPEAT=N        rounds (default: 1); medians are reported
#   XCACHE_BENCH_BIN=PATH        use this cargo-xcache binary instead of building it
#   XCACHE_BENCH_BUILD_DIR=DIR   target dir for building cargo-xcache (default: /tmp/xcache-bench-build)
#   XCACHE_BENCH_OUT=DIR         where exec-results.json and exec-logs go (default: bench/out)
#   XCACHE_BENCH_KEEP_TMP=1      keep the temporary directory (its path is printed)
#
# Needs: cargo, python3, GNU time, PostgreSQL 15 (apt-get install postgresql; run as root,
# the cluster runs as the `postgres` account through setpriv, from util-linux), bgd and
# psycopg2 (python3 -m pip install buildgrid==0.4.4 psycopg2-binary). `.ci/run` installs
# all of them.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=exec-bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

PROJECT="${XCACHE_BENCH_PROJECT:-$BENCH_DIR/project}"
WORKERS="${XCACHE_BENCH_WORKERS:-0 1 2}"
REPEAT="${XCACHE_BENCH_REPEAT:-1}"
BUILD_DIR="${XCACHE_BENCH_BUILD_DIR:-/tmp/xcache-bench-build}"
OUT_DIR="${XCACHE_BENCH_OUT:-$BENCH_DIR/out}"
KEEP_TMP="${XCACHE_BENCH_KEEP_TMP:-0}"
PG_BIN=/usr/lib/postgresql/15/bin
INSTANCE=xcache

[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_BENCH_REPEAT must be a positive number, not '$REPEAT'"
for n in $WORKERS; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "XCACHE_BENCH_WORKERS must list whole numbers, not '$n'"
done
[[ -f "$PROJECT/Cargo.toml" ]] || die "no Cargo.toml in XCACHE_BENCH_PROJECT=$PROJECT"
PROJECT="$(cd "$PROJECT" && pwd)"
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed (apt-get install postgresql)"
BGD="$(find_server bgd "python3 -m pip install buildgrid==0.4.4 psycopg2-binary")"
find_gnu_time 0
[[ -n "$TIME_BIN" ]] || die "GNU time is not installed (apt-get install time)"

mkdir -p "$OUT_DIR"
LOG_DIR="$OUT_DIR/exec-logs"
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log "$LOG_DIR"/*.json "$OUT_DIR/exec-results.json"
START_EPOCH="$(date +%s)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-exec-bench.XXXXXX")"
# Background processes this script started: "PID NAME" lines.
STARTED=()
WORKER_PIDS=()
cleanup() {
  local rc=$? i pid name
  trap - EXIT
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid" worker || true; done
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    read -r pid name <<<"${STARTED[$i]}"
    stop_pid "$pid" "$name" || true
  done
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

# ---------------------------------------------------------------- the farm

start_farm "$WORK" "$LOG_DIR"

# ---------------------------------------------------------------- runs

RECORDS="$LOG_DIR/records.tsv"
: >"$RECORDS"
UNSET_ENV=(-u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u RUSTC_WRAPPER -u CARGO_BUILD_RUSTC_WRAPPER
  -u XCACHE_REMOTE -u XCACHE_EXECUTOR -u XCACHE_DISABLE -u XCACHE_READ_ONLY)

for ((it = 1; it <= REPEAT; it++)); do
  for n in $WORKERS; do
    tag="workers-$n.$it"
    run_dir="$WORK/runs/$tag"
    mkdir -p "$run_dir"
    WORKER_PIDS=()
    for ((w = 1; w <= n; w++)); do
      "$XC" xcache worker --server "$EXECUTOR" --name "w$w" --dir "$WORK/workers" \
        </dev/null >"$LOG_DIR/$tag.w$w.log" 2>&1 &
      WORKER_PIDS+=("$!")
    done
    # Let the workers open their sessions: a compile asked for before that waits in
    # the queue (counted in its action time).
    [[ "$n" == 0 ]] || sleep 2
    copy_project "$TEMPLATE" "$run_dir/project"
    sync
    envs=(CARGO_INCREMENTAL=0 CARGO_NET_OFFLINE=true XCACHE_DIR="$run_dir/store")
    [[ "$n" == 0 ]] || envs+=(XCACHE_EXECUTOR="$EXECUTOR")
    log "run $tag"
    # shellcheck disable=SC2046
    srv0="$(proc_cpu 0 $(server_pids))"
    rc=0
    (cd "$run_dir/project" && exec "$TIME_BIN" -f '%e %M %U %S' -o "$run_dir/time.txt" \
      env "${UNSET_ENV[@]}" "${envs[@]}" "$XC" xcache build) </dev/null >"$LOG_DIR/$tag.log" 2>&1 || rc=$?
    # shellcheck disable=SC2046
    srv="$(fsum "$(proc_cpu 0 $(server_pids))" "-$srv0")"
    wcpu="$(proc_cpu 1 "${WORKER_PIDS[@]}")"
    for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid" worker; done
    WORKER_PIDS=()
    [[ "$rc" == 0 ]] || {
      tail -n 30 "$LOG_DIR/$tag.log" >&2
      die "run $tag failed with exit code $rc (log: $LOG_DIR/$tag.log)"
    }
    cp "$run_dir/project/target/xcache/report.json" "$LOG_DIR/$tag.report.json"
    out="-"
    bin="$run_dir/project/target/debug/xcache-bench-project"
    [[ -x "$bin" ]] && out="$("$bin" --records 300 --seed 7 2>/dev/null | cksum | tr ' ' ':')"
    read -r secs rss usr sys < <(tail -n 1 "$run_dir/time.txt")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$it" "$secs" "$(fsum "$usr" "$sys")" "$wcpu" "$srv" \
      "$out" "$LOG_DIR/$tag.report.json" >>"$RECORDS"
    log "run $tag: $secs s (CPU: build $(fsum "$usr" "$sys") s, workers $wcpu s, servers $srv s)"
    rm -rf "$run_dir"
  done
done

# ---------------------------------------------------------------- report

export RB_RECORDS="$RECORDS" RB_OUT="$OUT_DIR/exec-results.json" RB_PROJECT="$PROJECT" \
  RB_SECONDS_TOTAL="$(($(date +%s) - START_EPOCH))" RB_CPUS="$(nproc)"
python3 "$BENCH_DIR/exec_report.py"
