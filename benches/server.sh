#!/usr/bin/env bash
# shardlru-server against real memcached, end to end over loopback, with memcaslap as the load:
# writes the "## Server" report to stdout, $SERVER_REPORT_DIR/server.md and server.svg.
#
#   benches/server.sh                 # 3 repeats of 4 s runs: about 9.5 minutes, once built
#   QUICK=1 benches/server.sh         # smoke test: 1 repeat of 2 s runs, 2+1 cells (under a minute)
#   benches/server_report.py report target/server-report   # the report again, from the raw runs
#
# Cells (main): 32-byte and 4 KiB values × 8 and 64 connections × single get and multi-get of 16
# keys, 9:1 get:set, memcaslap -T 2; servers: memcached -t 2, shardlru-server -t 2 with its
# shardlru, mutex-lru and dashmap stores, all with the same -m. Spill: shardlru-server with a
# small -m with and without --spill, 4 KiB values, 8 connections.
# Every run starts a fresh server on 127.0.0.1 (a port of its own), reads its CPU time from
# /proc/PID/stat before and after memcaslap, asks it for `stats`, and stops it by PID.
#
# Settings (environment):
#   REPEATS=3            repeats; each runs every server once per cell, the order rotating
#   SECONDS_PER_RUN=4    memcaslap -t, per run
#   QUICK=0              1: REPEATS=1, SECONDS_PER_RUN=2 (unless set), fewer cells
#   MEMORY_MB=1024       -m of every server in the main cells: room for all a run sets at 4 s
#                        (every memcaslap set is a new key); raise it with SECONDS_PER_RUN
#   SPILL_MB=2           -m of the spill cells (far less than a run sets)
#   VALUE_SIZES="32 4096" CONNECTIONS="8 64" MULTIGETS="1 16" SPILL_VALUE_SIZES="4096"
#                        the cells (QUICK: 32 B 8 conns get, 4 KiB 64 conns multi-get 16)
#   SERVER_THREADS=2 CLIENT_THREADS=2   server -t, memcaslap -T (memcaslap wants servers < threads)
#   SERVER_BIN=...       a shardlru-server binary to use instead of building one
#   SERVER_REPORT_DIR=target/server-report
# Needs: memcached and memcaslap (libmemcached-tools; installed with apt-get if absent), python3.
# The client and the servers share the machine's cores: the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."

quick="${QUICK:-0}"
if [[ "$quick" == 1 ]]; then
    repeats="${REPEATS:-1}"
    seconds="${SECONDS_PER_RUN:-2}"
    default_main_cells="32:8:1 4096:64:16"
    default_spill_values="4096"
else
    repeats="${REPEATS:-3}"
    seconds="${SECONDS_PER_RUN:-4}"
    default_main_cells=""
    default_spill_values="4096"
fi
memory_mb="${MEMORY_MB:-1024}"
spill_mb="${SPILL_MB:-2}"
server_threads="${SERVER_THREADS:-2}"
client_threads="${CLIENT_THREADS:-2}"
spill_conns=8
out_dir="${SERVER_REPORT_DIR:-${CARGO_TARGET_DIR:-target}/server-report}"
report_py="benches/server_report.py"
key_bytes=16

# The main cells, as value:connections:multiget.
main_cells=()
if [[ -n "$default_main_cells" && -z "${VALUE_SIZES:-}${CONNECTIONS:-}${MULTIGETS:-}" ]]; then
    read -ra main_cells <<<"$default_main_cells"
else
    for value in ${VALUE_SIZES:-32 4096}; do
        for conns in ${CONNECTIONS:-8 64}; do
            for multiget in ${MULTIGETS:-1 16}; do
                main_cells+=("$value:$conns:$multiget")
            done
        done
    done
fi
spill_cells=()
for value in ${SPILL_VALUE_SIZES:-$default_spill_values}; do
    spill_cells+=("$value:$spill_conns:1")
done
main_contenders=(memcached shardlru mutex-lru dashmap)
spill_contenders=(spill-off spill-on)

