#!/usr/bin/env bash
# Runs the library's integration and unit tests under ThreadSanitizer (nightly Rust, with the
# standard library rebuilt instrumented). Installs the nightly components it needs if absent.
#
#   tests/tsan.sh                      every test target of the library
#   tests/tsan.sh --test two_caches    one target (arguments go to `cargo test`)
#
# Not part of .ci/run: it rebuilds std and takes several minutes on two cores. The build goes
# to target/tsan (or $CARGO_TARGET_DIR/tsan), apart from the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly

export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/tsan"
# Reports, not just the first one; a report fails the run (exit status 66).
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 exitcode=66}"
[[ $# -gt 0 ]] || set -- --lib --tests --all-features
exec cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu -p shardlru "$@"
