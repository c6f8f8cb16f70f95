//! Re-entrancy hazards (guarantees 5 and 6, seeds `000`, `001` and `002`): user code that calls
//! back into the cache that is running it.
//!
//! * From the **eviction callback**, which gets `&Cache`: every method works, a purge started
//!   there does not recurse (a 100 000-step chain runs on a 256 KiB stack), and one call does a
//!   bounded amount of callback work even when the callback inserts more than it consumes
//!   (lru_ng's "amplification attack").
//! * From a key's **`Hash`**, which runs before any lock: the inner call simply works.
//! * From a key's **`Eq`** or a value's **`Clone`**, which run under a shard lock: the inner
//!   call is refused (`Err(Busy)` from `try_*`, a panic naming the `try_*` twin from the plain
//!   methods, 0 from `purge`) instead of deadlocking, while other threads are not refused.
//!
//! Anything that could deadlock or loop runs under `support::watchdog`.

mod support;

use shardlru::{BusyCause, Cache, Evicted, RemovalCause};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use support::{DropLog, Tracked, fixed_hasher, watchdog};

/// How many entries beyond the queue length at its start one purge may deliver
/// (`PURGE_EXTRA` in `src/purge.rs`; the crate docs say "a few more").
const PURGE_EXTRA: usize = 64;

/// The most of a backlog one purge delivers (`PURGE_BATCH` in `src/purge.rs`, documented on
/// `Cache::purge`).
const PURGE_BATCH: usize = 256;

// ---------------------------------------------------------------------------------------------
// Hooks: user code (a key's Hash or Eq, a value's Clone) that runs a test-provided closure.
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// The closure that hooked `Hash`/`Eq`/`Clone` impls run on this thread. It is taken out
    /// while it runs, so that the calls it makes do not run it again.
    static HOOK: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
}

fn set_hook(hook: impl FnMut() + 'static) {
    HOOK.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));
}

fn clear_hook() {
    drop(HOOK.with(|slot| slot.borrow_mut().take()));
}

fn run_hook() {
    /// Puts the hook back when it returns or panics (a refused call may panic through it).
    struct PutBack(Box<dyn FnMut()>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            let hook = std::mem::replace(&mut self.0, Box::new(|| {}));
            HOOK.with(|slot| {
                slot.borrow_mut().get_or_insert(hook);
            });
        }
    }
    let Some(hook) = HOOK.with(|slot| slot.borrow_mut().take()) else { return };
    let mut running = PutBack(hook);
    (running.0)();
}

/// Which of a key's methods runs the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Never,
    OnHash,
    OnEq,
}

/// A key whose `Hash` or `Eq` runs the hook. Equality and hashing use `id` only, and hash
/// exactly like a `u64`.
#[derive(Clone, Debug)]
struct HookKey {
    id: u64,
    hook: Hook,
}

fn plain(id: u64) -> HookKey {
    HookKey { id, hook: Hook::Never }
}

fn on_hash(id: u64) -> HookKey {
    HookKey { id, hook: Hook::OnHash }
}

fn on_eq(id: u64) -> HookKey {
    HookKey { id, hook: Hook::OnEq }
}

impl Hash for HookKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.hook == Hook::OnHash {
            run_hook();
        }
        self.id.hash(state);
    }
}

impl PartialEq for HookKey {
    fn eq(&self, other: &Self) -> bool {
        if self.hook == Hook::OnEq || other.hook == Hook::OnEq {
            run_hook();
        }
        self.id == other.id
    }
}

impl Eq for HookKey {}

/// A value whose `Clone` (run under the shard lock by `get`, `peek` and `snapshot`) runs the hook.
#[derive(Debug, PartialEq, Eq)]
struct HookValue(u64);

impl Clone for HookValue {
    fn clone(&self) -> Self {
        run_hook();
        HookValue(self.0)
    }
}

type HookCache = Cache<HookKey, u64, ahash::RandomState>;

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "<not a string>".to_owned()
    }
}

/// Runs `call`, which must panic as a refused re-entrant call to `method`, and returns the
/// message.
fn refused_with_panic(method: &str, call: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(call))
        .expect_err(&format!("a re-entrant `{method}` must panic, not go through"));
    let message = panic_message(&*payload);
    assert!(message.contains("re-entrant call"), "`{method}` panicked with: {message}");
    assert!(message.contains(&format!("Cache::{method}")), "`{method}` panicked with: {message}");
    message
}

