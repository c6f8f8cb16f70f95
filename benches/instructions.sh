#!/usr/bin/env bash
# Instructions per operation of shardlru on one thread, counted by valgrind's callgrind: a
# deterministic figure (the same for the same binary and inputs, however busy the machine is),
# where wall-clock runs of separately built binaries differ by ±20–30 % from code layout alone.
#
#   benches/instructions.sh [COMPARE_BINARY]
#
# Builds the `compare` bench (or takes the binary given), runs it under callgrind for each
# workload at two fixed operation counts and prints (instructions at 600,000 − at 100,000) /
# 500,000 per workload: set-up and key-stream generation cancel. To compare two versions of the
# library, build each (e.g. one in a `git worktree` of the older commit) and pass each binary.
# Workloads default to W4 (hits) and W1 (read-through); set SHARDLRU_BENCH_WORKLOADS to change.
# With SHARDLRU_REPORT_DIR set (benches/report.sh), the table is also left there for the report.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
binary="${1:-}"
if [[ -z "$binary" ]]; then
    binary="$(cargo bench --no-run --bench compare --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
fi

# The instructions callgrind collected for one run of `workload` at `ops` operations.
collected() {
    SHARDLRU_BENCH_CONTENDERS=shardlru SHARDLRU_BENCH_WORKLOADS="$1" SHARDLRU_BENCH_THREADS=1 \
        SHARDLRU_BENCH_REPEATS=1 SHARDLRU_BENCH_OPS="$2" SHARDLRU_BENCH_OUT=- \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

table="workload  instructions/op"
for workload in $(echo "${SHARDLRU_BENCH_WORKLOADS:-W4,W1}" | tr ',' ' '); do
    small="$(collected "$workload" 100000)"
    large="$(collected "$workload" 600000)"
    table+=$'\n'"$workload        $(( (large - small) / 500000 ))"
done
echo "$binary"
echo "$table"

if [[ -n "${SHARDLRU_REPORT_DIR:-}" ]]; then
    mkdir -p "$SHARDLRU_REPORT_DIR"
    {
        echo "## Instructions per operation (\`benches/instructions.sh\`)"
        echo
        echo "One thread, shardlru only, counted by callgrind: (instructions at 600,000 operations"
        echo "− at 100,000) / 500,000."
        echo
        echo '```text'
        echo "$table"
        echo '```'
    } >"$SHARDLRU_REPORT_DIR/instructions.md"
fi
