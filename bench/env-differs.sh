#!/usr/bin/env bash
# bench/env-differs.sh: what a second machine's environment costs. For each project
# and each cargo-xcache binary (XCACHE_BENCH_BIN, and XCACHE_BENCH_BASE_BIN for a
# before/after in one run):
#
#   cold   an empty store, checkout A, empty target dir, this machine's environment
#   same   the same store, checkout B at another path, empty target dir, the same
#          environment (what a moved checkout keeps)
#   ci     the same store, checkout C, empty target dir, the environment changed the
#          ways CI runners differ: another HOME and USER, PATH's directories in
#          reverse order, TERM=dumb, a RUNNER_* variable with a random value
#   machine  the same store, checkout D, empty target dir, as on another machine:
#          another CARGO_HOME (registry copied, unpacked again at its own path) whose
#          bin directory is first on PATH, the rest of PATH reversed, another HOME/USER
#
# and prints for each run the wall time, its ratio to plain cargo's cold build of the
# same project (run first, in checkout P), units, hits and what missed (from the
# report), so the hit rate kept is read beside its cost. The goal for every warm row
# (same, ci, machine) is the same as any warm build's: at most 0.05 of plain cold. Options (environment):
#   XCACHE_BENCH_PROJECTS="project project-c"  names under bench/ or paths
#   XCACHE_BENCH_BIN=PATH        the cargo-xcache to measure (default: build this one)
#   XCACHE_BENCH_BASE_BIN=PATH   also this other binary (an older commit), as `base`
#   XCACHE_BENCH_KEEP=1          keep the checkouts and stores (to run `explain` in them)
set -euo pipefail
BENCH_LOG_PREFIX=env-differs
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"

PROJECTS=(${XCACHE_BENCH_PROJECTS:-project project-c})
BIN="${XCACHE_BENCH_BIN:-}"
if [[ -z "$BIN" ]]; then
  (cd "$HERE/.." && cargo build --release --locked -q) || die "building cargo-xcache failed"
  BIN="$HERE/../target/release/cargo-xcache"
fi
TOOLS=("new=$BIN")
[[ -n "${XCACHE_BENCH_BASE_BIN:-}" ]] && TOOLS+=("base=$XCACHE_BENCH_BASE_BIN")

WORK="$(mktemp -d /tmp/xcache-env-differs.XXXXXX)"
if [[ -n "${XCACHE_BENCH_KEEP:-}" ]]; then
  log "keeping the checkouts and stores in $WORK (XCACHE_BENCH_KEEP)"
else
  trap 'rm -rf "$WORK"' EXIT
fi
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export CARGO_HOME RUSTUP_HOME CARGO_INCREMENTAL=0

reversed_path() { tr ':' '\n' <<<"$PATH" | tac | paste -sd: -; }

# run NAME BIN PROJECT DEST STORE [ENV...]: one build, one result line.
run() {
  local name="$1" bin="$2" project="$3" dest="$4" store="$5"
  shift 5
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  cp -r "$project" "$dest"
  rm -rf "$dest/target"
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$dest" && env "$@" XCACHE_DIR="$store" "$bin" xcache build -q >"$WORK/log" 2>&1) ||
    { tail -20 "$WORK/log" >&2; die "$name failed in $dest"; }
  t1=$(date +%s.%N)
  python3 - "$dest/target/xcache/report.json" "$name" "$t0" "$t1" "$PLAIN_S" <<'PY'
import json, sys
path, name, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
plain = float(sys.argv[5])
r = json.load(open(path))
units = [u for u in r["units"] if u.get("outcome") != "fresh"]
hits = [u for u in units if u.get("outcome") == "hit"]
missed = sorted(f'{u["package"]}:{u["kind"]}' for u in units if u.get("outcome") != "hit")
print(f"{name:<16} {t1 - t0:7.2f}s  {(t1 - t0) / plain:5.3f}x plain  units {len(units):4}  hits {len(hits):4}  "
      f"rate {len(hits) / max(len(units), 1):6.1%}  missed: {' '.join(missed[:12])}"
      + (" …" if len(missed) > 12 else ""))
PY
}

for p in "${PROJECTS[@]}"; do
  project="$p"
  [[ -d "$project" ]] || project="$HERE/$p"
  [[ -f "$project/Cargo.toml" ]] || die "no project at $p"
  log "project $p"
  rm -rf "$WORK/p/ws"
  mkdir -p "$WORK/p"
  cp -r "$project" "$WORK/p/ws"
  rm -rf "$WORK/p/ws/target"
  t0=$(date +%s.%N)
  (cd "$WORK/p/ws" && cargo build -q >"$WORK/log" 2>&1) ||
    { tail -20 "$WORK/log" >&2; die "plain cargo failed in $WORK/p/ws"; }
  t1=$(date +%s.%N)
  PLAIN_S=$(python3 -c "print($t1 - $t0)")
  printf '%-16s %7.2fs\n' plain-cold "$PLAIN_S"
  for tool in "${TOOLS[@]}"; do
    name="${tool%%=*}" bin="${tool#*=}"
    store="$WORK/store-$name"
    rm -rf "$store"
    run "$name-cold" "$bin" "$project" "$WORK/a/ws" "$store"
    run "$name-same" "$bin" "$project" "$WORK/b/deeper/ws" "$store"
    mkdir -p "$WORK/other-home"
    run "$name-ci" "$bin" "$project" "$WORK/c/ws" "$store" \
      HOME="$WORK/other-home" USER=runner LOGNAME=runner PATH="$(reversed_path)" TERM=dumb \
      "RUNNER_TRACKING_ID=$RANDOM$RANDOM"
    # Another machine: its own CARGO_HOME (the registry's index and downloaded crates
    # copied, so cargo unpacks them at another path offline), whose bin directory
    # rustup puts first on PATH, the rest of PATH in another order, another user.
    home2="$WORK/machine2/cargo-home-$(basename "$p")"
    if [[ ! -d "$home2" ]]; then
      mkdir -p "$home2/bin" "$home2/registry"
      cp -r "$CARGO_HOME/registry/index" "$CARGO_HOME/registry/cache" "$home2/registry/"
    fi
    run "$name-machine" "$bin" "$project" "$WORK/machine2/src/ws" "$store" \
      CARGO_HOME="$home2" HOME="$WORK/other-home" USER=runner LOGNAME=runner \
      PATH="$home2/bin:$(reversed_path)" CARGO_NET_OFFLINE=true
  done
done