log() { echo "server.sh: $*" >&2; }

# --- What it needs --------------------------------------------------------------------------

install_packages() {
    local -a sudo=()
    if [[ $EUID -ne 0 ]]; then
        if ! command -v sudo >/dev/null; then
            log "needs $*: install them (apt-get install -y $*)"
            exit 1
        fi
        sudo=(sudo)
    fi
    log "installing $*"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; then
        "${sudo[@]}" apt-get update >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
    fi
}

missing=()
command -v memcached >/dev/null || missing+=(memcached)
command -v memcaslap >/dev/null || command -v memaslap >/dev/null || missing+=(libmemcached-tools)
command -v python3 >/dev/null || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
    install_packages "${missing[@]}"
fi
# Debian and Ubuntu name it memcaslap; elsewhere it is libmemcached's memaslap.
memcaslap="$(command -v memcaslap || command -v memaslap)"
memcaslap_name="$(basename "$memcaslap")"

if [[ -z "${SERVER_BIN:-}" ]]; then
    log "building shardlru-server (release)"
    cargo build --release -p shardlru-server >&2
    server_bin="${CARGO_TARGET_DIR:-target}/release/shardlru-server"
else
    server_bin="$SERVER_BIN"
fi
[[ -x "$server_bin" ]] || { log "no server binary at $server_bin"; exit 1; }

memcached_user=()
if [[ $EUID -eq 0 ]]; then
    memcached_user=(-u root) # memcached refuses to run as root without -u
fi

# --- Servers ----------------------------------------------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/shardlru-server-bench.XXXXXX")"
server_pid=""
port=""

stop_server() {
    if [[ -n "$server_pid" ]]; then
        if kill -0 "$server_pid" 2>/dev/null; then
            kill -TERM "$server_pid" 2>/dev/null || true
            # Let it finish (shardlru-server writes its spill backlog first), then insist.
            for _ in $(seq 1 100); do
                kill -0 "$server_pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$server_pid" 2>/dev/null; then
                log "server $server_pid still up 10 s after SIGTERM: SIGKILL"
                kill -KILL "$server_pid" 2>/dev/null || true
            fi
        fi
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    rm -rf "$work/spill"
}

cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether the server process is running (a zombie, exited but not yet waited for, is not).
server_alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ -n "$stat" && "${stat:0:1}" != Z ]]
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The command line of a contender's server, with PORT for its port.
server_command() {
    local contender="$1"
    case "$contender" in
        memcached)
            echo "memcached -t $server_threads -m $memory_mb -p PORT -l 127.0.0.1 -U 0${memcached_user[*]:+ ${memcached_user[*]}}" ;;
        shardlru | mutex-lru | dashmap)
            echo "$server_bin -p 0 -l 127.0.0.1 -m $memory_mb -t $server_threads --backend $contender" ;;
        spill-off)
            echo "$server_bin -p 0 -l 127.0.0.1 -m $spill_mb -t $server_threads --backend shardlru" ;;
        spill-on)
            echo "$server_bin -p 0 -l 127.0.0.1 -m $spill_mb -t $server_threads --backend shardlru --spill $work/spill" ;;
    esac
}

