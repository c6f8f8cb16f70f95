//! Two caches (guarantees 3, 4 and 6 across caches): user code of one cache that calls into
//! another, and a cache dropped where another cache's code runs. The tests of each guarantee
//! elsewhere mostly use one cache; the faults these tests pin down only show with two.
//!
//! * **Crossed calls cannot deadlock** (guarantee 6). Cache A's value `Clone` runs under A's
//!   lock and calls into cache B while another thread, under B's lock, calls into A: a thread
//!   holding a lock never waits for another, so each call comes back `Err(Busy)` with
//!   [`BusyCause::LockHeld`] (or panics naming it) instead of deadlocking.
//! * **Nothing is queued with nobody to deliver it** (guarantees 3 and 4). An insert into B made
//!   under A's lock that would evict is refused ([`BusyCause::WouldEvict`]), key and value
//!   handed back: its purge could not run the callback there, and no later call would be bound
//!   to. So is `clear` or `resize` of B. Inserts that evict nothing, lookups and removals work.
//! * **A cache dropped under another cache's lock** delivers its queue after that lock is
//!   released: no callback and no entry's `Drop` runs under the lock, and nothing is lost.
//! * **At thread exit** (guarantee 3): a cache kept in a `thread_local!` whose callback writes
//!   into a shared cache delivers everything still queued, into that cache, when the thread
//!   exits, in report mode and in resume mode alike.
//!
//! Anything that could deadlock runs under `support::watchdog`.

mod support;

use shardlru::{BusyCause, Cache, CallbackPanic, RemovalCause};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use support::{
    DropLog, HookValue, Tracked, clear_hook, expect_panic, fixed_hasher, holds_a_shard_lock,
    in_child, set_hook, watchdog,
};

/// A cache of hooked values: its `get` runs this thread's hook under its shard lock.
type ValueCache = Cache<u64, HookValue, ahash::RandomState>;

fn value_cache(capacity: usize) -> Arc<ValueCache> {
    let cache = Cache::builder().hasher(fixed_hasher()).capacity(capacity).shards(1);
    Arc::new(cache.build().unwrap())
}

/// What a call made from inside a hook returned, with `Busy` reduced to its cause.
type Outcome = Result<Option<u64>, BusyCause>;

// ---------------------------------------------------------------------------------------------
// Crossed calls.
// ---------------------------------------------------------------------------------------------

/// Thread 1 holds A's lock (in a value's `Clone`) and asks for B; thread 2 holds B's lock and
/// asks for A. Both wait at a barrier until both hold their lock, and again until both have
/// asked, so each asks while the other's lock is held: the classic ABBA deadlock, for which a
/// lock held by any cache must mean "do not wait".
#[test]
fn two_caches_whose_values_clone_call_each_other_do_not_deadlock() {
    let outcomes = watchdog("crossed try_get", || crossed_calls(|other| try_get(other, 1)));
    assert_eq!(outcomes, [Err(BusyCause::LockHeld), Err(BusyCause::LockHeld)]);
}

/// The same with plain `get`: each panics, naming the cause and `try_get`, and unwinds out of
/// the `Clone` (caught there): no deadlock, and both outer calls still return their value.
#[test]
fn a_plain_call_crossed_with_another_thread_panics_naming_the_cause() {
    let outcomes = watchdog("crossed get", || {
        crossed_calls(|other| {
            let message = expect_panic("get", || other.get(&1));
            assert!(message.contains("held by another thread"), "{message}");
            assert!(message.contains("Cache::try_get"), "{message}");
            Ok(None)
        })
    });
    assert_eq!(outcomes, [Ok(None), Ok(None)]);
}

/// Runs the crossed scenario: two caches holding key 1, one thread per cache, each `get`ting
/// key 1 from its own cache with a hook (run by the value's `Clone`, under the lock) that calls
/// `call` on the other cache. Returns what each hook's call returned.
fn crossed_calls(call: fn(&ValueCache) -> Outcome) -> [Outcome; 2] {
    let caches = [value_cache(4), value_cache(4)];
    for cache in &caches {
        cache.insert(1, HookValue(1));
    }
    let (both_locked, both_asked) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let threads: Vec<_> = (0..2)
        .map(|me| {
            let (mine, other) = (Arc::clone(&caches[me]), Arc::clone(&caches[1 - me]));
            let (both_locked, both_asked) = (Arc::clone(&both_locked), Arc::clone(&both_asked));
            std::thread::spawn(move || {
                let outcome = Arc::new(Mutex::new(None));
                let seen = Arc::clone(&outcome);
                set_hook(move || {
                    both_locked.wait();
                    *seen.lock().unwrap() = Some(call(&other));
                    both_asked.wait();
                });
                assert_eq!(mine.get(&1), Some(HookValue(1)), "the outer call completes");
                clear_hook();
                outcome.lock().unwrap().take().expect("the hook ran")
            })
        })
        .collect();
    let mut outcomes = threads.into_iter().map(|thread| thread.join().unwrap());
    [outcomes.next().unwrap(), outcomes.next().unwrap()]
}