/// The index of the shard that `id` falls in, found through the public statistics: the one
/// whose insert count goes up. Leaves the key in the cache with value `id`.
fn shard_of(cache: &HookCache, id: u64) -> usize {
    let before = cache.shard_stats();
    cache.insert(plain(id), id);
    let after = cache.shard_stats();
    (0..after.len()).find(|&i| after[i].inserts > before[i].inserts).expect("some shard took it")
}

// ---------------------------------------------------------------------------------------------
// Re-entry from the eviction callback.
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

// ---------------------------------------------------------------------------------------------
// Re-entry from a key's Hash, which runs before any lock.
// ---------------------------------------------------------------------------------------------

/// Scenario 4: a key whose `Hash` calls `get`, `insert` (which evicts and runs the callback) or
/// `remove` on the same cache just works: the hash is computed before the shard lock is taken.
/// The outer call then sees what the inner calls did, and `Hash` runs once per call.
#[test]
fn a_hash_that_calls_into_the_same_cache_works() {
    watchdog("a_hash_that_calls_into_the_same_cache_works", || {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let cache = Arc::new(
            HookCache::builder()
                .hasher(fixed_hasher())
                .capacity(8)
                .shards(1)
                .resume_callback_panics()
                .on_evict({
                    let delivered = delivered.clone();
                    move |_, evicted| delivered.lock().unwrap().push(evicted.key.id)
                })
                .build()
                .unwrap(),
        );
        for id in 0..8 {
            cache.insert(plain(id), id);
        }
        let hook_runs = Rc::new(Cell::new(0));

        // get: the hook inserts the very key the outer call looks up (evicting key 0).
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.get(&plain(1)), Some(1));
                assert_eq!(cache.insert(plain(100), 1_000), None);
            }
        });
        assert_eq!(cache.get(&on_hash(100)), Some(1_000));
        assert_eq!(hook_runs.get(), 1, "the key is hashed once per call");
        assert_eq!(*delivered.lock().unwrap(), [0], "the inner insert evicted and purged");

        // insert: the hook inserts the key first, so the outer insert replaces it.
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.insert(plain(101), 1_010), None);
            }
        });
        assert_eq!(cache.insert(on_hash(101), 1_011), Some(1_010));
        assert_eq!(cache.peek(&plain(101)), Some(1_011));

        // remove: the hook inserts the key, and the outer remove takes it out again.
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.insert(plain(102), 1_020), None);
                assert_eq!(cache.remove(&plain(1)), Some(1));
            }
        });
        assert_eq!(cache.remove(&on_hash(102)), Some(1_020));
        clear_hook();

        assert_eq!(hook_runs.get(), 3);
        assert!(!cache.contains_key(&plain(102)));
        assert!(!cache.contains_key(&plain(1)));
        assert!(cache.len() <= cache.capacity());
        let mut keys: Vec<u64> = cache.snapshot().into_iter().map(|(k, _)| k.id).collect();
        keys.sort_unstable();
        assert_eq!(keys, [4, 5, 6, 7, 100, 101]);
        // 100 evicted 0; 101 evicted 2 (1 had been touched by the first hook); 102 evicted 3.
        assert_eq!(*delivered.lock().unwrap(), [0, 2, 3]);
        // 100 and 101 were inserted with a hooked key and stay findable with a plain one.
        assert_eq!(cache.get(&plain(100)), Some(1_000));
    });
}

// ---------------------------------------------------------------------------------------------
// Re-entry from a key's Eq or a value's Clone, which run under the shard lock.
// ---------------------------------------------------------------------------------------------

