# bench/lib.sh: shell helpers shared by bench/run.sh and bench/remote.sh.
#
# Sourced, not run. The sourcing script sets BENCH_LOG_PREFIX (e.g. "bench")
# before it calls log or die, and `set -euo pipefail` itself.

BENCH_LOG_PREFIX="${BENCH_LOG_PREFIX:-bench}"
# Where bench/install-peers.sh puts sccache, mbx and kache.
TOOLS_ROOT="${XCACHE_BENCH_TOOLS_DIR:-/opt/xcache-bench/tools}"

log() { printf '[%s] %s\n' "$BENCH_LOG_PREFIX" "$*" >&2; }
die() {
  printf '[%s] error: %s\n' "$BENCH_LOG_PREFIX" "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- arguments

# parse_profile_jobs PROFILE JOBS: sets PROFILE_ARGS, PROFILE_DIR and JOBS_ARGS.
parse_profile_jobs() {
  case "$1" in
    dev) PROFILE_ARGS=() PROFILE_DIR=debug ;;
    release) PROFILE_ARGS=(--release) PROFILE_DIR=release ;;
    *) die "XCACHE_BENCH_PROFILE must be dev or release, not '$1'" ;;
  esac
  JOBS_ARGS=()
  if [[ -n "$2" ]]; then
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_BENCH_JOBS must be a positive number, not '$2'"
    JOBS_ARGS=(-j "$2")
  fi
}

# ---------------------------------------------------------------- JSON and numbers

# A JSON reader: jq, else python3, else a best-effort grep for a number.
# json_get FILE JQ_PATH PY_EXPR -> prints the value or nothing.
json_get() {
  local file="$1" jq_path="$2" py_expr="$3"
  [[ -s "$file" ]] || return 0
  if command -v jq >/dev/null; then
    jq -r "($jq_path) // empty" "$file" 2>/dev/null || true
  elif command -v python3 >/dev/null; then
    python3 - "$file" "$py_expr" <<'PY' 2>/dev/null || true
import json, sys
d = json.load(open(sys.argv[1]))
try:
    v = eval(sys.argv[2], {"d": d})
except Exception:
    v = None
if v is not None:
    print(v)
PY
  else
    local key="${jq_path##*.}"
    grep -oE "\"$key\"[[:space:]]*:[[:space:]]*[0-9.]+" "$file" | head -n1 | grep -oE '[0-9.]+$' || true
  fi
}

