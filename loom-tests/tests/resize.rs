//! A growing `resize` racing an insert and a reader (stats.rs, `len`): the new capacity is
//! stored before any shard's share is raised, and `len` is published with `Release`, so a thread
//! that takes no lock, reads `len()` and then `capacity()`, never sees a length that only the new
//! capacity allows next to the old capacity.
#![cfg(loom)]

use loom::thread;
use loom_tests::{Arc, Ledger, builder, run_model};

#[test]
fn growing_resize_publishes_capacity_first() {
    run_model("resize::growing_resize_publishes_capacity_first", || {
        let ledger = Ledger::new(&[1, 2]);
        let delivered = Arc::clone(&ledger);
        let cache = Arc::new(
            builder(1, 1)
                .on_evict(move |_cache, evicted| delivered.deliver(evicted.key))
                .build()
                .unwrap(),
        );
        cache.insert(1, 1);

        let resizer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.resize(2).unwrap())
        };
        // Fills the second place if the resize came first, evicts 1 otherwise.
        let inserter = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.insert(2, 2);
            })
        };
        let reader = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let len = cache.len();
                let capacity = cache.capacity();
                assert!(len <= capacity, "len {len} read before capacity {capacity}");
            })
        };
        for thread in [resizer, inserter, reader] {
            thread.join().unwrap();
        }

        assert_eq!(cache.capacity(), 2);
        assert_eq!(cache.queued(), 0);
        ledger.assert_each_key_once(&cache);
    });
}
