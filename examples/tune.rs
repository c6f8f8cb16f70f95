//! The shard-count tuner: measures the cache under a workload for several shard counts (and,
//! if asked, several pending-callback caps) and recommends a shard count.
//!
//! ```text
//! cargo run --release --example tune                  # the default workload, every core
//! cargo run --release --example tune -- --help        # the flags that describe your workload
//! cargo run --release --example tune -- --callback-us 200 --max-pending 1,8,8192
//! cargo run --release --example tune -- --trace tests/data/traces/OLTP.lis.zst --capacity 1000
//! cargo run --release --example tune -- --plot docs/shard-count.svg
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
//!   callbacks it delivers). One get in [`SAMPLE_EVERY`] is timed, to keep the clock's cost off
//!   the others;
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
//! hit-ratio loss stays under 0.5 points (`tune/recommend.rs`), and prints the builder line.
//!
//! With `--max-pending 1,8,8192` (and a blocking callback, `--callback-us 200`) it measures the
//! pending-callback cap instead, at the library's default shard count: how many threads may
//! block in the callback at once, against throughput, get latency, the longest insert (the
//! longest a caller was held up delivering callbacks), callbacks run per second, purges skipped
//! at the cap, and the backlog of evicted entries the cap leaves queued. A configuration whose
//! backlog passes [`BACKLOG_LIMIT`] entries is cut short and marked.
//!
//! With `--trace FILE` it replays a trace (the formats of `tests/data/traces/`) once per
//! configuration from a cold cache, the threads taking turns in small chunks so that together
//! they keep the trace's order; with one thread and one shard the hit ratio is the exact LRU
//! figure of the traces' README.

#[path = "tune/args.rs"]
mod args;
#[path = "tune/recommend.rs"]
mod recommend;

use args::{Args, Command, USAGE, USAGE_EXIT_CODE, UsageError, Workload};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recommend::{MAX_HIT_RATIO_LOSS, Point, THROUGHPUT_TOLERANCE};
use shardlru::{Cache, MIN_DEFAULT_SHARE, SHARDS_PER_CORE, ShardStats, Stats};
use shardlru_workloads::{keys, trace};
use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// Warm-up before each measured synthetic run: fills the cache and brings it to steady state.
const WARM_UP: Duration = Duration::from_secs(1);
/// One read-through get in this many is timed.
const SAMPLE_EVERY: u64 = 16;
/// Length of the precomputed synthetic key stream. Each thread cycles through its own segment of
/// it (disjoint segments of one random stream are independent samples), so two threads never
/// fall into step on the same keys, which would inflate both the hit ratio and the contention;
/// between two visits to one position the threads together issue the whole stream, far more
/// requests than a cache can hold. The same stream serves every configuration.
const STREAM_LEN: usize = 1 << 22;
/// Requests of a trace a thread takes at a time. The threads take chunks in turn from one
/// cursor, so together they replay the trace in nearly its order: a thread that is preempted
/// holds back at most one chunk, where a fixed split (every other request, say) lets one thread
/// run a whole time slice ahead of the other, and the cache then sees two distant parts of the
/// trace at once, at a lower hit ratio.
const TRACE_CHUNK: usize = 32;
/// Callback work from this many microseconds up is a sleep (blocking I/O); below it, a spin: a
/// shorter sleep overshoots by the operating system's timer slack.
const SLEEP_FROM_US: f64 = 50.0;
/// A measured run stops early once this many evicted entries wait in the queue (the cap left
/// them there faster than the callbacks deliver them); the queue would otherwise grow without
/// bound.
const BACKLOG_LIMIT: usize = 1 << 22;
/// Share of the workers' time waiting for a core above which the tuner warns that the machine
/// is busy.
const BUSY_WAIT: f64 = 0.05;
/// How often the driving thread looks at the clock, the backlog and the progress bar.
const TICK: Duration = Duration::from_millis(20);
/// Slices each synthetic configuration's measurement is cut into (see [`SyntheticRun`]).
const SLICES: usize = 4;
/// Entries all the configurations' caches may hold together, kept warm for their slices; above
/// it, each configuration is measured in one piece (one cache at a time).
const WARM_ENTRIES: usize = 1 << 23;
/// Seed of the synthetic key stream.
const SEED: u64 = 0x5eed;

/// A worker's phase, set by the driving thread: warming up (nothing recorded) …
const WARMING: u8 = 0;
/// … measuring …
const MEASURING: u8 = 1;
/// … and done.
const STOPPING: u8 = 2;

