//! Fault hazards (guarantee 7, with guarantee 3 for what the faults must not lose): user code
//! that panics while the cache runs it.
//!
//! * A panicking **eviction callback** is caught, counted in `stats().callback_panics` and
//!   handed to the `on_callback_panic` handler with the cache's name and the message; the entry
//!   counts as delivered, the pending-callback slot is given back, the purge goes on with the
//!   next entry and the callback stays in use. With `resume_callback_panics()` the panic reaches
//!   the caller instead, and the entries not yet delivered stay queued for a later purge.
//! * A panicking key **`Hash`** or **`Eq`** (or value `Clone`) leaves its shard whole: no entry
//!   lost, moved or counted twice, and the lock usable by this thread and others.
//! * A panicking value **`Drop`** (eviction without a callback, `clear`) leaves the cache
//!   consistent and usable, and every value dropped exactly once.
//!
//! The panicking keys and values are `support::faulty`'s.

mod support;

use shardlru::{Cache, CallbackPanic, Evicted};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use support::{
    Bomb, DropLog, Fault, Faulty, FaultyCache, Fragile, Tracked, bomb, expect_panic, fixed_hasher,
    in_child, key, run_in_child, watchdog,
};

// ---------------------------------------------------------------------------------------------
// Panicking callbacks.
// ---------------------------------------------------------------------------------------------

/// Scenario 6: a callback that panics on some entries. One `clear()` delivers eight entries in
/// one purge; the three panics are caught and reported with the cache's name and message, each
/// of those entries counts as delivered (its value was dropped once, while unwinding), the purge
/// goes on with the next entry, and with `max_pending_callbacks(1)` later purges still get the
/// only slot (a leaked slot would make every later purge skip).
#[test]
fn a_panicking_callback_is_caught_counted_reported_and_stays_enabled() {
    let log = DropLog::new(32);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let cache = Cache::<u64, Tracked>::builder()
        .capacity(8)
        .shards(1)
        .max_pending_callbacks(1)
        .name("pages")
        .on_evict({
            let seen = seen.clone();
            move |_cache, evicted| {
                seen.lock().unwrap().push(evicted.key);
                if evicted.key % 3 == 1 {
                    panic!("cannot write back page {}", evicted.key);
                }
            }
        })
        .on_callback_panic({
            let reports = reports.clone();
            move |panic: CallbackPanic<'_>| {
                reports.lock().unwrap().push(format!("{}: {}", panic.cache_name(), panic.message()))
            }
        })
        .build()
        .unwrap();
    for id in 0..8 {
        cache.insert(id, log.track(id));
    }
    cache.clear(); // queues all eight, least recent first, and purges them in one go
    assert_eq!(*seen.lock().unwrap(), (0..8).collect::<Vec<_>>(), "the purge went on");
    assert_eq!(
        *reports.lock().unwrap(),
        [
            "pages: cannot write back page 1",
            "pages: cannot write back page 4",
            "pages: cannot write back page 7"
        ]
    );
    let stats = cache.stats();
    assert_eq!((stats.delivered, stats.callback_panics, stats.purges_skipped), (8, 3, 0));
    assert_eq!(cache.queued(), 0);
    assert!((0..8).all(|id| log.drops(id) == 1), "each value dropped once, panicking or not");

    // The callback stays in use, and the only slot was given back each time.
    for id in 10..20 {
        cache.insert(id, log.track(id)); // 18 and 19 evict 10 and 11
    }
    assert_eq!(seen.lock().unwrap()[8..], [10, 11]);
    assert_eq!(reports.lock().unwrap().len(), 4, "10 % 3 == 1 panicked and was reported too");
    let stats = cache.stats();
    assert_eq!((stats.delivered, stats.callback_panics, stats.purges_skipped), (10, 4, 0));
    assert_eq!(cache.queued(), 0);
    drop(cache);
    assert!((0..8).chain(10..20).all(|id| log.drops(id) == 1), "every value dropped once");
}

