//! The public API, call by call: `Cache` is `Send + Sync`; recency (guarantee 2: `get` and
//! `insert` make an entry most recent, `peek` and `contains_key` do not); borrowed lookups;
//! what `insert` and the `try_*` methods return; `resize` up and down and `clear` (guarantee 3:
//! what they hand to the callback, and why); and exact statistics in a deterministic scenario.

mod support;

use shardlru::{Cache, RemovalCause};
use std::cell::Cell;
use std::sync::{Arc, Mutex};
use support::{logged, take};

#[test]
fn cache_is_send_and_sync_for_send_and_sync_keys_and_values() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Cache<u64, u64>>();
    assert_send_sync::<Cache<String, Vec<u8>>>();
    assert_send_sync::<Cache<u64, Arc<str>, std::collections::hash_map::RandomState>>();
    // Hits on one shard clone values at once (in read mode), so sharing the cache needs
    // `Sync` values, as documented; a cache of `Send` values can still move between threads.
    assert_send::<Cache<u64, Cell<u64>>>();

    let cache = Cache::<u64, String>::builder().capacity(64).build().unwrap();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let cache = &cache;
            scope.spawn(move || cache.insert(t, t.to_string()));
        }
    });
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.get(&3).as_deref(), Some("3"));
}

/// Fills a one-shard cache of three with 1, 2, 3 (1 least recent), runs `touch`, then inserts
/// a fourth key and returns the key that insert evicted.
fn evicted_after(touch: impl FnOnce(&Cache<u32, u32>)) -> u32 {
    let (cache, log) = logged(3, 1);
    for key in 1..=3 {
        cache.insert(key, key * 10);
    }
    touch(&cache);
    assert_eq!(take(&log), [], "touching evicts nothing");
    cache.insert(4, 40);
    let evicted = take(&log);
    assert_eq!(evicted.len(), 1, "{evicted:?}");
    let (key, value, cause) = evicted[0];
    assert_eq!(cause, RemovalCause::Capacity);
    assert_eq!(value % 10, 0, "the victim's own value: {evicted:?}");
    key
}

#[test]
fn get_and_insert_make_an_entry_most_recent() {
    assert_eq!(evicted_after(|_| {}), 1, "with no touch, the oldest goes");
    assert_eq!(evicted_after(|c| assert_eq!(c.get(&1), Some(10))), 2);
    assert_eq!(evicted_after(|c| assert_eq!(c.try_get(&1), Ok(Some(10)))), 2);
    assert_eq!(evicted_after(|c| assert_eq!(c.insert(1, 11), Some(10))), 2);
    assert_eq!(evicted_after(|c| assert_eq!(c.try_insert(1, 11), Ok(Some(10)))), 2);
    // The most recent touch wins.
    assert_eq!(
        evicted_after(|c| {
            c.get(&1);
            c.get(&2);
        }),
        3
    );
}

#[test]
fn peek_contains_key_and_misses_leave_recency_alone() {
    assert_eq!(evicted_after(|c| assert_eq!(c.peek(&1), Some(10))), 1);
    assert_eq!(evicted_after(|c| assert_eq!(c.try_peek(&1), Ok(Some(10)))), 1);
    assert_eq!(evicted_after(|c| assert!(c.contains_key(&1))), 1);
    assert_eq!(evicted_after(|c| assert_eq!(c.try_contains_key(&1), Ok(true))), 1);
    assert_eq!(evicted_after(|c| assert_eq!(c.get(&9), None)), 1);
    assert_eq!(evicted_after(|c| assert_eq!(c.snapshot().len(), 3)), 1);
}

#[test]
fn snapshot_lists_entries_from_most_to_least_recent() {
    let (cache, _log) = logged(4, 1);
    for key in 1..=4 {
        cache.insert(key, key * 10);
    }
    cache.get(&2);
    cache.peek(&1);
    cache.insert(3, 33);
    assert_eq!(cache.snapshot(), [(3, 33), (2, 20), (4, 40), (1, 10)]);
}

