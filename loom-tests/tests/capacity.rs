//! Guarantees 1 and 3 under concurrency: two threads insert into one full shard while a third
//! purges. Every call ends within the capacity, and each entry either stays in the cache or
//! reaches the callback, exactly once. The cap of 1 makes the queue carry entries: an inserter
//! that finds the slot taken queues its eviction, for the slot holder's second look or the
//! purger's pop.
#![cfg(loom)]

use loom::thread;
use loom_tests::{
    Arc, assert_capacity, assert_settled, builder, keys_in_shard, ledger_cache, run_model,
};
use shardlru::EvictionScope;

#[test]
fn two_inserters_and_a_purger_on_one_shard() {
    run_model("capacity::two_inserters_and_a_purger_on_one_shard", || {
        // Capacity 2 over 2 shards, each insert into the full cache evicting in its own shard
        // (`EvictionScope::Shard`). `old`, `a` and `b` land in shard 0, `other` in shard 1,
        // which the race must leave alone.
        let [old, a, b] = keys_in_shard::<3>(0, 2);
        let [other] = keys_in_shard::<1>(1, 2);
        let (cache, ledger) = ledger_cache(
            builder(2, 2).eviction_scope(EvictionScope::Shard).max_pending_callbacks(1),
            &[old, a, b, other],
        );
        cache.insert(old, 0);
        cache.insert(other, 0);
        let lens: Vec<_> = cache.shard_stats().iter().map(|shard| shard.len).collect();
        assert_eq!(lens, [1, 1], "the keys land in the shards the model relies on");

        let inserters: Vec<_> = [a, b]
            .into_iter()
            .map(|key| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    assert_eq!(cache.insert(key, 1), None);
                    assert_capacity(&cache);
                })
            })
            .collect();
        let purger = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.purge();
                assert_capacity(&cache);
            })
        };
        for thread in inserters {
            thread.join().unwrap();
        }
        purger.join().unwrap();

        assert_settled(&cache);
        assert_eq!(cache.len(), 2);
        assert!(cache.contains_key(&other), "the other shard lost its entry");
        // A purge refused at the cap leaves its entry to the slot holder, which looks again
        // after giving the slot back (purge.rs, "A purge refused at the cap strands nothing"):
        // nothing is left queued.
        assert_eq!(cache.queued(), 0, "an evicted entry was left queued");
        ledger.assert_each_key_once(&cache);
        let stats = cache.stats();
        assert_eq!((stats.evictions, stats.delivered), (2, 2));
        assert_eq!(ledger.total(), 2);
    });
}