/// Scenario 7: with `resume_callback_panics()`, a callback's panic resumes in whichever call was
/// purging: `clear`, `purge` or `insert`. Each time the pending-callback slot is given back (with
/// a cap of 1, the next purge still delivers), the entries not yet delivered stay queued and
/// visible, and a later purge delivers them: in the end every entry was delivered exactly once and
/// every value dropped exactly once.
#[test]
fn a_resumed_callback_panic_reaches_the_caller_and_loses_nothing() {
    let log = DropLog::new(32);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cache = Cache::<u64, Tracked>::builder()
        .capacity(8)
        .shards(1)
        .max_pending_callbacks(1)
        .resume_callback_panics()
        .on_evict({
            let seen = seen.clone();
            move |_cache, Evicted { key, value, .. }| {
                seen.lock().unwrap().push(key);
                if [2, 5, 8].contains(&key) {
                    panic!("write-back of {key} failed");
                }
                drop(value);
            }
        })
        .build()
        .unwrap();
    for id in 0..8 {
        cache.insert(id, log.track(id));
    }

    // clear: removes all eight, then its purge panics on 2.
    let message = expect_panic("clear", || cache.clear());
    assert_eq!(message, "write-back of 2 failed");
    assert_eq!(cache.len(), 0, "clear finished before its purge started");
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    assert_eq!(cache.queued(), 5, "the rest stays queued");
    let stats = cache.stats();
    assert_eq!((stats.delivered, stats.callback_panics), (3, 1));

    // purge: the slot came back (cap 1), so it delivers 3 and 4, then panics on 5.
    let message = expect_panic("purge", || cache.purge());
    assert_eq!(message, "write-back of 5 failed");
    assert_eq!(cache.queued(), 2);
    assert_eq!(cache.purge(), 2, "a later purge delivers the rest");
    assert_eq!(*seen.lock().unwrap(), (0..8).collect::<Vec<_>>());

    // insert: the new entry is in, the evicted one was delivered, then the panic resumed.
    for id in 8..16 {
        cache.insert(id, log.track(id));
    }
    let message = expect_panic("insert", || cache.insert(16, log.track(16))); // evicts 8
    assert_eq!(message, "write-back of 8 failed");
    assert!(cache.contains_key(&16), "the insert itself took effect");
    assert!(!cache.contains_key(&8));
    assert_eq!(cache.len(), 8);
    assert_eq!(cache.insert(17, log.track(17)), None, "and the next insert purges normally");
    assert_eq!(seen.lock().unwrap()[8..], [8, 9]);
    let stats = cache.stats();
    assert_eq!((stats.delivered, stats.callback_panics, stats.purges_skipped), (10, 3, 0));
    assert!((0..10).all(|id| log.drops(id) == 1), "delivered values dropped exactly once");
    drop(cache);
    assert!((0..18).all(|id| log.drops(id) == 1), "and the rest with the cache");
}

/// Scenario 7, while unwinding: a cache with `resume_callback_panics()` dropped by a thread that
/// is already panicking delivers its queued entries, and a callback that panics then is caught
/// (resuming would abort the process): the drop delivers every entry and the original panic is
/// the one that reaches `catch_unwind`.
#[test]
fn a_callback_panic_while_unwinding_neither_aborts_nor_stops_the_drop() {
    const TRIGGER: u64 = 999;
    let armed = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let cache = Cache::<u64, u64>::builder()
        .capacity(4)
        .shards(1)
        .name("unwinding")
        .resume_callback_panics()
        .on_evict({
            let (armed, delivered) = (armed.clone(), delivered.clone());
            move |cache, evicted| {
                delivered.fetch_add(1, SeqCst);
                if evicted.key == TRIGGER {
                    // Strands entries in the queue: more than one purge may deliver.
                    for key in 1_000..1_100 {
                        cache.insert(key, key);
                    }
                } else if armed.load(SeqCst) {
                    panic!("write-back of {} failed", evicted.key);
                }
            }
        })
        .build()
        .unwrap();
    cache.insert(TRIGGER, TRIGGER);
    for key in 0..4 {
        cache.insert(key, key); // the last one evicts TRIGGER
    }
    let queued = cache.queued();
    assert!(queued > 0);
    let before = delivered.load(SeqCst);
    armed.store(true, SeqCst);
    let message = expect_panic("the request", move || {
        let _cache = cache;
        panic!("the request failed"); // drops the cache while unwinding
    });
    assert_eq!(message, "the request failed");
    assert_eq!(delivered.load(SeqCst) - before, queued, "the drop delivered every queued entry");
}