#[test]
fn string_keys_are_looked_up_by_str() {
    let cache = Cache::<String, u32>::builder().capacity(8).build().unwrap();
    cache.insert("apple".to_string(), 1);
    cache.insert(String::from("pear"), 2);
    assert_eq!(cache.get("apple"), Some(1));
    assert_eq!(cache.peek("pear"), Some(2));
    assert!(cache.contains_key("pear"));
    assert!(!cache.contains_key("plum"));
    assert_eq!(cache.try_get("plum"), Ok(None));
    assert_eq!(cache.remove("apple"), Some(1));
    assert_eq!(cache.try_remove("pear"), Ok(Some(2)));
    assert!(cache.is_empty());

    let bytes = Cache::<Vec<u8>, u32>::builder().capacity(8).build().unwrap();
    bytes.insert(b"key".to_vec(), 7);
    assert_eq!(bytes.get(&b"key"[..]), Some(7));
}

#[test]
fn insert_returns_the_value_it_replaced_and_evicts_nothing_for_it() {
    let (cache, log) = logged(2, 1);
    assert_eq!(cache.insert(1, 10), None);
    assert_eq!(cache.insert(2, 20), None);
    assert_eq!(cache.insert(1, 11), Some(10), "replacing in a full cache");
    assert_eq!(cache.insert(1, 12), Some(11));
    assert_eq!(take(&log), [], "a replaced value goes to the caller, not the callback");
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.snapshot(), [(1, 12), (2, 20)]);
    assert_eq!(cache.insert(3, 30), None, "a new key in a full cache");
    assert_eq!(take(&log), [(2, 20, RemovalCause::Capacity)]);
}

#[test]
fn try_methods_succeed_in_normal_use() {
    let (cache, log) = logged(2, 1);
    assert_eq!(cache.try_insert(1, 10), Ok(None));
    assert_eq!(cache.try_insert(1, 11), Ok(Some(10)));
    assert_eq!(cache.try_insert(2, 20), Ok(None));
    assert_eq!(cache.try_get(&1), Ok(Some(11)));
    assert_eq!(cache.try_peek(&2), Ok(Some(20)));
    assert_eq!(cache.try_contains_key(&2), Ok(true));
    assert_eq!(cache.try_contains_key(&3), Ok(false));
    assert_eq!(cache.try_insert(3, 30), Ok(None));
    assert_eq!(take(&log), [(2, 20, RemovalCause::Capacity)]);
    assert_eq!(cache.try_remove(&1), Ok(Some(11)));
    assert_eq!(cache.try_remove(&1), Ok(None));
    assert_eq!(cache.snapshot(), [(3, 30)]);
}

#[test]
fn remove_hands_the_value_back_and_not_to_the_callback() {
    let (cache, log) = logged(4, 1);
    cache.insert(1, 10);
    cache.insert(2, 20);
    assert_eq!(cache.remove(&1), Some(10));
    assert_eq!(cache.remove(&1), None);
    assert_eq!(take(&log), []);
    assert_eq!(cache.snapshot(), [(2, 20)]);
}

#[test]
fn growing_resize_evicts_nothing_and_makes_room() {
    let (cache, log) = logged(3, 1);
    for key in 1..=3 {
        cache.insert(key, key * 10);
    }
    cache.resize(5).unwrap();
    assert_eq!(take(&log), []);
    assert_eq!((cache.len(), cache.capacity()), (3, 5));
    cache.insert(4, 40);
    cache.insert(5, 50);
    assert_eq!(take(&log), [], "the new room is used before anything is evicted");
    assert_eq!(cache.len(), 5);
    cache.insert(6, 60);
    assert_eq!(take(&log), [(1, 10, RemovalCause::Capacity)]);
}

#[test]
fn shrinking_resize_delivers_the_least_recent_entries_first_as_shrink() {
    let (cache, log) = logged(5, 1);
    for key in 1..=5 {
        cache.insert(key, key * 10);
    }
    cache.get(&1); // recency now 1, 5, 4, 3, 2
    cache.resize(2).unwrap();
    assert_eq!(
        take(&log),
        [
            (2, 20, RemovalCause::Shrink),
            (3, 30, RemovalCause::Shrink),
            (4, 40, RemovalCause::Shrink),
        ]
    );
    assert_eq!((cache.len(), cache.capacity()), (2, 2));
    assert_eq!(cache.snapshot(), [(1, 10), (5, 50)]);
    // Resizing to the same capacity changes nothing.
    cache.resize(2).unwrap();
    assert_eq!(take(&log), []);
    assert_eq!(cache.snapshot(), [(1, 10), (5, 50)]);
}

