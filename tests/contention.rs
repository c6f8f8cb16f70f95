//! The lock-contention statistics that the shard-count tuner reads: a shard lock found held by
//! another thread is counted in `lock_contended`, an uncontended one never is, and the
//! per-shard figures add up to the totals.

mod support;

use shardlru::Cache;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long two threads may hammer one shard before the test gives up on seeing them collide.
/// They collide within milliseconds on any machine with two cores; on one busy core they still
/// do whenever the scheduler preempts a thread inside the lock.
const COLLIDE_WITHIN: Duration = Duration::from_secs(20);

/// Operations each thread runs between two looks at the counters.
const BATCH: u64 = 10_000;

/// Runs `get`/`insert` over `keys` on `threads` threads until `done` says so (checked by the
/// first thread after each batch) or [`COLLIDE_WITHIN`] passes. Returns the operations run.
fn hammer(
    cache: &Cache<u64, u64, ahash::RandomState>,
    keys: &[u64],
    threads: usize,
    done: impl Fn(&Cache<u64, u64, ahash::RandomState>) -> bool + Sync,
) -> u64 {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads);
    let deadline = Instant::now() + COLLIDE_WITHIN;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, start, done) = (&stop, &start, &done);
                s.spawn(move || {
                    start.wait();
                    let mut ops = 0;
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..BATCH {
                            let key = keys[i % keys.len()];
                            i += 1;
                            if cache.get(&key).is_none() {
                                cache.insert(key, key);
                                ops += 1;
                            }
                            ops += 1;
                        }
                        if t == 0 && (done(cache) || Instant::now() > deadline) {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    ops
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

#[test]
fn two_threads_on_one_shard_are_counted_as_contention() {
    support::watchdog("two threads on one shard", || {
        let cache: Cache<u64, u64, ahash::RandomState> = Cache::builder()
            .hasher(support::fixed_hasher())
            .capacity(512)
            .shards(1)
            .build()
            .unwrap();
        let keys: Vec<u64> = (0..1024).collect();
        let ops = hammer(&cache, &keys, 2, |cache| cache.stats().lock_contended > 0);
        let stats = cache.stats();
        assert!(
            stats.lock_contended > 0,
            "two threads ran {ops} operations on one shard for {COLLIDE_WITHIN:?} and never \
             found its lock held: {stats:?}"
        );
        assert!(stats.lock_contended <= stats.lock_acquisitions, "{stats:?}");
        assert!(stats.contention_rate() > 0.0 && stats.contention_rate() <= 1.0, "{stats:?}");
        // Every operation took the lock exactly once, and nothing else did.
        assert_eq!(stats.lock_acquisitions, ops, "{stats:?}");
    });
}

#[test]
fn one_thread_is_never_counted_as_contention() {
    let cache: Cache<u64, u64, ahash::RandomState> =
        Cache::builder().hasher(support::fixed_hasher()).capacity(512).shards(1).build().unwrap();
    let mut ops = 0;
    for round in 0..20u64 {
        for key in 0..1024 {
            if cache.get(&(key + round)).is_none() {
                cache.insert(key + round, key);
                ops += 1;
            }
            ops += 1;
        }
    }
    let stats = cache.stats();
    assert_eq!(stats.lock_contended, 0, "{stats:?}");
    assert_eq!(stats.lock_acquisitions, ops, "{stats:?}");
    assert_eq!(stats.contention_rate(), 0.0);
    // Statistics, `len` and `purge` take no shard lock.
    let _ = (cache.len(), cache.shard_stats(), cache.purge());
    assert_eq!(cache.stats().lock_acquisitions, ops);
}

#[test]
fn contention_is_counted_on_the_shard_that_was_hammered() {
    support::watchdog("contention per shard", || {
        let cache: Cache<u64, u64, ahash::RandomState> = Cache::builder()
            .hasher(support::fixed_hasher())
            .capacity(1024)
            .shards(4)
            .build()
            .unwrap();
        // Find keys of one shard: insert each alone and see which shard counted it.
        let mut hot_keys = Vec::new();
        let mut hot_shard = None;
        for key in 0..4096u64 {
            let shard = support::shard_of(&cache, key, key);
            if *hot_shard.get_or_insert(shard) == shard {
                hot_keys.push(key);
            }
        }
        let hot = hot_shard.unwrap();
        let before = cache.shard_stats();
        hammer(&cache, &hot_keys, 2, |cache| cache.shard_stats()[hot].lock_contended > 0);
        let after = cache.shard_stats();
        assert!(after[hot].lock_contended > 0, "the hammered shard {hot}: {:?}", after[hot]);
        for (i, (before, after)) in before.iter().zip(&after).enumerate().filter(|(i, _)| *i != hot)
        {
            assert_eq!(before, after, "shard {i} was not touched, yet its counters moved");
        }
    });
}

#[test]
fn per_shard_figures_add_up_to_the_totals() {
    support::watchdog("per-shard sums", || {
        let cache: Cache<u64, u64, ahash::RandomState> = Cache::builder()
            .hasher(support::fixed_hasher())
            .capacity(1000)
            .shards(8)
            .on_evict(|_, _| {})
            .build()
            .unwrap();
        let keys: Vec<u64> = (0..5000).map(|k| k * 7919 % 5000).collect();
        let deadline_free = |_: &Cache<u64, u64, ahash::RandomState>| true;
        let ops = hammer(&cache, &keys, 3, deadline_free);
        let stats = cache.stats();
        let shards = cache.shard_stats();
        let sum = |field: fn(&shardlru::ShardStats) -> u64| shards.iter().map(field).sum::<u64>();
        assert_eq!(sum(|s| s.hits), stats.hits);
        assert_eq!(sum(|s| s.misses), stats.misses);
        assert_eq!(sum(|s| s.inserts), stats.inserts);
        assert_eq!(sum(|s| s.evictions), stats.evictions);
        assert_eq!(sum(|s| s.lock_acquisitions), stats.lock_acquisitions);
        assert_eq!(sum(|s| s.lock_contended), stats.lock_contended);
        assert_eq!(shards.iter().map(|s| s.len).sum::<usize>(), stats.len);
        assert_eq!(shards.iter().map(|s| s.weight).sum::<u64>(), stats.weight);
        // Each get and insert took one lock; every shard got some of them.
        assert_eq!(stats.lock_acquisitions, ops);
        assert_eq!(stats.hits + stats.misses + stats.inserts, ops);
        assert!(shards.iter().all(|s| s.lock_acquisitions > 0), "{shards:?}");
    });
}