/// Scenario 7, while unwinding, continued: the builder documents that a callback panic caught
/// while the thread is already unwinding "is reported instead" of resumed. With
/// `resume_callback_panics()` there is no handler, so the report would be the default line on
/// stderr; this runs the test above in a child process and looks for that line.
#[test]
fn a_callback_panic_while_unwinding_is_reported() {
    let output = run_in_child("a_callback_panic_while_unwinding_neither_aborts_nor_stops_the_drop");
    assert!(output.contains("write-back of"), "the callback did panic in the child: {output}");
    assert!(
        output.contains("eviction callback of cache `unwinding` panicked"),
        "no report of the swallowed panics on stderr:\n{output}"
    );
}

/// Scenario 7, during the cache's drop: with `resume_callback_panics()`, a callback that panics
/// while the drop delivers the queued entries resumes out of the drop. The drop should still
/// deliver the other queued entries (guarantee 3: "entries still queued when the cache is dropped
/// are delivered during the drop"): the first panic resumes once the queue is empty.
#[test]
fn a_resumed_callback_panic_during_the_drop_still_delivers_the_rest() {
    const TRIGGER: u64 = 999;
    let armed = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let cache = Cache::<u64, u64>::builder()
        .capacity(4)
        .shards(1)
        .resume_callback_panics()
        .on_evict({
            let (armed, delivered) = (armed.clone(), delivered.clone());
            move |cache, evicted| {
                delivered.fetch_add(1, SeqCst);
                if evicted.key == TRIGGER {
                    for key in 1_000..1_100 {
                        cache.insert(key, key); // strands entries in the queue
                    }
                } else if armed.swap(false, SeqCst) {
                    panic!("write-back of {} failed", evicted.key); // only the first one
                }
            }
        })
        .build()
        .unwrap();
    cache.insert(TRIGGER, TRIGGER);
    for key in 0..4 {
        cache.insert(key, key);
    }
    let queued = cache.queued();
    assert!(queued > 1);
    let before = delivered.load(SeqCst);
    armed.store(true, SeqCst);
    let message = expect_panic("drop", move || drop(cache));
    assert!(message.starts_with("write-back of"), "{message}");
    assert_eq!(delivered.load(SeqCst) - before, queued, "every queued entry was delivered");
}

/// Resume mode, a value on its way back: with entries queued and a callback that panics, a call
/// that hands a value back must not lose it to a panic resumed in that same call. `remove` used
/// to take the value out and then purge, so the resumed panic dropped the value while unwinding,
/// neither returned nor delivered; a replacing `insert` did the same to the old value. Now
/// `remove` purges before it takes the value (the panic leaves the entry in the cache) and a
/// replacing `insert`, which queues nothing, does not purge.
#[test]
fn a_resumed_callback_panic_never_drops_a_value_on_its_way_back() {
    let log = DropLog::new(64);
    let armed = Arc::new(AtomicBool::new(true));
    let cache = Cache::<u64, Tracked>::builder()
        .capacity(16)
        .shards(1)
        .resume_callback_panics()
        .on_evict({
            let armed = armed.clone();
            move |_cache, evicted| {
                if armed.load(SeqCst) {
                    panic!("write-back of {} failed", evicted.key);
                }
            }
        })
        .build()
        .unwrap();
    for id in 0..8 {
        cache.insert(id, log.track(id));
    }
    expect_panic("clear", || cache.clear()); // delivers 0, which panics: 1..8 stay queued
    assert_eq!(cache.queued(), 7);
    // An insert of a new key purges after it: the panic resumes, with the entry in place.
    expect_panic("insert", || cache.insert(50, log.track(50)));
    assert!(cache.contains_key(&50));

    expect_panic("remove", || cache.remove(&50));
    assert!(cache.contains_key(&50), "the removed value was lost to the resumed panic");
    assert_eq!(log.drops(50), 0);
    expect_panic("try_remove", || cache.try_remove(&50));
    assert!(cache.contains_key(&50), "the removed value was lost to the resumed panic");

    let replaced = catch_unwind(AssertUnwindSafe(|| cache.insert(50, log.track(51))));
    let old = replaced.expect("a replacing insert does not purge, so it does not panic");
    assert_eq!(old.map(|old| old.id), Some(50), "the old value comes back");
    let replaced = catch_unwind(AssertUnwindSafe(|| cache.try_insert(50, log.track(52))));
    let old = replaced.expect("nor does try_insert").expect("nothing refused it");
    assert_eq!(old.map(|old| old.id), Some(51));
    assert_eq!(log.drops(50) + log.drops(51), 2, "handed back, then dropped here");

    armed.store(false, SeqCst);
    assert_eq!(cache.remove(&50).map(|value| value.id), Some(52));
    cache.purge();
    assert_eq!(cache.queued(), 0);
    drop(cache);
    assert!((0..8).chain(50..53).all(|id| log.drops(id) == 1), "every value dropped once");
}

