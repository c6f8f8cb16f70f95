//! Running the workload: each configuration (a shard count, and a pending-callback cap) gets a
//! cache whose eviction callback does the configured [`Work`], worker threads that issue the
//! requests, and a driving thread that moves them through warm-up and measurement, watches the
//! queue and the clock, and collects a [`Row`] per configuration.
//!
//! Synthetic keys come from one seeded Zipf stream ([`STREAM_LEN`]) that every configuration
//! replays; each configuration is measured in [`SLICES`] slices taken in turn with the others
//! (see [`SyntheticRun`]). A trace is replayed once per configuration from a cold cache, the
//! threads taking [`TRACE_CHUNK`] requests at a time from one cursor. Only one read-through
//! get in [`SAMPLE_EVERY`] is timed, and the workers' time on a core and waiting for one comes
//! from the system ([`Sched`]), so that a busy machine can be told apart.

use crate::Failure;
use crate::cli::{self, Args, Workload};
use crate::recommend::Point;
use crate::report::{cap_name, format_ns, shards};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shardlru::{Cache, PurgeThreads, ShardStats, Stats};
use shardlru_workloads::{keys, trace};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// Warm-up before each measured synthetic run: fills the cache and brings it to steady state.
pub const WARM_UP: Duration = Duration::from_secs(1);
/// One read-through get in this many is timed.
pub const SAMPLE_EVERY: u64 = 16;
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
pub const TRACE_CHUNK: usize = 32;
/// Callback work from this many microseconds up is a sleep (blocking I/O); below it, a spin: a
/// shorter sleep overshoots by the operating system's timer slack.
pub const SLEEP_FROM_US: f64 = 50.0;
/// A measured run stops early once this many evicted entries wait in the queue (the cap left
/// them there faster than the callbacks deliver them); the queue would otherwise grow without
/// bound.
pub const QUEUED_LIMIT: usize = 1 << 22;
/// How often the driving thread looks at the clock, the queue and the progress bar.
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

/// What the eviction callback does with each entry.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// CPU work: a busy loop for this long.
    Spin(Duration),
    /// Blocking work (I/O): a sleep this long.
    Sleep(Duration),
}

