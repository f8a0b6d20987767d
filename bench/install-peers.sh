#!/usr/bin/env bash
# bench/install-peers.sh: install the peer build caches that bench/run.sh
# compares cargo-xcache with, from crates.io, into one prefix:
#
#   sccache  ^0.19   cargo install --locked
#   mbx              cargo install --locked          (binary: mbx)
#   kache            from its unpacked .crate, with its lockfile nudged (see below)
#
# Idempotent: a tool whose binary is already in the prefix is skipped. Each
# tool is installed under a lock ($TOOLS/.install-<tool>.lock, flock), so two
# instances can run side by side (e.g. XCACHE_BENCH_PEERS=kache in one): the
# second waits for the first and then skips the tool. Builds run with
# `nice -n 19` and `-j 1` so that they take what CPU is left over.
#
# kache: `cargo install --locked kache` fails against this registry because
# kache's Cargo.lock pins a version that the registry does not have (2.0.0 pins
# webpki-roots 1.0.11; the registry has up to 1.0.10), and its
# rust-toolchain.toml names a toolchain that is not installed. So the script
# unpacks the .crate that cargo downloaded into ~/.cargo/registry/cache into
# $XCACHE_BENCH_TOOLS_SRC/kache-<version>, deletes rust-toolchain.toml, and
# for each "failed to select a version ... (locked to X)" error that
# `cargo fetch --locked` prints runs `cargo update -p NAME --precise V` with
# the newest candidate the error lists. Then it installs with
# `cargo install --locked --path .`.
#
# Options (environment):
#   XCACHE_BENCH_TOOLS_DIR=DIR     install prefix (default: /opt/xcache-bench/tools)
#   XCACHE_BENCH_TOOLS_SRC=DIR   where kache's source is unpacked (default: /opt/xcache-bench/src)
#   XCACHE_BENCH_PEERS="sccache mbx kache"   which tools to install (default: all three)
#   XCACHE_BENCH_INSTALL_JOBS=N  cargo -j (default: 1)
#   SCCACHE_VERSION_REQ, MBX_VERSION, KACHE_VERSION   versions (default: ^0.19, 1.29.1, 2.0.0)

set -euo pipefail

TOOLS_ROOT="${XCACHE_BENCH_TOOLS_DIR:-/opt/xcache-bench/tools}"
SRC_ROOT="${XCACHE_BENCH_TOOLS_SRC:-/opt/xcache-bench/src}"
PEERS="${XCACHE_BENCH_PEERS:-sccache mbx kache}"
JOBS="${XCACHE_BENCH_INSTALL_JOBS:-1}"
SCCACHE_VERSION_REQ="${SCCACHE_VERSION_REQ:-^0.19}"
MBX_VERSION="${MBX_VERSION:-1.29.1}"
KACHE_VERSION="${KACHE_VERSION:-2.0.0}"
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

log() { printf '[install-peers %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
NICE=(nice -n 19)

mkdir -p "$TOOLS_ROOT" "$SRC_ROOT"
# Builds must not go through a wrapper (or through one of the tools being installed).
unset RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

failed=()

install_sccache() {
  if [[ -x "$TOOLS_ROOT/bin/sccache" ]]; then log "sccache: already installed ($("$TOOLS_ROOT/bin/sccache" --version))"; return 0; fi
  log "sccache: cargo install --locked sccache --version '$SCCACHE_VERSION_REQ'"
  "${NICE[@]}" cargo install --locked sccache --version "$SCCACHE_VERSION_REQ" --root "$TOOLS_ROOT" -j "$JOBS"
}

install_mbx() {
  if [[ -x "$TOOLS_ROOT/bin/mbx" ]]; then log "mbx: already installed"; return 0; fi
  log "mbx: cargo install --locked mbx --version '$MBX_VERSION'"
  "${NICE[@]}" cargo install --locked mbx --version "$MBX_VERSION" --root "$TOOLS_ROOT" -j "$JOBS"
}

# Finds the downloaded kache-<version>.crate in cargo's registry cache, and
# asks cargo to download it (through `cargo info`) when it is not there.
kache_crate_file() {
  local f
  f="$(ls "$CARGO_HOME"/registry/cache/*/"kache-$KACHE_VERSION.crate" 2>/dev/null | head -n1 || true)"
  if [[ -z "$f" ]]; then
    (cd / && cargo info "kache@$KACHE_VERSION" >/dev/null 2>&1) || true
    f="$(ls "$CARGO_HOME"/registry/cache/*/"kache-$KACHE_VERSION.crate" 2>/dev/null | head -n1 || true)"
  fi
  printf '%s' "$f"
}

install_kache() {
  if [[ -x "$TOOLS_ROOT/bin/kache" ]]; then log "kache: already installed"; return 0; fi
  local crate src="$SRC_ROOT/kache-$KACHE_VERSION" i err name cand
  crate="$(kache_crate_file)"
  [[ -n "$crate" ]] || { log "kache: could not download kache-$KACHE_VERSION.crate"; return 1; }
  if [[ ! -f "$src/Cargo.toml" ]]; then
    log "kache: unpacking $crate into $SRC_ROOT"
    tar -C "$SRC_ROOT" -xzf "$crate"
  fi
  rm -f "$src/rust-toolchain.toml" "$src/rust-toolchain"
  # Nudge the lockfile: one `cargo update --precise` per pin the registry lacks.
  for ((i = 0; i < 10; i++)); do
    if err="$(cd "$src" && cargo fetch --locked 2>&1)"; then break; fi
    name="$(grep -oE 'failed to select a version for the requirement `[^ =`]+' <<<"$err" | head -n1 | sed 's/.*`//')"
    cand="$(grep -oE 'candidate versions found which didn.t match: [^, ]+' <<<"$err" | head -n1 | sed 's/.*: //')"
    if [[ -z "$name" || -z "$cand" ]]; then
      printf '%s\n' "$err" | tail -n 20 >&2
      log "kache: cargo fetch --locked failed for a reason this script does not fix"
      return 1
    fi
    log "kache: registry lacks the locked $name; cargo update -p $name --precise $cand"
    (cd "$src" && cargo update -p "$name" --precise "$cand")
  done
  log "kache: cargo install --locked --path $src"
  (cd "$src" && "${NICE[@]}" cargo install --locked --path . --root "$TOOLS_ROOT" -j "$JOBS")
}

# locked TOOL: runs install_TOOL while holding the tool's lock.
locked() {
  local tool="$1" rc=0
  exec 9>"$TOOLS_ROOT/.install-$tool.lock"
  flock 9
  "install_$tool" || rc=$?
  exec 9>&-
  return "$rc"
}

for tool in $PEERS; do
  case "$tool" in
    sccache | mbx | kache) locked "$tool" || failed+=("$tool") ;;
    *) log "unknown tool '$tool' (known: sccache mbx kache)"; failed+=("$tool") ;;
  esac
done

log "installed in $TOOLS_ROOT/bin: $(ls "$TOOLS_ROOT/bin" 2>/dev/null | tr '\n' ' ')"
if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
