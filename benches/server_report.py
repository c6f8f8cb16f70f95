#!/usr/bin/env python3
"""The helper of benches/server.sh: reads memcaslap's output and writes the "## Server" report.

    server_report.py stats PORT                  # a server's `stats`, as `STAT name value` lines
    server_report.py report DIR                  # DIR/runs.tsv + DIR/meta.tsv -> DIR/server.md,
                                                 # DIR/server.svg; the markdown also to stdout

DIR/runs.tsv has one line per run (written by server.sh):
    section  cell  value_bytes  conns  multiget  contender  repeat  position  rc  cpu_ticks  raw
where raw is the file holding memcaslap's output, after which server.sh appended the server's
`stats` (as `STAT name value` lines). DIR/meta.tsv holds `key<TAB>value` lines (a key may repeat).

memcaslap's latency histogram ("Log2 Dist") counts an operation of t µs in bucket i, the
smallest i with 2^i >= t: bucket i holds (2^(i-1), 2^i] µs. The p99 bucket is the first bucket
at which the cumulative count reaches 99% of the events.
"""

import html
import math
import re
import socket
import statistics
import sys
from collections import defaultdict
from pathlib import Path

MAIN_BASE = "memcached"
SPILL_BASE = "spill-off"
COLORS = {
    "memcached": "#7F7F7F",
    "shardlru": "#D62728",
    "mutex-lru": "#2CA02C",
    "dashmap": "#1F77B4",
    "spill-off": "#FF7F0E",
    "spill-on": "#9467BD",
}


# ------------------------------------------------------------------------------------------
# Reading one run
# ------------------------------------------------------------------------------------------

def parse_memcaslap(text):
    """The figures of one memcaslap run (with -S, so that it prints its statistics)."""
    run = {}
    final = re.search(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)", text)
    if final:
        run["seconds"] = float(final.group(1))
        run["ops"] = int(final.group(2))
        run["tps"] = int(final.group(3))
    for key in ("cmd_get", "cmd_set", "get_misses"):
        found = re.search(rf"^{key}: (\d+)", text, re.M)
        if found:
            run[key] = int(found.group(1))
    for kind in ("Get", "Set"):
        block = re.search(
            rf"^{kind} Statistics \((\d+) events\)\n(.*?)(?:\n\s*\n|\Z)", text, re.M | re.S
        )
        if not block:
            continue
        body = block.group(2)
        avg = re.search(r"Avg:\s+(\d+)", body)
        dist = {}
        in_dist = False
        for line in body.splitlines():
            if "Log2 Dist:" in line:
                in_dist = True
                continue
            row = re.match(r"\s*(\d+):\s+([\d\s]+)$", line)
            if in_dist and row:
                start = int(row.group(1))
                for offset, count in enumerate(row.group(2).split()):
                    dist[start + offset] = int(count)
        name = kind.lower()
        run[f"{name}_events"] = int(block.group(1))
        if avg:
            run[f"{name}_avg_us"] = int(avg.group(1))
        if dist:
            run[f"{name}_p99_bucket"] = percentile_bucket(dist, 0.99)
    stats = {}
    for found in re.finditer(r"^STAT (\S+) (\S+)", text, re.M):
        stats[found.group(1)] = found.group(2)
    run["stats"] = stats
    return run


def percentile_bucket(dist, fraction):
    """The log2 bucket that holds the `fraction` quantile of the histogram `dist`."""
    total = sum(dist.values())
    if total == 0:
        return None
    seen = 0
    for bucket in sorted(dist):
        seen += dist[bucket]
        if seen >= fraction * total:
            return bucket
    return max(dist)


def bucket_label(bucket):
    """Bucket i holds (2^(i-1), 2^i] µs."""
    if bucket is None:
        return "—"
    if bucket == 0:
        return "≤1 µs"
    return f"{fmt_us(2 ** (bucket - 1))}–{fmt_us(2 ** bucket)} µs"


def fmt_us(value):
    return f"{value:,}".replace(",", " ")


