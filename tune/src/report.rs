//! What the tuner prints: its inputs, the table of measured configurations, a warning when
//! other processes took the cores, and the recommendation with the builder line that applies
//! it; and the number formats they share with the plot.

use crate::cli::{Args, Workload};
use crate::measure::{Config, Requests, Row, SAMPLE_EVERY, TRACE_CHUNK, WARM_UP, Work};
use crate::recommend::{self, MAX_HIT_RATIO_LOSS, Point, THROUGHPUT_TOLERANCE};
use shardlru::{MIN_DEFAULT_SHARE, SHARDS_PER_CORE};

/// Share of the workers' time waiting for a core above which the tuner warns that the machine
/// is busy.
const BUSY_WAIT: f64 = 0.05;

/// The inputs, before anything is measured: threads and cores, capacity, the workload, the
/// callback's work and the caps, and how get latency is sampled.
pub fn print_inputs(
    args: &Args,
    cores: usize,
    work: Work,
    requests: &Requests,
    configs: &[Config],
) {
    println!(
        "shardlru tuner: {} threads on {cores} cores, capacity {}",
        args.threads,
        grouped(args.capacity as u64, ',')
    );
    match (requests, &args.workload) {
        (
            Requests::Synthetic { read_ratio, seconds, .. },
            Workload::Synthetic { keys, zipf, .. },
        ) => {
            println!(
                "workload: read-through, Zipf s = {zipf} over {} keys; {:.0} % gets (an insert on a \
                 miss), {:.0} % inserts",
                grouped(*keys, ','),
                read_ratio * 100.0,
                (1.0 - read_ratio) * 100.0
            );
            println!(
                "each configuration: {:.0} s warm-up, {seconds} s measured; {} configurations, about {:.0} s",
                WARM_UP.as_secs_f64(),
                configs.len(),
                configs.len() as f64 * (WARM_UP.as_secs_f64() + seconds)
            );
        }
        (Requests::Trace { keys, name }, _) => println!(
            "workload: trace {name}, {} requests replayed once per configuration (read-through, \
             cold cache), the threads taking turns in chunks of {TRACE_CHUNK}",
            grouped(keys.len() as u64, ',')
        ),
        _ => unreachable!("requests are built from the workload"),
    }
    let cap = match &args.max_pending {
        None => format!("the default ({})", shardlru::DEFAULT_MAX_PENDING_CALLBACKS),
        Some(caps) => caps.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
    };
    let bound = args
        .max_queued
        .map_or_else(String::new, |bound| format!("; max_queued: {}", grouped(bound as u64, ',')));
    println!(
        "eviction callback: {} per entry; max_pending_callbacks: {cap}{bound}",
        work.describe()
    );
    if let Some(threads) = args.background {
        println!(
            "delivery: {threads} background thread{} (spawn_purge_threads); the writes only \
             queue evicted entries",
            if threads == 1 { "" } else { "s" }
        );
    }
    println!(
        "get latency: one read-through get in {SAMPLE_EVERY} timed (the get, and on a miss the insert and its purge)\n"
    );
}

/// The last column: how long the workers waited for a core (a busy machine).
const CPU_WAIT: Column = ("CPU wait", |r, _| {
    r.cpu_wait().map_or_else(|| "?".to_owned(), |wait| format!("{:.0} %", wait * 100.0))
});

