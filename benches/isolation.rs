//! Callback isolation: are readers slowed down by a slow eviction callback?
//!
//! ```text
//! cargo bench --bench isolation                         # about a minute
//! SHARDLRU_BENCH_QUICK=1 cargo bench --bench isolation  # a few seconds
//! ```
//!
//! Two threads run W1 (read-through: `get`, `insert` on a miss; Zipf s=1.0 over 1M keys,
//! capacity 100,000) while every eviction runs a callback that sleeps 100 µs (simulated I/O).
//! Each `get` is timed on its own and recorded in an HDR histogram; the report gives the `get`
//! throughput and its p50/p99/p99.9 latency for:
//!
//! * shardlru with no callback (the reference);
//! * shardlru with the blocking callback and `max_pending_callbacks(1)`: one thread at a time
//!   runs callbacks, the other skips the purge and goes on;
//! * shardlru with the blocking callback and the default cap: every inserting thread purges;
//! * shardlru with the blocking callback delivered in the background: `spawn_purge_threads`
//!   with one thread and with two, the writes only queue what they evict;
//! * the same with one delivery thread and `max_queued(10_000)`: a write that finds the bound
//!   reached delivers until the queue is below it, so the writers are held;
//! * moka without and with the same blocking listener;
//! * quick_cache with the same blocking hook as a lifecycle, which it calls under its shard lock.
//!
//! Only `get` is timed: an `insert` that purges spends the callback's time in the inserting
//! thread by design. Throughput is the sum of each thread's own `get` rate, so that a thread held
//! in a long purge (with `max_pending_callbacks(1)`, the purging thread delivers what is queued
//! while the other one reads on) counts for what it did. Evictions outpace a 100 µs callback
//! here, so with a cap of 1 the queue grows for the whole run: the cap bounds the threads held
//! up, not the queue. Background delivery does not bound it either: a delivery thread runs one
//! 100 µs callback at a time, far fewer than the evictions, so the queue grows for the whole run
//! unless `max_queued` bounds it, and then the writers deliver the rest themselves. The peak
//! queued column is shardlru's `Stats::queued_peak` (warm-up included; 0 with the default cap,
//! where each write hands its eviction straight to the callback). Variants run interleaved,
//! `SHARDLRU_BENCH_REPEATS` times (default 3), and the throughput and p99 ratios to the
//! reference are medians of the per-repeat ratios. After each run the callback stops sleeping,
//! so what is left queued is delivered quickly when the cache is dropped (with background
//! delivery, when the handle of its threads is dropped: that stops and joins them and flushes
//! the queue).

#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/settings.rs"]
mod settings;

use contenders::{Contender, Hook, HookLifecycle, Moka, QuickCache, ShardLru};
use hdrhistogram::Histogram;
use shardlru::{Cache, PurgeThreads};
use shardlru_workloads::keys;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Entries every cache may hold.
const CAPACITY: usize = 100_000;
/// How long the callback blocks for each evicted entry.
const CALLBACK_SLEEP: Duration = Duration::from_micros(100);
/// Threads doing W1.
const THREADS: usize = 2;
/// Read-through operations that warm the cache (without a callback sleeping) before timing.
const WARM_OPS: usize = 500_000;
/// Operations between two looks at the stop flag.
const CHUNK: usize = 64;
/// The seed of the key streams.
const SEED: u64 = 0x150_1a7e;
/// The bound of the background row with `max_queued`.
const MAX_QUEUED: usize = 10_000;

/// shardlru with `max_pending_callbacks(1)`.
struct ShardLruCapOne(shardlru::Cache<u64, u64>);