# ------------------------------------------------------------------------------------------
# Aggregation
# ------------------------------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def upper_median(values):
    """The median of buckets, taking the worse of the two middle ones for an even count."""
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def load(directory):
    meta = defaultdict(list)
    for line in (directory / "meta.tsv").read_text().splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            meta[key].append(value)
    clk_tck = int(meta["clk_tck"][0])
    runs = []
    for line in (directory / "runs.tsv").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) != 11 or fields[0] == "section":
            continue
        section, cell, value_bytes, conns, multiget, contender, repeat, position, rc, ticks, raw = (
            fields
        )
        raw_path = Path(raw)
        if not raw_path.is_absolute() and not raw_path.exists():
            raw_path = directory / raw_path
        text = raw_path.read_text(errors="replace") if raw_path.exists() else ""
        run = parse_memcaslap(text)
        run.update(
            section=section,
            cell=cell,
            value_bytes=int(value_bytes),
            conns=int(conns),
            multiget=int(multiget),
            contender=contender,
            repeat=int(repeat),
            position=int(position),
            rc=int(rc),
            raw=raw,
        )
        ok = run["rc"] == 0 and run.get("ops", 0) > 0 and "get_events" in run and ticks != "-"
        run["ok"] = ok
        if ok:
            run["cpu_us_per_op"] = int(ticks) / clk_tck * 1e6 / run["ops"]
            run["ops_per_s"] = run["tps"]
            gets = run.get("cmd_get", 0)
            run["miss_pct"] = 100.0 * run.get("get_misses", 0) / gets if gets else None
        runs.append(run)
    return meta, runs


def aggregate(runs, section, base):
    """Per cell and contender: medians, and the medians of the per-repeat ratios to `base`."""
    cells = []
    contenders = []
    by_key = defaultdict(list)
    for run in runs:
        if run["section"] != section:
            continue
        if run["cell"] not in cells:
            cells.append(run["cell"])
        if run["contender"] not in contenders:
            contenders.append(run["contender"])
        by_key[run["cell"], run["contender"]].append(run)
    if base in contenders:
        contenders.remove(base)
        contenders.insert(0, base)
    rows = {}
    for cell in cells:
        base_by_repeat = {r["repeat"]: r for r in by_key[cell, base] if r["ok"]}
        for contender in contenders:
            group = by_key[cell, contender]
            good = [r for r in group if r["ok"]]
            ops_ratios, cpu_ratios = [], []
            for r in good:
                b = base_by_repeat.get(r["repeat"])
                if b:
                    ops_ratios.append(r["ops_per_s"] / b["ops_per_s"])
                    if b["cpu_us_per_op"] > 0:
                        cpu_ratios.append(r["cpu_us_per_op"] / b["cpu_us_per_op"])
            rows[cell, contender] = {
                "runs": len(group),
                "ok": len(good),
                "ops_per_s": median([r["ops_per_s"] for r in good]),
                "ops_ratio": median(ops_ratios),
                "get_avg_us": median([r.get("get_avg_us") for r in good]),
                "get_p99_bucket": upper_median([r.get("get_p99_bucket") for r in good]),
                "cpu_us_per_op": median([r["cpu_us_per_op"] for r in good]),
                "cpu_ratio": median(cpu_ratios),
                "miss_pct": median([r.get("miss_pct") for r in good]),
                "evictions_per_set": median(
                    [
                        int(r["stats"]["evictions"]) / r["cmd_set"]
                        for r in good
                        if "evictions" in r["stats"] and r.get("cmd_set")
                    ]
                ),
                "spill_hits_per_get": median(
                    [
                        int(r["stats"]["spill_hits"]) / r["cmd_get"]
                        for r in good
                        if "spill_hits" in r["stats"] and r.get("cmd_get")
                    ]
                ),
                "spill_errors": sum(int(r["stats"].get("spill_errors", 0)) for r in good),
            }
    return cells, contenders, rows


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------

def num(value, digits=0, suffix=""):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}".replace(",", " ") + suffix


