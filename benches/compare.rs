//! Throughput against peers, measured in one run: five workloads × thread counts × contenders,
//! interleaved, then written up as `BENCHMARKS.md` and `benches/chart.svg`.
//!
//! ```text
//! cargo bench --bench compare                         # the full run (about 7 minutes on 2 cores)
//! SHARDLRU_BENCH_QUICK=1 cargo bench --bench compare  # a smoke run (about a minute)
//! ```
//!
//! (`benches/report.sh` runs this after the memory and isolation benches, whose sections it
//! folds into the same report.)
//!
//! # Method
//!
//! Single runs of a multithreaded cache swing by 2–3× on a shared machine, so the figures that
//! count are ratios between contenders measured side by side:
//!
//! * For each workload and thread count, every repeat runs each contender once, in an order
//!   rotated by one per repeat (A B C, B C A, …), so slow phases of the machine hit all alike.
//! * Each run builds a fresh cache (capacity 100,000, `u64` keys and values), warms it
//!   single-threaded, then starts its threads together on a barrier and lets them run for a
//!   fixed time, each over its own precomputed key stream (the same streams for every
//!   contender), checking a stop flag every [`CHUNK`] operations.
//! * A cell reports the median Mops/s over the repeats and the median of the per-repeat ratios
//!   to its baseline (quick_cache; quick_cache with a counting lifecycle for contenders with a
//!   counting eviction hook). An operation is one `get` (W1, W2, W4), one `insert` (W3), or
//!   one call of the cache's own loader (W1L).
//! * W1L is W1 (the same key streams) through each cache's loader API instead of `get` and
//!   `insert`: shardlru's `get_or_insert_with`, quick_cache's `get_or_insert_with`, moka's
//!   `get_with` ([`Contender::get_or_insert_with`]). The contenders without one (`Mutex<lru>`,
//!   `64xMutex<lru>`, dashmap) do not run it: the report says n/a.
//!
//! Every run also prints a `RESULT` line on stdout (tab-separated: workload, threads,
//! contender, repeat, Mops/s, hit ratio) for scripts such as `benches/interleave.sh`.

#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/settings.rs"]
mod settings;

use contenders::{CONTENDERS, Contender, Hook, QUICK_CACHE, QUICK_CACHE_HOOKED, Spec, Visit};
use shardlru_workloads::keys;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Entries every cache may hold.
const CAPACITY: usize = 100_000;
/// Keys the Zipf streams of W1 and W2 draw from.
const ZIPF_KEYS: u64 = 1_000_000;
/// Keys the uniform insert stream of W3 draws from: every insert of a new key evicts.
const CHURN_KEYS: u64 = 10_000_000;
/// Read-through operations that warm a W1/W2 cache before its timed run.
const WARM_OPS: usize = 500_000;
/// Operations between two looks at the stop flag.
const CHUNK: usize = 256;
/// The seed every key stream derives from.
const SEED: u64 = 0x5eed_0005;

/// The four workloads of issue 5, and W1 through the caches' loaders (W1L).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Workload {
    W1,
    /// W1's keys, each operation one call of the cache's own loader.
    W1L,
    W2,
    W3,
    W4,
}

/// What one operation of a workload does with its key.
#[derive(Clone, Copy)]
enum Op {
    /// `get`; on a miss, `insert(key, key)`.
    ReadThrough,
    /// `insert(key, key)`.
    Insert,
    /// `get` only.
    Read,
    /// `get_or_insert_with(key, || key)`: the cache's own loader.
    Load,
}

impl Workload {
    const ALL: [Workload; 5] =
        [Workload::W1, Workload::W1L, Workload::W2, Workload::W3, Workload::W4];

    fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W1L => "W1L",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Workload::W1 => "read-through (get, insert on miss), Zipf s=1.0 over 1M keys",
            Workload::W1L => "read-through by each cache's own loader, W1's keys (Zipf s=1.0, 1M)",
            Workload::W2 => "read-through (get, insert on miss), Zipf s=0.8 over 1M keys",
            Workload::W3 => "insert-only churn, uniform over 10M keys (every insert evicts)",
            Workload::W4 => "read-only hits, uniform over 100k pre-filled keys",
        }
    }

    fn op(self) -> Op {
        match self {
            Workload::W1 | Workload::W2 => Op::ReadThrough,
            Workload::W1L => Op::Load,
            Workload::W3 => Op::Insert,
            Workload::W4 => Op::Read,
        }
    }

    /// Whether `spec` runs this workload: W1L needs a loader API.
    fn runs(self, spec: &Spec) -> bool {
        !matches!(self.op(), Op::Load) || spec.has_loader()
    }

    fn seed(self, stream: u64) -> u64 {
        // W1L draws W1's keys; the others keep the seeds they had before it.
        let index = match self {
            Workload::W1 | Workload::W1L => 1,
            Workload::W2 => 2,
            Workload::W3 => 3,
            Workload::W4 => 4,
        };
        SEED ^ (index << 40) ^ stream
    }

    /// Thread `thread`'s key stream: the same for every contender and every thread count.
    fn stream(self, thread: usize, len: usize) -> Vec<u64> {
        let seed = self.seed(thread as u64);
        match self {
            Workload::W1 | Workload::W1L => keys::zipf(ZIPF_KEYS, 1.0, len, seed),
            Workload::W2 => keys::zipf(ZIPF_KEYS, 0.8, len, seed),
            Workload::W3 => keys::uniform(CHURN_KEYS, len, seed),
            Workload::W4 => keys::uniform(CAPACITY as u64, len, seed),
        }
    }

    /// How the warm-up keys are applied: read-through for W1/W2, the loader for W1L, inserts for
    /// W3/W4.
    fn warm_op(self) -> Op {
        match self {
            Workload::W1 | Workload::W2 => Op::ReadThrough,
            Workload::W1L => Op::Load,
            Workload::W3 | Workload::W4 => Op::Insert,
        }
    }

    /// The keys that warm a fresh cache, single-threaded, before the timed run: a read-through
    /// stream for W1/W1L/W2 (the cache reaches its steady state), enough new keys to fill the cache
    /// for W3 (so that every timed insert evicts), and the whole key set for W4.
    fn warm_keys(self) -> Vec<u64> {
        let seed = self.seed(u64::MAX);
        match self {
            Workload::W1 | Workload::W1L => keys::zipf(ZIPF_KEYS, 1.0, WARM_OPS, seed),
            Workload::W2 => keys::zipf(ZIPF_KEYS, 0.8, WARM_OPS, seed),
            Workload::W3 => keys::uniform(CHURN_KEYS, CAPACITY, seed),
            Workload::W4 => keys::key_set(CAPACITY as u64),
        }
    }
}

/// Runs `op` on each key of `keys`; returns how many `get`s hit (for [`Op::Load`], how many
/// calls did not run their loader).
#[inline(always)]
fn apply<C: Contender<u64, u64>>(cache: &C, op: Op, keys: &[u64]) -> u64 {
    let mut hits = 0;
    match op {
        Op::ReadThrough => {
            for &key in keys {
                match cache.get(&key) {
                    Some(value) => {
                        black_box(value);
                        hits += 1;
                    }
                    None => cache.insert(key, key),
                }
            }
        }
        Op::Insert => {
            for &key in keys {
                cache.insert(key, key);
            }
        }
        Op::Read => {
            for &key in keys {
                if let Some(value) = cache.get(&key) {
                    black_box(value);
                    hits += 1;
                }
            }
        }
        Op::Load => {
            for &key in keys {
                let mut loaded = false;
                let value = cache.get_or_insert_with(key, || {
                    loaded = true;
                    key
                });
                black_box(value);
                hits += u64::from(!loaded);
            }
        }
    }
    hits
}

/// What one thread did in one timed run.
struct Tally {
    ops: u64,
    hits: u64,
    elapsed: Duration,
    /// The time the thread spent on a CPU, where the OS tells it.
    on_cpu: Option<Duration>,
}