impl Contender<u64, u64> for ShardLruCapOne {
    fn build(capacity: usize, hook: Hook) -> Self {
        let cache = shardlru::Cache::builder()
            .capacity(capacity)
            .max_pending_callbacks(1)
            .on_evict(move |_, _| hook.fire())
            .build()
            .expect("a valid configuration");
        Self(cache)
    }
    fn get(&self, key: &u64) -> Option<u64> {
        self.0.get(key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn queued_peak(&self) -> Option<usize> {
        Some(self.0.stats().queued_peak)
    }
}

/// shardlru with background delivery: `DELIVERY` threads from `spawn_purge_threads` run the
/// callback while the writes only queue what they evict; `BOUND` is `max_queued` (0: none).
struct ShardLruBackground<const DELIVERY: usize, const BOUND: usize> {
    /// Declared first, so dropped first: stops and joins the delivery threads and flushes the
    /// queue (quickly once the hook stops sleeping); they hold the cache until then.
    _delivery: PurgeThreads<u64, u64>,
    cache: Arc<Cache<u64, u64>>,
}

impl<const DELIVERY: usize, const BOUND: usize> Contender<u64, u64>
    for ShardLruBackground<DELIVERY, BOUND>
{
    fn build(capacity: usize, hook: Hook) -> Self {
        let builder = Cache::builder().capacity(capacity);
        let builder = if BOUND == 0 { builder } else { builder.max_queued(BOUND) };
        let cache = Arc::new(
            builder.on_evict(move |_, _| hook.fire()).build().expect("a valid configuration"),
        );
        let delivery = cache.spawn_purge_threads(DELIVERY).expect("delivery threads");
        Self { _delivery: delivery, cache }
    }
    fn get(&self, key: &u64) -> Option<u64> {
        self.cache.get(key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.cache.insert(key, value);
    }
    fn len(&self) -> usize {
        self.cache.flush();
        self.cache.len()
    }
    fn queued_peak(&self) -> Option<usize> {
        Some(self.cache.stats().queued_peak)
    }
}

/// Which target of the report a row is measured against, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    /// Issue 5: get p99 ≤ 2× the reference's.
    CappedP99,
    /// Issue 14: get throughput ≥ 0.8× and get p99 ≤ 1.5× the reference's.
    Background,
}

/// One row of the report.
struct Variant {
    name: &'static str,
    blocking: bool,
    target: Target,
    run: fn(&Streams, bool, Duration) -> Sample,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "shardlru, no callback",
        blocking: false,
        target: Target::None,
        run: run::<ShardLru<u64, u64>>,
    },
    Variant {
        name: "shardlru, blocking callback, max_pending_callbacks(1)",
        blocking: true,
        target: Target::CappedP99,
        run: run::<ShardLruCapOne>,
    },
    Variant {
        name: "shardlru, blocking callback, default cap",
        blocking: true,
        target: Target::None,
        run: run::<ShardLru<u64, u64>>,
    },
    Variant {
        name: "shardlru, blocking callback, background delivery (1 thread)",
        blocking: true,
        target: Target::Background,
        run: run::<ShardLruBackground<1, 0>>,
    },
    Variant {
        name: "shardlru, blocking callback, background delivery (2 threads)",
        blocking: true,
        target: Target::Background,
        run: run::<ShardLruBackground<2, 0>>,
    },
    Variant {
        name: "shardlru, blocking callback, background delivery (1 thread), max_queued(10000)",
        blocking: true,
        target: Target::None,
        run: run::<ShardLruBackground<1, MAX_QUEUED>>,
    },
    Variant {
        name: "moka, no listener",
        blocking: false,
        target: Target::None,
        run: run::<Moka<u64, u64>>,
    },
    Variant {
        name: "moka, blocking listener",
        blocking: true,
        target: Target::None,
        run: run::<Moka<u64, u64>>,
    },
    Variant {
        name: "quick_cache, blocking lifecycle (under its lock)",
        blocking: true,
        target: Target::None,
        run: run::<QuickCache<u64, u64, HookLifecycle>>,
    },
];

/// The precomputed keys: one stream per thread, and the warm-up stream.
struct Streams {
    threads: Vec<Vec<u64>>,
    warm: Vec<u64>,
}

/// What one run measured.
struct Sample {
    /// The sum over threads of each thread's `get`s per second.
    gets_per_s: f64,
    latency: Histogram<u64>,
    callbacks: u64,
    /// [`Contender::queued_peak`] at the end of the run.
    queued_peak: Option<usize>,
}

/// One thread: read-through over its stream until `stop`, timing each `get`.
fn worker<C: Contender<u64, u64>>(
    cache: &C,
    keys: &[u64],
    start: &Barrier,
    stop: &AtomicBool,
) -> (u64, Duration, Histogram<u64>) {
    let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut gets = 0;
    start.wait();
    let began = Instant::now();
    'run: loop {
        for chunk in keys.chunks(CHUNK) {
            // Relaxed: a flag with no data behind it.
            if stop.load(Relaxed) {
                break 'run;
            }
            for &key in chunk {
                let began = Instant::now();
                let value = cache.get(&key);
                let took = began.elapsed();
                latency.saturating_record(took.as_nanos().max(1) as u64);
                if value.is_none() {
                    cache.insert(key, key);
                }
            }
            gets += chunk.len() as u64;
        }
    }
    (gets, began.elapsed(), latency)
}

