//! The map-like API beside `get` and `insert`: `iter`, `retain`, `remove_if` and
//! `try_remove_if`, and `get_or_insert` on a present key.
//!
//! * **`iter`** yields exactly the entries (those `snapshot` sees), each shard from most to
//!   least recent, changes no recency, and holds no lock between items: the loop body may call
//!   the same cache.
//! * **`retain`** keeps what the predicate says; each removed entry reaches the callback once,
//!   as `RemovalCause::Retain`; recency is unchanged. The predicate runs under the shard lock:
//!   a call from it into the same cache is refused (`Err(Busy)` from `try_*`, a panic from the
//!   others), and a predicate that panics leaves its shard intact.
//! * **`remove_if`** removes only a present entry whose value passes, hands it back (not to the
//!   callback), and removes nothing when the predicate panics.
//! * **`get_or_insert`** on a present key makes it the most recent, as `get` does.
//!
//! Recency checks use one-shard caches, where the cache is an exact LRU.

mod support;

use shardlru::{BusyCause, Cache, Evicted, RemovalCause};
use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use support::{Log, expect_panic, holds_a_shard_lock, logged, take, watchdog};

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// The keys of a one-shard cache, most recent first.
fn keys_mru(cache: &Cache<u32, u32>) -> Vec<u32> {
    cache.snapshot().into_iter().map(|(key, _)| key).collect()
}

// ---------------------------------------------------------------------------------------------
// iter
// ---------------------------------------------------------------------------------------------

/// `iter` over a many-shard cache yields exactly the entries `snapshot` sees, each once.
#[test]
fn iter_yields_exactly_the_entries() {
    let (cache, _log) = logged(1_000, 8);
    for key in 0..300 {
        cache.insert(key, key * 10);
    }
    let items: Vec<(u32, u32)> = cache.iter().collect();
    assert_eq!(items.len(), 300);
    assert_eq!(sorted(items.clone()), sorted(cache.snapshot()));
    assert_eq!(sorted(items), (0..300).map(|key| (key, key * 10)).collect::<Vec<_>>());
    assert_eq!(Cache::<u32, u32>::new(4).iter().next(), None, "an empty cache yields nothing");
}

/// `iter` yields a one-shard cache's entries from most to least recent and changes no recency:
/// after iterating, an insert evicts the same least recent entry as before.
#[test]
fn iter_does_not_change_recency() {
    let (cache, log) = logged(3, 1);
    for key in 1..=3 {
        cache.insert(key, key);
    }
    assert_eq!(cache.get(&1), Some(1)); // recency, most recent first: 1, 3, 2
    let items: Vec<(u32, u32)> = cache.iter().collect();
    assert_eq!(items, [(1, 1), (3, 3), (2, 2)]);
    cache.insert(4, 4);
    assert_eq!(take(&log), [(2, 2, RemovalCause::Capacity)], "iter touched the entries");
    assert_eq!(keys_mru(&cache), [4, 1, 3]);
}

/// No lock is held between the items of `iter`: the loop body calls `get` and `insert` (new
/// keys and replacements) on the same cache without deadlock or panic, and every entry present
/// before the loop is yielded exactly once.
#[test]
fn iter_holds_no_lock_between_items() {
    watchdog("iter_holds_no_lock_between_items", || {
        let (cache, _log) = logged(1_000, 4);
        for key in 0..40 {
            cache.insert(key, key);
        }
        let mut seen = HashSet::new();
        for (key, value) in cache.iter() {
            assert!(!holds_a_shard_lock(), "a lock is held between items");
            assert_eq!(value % 1_000, key % 1_000);
            assert!(seen.insert(key), "{key} yielded twice");
            assert_eq!(cache.get(&key).map(|value| value % 1_000), Some(key % 1_000));
            if key < 40 {
                cache.insert(key + 1_000, key + 1_000); // may or may not be yielded
                cache.insert(key, key + 1_000); // a replacement: `value % 1_000` stays the key
            }
        }
        assert!((0..40).all(|key| seen.contains(&key)), "an entry present all along is missing");
        assert!(seen.iter().all(|&key| key < 40 || (1_000..1_040).contains(&key)));
        assert_eq!(cache.len(), 80);
    });
}

