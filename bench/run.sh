#!/usr/bin/env bash
# bench/run.sh: cargo-xcache against plain cargo and the peer build caches
# (sccache, kache, mbx), side by side in one run, on one or more projects.
#
# For each project (bench/project, the dependency-heavy one, by default; also
# bench/project-c, the C-heavy one; bench/project-sys, vendored C through -sys crates
# with cc 1.2.7), each round (XCACHE_BENCH_REPEAT) and each of cargo's build-dir
# layouts (XCACHE_BENCH_LAYOUTS, below), with the layout's environment on every build:
#
#   plain-cold     cargo build, no wrapper
#   TOOL-cold      TOOL with an empty store of its own, checkout A, empty target dir
#   TOOL-warm      the same store; checkout A deleted first; a fresh copy of the
#                  project at another absolute path B, empty target dir
#   TOOL-machine   the same store, as on another machine (a fleet's second CI runner):
#                  a fresh copy at another path C, empty target dir, another CARGO_HOME
#                  (the registry's index and downloads copied, unpacked again at its
#                  own path) whose bin directory is first on PATH, the rest of PATH in
#                  reverse order, another HOME and USER
#
# for TOOL in XCACHE_BENCH_TOOLS (default: xcache sccache kache mbx; a peer
# that is not installed is left out with a message). Every store is new in
# every round and layout, so every cold run is cold.
#
# For every run it records the wall time (GNU time %e), the peak RSS of the
# largest process (%M; for tools with a daemon also the daemon's peak), the
# packages cargo compiled, hits and misses where the tool tells, and whether
# the built program prints the same as plain cargo's. bench/report.py prints
# per project a table (medians over the rounds, ratios against plain-cold) and
# the issue's targets, and writes bench/out/results.json (logs in bench/out/logs).
#
# Options (environment):
#   XCACHE_BENCH_PROJECTS="project project-c"  projects: names under bench/ or paths
#                                    (default: project; XCACHE_BENCH_PROJECT=DIR still works)
#   XCACHE_BENCH_TOOLS="xcache sccache kache mbx"  tools beside plain cargo (default: all)
#   XCACHE_BENCH_REPEAT=N            rounds; medians, min and max are reported (default: 1)
#   XCACHE_BENCH_LAYOUTS="legacy build-dir new"  cargo's build-dir layouts to measure, each
#                                    with all of the round's runs (default: legacy):
#                                    legacy     the build dir is the target dir (stable cargo's default)
#                                    build-dir  a build dir apart, CARGO_BUILD_BUILD_DIR=<a new
#                                               directory per run> (stable cargo)
#                                    new        cargo's new layout (<profile>/build/<pkg>/<hash>/):
#                                               the nightly toolchain's own cargo and rustc
#                                               (first on PATH, CARGO, RUSTC, RUSTUP_TOOLCHAIN)
#                                               with CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT=true, for
#                                               every tool and plain cargo; left out with a
#                                               message when no nightly toolchain is installed
#   XCACHE_BENCH_BUILD_DIR_AT=checkout|beside  where the build-dir layout's build dir is:
#                                    <checkout>/build-dir (default) or <checkout>-build-dir,
#                                    outside the workspace (mbx stores nothing there)
#   XCACHE_BENCH_ORDER=alternate|plain-first  which build of a round comes first: alternate
#                                    (default) runs plain cargo first in odd rounds and
#                                    last in even ones, so that neither side of a pair is
#                                    always the one that runs second; plain-first always
#                                    runs plain cargo first (as before 2026-11-27)
#   XCACHE_BENCH_KINDS="cold warm machine"  which of a tool's runs each round makes (default:
#                                    all three; cold always, the others fill its store): "cold"
#                                    alone measures the cold build in more pairs for the time
#   XCACHE_BENCH_PROFILE=dev|release cargo profile (default: dev)
#   XCACHE_BENCH_COMMAND=build|test  the cargo command every run times (default: build);
#                                    with test, cargo's test results replace the
#                                    program's output in the output check
#   XCACHE_BENCH_SKIP_SCCACHE=1      leave sccache out (as if not in XCACHE_BENCH_TOOLS)
#   XCACHE_BENCH_ONLY_PEERS=1        leave cargo-xcache out (do not build it)
#   XCACHE_BENCH_INSTALL_PEERS=1     run bench/install-peers.sh first for missing peers
#                                    (XCACHE_BENCH_INSTALL_SCCACHE=1: sccache only)
#   XCACHE_BENCH_BIN=PATH            use this cargo-xcache binary instead of building it
#   XCACHE_BENCH_BASE_BIN=PATH       also run this other cargo-xcache binary (an older
#                                    commit, say) as the tool xcache-base, the same way
#                                    as xcache, right after it: a before/after in one run
#   XCACHE_BENCH_BUILD_DIR=DIR       target dir for building cargo-xcache (default: /tmp/xcache-bench-build)
#   XCACHE_BENCH_TOOLS_DIR=DIR       where the peers are installed (default: /opt/xcache-bench/tools)
#   XCACHE_BENCH_OUT=DIR             where results.json and logs go (default: bench/out)
#   XCACHE_BENCH_JOBS=N              pass -j N to every timed build (default: cargo's default)
#   XCACHE_BENCH_SETTLE=0            do not `sync` before each timed run (default: sync, so
#                                    that no run pays for the writeback of the one before)
#                                    and trees of finished runs are set aside, not deleted,
#                                    until free space runs low: see "Deleting" below)
#   XCACHE_BENCH_MIN_FREE_GB=N       set-aside trees are deleted (then a 61 s wait) at the
#                                    start of a round once less than N GB are free (default 20)
#   XCACHE_BENCH_STRICT=1            exit 1 if a target is missed or a build's output differs
#   XCACHE_BENCH_KEEP_TMP=1          keep the temporary directory (its path is printed)
#   XCACHE_BENCH_FRESH_PRIVATE=1     give every cargo-xcache run an empty private directory
#                                    (XDG_RUNTIME_DIR of its own): the first build of an
#                                    ephemeral CI runner, which has no memo of the compiler,
#                                    the linker or the C tools yet (default: the machine's)

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