/// Report mode, a handler that panics too: the handler set with `on_callback_panic` is user code
/// and is contained like the callback, in an ordinary purge (`clear` and `insert` return, a
/// `remove` returns its value, each purge goes on with the next entry) and in the drop (every
/// queued entry is delivered and the drop returns). Its panic is reported on stderr. Before,
/// the handler's panic unwound out of the purge: `remove` lost its value, and the drop left the
/// queue undelivered, and the process aborted when that drop ran while unwinding from the first
/// panic: so this runs in a child process.
#[test]
fn a_panicking_panic_handler_is_contained_like_the_callback() {
    if !in_child("a_panicking_panic_handler_is_contained_like_the_callback") {
        return;
    }
    let (cache, log, calls) = cache_with_a_panicking_handler();
    cache.clear(); // one batch is delivered, the rest stays queued
    let queued = cache.queued();
    assert!(queued > 0 && queued < HANDLED as usize, "{queued} queued after one batch");
    assert_eq!(cache.insert(5_000, log.track(HANDLED)), None);
    assert!(cache.queued() < queued, "the insert's purge delivered another batch");
    assert_eq!(cache.remove(&5_000).map(|value| value.id), Some(HANDLED), "the value came back");
    let stats = cache.stats();
    assert_eq!(stats.callback_panics, stats.delivered);
    drop(cache);
    let (callbacks, handled) = (calls.0.load(SeqCst) as u64, calls.1.load(SeqCst) as u64);
    assert_eq!((callbacks, handled), (HANDLED, HANDLED), "the drop delivered every queued entry");
    assert!(log.not_dropped_once().is_empty(), "every value dropped once");
}

/// The same while the thread is already unwinding: a panic escaping the handler then would
/// abort the process, so this runs in a child process.
#[test]
fn a_panicking_panic_handler_while_unwinding_neither_aborts_nor_stops_the_drop() {
    if !in_child("a_panicking_panic_handler_while_unwinding_neither_aborts_nor_stops_the_drop") {
        return;
    }
    let (cache, log, calls) = cache_with_a_panicking_handler();
    cache.clear();
    let message = expect_panic("the request", move || {
        let _cache = cache;
        panic!("the request failed"); // drops the cache while unwinding
    });
    assert_eq!(message, "the request failed");
    assert_eq!(calls.0.load(SeqCst), HANDLED as usize, "the drop delivered every queued entry");
    assert!((0..HANDLED).all(|id| log.drops(id) == 1), "every value dropped once");
}

/// How many times the callback and the handler ran.
type Calls = Arc<(AtomicUsize, AtomicUsize)>;

/// How many entries [`cache_with_a_panicking_handler`] holds.
const HANDLED: u64 = 400;

/// A cache of [`HANDLED`] entries whose callback always panics, with a handler that panics too.
/// One purge delivers at most 320 entries, so a `clear` leaves some of them queued.
fn cache_with_a_panicking_handler() -> (Cache<u64, Tracked>, DropLog, Calls) {
    let log = DropLog::new(HANDLED as usize + 1);
    let calls: Calls = Arc::default();
    let cache = Cache::<u64, Tracked>::builder()
        .capacity(HANDLED as usize)
        .shards(1)
        .name("handled")
        .on_evict({
            let calls = calls.clone();
            move |_cache, evicted| {
                calls.0.fetch_add(1, SeqCst);
                panic!("write-back of {} failed", evicted.key);
            }
        })
        .on_callback_panic({
            let calls = calls.clone();
            move |panic: CallbackPanic<'_>| {
                calls.1.fetch_add(1, SeqCst);
                panic!("the handler failed too, on: {}", panic.message());
            }
        })
        .build()
        .unwrap();
    for id in 0..HANDLED {
        cache.insert(id, log.track(id));
    }
    (cache, log, calls)
}

