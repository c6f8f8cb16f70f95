//! Guarantee 1 (capacity): the capacity belongs to the whole cache. After any call returns,
//! `weight() <= capacity()` (the entries' count, without a weigher), the cache evicts only when
//! it is full, and the shards' lengths and weights add up to the cache's; on one thread with
//! growing and shrinking resizes, and on eight threads at once, with each eviction scope.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shardlru::{Cache, EvictionScope, RemovalCause};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Every eviction scope, for the tests that run under each.
const SCOPES: [EvictionScope; 3] =
    [EvictionScope::Global, EvictionScope::TwoChoices, EvictionScope::Shard];

/// Keys spread over a range a few times the capacities used, so that inserts keep evicting.
const KEYS: u32 = 512;

/// Asserts `weight() <= capacity()`, reading the weight first: a concurrent growing `resize`
/// raises `capacity` before any claim may use it, so a later read of `capacity` is never below
/// an earlier weight.
#[track_caller]
fn assert_within_capacity<S>(cache: &Cache<u32, u32, S>, after: &str) {
    let weight = cache.weight();
    let capacity = cache.capacity() as u64;
    assert!(weight <= capacity, "weight {weight} > capacity {capacity} after {after}");
}

/// Asserts that the shards' lengths and weights add up to the cache's, and (every entry weighs
/// 1) that weight and length agree. Only for a cache no other thread is using.
#[track_caller]
fn assert_shards_add_up<S>(cache: &Cache<u32, u32, S>) {
    let shards = cache.shard_stats();
    assert_eq!(shards.len(), cache.shard_count());
    assert_eq!(shards.iter().map(|s| s.len).sum::<usize>(), cache.len());
    assert_eq!(shards.iter().map(|s| s.weight).sum::<u64>(), cache.weight());
    assert_eq!(cache.weight(), cache.len() as u64, "every entry weighs 1");
    assert_eq!(cache.stats().weight, cache.weight());
}

/// A capacity for `shards` shards between `shards` and `shards * 12`.
fn random_capacity(rng: &mut SmallRng, shards: usize) -> usize {
    rng.random_range(shards..=shards * 12)
}

/// One thread, random operations including growing and shrinking resizes; `weight <= capacity`
/// and the shards' sums are checked after every call. With the callback set, every capacity
/// eviction of a low key inserts a high key from inside the callback, so purges themselves
/// insert and evict.
fn single_thread_random_ops(seed: u64, shards: usize, with_callback: bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let scope = SCOPES[seed as usize % SCOPES.len()];
    let builder = Cache::<u32, u32>::builder()
        .capacity(random_capacity(&mut rng, shards))
        .shards(shards)
        .eviction_scope(scope);
    let cache = if with_callback {
        builder
            .on_evict(|cache, evicted| {
                if evicted.cause == RemovalCause::Capacity && evicted.key < KEYS {
                    cache.insert(evicted.key + KEYS, evicted.value);
                }
            })
            .build()
    } else {
        builder.build()
    }
    .unwrap();
    let (mut grew, mut shrank) = (0, 0);
    for step in 0..3_000 {
        let key = rng.random_range(0..KEYS);
        let what = match rng.random_range(0..100) {
            0..50 => {
                cache.insert(key, step);
                "insert"
            }
            50..75 => {
                cache.get(&key);
                "get"
            }
            75..90 => {
                cache.remove(&key);
                "remove"
            }
            90..91 => {
                cache.clear();
                "clear"
            }
            _ => {
                let capacity = random_capacity(&mut rng, shards);
                if capacity > cache.capacity() {
                    grew += 1;
                } else if capacity < cache.capacity() {
                    shrank += 1;
                }
                cache.resize(capacity).unwrap();
                assert_eq!(cache.capacity(), capacity);
                "resize"
            }
        };
        assert_within_capacity(&cache, what);
        assert_shards_add_up(&cache);
    }
    assert!(grew > 10 && shrank > 10, "the run grew {grew} and shrank {shrank} times");
}