fn try_get(cache: &ValueCache, key: u64) -> Outcome {
    cache.try_get(&key).map(|value| value.map(|v| v.0)).map_err(|busy| busy.cause())
}

/// Holding A's lock is no reason to refuse a call into B whose lock is free: it goes through.
#[test]
fn a_call_into_another_cache_whose_lock_is_free_goes_through() {
    let (a, b) = (value_cache(4), value_cache(4));
    a.insert(1, HookValue(1));
    b.insert(2, HookValue(2));
    let seen = Arc::new(Mutex::new(Vec::new()));
    set_hook({
        let (b, seen) = (Arc::clone(&b), Arc::clone(&seen));
        move || {
            let mut seen = seen.lock().unwrap();
            seen.push(try_get(&b, 2));
            seen.push(
                b.try_insert(3, HookValue(3)).map(|old| old.map(|v| v.0)).map_err(|e| e.cause()),
            );
            seen.push(b.try_remove(&3).map(|old| old.map(|v| v.0)).map_err(|busy| busy.cause()));
        }
    });
    assert_eq!(a.get(&1), Some(HookValue(1)));
    clear_hook();
    assert_eq!(*seen.lock().unwrap(), [Ok(Some(2)), Ok(None), Ok(Some(3))]);
    assert_eq!((b.len(), b.queued()), (1, 0));
}

// ---------------------------------------------------------------------------------------------
// Writes into another cache from under a lock.
// ---------------------------------------------------------------------------------------------

/// A cache of `Tracked` values with a callback that records each delivered key and whether a
/// shard lock was held when it ran.
struct Recorded {
    cache: Arc<Cache<u64, Tracked>>,
    /// `(key, cause, holds_a_shard_lock())` for each delivery.
    delivered: Arc<Mutex<Vec<(u64, RemovalCause, bool)>>>,
}

fn recorded(capacity: usize) -> Recorded {
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&delivered);
    let cache = Cache::builder()
        .capacity(capacity)
        .shards(1)
        .on_evict(move |_cache, evicted: shardlru::Evicted<u64, Tracked>| {
            sink.lock().unwrap().push((evicted.key, evicted.cause, holds_a_shard_lock()));
        })
        .build()
        .unwrap();
    Recorded { cache: Arc::new(cache), delivered }
}

/// A's value `Clone` inserts into B, which is full: the insert would evict, and its callback
/// could not run under A's lock, so it is refused and hands key and value back. After every
/// call has returned, nothing is left queued in B (before, the victim stayed queued with no
/// purge to come), and B holds what it held. An insert that evicts nothing goes through.
#[test]
fn an_insert_under_another_caches_lock_never_leaves_an_entry_queued() {
    let log = DropLog::new(5);
    let b = recorded(2);
    b.cache.insert(0, log.track(0));
    b.cache.insert(1, log.track(1));
    let a = value_cache(4);
    a.insert(1, HookValue(1));

    let refused = Arc::new(Mutex::new(None));
    set_hook({
        let (b, log, refused) = (Arc::clone(&b.cache), log.clone(), Arc::clone(&refused));
        move || {
            let busy = b.try_insert(2, log.track(2)).expect_err("the insert would evict");
            assert_eq!(busy.cause(), BusyCause::WouldEvict);
            let (key, value) = busy.into_inner();
            *refused.lock().unwrap() = Some((key, value.id));
            // The plain insert panics naming the cause (its key and value are dropped with the
            // panic, as a panicking call's arguments are).
            let message = expect_panic("insert", || b.insert(3, log.track(3)));
            assert!(message.contains("eviction callback"), "{message}");
            // Replacing a value evicts nothing: it goes through, the old value handed back.
            let old = b.try_insert(1, log.track(4)).expect("a replacement evicts nothing");
            assert_eq!(old.map(|old| old.id), Some(1));
        }
    });
    assert_eq!(a.get(&1), Some(HookValue(1)));
    clear_hook();

    assert_eq!(*refused.lock().unwrap(), Some((2, 2)), "the refused key and value came back");
    assert_eq!(b.cache.queued(), 0, "an entry was left queued after every call returned");
    assert!(b.delivered.lock().unwrap().is_empty(), "nothing was evicted");
    assert_eq!(resident(&b.cache), [0, 1]);
    assert_eq!(b.cache.remove(&1).map(|v| v.id), Some(4), "the replacement is in place");
    drop(b);
    assert!(
        log.not_dropped_once().is_empty(),
        "each value dropped once: {:?}",
        log.not_dropped_once()
    );
}