/// Scenario 5: from a key's `Eq`, which runs under the shard lock, every `try_*` method of the
/// same cache returns `Err(Busy)` (and `try_insert` hands the key and the value back), every
/// plain method panics with a message that names the `try_*` method, and `purge()` returns 0
/// leaving the queue alone; `len`, `capacity`, `stats` and `pending_evictions` take no lock and
/// answer. The outer call then completes correctly, and its own trailing purge delivers what the
/// refused purge could not.
#[test]
fn an_eq_that_calls_into_the_same_cache_is_refused() {
    watchdog("an_eq_that_calls_into_the_same_cache_is_refused", || {
        const TRIGGER: u64 = 999;
        let delivered = Arc::new(AtomicUsize::new(0));
        let cache = Arc::new(
            HookCache::builder()
                .hasher(fixed_hasher())
                .capacity(8)
                .shards(1)
                .resume_callback_panics()
                .on_evict({
                    let delivered = delivered.clone();
                    move |cache, evicted| {
                        delivered.fetch_add(1, SeqCst);
                        // Strands entries in the queue: 100 evictions from one delivery are more
                        // than the purge running it may deliver.
                        if evicted.key.id == TRIGGER {
                            for id in 1_000..1_100 {
                                cache.insert(plain(id), id);
                            }
                        }
                    }
                })
                .build()
                .unwrap(),
        );
        cache.insert(plain(TRIGGER), TRIGGER);
        for id in 0..8 {
            cache.insert(plain(id), id); // the last one evicts TRIGGER
        }
        let stranded = cache.queued();
        assert!(stranded > 0, "entries are queued for the refused purge to leave alone");

        let hook_runs = Rc::new(Cell::new(0));
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                let present = plain(1_095);
                assert_eq!(cache.try_get(&present).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                assert_eq!(cache.try_peek(&present).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                assert_eq!(cache.try_contains_key(&present).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                assert_eq!(cache.try_remove(&present).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                let (key, value) = cache
                    .try_insert(plain(5_000), 5_000)
                    .expect_err("a re-entrant try_insert is refused")
                    .into_inner();
                assert_eq!((key.id, value), (5_000, 5_000), "the key and value come back");

                refused_with_panic("get", || {
                    cache.get(&present);
                });
                refused_with_panic("peek", || {
                    cache.peek(&present);
                });
                refused_with_panic("contains_key", || {
                    cache.contains_key(&present);
                });
                refused_with_panic("remove", || {
                    cache.remove(&present);
                });
                let message = refused_with_panic("insert", || {
                    cache.insert(plain(1), 1);
                });
                assert!(message.contains("Cache::try_insert"), "{message}");
                refused_with_panic("clear", || cache.clear());
                refused_with_panic("resize", || {
                    let _ = cache.resize(4);
                });
                refused_with_panic("snapshot", || {
                    let _ = cache.snapshot();
                });

                let queued = cache.queued();
                assert_eq!(cache.purge(), 0, "no callback runs while this thread holds a lock");
                assert_eq!(cache.queued(), queued);
                assert_eq!(cache.len(), 8);
                assert_eq!(cache.capacity(), 8);
                assert_eq!(cache.stats().queued, queued);
            }
        });
        let delivered_before = delivered.load(SeqCst);
        assert_eq!(cache.get(&on_eq(1_095)), Some(1_095), "the outer get completes correctly");
        assert_eq!(hook_runs.get(), 1);
        assert_eq!(delivered.load(SeqCst), delivered_before, "get does not purge");
        assert_eq!(cache.queued(), stranded, "the refused purge left the queue as it was");

        // The outer remove purges before it locks (it hands a value back), then holds the lock
        // while its Eq runs the same refusals.
        assert_eq!(cache.remove(&on_eq(1_096)), Some(1_096));
        clear_hook();
        assert_eq!(hook_runs.get(), 2);
        assert_eq!(cache.queued(), 0, "the outer call purged, with no lock held");
        assert_eq!(delivered.load(SeqCst), delivered_before + stranded);

        // Nothing refused left a trace: the cache is whole and usable.
        assert_eq!(cache.len(), 7);
        assert!(!cache.contains_key(&plain(5_000)));
        for id in (1_092..1_100).filter(|&id| id != 1_096) {
            assert_eq!(cache.get(&plain(id)), Some(id));
        }
        assert_eq!(cache.insert(plain(1), 1), None);
        assert_eq!(cache.len(), 8);
        assert_eq!(cache.stats().callback_panics, 0);
    });
}

/// Scenario 5: a plain method called from `Eq` and not caught there panics through the outer
/// call. The outer call unwinds, its shard lock is released (on this thread: `try_get` is not
/// `Busy`; on another: no deadlock), and the cache is consistent and usable: nothing lost,
/// nothing inserted by the refused call.
#[test]
fn a_refused_call_from_eq_unwinds_the_outer_call_and_leaves_the_cache_usable() {
    watchdog("a_refused_call_from_eq_unwinds", || {
        let cache = Arc::new(
            HookCache::builder().hasher(fixed_hasher()).capacity(256).shards(4).build().unwrap(),
        );
        for id in 0..32 {
            cache.insert(plain(id), id * 10);
        }
        let expected_len = 32;
        assert_eq!(cache.len(), expected_len, "no shard is full: nothing was evicted");
        set_hook({
            let cache = cache.clone();
            move || {
                cache.insert(plain(7_777), 1); // refused: panics through Eq and the outer call
            }
        });
        let outer_get = catch_unwind(AssertUnwindSafe(|| cache.get(&on_eq(5))));
        let outer_insert = catch_unwind(AssertUnwindSafe(|| cache.insert(on_eq(6), 666)));
        let outer_remove = catch_unwind(AssertUnwindSafe(|| cache.remove(&on_eq(7))));
        clear_hook();
        for (name, outcome) in [
            ("get", outer_get.map(drop)),
            ("insert", outer_insert.map(drop)),
            ("remove", outer_remove.map(drop)),
        ] {
            let payload = outcome.expect_err(name);
            let message = panic_message(&*payload);
            assert!(message.contains("re-entrant call to Cache::insert"), "{name}: {message}");
            assert!(message.contains("Cache::try_insert"), "{name}: {message}");
        }

        assert!(cache.try_get(&plain(5)).is_ok(), "this thread holds no lock any more");
        assert_eq!(cache.len(), expected_len);
        assert!(!cache.contains_key(&plain(7_777)));
        let snapshot = cache.snapshot();
        assert_eq!(snapshot.len(), expected_len);
        for (key, value) in snapshot {
            assert_eq!(value, key.id * 10, "key {} kept its value", key.id);
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                for id in 0..32 {
                    assert_eq!(cache.get(&plain(id)), Some(id * 10));
                }
                cache.insert(plain(100), 100);
                assert_eq!(cache.remove(&plain(100)), Some(100));
            });
        });
    });
}