#[test]
fn len_stays_within_capacity_after_every_call_with_resizes_on_one_thread() {
    for (seed, shards) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 4), (7, 8), (8, 16)] {
        single_thread_random_ops(seed, shards, false);
    }
}

#[test]
fn len_stays_within_capacity_when_the_callback_inserts_on_every_eviction() {
    for (seed, shards) in [(11, 1), (12, 4), (13, 16)] {
        single_thread_random_ops(seed, shards, true);
    }
}

/// Eight threads of random insert/get/remove/clear, each asserting `weight <= capacity` after
/// each of its own calls, while thread 0 now and then grows the cache.
///
/// No thread shrinks it concurrently: while a shrinking `resize` runs, the weight may exceed
/// the new capacity until the resize has evicted enough (its documented exception), so a
/// checker on another thread could see that. Shrinking is covered single-threaded above.
fn concurrent_random_ops(seed: u64, with_callback: bool, scope: EvictionScope) {
    const THREADS: u64 = 8;
    const OPS: u32 = 10_000;
    const START: usize = 64;
    let delivered = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&delivered);
    let builder = Cache::<u32, u32>::builder().capacity(START).shards(8).eviction_scope(scope);
    let cache = if with_callback {
        builder
            .on_evict(move |_cache, _evicted| {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .build()
    } else {
        builder.build()
    }
    .unwrap();
    let cache = Arc::new(cache);
    let shared = Arc::clone(&cache);
    support::watchdog("concurrent capacity", move || {
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let cache = &shared;
                scope.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(seed * 100 + thread);
                    let mut capacity = START;
                    for step in 0..OPS {
                        let key = rng.random_range(0..KEYS);
                        let what = match rng.random_range(0..1_000) {
                            0..500 => {
                                cache.insert(key, step);
                                "insert"
                            }
                            500..800 => {
                                cache.get(&key);
                                "get"
                            }
                            800..990 => {
                                cache.remove(&key);
                                "remove"
                            }
                            990..995 => {
                                cache.clear();
                                "clear"
                            }
                            _ if thread == 0 => {
                                // Only this thread resizes, always upwards: never a shrink.
                                capacity += 1;
                                cache.resize(capacity).unwrap();
                                "resize (growing)"
                            }
                            _ => {
                                cache.peek(&key);
                                "peek"
                            }
                        };
                        assert_within_capacity(cache, what);
                    }
                });
            }
        });
    });
    assert_within_capacity(&cache, "all threads finished");
    assert_shards_add_up(&cache);
    assert!(cache.capacity() > START, "thread 0 grew the cache");
    if with_callback {
        cache.purge();
        let stats = cache.stats();
        assert_eq!(stats.delivered, delivered.load(Ordering::Relaxed));
    }
}

#[test]
fn len_stays_within_capacity_after_every_call_on_eight_threads() {
    for (seed, scope) in SCOPES.into_iter().enumerate() {
        concurrent_random_ops(seed as u64, false, scope);
    }
}

#[test]
fn len_stays_within_capacity_after_every_call_on_eight_threads_with_a_callback() {
    for (seed, scope) in SCOPES.into_iter().enumerate() {
        concurrent_random_ops(10 + seed as u64, true, scope);
    }
}

/// A default-sharded cache of capacity 100,000 filled with 100,000 distinct keys from four
/// threads keeps every key: it never evicts while it has room, however the keys fall over the
/// shards (with shares of the capacity per shard, as before, it evicted once a shard's share
/// was full).
#[test]
fn a_cache_filled_to_its_capacity_from_four_threads_keeps_every_key() {
    const CAPACITY: u32 = 100_000;
    for scope in SCOPES {
        let evicted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&evicted);
        let cache = Cache::<u32, u32>::builder()
            .capacity(CAPACITY as usize)
            .eviction_scope(scope)
            .on_evict(move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        std::thread::scope(|s| {
            for thread in 0..4 {
                let cache = &cache;
                s.spawn(move || {
                    for key in (thread..CAPACITY).step_by(4) {
                        cache.insert(key, key);
                    }
                });
            }
        });
        assert_eq!(evicted.load(Ordering::Relaxed), 0, "{scope:?}: evicted with room");
        assert_eq!(cache.len(), CAPACITY as usize);
        assert!((0..CAPACITY).all(|key| cache.contains_key(&key)), "{scope:?}: a key is missing");
        // One more key makes it full: exactly one entry leaves.
        cache.insert(CAPACITY, CAPACITY);
        assert_eq!(evicted.load(Ordering::Relaxed), 1, "{scope:?}");
        assert_eq!(cache.len(), CAPACITY as usize);
    }
}

