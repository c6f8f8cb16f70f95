//! Statistics (stats.rs): every counter is `Relaxed` and the per-shard ones are bumped with a
//! plain load and store under the shard lock. After the threads join, the counters add up
//! exactly: no increment is lost to a race.
#![cfg(loom)]

use loom::thread;
use loom_tests::{Arc, builder, ledger_cache, run_model};

#[test]
fn counters_add_up_after_join() {
    run_model("stats::counters_add_up_after_join", || {
        let (cache, ledger) = ledger_cache(builder(2, 1), &[0, 1, 2, 3]);
        cache.insert(0, 0);
        cache.insert(1, 1);

        // Each thread: a get (hit or miss, depending on the other's eviction), then an insert
        // that evicts and purges.
        let threads: Vec<_> = [(0, 2), (1, 3)]
            .into_iter()
            .map(|(read, written)| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    cache.get(&read);
                    cache.insert(written, written);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }

        let stats = cache.stats();
        assert_eq!(stats.hits + stats.misses, 2, "gets: {stats:?}");
        assert_eq!(stats.inserts, 4, "inserts: {stats:?}");
        assert_eq!(stats.evictions, 2, "evictions: {stats:?}");
        assert_eq!(stats.delivered, 2, "delivered: {stats:?}");
        assert_eq!(ledger.total(), 2);
        assert_eq!((stats.queued, stats.purges_skipped, stats.callback_panics), (0, 0, 0));
        // Two inserts before the threads, a get and an insert in each.
        assert_eq!(stats.lock_acquisitions, 6, "lock acquisitions: {stats:?}");
        assert!(stats.lock_contended <= 4, "lock contention: {stats:?}");
        assert_eq!(stats.len, 2);
        // `len` agrees with what is actually in the cache (counted before `contains_key`,
        // which takes locks of its own).
        let resident = (0..4).filter(|key| cache.contains_key(key)).count();
        assert_eq!(resident, stats.len, "len counter disagrees with the cache");
        ledger.assert_each_key_once(&cache);
    });
}