// ---------------------------------------------------------------------------------------------
// Panicking Hash, Eq and Clone.
// ---------------------------------------------------------------------------------------------

/// Every entry of `expected` is in the cache with its value, and nothing else is; the counts
/// agree.
fn assert_holds<S: BuildHasher>(cache: &FaultyCache<S>, expected: &BTreeMap<u64, u64>) {
    assert_eq!(cache.len(), expected.len());
    assert_eq!(cache.shard_stats().iter().map(|s| s.len).sum::<usize>(), expected.len());
    for (&id, &value) in expected {
        assert_eq!(cache.peek(&key(id)).map(|v| v.value), Some(value), "key {id}");
    }
    let mut snapshot: Vec<(u64, u64)> =
        cache.snapshot().into_iter().map(|(k, v)| (k.id, v.value)).collect();
    snapshot.sort_unstable();
    assert_eq!(snapshot, expected.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
}

/// Scenario 8: `Hash` and `Eq` panicking in every keyed method, on keys present and absent.
/// After each panic the cache holds exactly what it held before (checked entry by entry), the
/// statistics did not move, this thread holds no lock (`try_get` is not `Busy`), and other
/// threads can use every shard.
#[test]
fn a_panicking_hash_or_eq_leaves_the_shard_consistent() {
    watchdog("a_panicking_hash_or_eq_leaves_the_shard_consistent", || {
        let cache = Arc::new(
            FaultyCache::builder().hasher(fixed_hasher()).capacity(256).shards(4).build().unwrap(),
        );
        let mut expected = BTreeMap::new();
        for id in 0..64 {
            cache.insert(key(id), Fragile { value: id * 10, fails: false });
            expected.insert(id, id * 10);
        }
        assert_holds(&cache, &expected);
        let before = cache.stats();

        type Op = fn(&FaultyCache, Faulty);
        let ops: [(&str, Op); 10] = [
            ("get", |c, k| {
                let _ = c.get(&k);
            }),
            ("peek", |c, k| {
                let _ = c.peek(&k);
            }),
            ("contains_key", |c, k| {
                let _ = c.contains_key(&k);
            }),
            ("insert", |c, k| {
                let _ = c.insert(k, Fragile { value: 1, fails: false });
            }),
            ("remove", |c, k| {
                let _ = c.remove(&k);
            }),
            ("try_get", |c, k| {
                let _ = c.try_get(&k);
            }),
            ("try_peek", |c, k| {
                let _ = c.try_peek(&k);
            }),
            ("try_contains_key", |c, k| {
                let _ = c.try_contains_key(&k);
            }),
            ("try_insert", |c, k| {
                let _ = c.try_insert(k, Fragile { value: 1, fails: false });
            }),
            ("try_remove", |c, k| {
                let _ = c.try_remove(&k);
            }),
        ];
        let mut panics = 0;
        for (name, op) in ops {
            for id in [3, 17, 42, 63] {
                let message = expect_panic(name, || op(&cache, Faulty { id, fault: Fault::Eq }));
                assert_eq!(message, format!("Eq of key {id} fails"), "{name}");
                panics += 1;
                assert!(cache.try_peek(&key(id)).is_ok(), "{name}: the lock was released");
                assert_holds(&cache, &expected);
            }
            for id in [5, 1_000] {
                let message = expect_panic(name, || op(&cache, Faulty { id, fault: Fault::Hash }));
                assert_eq!(message, format!("Hash of key {id} fails"), "{name}");
                panics += 1;
                assert_holds(&cache, &expected);
            }
        }
        assert_eq!(panics, 60);
        let after = cache.stats();
        assert_eq!(
            (after.hits, after.misses, after.inserts, after.evictions),
            (before.hits, before.misses, before.inserts, before.evictions),
            "a call that panicked counted nothing"
        );

        // Every shard lock is usable from other threads.
        std::thread::scope(|s| {
            for t in 0..4 {
                let (cache, expected) = (&cache, &expected);
                s.spawn(move || {
                    for (&id, &value) in expected {
                        assert_eq!(cache.get(&key(id)).map(|v| v.value), Some(value));
                    }
                    let id = 10_000 + t;
                    assert_eq!(cache.insert(key(id), Fragile { value: id, fails: false }), None);
                    assert_eq!(cache.remove(&key(id)).map(|v| v.value), Some(id));
                });
            }
        });
        assert_holds(&cache, &expected);
    });
}

/// A hasher that gives every key the same hash, so that every lookup meets every entry of the
/// shard and runs `Eq` on it, absent keys included.
#[derive(Clone, Copy, Default)]
struct Collide;

struct CollideHasher;

impl Hasher for CollideHasher {
    fn finish(&self) -> u64 {
        0x5EED_5EED_5EED_5EED
    }

    fn write(&mut self, _bytes: &[u8]) {}
}

impl BuildHasher for Collide {
    type Hasher = CollideHasher;

    fn build_hasher(&self) -> CollideHasher {
        CollideHasher
    }
}

/// Scenario 8, in a full shard: inserting an absent key whose `Eq` panics must fail before the
/// shard evicts anything. No entry is evicted, delivered or reordered (the next eviction takes
/// the same least recent entry as if nothing had happened).
#[test]
fn a_panicking_eq_in_a_full_shard_evicts_nothing() {
    watchdog("a_panicking_eq_in_a_full_shard_evicts_nothing", || {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let cache = FaultyCache::builder()
            .hasher(Collide)
            .capacity(8)
            .shards(1)
            .on_evict({
                let delivered = delivered.clone();
                move |_, evicted| delivered.lock().unwrap().push(evicted.key.id)
            })
            .build()
            .unwrap();
        let mut expected = BTreeMap::new();
        for id in 0..8 {
            cache.insert(key(id), Fragile { value: id, fails: false });
            expected.insert(id, id);
        }
        let order: Vec<u64> = cache.snapshot().iter().map(|(k, _)| k.id).collect();
        let absent = Faulty { id: 100, fault: Fault::Eq };
        let message = expect_panic("insert", || {
            cache.insert(absent.clone(), Fragile { value: 100, fails: false })
        });
        assert_eq!(message, "Eq of key 100 fails");
        expect_panic("try_insert", || {
            cache.try_insert(absent.clone(), Fragile { value: 100, fails: false })
        });
        expect_panic("get", || cache.get(&absent));
        expect_panic("remove", || cache.remove(&absent));
        assert_holds(&cache, &expected);
        assert!(delivered.lock().unwrap().is_empty(), "nothing was evicted");
        assert_eq!(cache.stats().evictions, 0);
        assert_eq!(cache.snapshot().iter().map(|(k, _)| k.id).collect::<Vec<_>>(), order);
        cache.insert(key(100), Fragile { value: 100, fails: false });
        assert_eq!(
            *delivered.lock().unwrap(),
            [0],
            "the least recent entry is still the first out"
        );
    });
}

/// Scenario 8, for values: a `Clone` that panics under the lock in `get`, `peek` or `snapshot`
/// leaves every entry in place and the lock usable.
#[test]
fn a_panicking_value_clone_leaves_the_cache_consistent() {
    watchdog("a_panicking_value_clone_leaves_the_cache_consistent", || {
        let cache =
            FaultyCache::builder().hasher(fixed_hasher()).capacity(64).shards(2).build().unwrap();
        let mut expected = BTreeMap::new();
        for id in 0..8 {
            cache.insert(key(id), Fragile { value: id, fails: false });
            expected.insert(id, id);
        }
        cache.insert(key(8), Fragile { value: 8, fails: true });
        expect_panic("get", || cache.get(&key(8)));
        expect_panic("peek", || cache.peek(&key(8)));
        expect_panic("snapshot", || cache.snapshot());
        assert!(cache.try_get(&key(1)).is_ok(), "the lock was released");
        assert_eq!(cache.remove(&key(8)), Some(Fragile { value: 8, fails: true }));
        assert_holds(&cache, &expected);
    });
}

// ---------------------------------------------------------------------------------------------
// Panicking Drop.
// ---------------------------------------------------------------------------------------------

/// Scenario 9, eviction: with no callback, `insert` drops the evicted value after releasing the
/// lock. If that drop panics, the insert has still happened, the evicted entry is gone (and was
/// dropped once), and the cache keeps working, from this thread and others.
#[test]
fn a_value_drop_that_panics_on_eviction_leaves_the_cache_usable() {
    watchdog("a_value_drop_that_panics_on_eviction", || {
        let log = DropLog::new(16);
        let cache = Cache::<u64, Bomb>::builder().capacity(4).shards(1).build().unwrap();
        cache.insert(0, bomb(&log, 0, true));
        for id in 1..4 {
            cache.insert(id, bomb(&log, id, false));
        }
        let message = expect_panic("insert", || cache.insert(4, bomb(&log, 4, false)));
        assert_eq!(message, "drop of value 0 fails");
        assert_eq!(log.drops(0), 1);
        assert!((1..5).all(|id| log.drops(id) == 0));
        assert_eq!(cache.len(), 4);
        assert!((1..5).all(|id| cache.contains_key(&id)), "the insert took effect");
        assert!(!cache.contains_key(&0));
        let stats = cache.stats();
        assert_eq!((stats.inserts, stats.evictions), (5, 1));

        // Usable: the next insert evicts the next least recent entry, as usual.
        assert!(cache.insert(5, bomb(&log, 5, false)).is_none());
        assert_eq!(log.drops(1), 1);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(cache.insert(6, bomb(&log, 6, false)).is_none());
                assert!(cache.remove(&3).is_some());
            });
        });
        assert_eq!(cache.len(), 3);
        drop(cache);
        assert!((0..7).all(|id| log.drops(id) == 1), "every value dropped exactly once");
    });
}