fn main() -> ExitCode {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let args = match args::parse(std::env::args().skip(1), cores) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{}\n\n{USAGE}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Err(error) => return usage_error(&error),
    };
    match run(&args, cores) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(error)) => usage_error(&error),
        Err(Failure::Other(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(error: &UsageError) -> ExitCode {
    eprintln!("error: {error}\n{USAGE}");
    ExitCode::from(USAGE_EXIT_CODE)
}

/// Why a run failed: the input (exit status 2) or something else (1).
enum Failure {
    Usage(UsageError),
    Other(Box<dyn Error>),
}

impl<E: Into<Box<dyn Error>>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Other(error.into())
    }
}

/// What the eviction callback does with each entry.
#[derive(Clone, Copy, Debug)]
enum Work {
    Spin(Duration),
    Sleep(Duration),
}

impl Work {
    fn from_micros(us: f64) -> Self {
        let duration = Duration::from_secs_f64(us / 1e6);
        if us >= SLEEP_FROM_US { Work::Sleep(duration) } else { Work::Spin(duration) }
    }

    fn run(self) {
        match self {
            Work::Spin(d) if d.is_zero() => {}
            Work::Spin(d) => {
                let start = Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
            Work::Sleep(d) => thread::sleep(d),
        }
    }

    fn describe(self) -> String {
        match self {
            Work::Spin(d) if d.is_zero() => "no work".to_owned(),
            Work::Spin(d) => format!("{} of CPU work (a spin)", format_ns(d.as_nanos() as u64)),
            Work::Sleep(d) => {
                format!("{} blocked (a sleep, like I/O)", format_ns(d.as_nanos() as u64))
            }
        }
    }
}

/// The requests every configuration replays.
enum Requests {
    /// A Zipf key stream, timed for `seconds` after the warm-up.
    Synthetic { keys: Vec<u64>, read_ratio: f64, seconds: f64 },
    /// A trace, replayed once.
    Trace { keys: Vec<u64>, name: String },
}

/// One configuration to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Config {
    shards: usize,
    /// `None`: the library's default cap.
    max_pending: Option<usize>,
}

/// The statistics a measured run differs by.
#[derive(Clone, Copy, Default)]
struct Counts {
    hits: u64,
    misses: u64,
    acquisitions: u64,
    contended: u64,
    skipped: u64,
}

impl Counts {
    fn of(stats: &Stats) -> Self {
        Counts {
            hits: stats.hits,
            misses: stats.misses,
            acquisitions: stats.lock_acquisitions,
            contended: stats.lock_contended,
            skipped: stats.purges_skipped,
        }
    }

    fn plus(self, other: Counts) -> Self {
        Counts {
            hits: self.hits + other.hits,
            misses: self.misses + other.misses,
            acquisitions: self.acquisitions + other.acquisitions,
            contended: self.contended + other.contended,
            skipped: self.skipped + other.skipped,
        }
    }

    fn since(self, before: Counts) -> Self {
        Counts {
            hits: self.hits - before.hits,
            misses: self.misses - before.misses,
            acquisitions: self.acquisitions - before.acquisitions,
            contended: self.contended - before.contended,
            skipped: self.skipped - before.skipped,
        }
    }
}

/// One measured configuration.
struct Row {
    config: Config,
    ops: u64,
    seconds: f64,
    /// Sampled read-through get latencies, in nanoseconds.
    latency: Histogram<u64>,
    /// The longest insert of the run, warm-up included, in nanoseconds (timed only when
    /// comparing caps).
    longest_insert: u64,
    counts: Counts,
    /// Callbacks that did their work while measuring (counted only when comparing caps).
    callbacks: u64,
    /// Evicted entries still queued when the measurement ended.
    backlog: usize,
    /// Stopped early at [`BACKLOG_LIMIT`].
    cut_short: bool,
    /// The workers' time on a core and waiting for one while measuring, if the system reports
    /// it.
    sched: Option<Sched>,
    threads: usize,
    /// The workers that can run at once: the threads, at most the cores.
    parallel: usize,
    /// The busiest shard's share of the lock acquisitions.
    hottest_shard: f64,
}

impl Row {
    fn new(config: Config, seconds: f64, counts: Counts, callbacks: u64) -> Self {
        Row {
            config,
            ops: 0,
            seconds,
            latency: new_histogram(),
            longest_insert: 0,
            counts,
            callbacks,
            backlog: 0,
            cut_short: false,
            sched: Some(Sched::default()),
            threads: 1,
            parallel: 1,
            hottest_shard: 0.0,
        }
    }

    /// The share of the workers' time spent runnable but without a core.
    fn cpu_wait(&self) -> Option<f64> {
        self.sched.map(|s| s.wait_ns as f64 / (self.seconds * 1e9 * self.threads as f64))
    }

    /// An estimate of the throughput with the cores to themselves: operations per second of the
    /// workers' time on a core, times the workers that can run at once. Time taken by other
    /// processes drops out; time a worker spent blocked (a parked lock waiter, a sleeping
    /// callback) drops out too, so it flatters blocking configurations.
    fn throughput_alone(&self) -> Option<f64> {
        self.sched
            .filter(|s| s.run_ns > 0)
            .map(|s| self.ops as f64 / (s.run_ns as f64 / 1e9) * self.parallel as f64)
    }