/// Values weighted 1 to 1,000 from eight threads, under each scope: every value is handed back,
/// delivered or still cached, exactly once, and the weight never passes the capacity.
#[test]
fn weighted_entries_from_eight_threads_are_accounted_for_exactly_once() {
    const CAPACITY: usize = 20_000;
    for scope in SCOPES {
        let delivered: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
        let sink = Arc::clone(&delivered);
        let cache = Cache::<u32, (u32, u32)>::builder()
            .capacity(CAPACITY)
            .shards(8)
            .eviction_scope(scope)
            .weigher(|_, &(_, weight)| u64::from(weight))
            .on_evict(move |_, evicted| sink.lock().unwrap().push(evicted.value))
            .build()
            .unwrap();
        let returned: Vec<Vec<(u32, u32)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u32)
                .map(|thread| {
                    let cache = &cache;
                    s.spawn(move || {
                        let mut rng = SmallRng::seed_from_u64(u64::from(thread));
                        let mut returned = Vec::new();
                        for step in 0..4_000u32 {
                            let id = thread * 4_000 + step;
                            let key = rng.random_range(0..2_000);
                            let weight = rng.random_range(1..=1_000);
                            if let Some(old) = cache.insert(key, (id, weight)) {
                                returned.push(old);
                            }
                            if step % 7 == 0
                                && let Some(old) = cache.remove(&rng.random_range(0..2_000))
                            {
                                returned.push(old);
                            }
                            let (weight, capacity) = (cache.weight(), cache.capacity() as u64);
                            assert!(weight <= capacity, "{scope:?}: weight {weight} > {capacity}");
                        }
                        returned
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        cache.purge();
        while cache.purge() > 0 {}
        let mut seen: Vec<u32> = returned.into_iter().flatten().map(|(id, _)| id).collect();
        seen.extend(delivered.lock().unwrap().iter().map(|&(id, _)| id));
        let resident = cache.snapshot();
        let resident_weight: u64 = resident.iter().map(|(_, (_, w))| u64::from(*w)).sum();
        assert_eq!(resident_weight, cache.weight(), "{scope:?}: weight is the entries' sum");
        seen.extend(resident.into_iter().map(|(_, (id, _))| id));
        let unique: HashSet<u32> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{scope:?}: a value was seen twice");
        assert_eq!(seen.len(), 32_000, "{scope:?}: a value was lost");
    }
}

/// The shards' lengths and weights add up to the cache's after many resizes, up and down, on
/// a cache that holds entries; no shard has a share of its own.
#[test]
fn shard_counts_add_up_after_resizes() {
    let mut rng = SmallRng::seed_from_u64(7);
    for shards in [1, 2, 8, 32, 128] {
        let cache =
            Cache::<u32, u32>::builder().capacity(shards * 4).shards(shards).build().unwrap();
        for round in 0..100 {
            for key in 0..(shards * 8) as u32 {
                cache.insert(key, round);
            }
            let capacity = rng.random_range(shards..=shards * 10);
            let before = cache.len();
            cache.resize(capacity).unwrap();
            assert_eq!(cache.capacity(), capacity);
            assert_eq!(cache.len(), capacity.min(before), "a shrink evicts only to fit");
            assert_within_capacity(&cache, "resize");
            assert_shards_add_up(&cache);
        }
    }
}
