#!/usr/bin/env bash
# The benchmark report of issue 5, in one command: writes BENCHMARKS.md and benches/chart.svg.
#
#   benches/report.sh                             # about 10 minutes on 2 cores, once built
#   SHARDLRU_BENCH_THREADS=1,2,4,8,16 benches/report.sh   # on a bigger machine
#   SHARDLRU_REPORT_INSTRUCTIONS=1 benches/report.sh  # also instructions per op (callgrind, 1 minute)
#
# Runs, in this order, on an otherwise idle machine:
#   1. benches/memory.rs     bytes per entry at capacity 1,000,000, every contender
#   2. benches/isolation.rs  get latency while a 100 µs eviction callback blocks
#   3. benches/instructions.sh  (only with SHARDLRU_REPORT_INSTRUCTIONS=1)
#   4. benches/compare.rs    W1, W1L, W2–W4 × threads × contenders, interleaved; then writes
#                            the report, folding in the sections that 1–3 left in
#                            $SHARDLRU_REPORT_DIR,
#                            then the hand-written analysis in benches/notes.md (its figures
#                            are from the runs it names: update it by hand)
#
# The raw per-run results of step 4 are kept in $SHARDLRU_REPORT_DIR/compare.log; to write the
# report again from them without measuring:
#   SHARDLRU_REPORT_DIR=<dir> SHARDLRU_BENCH_FROM=<dir>/compare.log cargo bench --bench compare
# Every SHARDLRU_BENCH_* setting (benches/support/settings.rs) applies to the steps it concerns.
set -euo pipefail
cd "$(dirname "$0")/.."

export SHARDLRU_REPORT_DIR="${SHARDLRU_REPORT_DIR:-${CARGO_TARGET_DIR:-target}/shardlru-report}"
export SHARDLRU_REPORT_COMMAND="${SHARDLRU_REPORT_COMMAND:-benches/report.sh}"
rm -rf "$SHARDLRU_REPORT_DIR"
mkdir -p "$SHARDLRU_REPORT_DIR"
started=$(date +%s)

# Build everything first, so that no compilation runs beside a measurement.
cargo bench --no-run --bench memory --bench isolation --bench compare

cargo bench --bench memory
cargo bench --bench isolation
if [[ "${SHARDLRU_REPORT_INSTRUCTIONS:-0}" != 0 ]]; then
    benches/instructions.sh
fi
cargo bench --bench compare | tee "$SHARDLRU_REPORT_DIR/compare.log" | grep -v '^RESULT'

echo "benches/report.sh done in $(($(date +%s) - started)) s" >&2
