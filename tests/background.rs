//! Background delivery (`background.rs`): `Cache::spawn_purge_threads`, the queue bound
//! (`Builder::max_queued`) and `Cache::flush`, checked from outside.
//!
//! * **Writers never run the callback** while the delivery threads run: every callback runs on
//!   a thread named `shardlru-purge-{i}`, and every evicted entry is delivered exactly once.
//! * **Flush** delivers what was queued when it began (plus at most 64), and writers go on
//!   while it runs.
//! * **The bound**: with `max_queued(n)` the backlog never passes `n` plus the number of
//!   writers, with or without delivery threads, and nothing is lost or delivered twice.
//! * **Shutdown**: dropping the handle mid-batch, while idle, from inside a callback, after the
//!   user's last `Arc<Cache>`, or under an amplifying callback ends and loses nothing; writes
//!   then purge inline again.
//! * **Panics** of the callback on a delivery thread are contained, under either policy.
//! * **Errors**: `SpawnError` and `BuildError::ZeroMaxQueued`.
//! * **Loads wait for write-backs** done by a delivery thread.
//!
//! Everything that could hang runs under `support::watchdog`. Sleeps only create interleavings;
//! nothing asserts a duration.

mod support;

use shardlru::{BuildError, Cache, Evicted, PurgeThreads, RemovalCause, SpawnError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};
use support::{DropLog, Tracked, assert_no_stale_loads, watchdog};

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// How many times the callback received each key (keys are `0..len`).
#[derive(Clone)]
struct Counts(Arc<Vec<AtomicU32>>);

impl Counts {
    fn new(keys: usize) -> Self {
        Self(Arc::new((0..keys).map(|_| AtomicU32::new(0)).collect()))
    }

    fn hit(&self, key: u32) {
        self.0[key as usize].fetch_add(1, SeqCst);
    }

    fn get(&self, key: u32) -> u32 {
        self.0[key as usize].load(SeqCst)
    }

    fn total(&self) -> u64 {
        self.0.iter().map(|count| u64::from(count.load(SeqCst))).sum()
    }
}

/// The keys of `keys` that `cache` holds.
fn resident<V, S>(cache: &Cache<u32, V, S>, keys: impl IntoIterator<Item = u32>) -> HashSet<u32>
where
    S: std::hash::BuildHasher,
{
    keys.into_iter().filter(|key| cache.contains_key(key)).collect()
}