/// How long the calling thread has run on a CPU (Linux: `/proc/thread-self/schedstat`), or
/// `None` where the OS does not say.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

/// One thread of a timed run: waits for the others, then cycles over its stream until `stop`
/// (or until it has done `limit` operations).
fn worker<C: Contender<u64, u64>>(
    cache: &C,
    op: Op,
    keys: &[u64],
    start: &Barrier,
    stop: &AtomicBool,
    limit: u64,
) -> Tally {
    start.wait();
    let began = Instant::now();
    let cpu_began = thread_cpu_time();
    let (mut ops, mut hits) = (0, 0);
    'run: loop {
        for chunk in keys.chunks(CHUNK) {
            // Relaxed: a flag with no data behind it; a few chunks late is fine.
            if stop.load(Relaxed) || ops >= limit {
                break 'run;
            }
            hits += apply(cache, op, chunk);
            ops += chunk.len() as u64;
        }
    }
    let elapsed = began.elapsed();
    let on_cpu = thread_cpu_time().zip(cpu_began).map(|(end, start)| end - start);
    Tally { ops, hits, elapsed, on_cpu }
}

/// One timed run of one contender.
#[derive(Clone, Copy, Debug)]
struct Sample {
    mops: f64,
    /// Hits per `get` (W1L: calls that did not load); NaN for W3, which only inserts.
    hit_ratio: f64,
}

/// A workload's precomputed keys: one stream per thread, and the warm-up keys.
struct Prepared {
    workload: Workload,
    streams: Vec<Vec<u64>>,
    warm: Vec<u64>,
}

/// One timed run: a fresh cache, warmed, then `threads` threads for `duration`.
struct Run<'a> {
    prepared: &'a Prepared,
    threads: usize,
    duration: Duration,
    /// Operations per thread when the run is a fixed count instead of a fixed time.
    limit: Option<u64>,
    /// Rate each thread by its time on a CPU instead of the wall clock.
    cpu_clock: bool,
}

impl Visit<u64, u64> for Run<'_> {
    type Out = Sample;

    fn visit<C: Contender<u64, u64>>(self, spec: &Spec) -> Sample {
        let Run { prepared, threads, duration, limit, cpu_clock } = self;
        let evictions = Arc::new(AtomicU64::new(0));
        let hook = if spec.hooked { Hook::Count(Arc::clone(&evictions)) } else { Hook::None };
        let cache = C::build(CAPACITY, hook);
        apply(&cache, prepared.workload.warm_op(), &prepared.warm);
        let op = prepared.workload.op();
        let start = Barrier::new(threads + 1);
        let stop = AtomicBool::new(false);
        let tallies: Vec<Tally> = std::thread::scope(|s| {
            let workers: Vec<_> = prepared.streams[..threads]
                .iter()
                .map(|keys| {
                    s.spawn(|| worker(&cache, op, keys, &start, &stop, limit.unwrap_or(u64::MAX)))
                })
                .collect();
            start.wait();
            if limit.is_none() {
                std::thread::sleep(duration);
                stop.store(true, Relaxed);
            }
            workers.into_iter().map(|w| w.join().expect("a worker panicked")).collect()
        });
        drop(cache);
        let ops: u64 = tallies.iter().map(|t| t.ops).sum();
        let hits: u64 = tallies.iter().map(|t| t.hits).sum();
        let elapsed = tallies.iter().map(|t| t.elapsed).max().unwrap_or_default();
        let mops = if cpu_clock {
            // Each thread's own rate while it ran, summed: what the threads would do with a
            // core each, whatever else the machine was running.
            tallies
                .iter()
                .map(|t| t.ops as f64 / t.on_cpu.unwrap_or(t.elapsed).as_secs_f64() / 1e6)
                .sum()
        } else {
            ops as f64 / elapsed.as_secs_f64() / 1e6
        };
        let hit_ratio = match op {
            Op::Insert => f64::NAN,
            Op::ReadThrough | Op::Read | Op::Load => hits as f64 / ops as f64,
        };
        Sample { mops, hit_ratio }
    }
}

