//! The shard-count tuner: measures the cache under a workload for several shard counts (and,
//! if asked, several pending-callback caps) and recommends a shard count.
//!
//! ```text
//! cargo run --release -p shardlru-tune                  # the default workload, every core
//! cargo run --release -p shardlru-tune -- --help        # the flags that describe your workload
//! cargo run --release -p shardlru-tune -- --callback-us 200 --max-pending 1,8,8192
//! cargo run --release -p shardlru-tune -- --callback-us 200 --max-pending 1 --max-queued 1000
//! cargo run --release -p shardlru-tune -- --callback-us 200 --background 2 --shards 8
//! cargo run --release -p shardlru-tune -- --trace tests/data/traces/OLTP.lis.zst --capacity 1000
//! cargo run --release -p shardlru-tune -- --plot docs/shard-count.svg
//! ```
//!
//! With no arguments it runs a read-through workload on every available core: each operation
//! is a `get` (90 %), followed on a miss by an `insert` of the key, or a plain `insert` (10 %);
//! keys are Zipf-distributed (s = 1) over 1,000,000 keys, the capacity is 100,000, and the
//! eviction callback spends about 100 ns on each entry (a little work: a metric, a drop). Each
//! configuration is warmed up for a second, then measured for four, in four one-second slices
//! taken in turn with the other configurations (so that a change in the machine's load falls on
//! all of them alike); for shard counts 1, 2, 4, … up to 16 × the cores, that is about half a
//! minute on two cores.
//!
//! For each configuration it prints:
//!
//! * **throughput**: operations per second, over all threads, and an estimate of it with the
//!   cores to themselves (operations per second of the workers' time on a core, times the
//!   workers that can run at once), which a busy machine disturbs much less;
//! * **get p50 / p99**: the latency of a read-through get as its caller sees it: the `get`,
//!   and on a miss the `insert` that fills the entry, with the purge that insert runs (so the
//!   callbacks it delivers). One get in [`SAMPLE_EVERY`](measure::SAMPLE_EVERY) is timed, to
//!   keep the clock's cost off the others;
//! * **contention**: the share of shard-lock acquisitions that found the lock held
//!   ([`shardlru::Stats::contention_rate`]);
//! * **hot shard**: the busiest shard's share of the lock acquisitions (a fair share is
//!   1 / shards). Sharding cannot split one key: under Zipf traffic the shard that holds the most
//!   popular key keeps that key's share however many shards there are, and with enough threads
//!   its lock, not the shard count, limits the throughput;
//! * **hit ratio**, and its **loss** in percentage points against one shard (a single exact LRU):
//!   sharding splits the capacity, and an unlucky shard evicts while others have room;
//! * **CPU wait**: the share of the workers' time they were ready to run but had no core (Linux,
//!   from `/proc/thread-self/schedstat`). Above a few percent, other processes competed for the
//!   cores: threads that seldom run at once seldom collide, so contention and throughput are
//!   understated, and the tuner says so.
//!
//! It then recommends the smallest shard count within 5 % of the best throughput whose
//! hit-ratio loss stays under 0.5 points ([`recommend`]), and prints the builder line.
//!
//! With `--max-pending 1,8,8192` (and a blocking callback, `--callback-us 200`) it measures the
//! pending-callback cap instead, at the library's default shard count: how many threads may
//! block in the callback at once, against throughput, get latency, the longest insert (the
//! longest a caller was held up delivering callbacks), callbacks run per second, purges skipped
//! at the cap, and how many evicted entries the cap leaves queued. A configuration that leaves
//! more than [`QUEUED_LIMIT`](measure::QUEUED_LIMIT) queued is cut short and marked.
//!
//! `--max-queued N` bounds the queue in every configuration (`Builder::max_queued`: a write
//! that finds N entries queued delivers until fewer are), and `--background N` delivers the
//! evicted entries on N threads of the cache's own (`Cache::spawn_purge_threads`), so that
//! the writes only queue them. With either (or `--max-pending`) the table also shows the
//! delivery columns above and the peak queued (the most entries queued at once, warm-up
//! included); with `--max-queued` the tuner also says whether that peak stayed below the
//! bound plus the writing threads, as the library keeps it.
//!
//! With `--trace FILE` it replays a trace (the formats of `tests/data/traces/`) once per
//! configuration from a cold cache, the threads taking turns in small chunks so that together
//! they keep the trace's order; with one thread and one shard the hit ratio is the exact LRU
//! figure of the traces' README.
//!
//! The parts: [`cli`] reads the flags, [`measure`] runs the workload, [`report`] prints the
//! results, [`recommend`] holds the rule and [`plot`] draws the SVG; this file wires them.

mod cli;
mod measure;
mod plot;
mod recommend;
mod report;

use cli::Args;
use measure::{Config, Requests, Row, Work};
use shardlru::Cache;
use std::error::Error;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

fn main() -> ExitCode {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    // A refusal prints the message and the usage line and exits with status 2; `--help` prints
    // the help and exits with 0.
    let args = cli::parse(std::env::args_os(), cores).unwrap_or_else(|e| e.exit());
    match run(&args, cores) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(error)) => error.exit(),
        Err(Failure::Other(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Why a run failed: the input (a [`cli::usage_error`], exit status 2) or something else (1).
enum Failure {
    Usage(clap::Error),
    Other(Box<dyn Error>),
}

impl<E: Into<Box<dyn Error>>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Other(error.into())
    }
}

fn run(args: &Args, cores: usize) -> Result<(), Failure> {
    let started = Instant::now();
    if let Some(path) = &args.plot {
        // Refuse an unwritable path now rather than after the measurements.
        plot::create(path).map_err(|e| {
            Failure::Usage(cli::usage_error(format!(
                "--plot: cannot write {}: {e}",
                path.display()
            )))
        })?;
    }
    let work = Work::from_micros(args.callback_us);
    let default_shards =
        Cache::<u64, u64>::builder().capacity(args.capacity).build()?.shard_count();
    let shard_counts = args.shard_counts(cores, default_shards);
    let caps: Vec<Option<usize>> = match &args.max_pending {
        Some(caps) => caps.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    let configs: Vec<Config> = caps
        .iter()
        .flat_map(|&max_pending| {
            shard_counts.iter().map(move |&shards| Config { shards, max_pending })
        })
        .collect();

    let requests = Requests::new(args)?;
    report::print_inputs(args, cores, work, &requests, &configs);
    let rows = measure::run(args, cores, work, &requests, &configs)?;

    let groups: Vec<Vec<&Row>> = caps
        .iter()
        .map(|&cap| rows.iter().filter(|r| r.config.max_pending == cap).collect())
        .collect();
    report::print_table(args, &groups);
    report::print_queue_bound(args, &rows);
    let busy = report::warn_if_busy(args, cores, &rows, groups.iter().any(|g| g.len() > 1));
    let recommended: Vec<Option<usize>> = groups
        .iter()
        .map(|group| report::print_recommendation(args, cores, default_shards, busy, group))
        .collect();
    if let Some(path) = &args.plot {
        if groups.iter().all(|g| g.len() < 2) {
            println!("\nno plot: --plot needs at least two shard counts");
            // Created empty when the path was checked.
            let _ = std::fs::remove_file(path);
        } else {
            plot::plot(path, args, busy, &groups, &recommended)
                .map_err(|e| format!("--plot {}: {e}", path.display()))?;
            println!("\nplot written to {}", path.display());
        }
    }
    println!("\ntook {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