#[test]
fn clear_delivers_every_entry_once_as_clear() {
    let log: Arc<Mutex<Vec<(u32, RemovalCause)>>> = Arc::default();
    let sink = Arc::clone(&log);
    // Shares of 40: no shard can be full, whatever the (random) hasher does with 40 keys.
    let cache = Cache::<u32, u32>::builder()
        .capacity(160)
        .shards(4)
        .on_evict(move |_cache, evicted| {
            assert_eq!(evicted.value, evicted.key * 10);
            sink.lock().unwrap().push((evicted.key, evicted.cause));
        })
        .build()
        .unwrap();
    for key in 0..40 {
        cache.insert(key, key * 10);
    }
    assert_eq!(cache.len(), 40, "no shard was full");
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(cache.queued(), 0);
    let mut delivered = std::mem::take(&mut *log.lock().unwrap());
    assert!(delivered.iter().all(|&(_, cause)| cause == RemovalCause::Clear));
    delivered.sort_unstable_by_key(|&(key, _)| key);
    let keys: Vec<u32> = delivered.iter().map(|&(key, _)| key).collect();
    assert_eq!(keys, (0..40).collect::<Vec<_>>());
    let stats = cache.stats();
    assert_eq!((stats.delivered, stats.evictions), (40, 0), "clear is not counted as eviction");
    // The cache is still usable at full capacity.
    for key in 0..40 {
        cache.insert(key, key * 10);
    }
    assert_eq!(cache.len(), 40);
}

#[test]
fn clear_and_shrink_without_a_callback_simply_drop_the_entries() {
    let cache = Cache::<u32, Arc<u32>>::builder().capacity(8).shards(2).build().unwrap();
    let value = Arc::new(0);
    for key in 0..8 {
        cache.insert(key, Arc::clone(&value));
    }
    cache.resize(2).unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(Arc::strong_count(&value), 3, "shrunk entries are dropped");
    cache.clear();
    assert_eq!(Arc::strong_count(&value), 1, "cleared entries are dropped");
    assert_eq!((cache.purge(), cache.queued()), (0, 0));
}

/// A one-shard scenario worked out by hand; every counter is checked at two points.
#[test]
fn statistics_are_exact_in_a_single_threaded_scenario() {
    let (cache, log) = logged(3, 1);
    for key in 1..=3 {
        cache.insert(key, key * 10); // 3 inserts
    }
    assert_eq!(cache.get(&1), Some(10)); // hit; recency 1, 3, 2
    assert_eq!(cache.get(&4), None); // miss
    assert_eq!(cache.get(&2), Some(20)); // hit; recency 2, 1, 3
    cache.insert(4, 40); // evicts 3; recency 4, 2, 1
    cache.insert(2, 21); // replaces; recency 2, 4, 1
    assert_eq!(cache.peek(&3), None); // not counted
    assert!(cache.contains_key(&1)); // not counted
    cache.remove(&1); // recency 2, 4
    cache.insert(5, 50); // recency 5, 2, 4
    cache.insert(6, 60); // evicts 4; recency 6, 5, 2

    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts, stats.evictions), (2, 1, 7, 2));
    assert_eq!((stats.delivered, stats.queued, stats.len, stats.capacity), (2, 0, 3, 3));
    assert_eq!((stats.callback_panics, stats.purges_skipped, stats.lock_contended), (0, 0, 0));
    assert!((stats.hit_ratio() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(take(&log), [(3, 30, RemovalCause::Capacity), (4, 40, RemovalCause::Capacity)]);

    cache.resize(2).unwrap(); // evicts 2
    cache.clear(); // delivers 6 and 5, not counted as evictions
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts, stats.evictions), (2, 1, 7, 3));
    assert_eq!((stats.delivered, stats.queued, stats.len, stats.capacity), (5, 0, 0, 2));
    assert_eq!(
        take(&log),
        [(2, 21, RemovalCause::Shrink), (5, 50, RemovalCause::Clear), (6, 60, RemovalCause::Clear)]
    );
}