impl Work {
    /// `us` microseconds of work: a spin below [`SLEEP_FROM_US`], a sleep from there up.
    pub fn from_micros(us: f64) -> Self {
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

    /// `100 ns of CPU work (a spin)`, for the printed inputs.
    pub fn describe(self) -> String {
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
pub enum Requests {
    /// A Zipf key stream, timed for `seconds` after the warm-up.
    Synthetic { keys: Vec<u64>, read_ratio: f64, seconds: f64 },
    /// A trace, replayed once.
    Trace { keys: Vec<u64>, name: String },
}

/// One configuration to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub shards: usize,
    /// `None`: the library's default cap.
    pub max_pending: Option<usize>,
}

/// The statistics a measured run differs by.
#[derive(Clone, Copy, Default)]
pub struct Counts {
    pub hits: u64,
    pub misses: u64,
    pub acquisitions: u64,
    pub contended: u64,
    pub skipped: u64,
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
pub struct Row {
    pub config: Config,
    pub ops: u64,
    pub seconds: f64,
    /// Sampled read-through get latencies, in nanoseconds.
    pub latency: Histogram<u64>,
    /// The longest insert of the run, warm-up included, in nanoseconds (timed only when
    /// comparing caps).
    pub longest_insert: u64,
    pub counts: Counts,
    /// Callbacks that did their work while measuring (counted only when comparing caps).
    pub callbacks: u64,
    /// Evicted entries still queued when the measurement ended.
    pub queued: usize,
    /// The most evicted entries queued at once, warm-up included ([`Stats::queued_peak`]).
    pub queued_peak: usize,
    /// Stopped early at [`QUEUED_LIMIT`].
    pub cut_short: bool,
    /// The workers' time on a core and waiting for one while measuring, if the system reports
    /// it.
    pub sched: Option<Sched>,
    pub threads: usize,
    /// The workers that can run at once: the threads, at most the cores.
    pub parallel: usize,
    /// The busiest shard's share of the lock acquisitions.
    pub hottest_shard: f64,
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
            queued: 0,
            queued_peak: 0,
            cut_short: false,
            sched: Some(Sched::default()),
            threads: 1,
            parallel: 1,
            hottest_shard: 0.0,
        }
    }

    /// The share of the workers' time spent runnable but without a core.
    pub fn cpu_wait(&self) -> Option<f64> {
        self.sched.map(|s| s.wait_ns as f64 / (self.seconds * 1e9 * self.threads as f64))
    }

    /// An estimate of the throughput with the cores to themselves: operations per second of the
    /// workers' time on a core, times the workers that can run at once. Time taken by other
    /// processes drops out; time a worker spent blocked (a parked lock waiter, a sleeping
    /// callback) drops out too, so it flatters blocking configurations.
    pub fn throughput_alone(&self) -> Option<f64> {
        self.sched
            .filter(|s| s.run_ns > 0)
            .map(|s| self.ops as f64 / (s.run_ns as f64 / 1e9) * self.parallel as f64)
    }

    /// The throughput the recommendation and the plot go by: measured, or on a busy machine
    /// the estimate of [`throughput_alone`](Self::throughput_alone).
    pub fn rated_throughput(&self, busy: bool) -> f64 {
        if busy { self.throughput_alone().unwrap_or(0.0) } else { self.throughput() }
    }

    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    pub fn hit_ratio(&self) -> f64 {
        let gets = self.counts.hits + self.counts.misses;
        if gets == 0 { 0.0 } else { self.counts.hits as f64 / gets as f64 }
    }

    pub fn contention(&self) -> f64 {
        if self.counts.acquisitions == 0 {
            0.0
        } else {
            self.counts.contended as f64 / self.counts.acquisitions as f64
        }
    }

    pub fn point(&self, busy: bool) -> Point {
        Point {
            shards: self.config.shards,
            throughput: self.rated_throughput(busy),
            hit_ratio: self.hit_ratio(),
        }
    }
}

impl Requests {
    /// The requests `args` describe: the synthetic key stream, or the trace read whole. An
    /// unreadable or empty trace is a refusal of the command line.
    pub fn new(args: &Args) -> Result<Self, Failure> {
        Ok(match &args.workload {
            Workload::Synthetic { keys, zipf, read_ratio, seconds } => Requests::Synthetic {
                keys: keys::zipf(*keys, *zipf, STREAM_LEN, SEED),
                read_ratio: *read_ratio,
                seconds: *seconds,
            },
            Workload::Trace(path) => {
                let keys = trace::read(path)
                    .map_err(|e| Failure::Usage(cli::usage_error(format!("--trace: {e}"))))?;
                if keys.is_empty() {
                    let message = format!("--trace: {} holds no requests", path.display());
                    return Err(Failure::Usage(cli::usage_error(message)));
                }
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                Requests::Trace { keys, name }
            }
        })
    }
}

/// Measures every configuration under `requests`, showing progress on the terminal, and
/// returns their rows in the order of `configs`.
pub fn run(
    args: &Args,
    cores: usize,
    work: Work,
    requests: &Requests,
    configs: &[Config],
) -> Result<Vec<Row>, Failure> {
    let rounds = match requests {
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
    let mut rows: Vec<Row> = match requests {
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
                let callback = CallbackState::new(work, args.watches_delivery());
                let measured = build(args, config, &callback)?;
                let tick = |f: f64, what: &str| tick(index, config, f, what);
                let cache = &measured.cache;
                rows.push(measure_trace(cache, config, args.threads, keys, &callback, &tick));
                // The callback's work is switched off: the entries still queued drain at once.
                drop(measured);
            }
            rows
        }
    };
    for row in &mut rows {
        row.threads = args.threads;
        row.parallel = args.threads.min(cores);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// How many slices each synthetic configuration is measured in: [`SLICES`], or one when the
/// delivery is watched ([`Args::watches_delivery`]: a worker may be stuck delivering queued
/// entries at the end of a slice, and releasing it, or delivery threads working on between
/// slices, would drain the queue the next slice should find) or when the caches would not all
/// fit in [`WARM_ENTRIES`].
fn slices(args: &Args, configs: usize) -> usize {
    let fits = args.capacity.saturating_mul(configs) <= WARM_ENTRIES;
    if !args.watches_delivery() && fits { SLICES } else { 1 }
}

/// What one configuration's eviction callback shares with the driving thread.
struct CallbackState {
    work: Work,
    /// Switched off once the measurement ends: the entries still queued then drain without the
    /// work (a long queue of blocking callbacks would otherwise take minutes).
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

/// A measured cache, and its delivery threads with `--background`.
struct Measured {
    /// Declared first, so dropped first: the drop stops and joins the threads and flushes the
    /// queue (quickly once the callback's work is switched off). They hold the cache till then.
    _delivery: Option<PurgeThreads<u64, u64>>,
    cache: Arc<Cache<u64, u64>>,
}

/// A cache for `config` and `args`' `--max-queued`, whose eviction callback does `callback`'s
/// work, with `--background` delivery threads started. A configuration the builder refuses is
/// a refusal of the command line.
fn build(args: &Args, config: Config, callback: &Arc<CallbackState>) -> Result<Measured, Failure> {
    let mut builder =
        Cache::<u64, u64>::builder().capacity(args.capacity).shards(config.shards).name("tune");
    if let Some(cap) = config.max_pending {
        builder = builder.max_pending_callbacks(cap);
    }
    if let Some(bound) = args.max_queued {
        builder = builder.max_queued(bound);
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
        .map_err(|e| Failure::Usage(cli::usage_error(format!("{} shards: {e}", config.shards))))?;
    let cache = Arc::new(cache);
    let delivery = match args.background {
        Some(threads) => Some(
            cache
                .spawn_purge_threads(threads)
                .map_err(|e| format!("--background {threads}: {e}"))?,
        ),
        None => None,
    };
    Ok(Measured { _delivery: delivery, cache })
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
        // Timed in every phase: a caller stuck delivering queued entries may have entered the
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
pub struct Sched {
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
    /// The cache, and its delivery threads with `--background`.
    measured: Measured,
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
        let callback = CallbackState::new(work, args.watches_delivery());
        let measured = build(args, config, &callback)?;
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
            acquisitions: vec![0; measured.cache.shard_count()],
            measured,
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
        let (cache, callback) = (&*self.measured.cache, &*self.callback);
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
                if cache.queued() > QUEUED_LIMIT {
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
            self.row.queued = stats.queued;
            phase.store(STOPPING, Relaxed);
            if last || self.row.cut_short {
                // No more slices: a worker stuck delivering queued entries finishes at once.
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

    /// The measured row; the queued entries drain without the callback's work (on the delivery
    /// threads' way out, with `--background`).
    fn finish(self) -> Row {
        self.callback.working.store(false, Relaxed);
        let mut row = self.row;
        let total: u64 = self.acquisitions.iter().sum();
        let most = self.acquisitions.iter().copied().max().unwrap_or(0);
        row.hottest_shard = if total == 0 { 0.0 } else { most as f64 / total as f64 };
        // The workers are joined: the high-water mark is the run's.
        row.queued_peak = self.measured.cache.stats().queued_peak;
        drop(self.measured);
        row
    }
}

/// Replays `keys` once, read-through, on `threads` threads that take [`TRACE_CHUNK`] requests
/// at a time from one cursor, and returns the row.
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
    row.queued = stats.queued;
    row.queued_peak = stats.queued_peak;
    for recorder in recorders {
        recorder.add_to(&mut row);
    }
    row
}
