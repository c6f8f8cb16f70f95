//! Guarantee 1 (capacity): after any call returns, `len() <= capacity()`, and the shards' shares
//! add up to the capacity exactly, on one thread with growing and shrinking resizes and on
//! eight threads at once.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shardlru::{Cache, RemovalCause};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys spread over a range a few times the capacities used, so that inserts keep evicting.
const KEYS: u32 = 512;

/// Asserts `len() <= capacity()`, reading `len` first: a concurrent growing `resize` raises
/// `capacity` before any share, so a later read of `capacity` is never below an earlier `len`.
#[track_caller]
fn assert_within_capacity<S>(cache: &Cache<u32, u32, S>, after: &str) {
    let len = cache.len();
    let capacity = cache.capacity();
    assert!(len <= capacity, "len {len} > capacity {capacity} after {after}");
}

/// Asserts that the shares add up to the capacity exactly, differ by at most one, and that no
/// shard holds more than its share. Only for a cache no other thread is using.
#[track_caller]
fn assert_shares_add_up<S>(cache: &Cache<u32, u32, S>) {
    let shards = cache.shard_stats();
    assert_eq!(shards.len(), cache.shard_count());
    let shares: Vec<usize> = shards.iter().map(|s| s.share).collect();
    assert_eq!(shares.iter().sum::<usize>(), cache.capacity(), "shares {shares:?}");
    let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
    assert!(max - min <= 1, "shares differ by more than one: {shares:?}");
    for (i, shard) in shards.iter().enumerate() {
        assert!(
            shard.len <= shard.share,
            "shard {i} holds {} > its share {}",
            shard.len,
            shard.share
        );
    }
}

/// A capacity for `shards` shards between `shards` and `shards * 12`.
fn random_capacity(rng: &mut SmallRng, shards: usize) -> usize {
    rng.random_range(shards..=shards * 12)
}

/// One thread, random operations including growing and shrinking resizes; `len <= capacity`
/// and the shares are checked after every call. With the callback set, every capacity
/// eviction of a low key inserts a high key from inside the callback, so purges themselves
/// insert and evict.
fn single_thread_random_ops(seed: u64, shards: usize, with_callback: bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let builder =
        Cache::<u32, u32>::builder().capacity(random_capacity(&mut rng, shards)).shards(shards);
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
        assert_shares_add_up(&cache);
    }
    assert!(grew > 10 && shrank > 10, "the run grew {grew} and shrank {shrank} times");
}

#[test]
fn len_stays_within_capacity_after_every_call_with_resizes_on_one_thread() {
    for (seed, shards) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16)] {
        single_thread_random_ops(seed, shards, false);
    }
}

#[test]
fn len_stays_within_capacity_when_the_callback_inserts_on_every_eviction() {
    for (seed, shards) in [(11, 1), (12, 4), (13, 16)] {
        single_thread_random_ops(seed, shards, true);
    }
}

/// Eight threads of random insert/get/remove/clear, each asserting `len <= capacity` after
/// each of its own calls, while thread 0 now and then grows the cache.
///
/// No thread shrinks it concurrently. A shrinking `resize` lowers the shares one shard at a
/// time and stores the smaller capacity last; a reader summing the shards' lengths just
/// before the shrink and reading `capacity()` just after it would see the old, larger length
/// against the new, smaller capacity, although the cache never held more than its capacity at
/// any instant. That is a torn read by the checker, not a broken guarantee. A growing resize
/// raises the capacity before any share, so it cannot cause such a read. Shrinking is covered
/// single-threaded above.
fn concurrent_random_ops(seed: u64, with_callback: bool) {
    const THREADS: u64 = 8;
    const OPS: u32 = 10_000;
    const START: usize = 64;
    let delivered = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&delivered);
    let builder = Cache::<u32, u32>::builder().capacity(START).shards(8);
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
    assert_shares_add_up(&cache);
    assert!(cache.capacity() > START, "thread 0 grew the cache");
    if with_callback {
        cache.purge();
        let stats = cache.stats();
        assert_eq!(stats.delivered, delivered.load(Ordering::Relaxed));
    }
}

#[test]
fn len_stays_within_capacity_after_every_call_on_eight_threads() {
    concurrent_random_ops(1, false);
}

#[test]
fn len_stays_within_capacity_after_every_call_on_eight_threads_with_a_callback() {
    concurrent_random_ops(2, true);
}

/// Shares add up exactly for every power-of-two shard count from 1 to 256 and capacities
/// from the smallest allowed upwards, including ones that do not divide evenly.
#[test]
fn shard_shares_add_up_to_the_capacity_for_many_shapes() {
    let mut shapes = 0;
    for shards in (0..=8).map(|bits| 1usize << bits) {
        let capacities = (shards..shards * 3 + 2).chain([
            shards * 64 - 1,
            shards * 64 + 1,
            1_000_003,
            u32::MAX as usize,
        ]);
        for capacity in capacities {
            let cache = Cache::<u32, u32>::builder()
                .capacity(capacity)
                .shards(shards)
                .build()
                .unwrap_or_else(|e| panic!("capacity {capacity}, {shards} shards: {e}"));
            assert_eq!(cache.capacity(), capacity);
            assert_eq!(cache.shard_count(), shards);
            assert_shares_add_up(&cache);
            shapes += 1;
        }
    }
    assert!(shapes > 1_000);
}

/// Shares still add up after many resizes, up and down, to capacities that do not divide
/// evenly, on a cache that holds entries.
#[test]
fn shard_shares_add_up_to_the_capacity_after_resizes() {
    let mut rng = SmallRng::seed_from_u64(7);
    for shards in [1, 2, 8, 32, 128] {
        let cache =
            Cache::<u32, u32>::builder().capacity(shards * 4).shards(shards).build().unwrap();
        for round in 0..100 {
            for key in 0..(shards * 8) as u32 {
                cache.insert(key, round);
            }
            let capacity = rng.random_range(shards..=shards * 10);
            cache.resize(capacity).unwrap();
            assert_eq!(cache.capacity(), capacity);
            assert_within_capacity(&cache, "resize");
            assert_shares_add_up(&cache);
        }
    }
}