/// Scenario 9, `clear` with one shard: the value whose drop panics is dropped after the lock is
/// released; the entries after it in the same shard are still dropped (while unwinding), once.
/// The shard is empty, counted as empty, and usable.
#[test]
fn a_value_drop_that_panics_in_clear_leaves_the_cache_usable() {
    watchdog("a_value_drop_that_panics_in_clear_leaves_the_cache_usable", || {
        let log = DropLog::new(16);
        let cache = Cache::<u64, Bomb>::builder().capacity(8).shards(1).build().unwrap();
        for id in 0..6 {
            cache.insert(id, bomb(&log, id, id == 3));
        }
        let message = expect_panic("clear", || cache.clear());
        assert_eq!(message, "drop of value 3 fails");
        assert!((0..6).all(|id| log.drops(id) == 1), "every value dropped exactly once");
        assert_eq!(cache.len(), 0);
        assert!((0..6).all(|id| !cache.contains_key(&id)));
        cache.insert(10, bomb(&log, 10, false));
        assert!(cache.contains_key(&10));
        cache.clear();
        assert_eq!(log.drops(10), 1);
        assert!(cache.is_empty());
    });
}

/// Scenario 9, `clear` over several shards: the panic stops `clear` after the shard holding the
/// bomb; whatever it did not reach is still in the cache. Every value is either still cached or
/// dropped exactly once (never both, never twice), `len()` counts what is there, and a second
/// `clear` finishes the job.
#[test]
fn a_value_drop_that_panics_midway_through_clear_loses_nothing() {
    watchdog("a_value_drop_that_panics_midway_through_clear_loses_nothing", || {
        let log = DropLog::new(64);
        let cache = Cache::<u64, Bomb>::builder()
            .hasher(fixed_hasher())
            .capacity(256)
            .shards(4)
            .build()
            .unwrap();
        for id in 0..32 {
            cache.insert(id, bomb(&log, id, id == 13));
        }
        assert_eq!(cache.len(), 32, "no shard evicted");
        let message = expect_panic("clear", || cache.clear());
        assert_eq!(message, "drop of value 13 fails");
        let cached: Vec<u64> = (0..32).filter(|id| cache.contains_key(id)).collect();
        for id in 0..32 {
            let present = u32::from(cached.contains(&id));
            assert_eq!(present + log.drops(id), 1, "value {id}: cached {present}, dropped since");
        }
        assert_eq!(cache.len(), cached.len());
        println!("{} of 32 entries survived the interrupted clear", cached.len());
        cache.clear();
        assert!(cache.is_empty());
        assert!((0..32).all(|id| log.drops(id) == 1), "every value dropped exactly once");
    });
}
