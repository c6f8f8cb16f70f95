//! `resize` racing readers that take no lock (cache.rs `resize`, stats.rs `len`), in both
//! directions:
//!
//! * growing: the new capacity is stored before any shard's share is raised, and each shard's
//!   length is published with `Release`, so a thread that reads `len()` and then `capacity()`
//!   never sees a length that only the new capacity allows next to the old capacity;
//! * shrinking: the new capacity is stored with `Release` after every shard has shrunk and
//!   published its length, and `capacity()` loads it with `Acquire`, so a thread that reads
//!   `capacity()` and then `len()` never sees the new capacity next to a length only the old
//!   one allowed.
#![cfg(loom)]

use loom::thread;
use loom_tests::{Arc, builder, ledger_cache, run_model};

#[test]
fn growing_resize_publishes_capacity_first() {
    run_model("resize::growing_resize_publishes_capacity_first", || {
        let (cache, ledger) = ledger_cache(builder(1, 1), &[1, 2]);
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

#[test]
fn shrinking_resize_publishes_capacity_last() {
    run_model("resize::shrinking_resize_publishes_capacity_last", || {
        let (cache, ledger) = ledger_cache(builder(2, 1), &[1, 2]);
        cache.insert(1, 1);
        cache.insert(2, 2);

        let resizer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.resize(1).unwrap())
        };
        let reader = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let capacity = cache.capacity();
                let len = cache.len();
                assert!(len <= capacity, "capacity {capacity} read before len {len}");
            })
        };
        for thread in [resizer, reader] {
            thread.join().unwrap();
        }

        assert_eq!((cache.capacity(), cache.len(), cache.queued()), (1, 1, 0));
        ledger.assert_each_key_once(&cache);
    });
}