PROJECTS="${XCACHE_BENCH_PROJECTS:-${XCACHE_BENCH_PROJECT:-project}}"
TOOLS_SELECTED="${XCACHE_BENCH_TOOLS:-xcache sccache kache mbx}"
REPEAT="${XCACHE_BENCH_REPEAT:-1}"
ORDER="${XCACHE_BENCH_ORDER:-alternate}"
case "$ORDER" in alternate | plain-first) ;; *) die "XCACHE_BENCH_ORDER=$ORDER: expected alternate or plain-first" ;; esac
KINDS="${XCACHE_BENCH_KINDS:-cold warm machine}"
LAYOUTS_SELECTED="${XCACHE_BENCH_LAYOUTS:-legacy}"
BUILD_DIR_AT="${XCACHE_BENCH_BUILD_DIR_AT:-checkout}"
case "$BUILD_DIR_AT" in checkout | beside) ;; *) die "XCACHE_BENCH_BUILD_DIR_AT=$BUILD_DIR_AT: expected checkout or beside" ;; esac
PROFILE="${XCACHE_BENCH_PROFILE:-dev}"
SETTLE="${XCACHE_BENCH_SETTLE:-1}"
MIN_FREE_GB="${XCACHE_BENCH_MIN_FREE_GB:-20}"
SKIP_SCCACHE="${XCACHE_BENCH_SKIP_SCCACHE:-0}"
ONLY_PEERS="${XCACHE_BENCH_ONLY_PEERS:-0}"
INSTALL_PEERS="${XCACHE_BENCH_INSTALL_PEERS:-0}"
INSTALL_SCCACHE="${XCACHE_BENCH_INSTALL_SCCACHE:-0}"
BUILD_DIR="${XCACHE_BENCH_BUILD_DIR:-/tmp/xcache-bench-build}"
OUT_DIR="${XCACHE_BENCH_OUT:-$BENCH_DIR/out}"
JOBS="${XCACHE_BENCH_JOBS:-}"
COMMAND="${XCACHE_BENCH_COMMAND:-build}"
case "$COMMAND" in build | test) ;; *) echo "bench: XCACHE_BENCH_COMMAND=$COMMAND is not build or test" >&2; exit 2 ;; esac
STRICT="${XCACHE_BENCH_STRICT:-0}"
KEEP_TMP="${XCACHE_BENCH_KEEP_TMP:-0}"
FRESH_PRIVATE="${XCACHE_BENCH_FRESH_PRIVATE:-0}"

# The smoke check runs each built program with these arguments; every project
# under bench/ accepts them and prints something that depends on them only (a
# project fetched by bench/fetch-crate.sh says its own in .xcache-bench).
DEFAULT_SMOKE_ARGS=(--records 300 --seed 7)
SMOKE_ARGS=("${DEFAULT_SMOKE_ARGS[@]}")

# ---------------------------------------------------------------- arguments

parse_profile_jobs "$PROFILE" "$JOBS"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_BENCH_REPEAT must be a positive number, not '$REPEAT'"
for k in $KINDS; do
  case "$k" in cold | warm | machine) ;; *) die "XCACHE_BENCH_KINDS: '$k' is not cold, warm or machine" ;; esac
done
[[ "$FRESH_PRIVATE" == 0 || "$FRESH_PRIVATE" == 1 ]] || die "XCACHE_BENCH_FRESH_PRIVATE must be 0 or 1, not '$FRESH_PRIVATE'"
[[ " $KINDS " == *" cold "* ]] || die "XCACHE_BENCH_KINDS='$KINDS' must include cold (the warm and machine runs read the store it fills)"
wants() { [[ " $KINDS " == *" $1 "* ]]; }
command -v cargo >/dev/null || die "cargo is not on PATH"

# Layouts, in the order given, each once.
LAYOUTS=()
for l in $LAYOUTS_SELECTED; do
  case "$l" in
    legacy | build-dir | new) [[ " ${LAYOUTS[*]} " == *" $l "* ]] || LAYOUTS+=("$l") ;;
    *) die "XCACHE_BENCH_LAYOUTS='$LAYOUTS_SELECTED': '$l' is not a layout (legacy, build-dir or new)" ;;
  esac
