//! The evict → queue → purge hand-off (purge.rs, "Exactly once"): entries pushed by racing
//! threads are popped by racing purges, and each reaches the callback exactly once, with the
//! cause it left the cache for. No purge is refused here (the cap is above the thread count), so
//! when the threads are done nothing may be left queued.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use loom::thread;
use loom_tests::{Arc, Ledger, builder, insert_from_threads, run_model};
use shardlru::RemovalCause;

/// Two threads evict one entry each, and the callback that receives key 0 inserts key 10,
/// which evicts again from inside the callback: that eviction is queued (its thread is already
/// purging), so the other thread's eviction goes behind it, and with a cap of 2 both threads'
/// purges may pop from the queue at once.
#[test]
fn two_evictions_two_purges() {
    run_model("handoff::two_evictions_two_purges", || {
        let ledger = Ledger::new(&[0, 1, 2, 10]);
        let delivered = Arc::clone(&ledger);
        let cache = Arc::new(
            builder(1, 1)
                .max_pending_callbacks(2)
                .on_evict(move |cache, evicted| {
                    assert_eq!(evicted.cause, RemovalCause::Capacity);
                    delivered.deliver(evicted.key);
                    if evicted.key == 0 {
                        cache.insert(10, 10);
                    }
                })
                .build()
                .unwrap(),
        );
        cache.insert(0, 0);

        insert_from_threads(&cache, &[1, 2], || {});

        assert_eq!(cache.queued(), 0, "an evicted entry was left queued");
        ledger.assert_each_key_once(&cache);
        assert_eq!((ledger.total(), cache.stats().delivered), (3, 3));
    });
}

/// `clear` queues a whole shard while an insert evicts from it: three entries, two pushers, two
/// purges. Each entry is delivered once, as `Clear` or `Capacity`, or stays resident.
#[test]
fn clear_races_an_evicting_insert() {
    run_model("handoff::clear_races_an_evicting_insert", || {
        let ledger = Ledger::new(&[0, 1, 2]);
        let by_capacity = Arc::new(AtomicUsize::new(0));
        let cache = {
            let (ledger, by_capacity) = (Arc::clone(&ledger), Arc::clone(&by_capacity));
            Arc::new(
                builder(2, 1)
                    .max_pending_callbacks(2)
                    .on_evict(move |_cache, evicted| {
                        if evicted.cause == RemovalCause::Capacity {
                            by_capacity.fetch_add(1, Relaxed);
                        }
                        ledger.deliver(evicted.key);
                    })
                    .build()
                    .unwrap(),
            )
        };
        cache.insert(0, 0);
        cache.insert(1, 1);

        let inserter = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.insert(2, 2);
            })
        };
        let clearer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.clear())
        };
        inserter.join().unwrap();
        clearer.join().unwrap();

        assert_eq!(cache.queued(), 0, "an evicted entry was left queued");
        ledger.assert_each_key_once(&cache);
        // Either the insert came first (it evicted 0, the clear took 1 and 2), or the clear did
        // (it took 0 and 1, and 2 stays).
        let (by_capacity, resident) = (by_capacity.load(Relaxed), cache.len());
        assert!(
            matches!((by_capacity, resident), (1, 0) | (0, 1)),
            "{by_capacity} capacity evictions and {resident} entries left"
        );
        assert_eq!(cache.stats().delivered as usize, ledger.total());
    });
}