/// One run of contender `C`, with the blocking hook or none.
fn run<C: Contender<u64, u64>>(streams: &Streams, blocking: bool, duration: Duration) -> Sample {
    let count = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicBool::new(false));
    let hook = if blocking {
        Hook::Block { each: CALLBACK_SLEEP, count: Arc::clone(&count), active: Arc::clone(&active) }
    } else {
        Hook::None
    };
    let cache = C::build(CAPACITY, hook);
    for &key in &streams.warm {
        if cache.get(&key).is_none() {
            cache.insert(key, key);
        }
    }
    let start = Barrier::new(THREADS + 1);
    let stop = AtomicBool::new(false);
    let began = count.load(Relaxed);
    active.store(true, Relaxed);
    let (results, callbacks) = std::thread::scope(|s| {
        let workers: Vec<_> = streams.threads[..THREADS]
            .iter()
            .map(|keys| s.spawn(|| worker(&cache, keys, &start, &stop)))
            .collect();
        start.wait();
        std::thread::sleep(duration);
        stop.store(true, Relaxed);
        let callbacks = count.load(Relaxed) - began;
        // A thread inside a long purge finishes it at full speed, and so does the drop.
        active.store(false, Relaxed);
        (workers.into_iter().map(|w| w.join().expect("worker")).collect::<Vec<_>>(), callbacks)
    });
    let queued_peak = cache.queued_peak();
    drop(cache);
    let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut gets_per_s = 0.0;
    for (gets, elapsed, histogram) in results {
        gets_per_s += gets as f64 / elapsed.as_secs_f64();
        latency.add(histogram).expect("same bounds");
    }
    Sample { gets_per_s, latency, callbacks, queued_peak }
}

