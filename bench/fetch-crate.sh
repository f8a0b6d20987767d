#!/usr/bin/env bash
# bench/fetch-crate.sh: a published crate with its own Cargo.lock, unpacked from
# crates.io as a benchmark project for bench/run.sh (XCACHE_BENCH_PROJECTS takes its
# directory), with its dependencies fetched.
#
#   bash bench/fetch-crate.sh NAME VERSION DIR [BIN] [SMOKE ARGS...]
#   bash bench/fetch-crate.sh ripgrep 15.1.0 /tmp/xcache-bench-crates rg --type-list
#
# The crate lands in DIR/NAME-VERSION. BIN is the program the output check runs
# (default: NAME) with SMOKE ARGS (default: --version); they are written to
# DIR/NAME-VERSION/.xcache-bench, which bench/run.sh reads. Only a crate that ships its
# Cargo.lock (as binaries published with `cargo publish` do) is accepted: every run
# must build the same versions.
set -euo pipefail

die() { echo "fetch-crate: $*" >&2; exit 1; }
[[ $# -ge 3 ]] || die "usage: bash bench/fetch-crate.sh NAME VERSION DIR [BIN] [SMOKE ARGS...]"
name="$1" version="$2" dir="$3"
shift 3
bin="${1:-$name}"
[[ $# -gt 0 ]] && shift
smoke=("$@")
((${#smoke[@]})) || smoke=(--version)
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || die "'$name' is not a crate name"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "'$version' is not a version (like 15.1.0)"
command -v curl >/dev/null || die "curl is not on PATH"

dest="$dir/$name-$version"
if [[ ! -f "$dest/Cargo.toml" ]]; then
  mkdir -p "$dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  url="https://static.crates.io/crates/$name/$name-$version.crate"
  curl -sSfL --retry 3 -o "$tmp/crate.tar.gz" "$url" || die "could not download $url"
  tar -xzf "$tmp/crate.tar.gz" -C "$tmp"
  [[ -f "$tmp/$name-$version/Cargo.lock" ]] || die "$name $version ships no Cargo.lock"
  mv "$tmp/$name-$version" "$dest"
fi
printf 'bin=%s\nsmoke=%s\n' "$bin" "${smoke[*]}" >"$dest/.xcache-bench"
(cd "$dest" && cargo fetch --locked -q) || die "cargo fetch failed in $dest"
echo "$dest"