def ratio(value):
    return "—" if value is None else f"{value:.2f}×"


def table(cells, contenders, rows, base, base_label, spill=False):
    head = [
        "cell",
        "server",
        "kops/s",
        f"ops/s ×{base_label}",
        "get avg µs",
        "get p99 bucket",
        "CPU µs/op",
        f"CPU/op ×{base_label}",
        "get misses",
    ]
    head.append("evictions/set")
    if spill:
        head.append("spill hits/get")
    head.append("runs ok")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for cell in cells:
        for contender in contenders:
            row = rows.get((cell, contender))
            if row is None:
                continue
            ops = row["ops_per_s"]
            fields = [
                cell,
                contender,
                num(ops / 1000 if ops is not None else None, 1),
                "1" if contender == base else ratio(row["ops_ratio"]),
                num(row["get_avg_us"]),
                bucket_label(row["get_p99_bucket"]),
                num(row["cpu_us_per_op"], 2),
                "1" if contender == base else ratio(row["cpu_ratio"]),
                num(row["miss_pct"], 1, " %"),
            ]
            fields.append(num(row["evictions_per_set"], 2))
            if spill:
                fields.append(num(row["spill_hits_per_get"], 2))
            fields.append(f"{row['ok']}/{row['runs']}")
            lines.append("| " + " | ".join(fields) + " |")
    return lines


def verdict(ok):
    return "**met**" if ok else "**not met**"


def main_target(cells, rows):
    """shardlru ≥ 0.9× memcached's ops/s, CPU/op ≤ 1.1×, p99 bucket no worse, in every cell."""
    failures = []
    worst_ops = worst_cpu = None
    complete = bool(cells)
    for cell in cells:
        ours, theirs = rows.get((cell, "shardlru")), rows.get((cell, MAIN_BASE))
        if not ours or not theirs or ours["ops_ratio"] is None or ours["cpu_ratio"] is None:
            complete = False
            failures.append(f"{cell}: no result")
            continue
        worst_ops = ours["ops_ratio"] if worst_ops is None else min(worst_ops, ours["ops_ratio"])
        worst_cpu = ours["cpu_ratio"] if worst_cpu is None else max(worst_cpu, ours["cpu_ratio"])
        if ours["ops_ratio"] < 0.9:
            failures.append(f"{cell}: ops/s {ours['ops_ratio']:.2f}×")
        if ours["cpu_ratio"] > 1.1:
            failures.append(f"{cell}: CPU/op {ours['cpu_ratio']:.2f}×")
        a, b = ours["get_p99_bucket"], theirs["get_p99_bucket"]
        if a is None or b is None or a > b:
            failures.append(f"{cell}: p99 {bucket_label(a)} vs {bucket_label(b)}")
    met = complete and not failures
    detail = (
        f"lowest ops/s ratio {ratio(worst_ops)}, highest CPU/op ratio {ratio(worst_cpu)}, "
        f"over {len(cells)} cell(s)"
    )
    if failures:
        detail += "; short in " + "; ".join(failures)
    return met, detail


def spill_target(cells, rows):
    """Spill on ≥ 0.8× spill off's ops/s, p99 bucket not higher, in every spill cell."""
    failures = []
    worst = None
    complete = bool(cells)
    for cell in cells:
        on, off = rows.get((cell, "spill-on")), rows.get((cell, SPILL_BASE))
        if not on or not off or on["ops_ratio"] is None:
            complete = False
            failures.append(f"{cell}: no result")
            continue
        worst = on["ops_ratio"] if worst is None else min(worst, on["ops_ratio"])
        if on["ops_ratio"] < 0.8:
            failures.append(f"{cell}: ops/s {on['ops_ratio']:.2f}×")
        a, b = on["get_p99_bucket"], off["get_p99_bucket"]
        if a is None or b is None or a > b:
            failures.append(f"{cell}: p99 {bucket_label(a)} vs {bucket_label(b)}")
    met = complete and not failures
    detail = f"lowest ops/s ratio {ratio(worst)}, over {len(cells)} cell(s)"
    if failures:
        detail += "; short in " + "; ".join(failures)
    return met, detail