/// Scenario 5: a value whose `Clone` (run under the shard lock by `get`, `peek` and `snapshot`)
/// calls into the same cache is refused the same way, and the outer call returns the right value.
#[test]
fn a_value_clone_that_calls_into_the_same_cache_is_refused() {
    watchdog("a_value_clone_that_calls_into_the_same_cache_is_refused", || {
        let cache = Arc::new(
            Cache::<u64, HookValue>::builder()
                .hasher(fixed_hasher())
                .capacity(8)
                .shards(2)
                .build()
                .unwrap(),
        );
        for id in 0..4 {
            cache.insert(id, HookValue(id * 10));
        }
        let hook_runs = Rc::new(Cell::new(0));
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.try_get(&3).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                assert_eq!(cache.try_remove(&3).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                let (key, value) = cache.try_insert(9, HookValue(90)).unwrap_err().into_inner();
                assert_eq!((key, value), (9, HookValue(90)));
                refused_with_panic("get", || {
                    let _ = cache.get(&3);
                });
                refused_with_panic("insert", || {
                    let _ = cache.insert(9, HookValue(90));
                });
                assert_eq!(cache.purge(), 0);
            }
        });
        assert_eq!(cache.get(&1), Some(HookValue(10)));
        assert_eq!(cache.peek(&2), Some(HookValue(20)));
        let mut snapshot = cache.snapshot();
        clear_hook();
        assert_eq!(hook_runs.get(), 2 + 4, "one clone per get/peek, one per entry in snapshot");
        snapshot.sort_by_key(|(k, _)| *k);
        assert_eq!(snapshot, (0..4).map(|id| (id, HookValue(id * 10))).collect::<Vec<_>>());
        assert_eq!(cache.len(), 4);
        assert!(!cache.contains_key(&9));
    });
}