done
((${#LAYOUTS[@]})) || die "XCACHE_BENCH_LAYOUTS='$LAYOUTS_SELECTED' names no layout (legacy, build-dir or new)"
# The new layout runs the nightly toolchain's own binaries (not rustup's proxies): NB is
# its bin directory, NIGHTLY_TOOLCHAIN its name for RUSTUP_TOOLCHAIN (so that a proxy
# that is still reached picks the same toolchain).
NB="" NIGHTLY_TOOLCHAIN=""
if [[ " ${LAYOUTS[*]} " == *" new "* ]]; then
  nb_cargo="$(rustup which cargo --toolchain nightly 2>/dev/null || true)"
  if [[ -n "$nb_cargo" && -x "$nb_cargo" && -x "$(dirname "$nb_cargo")/rustc" ]]; then
    NB="$(dirname "$nb_cargo")"
    NIGHTLY_TOOLCHAIN="$(basename "$(dirname "$NB")")"
  else
    log "no nightly toolchain installed (rustup which cargo --toolchain nightly found none): leaving the new layout out"
    keep=()
    for l in "${LAYOUTS[@]}"; do [[ "$l" == new ]] || keep+=("$l"); done
    LAYOUTS=("${keep[@]}")
    ((${#LAYOUTS[@]})) || die "XCACHE_BENCH_LAYOUTS='$LAYOUTS_SELECTED': no layout left to run (the new layout needs a nightly toolchain: rustup toolchain install nightly)"
  fi
fi
command -v tar >/dev/null || die "tar is not on PATH"
command -v python3 >/dev/null || die "python3 is not on PATH (bench/report.py needs it)"

PROJECT_DIRS=()
for p in $PROJECTS; do
  if [[ -f "$BENCH_DIR/$p/Cargo.toml" ]]; then
    PROJECT_DIRS+=("$(cd "$BENCH_DIR/$p" && pwd)")
  elif [[ -f "$p/Cargo.toml" ]]; then
    PROJECT_DIRS+=("$(cd "$p" && pwd)")
  else
    die "no Cargo.toml for project '$p' (a name under bench/ or a directory)"
  fi
done
((${#PROJECT_DIRS[@]})) || die "XCACHE_BENCH_PROJECTS names no project"

TOOLS=()
for t in $TOOLS_SELECTED; do
  case "$t" in
    xcache)
      [[ "$ONLY_PEERS" == 1 ]] || TOOLS+=(xcache)
      [[ -z "${XCACHE_BENCH_BASE_BIN:-}" ]] || TOOLS+=(xcache-base)
      ;;
    sccache) [[ "$SKIP_SCCACHE" == 1 ]] || TOOLS+=(sccache) ;;
    kache | mbx) TOOLS+=("$t") ;;
    *) die "XCACHE_BENCH_TOOLS may name xcache, sccache, kache and mbx, not '$t'" ;;
  esac
done

mkdir -p "$OUT_DIR/logs"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
rm -rf "${OUT_DIR:?}/logs"/* "$OUT_DIR/results.json"
START_EPOCH="$(date +%s)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
if [[ -n "$LOAD_START" ]] && awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "warning: load average $LOAD_START on $(nproc) CPUs: other work is running, timings will not be comparable"
fi

find_gnu_time 1
[[ -n "$TIME_BIN" ]] || log "warning: GNU time is not available: wall times come from 'date', peak RSS is not measured"

# ---------------------------------------------------------------- temp dir, cleanup

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-bench.XXXXXX")"
SCCACHE_SRV_PID="" SCCACHE_PORT=""
KACHE_DAEMON_PID="" KACHE_DAEMON_ENV=()
LAYOUT_ENV=() # the current run's layout variables (run_build), which its daemon gets too

stop_kache_daemon() {
  [[ -n "$KACHE_DAEMON_PID" ]] || return 0
  local pid="$KACHE_DAEMON_PID" i child
  KACHE_DAEMON_PID=""
  env "${KACHE_DAEMON_ENV[@]}" "$KACHE" daemon stop >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "warning: kache daemon did not stop; killing it (pid $pid)"
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill "$child" 2>/dev/null || true; done
    kill "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT
  stop_sccache_server || true
  stop_kache_daemon || true
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

# ---------------------------------------------------------------- tools

has_tool() { [[ " ${TOOLS[*]} " == *" $1 "* ]]; }
drop_tool() {
  local t keep=()
  for t in "${TOOLS[@]}"; do [[ "$t" == "$1" ]] || keep+=("$t"); done
  TOOLS=("${keep[@]}")
}

XC=""
if has_tool xcache; then
  BUILD_HINT="Fix the build, point XCACHE_BENCH_BIN at a built binary, or run with XCACHE_BENCH_ONLY_PEERS=1 to measure without cargo-xcache."
  build_xcache "$REPO_DIR" "$BUILD_DIR" "$OUT_DIR/logs/product-build.log"
fi
XC_BASE=""
if has_tool xcache-base; then
  [[ -x "$XCACHE_BENCH_BASE_BIN" ]] || die "XCACHE_BENCH_BASE_BIN=$XCACHE_BENCH_BASE_BIN is not an executable file"
  XC_BASE="$(cd "$(dirname "$XCACHE_BENCH_BASE_BIN")" && pwd)/$(basename "$XCACHE_BENCH_BASE_BIN")"
fi

if [[ "$INSTALL_PEERS" == 1 || "$INSTALL_SCCACHE" == 1 ]]; then
  peers=""
  for t in sccache kache mbx; do
    has_tool "$t" && [[ -z "$(find_tool "$t")" ]] || continue
    [[ "$INSTALL_PEERS" == 1 || "$t" == sccache ]] && peers+="$t "
  done
  if [[ -n "$peers" ]]; then
    log "installing $peers into $TOOLS_ROOT (takes long; log: $OUT_DIR/logs/install-peers.log)"
    XCACHE_BENCH_PEERS="$peers" XCACHE_BENCH_TOOLS_DIR="$TOOLS_ROOT" bash "$BENCH_DIR/install-peers.sh" \
      >"$OUT_DIR/logs/install-peers.log" 2>&1 || log "warning: installing peers failed (see $OUT_DIR/logs/install-peers.log)"
  fi
fi

SCCACHE="" KACHE="" MBX=""
for t in sccache kache mbx; do
  has_tool "$t" || continue
  path="$(find_tool "$t")"
  if [[ -z "$path" ]]; then
    log "$t not found (PATH, $TOOLS_ROOT/bin): leaving it out; bash bench/install-peers.sh installs it"
    drop_tool "$t"
    continue
  fi
  case "$t" in
    sccache) SCCACHE="$path" ;;
    kache) KACHE="$path" ;;
    mbx) MBX="$path" ;;
  esac
done
log "tools: plain ${TOOLS[*]}; projects: ${PROJECT_DIRS[*]}; rounds: $REPEAT; layouts: ${LAYOUTS[*]}${NB:+ (new: $("$NB/cargo" --version 2>/dev/null) in $NB)}"

# ---------------------------------------------------------------- environment of every build

# No user or host configuration may change a tool's setup: every build sees
# empty XDG directories (config, cache, data, state), one set per user: the cold
# and warm builds of one tool and round are one user on one machine (a developer
# or a runner whose settings do not change between builds), the other-machine
# build another. CARGO_HOME and RUSTUP_HOME stay, so that every build uses the
# same registry and toolchain.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
: >"$WORK/empty-config.toml"
UNSET_ENV=(
  -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u CARGO_BUILD_RUSTC_WRAPPER -u RUSTC_WRAPPER
  -u CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER -u RUSTC_WORKSPACE_WRAPPER
  -u XCACHE_REMOTE -u XCACHE_READ_ONLY -u XCACHE_DISABLE
  -u SCCACHE_BUCKET -u SCCACHE_ENDPOINT -u SCCACHE_REDIS -u SCCACHE_REDIS_ENDPOINT -u SCCACHE_GHA_ENABLED
  -u SCCACHE_MEMCACHED -u SCCACHE_GCS_BUCKET -u SCCACHE_WEBDAV_ENDPOINT -u SCCACHE_BASEDIRS
  -u KACHE_S3_BUCKET -u KACHE_S3_ENDPOINT -u KACHE_S3_PREFIX -u KACHE_DISABLED -u KACHE_BASE_DIR
  -u KACHE_SOCKET_PATH -u KACHE_EVENT_ROOT -u KACHE_ACTIVE -u KACHE_UNSTABLE -u KACHE_OUT_DIR_ALIAS_ROOT
  -u MBX_REMOTE_URL -u MBX_REMOTE -u MBX_CACHE_DIR
  -u CI -u GITHUB_ACTIONS -u GITLAB_CI
)
# run_env USER_DIR: the variables every build of a user gets.
run_env() {
  local x="$1/xdg"
  mkdir -p "$x/config" "$x/cache" "$x/data" "$x/state"
  printf '%s\n' CARGO_INCREMENTAL=0 CARGO_NET_OFFLINE=true \
    XDG_CONFIG_HOME="$x/config" XDG_CACHE_HOME="$x/cache" XDG_DATA_HOME="$x/data" XDG_STATE_HOME="$x/state"
}

# layout_env LAYOUT BUILD_DIR: the variables that select cargo's LAYOUT for one build (and
# for its tool's daemon). build-dir: BUILD_DIR, the run's own new build dir. new: the
# nightly toolchain's own cargo and rustc, its bin directory first on PATH (the machine
# phase keeps it first: machine_env), with cargo's switch of the new layout.
layout_env() {
  case "$1" in
    legacy) ;;
    build-dir) printf '%s\n' CARGO_BUILD_BUILD_DIR="$2" ;;
    new)
      printf '%s\n' PATH="$NB:$PATH" CARGO="$NB/cargo" RUSTC="$NB/rustc" RUSTUP_TOOLCHAIN="$NIGHTLY_TOOLCHAIN" \
        CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT=true
      ;;
  esac
}

# machine_env: what differs on another machine (the TOOL-machine phase of project
# $pname, layout $layout, round $iter). Its CARGO_HOME (one per run, made before it,
# untimed) holds copies of this one's registry index and downloaded crates, so cargo
# unpacks the sources again at another path, offline, in every machine run: with one
# CARGO_HOME per project, the first tool's machine run unpacked them and the tools
# after it found them unpacked (measured: the same binary's machine run took 0.77 s
# first and 0.27 s second, 2026-11-29). In the new layout the nightly toolchain's bin
# directory stays first on PATH, before the machine's own order.
machine_env() {
  local home2="$WORK/machine2/cargo-home-$pname-$layout-$tool-$iter"
  local user_home="$WORK/machine2/home"
  local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  if [[ ! -d "$home2/registry/cache" ]]; then
    mkdir -p "$home2/bin" "$home2/registry" "$user_home"
    cp -r "$cargo_home/registry/index" "$cargo_home/registry/cache" "$home2/registry/"
  fi
  local first=""
  [[ "$layout" != new ]] || first="$NB:"
  printf '%s\n' CARGO_HOME="$home2" HOME="$user_home" USER=runner LOGNAME=runner \
    PATH="$first$home2/bin:$(tr ':' '\n' <<<"$PATH" | tac | paste -sd: -)"
}

# cpu_ticks: the CPU time the whole machine has spent working since it started, in
# clock ticks (/proc/stat: user, nice, system, irq, softirq; not idle, iowait or steal).
# A run's difference counts everything it made the machine do, the work a tool leaves
# to background processes and daemons included (and anything else running: the bench
# warns when the machine was not idle). Less noisy than wall time on a shared host.
cpu_ticks() {
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat
}

# ---------------------------------------------------------------- daemons

# start_sccache_server TAG RUN_DIR STORE CHECKOUT: a foreground sccache server
# under GNU time (rustc runs under it, not under cargo). SCCACHE_BASEDIRS is
# the checkout, so that keys do not depend on where it is. Not timed.
start_sccache_server() {
  local tag="$1" run_dir="$2" store="$3" checkout="$4" i
  SCCACHE_PORT="$(pick_free_port)" || die "no free TCP port for the sccache server"
  SCCACHE_ENV=(SCCACHE_DIR="$store" SCCACHE_SERVER_PORT="$SCCACHE_PORT" SCCACHE_IDLE_TIMEOUT=0
    SCCACHE_CACHE_SIZE=50G SCCACHE_BASEDIRS="$checkout" SCCACHE_CONF="$WORK/empty-config.toml")
  local srv_log="$LOG_DIR/$tag.sccache-server.log" timer=()
  [[ -n "$TIME_BIN" ]] && timer=("$TIME_BIN" -f '%e %M' -o "$run_dir/daemon-time.txt")
  mapfile -t renv < <(run_env "$user") # run_build's user (its local, seen here)
  env "${UNSET_ENV[@]}" "${renv[@]}" "${LAYOUT_ENV[@]}" "${SCCACHE_ENV[@]}" SCCACHE_START_SERVER=1 SCCACHE_NO_DAEMON=1 \
    "${timer[@]}" "$SCCACHE" </dev/null >"$srv_log" 2>&1 &
  SCCACHE_SRV_PID=$!
  for ((i = 0; i < 150; i++)); do
    port_open "$SCCACHE_PORT" && return 0
    kill -0 "$SCCACHE_SRV_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$srv_log" >&2 || true
  die "the sccache server did not start (see $srv_log)"
}

# kache_env RUN_DIR STORE CHECKOUT: the variables of a kache build and its daemon.
# Store and the daemon's runtime dir (socket, locks, events) in STORE; no
# config file, no host config, no remote; KACHE_BASE_DIR is the checkout.
kache_env() {
  printf '%s\n' KACHE_CACHE_DIR="$2" KACHE_RUNTIME_DIR="$2" KACHE_CONFIG="$WORK/empty-config.toml" KACHE_HOST_CONFIG= \
    KACHE_LOCAL_ONLY=1 KACHE_BASE_DIR="$3" KACHE_PROGRESS=0 KACHE_DAEMON_IDLE_TIMEOUT=0
}

# start_kache_daemon TAG RUN_DIR STORE CHECKOUT: `kache daemon run` in the
# foreground under GNU time (compiles run in its pipelines). Not timed.
start_kache_daemon() {
  local tag="$1" run_dir="$2" store="$3" checkout="$4" i
  mkdir -p "$store"
  mapfile -t renv < <(run_env "$user") # run_build's user (its local, seen here)
  mapfile -t KACHE_DAEMON_ENV < <(kache_env "$run_dir" "$store" "$checkout")
  KACHE_DAEMON_ENV=("${renv[@]}" "${KACHE_DAEMON_ENV[@]}")
  local dlog="$LOG_DIR/$tag.kache-daemon.log" timer=()
  [[ -n "$TIME_BIN" ]] && timer=("$TIME_BIN" -f '%e %M' -o "$run_dir/daemon-time.txt")
  # The layout's variables (LAYOUT_ENV, run_build's) reach the daemon, not KACHE_DAEMON_ENV:
  # that goes into the build's environment after machine_env's PATH.
  (cd "$checkout" && exec env "${UNSET_ENV[@]}" "${LAYOUT_ENV[@]}" "${KACHE_DAEMON_ENV[@]}" "${timer[@]}" "$KACHE" daemon run) \
    </dev/null >"$dlog" 2>&1 &
  KACHE_DAEMON_PID=$!
  # Ready when it listens on its socket, <runtime dir>/daemon.sock.
  for ((i = 0; i < 300; i++)); do
    [[ -S "$store/daemon.sock" ]] && return 0
    kill -0 "$KACHE_DAEMON_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$dlog" >&2 || true
  die "the kache daemon did not start (see $dlog)"
}

# ---------------------------------------------------------------- layouts seen

# unit_places DIR: where cargo kept units under DIR (a target or build dir, through
# symlinks: mbx's target dir is one), "L/N": the number of units in the legacy layout
# (<profile>/.fingerprint/<pkg>-<hash>/) and in the new one
# (<profile>/build/<pkg>/<hash>/fingerprint/).
unit_places() {
  local d="$1/$PROFILE_DIR" l=0 n=0
  if [[ -d "$d" ]]; then
    l="$(find -L "$d/.fingerprint" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)"
    n="$(find -L "$d/build" -mindepth 3 -maxdepth 3 -type d -name fingerprint 2>/dev/null | wc -l)"
  fi
  printf '%s/%s' "$l" "$n"
}

# layout_seen LAYOUT TARGET_DIR BUILD_DIR: "ok:" or "WRONG:", then what was seen
# ("target=L/N" and, where the build dir is apart, "build=L/N"): did cargo keep the units
# where LAYOUT says? legacy: the target dir's .fingerprint only; build-dir: the build
# dir's .fingerprint only, no unit in the target dir; new: the target dir's
# build/<pkg>/<hash>/ only.
layout_seen() {
  local layout="$1" t b="" ok=0
  t="$(unit_places "$2")"
  [[ -z "$3" ]] || b="$(unit_places "$3")"
  case "$layout" in
    legacy) [[ "${t%/*}" != 0 && "${t#*/}" == 0 ]] && ok=1 ;;
    build-dir) [[ "$t" == 0/0 && "${b%/*}" != 0 && "${b#*/}" == 0 ]] && ok=1 ;;
    new) [[ "${t%/*}" == 0 && "${t#*/}" != 0 ]] && ok=1 ;;
  esac
  printf '%s:target=%s%s' "$([[ "$ok" == 1 ]] && echo ok || echo WRONG)" "$t" "${b:+,build=$b}"
}

# ---------------------------------------------------------------- one build

RECORDS="$WORK/records.tsv"
: >"$RECORDS"

# run_build PROJECT_NAME LAYOUT TOOL PHASE ITER STORE CHECKOUT
#   builds the template copied to CHECKOUT (a new directory) with TOOL
#   (plain|xcache|sccache|kache|mbx) in cargo's LAYOUT (legacy|build-dir|new), appends a
#   record, deletes CHECKOUT (and its build dir).
# Before every timed run: what the previous run wrote (a cold build leaves a few hundred
# MB of dirty pages: its target dir and its store) is written out first, so that no run
# pays for the kernel's writeback of the one before it (measured on ripgrep: a warm
# build right after its cold one took 0.32 s, 0.25 s after a sync). The same for every
# tool and for plain cargo. XCACHE_BENCH_SETTLE=0 leaves it out.
settle() {
  [[ "$SETTLE" == 0 ]] || sync
}

# Deleting. ext4 without a journal (this machine's root file system) will not reuse an
# inode number freed in the last 60 s (fs/ext4/ialloc.c, recently_deleted): every file
# or directory created then scans past each such number, in the kernel, for as long as
# the window lasts. A run started right after the previous one's tree (thousands of
# files) was deleted paid that scan for every file it created, and cargo-xcache, which
# also creates its store's files, paid it more often than plain cargo: on ripgrep the
# same cold builds measured 1.06-1.11 x plain cargo right after a deletion and 0.97-1.00 x
# a minute later. So a finished run's tree is moved aside (a rename frees nothing), and
# the set-aside trees are deleted only at the start of a round, when free space runs
# low, followed by a wait out of the window; XCACHE_BENCH_SETTLE=0 deletes at once.
TRASH="$WORK/trash"
mkdir -p "$TRASH"
discard() {
  local d
  for d in "$@"; do
    [[ -e "$d" ]] || continue
    if [[ "$SETTLE" == 0 ]]; then
      rm -rf "$d"
    else
      mv "$d" "$(mktemp -d "$TRASH/t.XXXXXX")/"
    fi
  done
}
empty_trash_if_low() {
  [[ "$SETTLE" != 0 ]] || return 0
  local free_kb
  free_kb="$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')"
  ((free_kb < MIN_FREE_GB * 1024 * 1024)) || return 0
  [[ -n "$(ls -A "$TRASH")" ]] || return 0
  log "less than $MIN_FREE_GB GB free: deleting the finished runs' trees, then 61 s for ext4's recently-deleted window"
  rm -rf "${TRASH:?}"/*
  sync
  sleep 61
}

run_build() {
  local pname="$1" layout="$2" tool="$3" phase="$4" iter="$5" store="$6" dir="$7"
  local name="$tool-$phase"
  local tag="$pname.$layout.$name.$iter"
  local run_dir="$WORK/meta/$tag"
  local log_file="$LOG_DIR/$tag.log" time_file="$run_dir/time.txt"
  mkdir -p "$run_dir"
  [[ ! -e "$dir" ]] || die "checkout $dir exists already"
  copy_project "$TEMPLATE" "$dir"
  [[ "$store" == - ]] || mkdir -p "$store"
  # The build-dir layout's build dir: new for every run, as its target dir is.
  local bdir=""
  if [[ "$layout" == build-dir ]]; then
    bdir="$dir/build-dir"
    [[ "$BUILD_DIR_AT" == checkout ]] || bdir="$dir-build-dir"
    [[ ! -e "$bdir" ]] || die "build dir $bdir exists already"
  fi
  # The layout's variables, for the build, its daemon and the floor's cargo runs; its
  # cargo (the nightly toolchain's own in the new layout).
  local cargo_bin=cargo
  [[ "$layout" != new ]] || cargo_bin="$NB/cargo"
  LAYOUT_ENV=()
  mapfile -t LAYOUT_ENV < <(layout_env "$layout" "$bdir")

  local envs cmd
  local user="$WORK/users/$pname-$layout-$tool-$iter"
  [[ "$phase" != machine ]] || user="$user-machine2"
  mapfile -t envs < <(run_env "$user")
  envs+=("${LAYOUT_ENV[@]}")
  [[ "$phase" != machine ]] || mapfile -t -O "${#envs[@]}" envs < <(machine_env)
  case "$tool" in
    plain)
      cmd=("$cargo_bin" "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    xcache | xcache-base)
      envs+=(XCACHE_DIR="$store")
      if [[ "$FRESH_PRIVATE" == 1 ]]; then
        # An empty private directory of the run's own (mode 0700, as a runtime dir is).
        mkdir -p -m 700 "$run_dir/runtime"
        envs+=(XDG_RUNTIME_DIR="$run_dir/runtime")
      fi
      local bin="$XC"
      [[ "$tool" == xcache ]] || bin="$XC_BASE"
      cmd=("$bin" xcache "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    sccache)
      start_sccache_server "$tag" "$run_dir" "$store" "$dir"
      envs+=("${SCCACHE_ENV[@]}" RUSTC_WRAPPER="$SCCACHE")
      cmd=("$cargo_bin" "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    kache)
      start_kache_daemon "$tag" "$run_dir" "$store" "$dir"
      envs+=("${KACHE_DAEMON_ENV[@]}" RUSTC_WRAPPER="$KACHE")
      cmd=("$cargo_bin" "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    mbx)
      # mbx runs its own cache agent inside the command (no daemon).
      # MBX_SHARE_WORKSPACE_ROOT=1: keys and outputs do not record the checkout.
      envs+=(MBX_CACHE_DIR="$store" MBX_SHARE_WORKSPACE_ROOT=1 MBX_DISPLAY=plain MBX_SUMMARY=full
        MBX_STATS_REPORT="$LOG_DIR/$tag.mbx-stats.json")
      cmd=("$MBX" "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
  esac

  local where="in $dir"
  [[ -z "$bdir" ]] || where+=", build dir $bdir"
  [[ "$layout" != new ]] || where+=", new layout, $NB first on PATH"
  log "run $tag: ${cmd[*]} ($where)"
  settle
  local rc=0 t0 t1 timer=()
  [[ -n "$TIME_BIN" ]] && timer=("$TIME_BIN" -f '%e %M' -o "$time_file")
  local cpu0 cpu1
  cpu0="$(cpu_ticks)"
  t0="$(date +%s.%N)"
  (cd "$dir" && exec "${timer[@]}" env "${UNSET_ENV[@]}" "${envs[@]}" "${cmd[@]}") \
    </dev/null >"$log_file" 2>&1 || rc=$?
  t1="$(date +%s.%N)"
  cpu1="$(cpu_ticks)"
  if [[ "$rc" != 0 ]]; then
    tail -n 40 "$log_file" >&2 || true
    die "run $tag failed with exit code $rc (log: $log_file)"
  fi

  local secs="" rss="" drss="" units="" hits="" misses="" uncacheable="" seeded="" kinds=""
  # Where cargo kept the units: did the layout take effect?
  local seen
  seen="$(layout_seen "$layout" "$dir/target" "$bdir")"
  [[ "$seen" == ok:* ]] || log "warning: $tag: cargo's units are not where the $layout layout keeps them (units, legacy/new: ${seen#*:})"
  if [[ -n "$TIME_BIN" && -s "$time_file" ]]; then
    read -r secs rss < <(tail -n 1 "$time_file")
  else
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
  fi
  # cargo prints one "Compiling" line per package (its build script included).
  local compiled
  compiled="$(grep -cE '^[[:space:]]*Compiling ' "$log_file" || true)"

  case "$tool" in
    xcache | xcache-base)
      local report="$dir/target/xcache/report.json"
      if [[ -s "$report" ]]; then
        cp "$report" "$LOG_DIR/$tag.report.json"
        units="$(json_get "$report" .summary.units "d['summary']['units']")"
        hits="$(json_get "$report" .summary.hits "d['summary']['hits']")"
        misses="$(json_get "$report" .summary.misses "d['summary']['misses']")"
        uncacheable="$(json_get "$report" .summary.uncacheable "d['summary']['uncacheable']")"
        seeded="$(json_get "$report" .summary.seeded "d['summary'].get('seeded')")"
        # Per unit kind: kind=hits/units/seeded,... (summary.by_kind and the units' seeded).
        kinds="$(python3 "$BENCH_DIR/report.py" --xcache-kinds "$report" 2>/dev/null || true)"
      else
        log "warning: $tag wrote no report at $report"
      fi
      ;;
    sccache)
      local stats="$LOG_DIR/$tag.sccache-stats.json"
      if port_open "$SCCACHE_PORT"; then
        SCCACHE_SERVER_PORT="$SCCACHE_PORT" "$SCCACHE" --show-stats --stats-format json >"$stats" 2>/dev/null || true
      fi
      hits="$(json_get "$stats" '([.stats.cache_hits.counts[]?] | add) // 0' "sum(d['stats']['cache_hits']['counts'].values())")"
      misses="$(json_get "$stats" '([.stats.cache_misses.counts[]?] | add) // 0' "sum(d['stats']['cache_misses']['counts'].values())")"
      uncacheable="$(json_get "$stats" .stats.requests_not_cacheable "d['stats']['requests_not_cacheable']")"
      stop_sccache_server
      ;;
    kache)
      local kstats="$LOG_DIR/$tag.kache-stats.json"
      env "${UNSET_ENV[@]}" "${KACHE_DAEMON_ENV[@]}" "$KACHE" stats --last-build --root "$dir" --json \
        >"$kstats" 2>"$LOG_DIR/$tag.kache-stats.err" || true
      read -r hits misses uncacheable < <(python3 "$BENCH_DIR/report.py" --kache-counts "$kstats" 2>/dev/null || echo "- - -")
      stop_kache_daemon
      ;;
    mbx)
      read -r hits misses uncacheable < <(python3 "$BENCH_DIR/report.py" --mbx-counts "$LOG_DIR/$tag.mbx-stats.json" 2>/dev/null || echo "- - -")
      ;;
  esac
  if [[ -s "$run_dir/daemon-time.txt" ]]; then
    read -r _ drss < <(tail -n 1 "$run_dir/daemon-time.txt")
  fi

  # The floor of a warm build (xcache's own warm phase): cargo's own no-op on the tree
  # the warm build left (plain cargo twice: the first may rebuild what it fingerprints
  # otherwise, the second is the no-op) plus writing the target dir's bytes again (a copy
  # of it beside, then removed).
  local floor="-"
  if [[ "$tool" == xcache && "$phase" == warm ]]; then
    local f0 f1 fc f2
    (cd "$dir" && env "${UNSET_ENV[@]}" "${envs[@]}" "$cargo_bin" "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}") \
      </dev/null >"$LOG_DIR/$tag.floor.log" 2>&1 || true
    f0="$(date +%s.%N)"
    (cd "$dir" && env "${UNSET_ENV[@]}" "${envs[@]}" "$cargo_bin" "$COMMAND" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}") \
      </dev/null >>"$LOG_DIR/$tag.floor.log" 2>&1 || true
    f1="$(date +%s.%N)"
    settle
    # What the warm build wrote: the target dir, and the build dir where it is apart (in
    # one copy, which keeps the hard links between the two as links).
    local floor_src=("$dir/target")
    [[ -z "$bdir" ]] || floor_src+=("$bdir")
    fc="$(date +%s.%N)"
    mkdir -p "$run_dir/floor-copy"
    cp -a "${floor_src[@]}" "$run_dir/floor-copy/"
    f2="$(date +%s.%N)"
    discard "$run_dir/floor-copy"
    floor="$(awk -v a="$f0" -v b="$f1" -v c="$fc" -v d="$f2" 'BEGIN { printf "%.3f %.3f", b - a, d - c }' | tr ' ' ':')"
    log "run $tag: floor: cargo no-op and copy of target, s: $floor"
  fi

  # Smoke check: the built program must print the same as plain cargo's (with
  # XCACHE_BENCH_COMMAND=test: the same test results).
  local out_sum="missing" bin="$dir/target/$PROFILE_DIR/$BIN_NAME"
  if [[ "$COMMAND" == test ]]; then
    out_sum="$(grep -E '^test result: ' "$log_file" | sed 's/; finished in .*//' | cksum | tr ' ' ':')"
  elif [[ -n "$BIN_NAME" && -f "$bin" && -x "$bin" ]]; then
    out_sum="$("$bin" "${SMOKE_ARGS[@]}" 2>/dev/null | cksum | tr ' ' ':')" || out_sum="failed"
  elif [[ -n "$BIN_NAME" ]]; then
    log "warning: $tag: no program at $bin"
  fi

  local cpu
  cpu="$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pname" "$name" "$tool" "$phase" \
    "$iter" "${secs:--}" "${rss:--}" "${drss:--}" "${compiled:--}" "${units:--}" "${hits:--}" \
    "${misses:--}" "${uncacheable:--}" "${seeded:--}" "$out_sum" "$floor" "$cpu" \
    "$layout" "$seen" "${kinds:--}" >>"$RECORDS"
  log "run $tag: $secs s, $cpu s of CPU (the machine's), peak RSS ${rss:-?} KB${drss:+ (daemon $drss KB)}, $compiled packages compiled, hits/misses ${hits:--}/${misses:--}${seeded:+, $seeded seeded}; units (legacy/new) ${seen}"
  discard "$dir" "$bdir"
}

# ---------------------------------------------------------------- the runs

# What was deleted just before the bench (a previous run's directory) is out of ext4's
# window before the first timed run (see "Deleting").
if [[ "$SETTLE" != 0 ]]; then
  log "waiting 61 s: files deleted before the bench leave ext4's recently-deleted window"
  sync
  sleep 61
fi

for project in "${PROJECT_DIRS[@]}"; do
  pname="$(basename "$project")"
  LOG_DIR="$OUT_DIR/logs/$pname"
  mkdir -p "$LOG_DIR"
  TEMPLATE="$WORK/template-$pname"
  fetch_template "$project" "$TEMPLATE" "$LOG_DIR/fetch.log"
  BIN_NAME="$(sed -n 's/^name[[:space:]]*=[[:space:]]*"\(.*\)"/\1/p' "$TEMPLATE/Cargo.toml" | head -n1)"
  SMOKE_ARGS=("${DEFAULT_SMOKE_ARGS[@]}")
  # A project fetched from crates.io (bench/fetch-crate.sh) names its program and the
  # arguments of its output check in .xcache-bench (bin=NAME, smoke=ARGS).
  if [[ -f "$TEMPLATE/.xcache-bench" ]]; then
    b="$(sed -n 's/^bin=//p' "$TEMPLATE/.xcache-bench" | head -n1)"
    [[ -n "$b" ]] && BIN_NAME="$b"
    if grep -q '^smoke=' "$TEMPLATE/.xcache-bench"; then
      read -r -a SMOKE_ARGS <<<"$(sed -n 's/^smoke=//p' "$TEMPLATE/.xcache-bench" | head -n1)"
    fi
  fi
  [[ -n "$BIN_NAME" ]] || log "$pname has no [package] name: no output check"
  for ((it = 1; it <= REPEAT; it++)); do
    empty_trash_if_low
    # Each layout runs the round's whole sequence, with stores of its own: a store one
    # layout filled never serves another's build.
    for layout in "${LAYOUTS[@]}"; do
      # Checkouts: cold ones under $WORK/a/, warm ones under $WORK/elsewhere/
      # (another absolute path, of another length). Plain cargo's build comes first in odd
      # rounds and last in even ones (XCACHE_BENCH_ORDER): measured here, the build that
      # runs second in a pair can be slower by as much as the gap being measured.
      plain_last=0
      [[ "$ORDER" == alternate ]] && ((it % 2 == 0)) && plain_last=1
      ((plain_last)) || run_build "$pname" "$layout" plain cold "$it" - "$WORK/a/$pname-$layout-plain-$it/project"
      for tool in "${TOOLS[@]}"; do
        store="$WORK/stores/$pname-$layout-$tool-$it"
        run_build "$pname" "$layout" "$tool" cold "$it" "$store" "$WORK/a/$pname-$layout-$tool-$it/project"
        if wants warm; then
          run_build "$pname" "$layout" "$tool" warm "$it" "$store" "$WORK/elsewhere/moved/$pname-$layout-$tool-$it/checkout"
        fi
        if wants machine; then
          run_build "$pname" "$layout" "$tool" machine "$it" "$store" "$WORK/machine2/src/$pname-$layout-$tool-$it/ws"
        fi
        discard "$store"
      done
      ((!plain_last)) || run_build "$pname" "$layout" plain cold "$it" - "$WORK/a/$pname-$layout-plain-$it/project"
    done
  done
done

# ---------------------------------------------------------------- report

version_of() { [[ -n "$1" ]] && "$1" --version 2>/dev/null | head -n1 || true; }
xcache_commit="$(git -C "$REPO_DIR" rev-parse --verify -q HEAD 2>/dev/null || true)"
dirty=0
nightly_rustc="" nightly_cargo=""
if [[ -n "$NB" ]]; then
  nightly_rustc="$("$NB/rustc" --version 2>/dev/null || true)"
  nightly_cargo="$("$NB/cargo" --version 2>/dev/null || true)"
fi
[[ -z "$(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null || true)" ]] || dirty=1
export RB_RECORDS="$RECORDS" RB_OUT="$OUT_DIR/results.json" RB_PROFILE="$PROFILE" RB_COMMAND="$COMMAND" RB_REPEAT="$REPEAT" \
  RB_JOBS="$JOBS" RB_STRICT="$STRICT" RB_FRESH_PRIVATE="$FRESH_PRIVATE" RB_SECONDS_TOTAL="$(($(date +%s) - START_EPOCH))" \
  RB_RUSTC="$(rustc --version 2>/dev/null || true)" RB_CARGO="$(cargo --version 2>/dev/null || true)" \
  RB_XCACHE_COMMIT="$xcache_commit" RB_XCACHE_DIRTY="$dirty" RB_XCACHE_BIN="$XC" \
  RB_XCACHE_BASE_BIN="$XC_BASE" RB_XCACHE_BASE="$(version_of "$XC_BASE")" \
  RB_SCCACHE="$(version_of "$SCCACHE")" RB_KACHE="$(version_of "$KACHE")" RB_MBX="$(version_of "$MBX")" \
  RB_PROJECTS="${PROJECT_DIRS[*]}" RB_TOOLS="${TOOLS[*]}" RB_SMOKE_ARGS="${SMOKE_ARGS[*]}" \
  RB_LAYOUTS="${LAYOUTS[*]}" RB_BUILD_DIR_AT="$BUILD_DIR_AT" \
  RB_NIGHTLY_RUSTC="$nightly_rustc" RB_NIGHTLY_CARGO="$nightly_cargo" \
  RB_LOAD_START="$LOAD_START" RB_LOG_ROOT="$OUT_DIR/logs"
python3 "$BENCH_DIR/report.py"