    /// The throughput the recommendation and the plot go by: measured, or on a busy machine
    /// the estimate of [`throughput_alone`](Self::throughput_alone).
    fn rated_throughput(&self, busy: bool) -> f64 {
        if busy { self.throughput_alone().unwrap_or(0.0) } else { self.throughput() }
    }

    fn throughput(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    fn hit_ratio(&self) -> f64 {
        let gets = self.counts.hits + self.counts.misses;
        if gets == 0 { 0.0 } else { self.counts.hits as f64 / gets as f64 }
    }

    fn contention(&self) -> f64 {
        if self.counts.acquisitions == 0 {
            0.0
        } else {
            self.counts.contended as f64 / self.counts.acquisitions as f64
        }
    }

    fn point(&self, busy: bool) -> Point {
        Point {
            shards: self.config.shards,
            throughput: self.rated_throughput(busy),
            hit_ratio: self.hit_ratio(),
        }
    }
}

fn run(args: &Args, cores: usize) -> Result<(), Failure> {
    let started = Instant::now();
    if let Some(path) = &args.plot {
        // Refuse an unwritable path now rather than after the measurements.
        let writable = match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
        .and_then(|()| std::fs::File::create(path));
        if let Err(e) = writable {
            let message = format!("--plot: cannot write {}: {e}", path.display());
            return Err(Failure::Usage(UsageError(message)));
        }
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

    let requests = match &args.workload {
        Workload::Synthetic { keys, zipf, read_ratio, seconds } => Requests::Synthetic {
            keys: keys::zipf(*keys, *zipf, STREAM_LEN, SEED),
            read_ratio: *read_ratio,
            seconds: *seconds,
        },
        Workload::Trace(path) => {
            let keys = trace::read(path)
                .map_err(|e| Failure::Usage(UsageError(format!("--trace: {e}"))))?;
            if keys.is_empty() {
                let message = format!("--trace: {} holds no requests", path.display());
                return Err(Failure::Usage(UsageError(message)));
            }
            let name = path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            Requests::Trace { keys, name }
        }
    };

    print_inputs(args, cores, work, &requests, &configs);
    let rounds = match &requests {
        Requests::Synthetic { .. } => slices(args, configs.len()),
        Requests::Trace { .. } => 1,
    };
    let progress = ProgressBar::new((rounds * configs.len()) as u64 * 1000);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg}")
            .expect("a valid template"),
    );
    let tick = |step: usize, config: Config, fraction: f64, what: &str| {
        progress.set_position(step as u64 * 1000 + (fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        progress.set_message(format!(
            "{}, {}: {what}",
            shards(config.shards),
            cap_name(config.max_pending)
        ));
    };
    let mut rows: Vec<Row> = match &requests {
        Requests::Synthetic { keys, read_ratio, seconds } => {
            let slice = seconds / rounds as f64;
            if rounds == 1 {
                // One cache at a time.
                let mut rows = Vec::new();
                for (index, &config) in configs.iter().enumerate() {
                    let mut run = SyntheticRun::new(args, config, work, keys.len())?;
                    let tick = |f: f64, what: &str| tick(index, config, f, what);
                    run.slice(keys, *read_ratio, slice, true, &tick);
                    rows.push(run.finish());
                }
                rows
            } else {
                let mut runs = configs
                    .iter()
                    .map(|&config| SyntheticRun::new(args, config, work, keys.len()))
                    .collect::<Result<Vec<_>, _>>()?;
                for round in 0..rounds {
                    let unfinished = runs.iter_mut().enumerate().filter(|(_, r)| !r.row.cut_short);
                    for (index, run) in unfinished {
                        let (config, step) = (run.row.config, round * configs.len() + index);
                        let tick = |f: f64, what: &str| tick(step, config, f, what);
                        run.slice(keys, *read_ratio, slice, round + 1 == rounds, &tick);
                    }
                }
                runs.into_iter().map(SyntheticRun::finish).collect()
            }
        }
        Requests::Trace { keys, .. } => {
            let mut rows = Vec::new();
            for (index, &config) in configs.iter().enumerate() {
                let callback = CallbackState::new(work, args.max_pending.is_some());
                let cache = build(args.capacity, config, &callback)?;
                let tick = |f: f64, what: &str| tick(index, config, f, what);
                rows.push(measure_trace(&cache, config, args.threads, keys, &callback, &tick));
                // The callback's work is switched off: the entries still queued drain at once.
                drop(cache);
            }
            rows
        }
    };
    for row in &mut rows {
        row.threads = args.threads;
        row.parallel = args.threads.min(cores);
    }
    progress.finish_and_clear();

    let groups: Vec<Vec<&Row>> = caps
        .iter()
        .map(|&cap| rows.iter().filter(|r| r.config.max_pending == cap).collect())
        .collect();
    print_table(args, &groups);
    let busy = warn_if_busy(args, cores, &rows, groups.iter().any(|g| g.len() > 1));
    let recommended: Vec<Option<usize>> = groups
        .iter()
        .map(|group| print_recommendation(args, cores, default_shards, busy, group))
        .collect();
    if let Some(path) = &args.plot {
        if groups.iter().all(|g| g.len() < 2) {
            println!("\nno plot: --plot needs at least two shard counts");
            // Created empty when the path was checked.
            let _ = std::fs::remove_file(path);
        } else {
            plot(path, args, busy, &groups, &recommended)
                .map_err(|e| format!("--plot {}: {e}", path.display()))?;
            println!("\nplot written to {}", path.display());
        }
    }
    println!("\ntook {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// How many slices each synthetic configuration is measured in: [`SLICES`], or one when caps
/// are compared (a worker may be stuck delivering a backlog at the end of a slice, and
/// releasing it would drain the backlog the next slice should find) or when the caches would
/// not all fit in [`WARM_ENTRIES`].
fn slices(args: &Args, configs: usize) -> usize {
    let fits = args.capacity.saturating_mul(configs) <= WARM_ENTRIES;
    if args.max_pending.is_none() && fits { SLICES } else { 1 }
}

/// What one configuration's eviction callback shares with the driving thread.
struct CallbackState {
    work: Work,
    /// Switched off once the measurement ends: the entries still queued then drain without the
    /// work (a backlog of blocking callbacks would otherwise take minutes).
    working: AtomicBool,
    /// Count the callbacks that did their work in `ran` (only when comparing caps: one shared
    /// counter costs every eviction a contended cache line).
    count: bool,
    ran: AtomicU64,
}

impl CallbackState {
    fn new(work: Work, count: bool) -> Arc<Self> {
        Arc::new(CallbackState {
            work,
            working: AtomicBool::new(true),
            count,
            ran: AtomicU64::new(0),
        })
    }
}

fn build(
    capacity: usize,
    config: Config,
    callback: &Arc<CallbackState>,
) -> Result<Cache<u64, u64>, Failure> {
    let mut builder =
        Cache::<u64, u64>::builder().capacity(capacity).shards(config.shards).name("tune");
    if let Some(cap) = config.max_pending {
        builder = builder.max_pending_callbacks(cap);
    }
    let state = Arc::clone(callback);
    let cache = builder
        .on_evict(move |_cache, _evicted| {
            // Relaxed: a switch and a statistic, read by nothing that needs ordering.
            if state.working.load(Relaxed) {
                state.work.run();
                if state.count {
                    state.ran.fetch_add(1, Relaxed);
                }
            }
        })
        .build()
        .map_err(|e| Failure::Usage(UsageError(format!("{} shards: {e}", config.shards))))?;
    Ok(cache)
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to an hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// One worker thread's operations and what it records of them.
struct Recorder<'a> {
    cache: &'a Cache<u64, u64>,
    /// Whether the measured phase has begun: only then is anything recorded.
    measuring: bool,
    /// Whether this thread ever saw the measured phase (not if a callback held it throughout).
    measured: bool,
    /// This thread's scheduling figures when the measured phase began, if the system reports
    /// them.
    sched_at_start: Option<Sched>,
    /// This thread's time on a core and waiting for one while measuring.
    sched: Sched,
    /// Also time every insert (the calls that purge, so run callbacks), keeping the longest,
    /// warm-up included.
    time_inserts: bool,
    ops: u64,
    reads: u64,
    /// Sampled read-through get latencies, in nanoseconds.
    latency: Histogram<u64>,
    longest_insert: u64,
}

impl<'a> Recorder<'a> {
    fn new(cache: &'a Cache<u64, u64>, time_inserts: bool) -> Self {
        Recorder {
            cache,
            measuring: false,
            measured: false,
            sched_at_start: None,
            sched: Sched::default(),
            time_inserts,
            ops: 0,
            reads: 0,
            latency: new_histogram(),
            longest_insert: 0,
        }
    }

    /// Enters the measured phase.
    fn start_measuring(&mut self) {
        self.measuring = true;
        self.measured = true;
        self.sched_at_start = Sched::of_this_thread();
    }

    /// Leaves the measured phase.
    fn stop_measuring(&mut self) {
        if let (true, Some(start), Some(now)) =
            (self.measuring, self.sched_at_start, Sched::of_this_thread())
        {
            self.sched = now.since(start);
        }
        self.measuring = false;
    }

    /// A get, and on a miss the insert that fills the entry. One in [`SAMPLE_EVERY`] is timed.
    #[inline]
    fn read_through(&mut self, key: u64) {
        self.reads += 1;
        self.ops += u64::from(self.measuring);
        let start = (self.measuring && self.reads % SAMPLE_EVERY == 0).then(Instant::now);
        if self.cache.get(&key).is_none() {
            self.fill(key);
        }
        if let Some(start) = start {
            self.latency.saturating_record(start.elapsed().as_nanos() as u64);
        }
    }

    /// A plain insert.
    #[inline]
    fn insert(&mut self, key: u64) {
        self.ops += u64::from(self.measuring);
        self.fill(key);
    }

    #[inline]
    fn fill(&mut self, key: u64) {
        // Timed in every phase: a caller stuck delivering a backlog may have entered the
        // insert before the measurement began.
        if self.time_inserts {
            let start = Instant::now();
            self.cache.insert(key, key);
            self.longest_insert = self.longest_insert.max(start.elapsed().as_nanos() as u64);
        } else {
            self.cache.insert(key, key);
        }
    }

    /// Adds this worker's records to `row`.
    fn add_to(self, row: &mut Row) {
        row.ops += self.ops;
        row.latency.add(self.latency).expect("histograms with the same bounds");
        row.longest_insert = row.longest_insert.max(self.longest_insert);
        row.sched = match (row.sched, self.sched_at_start) {
            (sum, _) if !self.measured => sum,
            (Some(sum), Some(_)) => Some(sum.plus(self.sched)),
            _ => None,
        };
    }
}

/// The busiest shard's share of the lock acquisitions between two snapshots (`before` empty:
/// since the cache was built). Sharding cannot spread one key: under Zipf traffic the shard of
/// the most popular key keeps at least that key's share, however many shards there are.
fn hottest_shard(before: &[ShardStats], after: &[ShardStats]) -> f64 {
    let taken =
        |i: usize| after[i].lock_acquisitions - before.get(i).map_or(0, |s| s.lock_acquisitions);
    let total: u64 = (0..after.len()).map(taken).sum();
    let most = (0..after.len()).map(taken).max().unwrap_or(0);
    if total == 0 { 0.0 } else { most as f64 / total as f64 }
}

/// A thread's time on a core and time runnable but waiting for one, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Sched {
    run_ns: u64,
    wait_ns: u64,
}

impl Sched {
    /// The calling thread's figures so far, where the system reports them (Linux: the first
    /// two fields of `/proc/thread-self/schedstat`). With no more threads than cores, the wait
    /// is time other processes took.
    fn of_this_thread() -> Option<Self> {
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut fields = schedstat.split_whitespace().map(str::parse::<u64>);
        Some(Sched { run_ns: fields.next()?.ok()?, wait_ns: fields.next()?.ok()? })
    }

    fn since(self, start: Sched) -> Sched {
        Sched {
            run_ns: self.run_ns.saturating_sub(start.run_ns),
            wait_ns: self.wait_ns.saturating_sub(start.wait_ns),
        }
    }

    fn plus(self, other: Sched) -> Sched {
        Sched { run_ns: self.run_ns + other.run_ns, wait_ns: self.wait_ns + other.wait_ns }
    }
}

/// A configuration under the synthetic workload, measured in slices: the configurations take
/// turns, a slice each, so that a change in the machine's load between the first and the last
/// falls on all of them alike. Its cache stays warm between slices.
struct SyntheticRun {
    cache: Cache<u64, u64>,
    callback: Arc<CallbackState>,
    row: Row,
    /// The workers, each with its own part of the key stream, kept from slice to slice.
    workers: Vec<Worker>,
    /// Lock acquisitions per shard while measuring.
    acquisitions: Vec<u64>,
    warm: bool,
}

/// One synthetic worker's place in the key stream and its random source, kept from slice to
/// slice.
struct Worker {
    /// This worker's own part of the stream, which it cycles through.
    segment: std::ops::Range<usize>,
    /// The next position to request, inside `segment`.
    next: usize,
    rng: SmallRng,
}

impl Worker {
    fn advance(&mut self) {
        self.next =
            if self.next + 1 == self.segment.end { self.segment.start } else { self.next + 1 };
    }
}

impl SyntheticRun {
    fn new(args: &Args, config: Config, work: Work, keys: usize) -> Result<Self, Failure> {
        let callback = CallbackState::new(work, args.max_pending.is_some());
        let cache = build(args.capacity, config, &callback)?;
        let workers = (0..args.threads)
            .map(|t| {
                let segment = t * keys / args.threads..(t + 1) * keys / args.threads;
                Worker {
                    next: segment.start,
                    segment,
                    rng: SmallRng::seed_from_u64(SEED + 1 + t as u64),
                }
            })
            .collect();
        Ok(SyntheticRun {
            acquisitions: vec![0; cache.shard_count()],
            cache,
            callback,
            row: Row::new(config, 0.0, Counts::default(), 0),
            workers,
            warm: false,
        })
    }

    /// Runs the workers for `seconds` of measurement, after the warm-up if this is the first
    /// slice. `tick` gets the fraction of the slice done.
    fn slice(
        &mut self,
        keys: &[u64],
        read_ratio: f64,
        seconds: f64,
        last: bool,
        tick: &dyn Fn(f64, &str),
    ) {
        let phase = AtomicU8::new(if self.warm { MEASURING } else { WARMING });
        let warm_up = if self.warm { 0.0 } else { WARM_UP.as_secs_f64() };
        let total = warm_up + seconds;
        let (cache, callback) = (&self.cache, &*self.callback);
        let workers = std::mem::take(&mut self.workers);
        let finished = thread::scope(|s| {
            let handles: Vec<_> = workers
                .into_iter()
                .map(|mut worker| {
                    let phase = &phase;
                    s.spawn(move || {
                        let mut recorder = Recorder::new(cache, callback.count);
                        loop {
                            // Relaxed: the phase only steers the loop; the driver joins the
                            // thread.
                            match phase.load(Relaxed) {
                                STOPPING => break,
                                MEASURING if !recorder.measuring => recorder.start_measuring(),
                                _ => {}
                            }
                            let key = keys[worker.next];
                            worker.advance();
                            if worker.rng.random::<f64>() < read_ratio {
                                recorder.read_through(key);
                            } else {
                                recorder.insert(key);
                            }
                        }
                        recorder.stop_measuring();
                        (worker, recorder)
                    })
                })
                .collect();

            let start = Instant::now();
            while start.elapsed().as_secs_f64() < warm_up {
                thread::sleep(TICK);
                tick(start.elapsed().as_secs_f64() / total, "warming up");
            }
            let before = Counts::of(&cache.stats());
            let shards_before = cache.shard_stats();
            let ran_before = callback.ran.load(Relaxed);
            phase.store(MEASURING, Relaxed);
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < seconds {
                thread::sleep(TICK.min(Duration::from_secs_f64(seconds)));
                tick((warm_up + start.elapsed().as_secs_f64()) / total, "measuring");
                if cache.pending_evictions() > BACKLOG_LIMIT {
                    self.row.cut_short = true;
                    break;
                }
            }
            self.row.seconds += start.elapsed().as_secs_f64();
            let stats = cache.stats();
            self.row.counts = self.row.counts.plus(Counts::of(&stats).since(before));
            self.row.callbacks += callback.ran.load(Relaxed) - ran_before;
            for (sum, (after, before)) in
                self.acquisitions.iter_mut().zip(cache.shard_stats().iter().zip(&shards_before))
            {
                *sum += after.lock_acquisitions - before.lock_acquisitions;
            }
            self.row.backlog = stats.queued;
            phase.store(STOPPING, Relaxed);
            if last || self.row.cut_short {
                // No more slices: a worker stuck delivering a backlog finishes at once.
                callback.working.store(false, Relaxed);
            }
            handles.into_iter().map(|h| h.join().expect("a worker panicked")).collect::<Vec<_>>()
        });
        for (worker, recorder) in finished {
            recorder.add_to(&mut self.row);
            self.workers.push(worker);
        }
        self.warm = true;
    }

    /// The measured row; the queued entries drain without the callback's work.
    fn finish(self) -> Row {
        self.callback.working.store(false, Relaxed);
        let mut row = self.row;
        let total: u64 = self.acquisitions.iter().sum();
        let most = self.acquisitions.iter().copied().max().unwrap_or(0);
        row.hottest_shard = if total == 0 { 0.0 } else { most as f64 / total as f64 };
        drop(self.cache);
        row
    }
}

fn measure_trace(
    cache: &Cache<u64, u64>,
    config: Config,
    threads: usize,
    keys: &[u64],
    callback: &CallbackState,
    tick: &dyn Fn(f64, &str),
) -> Row {
    let cursor = AtomicUsize::new(0);
    let start = Instant::now();
    let recorders: Vec<Recorder<'_>> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let cursor = &cursor;
                s.spawn(move || {
                    let mut recorder = Recorder::new(cache, callback.count);
                    recorder.start_measuring();
                    // Relaxed: the cursor only hands out disjoint chunks (a read-modify-write
                    // never hands one out twice); the keys themselves are shared read-only.
                    loop {
                        let from = cursor.fetch_add(TRACE_CHUNK, Relaxed);
                        if from >= keys.len() {
                            break;
                        }
                        for &key in &keys[from..keys.len().min(from + TRACE_CHUNK)] {
                            recorder.read_through(key);
                        }
                    }
                    recorder.stop_measuring();
                    recorder
                })
            })
            .collect();
        while !workers.iter().all(|w| w.is_finished()) {
            thread::sleep(TICK);
            tick(cursor.load(Relaxed) as f64 / keys.len() as f64, "replaying");
        }
        workers.into_iter().map(|w| w.join().expect("a worker panicked")).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let stats = cache.stats();
    callback.working.store(false, Relaxed);
    let mut row = Row::new(config, seconds, Counts::of(&stats), callback.ran.load(Relaxed));
    row.hottest_shard = hottest_shard(&[], &cache.shard_stats());
    row.backlog = stats.queued;
    for recorder in recorders {
        recorder.add_to(&mut row);
    }
    row
}

fn print_inputs(args: &Args, cores: usize, work: Work, requests: &Requests, configs: &[Config]) {
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
    println!("eviction callback: {} per entry; max_pending_callbacks: {cap}", work.describe());
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

fn print_table(args: &Args, groups: &[Vec<&Row>]) {
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
    if args.max_pending.is_some() {
        columns.extend([
            ("longest insert", (|r, _| format_ns(r.longest_insert)) as fn(&Row, f64) -> String),
            ("callbacks/s", |r, _| format!("{:.0}", r.callbacks as f64 / r.seconds)),
            ("skipped/s", |r, _| format!("{:.0}", r.counts.skipped as f64 / r.seconds)),
            ("backlog", |r, _| {
                let mut cell = grouped(r.backlog as u64, ',');
                if r.cut_short {
                    cell += &format!(" (limit: stopped at {:.1} s)", r.seconds);
                }
                cell
            }),
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
}

/// Whether other processes took the cores from the workers (more than [`BUSY_WAIT`] of their
/// time waiting for one, with no more threads than cores); if so, says so. Throughput and
/// contention are understated then (two threads that seldom run at once seldom collide), and
/// the recommendation goes by the estimate of `Row::throughput_alone` instead.
fn warn_if_busy(args: &Args, cores: usize, rows: &[Row], sweep: bool) -> bool {
    if args.threads > cores || rows.iter().any(|r| r.throughput_alone().is_none()) {
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
fn print_recommendation(
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
        "    let cache = shardlru::Cache::<K, V>::builder().capacity({}).shards({chosen})",
        grouped(args.capacity as u64, '_')
    );
    if let Some(cap) = cap {
        line += &format!(".max_pending_callbacks({cap})");
    }
    println!("{line}.build()?;");
    println!(
        "the library's default here is {} ({SHARDS_PER_CORE} x {cores} cores, rounded up to a \
         power of two, at most capacity / {MIN_DEFAULT_SHARE}){}",
        shards(default_shards),
        if default_shards == chosen { ": the same" } else { "" }
    );
    Some(chosen)
}

/// Colours of the plotted series, one per cap.
const SERIES_COLORS: [(u8, u8, u8); 4] =
    [(31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189)];

/// A plotted line: its name, colour and points.
type Series = (String, RGBColor, Vec<(f64, f64)>);

/// One panel of the plot: a y axis, the series to draw on it (name, colour, points), a
/// threshold line, and the recommended points to circle.
struct Panel {
    y_desc: &'static str,
    y_range: std::ops::Range<f64>,
    series: Vec<Series>,
    threshold: (String, f64),
    recommended: Vec<(f64, f64)>,
    legend: SeriesLabelPosition,
}

/// Draws throughput (top) and hit ratio (bottom) against the shard count, on a log2 axis.
fn plot(
    path: &Path,
    args: &Args,
    busy: bool,
    groups: &[Vec<&Row>],
    recommended: &[Option<usize>],
) -> Result<(), Box<dyn Error>> {
    let x = |row: &Row| f64::from(row.config.shards.trailing_zeros());
    // Only sweeps of shard counts are drawn, each with its recommendation.
    let (groups, recommended): (Vec<&Vec<&Row>>, Vec<Option<usize>>) =
        groups.iter().zip(recommended).filter(|(g, _)| g.len() > 1).unzip();
    let rows = || groups.iter().flat_map(|g| g.iter());
    let throughput = |r: &Row| r.rated_throughput(busy) / 1e6;
    let best = rows().map(|r| throughput(r)).fold(0.0, f64::max);
    let hit_ratios = || rows().map(|r| r.hit_ratio() * 100.0);
    let (hr_min, hr_max) = (hit_ratios().fold(100.0, f64::min), hit_ratios().fold(0.0, f64::max));
    let hr_pad = (hr_max - hr_min).max(MAX_HIT_RATIO_LOSS) * 0.5 + MAX_HIT_RATIO_LOSS;
    let baseline =
        |g: &[&Row]| g.iter().min_by_key(|r| r.config.shards).map_or(0.0, |r| r.hit_ratio());
    let series_name = |g: &[&Row]| match g[0].config.max_pending {
        None => "measured".to_owned(),
        Some(cap) => format!("max_pending_callbacks({cap})"),
    };
    let color = |i: usize| {
        let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
        RGBColor(r, g, b)
    };
    let chosen: Vec<&Row> = groups
        .iter()
        .zip(&recommended)
        .filter_map(|(g, shards)| g.iter().find(|r| Some(r.config.shards) == *shards).copied())
        .collect();
    let first_baseline = groups.first().map_or(0.0, |g| baseline(g)) * 100.0;
    let baseline_shards = rows().map(|r| r.config.shards).min().unwrap_or(1);

    let throughput = Panel {
        y_desc: if busy { "estimated throughput, M ops/s" } else { "throughput, M ops/s" },
        y_range: 0.0..best * 1.15,
        series: groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (series_name(g), color(i), g.iter().map(|r| (x(r), throughput(r))).collect())
            })
            .collect(),
        threshold: (
            format!("{:.0} % below the best", THROUGHPUT_TOLERANCE * 100.0),
            best * (1.0 - THROUGHPUT_TOLERANCE),
        ),
        recommended: chosen.iter().map(|r| (x(r), throughput(r))).collect(),
        legend: SeriesLabelPosition::LowerRight,
    };
    let hit_ratio = Panel {
        y_desc: "hit ratio, %",
        y_range: (hr_min - hr_pad)..(hr_max + hr_pad),
        series: groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    series_name(g),
                    color(i),
                    g.iter().map(|r| (x(r), r.hit_ratio() * 100.0)).collect(),
                )
            })
            .collect(),
        threshold: (
            format!("{MAX_HIT_RATIO_LOSS} points below {baseline_shards} shard(s)"),
            first_baseline - MAX_HIT_RATIO_LOSS,
        ),
        recommended: chosen.iter().map(|r| (x(r), r.hit_ratio() * 100.0)).collect(),
        legend: SeriesLabelPosition::LowerLeft,
    };

    let title = match &args.workload {
        Workload::Synthetic { keys, zipf, read_ratio, .. } => format!(
            "{} threads, capacity {}, Zipf {zipf} over {} keys, {:.0} % gets, callback {} µs",
            args.threads,
            grouped(args.capacity as u64, ','),
            grouped(*keys, ','),
            read_ratio * 100.0,
            args.callback_us,
        ),
        Workload::Trace(path) => format!(
            "{} threads, capacity {}, trace {}",
            args.threads,
            grouped(args.capacity as u64, ','),
            path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ),
    };
    let x_max = rows().map(|r| x(r)).fold(0.0, f64::max);
    let root = SVGBackend::new(path, (800, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&title, ("sans-serif", 16))?;
    let busiest = rows().filter_map(|r| r.cpu_wait()).fold(0.0, f64::max);
    let root = if busy {
        let warning = format!(
            "busy machine: the workers waited for a core up to {:.0} % of the time; \
             contention is understated; throughput estimated from time on a core",
            busiest * 100.0
        );
        root.titled(&warning, ("sans-serif", 13).into_font().color(&RED))?
    } else {
        root
    };
    let (top, bottom) = root.split_vertically(300);
    for (area, panel) in [(&top, throughput), (&bottom, hit_ratio)] {
        draw_panel(area, panel, x_max)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: Panel,
    x_max: f64,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let x_range = -0.3..x_max + 0.3;
    let gray = RGBColor(110, 110, 110);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), panel.y_range)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| {
            let whole = (x - x.round()).abs() < 1e-6 && *x >= 0.0;
            if whole { (1u64 << x.round() as u32).to_string() } else { String::new() }
        })
        .x_desc("shards (log scale)")
        .y_desc(panel.y_desc)
        .draw()?;
    let (label, y) = panel.threshold;
    chart
        .draw_series(LineSeries::new([(x_range.start, y), (x_range.end, y)], gray.stroke_width(1)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], gray));
    for (name, color, points) in panel.series {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    if !panel.recommended.is_empty() {
        chart
            .draw_series(panel.recommended.iter().map(|&p| Circle::new(p, 9, RED.stroke_width(2))))?
            .label("recommended")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(panel.legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// `1 shard`, `8 shards`.
fn shards(n: usize) -> String {
    if n == 1 { "1 shard".to_owned() } else { format!("{n} shards") }
}

fn cap_name(cap: Option<usize>) -> String {
    match cap {
        None => "default cap".to_owned(),
        Some(cap) => format!("cap {cap}"),
    }
}

/// `1234567` as `1,234,567` (or with `_`, as a Rust literal).
fn grouped(n: u64, separator: char) -> String {
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
fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}