/// Every sample, by workload, thread count and contender name, in repeat order: sample `r` of
/// two contenders in the same cell were taken in the same repeat, a few seconds apart.
type Samples = HashMap<(Workload, usize, &'static str), Vec<Sample>>;

/// The settings of this run, from the environment (see `support/settings.rs`).
struct Settings {
    repeats: usize,
    duration: Duration,
    stream_len: usize,
    /// `SHARDLRU_BENCH_OPS`: a fixed count of operations per thread instead of a fixed time
    /// (for instruction counts under callgrind).
    limit: Option<u64>,
    /// `SHARDLRU_BENCH_CLOCK=cpu`: rate threads by their time on a CPU (see [`Run`]).
    cpu_clock: bool,
    threads: Vec<usize>,
    workloads: Vec<Workload>,
    contenders: Vec<&'static Spec>,
    out: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Self {
        let workloads = settings::list("SHARDLRU_BENCH_WORKLOADS").map_or_else(
            || Workload::ALL.to_vec(),
            |names| {
                names
                    .iter()
                    .map(|name| {
                        *Workload::ALL
                            .iter()
                            .find(|w| w.name().eq_ignore_ascii_case(name))
                            .unwrap_or_else(|| panic!("unknown workload {name}"))
                    })
                    .collect()
            },
        );
        let contenders = settings::list("SHARDLRU_BENCH_CONTENDERS").map_or_else(
            || CONTENDERS.iter().collect(),
            |names| {
                names
                    .iter()
                    .map(|name| {
                        Spec::by_name(name).unwrap_or_else(|| panic!("unknown contender {name}"))
                    })
                    .collect()
            },
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = match std::env::var("SHARDLRU_BENCH_OUT") {
            Ok(path) if path == "-" => None,
            Ok(path) => Some(PathBuf::from(path)),
            Err(_) if settings::quick() => Some(std::env::temp_dir().join("shardlru-bench")),
            Err(_) => Some(root.to_path_buf()),
        };
        Self {
            repeats: settings::number("SHARDLRU_BENCH_REPEATS", 7, 2) as usize,
            duration: Duration::from_millis(settings::number("SHARDLRU_BENCH_MS", 250, 60)),
            stream_len: settings::number("SHARDLRU_BENCH_STREAM", 1 << 21, 1 << 18) as usize,
            limit: std::env::var("SHARDLRU_BENCH_OPS").ok().map(|n| n.parse().expect("a number")),
            cpu_clock: std::env::var("SHARDLRU_BENCH_CLOCK").is_ok_and(|clock| clock == "cpu"),
            threads: settings::threads(),
            workloads,
            contenders,
            out,
        }
    }

    /// The thread count the targets are judged at: 2 if it was run, else the first one run.
    fn target_threads(&self) -> usize {
        if self.threads.contains(&2) { 2 } else { self.threads[0] }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let mut settings = Settings::from_env();
    let samples = match std::env::var("SHARDLRU_BENCH_FROM") {
        Ok(path) => load(&path, &mut settings),
        Err(_) => measure(&settings),
    };
    let report = Report { settings: &settings, samples: &samples };
    let markdown = report.markdown();
    println!("\n{markdown}");
    if let Some(out) = &settings.out {
        std::fs::create_dir_all(out).expect("create the report folder");
        let chart_path = if out == Path::new(env!("CARGO_MANIFEST_DIR")) {
            out.join("benches").join("chart.svg")
        } else {
            out.join("chart.svg")
        };
        report.chart(&chart_path).expect("draw the chart");
        let md_path = out.join("BENCHMARKS.md");
        std::fs::write(&md_path, markdown).expect("write BENCHMARKS.md");
        eprintln!("wrote {} and {}", md_path.display(), chart_path.display());
    }
}

/// Runs every cell, interleaved (see the module docs), printing a `RESULT` line per run.
fn measure(settings: &Settings) -> Samples {
    println!(
        "SETTINGS\t{}\t{}\t{}",
        settings.repeats,
        settings.duration.as_millis(),
        settings.stream_len
    );
    let max_threads = settings.threads.iter().copied().max().unwrap_or(1);
    let mut samples = Samples::new();
    let began = Instant::now();
    for &workload in &settings.workloads {
        let prepared = Prepared {
            workload,
            streams: (0..max_threads).map(|t| workload.stream(t, settings.stream_len)).collect(),
            warm: workload.warm_keys(),
        };
        let contenders: Vec<&Spec> =
            settings.contenders.iter().copied().filter(|spec| workload.runs(spec)).collect();
        for &threads in &settings.threads {
            for repeat in 0..settings.repeats {
                let n = contenders.len();
                for i in 0..n {
                    let spec = contenders[(i + repeat) % n];
                    let run = Run {
                        prepared: &prepared,
                        threads,
                        duration: settings.duration,
                        limit: settings.limit,
                        cpu_clock: settings.cpu_clock,
                    };
                    let sample = spec.visit(run);
                    println!(
                        "RESULT\t{}\t{threads}\t{}\t{repeat}\t{:.4}\t{:.6}",
                        workload.name(),
                        spec.name,
                        sample.mops,
                        sample.hit_ratio
                    );
                    eprintln!(
                        "[{:>5.0}s] {} {threads}t repeat {}/{} {:<22} {:>8.2} Mops/s",
                        began.elapsed().as_secs_f64(),
                        workload.name(),
                        repeat + 1,
                        settings.repeats,
                        spec.name,
                        sample.mops
                    );
                    samples.entry((workload, threads, spec.name)).or_default().push(sample);
                }
            }
        }
    }
    eprintln!("measured in {:.0} s", began.elapsed().as_secs_f64());
    samples
}

/// Reads the `SETTINGS` and `RESULT` lines a run printed (`SHARDLRU_BENCH_FROM=<file>`), to
/// write the report again without measuring: the workloads, thread counts and contenders are
/// those found in the file.
fn load(path: &str, settings: &mut Settings) -> Samples {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut samples = Samples::new();
    let (mut threads, mut workloads, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            ["SETTINGS", repeats, ms, stream] => {
                settings.repeats = repeats.parse().expect("a repeat count");
                settings.duration = Duration::from_millis(ms.parse().expect("milliseconds"));
                settings.stream_len = stream.parse().expect("a stream length");
            }
            ["RESULT", workload, t, name, _repeat, mops, hit_ratio] => {
                let workload = *Workload::ALL
                    .iter()
                    .find(|w| w.name() == workload)
                    .unwrap_or_else(|| panic!("unknown workload {workload}"));
                let spec =
                    Spec::by_name(name).unwrap_or_else(|| panic!("unknown contender {name}"));
                let t: usize = t.parse().expect("a thread count");
                let sample = Sample {
                    mops: mops.parse().expect("Mops/s"),
                    hit_ratio: hit_ratio.parse().unwrap_or(f64::NAN),
                };
                samples.entry((workload, t, spec.name)).or_default().push(sample);
                if !threads.contains(&t) {
                    threads.push(t);
                }
                if !workloads.contains(&workload) {
                    workloads.push(workload);
                }
                if !names.contains(&spec.name) {
                    names.push(spec.name);
                }
            }
            _ => {}
        }
    }
    threads.sort_unstable();
    workloads.sort_by_key(|w| *w as u8);
    settings.threads = threads;
    settings.workloads = workloads;
    settings.contenders = CONTENDERS.iter().filter(|spec| names.contains(&spec.name)).collect();
    samples
}

/// The summaries of one run's samples.
struct Report<'a> {
    settings: &'a Settings,
    samples: &'a Samples,
}

impl Report<'_> {
    fn cell(&self, workload: Workload, threads: usize, name: &str) -> Option<&[Sample]> {
        self.samples
            .iter()
            .find(|((w, t, n), _)| *w == workload && *t == threads && *n == name)
            .map(|(_, samples)| samples.as_slice())
    }

    fn median_mops(&self, workload: Workload, threads: usize, name: &str) -> Option<f64> {
        let cell = self.cell(workload, threads, name)?;
        Some(settings::median(cell.iter().map(|s| s.mops)))
    }

    /// The median over repeats of `a`'s Mops/s divided by `b`'s in the same repeat.
    fn ratio(&self, workload: Workload, threads: usize, a: &str, b: &str) -> Option<f64> {
        let (a, b) = (self.cell(workload, threads, a)?, self.cell(workload, threads, b)?);
        Some(settings::median(a.iter().zip(b).map(|(a, b)| a.mops / b.mops)))
    }

    fn hit_ratio(&self, workload: Workload, threads: usize, name: &str) -> Option<f64> {
        let cell = self.cell(workload, threads, name)?;
        Some(settings::median(cell.iter().map(|s| s.hit_ratio)))
    }

    fn markdown(&self) -> String {
        let s = self.settings;
        let mut md = String::new();
        let command = std::env::var("SHARDLRU_REPORT_COMMAND")
            .unwrap_or_else(|_| "cargo bench --bench compare".to_owned());
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `{command}` on {}.\n\n* Machine: {}\n* Compiler: {}\n* Settings: \
             capacity {CAPACITY} entries, `u64` keys and values; {} repeats per cell, \
             {} ms timed per run, a fresh cache per run; key streams of {} keys per thread, \
             precomputed, the same for every contender; threads {:?}.\n",
            settings::date(),
            settings::machine(),
            settings::rustc(),
            s.repeats,
            s.duration.as_millis(),
            s.stream_len,
            s.threads,
        );
        let _ = writeln!(
            md,
            "**How to read this.** Absolute Mops/s swing 2–3× between runs on a shared machine; \
             the figures that count are the ratios. Within a cell the contenders ran \
             interleaved (each repeat runs every contender once, the order rotated by one per \
             repeat), and `×` is the median of the per-repeat ratios to the baseline of the \
             same repeat: `{QUICK_CACHE}`, or `{QUICK_CACHE_HOOKED}` (a counting lifecycle) \
             for contenders with a counting eviction hook. Mops/s is the median over repeats; \
             an operation is one `get` (W1, W2, W4), one `insert` (W3), or one call of the \
             cache's own loader (W1L: W1's keys through shardlru's and quick_cache's \
             `get_or_insert_with` and moka's `get_with`; n/a for the contenders without a \
             loader, and its hit ratio counts the calls that did not load). shardlru and \
             `Mutex<lru>` are strict LRUs; quick_cache (CLOCK-Pro-like) and moka (TinyLFU) are \
             not, so their hit ratios differ; dashmap has no bound at all (the ceiling).\n"
        );
        md.push_str(&self.targets());
        for &workload in &s.workloads {
            md.push_str(&self.workload_table(workload));
        }
        let _ = writeln!(md, "![Throughput by workload and threads](benches/chart.svg)\n");
        for section in ["isolation.md", "memory.md", "instructions.md"] {
            if let Some(text) = settings::report_dir()
                .and_then(|dir| std::fs::read_to_string(dir.join(section)).ok())
            {
                md.push_str(&text);
                md.push('\n');
            }
        }
        // The hand-written analysis kept in the repository, from its first heading on.
        let notes = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/notes.md");
        if let Some(text) = std::fs::read_to_string(notes)
            .ok()
            .and_then(|text| text.find("## ").map(|start| text[start..].to_owned()))
        {
            md.push_str(&text);
        }
        md
    }

    fn targets(&self) -> String {
        let mut md = String::from(
            "## Targets (issues 11 and 12)\n\n| target | threads | measured (median of per-pair \
             ratios) | met |\n|---|---:|---|---|\n",
        );
        // `goal`: `None` for a ratio reported without a target ("met" says so).
        let mut row = |what: &str, t: usize, value: Option<f64>, goal: Option<f64>| {
            let (measured, met) = match (value, goal) {
                (Some(v), Some(goal)) if v.is_finite() => {
                    (format!("{v:.2}×"), if v >= goal { "yes" } else { "no" })
                }
                (Some(v), None) if v.is_finite() => (format!("{v:.2}×"), "no target"),
                _ => ("not run".to_owned(), "—"),
            };
            match goal {
                Some(goal) => {
                    let _ = writeln!(md, "| {what} ≥ {goal}× | {t} | {measured} | {met} |");
                }
                None => {
                    let _ = writeln!(md, "| {what} | {t} | {measured} | {met} |");
                }
            }
        };
        use Workload::*;
        for &t in self.settings.threads.iter().filter(|&&t| t <= 2) {
            let ratio = |w, name, baseline| self.ratio(w, t, name, baseline);
            row("W4: shardlru / quick_cache", t, ratio(W4, "shardlru", QUICK_CACHE), Some(1.0));
            row("W1: shardlru / quick_cache", t, ratio(W1, "shardlru", QUICK_CACHE), Some(1.3));
            row("W2: shardlru / quick_cache", t, ratio(W2, "shardlru", QUICK_CACHE), Some(1.3));
            row("W3: shardlru / quick_cache", t, ratio(W3, "shardlru", QUICK_CACHE), Some(1.5));
            let hooked = ratio(W3, "shardlru+callback", QUICK_CACHE_HOOKED);
            row("W3: shardlru+callback / quick_cache+lifecycle", t, hooked, Some(1.3));
            // The loaders: reported beside the targets, with none of their own.
            if self.settings.workloads.contains(&W1L) {
                row("W1L: shardlru / quick_cache", t, ratio(W1L, "shardlru", QUICK_CACHE), None);
                row("W1L: shardlru / moka", t, ratio(W1L, "shardlru", "moka"), None);
            }
        }
        // One thread: the hit ratio is then the policy's alone, not the interleaving's.
        let t = self.settings.threads.first().copied().unwrap_or(1);
        let hit = |workload, name| {
            self.hit_ratio(workload, t, name)
                .map_or("not run".to_owned(), |h| format!("{:.2}%", h * 100.0))
        };
        let _ = writeln!(
            md,
            "\nHit ratios at {t} threads. W4 (capacity = key count, every key inserted once; \
             target 100.00 %): shardlru {}, quick_cache {}. W1 and W2 under each eviction \
             scope (default `Shard`, `TwoChoices`, `Global`; the target is the default within \
             0.05 points of `Global`): W1 {} / {} / {}, W2 {} / {} / {}.\n",
            hit(W4, "shardlru"),
            hit(W4, QUICK_CACHE),
            hit(W1, "shardlru"),
            hit(W1, "shardlru/two-choices"),
            hit(W1, "shardlru/global"),
            hit(W2, "shardlru"),
            hit(W2, "shardlru/two-choices"),
            hit(W2, "shardlru/global"),
        );
        md
    }

    fn workload_table(&self, workload: Workload) -> String {
        let s = self.settings;
        let t = s.target_threads();
        let mut md = format!("## {} — {}\n\n| contender |", workload.name(), workload.title());
        for threads in &s.threads {
            let _ = write!(md, " {threads} thr Mops/s (×) |");
        }
        let _ = write!(md, " hit ratio ({t} thr) |\n|---|");
        for _ in &s.threads {
            md.push_str("---:|");
        }
        md.push_str("---:|\n");
        for spec in &s.contenders {
            let _ = write!(md, "| {} |", spec.name.replace('<', "\\<"));
            if !workload.runs(spec) {
                // No loader API: not run (W1L).
                md.push_str(&" n/a |".repeat(s.threads.len() + 1));
                md.push('\n');
                continue;
            }
            for &threads in &s.threads {
                let mops = self.median_mops(workload, threads, spec.name);
                let ratio = self.ratio(workload, threads, spec.name, spec.baseline);
                match (mops, ratio) {
                    (Some(m), Some(r)) => {
                        let _ = write!(md, " {m:.2} ({r:.2}×) |");
                    }
                    (Some(m), None) => {
                        let _ = write!(md, " {m:.2} |");
                    }
                    _ => md.push_str(" — |"),
                }
            }
            match self.hit_ratio(workload, t, spec.name) {
                Some(h) if h.is_finite() => {
                    let _ = writeln!(md, " {:.2}% |", h * 100.0);
                }
                _ => md.push_str(" — |\n"),
            }
        }
        md.push('\n');
        md
    }

    /// Draws Mops/s against threads, one panel per workload, one line per contender, on a log
    /// scale (the contenders span two orders of magnitude). A contender's family keeps one
    /// colour; its variant with an eviction hook is dashed. The legend is a strip on top.
    fn chart(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        use plotters::prelude::*;
        let s = self.settings;
        let style = |spec: &Spec| {
            let color = match spec.kind {
                contenders::Kind::ShardLru(contenders::Variant::Default) => RGBColor(214, 39, 40),
                contenders::Kind::ShardLru(_) => RGBColor(140, 20, 75),
                contenders::Kind::QuickCache | contenders::Kind::QuickCacheLifecycle => {
                    RGBColor(31, 119, 180)
                }
                contenders::Kind::Moka => RGBColor(255, 127, 14),
                contenders::Kind::LruMutex => RGBColor(44, 160, 44),
                contenders::Kind::LruSharded => RGBColor(148, 103, 189),
                contenders::Kind::DashMap => RGBColor(127, 127, 127),
            };
            let width = if spec.kind == contenders::Kind::ShardLru(contenders::Variant::Default) {
                3
            } else {
                2
            };
            (color, width, spec.hooked)
        };
        // Two panels a row, as many rows as the workloads need.
        let rows = s.workloads.len().div_ceil(2).max(1);
        let root = SVGBackend::new(path, (1280, 44 + 478 * rows as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let (legend, body) = root.split_vertically(44);
        let columns = s.contenders.len().div_ceil(2).max(1);
        for (i, spec) in s.contenders.iter().enumerate() {
            let (color, width, dashed) = style(spec);
            let x = 20 + (i % columns) as i32 * (1240 / columns as i32);
            let y = 12 + (i / columns) as i32 * 18;
            let line = color.stroke_width(width);
            if dashed {
                for dash in 0..3 {
                    let x0 = x + dash * 10;
                    legend.draw(&PathElement::new(vec![(x0, y), (x0 + 6, y)], line))?;
                }
            } else {
                legend.draw(&PathElement::new(vec![(x, y), (x + 26, y)], line))?;
            }
            legend.draw(&Text::new(spec.name, (x + 32, y - 6), ("sans-serif", 13)))?;
        }
        let panels = body.split_evenly((rows, 2));
        for (panel, &workload) in panels.iter().zip(&s.workloads) {
            let values: Vec<f64> = s
                .contenders
                .iter()
                .flat_map(|spec| s.threads.iter().map(move |&t| (spec, t)))
                .filter_map(|(spec, t)| self.median_mops(workload, t, spec.name))
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min).min(1.0) / 1.5;
            let hi = values.iter().copied().fold(0.0, f64::max).max(1.0) * 1.5;
            let n = s.threads.len();
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{} — {}", workload.name(), workload.title()), ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(52)
                .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), (lo..hi).log_scale())?;
            let threads = s.threads.clone();
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < threads.len() {
                        threads[i as usize].to_string()
                    } else {
                        String::new()
                    }
                })
                .light_line_style(WHITE)
                .x_desc("threads")
                .y_desc("Mops/s (log scale)")
                .draw()?;
            for spec in &s.contenders {
                let (color, width, dashed) = style(spec);
                let points: Vec<(f64, f64)> = s
                    .threads
                    .iter()
                    .enumerate()
                    .filter_map(|(x, &t)| {
                        Some((x as f64, self.median_mops(workload, t, spec.name)?))
                    })
                    .collect();
                let line = color.stroke_width(width);
                if dashed {
                    chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, line))?;
                } else {
                    chart.draw_series(LineSeries::new(points.clone(), line))?;
                }
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }
        root.present()?;
        Ok(())
    }
}
