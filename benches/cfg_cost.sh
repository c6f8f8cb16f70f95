#!/usr/bin/env bash
# What the re-entry check (issue 3) and the lock-contention counting (issue 6) cost on get-heavy
# workloads: builds the `compare` bench three ways, each in its own target folder,
#
#   default       the library as shipped
#   no-reentry    RUSTFLAGS="--cfg shardlru_no_reentry_check"
#   no-contention RUSTFLAGS="--cfg shardlru_no_contention_count"
#
# runs them interleaved (default, no-reentry, no-contention, default, …; a fresh process each)
# and prints the median Mops/s of each and the median of the per-round ratios to the default
# build. A ratio of 1.05× means the feature costs about 5% of that cell's throughput.
#
#   benches/cfg_cost.sh [-n ROUNDS]          # default 9 rounds: about 4 minutes once built
#
# The workloads default to W4 (read-only hits) and W1 (read-through, 80% hits) at 1 and 2
# threads; override with SHARDLRU_BENCH_WORKLOADS / _THREADS / _MS as for `interleave.sh`.
# The two extra builds go to "$CARGO_TARGET_DIR-noreentry" and "$CARGO_TARGET_DIR-nocontention"
# (or target/cfg-* without CARGO_TARGET_DIR); the first build of each takes a few minutes.
# With SHARDLRU_REPORT_DIR set, the table is also left there for the report.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=9
if [[ "${1:-}" == "-n" ]]; then
    rounds="$2"
fi

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    default_dir="$CARGO_TARGET_DIR"
    variant_dir() { echo "$CARGO_TARGET_DIR-$1"; }
else
    default_dir="target"
    variant_dir() { echo "target/cfg-$1"; }
fi

# Builds the compare bench into $1 with RUSTFLAGS=$2 and prints the executable's path.
build() {
    echo "building compare in $1 (RUSTFLAGS=\"$2\") ..." >&2
    RUSTFLAGS="$2" CARGO_TARGET_DIR="$1" cargo bench --no-run --bench compare \
        --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}

default_bin="$(build "$default_dir" "${RUSTFLAGS:-}")"
noreentry_bin="$(build "$(variant_dir noreentry)" "--cfg shardlru_no_reentry_check")"
nocontention_bin="$(build "$(variant_dir nocontention)" "--cfg shardlru_no_contention_count")"

export SHARDLRU_BENCH_WORKLOADS="${SHARDLRU_BENCH_WORKLOADS:-W4,W1}"
export SHARDLRU_BENCH_THREADS="${SHARDLRU_BENCH_THREADS:-1,2}"
table="$(benches/interleave.sh -n "$rounds" \
    "default=$default_bin" \
    "no-reentry=$noreentry_bin" \
    "no-contention=$nocontention_bin")"
echo "$table"

if [[ -n "${SHARDLRU_REPORT_DIR:-}" ]]; then
    mkdir -p "$SHARDLRU_REPORT_DIR"
    {
        echo "## Cost of the re-entry check and of contention counting (issues 3 and 6)"
        echo
        echo "shardlru built three ways (\`benches/cfg_cost.sh\`), run interleaved in fresh"
        echo "processes for $rounds rounds; each ratio is the median of per-round ratios to the"
        echo "default build, so 1.05× means the compiled-out feature costs about 5%."
        echo
        echo '```text'
        echo "$table"
        echo '```'
    } >"$SHARDLRU_REPORT_DIR/cfg_cost.md"
fi