/// A column of the results table: its header, and a cell from a row and the hit ratio of the
/// row's baseline (the smallest shard count with the same cap).
type Column = (&'static str, fn(&Row, f64) -> String);

/// The results table, one line per configuration, grouped by cap; a loss column when shard
/// counts are compared, and the delivery columns when the delivery is watched
/// ([`Args::watches_delivery`]).
pub fn print_table(args: &Args, groups: &[Vec<&Row>]) {
    let mut columns: Vec<Column> = vec![("shards", |r, _| r.config.shards.to_string())];
    if args.max_pending.is_some() {
        columns.push(("max_pending", |r, _| cap_name(r.config.max_pending)));
    }
    columns.extend([
        ("Mops/s", (|r, _| format!("{:.3}", r.throughput() / 1e6)) as fn(&Row, f64) -> String),
        ("est. Mops/s", |r, _| {
            r.throughput_alone().map_or_else(|| "?".to_owned(), |t| format!("{:.3}", t / 1e6))
        }),
        ("get p50", |r, _| format_ns(r.latency.value_at_quantile(0.5))),
        ("get p99", |r, _| format_ns(r.latency.value_at_quantile(0.99))),
        ("contention", |r, _| format!("{:.2} %", r.contention() * 100.0)),
        ("hot shard", |r, _| format!("{:.1} %", r.hottest_shard * 100.0)),
        ("hit ratio", |r, _| format!("{:.2} %", r.hit_ratio() * 100.0)),
    ]);
    let sweep = groups.iter().any(|g| g.len() > 1);
    if sweep {
        columns.push(("loss pts", |r, baseline| {
            format!("{:.2}", recommend::loss_points(baseline, r.hit_ratio()))
        }));
    }
    if args.watches_delivery() {
        columns.extend([
            ("longest insert", (|r, _| format_ns(r.longest_insert)) as fn(&Row, f64) -> String),
            ("callbacks/s", |r, _| format!("{:.0}", r.callbacks as f64 / r.seconds)),
            ("skipped/s", |r, _| format!("{:.0}", r.counts.skipped as f64 / r.seconds)),
            ("queued", |r, _| {
                let mut cell = grouped(r.queued as u64, ',');
                if r.cut_short {
                    cell += &format!(" (limit: stopped at {:.1} s)", r.seconds);
                }
                cell
            }),
            ("peak queued", |r, _| grouped(r.queued_peak as u64, ',')),
        ]);
    }
    columns.push(CPU_WAIT);
    let columns = &columns;
    let cells: Vec<Vec<String>> = groups
        .iter()
        .flat_map(|group| {
            let baseline =
                group.iter().min_by_key(|r| r.config.shards).map_or(0.0, |r| r.hit_ratio());
            group
                .iter()
                .map(move |row| columns.iter().map(|(_, cell)| cell(row, baseline)).collect())
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            cells.iter().map(|line| line[i].chars().count()).chain([name.len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |texts: Vec<&str>| {
        let padded: Vec<String> =
            texts.iter().zip(&widths).map(|(text, &width)| format!("{text:>width$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(name, _)| *name).collect());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    if sweep {
        let min_shards = groups.iter().flatten().map(|r| r.config.shards).min().unwrap_or(1);
        println!("loss pts: hit ratio lost against {}, in percentage points", shards(min_shards));
    }
    if args.watches_delivery() {
        println!(
            "queued: evicted entries queued when the measurement ended; peak queued: the most \
             queued at once, warm-up included"
        );
    }
}

/// With `--max-queued`: the highest peak of the queue over the configurations, against the
/// bound. The library keeps the queue below the bound plus the threads that write at once (a
/// write pushes its evicted entry before it finds the bound reached).
pub fn print_queue_bound(args: &Args, rows: &[Row]) {
    let (Some(bound), Some(worst)) = (args.max_queued, rows.iter().max_by_key(|r| r.queued_peak))
    else {
        return;
    };
    let ceiling = bound.saturating_add(args.threads);
    println!(
        "\nmax_queued {}: the most entries queued at once was {} ({}, {}); the library keeps \
         it below the bound plus the {} writing threads ({}): {}",
        grouped(bound as u64, ','),
        grouped(worst.queued_peak as u64, ','),
        shards(worst.config.shards),
        cap_name(worst.config.max_pending),
        args.threads,
        grouped(ceiling as u64, ','),
        if worst.queued_peak < ceiling { "held" } else { "NOT held" }
    );
}

/// Whether other processes took the cores from the workers (more than [`BUSY_WAIT`] of their
/// time waiting for one, with no more threads than cores, the `--background` delivery threads
/// counted: past that, the wait may be the tuner's own); if so, says so. Throughput and
/// contention are understated then (two threads that seldom run at once seldom collide), and
/// the recommendation goes by the estimate of `Row::throughput_alone` instead.
pub fn warn_if_busy(args: &Args, cores: usize, rows: &[Row], sweep: bool) -> bool {
    let own_threads = args.threads.saturating_add(args.background.unwrap_or(0));
    if own_threads > cores || rows.iter().any(|r| r.throughput_alone().is_none()) {
        return false;
    }
    let Some((worst, wait)) =
        rows.iter().filter_map(|r| Some((r, r.cpu_wait()?))).max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return false;
    };
    if wait <= BUSY_WAIT {
        return false;
    }
    println!(
        "\nwarning: other processes kept the workers waiting for a core up to {:.0} % of the time \
         ({}; the CPU wait column).\nThroughput and contention are understated (threads that \
         seldom run at once seldom collide){}\nRun again on a quiet machine.",
        wait * 100.0,
        shards(worst.config.shards),
        if sweep {
            ", so the recommendation goes by\nest. Mops/s, the throughput estimated from the \
             workers' time on a core."
        } else {
            "."
        }
    );
    true
}

/// Prints the recommendation for one group of rows (one cap) and returns the shard count.
pub fn print_recommendation(
    args: &Args,
    cores: usize,
    default_shards: usize,
    busy: bool,
    group: &[&Row],
) -> Option<usize> {
    if group.len() < 2 {
        return None;
    }
    let points: Vec<Point> = group.iter().map(|r| r.point(busy)).collect();
    let rec = recommend::recommend(&points)?;
    let cap = group[0].config.max_pending;
    let chosen = rec.chosen.shards;
    println!();
    if let Some(cap) = cap {
        println!("with max_pending_callbacks({cap}):");
    }
    let best = format!(
        "the best {}throughput ({:.3} M ops/s, at {})",
        if busy { "estimated " } else { "" },
        rec.fastest.throughput / 1e6,
        shards(rec.fastest.shards)
    );
    if rec.within_tolerance {
        println!(
            "recommendation: {}, the smallest count within {:.0} % of {best}\nwhose hit ratio \
             loses less than {MAX_HIT_RATIO_LOSS} points against {} (it loses {:.2}):",
            shards(chosen),
            THROUGHPUT_TOLERANCE * 100.0,
            shards(group.iter().map(|r| r.config.shards).min().unwrap_or(1)),
            rec.loss,
        );
    } else {
        println!(
            "recommendation: {}. Every count within {:.0} % of {best}\nloses \
             {MAX_HIT_RATIO_LOSS} points of hit ratio or more; this is the fastest that does not \
             (it loses {:.2}):",
            shards(chosen),
            THROUGHPUT_TOLERANCE * 100.0,
            rec.loss,
        );
    }
    let mut line = format!(
        "shardlru::Cache::<K, V>::builder().capacity({}).shards({chosen})",
        grouped(args.capacity as u64, '_')
    );
    if let Some(cap) = cap {
        line += &format!(".max_pending_callbacks({cap})");
    }
    if let Some(bound) = args.max_queued {
        line += &format!(".max_queued({})", grouped(bound as u64, '_'));
    }
    match args.background {
        None => println!("    let cache = {line}.build()?;"),
        Some(threads) => {
            println!("    let cache = std::sync::Arc::new({line}.build()?);");
            println!("    let purge_threads = cache.spawn_purge_threads({threads})?;");
        }
    }
    println!(
        "the library's default here is {} ({SHARDS_PER_CORE} x {cores} cores, rounded up to a \
         power of two, at most capacity / {MIN_DEFAULT_SHARE}){}",
        shards(default_shards),
        if default_shards == chosen { ": the same" } else { "" }
    );
    Some(chosen)
}

/// `1 shard`, `8 shards`.
pub fn shards(n: usize) -> String {
    if n == 1 { "1 shard".to_owned() } else { format!("{n} shards") }
}

/// `default cap`, `cap 8`.
pub fn cap_name(cap: Option<usize>) -> String {
    match cap {
        None => "default cap".to_owned(),
        Some(cap) => format!("cap {cap}"),
    }
}

/// `1234567` as `1,234,567` (or with `_`, as a Rust literal).
pub fn grouped(n: u64, separator: char) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(separator);
        }
        out.push(digit);
    }
    out
}

/// A duration in nanoseconds, in the unit that suits it.
pub fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}