def svg_chart(panels):
    """Grouped bars of median kops/s: one group per cell, one bar per server; one panel per
    section. `panels` is a list of (title, cells, contenders, rows)."""
    width = 1280
    left, right = 70, 20
    panel_height = 330
    top_legend = 30
    height = top_legend + panel_height * len(panels) + 10
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#FFFFFF" stroke="none"/>',
    ]
    font = 'font-family="sans-serif"'
    # Legend: every server that appears.
    seen = []
    for _, _, contenders, _ in panels:
        seen += [c for c in contenders if c not in seen]
    x = left
    for contender in seen:
        color = COLORS.get(contender, "#000000")
        out.append(f'<rect x="{x}" y="8" width="14" height="14" fill="{color}"/>')
        out.append(
            f'<text x="{x + 20}" y="19" {font} font-size="12" fill="#000000">'
            f"{html.escape(contender)}</text>"
        )
        x += max(110, 30 + 7 * len(contender))
    for index, (title, cells, contenders, rows) in enumerate(panels):
        y0 = top_legend + index * panel_height
        plot_top, plot_bottom = y0 + 30, y0 + panel_height - 60
        values = [
            rows[c, s]["ops_per_s"] / 1000
            for c in cells
            for s in contenders
            if (c, s) in rows and rows[c, s]["ops_per_s"] is not None
        ]
        peak = max(values) if values else 1.0
        step = nice_step(peak / 5)
        top_value = step * math.ceil(peak / step) if peak > 0 else 1.0
        out.append(
            f'<text x="{left}" y="{y0 + 18}" {font} font-size="14" font-weight="bold" '
            f'fill="#000000">{html.escape(title)}</text>'
        )

        def y_of(value):
            return plot_bottom - (plot_bottom - plot_top) * value / top_value

        tick = 0.0
        while tick <= top_value + 1e-9:
            y = y_of(tick)
            out.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                'stroke="#DDDDDD" stroke-width="1"/>'
            )
            out.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" {font} font-size="11" text-anchor="end" '
                f'fill="#000000">{tick:g}</text>'
            )
            tick += step
        out.append(
            f'<text x="16" y="{(plot_top + plot_bottom) / 2:.1f}" {font} font-size="12" '
            f'text-anchor="middle" fill="#000000" transform="rotate(-90 16 '
            f'{(plot_top + plot_bottom) / 2:.1f})">kops/s (median)</text>'
        )
        out.append(
            f'<line x1="{left}" y1="{plot_bottom}" x2="{width - right}" y2="{plot_bottom}" '
            'stroke="#000000" stroke-width="1"/>'
        )
        if cells:
            group_width = (width - left - right) / len(cells)
            bar_width = min(40.0, group_width * 0.8 / max(1, len(contenders)))
            for ci, cell in enumerate(cells):
                gx = left + ci * group_width
                start = gx + (group_width - bar_width * len(contenders)) / 2
                for si, contender in enumerate(contenders):
                    row = rows.get((cell, contender))
                    if not row or row["ops_per_s"] is None:
                        continue
                    value = row["ops_per_s"] / 1000
                    bx = start + si * bar_width
                    by = y_of(value)
                    out.append(
                        f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar_width - 2:.1f}" '
                        f'height="{plot_bottom - by:.1f}" '
                        f'fill="{COLORS.get(contender, "#000000")}">'
                        f"<title>{html.escape(cell)}, {html.escape(contender)}: "
                        f"{value:.1f} kops/s</title></rect>"
                    )
                    out.append(
                        f'<text x="{bx + (bar_width - 2) / 2:.1f}" y="{by - 3:.1f}" {font} '
                        f'font-size="9" text-anchor="middle" fill="#333333">{value:.0f}</text>'
                    )
                lines = split_label(cell)
                for li, text in enumerate(lines):
                    out.append(
                        f'<text x="{gx + group_width / 2:.1f}" y="{plot_bottom + 16 + 14 * li}" '
                        f'{font} font-size="11" text-anchor="middle" fill="#000000">'
                        f"{html.escape(text)}</text>"
                    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def split_label(cell):
    """'4 KiB, 64 conns, multi-get 16' -> two lines."""
    parts = [p.strip() for p in cell.split(",")]
    if len(parts) <= 1:
        return parts
    return [", ".join(parts[:-1]), parts[-1]]


def nice_step(raw):
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def report(directory):
    meta, runs = load(directory)
    first = lambda key, default="?": meta.get(key, [default])[0]  # noqa: E731
    main_cells, main_contenders, main_rows = aggregate(runs, "main", MAIN_BASE)
    spill_cells, spill_contenders, spill_rows = aggregate(runs, "spill", SPILL_BASE)
    failed = [r for r in runs if not r["ok"]]

    md = ["## Server", ""]
    md.append(
        "`benches/server.sh` drives the same `memcaslap` runs against real memcached and "
        "`shardlru-server` with each of its stores, each server started fresh for each run on "
        "127.0.0.1 with a port of its own. "
        f"{first('repeats')} repeat(s) of {first('seconds')} s per run; in each repeat every "
        "server runs once per cell, the order rotating from repeat to repeat. Figures are "
        "medians over the repeats; ratios are medians of the per-repeat ratios."
        + (" **QUICK=1: a smoke test, not a measurement.**" if first("quick") == "1" else "")
    )
    md.append("")
    md.append(
        f"Machine: {first('nproc')} cores ({first('cpu_model')}), {first('mem_total')}; "
        f"{first('kernel')}. {first('memcached_version')}; memcaslap {first('memcaslap_version')}; "
        f"shardlru at {first('git_rev')}; {first('date')}."
    )
    md.append("")
    md.append(
        f"**The client and the server share the machine's {first('nproc')} cores**: memcaslap "
        f"runs {first('client_threads')} threads and every server {first('server_threads')} "
        "worker threads, unpinned, so each figure is what a server does while competing with "
        "its load generator for the same CPUs, and a server that spends less CPU per operation "
        "leaves more to the client and shows more ops/s."
    )
    md.append("")
    md.append("### Targets")
    md.append("")
    met, detail = main_target(main_cells, main_rows)
    md.append(
        "- shardlru-server ≥ 0.9× memcached's ops/s and server CPU per op ≤ 1.1× memcached's, "
        f"at {first('server_threads')} threads; p99 bucket no worse: {verdict(met)} ({detail})."
    )
    met, detail = spill_target(spill_cells, spill_rows)
    md.append(
        "- With spill on, ops/s ≥ 0.8× of spill off, p99 bucket unchanged: "
        f"{verdict(met)} ({detail}; \"unchanged\" read as not in a higher bucket)."
    )
    md.append("")
    if failed:
        md.append(
            f"**{len(failed)} run(s) failed** and are left out of the figures: "
            + "; ".join(f"{r['cell']} {r['contender']} repeat {r['repeat']} "
                        f"(rc {r['rc']}, {r['raw']})" for r in failed)
        )
        md.append("")
    md.append("### memcached and shardlru-server's stores")
    md.append("")
    md.append(
        f"9:1 get:set, every server with `-t {first('server_threads')}` and "
        f"`-m {first('memory_mb')}` (room for every item a run sets, so no store evicts). "
        "shardlru, mutex-lru and dashmap are `shardlru-server --backend NAME`."
    )
    md.append("")
    md += table(main_cells, main_contenders, main_rows, MAIN_BASE, "memcached")
    md.append("")
    md.append("### Spill to disk")
    md.append("")
    md.append(
        f"shardlru-server (shardlru store) with `-m {first('spill_mb')}`, far less than the "
        "items a run sets, so that once full every set evicts one item: spill-on adds "
        "`--spill DIR` (a fresh temporary directory), which writes each evicted item to disk "
        "and reads it back on a miss; spill-off is the same server without it, whose gets of "
        "evicted keys miss."
    )
    md.append("")
    md += table(spill_cells, spill_contenders, spill_rows, SPILL_BASE, "spill off", spill=True)
    md.append("")
    md.append("![ops/s per server and cell](server.svg)")
    md.append("")
    md.append("### How it is measured")
    md.append("")
    md.append(
        "- **The load**: memcaslap with the `-F` file below: fixed 16-byte keys, fixed-size "
        "values, 1 set for 9 gets. Each set stores a key not set before (memcaslap overwrites "
        "nothing without `-o`) and each get asks for keys already set (from a window of 10k "
        "keys per connection), so a get misses only where the store dropped the key; a run "
        "starts from an empty, freshly started server."
    )
    md.append(
        "- **kops/s**: memcaslap's `TPS` (its operations over its measured run time), in "
        "thousands. An operation is a key: a multi-get of 16 keys counts 16 gets (memcaslap's "
        "`Ops` is `cmd_get + cmd_set`)."
    )
    md.append(
        "- **get avg µs** and **get p99 bucket**: from memcaslap's `Get Statistics`, one event "
        "per get command (a multi-get of 16 keys is one event). Its `Log2 Dist` histogram puts "
        "a latency of t µs in bucket i, the smallest i with 2^i ≥ t, so bucket i holds "
        "(2^(i-1), 2^i] µs; the p99 bucket is the one that holds the 99th percentile. Over "
        "repeats, the median bucket (the higher middle one for an even count)."
    )
    md.append(
        "- **CPU µs/op**: the server process's utime + stime (fields 14 and 15 of "
        f"`/proc/PID/stat`, all threads, in clock ticks of {first('clk_tck')} Hz) read just "
        "before and just after the memcaslap run, over the operations memcaslap counted."
    )
    md.append(
        "- **×memcached**, **×spill off**: the median, over repeats, of the ratio of this "
        "server's figure to the baseline's figure in the same repeat and cell."
    )
    md.append(
        "- **get misses**: memcaslap's `get_misses` over `cmd_get`. **evictions/set**: the "
        "server's `stats` `evictions` over memcaslap's `cmd_set` (with spill on, an item "
        "read back from disk goes back into memory and evicts another, so it can pass 1); "
        "**spill hits/get**: `spill_hits` over `cmd_get` (both read after the run)."
    )
    md.append("")
    md.append("Commands (each server gets a free port, shown as PORT):")
    md.append("")
    md.append("```")
    md += meta.get("server_cmd", [])
    md += meta.get("memcaslap_cmd", [])
    md.append("```")
    md.append("")
    for cfg in meta.get("cfg_file", []):
        name, _, body = cfg.partition("=")
        md.append(f"`{name}`: " + " / ".join(f"`{line}`" for line in body.split("\\n") if line))
        md.append("")
    md.append(
        f"Raw memcaslap output, with each server's `stats` after the run: `{first('raw_dir')}`. "
        f"Command: `{first('command')}`."
    )
    md.append("")
    text = "\n".join(md)
    (directory / "server.md").write_text(text)
    panels = [("memcached and shardlru-server's stores", main_cells, main_contenders, main_rows)]
    if spill_cells:
        panels.append(("Spill to disk (shardlru-server)", spill_cells, spill_contenders,
                       spill_rows))
    (directory / "server.svg").write_text(svg_chart(panels))
    sys.stdout.write(text)
    return 1 if failed else 0


def stats(port):
    """Prints a server's `stats` reply (STAT lines), or nothing if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as sock:
            sock.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            sock.sendall(b"quit\r\n")
    except OSError as error:
        print(f"# stats failed: {error}")
        return 0
    sys.stdout.write(buf.decode(errors="replace").replace("\r\n", "\n"))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "stats":
        return stats(argv[2])
    if len(argv) == 3 and argv[1] == "report":
        return report(Path(argv[2]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