fn main() {
    let repeats = settings::number("SHARDLRU_BENCH_REPEATS", 3, 1) as usize;
    let duration =
        Duration::from_millis(settings::number("SHARDLRU_BENCH_ISOLATION_MS", 1500, 300));
    let len = settings::number("SHARDLRU_BENCH_STREAM", 1 << 21, 1 << 18) as usize;
    let streams = Streams {
        threads: (0..THREADS as u64).map(|t| keys::zipf(1_000_000, 1.0, len, SEED + t)).collect(),
        warm: keys::zipf(1_000_000, 1.0, WARM_OPS, SEED - 1),
    };
    // samples[variant][repeat]
    let mut samples: Vec<Vec<Sample>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    let width = VARIANTS.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for repeat in 0..repeats {
        for i in 0..VARIANTS.len() {
            let index = (i + repeat) % VARIANTS.len();
            let variant = &VARIANTS[index];
            let sample = (variant.run)(&streams, variant.blocking, duration);
            eprintln!(
                "repeat {}/{repeats} {:<width$} {:>7.2} Mgets/s p99 {:>8} ns, {} callbacks{}",
                repeat + 1,
                variant.name,
                sample.gets_per_s / 1e6,
                sample.latency.value_at_quantile(0.99),
                sample.callbacks,
                sample.queued_peak.map_or_else(String::new, |peak| format!(", peak queued {peak}"))
            );
            samples[index].push(sample);
        }
    }
    let p = |s: &Sample, q: f64| s.latency.value_at_quantile(q) as f64;
    let reference = &samples[0];
    // Medians of the per-repeat ratios to the reference: throughput, and p99.
    let gets_ratio = |runs: &[Sample]| {
        settings::median(runs.iter().zip(reference).map(|(s, r)| s.gets_per_s / r.gets_per_s))
    };
    let p99_ratio = |runs: &[Sample]| {
        settings::median(runs.iter().zip(reference).map(|(s, r)| p(s, 0.99) / p(r, 0.99)))
    };
    let mut md = format!(
        "## Callback isolation\n\nFrom `cargo bench --bench isolation`: {THREADS} threads doing \
         W1 (read-through, Zipf s=1.0 over 1M keys, capacity {CAPACITY}) for {} ms per run, \
         while each eviction runs a callback that sleeps {} µs. Latency is of `get` alone \
         (each call timed, HDR histogram); medians over {repeats} interleaved repeats; the \
         ratios are medians of per-repeat ratios to shardlru without a callback. Background \
         delivery: `spawn_purge_threads(n)`, the writes only queue evicted entries. Peak queued: \
         the most evicted entries shardlru's queue held (`Stats::queued_peak`, warm-up \
         included).\n\n\
         | variant | gets Mops/s | gets ÷ no callback | p50 ns | p99 ns | p99.9 ns | \
         p99 ÷ no callback | callbacks run | peak queued |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        duration.as_millis(),
        CALLBACK_SLEEP.as_micros()
    );
    for (variant, runs) in VARIANTS.iter().zip(&samples) {
        let throughput = settings::median(runs.iter().map(|s| s.gets_per_s / 1e6));
        let peak = if runs.iter().any(|s| s.queued_peak.is_none()) {
            "–".to_owned()
        } else {
            format!(
                "{:.0}",
                settings::median(runs.iter().filter_map(|s| s.queued_peak).map(|n| n as f64))
            )
        };
        let _ = writeln!(
            md,
            "| {} | {throughput:.2} | {:.2}× | {:.0} | {:.0} | {:.0} | {:.2}× | {:.0} | {peak} |",
            variant.name,
            gets_ratio(runs),
            settings::median(runs.iter().map(|s| p(s, 0.5))),
            settings::median(runs.iter().map(|s| p(s, 0.99))),
            settings::median(runs.iter().map(|s| p(s, 0.999))),
            p99_ratio(runs),
            settings::median(runs.iter().map(|s| s.callbacks as f64)),
        );
    }
    let met = |ok: bool| if ok { "met" } else { "not met" };
    for (variant, runs) in VARIANTS.iter().zip(&samples) {
        match variant.target {
            Target::None => {}
            Target::CappedP99 => {
                let capped = p99_ratio(runs);
                let _ = writeln!(
                    md,
                    "\nTarget (issue 5): get p99 with a 100 µs blocking callback ≤ 2× get p99 \
                     without one (max_pending_callbacks(1)): {capped:.2}×, {}.",
                    met(capped <= 2.0)
                );
            }
            Target::Background => {
                let (gets, p99) = (gets_ratio(runs), p99_ratio(runs));
                let _ = writeln!(
                    md,
                    "\nTarget (issue 14): background delivery with a 100 µs callback keeps get \
                     throughput ≥ 0.8× of the no-callback run and get p99 ≤ 1.5× of it ({}): \
                     throughput {gets:.2}×, p99 {p99:.2}×, {}.",
                    variant.name.trim_start_matches("shardlru, blocking callback, "),
                    met(gets >= 0.8 && p99 <= 1.5)
                );
            }
        }
    }
    println!("{md}");
    settings::leave_section("isolation.md", &md);
}