# Starts a contender's server: sets server_pid and port, or returns 1.
start_server() {
    local contender="$1" logs="$2" attempt command
    for attempt in 1 2 3; do
        command="$(server_command "$contender")"
        if [[ "$contender" == memcached ]]; then
            port="$(free_port)"
            command="${command/PORT/$port}"
        else
            port=""
        fi
        rm -rf "$work/spill"
        # shellcheck disable=SC2086 # the command is words without quoting
        $command >"$logs.out" 2>"$logs.err" &
        server_pid=$!
        for _ in $(seq 1 300); do
            server_alive "$server_pid" || break
            if [[ -z "$port" ]]; then
                port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$logs.out")"
                [[ -n "$port" ]] || { sleep 0.05; continue; }
            fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                server_command_used="$command"
                return 0
            fi
            sleep 0.05
        done
        log "$contender did not come up (attempt $attempt): $(tail -n 3 "$logs.err" | tr '\n' ' ')"
        stop_server
    done
    return 1
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the fields
# after the command name, which may hold spaces, start at field 3).
cpu_ticks() {
    local stat rest
    stat="$(<"/proc/$1/stat")" || return 1
    rest="${stat##*) }"
    read -ra fields <<<"$rest"
    echo $((fields[11] + fields[12]))
}

# --- Runs -------------------------------------------------------------------------------------

rm -rf "$out_dir"
mkdir -p "$out_dir/raw"
runs="$out_dir/runs.tsv"
meta="$out_dir/meta.tsv"
printf 'section\tcell\tvalue_bytes\tconns\tmultiget\tcontender\trepeat\tposition\trc\tcpu_ticks\traw\n' >"$runs"

cfg_file() { echo "$out_dir/value-$1.cfg"; }
cfg_body() { printf 'key\n%s %s 1\nvalue\n%s %s 1\ncmd\n0 0.1\n1 0.9\n' "$key_bytes" "$key_bytes" "$1" "$1"; }

value_label() { if [[ "$1" -ge 1024 && $(($1 % 1024)) -eq 0 ]]; then echo "$(($1 / 1024)) KiB"; else echo "$1 B"; fi; }
cell_label() {
    local value="$1" conns="$2" multiget="$3" gets="get"
    [[ "$multiget" -gt 1 ]] && gets="multi-get $multiget"
    echo "$(value_label "$value"), $conns conns, $gets"
}
# memcaslap prints its latency statistics ("Get Statistics", with the log2 histogram) only with
# -S; -S 1h, longer than any run, prints them once, at the end, with no periodic tables.
client_command() {
    local value="$1" conns="$2" multiget="$3" server="$4"
    local command
    command="$memcaslap_name -s $server -T $client_threads -c $conns -t ${seconds}s -S 1h -F $(cfg_file "$value")"
    [[ "$multiget" -gt 1 ]] && command+=" -d $multiget"
    echo "$command"
}

run_count=0
total_runs=$(((${#main_cells[@]} * ${#main_contenders[@]} + ${#spill_cells[@]} * ${#spill_contenders[@]}) * repeats))
failures=0

run_one() {
    local section="$1" spec="$2" contender="$3" repeat="$4" position="$5"
    local value conns multiget cell raw name before after ticks rc=0 command
    IFS=: read -r value conns multiget <<<"$spec"
    cell="$(cell_label "$value" "$conns" "$multiget")"
    run_count=$((run_count + 1))
    name="$(printf '%03d' "$run_count")-$section-v$value-c$conns-d$multiget-$contender-r$repeat"
    raw="$out_dir/raw/$name.txt"
    ticks="-"
    if ! start_server "$contender" "$out_dir/raw/$name.server"; then
        echo "# $contender did not start" >"$raw"
        rc=98
    else
        command="$(client_command "$value" "$conns" "$multiget" "127.0.0.1:$port")"
        { echo "# server: $server_command_used"; echo "# client: $command"; } >"$raw"
        before="$(cpu_ticks "$server_pid")"
        # shellcheck disable=SC2086 # the command is words without quoting
        timeout --kill-after=5 $((seconds + 60)) $command >>"$raw" 2>&1 || rc=$?
        if server_alive "$server_pid" && after="$(cpu_ticks "$server_pid" 2>/dev/null)"; then
            ticks=$((after - before))
            python3 "$report_py" stats "$port" >>"$raw" || true
        else
            echo "# the server exited during the run" >>"$raw"
            [[ $rc -ne 0 ]] || rc=99
        fi
        stop_server
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$cell" "$value" "$conns" \
        "$multiget" "$contender" "$repeat" "$position" "$rc" "$ticks" "raw/$name.txt" >>"$runs"
    local tps
    tps="$(sed -n 's/.*TPS: \([0-9]*\).*/\1/p' "$raw" | tail -n 1)"
    if [[ $rc -ne 0 || -z "$tps" ]]; then
        failures=$((failures + 1))
        log "[$run_count/$total_runs] $cell, $contender, repeat $repeat: FAILED (rc $rc, see $raw)"
    else
        log "[$run_count/$total_runs] $cell, $contender, repeat $repeat: $tps ops/s, server CPU $ticks ticks"
    fi
}

# Each repeat runs every cell, and in each cell every contender once; the order of the
# contenders rotates with the repeat and the cell.
run_section() {
    local section="$1" cells_name="$2" contenders_name="$3"
    local -n cells_ref="$cells_name" contenders_ref="$contenders_name"
    local repeat="$4" ci si n="${#contenders_ref[@]}"
    for ci in "${!cells_ref[@]}"; do
        for ((si = 0; si < n; si++)); do
            run_one "$section" "${cells_ref[$ci]}" "${contenders_ref[$(((si + repeat + ci) % n))]}" \
                "$repeat" "$si"
        done
    done
}

# The settings, for the report.
{
    printf 'quick\t%s\n' "$quick"
    printf 'repeats\t%s\n' "$repeats"
    printf 'seconds\t%s\n' "$seconds"
    printf 'memory_mb\t%s\n' "$memory_mb"
    printf 'spill_mb\t%s\n' "$spill_mb"
    printf 'server_threads\t%s\n' "$server_threads"
    printf 'client_threads\t%s\n' "$client_threads"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    printf 'mem_total\t%s\n' "$(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    printf 'kernel\t%s\n' "Linux $(uname -r)"
    printf 'clk_tck\t%s\n' "$(getconf CLK_TCK)"
    printf 'memcached_version\t%s\n' "$(memcached -V 2>&1 | head -n 1)"
    printf 'memcaslap_version\t%s\n' "$("$memcaslap" -V 2>&1 | head -n 1 | sed 's/^[a-z]* *//')"
    printf 'git_rev\t%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'raw_dir\t%s\n' "$out_dir/raw"
    settings=""
    for var in QUICK REPEATS SECONDS_PER_RUN MEMORY_MB SPILL_MB VALUE_SIZES CONNECTIONS MULTIGETS \
        SPILL_VALUE_SIZES SERVER_THREADS CLIENT_THREADS; do
        [[ -n "${!var:-}" ]] && settings+="$var=${!var} "
    done
    printf 'command\t%s\n' "${settings}benches/server.sh"
    for contender in "${main_contenders[@]}" "${spill_contenders[@]}"; do
        printf 'server_cmd\t%-11s %s\n' "$contender:" "$(server_command "$contender" | sed "s|$work|\$TMPDIR|")"
    done
    declare -A values_seen=()
    for spec in "${main_cells[@]}" "${spill_cells[@]}"; do
        IFS=: read -r value conns multiget <<<"$spec"
        printf 'memcaslap_cmd\t%s\n' "$(client_command "$value" "$conns" "$multiget" 127.0.0.1:PORT)"
        values_seen[$value]=1
    done
    for value in "${!values_seen[@]}"; do
        cfg_body "$value" >"$(cfg_file "$value")"
        printf 'cfg_file\t%s=%s\n' "$(cfg_file "$value")" "$(cfg_body "$value" | sed ':a;N;$!ba;s/\n/\\n/g')"
    done
} >"$meta"

started=$(date +%s)
# memcaslap takes about 1.2 s more than its -t (its own start and end), a server 0.2 s.
log "$total_runs runs of ${seconds} s (about $((total_runs * (seconds * 10 + 15) / 600 + 1)) min); the client and the servers share $(nproc) cores"
for ((repeat = 0; repeat < repeats; repeat++)); do
    run_section main main_cells main_contenders "$repeat"
    run_section spill spill_cells spill_contenders "$repeat"
done
log "measured in $(($(date +%s) - started)) s; $failures failed run(s)"

python3 "$report_py" report "$out_dir" || true
if [[ $failures -gt 0 ]]; then
    log "$failures run(s) failed: see $out_dir/raw"
    exit 1
fi
