#!/usr/bin/env bash
# Runs the loom models of shardlru's concurrent protocol (loom-tests/tests/*.rs) with the flags
# they need: `--cfg loom` (the library's `sync` facade switches to loom's primitives), a release
# build with debug assertions and overflow checks on, and a bounded number of preemptions.
#
#   loom-tests/run.sh                        every model
#   loom-tests/run.sh --test purge_cap       the models of one file (tests/purge_cap.rs)
#   loom-tests/run.sh crossed_shards         the models whose name contains a string
#
# Arguments after the `--test FILE` pairs go to the test harness (a filter, --test-threads=1).
#
# Environment:
#   LOOM_MAX_PREEMPTIONS  the preemption bound (default 2). On two cores the suite takes
#                         under a minute at 2 and about 7 minutes at 3 (what .ci/run uses)
#   CARGO_TARGET_DIR      the build directory (default target/loom in the repository root), kept
#                         apart so that the `--cfg loom` build does not invalidate the normal one
#   LOOM_LOG=trace, LOOM_LOCATION=1   explain a failing model (see `run_model`)
set -euo pipefail
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/loom}"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom -C debug-assertions"

# Cargo options come before `--`, harness options (a name filter, --test-threads) after it.
cargo_args=()
while [[ $# -gt 0 && "$1" == --test ]]; do
    cargo_args+=("$1" "$2")
    shift 2
done
[[ ${#cargo_args[@]} -gt 0 ]] || cargo_args=(--tests)

echo "loom-tests: LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS CARGO_TARGET_DIR=$CARGO_TARGET_DIR" >&2
exec cargo test -p loom-tests --release "${cargo_args[@]}" -- --nocapture "$@"