/// `clear` and `resize` of B from under A's lock are refused: they would lock each of B's
/// shards in turn and hand B's entries to its callback, neither of which such a thread may do.
/// B is left as it was.
#[test]
fn clear_and_resize_under_another_caches_lock_are_refused_and_change_nothing() {
    let log = DropLog::new(2);
    let b = recorded(4);
    b.cache.insert(0, log.track(0));
    b.cache.insert(1, log.track(1));
    let a = value_cache(4);
    a.insert(1, HookValue(1));
    // Without a callback, the refusal is for the waiting alone.
    let c = value_cache(4);
    c.insert(1, HookValue(1));
    set_hook({
        let (b, c) = (Arc::clone(&b.cache), Arc::clone(&c));
        move || {
            let message = expect_panic("clear", || b.clear());
            assert!(message.contains("Cache::clear") && message.contains("callback"), "{message}");
            let message = expect_panic("resize", || b.resize(1));
            assert!(message.contains("Cache::resize"), "{message}");
            let message = expect_panic("clear", || c.clear());
            assert!(message.contains("would wait for a lock"), "{message}");
            let message = expect_panic("resize", || c.resize(8));
            assert!(message.contains("would wait for a lock"), "{message}");
        }
    });
    assert_eq!(a.get(&1), Some(HookValue(1)));
    clear_hook();
    assert_eq!((b.cache.len(), b.cache.capacity(), b.cache.queued()), (2, 4, 0));
    assert!(b.delivered.lock().unwrap().is_empty());
    assert_eq!((c.len(), c.capacity()), (1, 4));
}

// ---------------------------------------------------------------------------------------------
// A cache dropped under another cache's lock.
// ---------------------------------------------------------------------------------------------

/// A's value `Clone` drops B, whose queue holds entries (its callback's own inserts overflowed
/// one purge's budget). B's callbacks and its values' drops must not run under A's lock: they
/// run when A's `get` releases it, before `get` returns, and every entry is delivered or dropped
/// exactly once.
#[test]
fn a_cache_dropped_under_another_caches_lock_delivers_after_the_lock_is_released() {
    const TRIGGER: u64 = 999;
    let log = DropLog::new(2_000);
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let b = {
        let (sink, log) = (Arc::clone(&delivered), log.clone());
        Cache::builder()
            .capacity(4)
            .shards(1)
            .on_evict(
                move |cache: &Cache<u64, Tracked>, evicted: shardlru::Evicted<u64, Tracked>| {
                    sink.lock().unwrap().push((evicted.key, holds_a_shard_lock()));
                    // One delivery evicts 100 more: more than the purge running it may deliver.
                    if evicted.key == TRIGGER {
                        for key in 1_000..1_100 {
                            cache.insert(key, log.track(key));
                        }
                    }
                },
            )
            .build()
            .unwrap()
    };
    b.insert(TRIGGER, log.track(TRIGGER));
    for key in 0..4 {
        b.insert(key, log.track(key)); // the last one evicts TRIGGER
    }
    let queued = b.queued();
    assert!(queued > 0, "entries are queued when B is dropped");
    let resident = resident(&b);
    delivered.lock().unwrap().clear();

    let a = value_cache(4);
    a.insert(1, HookValue(1));
    let dropped_in_clone = Arc::new(AtomicUsize::new(0));
    set_hook({
        let (dropped_in_clone, log) = (Arc::clone(&dropped_in_clone), log.clone());
        let mut b = Some(b);
        move || {
            assert!(holds_a_shard_lock());
            drop(b.take());
            let dropped = (0..2_000).filter(|&id| log.drops(id) > 0).count();
            dropped_in_clone.store(dropped, SeqCst);
        }
    });
    let dropped_before = (0..2_000).filter(|&id| log.drops(id) > 0).count();
    assert_eq!(a.get(&1), Some(HookValue(1)));
    clear_hook();

    assert_eq!(
        dropped_in_clone.load(SeqCst),
        dropped_before,
        "B's values were dropped under A's lock"
    );
    let delivered = delivered.lock().unwrap();
    assert_eq!(delivered.len(), queued, "every queued entry was delivered");
    let under_lock: Vec<_> = delivered.iter().filter(|&&(_, locked)| locked).collect();
    assert!(under_lock.is_empty(), "callbacks ran under A's lock: {under_lock:?}");
    for key in resident {
        assert_eq!(log.drops(key), 1, "resident entry {key} dropped once");
    }
    let keys: BTreeSet<u64> = delivered.iter().map(|&(key, _)| key).collect();
    assert_eq!(keys.len(), queued, "no entry delivered twice");
}