/// The totals are the sums of the per-shard figures, which add up to what the test did.
#[test]
fn shard_statistics_add_up_to_the_totals() {
    let cache = Cache::<u32, u32>::builder()
        .hasher(support::fixed_hasher())
        .capacity(40)
        .shards(4)
        .on_evict(|_, _| {})
        .build()
        .unwrap();
    let (mut gets, mut inserts, mut keyed_calls) = (0, 0, 0);
    for round in 0..5u32 {
        for key in 0..30 {
            cache.insert(key * round % 61, key);
            inserts += 1;
            cache.get(&(key * 7 % 53));
            gets += 1;
            cache.peek(&key);
            keyed_calls += 3;
        }
    }
    let stats = cache.stats();
    let shards = cache.shard_stats();
    let sum = |field: fn(&shardlru::ShardStats) -> u64| shards.iter().map(field).sum::<u64>();
    assert_eq!(stats.hits, sum(|s| s.hits));
    assert_eq!(stats.misses, sum(|s| s.misses));
    assert_eq!(stats.inserts, sum(|s| s.inserts));
    assert_eq!(stats.evictions, sum(|s| s.evictions));
    assert_eq!(stats.lock_acquisitions, sum(|s| s.lock_acquisitions));
    assert_eq!(stats.lock_contended, sum(|s| s.lock_contended));
    assert_eq!(stats.len, shards.iter().map(|s| s.len).sum::<usize>());
    assert_eq!(stats.len, cache.len());
    assert_eq!(stats.weight, shards.iter().map(|s| s.weight).sum::<u64>());
    assert_eq!(stats.hits + stats.misses, gets);
    assert_eq!(stats.inserts, inserts);
    assert!(stats.lock_acquisitions >= keyed_calls, "every keyed call takes a lock");
    assert_eq!(stats.lock_contended, 0, "one thread never waits for itself");
    assert!(stats.evictions > 0 && stats.hits > 0 && stats.misses > 0);
    assert_eq!(stats.delivered, stats.evictions, "no clear: every delivery was an eviction");
}

/// Borrowed lookups find keys with the default hasher when the borrowed form is a primitive that
/// a hasher may special-case: a key whose `Hash` writes a `u64`, looked up by `&u64`. (ahash's
/// `hash_one` is specialised on nightly compilers and hashes a bare `u64` by another route; the
/// cache must hash through `Hash::hash` so that both forms agree.) This one can only fail on a
/// nightly compiler; the next test checks the same on any compiler.
#[test]
fn a_key_is_found_by_its_borrowed_primitive_form() {
    #[derive(PartialEq, Eq)]
    struct Id(u64);
    impl std::hash::Hash for Id {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }
    impl std::borrow::Borrow<u64> for Id {
        fn borrow(&self) -> &u64 {
            &self.0
        }
    }
    let cache = Cache::<Id, u64>::builder().capacity(64).build().unwrap();
    for id in 0..32 {
        cache.insert(Id(id), id * 10);
    }
    for id in 0..32u64 {
        assert_eq!(cache.get(&id), Some(id * 10), "get(&{id})");
        assert!(cache.contains_key(&id));
    }
    assert_eq!(cache.remove(&7u64), Some(70));
    assert_eq!(cache.len(), 31);
}

/// The same property on stable compilers: a hasher whose `hash_one` takes another route for each
/// type (as ahash's specialised one does on nightly). The cache must hash keys and borrowed forms
/// through `Hash::hash` alone, or `get(&u64)` misses a key stored as `Id`.
#[test]
fn borrowed_lookups_do_not_depend_on_the_hashers_hash_one() {
    use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher};

    struct TypeDependentHashOne;
    impl BuildHasher for TypeDependentHashOne {
        type Hasher = DefaultHasher;
        fn build_hasher(&self) -> DefaultHasher {
            DefaultHasher::new()
        }
        #[expect(clippy::manual_hash_one, reason = "this is the `hash_one` being overridden")]
        fn hash_one<T: Hash>(&self, x: T) -> u64 {
            let mut hasher = self.build_hasher();
            x.hash(&mut hasher);
            hasher.finish() ^ std::any::type_name::<T>().len() as u64
        }
    }

    #[derive(PartialEq, Eq)]
    struct Id(u64);
    impl Hash for Id {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }
    impl std::borrow::Borrow<u64> for Id {
        fn borrow(&self) -> &u64 {
            &self.0
        }
    }
    let cache =
        Cache::<Id, u64>::builder().capacity(64).hasher(TypeDependentHashOne).build().unwrap();
    for id in 0..32 {
        cache.insert(Id(id), id * 10);
    }
    for id in 0..32u64 {
        assert_eq!(cache.get(&id), Some(id * 10), "get(&{id})");
    }
}