/// Scenario 5: the refusal is per thread. While this thread's `Eq` holds the lock of shard A,
/// another thread's call on shard B goes through, and another thread's call on shard A is not
/// refused either: it waits for the lock (seen through shard A's contention counter) and gets
/// its answer once the outer call releases it.
#[test]
fn other_threads_are_not_refused_while_eq_holds_a_lock() {
    watchdog("other_threads_are_not_refused_while_eq_holds_a_lock", || {
        let cache = Arc::new(
            HookCache::builder().hasher(fixed_hasher()).capacity(256).shards(4).build().unwrap(),
        );
        // Keys for shard A (the one the outer call locks) and for some other shard B.
        let outer = 0;
        let shard_a = shard_of(&cache, outer);
        let (mut same_shard, mut other_shard) = (None, None);
        for id in 1..64 {
            let shard = shard_of(&cache, id);
            if shard == shard_a {
                same_shard.get_or_insert(id);
            } else {
                other_shard.get_or_insert(id);
            }
            if same_shard.is_some() && other_shard.is_some() {
                break;
            }
        }
        let (same_shard, other_shard) = (same_shard.unwrap(), other_shard.unwrap());
        assert!(cache.len() < cache.capacity() / 4, "no shard is full: nothing was evicted");

        let waiter = Arc::new(Mutex::new(None));
        set_hook({
            let (cache, waiter) = (cache.clone(), waiter.clone());
            move || {
                assert_eq!(cache.try_get(&plain(other_shard)).map_err(|busy| busy.cause()), Err(BusyCause::Reentered));
                // Another thread, another shard: served at once.
                let answer = std::thread::scope(|s| {
                    s.spawn(|| cache.try_get(&plain(other_shard))).join().unwrap()
                });
                assert_eq!(answer, Ok(Some(other_shard)), "another thread is not refused");
                // Another thread, this shard: it blocks on the lock this thread holds.
                let contended = cache.shard_stats()[shard_a].lock_contended;
                let handle = std::thread::spawn({
                    let cache = cache.clone();
                    move || cache.try_get(&plain(same_shard))
                });
                while cache.shard_stats()[shard_a].lock_contended == contended {
                    assert!(!handle.is_finished(), "the other thread did not wait for the lock");
                    std::thread::yield_now();
                }
                *waiter.lock().unwrap() = Some(handle);
            }
        });
        assert_eq!(cache.get(&on_eq(outer)), Some(outer));
        clear_hook();
        let handle = waiter.lock().unwrap().take().expect("the hook ran");
        assert_eq!(handle.join().unwrap(), Ok(Some(same_shard)), "served once the lock is free");
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

/// Scenario 5, the wording of the refusal: the panic of a plain method tells the user which
/// `try_*` method returns `Err(Busy)` instead. `clear`, `resize` and `snapshot` have no `try_*`
/// twin, yet their panics point to `Cache::try_clear`, `Cache::try_resize` and
/// `Cache::try_snapshot`.
#[test]
fn the_refusal_of_clear_resize_and_snapshot_names_no_missing_method() {
    watchdog("the_refusal_of_clear_resize_and_snapshot_names_no_missing_method", || {
        let cache = Arc::new(
            HookCache::builder().hasher(fixed_hasher()).capacity(8).shards(1).build().unwrap(),
        );
        cache.insert(plain(1), 1);
        let messages = Rc::new(RefCell::new(Vec::new()));
        set_hook({
            let (cache, messages) = (cache.clone(), messages.clone());
            move || {
                let mut messages = messages.borrow_mut();
                messages.push(refused_with_panic("clear", || cache.clear()));
                messages.push(refused_with_panic("resize", || {
                    let _ = cache.resize(4);
                }));
                messages.push(refused_with_panic("snapshot", || {
                    let _ = cache.snapshot();
                }));
            }
        });
        assert_eq!(cache.get(&on_eq(1)), Some(1));
        clear_hook();
        let messages = messages.borrow();
        assert_eq!(messages.len(), 3);
        for message in messages.iter() {
            for missing in ["try_clear", "try_resize", "try_snapshot"] {
                assert!(
                    !message.contains(missing),
                    "names a method that does not exist: {message}"
                );
            }
        }
    });
}

/// A caller who meets a backlog pays for one batch of it, not for the whole backlog: with
/// thousands of entries queued, each `purge()` delivers at most `PURGE_BATCH + PURGE_EXTRA`, the
/// backlog shrinks call by call, and it drains completely.
#[test]
fn a_backlog_is_delivered_one_bounded_batch_per_call() {
    watchdog("a_backlog_is_delivered_one_bounded_batch_per_call", || {
        const BACKLOG: u64 = 5_000;
        let delivered = Arc::new(AtomicUsize::new(0));
        let cache = Cache::<u64, u64>::builder()
            .capacity(8)
            .shards(1)
            .on_evict({
                let delivered = delivered.clone();
                move |cache, evicted| {
                    delivered.fetch_add(1, SeqCst);
                    // The first eviction queues a backlog: its inserts evict, and the purges
                    // they start return at once (this thread is already purging).
                    if evicted.key == 0 {
                        for key in 1_000..1_000 + BACKLOG {
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
        assert!(before > PURGE_BATCH + PURGE_EXTRA, "a backlog of {before} entries");
        while before > 0 {
            let got = cache.purge();
            calls += 1;
            assert!(got <= PURGE_BATCH + PURGE_EXTRA, "one call delivered {got}");
            assert_eq!(cache.queued(), before - got);
            assert!(got > 0, "a purge with {before} queued and a free slot delivers");
            before -= got;
        }
        assert!(calls >= BACKLOG as usize / (PURGE_BATCH + PURGE_EXTRA));
        // Every key but the 8 left in the cache was delivered exactly once.
        assert_eq!(delivered.load(SeqCst) as u64, 9 + BACKLOG - 8);
        assert_eq!(cache.len(), 8);
    });
}