/// Exactly once: each key of `inserted` was delivered once and is not resident, or was never
/// delivered and is resident; no key outside `inserted` was delivered.
fn assert_exactly_once(
    what: &str,
    counts: &Counts,
    resident: &HashSet<u32>,
    inserted: impl IntoIterator<Item = u32>,
) {
    let inserted: HashSet<u32> = inserted.into_iter().collect();
    let mut wrong = Vec::new();
    for key in 0..counts.0.len() as u32 {
        let delivered = counts.get(key);
        let expected = match (inserted.contains(&key), resident.contains(&key)) {
            (true, false) => 1,
            (true, true) | (false, false) => 0,
            (false, true) => {
                wrong.push((key, delivered, "resident but never inserted"));
                continue;
            }
        };
        if delivered != expected {
            let why = if resident.contains(&key) { "resident" } else { "evicted" };
            wrong.push((key, delivered, why));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} keys not delivered exactly once, (key, times delivered, state): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// Polls `done` every millisecond until it holds (the watchdog around the test bounds it).
fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Busy-waits for `time`: a callback's work shorter than the timer's resolution.
fn spin(time: Duration) {
    let start = Instant::now();
    while start.elapsed() < time {
        std::hint::spin_loop();
    }
}

/// The name of the calling thread, or "".
fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_owned()
}

const PURGE_THREAD: &str = "shardlru-purge-";

// ---------------------------------------------------------------------------------------------
// 1. Writers never run the callback.
// ---------------------------------------------------------------------------------------------

/// 4 writers insert distinct keys into a 64-entry cache with 2 delivery threads and a callback
/// that sleeps 100 µs. No writer ever runs the callback, every callback runs on a delivery
/// thread, and once the handle and the cache are dropped, every inserted key was delivered
/// exactly once or was resident at the end (and dropped, not delivered).
#[test]
fn writers_never_run_the_callback_while_purge_threads_run() {
    watchdog("writers_never_run_the_callback_while_purge_threads_run", || {
        const WRITERS: u32 = 4;
        const PER_WRITER: u32 = 1_500;
        const KEYS: u32 = WRITERS * PER_WRITER;
        let counts = Counts::new(KEYS as usize);
        // Per thread that ran the callback: its name and how many callbacks it ran.
        let runners: Arc<Mutex<HashMap<ThreadId, (String, usize)>>> = Arc::default();
        let cache = {
            let (counts, runners) = (counts.clone(), runners.clone());
            Arc::new(
                Cache::<u32, u32>::builder()
                    .capacity(64)
                    .on_evict(move |_, Evicted { key, cause, .. }| {
                        assert_eq!(cause, RemovalCause::Capacity);
                        thread::sleep(Duration::from_micros(100));
                        let mut runners = runners.lock().unwrap();
                        runners.entry(thread::current().id()).or_insert((thread_name(), 0)).1 += 1;
                        counts.hit(key);
                    })
                    .build()
                    .unwrap(),
            )
        };
        let purge_threads = cache.spawn_purge_threads(2).unwrap();
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let cache = cache.clone();
                thread::spawn(move || {
                    for key in writer * PER_WRITER..(writer + 1) * PER_WRITER {
                        cache.insert(key, key);
                    }
                    thread::current().id()
                })
            })
            .collect();
        let writer_ids: HashSet<ThreadId> =
            writers.into_iter().map(|writer| writer.join().unwrap()).collect();
        // Let the delivery threads drain the backlog, so that the handle's drop finds nothing
        // to deliver on this thread.
        wait_until(|| cache.queued() == 0);
        drop(purge_threads);
        assert_eq!(cache.queued(), 0);

        let runners = runners.lock().unwrap().clone();
        assert!(!runners.is_empty(), "the callback never ran");
        let by_writers: Vec<_> = runners.keys().filter(|id| writer_ids.contains(id)).collect();
        assert!(by_writers.is_empty(), "writers ran the callback: {by_writers:?} of {runners:?}");
        let not_purge: Vec<_> =
            runners.values().filter(|(name, _)| !name.starts_with(PURGE_THREAD)).collect();
        assert!(not_purge.is_empty(), "callbacks ran off the delivery threads: {not_purge:?}");
        assert!(runners.len() <= 2, "more runners than delivery threads: {runners:?}");

        let resident = resident(&cache, 0..KEYS);
        assert_eq!(resident.len(), cache.len());
        assert_exactly_once("after the handle's drop", &counts, &resident, 0..KEYS);
        assert_eq!(counts.total(), u64::from(KEYS) - resident.len() as u64);
        assert_eq!(cache.stats().delivered, counts.total());

        let cache = Arc::try_unwrap(cache)
            .unwrap_or_else(|_| panic!("a delivery thread still holds the cache"));
        let delivered_before_drop = counts.total();
        drop(cache);
        assert_eq!(counts.total(), delivered_before_drop, "the drop delivered resident entries");
        assert_exactly_once("after the cache's drop", &counts, &resident, 0..KEYS);
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Flush.
// ---------------------------------------------------------------------------------------------

/// A `clear` of 200 000 entries queues them all and delivers one batch; one `flush` delivers
/// the rest, and every key was delivered exactly once, with `RemovalCause::Clear`.
#[test]
fn one_flush_delivers_the_backlog_of_a_clear() {
    watchdog("one_flush_delivers_the_backlog_of_a_clear", || {
        const ENTRIES: u32 = 200_000;
        let counts = Counts::new(ENTRIES as usize);
        let not_clear = Arc::new(AtomicUsize::new(0));
        let cache = {
            let (counts, not_clear) = (counts.clone(), not_clear.clone());
            Cache::<u32, u32>::builder()
                .capacity(ENTRIES as usize)
                .on_evict(move |_, Evicted { key, cause, .. }| {
                    if cause != RemovalCause::Clear {
                        not_clear.fetch_add(1, SeqCst);
                    }
                    counts.hit(key);
                })
                .build()
                .unwrap()
        };
        for key in 0..ENTRIES {
            cache.insert(key, key);
        }
        assert_eq!(cache.len(), ENTRIES as usize);
        assert_eq!(counts.total(), 0);
        cache.clear();
        let queued = cache.queued();
        assert!(queued > 0, "clear delivered everything itself");
        assert_eq!(counts.total() + queued as u64, u64::from(ENTRIES));
        let flushed = cache.flush();
        assert_eq!(flushed, queued, "flush delivered other than the backlog");
        assert_eq!(cache.queued(), 0);
        assert_eq!(counts.total(), u64::from(ENTRIES));
        assert_exactly_once("after the flush", &counts, &HashSet::new(), 0..ENTRIES);
        assert_eq!(not_clear.load(SeqCst), 0);
        assert_eq!(cache.stats().delivered, u64::from(ENTRIES));
        assert_eq!(cache.flush(), 0, "a flush of an empty queue delivered something");
    });
}

/// 2 writers insert continuously into a full cache (each insert evicts; the callback spins a
/// few µs) while this thread flushes a backlog of ~20 000 shrunk entries. The writers start at
/// the flush's first callback, which then waits until they have made progress: a flush that
/// blocked writers would hang here (the watchdog). The flush returns at most what was queued
/// when it began plus 64, and in the end every key was delivered exactly once.
#[test]
fn writers_go_on_during_a_flush() {
    watchdog("writers_go_on_during_a_flush", || {
        const BACKLOG: u32 = 20_000;
        const WRITERS: u32 = 2;
        const PER_WRITER: u32 = 50_000;
        const KEYS: u32 = BACKLOG + WRITERS * PER_WRITER;
        let counts = Counts::new(KEYS as usize);
        let flusher = thread::current().id();
        let armed = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicUsize::new(0));
        let cache = {
            let (counts, armed, go, ops) = (counts.clone(), armed.clone(), go.clone(), ops.clone());
            Arc::new(
                Cache::<u32, u32>::builder()
                    .capacity(BACKLOG as usize)
                    .on_evict(move |_, Evicted { key, .. }| {
                        counts.hit(key);
                        spin(Duration::from_micros(2));
                        if thread::current().id() == flusher
                            && armed.load(SeqCst)
                            && !go.swap(true, SeqCst)
                        {
                            // The flush's first callback: start the writers and wait until
                            // they have written, the flush still in progress.
                            wait_until(|| ops.load(SeqCst) >= 10);
                        }
                    })
                    .build()
                    .unwrap(),
            )
        };
        for key in 0..BACKLOG {
            cache.insert(key, key);
        }
        cache.resize(100).unwrap(); // queues ~20 000 entries, delivers one batch
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (cache, go, stop, ops) = (cache.clone(), go.clone(), stop.clone(), ops.clone());
                thread::spawn(move || {
                    while !go.load(SeqCst) {
                        thread::yield_now();
                    }
                    let first = BACKLOG + writer * PER_WRITER;
                    let mut next = first;
                    while next < first + PER_WRITER && !stop.load(SeqCst) {
                        cache.insert(next, next);
                        ops.fetch_add(1, SeqCst);
                        next += 1;
                    }
                    first..next
                })
            })
            .collect();
        let queued_before = cache.queued();
        assert!(queued_before > 10_000, "no backlog: {queued_before} queued");
        armed.store(true, SeqCst);
        let flushed = cache.flush();
        let ops_during_flush = ops.load(SeqCst);
        stop.store(true, SeqCst);
        let written: Vec<_> = writers.into_iter().map(|writer| writer.join().unwrap()).collect();
        assert!(go.load(SeqCst), "the flush ran no callback");
        assert!(ops_during_flush >= 10, "writers made no progress during the flush");
        assert!(flushed > 0, "the flush delivered nothing");
        assert!(
            flushed <= queued_before + 64,
            "the flush delivered {flushed}, more than the {queued_before} queued when it began \
             plus 64"
        );

        // Writers stopped: one more flush empties the queue.
        cache.flush();
        assert_eq!(cache.queued(), 0);
        let inserted: Vec<u32> = (0..BACKLOG).chain(written.into_iter().flatten()).collect();
        let resident = resident(&cache, inserted.iter().copied());
        assert_eq!(resident.len(), cache.len());
        assert_exactly_once("after the flushes", &counts, &resident, inserted);
    });
}

