#!/usr/bin/env bash
# Runs several builds of the `compare` bench binary interleaved (A B C, A B C, …), each round in
# a fresh process, and reports for every cell the median Mops/s of each build and the median of
# the per-round ratios to the first build. Used by `benches/cfg_cost.sh`, and for measuring a
# change to the library against the original: build `compare` in two checkouts and pass both.
#
#   benches/interleave.sh [-n ROUNDS] NAME=PATH/TO/compare-binary NAME=... 
#
# The SHARDLRU_BENCH_* variables choose what each process runs (see benches/support/settings.rs);
# each process runs one repeat, so ROUNDS is the number of pairs behind each ratio. Defaults:
# 7 rounds, shardlru only, W1 and W4, 1 and 2 threads, 500 ms per run.
set -euo pipefail

rounds=7
if [[ "${1:-}" == "-n" ]]; then
    rounds="$2"
    shift 2
fi
if [[ $# -lt 2 ]]; then
    echo "usage: $0 [-n ROUNDS] NAME=BINARY NAME=BINARY [NAME=BINARY ...]" >&2
    exit 2
fi

export SHARDLRU_BENCH_REPEATS=1
export SHARDLRU_BENCH_OUT=-
export SHARDLRU_BENCH_CONTENDERS="${SHARDLRU_BENCH_CONTENDERS:-shardlru}"
export SHARDLRU_BENCH_WORKLOADS="${SHARDLRU_BENCH_WORKLOADS:-W1,W4}"
export SHARDLRU_BENCH_THREADS="${SHARDLRU_BENCH_THREADS:-1,2}"
export SHARDLRU_BENCH_MS="${SHARDLRU_BENCH_MS:-500}"

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for ((round = 0; round < rounds; round++)); do
    for build in "$@"; do
        name="${build%%=*}"
        binary="${build#*=}"
        echo "round $((round + 1))/$rounds: $name" >&2
        "$binary" --bench 2>/dev/null | awk -v name="$name" -v round="$round" \
            '$1 == "RESULT" { print name, $2, $3, $4, round, $6 }' >>"$results"
    done
done

# Columns of $results: build, workload, threads, contender, round, Mops/s.
first="${1%%=*}"
awk -v first="$first" '
    function median(list,    n, i, j, v, a) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) {
            v = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]
            a[j + 1] = v
        }
        if (n == 0) return "nan"
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        cell = $2 " " $3 "t " $4
        mops[$1, cell, $5] = $6
        all[$1, cell] = all[$1, cell] " " $6
        if (!(cell in seen)) { seen[cell] = 1; cells[++ncells] = cell }
        if (!($1 in known)) { known[$1] = 1; builds[++nbuilds] = $1 }
        if ($5 + 1 > rounds) rounds = $5 + 1
    }
    END {
        printf "%-28s", "cell"
        for (b = 1; b <= nbuilds; b++) printf " %16s", builds[b] " Mops"
        for (b = 2; b <= nbuilds; b++) printf " %22s", builds[b] "/" first
        printf "\n"
        for (c = 1; c <= ncells; c++) {
            cell = cells[c]
            printf "%-28s", cell
            for (b = 1; b <= nbuilds; b++) printf " %16.2f", median(all[builds[b], cell])
            for (b = 2; b <= nbuilds; b++) {
                ratios = ""
                for (r = 0; r < rounds; r++)
                    if (((builds[b], cell, r) in mops) && ((first, cell, r) in mops))
                        ratios = ratios " " mops[builds[b], cell, r] / mops[first, cell, r]
                printf " %21.3f×", median(ratios)
            }
            printf "\n"
        }
    }' "$results"