// ---------------------------------------------------------------------------------------------
// retain
// ---------------------------------------------------------------------------------------------

/// `retain` keeps the entries the predicate accepts, each with its value; the predicate sees
/// each entry once; every removed entry reaches the callback exactly once, as `Retain`.
#[test]
fn retain_keeps_what_the_predicate_says() {
    let (cache, log) = logged(100, 4);
    for key in 0..30 {
        cache.insert(key, key * 10);
    }
    let mut seen = Vec::new();
    cache.retain(|&key, &value| {
        seen.push((key, value));
        key % 3 == 0
    });
    assert_eq!(sorted(seen), (0..30).map(|key| (key, key * 10)).collect::<Vec<_>>());
    let kept: Vec<(u32, u32)> = (0..30).filter(|key| key % 3 == 0).map(|k| (k, k * 10)).collect();
    assert_eq!(sorted(cache.snapshot()), kept);
    assert_eq!(cache.len(), 10);
    cache.purge();
    let delivered = take(&log);
    assert!(delivered.iter().all(|&(.., cause)| cause == RemovalCause::Retain), "{delivered:?}");
    let removed: Vec<(u32, u32)> =
        (0..30).filter(|key| key % 3 != 0).map(|key| (key, key * 10)).collect();
    let delivered = delivered.into_iter().map(|(key, value, _)| (key, value)).collect();
    assert_eq!(sorted(delivered), removed, "each removed entry is delivered once");
    cache.retain(|_, _| true);
    cache.purge();
    assert_eq!(take(&log), [], "a retain that keeps everything delivers nothing");
    assert_eq!(cache.len(), 10);
}

/// `retain` changes no recency: in a one-shard cache, the entries left keep their order and the
/// next eviction takes the least recent of them.
#[test]
fn retain_does_not_change_recency() {
    let (cache, log) = logged(4, 1);
    for key in 1..=4 {
        cache.insert(key, key);
    }
    assert_eq!(cache.get(&1), Some(1)); // most recent first: 1, 4, 3, 2
    cache.retain(|&key, _| key != 3);
    assert_eq!(take(&log), [(3, 3, RemovalCause::Retain)]);
    assert_eq!(keys_mru(&cache), [1, 4, 2]);
    cache.insert(5, 5); // fits
    cache.insert(6, 6); // evicts 2, the least recent
    assert_eq!(take(&log), [(2, 2, RemovalCause::Capacity)]);
}

/// A retain predicate that calls `try_get`, `try_insert` or `try_remove_if` on the same cache
/// gets `Err(Busy)` with `BusyCause::Reentered`, for keys of any shard, and `retain` goes on.
#[test]
fn a_retain_predicate_calling_the_cache_is_refused() {
    watchdog("a_retain_predicate_calling_the_cache_is_refused", || {
        let (cache, log) = logged(100, 4);
        for key in 0..8 {
            cache.insert(key, key);
        }
        let mut causes = Vec::new();
        cache.retain(|&key, _| {
            causes.push(cache.try_get(&key).map(|_| ()).map_err(|busy| busy.cause()));
            causes.push(cache.try_get(&((key + 1) % 8)).map(|_| ()).map_err(|busy| busy.cause()));
            let inserted = cache.try_insert(100 + key, 0);
            causes.push(inserted.map(|_| ()).map_err(|busy| busy.cause()));
            let removed = cache.try_remove_if(&((key + 5) % 8), |_| true);
            causes.push(removed.map(|_| ()).map_err(|busy| busy.cause()));
            key % 2 == 0
        });
        assert_eq!(causes.len(), 32);
        assert!(causes.iter().all(|cause| *cause == Err(BusyCause::Reentered)), "{causes:?}");
        assert_eq!(sorted(keys_mru(&cache)), [0, 2, 4, 6]);
        cache.purge();
        assert_eq!(take(&log).len(), 4);
    });
}