// ---------------------------------------------------------------------------------------------
// 3. The bound.
// ---------------------------------------------------------------------------------------------

/// `max_queued(1000)`, one callback at a time, a 100-entry cache and 4 writers of distinct
/// keys; with `purge_threads` delivery threads (0: inline purges) and a callback that sleeps
/// `callback_time`. A watcher samples `queued()` throughout: neither it nor `queued_peak` ever
/// sees more than the bound plus the writers; writes were held; nothing is lost or doubled.
fn the_backlog_stays_under_the_bound(purge_threads: usize, callback_time: Duration) {
    const MAX_QUEUED: usize = 1_000;
    const WRITERS: u32 = 4;
    const PER_WRITER: u32 = 1_500;
    const KEYS: u32 = WRITERS * PER_WRITER;
    let counts = Counts::new(KEYS as usize);
    let cache = {
        let counts = counts.clone();
        Arc::new(
            Cache::<u32, u32>::builder()
                .capacity(100)
                .max_pending_callbacks(1)
                .max_queued(MAX_QUEUED)
                .on_evict(move |_, Evicted { key, .. }| {
                    thread::sleep(callback_time);
                    counts.hit(key);
                })
                .build()
                .unwrap(),
        )
    };
    let handle = (purge_threads > 0).then(|| cache.spawn_purge_threads(purge_threads).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (cache, done) = (cache.clone(), done.clone());
        thread::spawn(move || {
            let mut most = 0;
            while !done.load(SeqCst) {
                most = most.max(cache.queued());
                thread::yield_now();
            }
            most
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let cache = cache.clone();
            thread::spawn(move || {
                for key in writer * PER_WRITER..(writer + 1) * PER_WRITER {
                    cache.insert(key, key);
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    done.store(true, SeqCst);
    let most_sampled = watcher.join().unwrap();
    let limit = MAX_QUEUED + WRITERS as usize;
    let stats = cache.stats();
    assert!(most_sampled <= limit, "the watcher saw {most_sampled} queued, over {limit}");
    assert!(stats.queued_peak <= limit, "queued_peak {} over {limit}", stats.queued_peak);
    assert!(
        stats.queued_peak >= MAX_QUEUED.min(most_sampled),
        "queued_peak {} under what was sampled ({most_sampled})",
        stats.queued_peak
    );
    assert!(stats.writes_held > 0, "no write was held at the bound: {stats:?}");

    match handle {
        Some(handle) => drop(handle), // flushes
        None => {
            cache.flush();
        }
    }
    assert_eq!(cache.queued(), 0);
    let resident = resident(&cache, 0..KEYS);
    assert_eq!(resident.len(), cache.len());
    assert_exactly_once("after the writers", &counts, &resident, 0..KEYS);
    assert_eq!(counts.total() + cache.len() as u64, u64::from(KEYS));
    assert!(cache.stats().queued_peak <= limit);
}

#[test]
fn the_backlog_stays_under_the_bound_inline() {
    watchdog("the_backlog_stays_under_the_bound_inline", || {
        the_backlog_stays_under_the_bound(0, Duration::from_micros(20));
    });
}

#[test]
fn the_backlog_stays_under_the_bound_with_purge_threads() {
    watchdog("the_backlog_stays_under_the_bound_with_purge_threads", || {
        the_backlog_stays_under_the_bound(1, Duration::from_micros(50));
    });
}

/// The bound holds for `clear` too, with delivery threads running: it delivers as it goes.
#[test]
fn a_clear_delivers_as_it_goes_at_the_bound_with_purge_threads() {
    watchdog("a_clear_delivers_as_it_goes_at_the_bound_with_purge_threads", || {
        const KEYS: u32 = 5_000;
        let counts = Counts::new(KEYS as usize);
        let cache = {
            let counts = counts.clone();
            Arc::new(
                Cache::<u32, u32>::builder()
                    .capacity(KEYS as usize)
                    .max_queued(100)
                    .on_evict(move |_, Evicted { key, .. }| counts.hit(key))
                    .build()
                    .unwrap(),
            )
        };
        let handle = cache.spawn_purge_threads(1).unwrap();
        for key in 0..KEYS {
            cache.insert(key, key);
        }
        cache.clear();
        let stats = cache.stats();
        assert!(stats.queued_peak <= 101, "queued_peak {} over the bound + 1", stats.queued_peak);
        drop(handle);
        assert_eq!(cache.queued(), 0);
        assert!(cache.is_empty());
        assert_exactly_once("after the clear", &counts, &HashSet::new(), 0..KEYS);
    });
}

/// `clear`, `retain` and a shrinking `resize`, inline (no delivery threads), each on a full cache
/// of 5 000 with `max_queued(100)`: each delivers as it goes, so the queue never holds more than
/// the bound (it is the only writer), and every removed entry is delivered exactly once with its
/// cause.
#[test]
fn whole_cache_calls_deliver_as_they_go_at_the_bound() {
    type Call = fn(&Cache<u32, u32>);
    let calls: [(&str, Call, RemovalCause); 3] = [
        ("clear", |cache| cache.clear(), RemovalCause::Clear),
        ("retain", |cache| cache.retain(|key, _| key % 10 == 0), RemovalCause::Retain),
        ("resize", |cache| cache.resize(500).unwrap(), RemovalCause::Shrink),
    ];
    for (name, call, cause) in calls {
        watchdog(name, move || {
            const KEYS: u32 = 5_000;
            let counts = Counts::new(KEYS as usize);
            let causes = Arc::new(Mutex::new(HashSet::new()));
            let cache = {
                let (counts, causes) = (counts.clone(), Arc::clone(&causes));
                Cache::<u32, u32>::builder()
                    .capacity(KEYS as usize)
                    .max_queued(100)
                    .on_evict(move |_, Evicted { key, cause, .. }| {
                        counts.hit(key);
                        causes.lock().unwrap().insert(cause);
                    })
                    .build()
                    .unwrap()
            };
            for key in 0..KEYS {
                cache.insert(key, key);
            }
            call(&cache);
            let stats = cache.stats();
            assert!(stats.queued_peak <= 100, "{name}: queued_peak {} over 100", stats.queued_peak);
            assert!(stats.writes_held > 0, "{name}: never held at the bound");
            cache.flush();
            let resident = resident(&cache, 0..KEYS);
            assert_eq!(resident.len(), cache.len());
            assert_exactly_once(name, &counts, &resident, 0..KEYS);
            assert_eq!(*causes.lock().unwrap(), HashSet::from([cause]), "{name}");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Shutdown.
// ---------------------------------------------------------------------------------------------

/// A cache of 10 whose callback counts and sleeps 50 µs; the callback for the first entry
/// delivered reports on the returned receiver and blocks until the sender sends. One callback
/// at a time, so that the backlog waits behind it.
fn gated_cache<V: Send + Sync + 'static>(
    counts: &Counts,
) -> (Arc<Cache<u32, V>>, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let first = AtomicBool::new(true);
    let counts = counts.clone();
    let cache = Cache::<u32, V>::builder()
        .capacity(10)
        .max_pending_callbacks(1)
        .on_evict(move |_, evicted: Evicted<u32, V>| {
            if first.swap(false, SeqCst) {
                entered_tx.lock().unwrap().send(thread_name()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            }
            thread::sleep(Duration::from_micros(50));
            counts.hit(evicted.key);
        })
        .build()
        .unwrap();
    (Arc::new(cache), entered, release)
}

/// The handle dropped while a delivery thread is in the middle of a batch of a backlog of
/// ~3 000 entries: the drop delivers the rest, exactly once, and lets go of the cache.
#[test]
fn dropping_the_handle_mid_batch_delivers_the_rest() {
    watchdog("dropping_the_handle_mid_batch_delivers_the_rest", || {
        const KEYS: u32 = 3_000;
        let counts = Counts::new(KEYS as usize);
        let (cache, entered, release) = gated_cache::<u32>(&counts);
        let handle = cache.spawn_purge_threads(2).unwrap();
        for key in 0..KEYS {
            cache.insert(key, key);
        }
        let runner = entered.recv().unwrap();
        assert!(runner.starts_with(PURGE_THREAD), "the first callback ran on {runner:?}");
        // One entry is in the blocked callback, the other evicted ones queued behind it.
        assert_eq!(cache.queued(), KEYS as usize - 10 - 1);
        release.send(()).unwrap();
        drop(handle); // the released thread is mid-batch
        assert_eq!(cache.queued(), 0);
        assert_eq!(Arc::strong_count(&cache), 1, "a delivery thread still holds the cache");
        let resident = resident(&cache, 0..KEYS);
        assert_eq!(resident.len(), 10);
        assert_exactly_once("after the handle's drop", &counts, &resident, 0..KEYS);
        assert_eq!(cache.stats().delivered, u64::from(KEYS) - 10);
    });
}

/// The handle dropped while its threads are parked (nothing queued) returns; writes then purge
/// inline again, running the callback on the writing thread.
#[test]
fn dropping_an_idle_handle_returns_and_writes_purge_inline_again() {
    watchdog("dropping_an_idle_handle_returns_and_writes_purge_inline_again", || {
        let runs: Arc<Mutex<Vec<(u32, ThreadId)>>> = Arc::default();
        let cache = {
            let runs = runs.clone();
            Arc::new(
                Cache::<u32, u32>::builder()
                    .capacity(1)
                    .on_evict(move |_, Evicted { key, .. }| {
                        runs.lock().unwrap().push((key, thread::current().id()));
                    })
                    .build()
                    .unwrap(),
            )
        };
        let me = thread::current().id();
        let handle = cache.spawn_purge_threads(2).unwrap();
        cache.insert(0, 0);
        cache.insert(1, 1); // evicts 0: a delivery thread runs its callback
        wait_until(|| !runs.lock().unwrap().is_empty());
        let (key, runner) = runs.lock().unwrap()[0];
        assert_eq!(key, 0);
        assert_ne!(runner, me, "the writer ran the callback while the threads ran");
        thread::sleep(Duration::from_millis(20)); // the threads park
        assert_eq!(cache.queued(), 0);
        drop(handle);
        assert_eq!(Arc::strong_count(&cache), 1, "a delivery thread still holds the cache");
        cache.insert(2, 2); // evicts 1, inline
        assert_eq!(*runs.lock().unwrap(), [(0, runner), (1, me)]);
        // Again with a handle that never saw an entry.
        let handle = cache.spawn_purge_threads(1).unwrap();
        drop(handle);
        cache.insert(3, 3); // evicts 2, inline
        assert_eq!(runs.lock().unwrap().last(), Some(&(2, me)));
        assert_eq!(cache.queued(), 0);
    });
}

/// Two delivery threads; the first callback blocks until every key is inserted (a backlog of
/// ~2 000 entries queued), then takes the handle out of its slot and drops it, on its delivery
/// thread. The drop returns, the threads exit (flushing), every entry is delivered exactly
/// once, and writes purge inline again.
fn drop_the_handle_from_a_callback(max_pending_callbacks: usize) {
    const KEYS: u32 = 2_000;
    type Slot = Arc<Mutex<Option<PurgeThreads<u32, u32>>>>;
    let counts = Counts::new(KEYS as usize + 1);
    let slot: Slot = Arc::default();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let first = AtomicBool::new(true);
    let dropped_on: Arc<Mutex<Option<String>>> = Arc::default();
    let cache = {
        let (counts, slot, dropped_on) = (counts.clone(), slot.clone(), dropped_on.clone());
        Arc::new(
            Cache::<u32, u32>::builder()
                .capacity(10)
                .max_pending_callbacks(max_pending_callbacks)
                .on_evict(move |_, Evicted { key, .. }| {
                    thread::sleep(Duration::from_micros(20));
                    counts.hit(key);
                    if first.swap(false, SeqCst) {
                        release_rx.lock().unwrap().recv().unwrap();
                        // Out of the mutex before the drop, which joins the other thread.
                        let handle = slot.lock().unwrap().take();
                        *dropped_on.lock().unwrap() = Some(thread_name());
                        drop(handle);
                    }
                })
                .build()
                .unwrap(),
        )
    };
    *slot.lock().unwrap() = Some(cache.spawn_purge_threads(2).unwrap());
    for key in 0..KEYS {
        cache.insert(key, key);
    }
    release.send(()).unwrap();
    // The first callback drops the handle; the threads then exit, each flushing.
    wait_until(|| Arc::strong_count(&cache) == 1);
    let dropped_on = dropped_on.lock().unwrap().clone();
    let dropped_on = dropped_on.expect("no callback dropped the handle");
    assert!(dropped_on.starts_with(PURGE_THREAD), "dropped on {dropped_on:?}");
    assert_eq!(cache.queued(), 0, "the threads exited leaving entries queued");
    let resident = resident(&cache, 0..KEYS);
    assert_eq!(resident.len(), 10);
    assert_exactly_once("after the handle's drop in a callback", &counts, &resident, 0..KEYS);
    // Writes purge inline again.
    let before = counts.total();
    cache.insert(KEYS, 0);
    assert_eq!(counts.total(), before + 1, "an evicting insert did not purge inline");
    drop(cache);
}

#[test]
fn dropping_the_handle_from_a_callback() {
    watchdog("dropping_the_handle_from_a_callback", || drop_the_handle_from_a_callback(8192));
}

/// With one callback slot for two delivery threads: the thread that drops the handle in its
/// callback holds the only slot, which the other thread's exit flush waits for. A drop that
/// joined that thread from there would deadlock (it did, before the drop stopped joining from
/// inside a callback).
#[test]
fn dropping_the_handle_from_a_callback_with_one_slot() {
    watchdog("dropping_the_handle_from_a_callback_with_one_slot", || {
        drop_the_handle_from_a_callback(1)
    });
}

/// The handle of cache `x` dropped inside a callback of another cache `y`, on this thread,
/// while `x`'s threads work through a backlog behind a one-slot cap: the drop returns at once,
/// `x`'s threads finish on their own, and every entry of `x` is delivered exactly once.
#[test]
fn dropping_the_handle_inside_another_caches_callback() {
    watchdog("dropping_the_handle_inside_another_caches_callback", || {
        const KEYS: u32 = 1_000;
        let counts = Counts::new(KEYS as usize + 1);
        let x = {
            let counts = counts.clone();
            Arc::new(
                Cache::<u32, u32>::builder()
                    .capacity(10)
                    .max_pending_callbacks(1)
                    .on_evict(move |_, Evicted { key, .. }| {
                        thread::sleep(Duration::from_micros(20));
                        counts.hit(key);
                    })
                    .build()
                    .unwrap(),
            )
        };
        let slot: Arc<Mutex<Option<PurgeThreads<u32, u32>>>> = Arc::default();
        let dropped_in_y = Arc::new(AtomicBool::new(false));
        let y = {
            let (slot, dropped_in_y) = (slot.clone(), dropped_in_y.clone());
            Cache::<u32, u32>::builder()
                .capacity(1)
                .on_evict(move |_, _| {
                    let handle = slot.lock().unwrap().take();
                    if let Some(handle) = handle {
                        drop(handle);
                        dropped_in_y.store(true, SeqCst);
                    }
                })
                .build()
                .unwrap()
        };
        *slot.lock().unwrap() = Some(x.spawn_purge_threads(2).unwrap());
        for key in 0..KEYS {
            x.insert(key, key);
        }
        y.insert(0, 0);
        y.insert(1, 1); // evicts 0: y's callback, on this thread, drops x's handle
        assert!(dropped_in_y.load(SeqCst), "y's callback did not drop the handle");
        wait_until(|| Arc::strong_count(&x) == 1);
        assert_eq!(x.queued(), 0, "x's threads exited leaving entries queued");
        let resident = resident(&x, 0..KEYS);
        assert_eq!(resident.len(), 10);
        assert_exactly_once("after the drop in y's callback", &counts, &resident, 0..KEYS);
        let before = counts.total();
        x.insert(KEYS, 0); // evicts one, inline: the threads are gone
        assert_eq!(counts.total(), before + 1, "an evicting insert did not purge inline");
    });
}

/// The user's last `Arc<Cache>` dropped while the handle lives (with a backlog waiting behind
/// a blocked callback): the cache lives on in the threads; once the handle is dropped, every
/// queued entry is delivered exactly once, the cache is dropped, and every value was dropped
/// exactly once (delivered ones by the callback, resident ones with the cache).
#[test]
fn dropping_the_last_user_arc_before_the_handle() {
    watchdog("dropping_the_last_user_arc_before_the_handle", || {
        const KEYS: u32 = 2_000;
        let counts = Counts::new(KEYS as usize);
        let values = DropLog::new(KEYS as usize);
        let (cache, entered, release) = gated_cache::<Tracked>(&counts);
        let handle = cache.spawn_purge_threads(2).unwrap();
        for key in 0..KEYS {
            cache.insert(key, values.track(u64::from(key)));
        }
        entered.recv().unwrap();
        assert_eq!(cache.queued(), KEYS as usize - 10 - 1);
        let resident = resident(&cache, 0..KEYS);
        assert_eq!(resident.len(), 10);
        let weak = Arc::downgrade(&cache);
        drop(cache);
        assert!(weak.upgrade().is_some(), "the cache went with the user's Arc");
        for &key in &resident {
            assert_eq!(values.drops(u64::from(key)), 0, "resident value {key} dropped early");
        }
        release.send(()).unwrap();
        drop(handle);
        assert!(weak.upgrade().is_none(), "the cache outlived the handle");
        assert_exactly_once("after the handle's drop", &counts, &resident, 0..KEYS);
        assert_eq!(values.not_dropped_once(), [], "values dropped other than once");
    });
}

/// A callback that inserts a fresh key for every entry it receives (each insert evicts one: an
/// endless chain) while the handle is dropped: the drop returns, and so does the cache's.
#[test]
fn dropping_the_handle_under_an_amplifying_callback_returns() {
    watchdog("dropping_the_handle_under_an_amplifying_callback_returns", || {
        let next = Arc::new(AtomicU64::new(1_000_000));
        let delivered = Arc::new(AtomicU64::new(0));
        let cache = {
            let (next, delivered) = (next.clone(), delivered.clone());
            Arc::new(
                Cache::<u64, u64>::builder()
                    .capacity(100)
                    .on_evict(move |cache, Evicted { .. }| {
                        delivered.fetch_add(1, SeqCst);
                        let key = next.fetch_add(1, SeqCst);
                        cache.insert(key, key);
                    })
                    .build()
                    .unwrap(),
            )
        };
        let handle = cache.spawn_purge_threads(2).unwrap();
        for key in 0..1_000 {
            cache.insert(key, key);
        }
        // The chain runs on the delivery threads.
        wait_until(|| delivered.load(SeqCst) > 5_000);
        drop(handle);
        assert_eq!(Arc::strong_count(&cache), 1, "a delivery thread still holds the cache");
        let after_handle = delivered.load(SeqCst);
        assert!(after_handle > 5_000);
        // No thread runs the chain any more: the queue stays as the drop left it.
        let queued = cache.queued();
        thread::sleep(Duration::from_millis(10));
        assert_eq!(delivered.load(SeqCst), after_handle, "callbacks ran after the handle's drop");
        assert_eq!(cache.queued(), queued);
        drop(cache); // its drain ends too: evictions while closing are dropped
    });
}

// ---------------------------------------------------------------------------------------------
// 5. Callback panics on a delivery thread.
// ---------------------------------------------------------------------------------------------

/// Keys `k % 250 == 7` panic in the callback, on the single delivery thread; `resume` selects
/// `resume_callback_panics` instead of a counting handler. The thread survives every panic and
/// delivers the entries after them; the counts agree.
fn panics_on_a_delivery_thread_are_contained(resume: bool) {
    const KEYS: u32 = 1_000;
    const CAPACITY: u32 = 10;
    let panics = |key: u32| key % 250 == 7;
    let counts = Counts::new(KEYS as usize);
    // (key, panicked, thread name), in delivery order.
    let events: Arc<Mutex<Vec<(u32, bool, String)>>> = Arc::default();
    let handled = Arc::new(AtomicUsize::new(0));
    let builder = {
        let (counts, events) = (counts.clone(), events.clone());
        Cache::<u32, u32>::builder().capacity(CAPACITY as usize).on_evict(
            move |_, Evicted { key, .. }| {
                counts.hit(key);
                events.lock().unwrap().push((key, panics(key), thread_name()));
                if panics(key) {
                    panic!("callback panic for key {key}");
                }
            },
        )
    };
    let builder = if resume {
        builder.resume_callback_panics()
    } else {
        let handled = handled.clone();
        builder.on_callback_panic(move |panic| {
            assert!(panic.message().starts_with("callback panic for key"), "{panic:?}");
            handled.fetch_add(1, SeqCst);
        })
    };
    let cache = Arc::new(builder.build().unwrap());
    let handle = cache.spawn_purge_threads(1).unwrap();
    for key in 0..KEYS {
        cache.insert(key, key); // never panics here: the writer runs no callback
    }
    // The thread delivers the whole backlog (it would hang here, until the watchdog, had a
    // panic killed it).
    wait_until(|| counts.total() == u64::from(KEYS - CAPACITY));
    let events = events.lock().unwrap().clone();
    let not_purge: Vec<_> = events.iter().filter(|e| !e.2.starts_with(PURGE_THREAD)).collect();
    assert!(not_purge.is_empty(), "callbacks off the delivery thread: {not_purge:?}");
    let panicked = events.iter().filter(|e| e.1).count();
    assert!(panicked >= 3, "too few panics to check: {panicked}");
    let last_panic = events.iter().rposition(|e| e.1).unwrap();
    assert!(last_panic + 1 < events.len(), "nothing delivered after the last panic");
    drop(handle); // joins the thread: the counts are published
    let stats = cache.stats();
    assert_eq!(stats.callback_panics, panicked as u64);
    assert_eq!(stats.delivered, u64::from(KEYS - CAPACITY));
    if !resume {
        assert_eq!(handled.load(SeqCst), panicked);
    }
    let resident = resident(&cache, 0..KEYS);
    assert_exactly_once("after the panics", &counts, &resident, 0..KEYS);
    // The cache still works, inline.
    cache.insert(KEYS, 0);
    assert_eq!(counts.total(), u64::from(KEYS - CAPACITY + 1));
}

#[test]
fn callback_panics_on_a_delivery_thread_are_reported_and_contained() {
    watchdog("callback_panics_on_a_delivery_thread_are_reported_and_contained", || {
        panics_on_a_delivery_thread_are_contained(false)
    });
}

#[test]
fn callback_panics_on_a_delivery_thread_do_not_kill_it_under_resume() {
    watchdog("callback_panics_on_a_delivery_thread_do_not_kill_it_under_resume", || {
        panics_on_a_delivery_thread_are_contained(true)
    });
}

// ---------------------------------------------------------------------------------------------
// 6. Errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn spawn_errors() {
    watchdog("spawn_errors", || {
        let plain = Arc::new(Cache::<u32, u32>::new(8));
        assert!(matches!(plain.spawn_purge_threads(1), Err(SpawnError::NoCallback)));

        let runners: Arc<Mutex<Vec<String>>> = Arc::default();
        let cache = {
            let runners = runners.clone();
            Arc::new(
                Cache::<u32, u32>::builder()
                    .capacity(1)
                    .on_evict(move |_, _| runners.lock().unwrap().push(thread_name()))
                    .build()
                    .unwrap(),
            )
        };
        let error = cache.spawn_purge_threads(0).unwrap_err();
        assert!(matches!(error, SpawnError::ZeroThreads), "{error:?}");
        assert!(!error.to_string().is_empty());
        // A refused spawn left nothing running: writes purge inline.
        cache.insert(0, 0);
        cache.insert(1, 1);
        assert_eq!(*runners.lock().unwrap(), [thread_name()]);

        let handle = cache.spawn_purge_threads(2).unwrap();
        let error = cache.spawn_purge_threads(1).unwrap_err();
        assert!(matches!(error, SpawnError::AlreadyRunning), "{error:?}");
        assert!(matches!(cache.spawn_purge_threads(0), Err(SpawnError::ZeroThreads)));
        // The refused spawn did not stop the running threads.
        cache.insert(2, 2); // evicts 1
        wait_until(|| runners.lock().unwrap().len() == 2);
        let second = runners.lock().unwrap()[1].clone();
        assert!(second.starts_with(PURGE_THREAD), "delivered on {second:?}");
        drop(handle);

        let handle = cache.spawn_purge_threads(1).expect("a spawn after the handle's drop");
        drop(handle);
        assert_eq!(Arc::strong_count(&cache), 1);
    });
}

#[test]
fn max_queued_zero_is_refused() {
    let error = Cache::<u32, u32>::builder()
        .capacity(8)
        .max_queued(0)
        .on_evict(|_, _| {})
        .build()
        .unwrap_err();
    assert_eq!(error, BuildError::ZeroMaxQueued);
    assert!(error.to_string().contains("max_queued"), "{error}");
    assert!(Cache::<u32, u32>::builder().capacity(8).max_queued(1).build().is_ok());
}

// ---------------------------------------------------------------------------------------------
// 7. Loads wait for write-backs done by a delivery thread.
// ---------------------------------------------------------------------------------------------

type Store = Arc<Mutex<HashMap<u32, u64>>>;

/// A one-entry, one-shard write-back cache with one delivery thread (and one callback slot).
/// The callback for key 1 reports its thread's name on `entered` and blocks until `release`
/// sends.
struct WriteBack {
    cache: Arc<Cache<u32, u64>>,
    handle: PurgeThreads<u32, u64>,
    entered: mpsc::Receiver<String>,
    release: mpsc::Sender<()>,
}

fn write_back_cache(store: &Store) -> WriteBack {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let sink = store.clone();
    let cache = Arc::new(
        Cache::builder()
            .capacity(1)
            .shards(1)
            .max_pending_callbacks(1)
            .on_evict(move |_, Evicted { key, value, .. }| {
                if key == 1 {
                    entered_tx.lock().unwrap().send(thread_name()).unwrap();
                    release_rx.lock().unwrap().recv().unwrap();
                }
                sink.lock().unwrap().insert(key, value);
            })
            .build()
            .unwrap(),
    );
    let handle = cache.spawn_purge_threads(1).unwrap();
    WriteBack { cache, handle, entered, release }
}

/// Loads `key` from `store` on a new thread.
fn load_from(cache: &Arc<Cache<u32, u64>>, store: &Store, key: u32) -> thread::JoinHandle<u64> {
    let (cache, store) = (cache.clone(), store.clone());
    thread::spawn(move || {
        cache.get_or_insert_with(key, || store.lock().unwrap().get(&key).copied().unwrap_or(0))
    })
}

/// A load of a key whose evicted entry is inside its write-back callback, on a delivery
/// thread, waits for the callback to return and reads the written-back value.
#[test]
fn a_load_waits_for_the_background_write_back_of_its_key() {
    watchdog("a_load_waits_for_the_background_write_back_of_its_key", || {
        let store = Store::default();
        let WriteBack { cache, handle, entered, release } = write_back_cache(&store);
        cache.insert(1, 10);
        cache.insert(2, 20); // evicts 1; returns at once: a delivery thread runs the callback
        let runner = entered.recv().unwrap();
        assert!(runner.starts_with(PURGE_THREAD), "the write-back ran on {runner:?}");
        let reader = load_from(&cache, &store, 1);
        thread::sleep(Duration::from_millis(50)); // the reader misses 1 and would load now
        assert!(!reader.is_finished(), "the load did not wait for the write-back");
        assert_eq!(store.lock().unwrap().get(&1), None, "the write-back has not happened yet");
        release.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), 10, "the load read the store before its write-back");
        assert_eq!(cache.peek(&1), Some(10));
        drop(handle);
    });
}

/// A load of a key whose evicted entry is queued behind a blocked callback on the only
/// delivery thread waits until the thread delivers it, and reads the written-back value.
#[test]
fn a_load_waits_for_a_queued_background_write_back_of_its_key() {
    watchdog("a_load_waits_for_a_queued_background_write_back_of_its_key", || {
        let store = Store::default();
        let WriteBack { cache, handle, entered, release } = write_back_cache(&store);
        cache.insert(1, 10);
        cache.insert(2, 20); // evicts 1 into the blocked callback
        entered.recv().unwrap();
        cache.insert(3, 30); // evicts 2: queued behind it
        assert_eq!(cache.queued(), 1);
        let reader = load_from(&cache, &store, 2);
        thread::sleep(Duration::from_millis(50)); // the reader misses 2 and would load now
        assert!(!reader.is_finished(), "the load did not wait for the queued write-back");
        assert_eq!(store.lock().unwrap().get(&2), None, "the write-back has not happened yet");
        release.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), 20, "the load read the store before its write-back");
        assert_eq!(store.lock().unwrap().get(&1), Some(&10));
        drop(handle);
        assert_eq!(cache.queued(), 0);
    });
}

/// No stale loads under load (`support::stale`), with 2 delivery threads doing the write-backs
/// (~100 µs each) for about 0.6 s.
#[test]
fn background_loads_never_return_a_version_older_than_a_completed_write() {
    watchdog("background_loads_never_return_a_version_older_than_a_completed_write", || {
        assert_no_stale_loads(2, Duration::from_micros(100), Duration::from_millis(600));
    });
}
