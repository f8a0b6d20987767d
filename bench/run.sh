#!/usr/bin/env bash
# bench/run.sh: measure cargo-xcache against plain cargo and sccache.
#
# Builds cargo-xcache in release mode, then builds a copy of the benchmark
# project (bench/project by default) from an empty target directory in each
# of these ways, one after the other, in fresh temporary directories:
#
#   plain-cold     cargo build, no wrapper
#   xcache-cold    cargo-xcache xcache build, empty XCACHE_DIR
#   xcache-warm    the same, project copied to another directory, same XCACHE_DIR
#   sccache-cold   RUSTC_WRAPPER=sccache, empty SCCACHE_DIR      (if sccache is available)
#   sccache-warm   the same, project copied to another directory, same SCCACHE_DIR
#
# For every run it records the wall time and the peak RSS of the largest
# single process (GNU time's %M), prints a table with the ratios against
# plain-cold, and writes bench/out/results.json (plus logs in bench/out/logs).
#
# Options (environment):
#   XCACHE_BENCH_PROJECT=DIR         project to build (default: bench/project)
#   XCACHE_BENCH_PROFILE=dev|release cargo profile (default: dev)
#   XCACHE_BENCH_SKIP_SCCACHE=1      do not run the sccache runs
#   XCACHE_BENCH_INSTALL_SCCACHE=1   install sccache 0.19 into /opt/xcache-bench/tools if it is missing
#   XCACHE_BENCH_ONLY_PEERS=1        skip building and running cargo-xcache (plain cargo and sccache only)
#   XCACHE_BENCH_BIN=PATH            use this cargo-xcache binary instead of building it
#   XCACHE_BENCH_BUILD_DIR=DIR       target dir for building cargo-xcache (default: /tmp/xcache-bench-build)
#   XCACHE_BENCH_OUT=DIR             where results.json and logs go (default: bench/out)
#   XCACHE_BENCH_JOBS=N              pass -j N to every timed build (default: cargo's default)
#   XCACHE_BENCH_STRICT=1            exit 1 if a target ratio is missed or a build's output differs
#   XCACHE_BENCH_KEEP_TMP=1          keep the temporary directory (its path is printed)

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

PROJECT="${XCACHE_BENCH_PROJECT:-$BENCH_DIR/project}"
PROFILE="${XCACHE_BENCH_PROFILE:-dev}"
SKIP_SCCACHE="${XCACHE_BENCH_SKIP_SCCACHE:-0}"
INSTALL_SCCACHE="${XCACHE_BENCH_INSTALL_SCCACHE:-0}"
ONLY_PEERS="${XCACHE_BENCH_ONLY_PEERS:-0}"
BUILD_DIR="${XCACHE_BENCH_BUILD_DIR:-/tmp/xcache-bench-build}"
OUT_DIR="${XCACHE_BENCH_OUT:-$BENCH_DIR/out}"
JOBS="${XCACHE_BENCH_JOBS:-}"
STRICT="${XCACHE_BENCH_STRICT:-0}"
KEEP_TMP="${XCACHE_BENCH_KEEP_TMP:-0}"
SCCACHE_VERSION_REQ='^0.19'

# Targets from the issue: ratio name, run / reference run, upper bound.
TARGETS=(
  "xcache_cold_over_plain_cold xcache-cold plain-cold 1.05"
  "xcache_warm_over_plain_cold xcache-warm plain-cold 0.5"
  "xcache_warm_over_sccache_warm xcache-warm sccache-warm 1.0"
)

# ---------------------------------------------------------------- arguments

parse_profile_jobs "$PROFILE" "$JOBS"
[[ -f "$PROJECT/Cargo.toml" ]] || die "no Cargo.toml in XCACHE_BENCH_PROJECT=$PROJECT"
PROJECT="$(cd "$PROJECT" && pwd)"
command -v cargo >/dev/null || die "cargo is not on PATH"
command -v tar >/dev/null || die "tar is not on PATH"

