//! Guarantee 5 (re-entrant callbacks work, seeds `000` and `002`): the eviction callback gets
//! `&Cache` and may call back into the cache that is running it.
//!
//! * **Every method works** from the callback, on the purging thread, and every value still
//!   leaves the cache exactly once (guarantee 3).
//! * **The stack stays bounded**: a purge started from a callback does not recurse, so a
//!   100 000-step eviction chain runs on a 256 KiB stack.
//! * **The work per call stays bounded**: one call runs a bounded number of callbacks even when
//!   the callback inserts more than it consumes (lru_ng's "amplification attack"), and a long queue
//!   is delivered one bounded batch per call.
//! * **Dropping the cache terminates**, even when its callback amplifies, resizes or clears
//!   during the drop.
//!
//! Anything that could deadlock or loop runs under `support::watchdog`.

mod support;

use shardlru::{Cache, Evicted, RemovalCause};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use support::{DropLog, Tracked, fixed_hasher, watchdog};

/// How many entries beyond the queue length at its start one purge may deliver
/// (`PURGE_EXTRA` in `src/purge.rs`; the crate docs say "a few more").
const PURGE_EXTRA: usize = 64;

/// The most of a long queue one purge delivers (`PURGE_BATCH` in `src/purge.rs`, documented on
/// `Cache::purge`).
const PURGE_BATCH: usize = 256;

// ---------------------------------------------------------------------------------------------
// Every method, called from the callback.
// ---------------------------------------------------------------------------------------------

/// Where every value went, to check that each one left the cache exactly once (guarantee 3).
#[derive(Default)]
struct Ledger {
    inserted: BTreeSet<u64>,
    left: BTreeMap<u64, &'static str>,
}

impl Ledger {
    fn inserted(&mut self, value: u64) {
        assert!(self.inserted.insert(value), "value {value} inserted twice");
    }

    fn left(&mut self, value: u64, how: &'static str) {
        if let Some(before) = self.left.insert(value, how) {
            panic!("value {value} left the cache twice: {before}, then {how}");
        }
    }
}