/// A retain predicate that calls the plain `get` of the same cache makes it panic with the
/// refusal; the shard being filtered keeps all its entries, and the cache stays usable.
#[test]
fn a_retain_predicate_calling_get_panics() {
    watchdog("a_retain_predicate_calling_get_panics", || {
        let (cache, log) = logged(100, 1);
        for key in 0..8 {
            cache.insert(key, key);
        }
        let message = expect_panic("get from a retain predicate", || {
            cache.retain(|&key, _| cache.get(&key).is_some())
        });
        assert!(message.contains("Cache::get"), "{message}");
        assert!(message.contains("re-entrant"), "{message}");
        assert_eq!(cache.len(), 8);
        cache.purge();
        assert_eq!(take(&log), []);
        assert_eq!(cache.get(&3), Some(3));
        cache.insert(8, 8);
        assert_eq!(cache.len(), 9);
    });
}

/// A retain predicate that panics partway through a one-shard cache leaves every entry in
/// place (even those it had already rejected), delivers nothing, and the cache stays usable:
/// a later `retain` works.
#[test]
fn a_panicking_retain_predicate_leaves_the_shard_intact() {
    let (cache, log) = logged(100, 1);
    for key in 0..10 {
        cache.insert(key, key);
    }
    let before = keys_mru(&cache);
    let calls = Cell::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        cache.retain(|_, _| {
            calls.set(calls.get() + 1);
            assert!(calls.get() < 5, "the predicate panics on its 5th call");
            false
        })
    }));
    assert!(result.is_err(), "the predicate's panic goes on in the caller");
    assert_eq!(calls.get(), 5);
    assert_eq!(cache.len(), 10, "a panicking predicate removed entries");
    assert_eq!(keys_mru(&cache), before);
    cache.purge();
    assert_eq!(take(&log), []);
    cache.retain(|&key, _| key < 5);
    assert_eq!(sorted(keys_mru(&cache)), [0, 1, 2, 3, 4]);
    cache.insert(10, 10);
    assert_eq!(cache.get(&10), Some(10));
}

/// `retain` and `iter` called from an eviction callback of the same cache work (callbacks run
/// outside every lock): the callback for key 0 keeps only the even keys, and what `retain`
/// removes is delivered too, as `Retain`, by the purge already running.
#[test]
fn retain_and_iter_work_from_an_eviction_callback() {
    watchdog("retain_and_iter_work_from_an_eviction_callback", || {
        let log: Log = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cache = Cache::<u32, u32>::builder()
            .capacity(8)
            .shards(1)
            .on_evict({
                let (log, seen) = (log.clone(), seen.clone());
                move |cache, Evicted { key, value, cause, .. }| {
                    log.lock().unwrap().push((key, value, cause));
                    if key == 0 && cause == RemovalCause::Capacity {
                        seen.lock().unwrap().extend(cache.iter().map(|(key, _)| key));
                        cache.retain(|&key, _| key % 2 == 0);
                    }
                }
            })
            .build()
            .unwrap();
        for key in 0..9 {
            cache.insert(key, key); // the 9th evicts 0
        }
        cache.purge();
        assert_eq!(sorted(seen.lock().unwrap().clone()), (1..9).collect::<Vec<_>>());
        assert_eq!(sorted(keys_mru(&cache)), [2, 4, 6, 8]);
        let delivered = take(&log);
        assert_eq!(delivered[0], (0, 0, RemovalCause::Capacity));
        let retained: Vec<(u32, u32, RemovalCause)> =
            [1, 3, 5, 7].map(|key| (key, key, RemovalCause::Retain)).to_vec();
        let mut rest = delivered[1..].to_vec();
        rest.sort_by_key(|&(key, ..)| key);
        assert_eq!(rest, retained);
    });
}