# Prints its argument as a JSON number, or null when empty / not numeric.
jnum() {
  if [[ "${1:-}" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then printf '%s' "$1"; else printf 'null'; fi
}
# Prints its argument as a JSON string.
jstr() {
  local s="${1:-}"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/ }"
  s="${s//$'\t'/ }"
  printf '"%s"' "$s"
}
# ratio A B -> A/B with 3 decimals, or empty.
ratio() {
  [[ -n "${1:-}" && -n "${2:-}" ]] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.3f", a / b }'
}
# fsum N... -> the sum of its arguments with 2 decimals (an empty one counts as 0).
fsum() {
  local n
  for n in "$@"; do printf '%s\n' "${n:-0}"; done | awk '{ t += $1 } END { printf "%.2f", t }'
}
# le A B -> exit status 0 when A <= B.
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# ---------------------------------------------------------------- projects

# Copies a project without its target directory.
copy_project() {
  local src="$1" dst="$2"
  mkdir -p "$dst"
  tar -C "$src" --exclude=./target -cf - . | tar -C "$dst" -xf -
}

# fetch_template PROJECT TEMPLATE LOG: copies PROJECT to TEMPLATE and runs
# `cargo fetch` there once (not timed), so that no timed build downloads.
fetch_template() {
  local project="$1" template="$2" logf="$3"
  copy_project "$project" "$template"
  local args=()
  [[ -f "$template/Cargo.lock" ]] && args=(--locked)
  log "cargo fetch (not timed)"
  (cd "$template" && cargo fetch "${args[@]}") >"$logf" 2>&1 || {
    tail -n 20 "$logf" >&2
    die "cargo fetch failed (see $logf)"
  }
}

# ---------------------------------------------------------------- processes and ports

# port_open PORT [NETNS]: whether something listens on 127.0.0.1:PORT, here or in the
# network namespace NETNS.
port_open() {
  if [[ -n "${2:-}" ]]; then
    ip netns exec "$2" bash -c "(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null"
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# start_weed DIR LOG S3_PORT MASTER_PORT VOLUME_PORT FILER_PORT ADMIN_PORT [WEED_ARG...]:
# starts SeaweedFS (`weed mini`, the binary in $WEED) in DIR on loopback with one S3
# identity ($S3_ACCESS, $S3_SECRET) and the bucket $S3_BUCKET, its output in LOG, and
# waits until the filer lists the bucket (SeaweedFS creates it after the S3 port opens)
# and the S3 port and every port of WAIT_PORTS (space-separated, may be unset) answer.
# Sets WEED_PID. Dies with the log's tail when it does not come up.
start_weed() {
  local dir="$1" logf="$2" s3="$3" master="$4" volume="$5" filer="$6" admin="$7" i ok=0 code p ready
  shift 7
  mkdir -p "$dir"
  cat >"$dir/s3.json" <<EOF
{"identities":[{"name":"xcache","credentials":[{"accessKey":"$S3_ACCESS","secretKey":"$S3_SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
  (cd "$dir" && exec "$WEED" mini -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$s3" -master.port="$master" -volume.port="$volume" \
    -filer.port="$filer" -admin.port="$admin" \
    -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$dir/s3.json" -bucket="$S3_BUCKET" "$@") </dev/null >"$logf" 2>&1 &
  WEED_PID=$!
  for ((i = 0; i < 1200; i++)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/json' \
      "http://127.0.0.1:$filer/buckets/$S3_BUCKET/" 2>/dev/null || true)"
    if [[ "$code" == 200 ]]; then
      ready=1
      for p in $s3 ${WAIT_PORTS:-}; do port_open "$p" || ready=0; done
      [[ "$ready" == 1 ]] && ok=1 && break
    fi
    kill -0 "$WEED_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ "$ok" == 1 ]] || {
    tail -n 30 "$logf" >&2 || true
    die "SeaweedFS did not start with bucket $S3_BUCKET (log: $logf)"
  }
}

# find_server NAME HINT: the path of the server program NAME (dies with HOW TO INSTALL
# when missing). A pyenv shim execs the real program: the program itself is named, so
# the PID a script holds is the server's.
find_server() {
  local prog
  prog="$(command -v "$1" || true)"
  [[ -n "$prog" ]] || die "$1 is not installed ($2)"
  if [[ "$prog" == */shims/"$1" ]] && command -v pyenv >/dev/null; then
    prog="$(pyenv which "$1" 2>/dev/null || echo "$prog")"
  fi
  echo "$prog"
}

# start_bgd DIR LOG PORT [BGD_ARG...]: starts BuildGrid (the program in $BGD) serving a
# REAPI cache only on 127.0.0.1:PORT, instance "main": CAS and ByteStream on a disk
# storage in DIR, an in-memory LRU action cache, no database. BGD_ARGs go to `bgd
# server start` (`-vv --json-logs` logs every request). Sets BGD_PID; waits until the
# port answers (BuildGrid takes some seconds to import), and dies with the log's tail
# when it does not come up.
start_bgd() {
  local dir="$1" logf="$2" port="$3" i
  shift 3
  mkdir -p "$dir"
  cat >"$dir/bgd.yml" <<YML
server:
  - !channel
    address: "127.0.0.1:$port"
    insecure-mode: true
storages:
  - !disk-storage &cas
    path: $dir/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 1000000
    allow-updates: true
instances:
  - name: main
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
YML
  "$BGD" server start "$@" "$dir/bgd.yml" </dev/null >"$logf" 2>&1 &
  BGD_PID=$!
  for ((i = 0; i < 1200; i++)); do
    port_open "$port" && return 0
    kill -0 "$BGD_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 30 "$logf" >&2 || true
  die "BuildGrid did not listen on 127.0.0.1:$port (log: $logf)"
}

# free_ports N: N distinct loopback ports nobody listens on, each with a free +10000
# neighbour (SeaweedFS opens its gRPC ports there).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
n, out, held = int(sys.argv[1]), [], []
while len(out) < n:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    held.append(s)
    if p >= 55000 or p in out or p + 10000 in out or p - 10000 in out:
        continue
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p + 10000))
    except OSError:
        continue
    finally:
        t.close()
    out.append(p)
for s in held:
    s.close()
print(" ".join(map(str, out)))
PY
}

# wait_port PORT PID NAME LOG [SECONDS [NETNS]]
wait_port() {
  local port="$1" pid="$2" name="$3" logf="$4" secs="${5:-60}" ns="${6:-}" i
  for ((i = 0; i < secs * 10; i++)); do
    port_open "$port" "$ns" && return 0
    kill -0 "$pid" 2>/dev/null || {
      tail -n 30 "$logf" >&2 || true
      die "$name exited before listening on port $port (log: $logf)"
    }
    sleep 0.1
  done
  tail -n 30 "$logf" >&2 || true
  die "$name did not listen on port $port within $secs s (log: $logf)"
}

# proc_cpu CHILDREN PID...: CPU seconds (user + system) the processes have used so far;
# with CHILDREN=1 also the children they waited for (a worker's compiles).
proc_cpu() {
  local children="$1" pid ticks=0 f
  shift
  for pid in "$@"; do
    # Fields 14 to 17 of /proc/PID/stat (utime, stime, cutime, cstime), counted after
    # the command name, which is in parentheses and may hold spaces.
    f="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null)" || continue
    read -r -a f <<<"$f"
    ticks=$((ticks + f[11] + f[12]))
    [[ "$children" == 1 ]] && ticks=$((ticks + f[13] + f[14]))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" 'BEGIN { printf "%.2f", t / hz }'
}

# pick_free_port: one loopback port nobody listens on (a guess, checked).
pick_free_port() {
  local port i
  for ((i = 0; i < 50; i++)); do
    port=$((20000 + RANDOM % 20000))
    if ! port_open "$port"; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# stop_pid PID NAME: SIGTERM, up to 10 s, then SIGKILL. Only PIDs we started.
stop_pid() {
  local pid="$1" name="$2" i
  kill -0 "$pid" 2>/dev/null || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "warning: $name (pid $pid) did not stop on SIGTERM; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- GNU time

# find_gnu_time INSTALL(0|1): sets TIME_BIN to /usr/bin/time when it works, else
# to "". With INSTALL=1 and root, installs the Debian package first if needed.
find_gnu_time() {
  TIME_BIN=/usr/bin/time
  if [[ "$1" == 1 && ! -x "$TIME_BIN" ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing GNU time (Debian package 'time')"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 || true
    fi
  fi
  if [[ ! -x "$TIME_BIN" ]] || ! "$TIME_BIN" -f '%e %M' -o /dev/null true 2>/dev/null; then
    TIME_BIN=""
  fi
}

# ---------------------------------------------------------------- tools

# build_xcache REPO BUILD_DIR LOG [CARGO_ARGS...]: builds cargo-xcache in
# release mode unless XCACHE_BENCH_BIN names a binary, and sets XC to its
# absolute path. Dies with HINT ($BUILD_HINT) when the build fails.
build_xcache() {
  local repo="$1" build_dir="$2" logf="$3"
  shift 3
  if [[ -n "${XCACHE_BENCH_BIN:-}" ]]; then
    XC="$XCACHE_BENCH_BIN"
  else
    log "building cargo-xcache (release) into $build_dir (log: $logf)"
    if ! cargo build --release "$@" --manifest-path "$repo/Cargo.toml" --target-dir "$build_dir" \
      >"$logf" 2>&1; then
      tail -n 30 "$logf" >&2 || true
      die "cargo-xcache does not build (see $logf). ${BUILD_HINT:-Point XCACHE_BENCH_BIN at a built binary.}"
    fi
    XC="$build_dir/release/cargo-xcache"
  fi
  [[ -x "$XC" ]] || die "cargo-xcache binary not found or not executable: $XC"
  XC="$(cd "$(dirname "$XC")" && pwd)/$(basename "$XC")"
}

# find_tool NAME: prints the path of NAME on PATH, else in $TOOLS_ROOT/bin, else nothing.
find_tool() {
  if command -v "$1" >/dev/null; then
    command -v "$1"
  elif [[ -x "$TOOLS_ROOT/bin/$1" ]]; then
    printf '%s\n' "$TOOLS_ROOT/bin/$1"
  fi
}

# stop_sccache_server: stops the server started into SCCACHE_SRV_PID (which
# listens on SCCACHE_PORT) with --stop-server, else by PID. GNU time may wrap
# it; then the server is the only child of that time process.
stop_sccache_server() {
  [[ -n "${SCCACHE_SRV_PID:-}" ]] || return 0
  local pid="$SCCACHE_SRV_PID" i child
  SCCACHE_SRV_PID=""
  # Only ask a server that is up: a client that finds none would start a daemon.
  if port_open "$SCCACHE_PORT"; then
    SCCACHE_SERVER_PORT="$SCCACHE_PORT" "$SCCACHE" --stop-server >/dev/null 2>&1 || true
  fi
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "warning: sccache server did not stop; killing it (pid $pid)"
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill "$child" 2>/dev/null || true; done
    kill "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- remote-execution farm

# start_farm WORK LOGS: a throwaway PostgreSQL 15 cluster and BuildGrid 0.4.4 serving CAS,
# ByteStream, ActionCache, Execution and Bots on it (instance $INSTANCE), under WORK, logs
# in LOGS; appends "PID NAME" to the caller's STARTED and sets PG_PORT, BGD_PORT and
# EXECUTOR. Needs PG_BIN, INSTANCE and BGD. Used by bench/exec.sh and bench/farm.sh.
# With FARM_NS set (a network namespace of the caller's, see farm_netns), both run in
# it: PostgreSQL on its 127.0.0.1, BuildGrid on all of its addresses (its loopback and
# its ends of the links to it), on fixed ports (nothing else listens there); EXECUTOR
# then names its loopback, which only the namespace reaches: the caller names the
# address a client uses.
start_farm() {
  local work="$1" logs="$2" i PG_URL
  local PG_DATA="$work/pg/data"
  local as_postgres=() nsx=() bind=127.0.0.1
  if [[ -n "${FARM_NS:-}" ]]; then
    nsx=(ip netns exec "$FARM_NS")
    bind=0.0.0.0
    PG_PORT=5432 BGD_PORT=50051
  else
    read -r PG_PORT BGD_PORT < <(free_ports 2)
  fi
  mkdir -p "$PG_DATA"
  if [[ "$(id -u)" == 0 ]]; then
    # PostgreSQL refuses to run as root.
    chmod 755 "$work" "$work/pg"
    chown postgres:postgres "$PG_DATA"
    as_postgres=(setpriv "--reuid=$(id -u postgres)" "--regid=$(id -g postgres)" --clear-groups)
  fi
  log "starting PostgreSQL (127.0.0.1:$PG_PORT; log: $logs/postgres.log)"
  "${nsx[@]}" "${as_postgres[@]}" "$PG_BIN/initdb" -U bgd --auth=trust -E UTF8 --no-sync -D "$PG_DATA" \
    >"$logs/initdb.log" 2>&1 || die "initdb failed (see $logs/initdb.log)"
  "${nsx[@]}" "${as_postgres[@]}" "$PG_BIN/postgres" -D "$PG_DATA" -h 127.0.0.1 -p "$PG_PORT" -k "$PG_DATA" \
    -c fsync=off </dev/null >"$logs/postgres.log" 2>&1 &
  STARTED+=("$! postgres")
  wait_port "$PG_PORT" "$!" PostgreSQL "$logs/postgres.log" 120 "${FARM_NS:-}"
  PG_URL="postgresql+psycopg2://bgd@127.0.0.1:$PG_PORT/postgres"
  for ((i = 0; i < 50; i++)); do
    "${nsx[@]}" "$BGD" migrate apply "$PG_URL" >"$logs/migrate.log" 2>&1 && break
    sleep 0.2
  done
  [[ "$i" -lt 50 ]] || die "bgd migrate apply failed (see $logs/migrate.log)"

  mkdir -p "$work/bgd"
  # The same farm as tests/common/exec_servers.rs: workers are matched on OSFamily, ISA and
  # the compiler and linker identities; sessions expire 10 s after a worker was last heard from.
  cat >"$work/bgd/bgd.yml" <<YML
server:
  - !channel
    address: "$bind:$BGD_PORT"
    insecure-mode: true
connections:
  - !sql-connection &sql
    connection-string: $PG_URL
    pool-size: 5
    max-overflow: 10
storages:
  - !disk-storage &cas
    path: $work/bgd/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
schedulers:
  - !sql-scheduler &sched
    sql: *sql
    action-cache: *ac
    storage: *cas
    bot-session-keepalive-timeout: 10
    session-expiry-timer-interval: 1
    max-job-attempts: 3
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ISA, xcache-compiler, xcache-linker, xcache-toolchain]
      wildcard-property-keys: []
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.1
instances:
  - name: $INSTANCE
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *sched
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
YML
  log "starting BuildGrid with Execution and Bots ($bind:$BGD_PORT${FARM_NS:+ in $FARM_NS}; log: $logs/bgd.log)"
  "${nsx[@]}" "$BGD" server start "$work/bgd/bgd.yml" </dev/null >"$logs/bgd.log" 2>&1 &
  STARTED+=("$! bgd")
  wait_port "$BGD_PORT" "$!" BuildGrid "$logs/bgd.log" 120 "${FARM_NS:-}"
  EXECUTOR="grpc://127.0.0.1:$BGD_PORT?instance=$INSTANCE"
}

# ---------------------------------------------------------------- hosts of their own

# Network namespaces, links and hosts for a farm whose workers are other machines:
# bench/exec.sh's default farm. Needs root, iproute2 (ip), util-linux (unshare) and,
# once, mmdebstrap. The caller keeps NETNS_MADE (the namespaces made, removed by
# netns_cleanup) and holds a slot (netns_slot), which names everything:
#   namespaces  xcb<S>-farm, xcb<S>-h<i>
#   links       xcb<S>r (here, 10.215.S.1/30) -- xcb<S>f (farm, 10.215.S.2/30)
#               xcb<S>f<i> (farm, 10.216.S.4i+1/30) -- xcb<S>w<i> (host i, 10.216.S.4i+2/30)
# (tests/common/hosts.rs uses 10.213 and 10.214, so the two never meet.)

# trixie_root: sets TRIXIE_ROOT to a Debian trixie minbase root (a shell, glibc; no Rust,
# no C compiler) under ${XCACHE_BENCH_ROOTS:-/var/cache/xcache-bench/roots}, made with
# mmdebstrap the first time (about 8 s, from deb.debian.org) and kept: made in a
# directory beside it and renamed into place once complete, under a lock, so a run
# stopped half-way leaves no half-made root behind it.
trixie_root() {
  local roots="${XCACHE_BENCH_ROOTS:-/var/cache/xcache-bench/roots}" tmp lockfd
  TRIXIE_ROOT="$roots/trixie"
  [[ -f "$TRIXIE_ROOT/.xcache-bench-root" ]] && return 0
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap): it makes the hosts' root"
  mkdir -p "$roots"
  exec {lockfd}>"$roots/.lock"
  flock "$lockfd"
  if [[ ! -f "$TRIXIE_ROOT/.xcache-bench-root" ]]; then
    tmp="$roots/.trixie.$$"
    rm -rf "$tmp" "$TRIXIE_ROOT"
    log "making the hosts' root (Debian trixie, minbase) at $TRIXIE_ROOT"
    mmdebstrap --quiet --variant=minbase trixie "$tmp" http://deb.debian.org/debian >&2 ||
      { rm -rf "$tmp"; die "mmdebstrap failed"; }
    # Where a host binds its own directory (the worker's binary, --dir, HOME).
    mkdir -p "$tmp/xcache"
    touch "$tmp/.xcache-bench-root"
    mv "$tmp" "$TRIXIE_ROOT"
  fi
  exec {lockfd}>&-
}

# netns_slot: takes the first free slot S (0-63), held by a lock on /run/xcache-bench/
# slot-S for as long as this shell and what it started live, and removes what a run
# that held it and was killed (SIGKILL: no trap ran) left behind. Sets SLOT.
netns_slot() {
  local n ns
  mkdir -p /run/xcache-bench
  for ((n = 0; n < 64; n++)); do
    exec {SLOT_FD}>"/run/xcache-bench/slot-$n"
    if flock -n "$SLOT_FD"; then
      SLOT=$n
      for ns in $(ip netns list | awk '{ print $1 }' | grep "^xcb$n-" || true); do
        log "removing network namespace $ns, left by a run killed before it could"
        netns_remove "$ns"
      done
      ip link del "xcb${n}r" 2>/dev/null || true
      return 0
    fi
    exec {SLOT_FD}>&-
  done
  die "all 64 slots under /run/xcache-bench are taken"
}

# netns_remove NS: ends every process in NS (one of ours: SIGTERM, then SIGKILL after
# 5 s, by PID) and deletes it; its links go with it.
netns_remove() {
  local ns="$1" i pids
  for ((i = 0; i < 100; i++)); do
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    [[ -n "$pids" ]] || break
    # shellcheck disable=SC2086
    if ((i < 50)); then kill $pids 2>/dev/null || true; else kill -9 $pids 2>/dev/null || true; fi
    sleep 0.1
  done
  [[ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ]] || log "warning: processes left in network namespace $ns"
  ip netns del "$ns" 2>/dev/null || true
}

# netns_cleanup: removes the namespaces of NETNS_MADE, hosts first.
netns_cleanup() {
  local i
  for ((i = ${#NETNS_MADE[@]} - 1; i >= 0; i--)); do netns_remove "${NETNS_MADE[$i]}"; done
  NETNS_MADE=()
  # The kernel removes a deleted namespace's links a moment later: not left to it.
  if [[ -n "${CLIENT_LINK:-}" ]]; then ip link del "$CLIENT_LINK" 2>/dev/null || true; fi
}

# farm_netns: makes the farm's namespace and its link to this one; sets FARM_NS,
# FARM_ADDR (the farm's address from here) and CLIENT_LINK (this end, whose counters
# count what the build sends and receives).
farm_netns() {
  FARM_NS="xcb$SLOT-farm"
  CLIENT_LINK="xcb${SLOT}r"
  FARM_ADDR="10.215.$SLOT.2"
  ip netns add "$FARM_NS"
  NETNS_MADE+=("$FARM_NS")
  ip link add "$CLIENT_LINK" type veth peer name "xcb${SLOT}f" netns "$FARM_NS"
  ip addr add "10.215.$SLOT.1/30" dev "$CLIENT_LINK"
  ip link set "$CLIENT_LINK" up
  ip -n "$FARM_NS" link set lo up
  ip -n "$FARM_NS" addr add "$FARM_ADDR/30" dev "xcb${SLOT}f"
  ip -n "$FARM_NS" link set "xcb${SLOT}f" up
}

# host_netns I: makes host I's namespace (I from 1 to 62) and its link to the farm's.
host_netns() {
  local i="$1" ns="xcb$SLOT-h$1"
  ip netns add "$ns"
  NETNS_MADE+=("$ns")
  ip link add "xcb${SLOT}w$i" netns "$ns" type veth peer name "xcb${SLOT}f$i" netns "$FARM_NS"
  ip -n "$FARM_NS" addr add "10.216.$SLOT.$((4 * i + 1))/30" dev "xcb${SLOT}f$i"
  ip -n "$FARM_NS" link set "xcb${SLOT}f$i" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "10.216.$SLOT.$((4 * i + 2))/30" dev "xcb${SLOT}w$i"
  ip -n "$ns" link set "xcb${SLOT}w$i" up
}

# What a host runs before its worker, as root, in the host's own mount, UTS and PID
# namespaces (its first process): /proc, a /tmp of its own, its directory on /xcache,
# the worker's binary bound read-only; then the worker, chrooted into the root with an
# empty environment. The root is shared by the hosts, and not written (/tmp is a tmpfs).
HOST_SETUP='set -e
root=$1 dir=$2 exe=$3 name=$4
shift 4
mount -t proc proc "$root/proc"
mount -t tmpfs tmpfs "$root/tmp"
mount --bind "$dir" "$root/xcache"
mount --bind -o ro "$exe" "$root/xcache/cargo-xcache"
echo "$name" > /proc/sys/kernel/hostname
exec chroot "$root" /usr/bin/env -i HOME=/xcache/home PATH=/usr/local/bin:/usr/bin:/bin "$@"'

# host_worker I DIR LOG [WORKER_ARG...]: starts `cargo xcache worker` (the binary $XC) on
# host I, named hI, reaching BuildGrid at the farm's end of the host's link, with DIR (a
# directory here) as its /xcache: --dir /xcache/work, HOME /xcache/home. Sets
# HOST_PID (unshare's, which ends when the worker does) and HOST_WORKER_PID (the
# worker's, the first process of the host's PID namespace: stop it, and the host's
# processes end with it; unshare's --kill-child did not end it here, util-linux 2.38).
host_worker() {
  local i="$1" dir="$2" logf="$3" k
  shift 3
  mkdir -p "$dir/home" "$dir/work"
  : >"$dir/cargo-xcache"
  ip netns exec "xcb$SLOT-h$i" unshare --mount --uts --pid --fork --kill-child -- \
    sh -c "$HOST_SETUP" sh "$TRIXIE_ROOT" "$dir" "$XC" "h$i" \
    /xcache/cargo-xcache xcache worker --name "h$i" --dir /xcache/work \
    --server "grpc://10.216.$SLOT.$((4 * i + 1)):$BGD_PORT?instance=$INSTANCE" "$@" \
    </dev/null >"$logf" 2>&1 &
  HOST_PID=$!
  HOST_WORKER_PID=""
  for ((k = 0; k < 100; k++)); do
    HOST_WORKER_PID="$(cat "/proc/$HOST_PID/task/$HOST_PID/children" 2>/dev/null | awk '{ print $1 }')"
    [[ -n "$HOST_WORKER_PID" ]] && break
    kill -0 "$HOST_PID" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n "$HOST_WORKER_PID" ]] || {
    tail -n 20 "$logf" >&2 || true
    die "host $i's worker did not start (log: $logf)"
  }
}