/// Scenario 1: from the purging thread, the callback calls `get`, `insert` (new keys that evict
/// more entries, evicted keys put back, present keys replaced), `remove`, `clear`, `resize` and
/// `purge` on its own cache. Everything completes; after every call `len() <= capacity()`; and
/// in the end every value inserted is in exactly one place: in the cache, handed back to a caller,
/// or delivered to the callback.
#[test]
fn a_callback_may_call_every_method_of_its_own_cache() {
    /// The callback stops calling back after this many deliveries, so the chain ends.
    const ACTIVE_STEPS: u64 = 300;
    watchdog("a_callback_may_call_every_method_of_its_own_cache", || {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let fresh = Arc::new(AtomicU64::new(1_000));
        let steps = Arc::new(AtomicU64::new(0));
        let causes = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
        let cache = Cache::<u64, u64>::builder()
            .hasher(fixed_hasher())
            .capacity(16)
            .shards(2)
            // An assertion failing inside the callback must fail the test, not be reported.
            .resume_callback_panics()
            .on_evict({
                let (ledger, fresh, steps, causes) =
                    (ledger.clone(), fresh.clone(), steps.clone(), causes.clone());
                move |cache, Evicted { key, value, cause, .. }| {
                    ledger.lock().unwrap().left(value, "delivered");
                    *causes.lock().unwrap().entry(format!("{cause:?}")).or_default() += 1;
                    let step = steps.fetch_add(1, SeqCst);
                    if step >= ACTIVE_STEPS {
                        return;
                    }
                    let new_value = || {
                        let value = fresh.fetch_add(1, SeqCst);
                        ledger.lock().unwrap().inserted(value);
                        value
                    };
                    match step % 12 {
                        // A new key, which evicts another entry once the shard is full.
                        0 | 6 => {
                            let (k, v) = (fresh.fetch_add(1, SeqCst), new_value());
                            assert_eq!(cache.insert(k, v), None);
                            assert_eq!(cache.get(&k), Some(v), "a key just inserted is found");
                        }
                        // The evicted key, put back (a "pinning" callback).
                        1 | 7 => {
                            let v = new_value();
                            if let Some(old) = cache.insert(key, v) {
                                ledger.lock().unwrap().left(old, "replaced");
                            }
                            assert_eq!(cache.peek(&key), Some(v));
                        }
                        // A present key, replaced.
                        2 | 8 => {
                            if let Some(&(k, old)) = cache.snapshot().first() {
                                let v = new_value();
                                assert_eq!(cache.insert(k, v), Some(old));
                                ledger.lock().unwrap().left(old, "replaced");
                                assert_eq!(cache.get(&k), Some(v));
                            }
                        }
                        // A present key, removed.
                        3 | 9 => {
                            if let Some(&(k, old)) = cache.snapshot().last() {
                                assert_eq!(cache.remove(&k), Some(old));
                                ledger.lock().unwrap().left(old, "removed");
                                assert!(!cache.contains_key(&k));
                            }
                        }
                        // A purge from inside the callback does not recurse.
                        4 | 10 => assert_eq!(cache.purge(), 0),
                        5 if step % 36 == 5 => cache.clear(),
                        5 => {
                            assert_eq!(cache.insert(fresh.fetch_add(1, SeqCst), new_value()), None)
                        }
                        11 => {
                            let to = if cache.capacity() == 16 { 4 } else { 16 };
                            cache.resize(to).unwrap();
                            assert_eq!(cache.capacity(), to);
                        }
                        _ => unreachable!(),
                    }
                    assert!(cache.len() <= cache.capacity());
                }
            })
            .build()
            .unwrap();

        // Insert until the callback has gone through all its steps (the chains it starts may
        // die out when it clears or shrinks the cache).
        let mut driver_inserts = 0;
        while steps.load(SeqCst) < ACTIVE_STEPS {
            let (k, v) = (fresh.fetch_add(1, SeqCst), fresh.fetch_add(1, SeqCst));
            ledger.lock().unwrap().inserted(v);
            assert_eq!(cache.insert(k, v), None);
            assert!(cache.len() <= cache.capacity());
            driver_inserts += 1;
            assert!(driver_inserts < 10_000, "the callback never got through its steps");
        }
        for _ in 0..1_000 {
            if cache.queued() == 0 {
                break;
            }
            cache.purge();
        }
        assert_eq!(cache.queued(), 0, "later purges drain what is left");
        println!("{driver_inserts} inserts from the test drove {ACTIVE_STEPS} callback steps");

        let mut ledger = ledger.lock().unwrap();
        for (_, value) in cache.snapshot() {
            ledger.left(value, "still cached");
        }
        let accounted: BTreeSet<u64> = ledger.left.keys().copied().collect();
        assert_eq!(accounted, ledger.inserted, "every value is accounted for exactly once");
        let delivered = ledger.left.values().filter(|&&how| how == "delivered").count();
        let stats = cache.stats();
        assert_eq!(stats.delivered as usize, delivered);
        assert_eq!(stats.callback_panics, 0);
        assert!(stats.len <= stats.capacity);
        let causes = causes.lock().unwrap();
        println!("deliveries by cause: {causes:?}");
        for cause in [RemovalCause::Capacity, RemovalCause::Clear, RemovalCause::Shrink] {
            assert!(causes.contains_key(&format!("{cause:?}")), "no {cause:?} in {causes:?}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// A purge reached from a callback does not recurse, and one call does bounded work.
// ---------------------------------------------------------------------------------------------

/// Scenario 2: a chain of 100 000 evictions, each callback inserting one key that evicts the
/// next, runs to the end on a thread with a 256 KiB stack. If a purge reached from a callback
/// recursed, the stack would grow with the chain and overflow (aborting the test binary); instead
/// each purge call delivers a bounded batch, and repeated `purge()` calls finish the chain.
#[test]
fn a_long_eviction_chain_runs_on_a_small_stack() {
    const STEPS: u64 = 100_000;
    watchdog("a_long_eviction_chain_runs_on_a_small_stack", || {
        let small_stack = std::thread::Builder::new()
            .name("small stack".into())
            .stack_size(256 * 1024)
            .spawn(|| {
                let next = Arc::new(AtomicU64::new(2));
                let cache = Cache::<u64, u64>::builder()
                    .capacity(1)
                    .shards(1)
                    .resume_callback_panics()
                    .on_evict({
                        let next = next.clone();
                        move |cache, _evicted| {
                            let key = next.fetch_add(1, SeqCst);
                            if key <= STEPS {
                                // Evicts the previous key of the chain; its purge returns at once.
                                assert_eq!(cache.insert(key, key), None);
                            }
                        }
                    })
                    .build()
                    .unwrap();
                cache.insert(0, 0);
                cache.insert(1, 1); // evicts 0: the chain starts
                let mut purges = 1;
                while cache.queued() > 0 {
                    let queued = cache.queued();
                    let delivered = cache.purge();
                    assert!(delivered >= 1, "a purge with entries queued and no rival delivers");
                    assert!(delivered <= queued + PURGE_EXTRA, "{delivered} from {queued} queued");
                    purges += 1;
                    assert!(purges <= STEPS, "the chain stopped making progress");
                }
                // Keys 0..=STEPS were inserted; the last one stays, the others were delivered.
                assert_eq!(cache.len(), 1);
                assert_eq!(cache.peek(&STEPS), Some(STEPS));
                assert_eq!(cache.stats().delivered, STEPS);
                purges
            })
            .expect("spawn the small-stack thread");
        let purges = small_stack.join().expect("the chain completes");
        println!("{STEPS} chained evictions delivered by {purges} purge calls");
    });
}

/// The amplifying callback of lru_ng's docs: each evicted entry inserts `FANOUT` new keys into
/// the same (full) cache, so each delivery queues `FANOUT` more evictions.
fn amplifying_cache(
    capacity: usize,
    amplify: Arc<AtomicBool>,
    invocations: Arc<AtomicUsize>,
    log: DropLog,
    next_id: Arc<AtomicU64>,
) -> Cache<u64, Tracked> {
    const FANOUT: usize = 3;
    Cache::<u64, Tracked>::builder()
        .capacity(capacity)
        .shards(1)
        .resume_callback_panics()
        .on_evict(move |cache, _evicted| {
            invocations.fetch_add(1, SeqCst);
            if amplify.load(SeqCst) {
                for _ in 0..FANOUT {
                    let id = next_id.fetch_add(1, SeqCst);
                    assert!(cache.insert(id, log.track(id)).is_none());
                }
            }
        })
        .build()
        .unwrap()
}

/// Scenario 3: an amplifying callback cannot trap a caller. Every public call returns, having
/// run the callback at most (queue length at its start + its own eviction + `PURGE_EXTRA`)
/// times; what is left stays visible in `queued()` and later purges go on delivering.
/// Nothing overflows the stack, nothing deadlocks, and once the callback calms down the queue
/// drains and every entry is accounted for.
#[test]
fn an_amplifying_callback_cannot_trap_a_caller() {
    watchdog("an_amplifying_callback_cannot_trap_a_caller", || {
        const CAPACITY: u64 = 32;
        let amplify = Arc::new(AtomicBool::new(true));
        let invocations = Arc::new(AtomicUsize::new(0));
        let log = DropLog::new(200_000);
        let next_id = Arc::new(AtomicU64::new(CAPACITY));
        let cache = amplifying_cache(
            CAPACITY as usize,
            amplify.clone(),
            invocations.clone(),
            log.clone(),
            next_id.clone(),
        );
        for id in 0..CAPACITY {
            cache.insert(id, log.track(id));
        }
        for round in 0..5 {
            let queued = cache.queued();
            let before = invocations.load(SeqCst);
            let own_eviction = if round % 2 == 0 {
                let id = next_id.fetch_add(1, SeqCst);
                assert!(cache.insert(id, log.track(id)).is_none()); // evicts, then purges
                1
            } else {
                cache.purge();
                0
            };
            let ran = invocations.load(SeqCst) - before;
            println!("round {round}: {queued} queued before, {ran} callbacks in the call");
            assert!(ran >= 1, "round {round}: the call delivered nothing");
            assert!(
                ran <= queued + own_eviction + PURGE_EXTRA,
                "round {round}: one call ran {ran} callbacks with {queued} queued at its start"
            );
            assert!(cache.queued() > queued, "the leftovers stay visible");
            assert!(cache.len() <= cache.capacity());
        }

        amplify.store(false, SeqCst);
        let mut purges = 0;
        while cache.queued() > 0 {
            assert!(cache.purge() > 0, "a later purge goes on delivering");
            purges += 1;
            assert!(purges <= 10, "the queue does not drain once the callback calms down");
        }
        let inserted = next_id.load(SeqCst);
        let stats = cache.stats();
        assert_eq!(stats.delivered as usize, invocations.load(SeqCst));
        assert_eq!(stats.delivered + cache.len() as u64, inserted, "every entry is accounted for");
        drop(cache);
        assert!((0..inserted).all(|id| log.drops(id) == 1), "every value dropped exactly once");
    });
}

/// A caller who meets a long queue pays for one batch of it, not for the whole queue: with
/// thousands of entries queued, each `purge()` delivers at most `PURGE_BATCH + PURGE_EXTRA`, the
/// queue shrinks call by call, and it drains completely.
#[test]
fn a_long_queue_is_delivered_one_bounded_batch_per_call() {
    watchdog("a_long_queue_is_delivered_one_bounded_batch_per_call", || {
        const QUEUED: u64 = 5_000;
        let delivered = Arc::new(AtomicUsize::new(0));
        let cache = Cache::<u64, u64>::builder()
            .capacity(8)
            .shards(1)
            .on_evict({
                let delivered = delivered.clone();
                move |cache, evicted| {
                    delivered.fetch_add(1, SeqCst);
                    // The first eviction queues many entries: its inserts evict, and the purges
                    // they start return at once (this thread is already purging).
                    if evicted.key == 0 {
                        for key in 1_000..1_000 + QUEUED {
                            cache.insert(key, key);
                        }
                    }
                }
            })
            .build()
            .unwrap();
        for key in 0..=8 {
            cache.insert(key, key); // the ninth insert evicts key 0
        }
        let mut calls = 0;
        let mut before = cache.queued();
        assert!(before > PURGE_BATCH + PURGE_EXTRA, "a queue of {before} entries");
        while before > 0 {
            let got = cache.purge();
            calls += 1;
            assert!(got <= PURGE_BATCH + PURGE_EXTRA, "one call delivered {got}");
            assert_eq!(cache.queued(), before - got);
            assert!(got > 0, "a purge with {before} queued and a free slot delivers");
            before -= got;
        }
        assert!(calls >= QUEUED as usize / (PURGE_BATCH + PURGE_EXTRA));
        // Every key but the 8 left in the cache was delivered exactly once.
        assert_eq!(delivered.load(SeqCst) as u64, 9 + QUEUED - 8);
        assert_eq!(cache.len(), 8);
    });
}

// ---------------------------------------------------------------------------------------------
// Dropping the cache terminates, whatever its callback does meanwhile.
// ---------------------------------------------------------------------------------------------

/// Scenario 3, at the end: dropping a cache whose amplifying callback is still active, with
/// thousands of entries queued, terminates. The queued entries are delivered during the drop
/// (the cache is closing, so what those callbacks insert and evict is dropped with it instead of
/// queueing more), and every value is dropped exactly once.
#[test]
fn dropping_a_cache_with_an_amplifying_callback_terminates() {
    watchdog("dropping_a_cache_with_an_amplifying_callback_terminates", || {
        const CAPACITY: u64 = 32;
        let amplify = Arc::new(AtomicBool::new(true));
        let invocations = Arc::new(AtomicUsize::new(0));
        let log = DropLog::new(100_000);
        let next_id = Arc::new(AtomicU64::new(CAPACITY));
        let cache = amplifying_cache(
            CAPACITY as usize,
            amplify,
            invocations.clone(),
            log.clone(),
            next_id.clone(),
        );
        for id in 0..CAPACITY {
            cache.insert(id, log.track(id));
        }
        for _ in 0..2 {
            let id = next_id.fetch_add(1, SeqCst);
            cache.insert(id, log.track(id));
            cache.purge();
        }
        let queued = cache.queued();
        assert!(queued > 1_000, "the callback amplified: {queued} queued");
        let before = invocations.load(SeqCst);
        drop(cache);
        assert_eq!(
            invocations.load(SeqCst) - before,
            queued,
            "the drop delivered every queued entry"
        );
        let inserted = next_id.load(SeqCst);
        assert!((0..inserted).all(|id| log.drops(id) == 1), "every value dropped exactly once");
        assert!((inserted..100_000).all(|id| log.drops(id) == 0));
    });
}

/// What a callback does, besides inserting a fresh key, when it runs during the cache's drop.
#[derive(Clone, Copy, Debug)]
enum DuringDrop {
    /// `resize(capacity())`: a no-op outside the drop.
    ResizeToSameCapacity,
    /// `clear()`.
    Clear,
}

/// Scenario 3, the drop's own bound: a callback that calls `resize` or `clear` and inserts during
/// the drop would queue one more entry per delivery if the drop kept queueing; a closing cache
/// drops what it evicts instead, so the drop delivers only what was queued when it began. The
/// callback here stops after `LIMIT` deliveries so that a regression fails instead of hanging.
#[test]
fn dropping_a_cache_whose_callback_resizes_or_clears_terminates() {
    const LIMIT: usize = 100_000;
    watchdog("dropping_a_cache_whose_callback_resizes_or_clears_terminates", || {
        let mut unbounded = Vec::new();
        for variant in [DuringDrop::ResizeToSameCapacity, DuringDrop::Clear] {
            const TRIGGER: u64 = 999;
            let dropping = Arc::new(AtomicBool::new(false));
            let during_drop = Arc::new(AtomicUsize::new(0));
            let next = Arc::new(AtomicU64::new(1_000));
            let cache = Cache::<u64, u64>::builder()
                .capacity(4)
                .shards(1)
                .resume_callback_panics()
                .on_evict({
                    let (dropping, during_drop, next) =
                        (dropping.clone(), during_drop.clone(), next.clone());
                    move |cache, evicted| {
                        if !dropping.load(SeqCst) {
                            // Strands entries in the queue, so that the drop has some to deliver.
                            if evicted.key == TRIGGER {
                                for _ in 0..100 {
                                    let key = next.fetch_add(1, SeqCst);
                                    cache.insert(key, key);
                                }
                            }
                            return;
                        }
                        if during_drop.fetch_add(1, SeqCst) >= LIMIT {
                            return;
                        }
                        match variant {
                            DuringDrop::ResizeToSameCapacity => {
                                cache.resize(cache.capacity()).unwrap()
                            }
                            DuringDrop::Clear => cache.clear(),
                        }
                        let key = next.fetch_add(1, SeqCst);
                        cache.insert(key, key);
                    }
                })
                .build()
                .unwrap();
            cache.insert(TRIGGER, TRIGGER);
            for key in 0..4 {
                cache.insert(key, key); // the last one evicts TRIGGER
            }
            let queued = cache.queued();
            assert!(queued > 0, "entries are queued at drop time");
            dropping.store(true, SeqCst);
            drop(cache);
            let deliveries = during_drop.load(SeqCst);
            println!("{variant:?}: {queued} queued at drop, {deliveries} deliveries during it");
            if deliveries > queued + 1_000 {
                unbounded.push(variant);
            }
        }
        assert!(unbounded.is_empty(), "the drop did not end on its own for {unbounded:?}");
    });
}