mkdir -p "$OUT_DIR/logs"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
rm -f "$OUT_DIR"/logs/*.log "$OUT_DIR"/logs/*.json "$OUT_DIR/results.json"

# ---------------------------------------------------------------- GNU time

find_gnu_time 1
if [[ -z "$TIME_BIN" ]]; then
  log "warning: GNU time is not available: wall times come from 'date', peak RSS is not measured"
fi

# ---------------------------------------------------------------- temp dir, cleanup

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-bench.XXXXXX")"
SCCACHE_SRV_PID=""
SCCACHE_PORT=""
SCCACHE_ENV=()

cleanup() {
  local rc=$?
  trap - EXIT
  stop_sccache_server || true
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

# ---------------------------------------------------------------- cargo-xcache

XC=""
if [[ "$ONLY_PEERS" != 1 ]]; then
  BUILD_HINT="Fix the build, point XCACHE_BENCH_BIN at a built binary, or run with XCACHE_BENCH_ONLY_PEERS=1 to measure plain cargo and sccache only."
  build_xcache "$REPO_DIR" "$BUILD_DIR" "$OUT_DIR/logs/product-build.log"
fi

# ---------------------------------------------------------------- sccache

SCCACHE=""
if [[ "$SKIP_SCCACHE" != 1 ]]; then
  if command -v sccache >/dev/null; then
    SCCACHE="$(command -v sccache)"
  elif [[ -x "$TOOLS_ROOT/bin/sccache" ]]; then
    SCCACHE="$TOOLS_ROOT/bin/sccache"
  elif [[ "$INSTALL_SCCACHE" == 1 ]]; then
    log "installing sccache $SCCACHE_VERSION_REQ into $TOOLS_ROOT (takes several minutes; log: $OUT_DIR/logs/sccache-install.log)"
    if ! cargo install --locked sccache --version "$SCCACHE_VERSION_REQ" --root "$TOOLS_ROOT" \
      >"$OUT_DIR/logs/sccache-install.log" 2>&1; then
      tail -n 20 "$OUT_DIR/logs/sccache-install.log" >&2 || true
      die "installing sccache failed (see $OUT_DIR/logs/sccache-install.log); set XCACHE_BENCH_SKIP_SCCACHE=1 to run without it"
    fi
    SCCACHE="$TOOLS_ROOT/bin/sccache"
  else
    log "sccache not found (PATH, $TOOLS_ROOT/bin): skipping the sccache runs; set XCACHE_BENCH_INSTALL_SCCACHE=1 to install it"
  fi
fi

# ---------------------------------------------------------------- fetch once

TEMPLATE="$WORK/template"
fetch_template "$PROJECT" "$TEMPLATE" "$OUT_DIR/logs/fetch.log"

XSTORE="$WORK/xcache-store"
SSTORE="$WORK/sccache-dir"
mkdir -p "$XSTORE" "$SSTORE"

# ---------------------------------------------------------------- sccache server

# start_sccache_server RUN_NAME: starts a foreground sccache server (under
# GNU time, so that the peak RSS of the rustc processes it runs is measured).
start_sccache_server() {
  local name="$1" port i
  port="$(pick_free_port)" || die "no free TCP port for the sccache server"
  SCCACHE_PORT="$port"
  SCCACHE_ENV=(SCCACHE_DIR="$SSTORE" SCCACHE_SERVER_PORT="$port" SCCACHE_IDLE_TIMEOUT=0 SCCACHE_CACHE_SIZE=50G)
  local srv_log="$OUT_DIR/logs/$name.sccache-server.log"
  if [[ -n "$TIME_BIN" ]]; then
    env "${SCCACHE_ENV[@]}" SCCACHE_START_SERVER=1 SCCACHE_NO_DAEMON=1 \
      "$TIME_BIN" -f '%e %M' -o "$WORK/runs/$name/server-time.txt" "$SCCACHE" >"$srv_log" 2>&1 &
  else
    env "${SCCACHE_ENV[@]}" SCCACHE_START_SERVER=1 SCCACHE_NO_DAEMON=1 "$SCCACHE" >"$srv_log" 2>&1 &
  fi
  SCCACHE_SRV_PID=$!
  for ((i = 0; i < 150; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$SCCACHE_SRV_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$srv_log" >&2 || true
  die "the sccache server did not start (see $srv_log)"
}

# ---------------------------------------------------------------- timed runs

declare -A SECS RSS_KB SRV_RSS_KB COMPILED OUT_SUM HITS MISSES UNITS UNCACHEABLE TOOL_MS
RUNS=()
SMOKE_BIN="xcache-bench-project"
SMOKE_ARGS=(--records 300 --seed 7)

# run_build NAME KIND   (KIND: plain | xcache | sccache)
run_build() {
  local name="$1" kind="$2"
  local run_dir="$WORK/runs/$name" dir="$WORK/runs/$name/project"
  local log_file="$OUT_DIR/logs/$name.log" time_file="$WORK/runs/$name/time.txt"
  mkdir -p "$run_dir"
  copy_project "$TEMPLATE" "$dir"

  local envs=(CARGO_INCREMENTAL=0 CARGO_NET_OFFLINE=true RUSTC_WORKSPACE_WRAPPER=)
  local cmd
  case "$kind" in
    plain)
      envs+=(RUSTC_WRAPPER=)
      cmd=(cargo build "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    xcache)
      envs+=(XCACHE_DIR="$XSTORE")
      cmd=("$XC" xcache build "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
    sccache)
      start_sccache_server "$name"
      envs+=("${SCCACHE_ENV[@]}" RUSTC_WRAPPER="$SCCACHE")
      cmd=(cargo build "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}")
      ;;
  esac

  log "run $name: ${cmd[*]} (in $dir)"
  local rc=0 t0 t1
  t0="$(date +%s.%N)"
  if [[ -n "$TIME_BIN" ]]; then
    (cd "$dir" && exec "$TIME_BIN" -f '%e %M' -o "$time_file" \
      env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u CARGO_BUILD_RUSTC_WRAPPER -u RUSTC_WRAPPER \
      "${envs[@]}" "${cmd[@]}") >"$log_file" 2>&1 || rc=$?
  else
    (cd "$dir" && exec env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u CARGO_BUILD_RUSTC_WRAPPER -u RUSTC_WRAPPER \
      "${envs[@]}" "${cmd[@]}") >"$log_file" 2>&1 || rc=$?
  fi
  t1="$(date +%s.%N)"
  if [[ "$rc" != 0 ]]; then
    tail -n 40 "$log_file" >&2 || true
    die "run $name failed with exit code $rc (log: $log_file)"
  fi

  local secs="" rss=""
  if [[ -n "$TIME_BIN" && -s "$time_file" ]]; then
    read -r secs rss < <(tail -n 1 "$time_file")
  else
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
  fi
  SECS[$name]="$secs"
  RSS_KB[$name]="$rss"
  # cargo prints one "Compiling" line per package (its build script included).
  COMPILED[$name]="$(grep -cE '^[[:space:]]*Compiling ' "$log_file" || true)"

  if [[ "$kind" == xcache ]]; then
    local report="$dir/target/xcache/report.json"
    if [[ -s "$report" ]]; then
      cp "$report" "$OUT_DIR/logs/$name.report.json"
      UNITS[$name]="$(json_get "$report" .summary.units "d['summary']['units']")"
      HITS[$name]="$(json_get "$report" .summary.hits "d['summary']['hits']")"
      MISSES[$name]="$(json_get "$report" .summary.misses "d['summary']['misses']")"
      UNCACHEABLE[$name]="$(json_get "$report" .summary.uncacheable "d['summary']['uncacheable']")"
      TOOL_MS[$name]="$(json_get "$report" .summary.wall_ms "d['summary']['wall_ms']")"
    else
      log "warning: $name wrote no report at $report"
    fi
  fi

  if [[ "$kind" == sccache ]]; then
    local stats="$OUT_DIR/logs/$name.sccache-stats.json"
    env "${SCCACHE_ENV[@]}" "$SCCACHE" --show-stats --stats-format json >"$stats" 2>/dev/null || true
    HITS[$name]="$(json_get "$stats" '([.stats.cache_hits.counts[]?] | add) // 0' "sum(d['stats']['cache_hits']['counts'].values())")"
    MISSES[$name]="$(json_get "$stats" '([.stats.cache_misses.counts[]?] | add) // 0' "sum(d['stats']['cache_misses']['counts'].values())")"
    UNCACHEABLE[$name]="$(json_get "$stats" .stats.requests_not_cacheable "d['stats']['requests_not_cacheable']")"
    stop_sccache_server
    local srv_rss=""
    if [[ -s "$run_dir/server-time.txt" ]]; then
      read -r _ srv_rss < <(tail -n 1 "$run_dir/server-time.txt")
    fi
    SRV_RSS_KB[$name]="$srv_rss"
    # rustc runs under the sccache server, not under cargo: the run's peak
    # is the larger of the two process trees.
    if [[ -n "$srv_rss" && ( -z "$rss" || "$srv_rss" -gt "$rss" ) ]]; then
      RSS_KB[$name]="$srv_rss"
    fi
  fi

  # Smoke check: the built program must print the same as plain cargo's.
  local bin="$dir/target/$PROFILE_DIR/$SMOKE_BIN"
  if [[ -x "$bin" ]]; then
    OUT_SUM[$name]="$("$bin" "${SMOKE_ARGS[@]}" 2>/dev/null | cksum | cut -d' ' -f1,2)" || OUT_SUM[$name]="failed"
  fi

  RUNS+=("$name")
  log "run $name: ${SECS[$name]} s, peak RSS ${RSS_KB[$name]:-?} KB, ${COMPILED[$name]} packages compiled"
  rm -rf "$dir"
}

run_build plain-cold plain
if [[ -n "$XC" ]]; then
  run_build xcache-cold xcache
  run_build xcache-warm xcache
fi
if [[ -n "$SCCACHE" ]]; then
  run_build sccache-cold sccache
  run_build sccache-warm sccache
fi

# ---------------------------------------------------------------- report

PLAIN="${SECS[plain-cold]}"
mb() { [[ -n "${1:-}" ]] && awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

printf '\n%-14s %9s %9s %12s %9s %16s %8s\n' run seconds vs-plain peak-RSS-MB packages "cache hit/miss" output
for name in "${RUNS[@]}"; do
  hm="-"
  [[ -n "${HITS[$name]:-}${MISSES[$name]:-}" ]] && hm="${HITS[$name]:-?}/${MISSES[$name]:-?}"
  out="-"
  if [[ -n "${OUT_SUM[$name]:-}" && -n "${OUT_SUM[plain-cold]:-}" ]]; then
    if [[ "${OUT_SUM[$name]}" == "${OUT_SUM[plain-cold]}" ]]; then out=same; else out=DIFFERS; fi
  fi
  printf '%-14s %9s %9s %12s %9s %16s %8s\n' "$name" "${SECS[$name]}" "$(ratio "${SECS[$name]}" "$PLAIN")" \
    "$(mb "${RSS_KB[$name]:-}" || echo '?')" "${COMPILED[$name]}" "$hm" "$out"
done

failed=0
printf '\nkey ratios (target):\n'
ratios_json=""
for t in "${TARGETS[@]}"; do
  read -r rname a b bound <<<"$t"
  r="$(ratio "${SECS[$a]:-}" "${SECS[$b]:-}")"
  ok=null
  if [[ -n "$r" ]]; then
    if le "$r" "$bound"; then ok=true verdict=met; else ok=false verdict=MISSED failed=1; fi
    printf '  %-30s %7s  (target <= %s) %s\n' "$a / $b" "$r" "$bound" "$verdict"
  else
    printf '  %-30s %7s  (target <= %s) not measured\n' "$a / $b" "-" "$bound"
  fi
  ratios_json+="${ratios_json:+,}
    $(jstr "$rname"): {\"value\": $(jnum "$r"), \"target_max\": $bound, \"met\": $ok}"
done
for name in "${RUNS[@]}"; do
  if [[ -n "${OUT_SUM[$name]:-}" && -n "${OUT_SUM[plain-cold]:-}" && "${OUT_SUM[$name]}" != "${OUT_SUM[plain-cold]}" ]]; then
    log "warning: the program built by $name prints something else than plain cargo's"
    failed=1
  fi
done

runs_json=""
for name in "${RUNS[@]}"; do
  same=null
  if [[ -n "${OUT_SUM[$name]:-}" && -n "${OUT_SUM[plain-cold]:-}" ]]; then
    [[ "${OUT_SUM[$name]}" == "${OUT_SUM[plain-cold]}" ]] && same=true || same=false
  fi
  runs_json+="${runs_json:+,}
    {\"name\": $(jstr "$name"), \"seconds\": $(jnum "${SECS[$name]}"),\
 \"ratio_vs_plain_cold\": $(jnum "$(ratio "${SECS[$name]}" "$PLAIN")"),\
 \"peak_rss_kb\": $(jnum "${RSS_KB[$name]:-}"), \"peak_rss_mb\": $(jnum "$(mb "${RSS_KB[$name]:-}" || true)"),\
 \"sccache_server_peak_rss_kb\": $(jnum "${SRV_RSS_KB[$name]:-}"),\
 \"packages_compiled\": $(jnum "${COMPILED[$name]}"),\
 \"cache\": {\"units\": $(jnum "${UNITS[$name]:-}"), \"hits\": $(jnum "${HITS[$name]:-}"),\
 \"misses\": $(jnum "${MISSES[$name]:-}"), \"uncacheable\": $(jnum "${UNCACHEABLE[$name]:-}"),\
 \"tool_wall_ms\": $(jnum "${TOOL_MS[$name]:-}")},\
 \"output_matches_plain\": $same}"
done

sccache_version=""
[[ -n "$SCCACHE" ]] && sccache_version="$("$SCCACHE" --version 2>/dev/null || true)"
xcache_commit="$(git -C "$REPO_DIR" rev-parse --verify -q HEAD 2>/dev/null || true)"
cat >"$OUT_DIR/results.json" <<EOF
{
  "date_utc": $(jstr "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),
  "machine": {"cpus": $(jnum "$(nproc 2>/dev/null || true)"), "kernel": $(jstr "$(uname -sr)")},
  "rustc": $(jstr "$(rustc --version 2>/dev/null || true)"),
  "cargo": $(jstr "$(cargo --version 2>/dev/null || true)"),
  "sccache": $(jstr "$sccache_version"),
  "xcache_commit": $(jstr "$xcache_commit"),
  "project": $(jstr "$PROJECT"),
  "profile": $(jstr "$PROFILE"),
  "jobs": $(jnum "$JOBS"),
  "peak_rss_note": "GNU time %M: max RSS of the largest single process; for sccache runs the larger of cargo's tree and the sccache server's tree (where rustc runs)",
  "packages_compiled_plain": $(jnum "${COMPILED[plain-cold]}"),
  "runs": [$runs_json
  ],
  "ratios": {$ratios_json
  }
}
EOF
if command -v jq >/dev/null; then jq empty "$OUT_DIR/results.json" || die "results.json is not valid JSON"; fi
log "results written to $OUT_DIR/results.json (logs in $OUT_DIR/logs)"

if [[ "$STRICT" == 1 && "$failed" == 1 ]]; then
  die "a target was missed or an output differs (XCACHE_BENCH_STRICT=1)"
fi