/// B dropped under A's lock with no callback configured and nothing queued: its entries are
/// dropped with it, right there (its drop has nothing to deliver and is not put off).
#[test]
fn a_cache_without_a_callback_dropped_under_another_caches_lock_drops_its_entries() {
    let log = DropLog::new(4);
    let b = Cache::<u64, Tracked>::builder().capacity(4).build().unwrap();
    for key in 0..4 {
        b.insert(key, log.track(key));
    }
    let a = value_cache(4);
    a.insert(1, HookValue(1));
    let seen = Arc::new(AtomicU64::new(u64::MAX));
    set_hook({
        let (seen, log) = (Arc::clone(&seen), log.clone());
        let mut b = Some(b);
        move || {
            drop(b.take());
            seen.store((0..4).filter(|&id| log.drops(id) == 1).count() as u64, SeqCst);
        }
    });
    assert_eq!(a.get(&1), Some(HookValue(1)));
    clear_hook();
    assert_eq!(seen.load(SeqCst), 4, "dropped with the cache");
    assert!(log.not_dropped_once().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Thread exit.
// ---------------------------------------------------------------------------------------------

/// How many keys the thread-local cache `L1` is given.
const L1_KEYS: u64 = 1_000;

/// The shared cache that `L1`'s callback writes into, and what reached its own callback.
struct Shared {
    l2: Cache<u64, u64>,
    delivered: Mutex<Vec<u64>>,
    l1_panics: AtomicUsize,
}

/// Runs the thread-exit scenario and checks that nothing was lost: a thread keeps `L1` in a
/// `thread_local!`, fills it, clears it (one purge delivers one batch of the clear into L2, the
/// rest stays queued; the deliveries nest L2's purges inside L1's), and exits. L1's drop, run
/// among the thread's thread-local destructors, delivers the rest into L2, whose evictions are
/// delivered in turn, with purges nested as during the thread's life.
fn thread_exit_scenario(resume: bool) {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    let shared = SHARED.get_or_init(|| Shared {
        l2: Cache::builder()
            .capacity(64)
            .shards(1)
            .on_evict(|_, evicted| {
                SHARED.get().unwrap().delivered.lock().unwrap().push(evicted.key)
            })
            .build()
            .unwrap(),
        delivered: Mutex::new(Vec::new()),
        l1_panics: AtomicUsize::new(0),
    });
    thread_local! {
        static L1: RefCell<Option<Cache<u64, u64>>> = const { RefCell::new(None) };
    }
    std::thread::spawn(move || {
        let builder = Cache::builder().capacity(L1_KEYS as usize).shards(1);
        let builder = if resume {
            builder.resume_callback_panics()
        } else {
            builder.on_callback_panic(|_: CallbackPanic<'_>| {
                SHARED.get().unwrap().l1_panics.fetch_add(1, SeqCst);
            })
        };
        let l1 = builder
            .on_evict(|_, evicted| {
                SHARED.get().unwrap().l2.insert(evicted.key, evicted.value);
            })
            .build()
            .unwrap();
        // L1 is stored first, so that its thread-local is destroyed after any the library
        // set up while the thread used it (destructors run in reverse order of first use).
        L1.with(|slot| *slot.borrow_mut() = Some(l1));
        L1.with(|slot| {
            let l1 = slot.borrow();
            let l1 = l1.as_ref().unwrap();
            for key in 0..L1_KEYS {
                l1.insert(key, key);
            }
            l1.clear();
            assert!(l1.queued() > 0, "entries are left queued for the thread's exit");
        });
    })
    .join()
    .unwrap();

    assert_eq!(shared.l1_panics.load(SeqCst), 0, "L1's callback panicked at thread exit");
    let mut seen: Vec<u64> = shared.delivered.lock().unwrap().clone();
    seen.extend(shared.l2.snapshot().into_iter().map(|(key, _)| key));
    seen.sort_unstable();
    assert_eq!(seen, (0..L1_KEYS).collect::<Vec<_>>(), "every key reached L2 exactly once");
}

#[test]
fn a_thread_local_cache_delivers_its_queue_into_another_cache_at_thread_exit() {
    thread_exit_scenario(false);
}

/// The same under `resume_callback_panics` (before, it aborted the process: each callback
/// panicked in a thread-local destructor, and the first panic resumed there). Run in a child
/// process, so that an abort fails this test instead of ending the test binary.
#[test]
fn a_thread_local_cache_in_resume_mode_delivers_its_queue_at_thread_exit() {
    if in_child("a_thread_local_cache_in_resume_mode_delivers_its_queue_at_thread_exit") {
        thread_exit_scenario(true);
    }
}

/// The keys below 2,000 that `cache` holds, in order (its values cannot be cloned for a
/// `snapshot`).
fn resident(cache: &Cache<u64, Tracked>) -> Vec<u64> {
    (0..2_000).filter(|key| cache.contains_key(key)).collect()
}