// ---------------------------------------------------------------------------------------------
// remove_if
// ---------------------------------------------------------------------------------------------

/// `remove_if` removes a present entry whose value passes and hands it back (the callback gets
/// nothing), keeps one whose value fails, and never calls the predicate for an absent key.
#[test]
fn remove_if_removes_only_what_passes() {
    let (cache, log) = logged(8, 1);
    cache.insert(1, 10);
    cache.insert(2, 20);
    assert_eq!(cache.remove_if(&1, |&value| value > 10), None, "10 fails: kept");
    assert_eq!(cache.peek(&1), Some(10));
    assert_eq!(cache.remove_if(&1, |&value| value == 10), Some(10));
    assert!(!cache.contains_key(&1));
    let called = Cell::new(false);
    assert_eq!(cache.remove_if(&3, |_| called.replace(true)), None, "absent");
    assert!(!called.get(), "the predicate ran for an absent key");
    assert_eq!(cache.try_remove_if(&2, |&value| value == 20), Ok(Some(20)));
    assert_eq!(cache.try_remove_if(&2, |_| true), Ok(None));
    assert!(cache.is_empty());
    cache.purge();
    assert_eq!(take(&log), [], "removed values go back to the caller, not to the callback");
}

/// A `remove_if` predicate that panics removes nothing, and the cache stays usable.
#[test]
fn a_panicking_remove_if_predicate_removes_nothing() {
    let (cache, log) = logged(8, 1);
    cache.insert(1, 10);
    cache.insert(2, 20);
    let message = expect_panic("a panicking remove_if predicate", || {
        cache.remove_if(&1, |_| panic!("the predicate fails"))
    });
    assert_eq!(message, "the predicate fails");
    assert_eq!(cache.peek(&1), Some(10));
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.remove_if(&1, |_| true), Some(10));
    cache.insert(3, 30);
    assert_eq!(sorted(keys_mru(&cache)), [2, 3]);
    cache.purge();
    assert_eq!(take(&log), []);
}

/// A `remove_if` predicate runs under the shard lock: `try_get` of the same cache from it is
/// refused with `BusyCause::Reentered`.
#[test]
fn a_remove_if_predicate_calling_the_cache_is_refused() {
    watchdog("a_remove_if_predicate_calling_the_cache_is_refused", || {
        let (cache, _log) = logged(8, 2);
        cache.insert(1, 10);
        cache.insert(2, 20);
        let mut causes = Vec::new();
        let removed = cache.remove_if(&1, |_| {
            causes.push(cache.try_get(&1).map(|_| ()).map_err(|busy| busy.cause()));
            causes.push(cache.try_get(&2).map(|_| ()).map_err(|busy| busy.cause()));
            true
        });
        assert_eq!(removed, Some(10));
        assert_eq!(causes, [Err(BusyCause::Reentered), Err(BusyCause::Reentered)]);
        assert_eq!(cache.get(&2), Some(20));
    });
}

// ---------------------------------------------------------------------------------------------
// get_or_insert
// ---------------------------------------------------------------------------------------------

/// `get_or_insert` on a present key returns the resident value, keeps it, and makes the entry
/// the most recent: in a one-shard cache of 2 holding a then b, `get_or_insert(a)` then an
/// insert of c evicts b, not a.
#[test]
fn get_or_insert_on_a_present_key_touches_it() {
    let (cache, log) = logged(2, 1);
    cache.insert(1, 10);
    cache.insert(2, 20);
    assert_eq!(cache.get_or_insert(1, 11), 10, "the resident value stays");
    cache.insert(3, 30);
    cache.purge();
    assert_eq!(take(&log), [(2, 20, RemovalCause::Capacity)]);
    assert_eq!(keys_mru(&cache), [3, 1]);
    assert_eq!(cache.peek(&1), Some(10));
}
