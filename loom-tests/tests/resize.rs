//! `resize` racing readers that take no lock and inserts (cache.rs `resize`, `reserve`), in both
//! directions:
//!
//! * growing: the new capacity is stored before the limit that inserts claim under is raised,
//!   and a claim publishes the weight (which is `len()` without a weigher) with `Release`, so a
//!   thread that reads `len()` and then `capacity()` never sees a length that only the new
//!   capacity allows next to the old capacity;
//! * shrinking: the new capacity is stored with `Release` once the weight fits under it, and
//!   `capacity()` loads it with `Acquire`, so a thread that reads `capacity()` and then `len()`
//!   never sees the new capacity next to a length only the old one allowed; and an insert that
//!   claims its weight under the old limit is either seen by the shrink or sees the new limit.
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

/// A shrinking `resize` races an insert into a cache with room: the insert claims its weight
/// under the old limit while the resize lowers it. Either the resize sees the claim and evicts
/// for it, or the insert sees the lower limit and gives the claim back (and evicts for itself):
/// the store-buffering pair of `reserve` and `resize`. Never over the new capacity once both
/// return, nothing lost.
#[test]
fn shrink_races_an_insert() {
    run_model("resize::shrink_races_an_insert", || {
        let (cache, ledger) = ledger_cache(builder(2, 1), &[1, 2]);
        cache.insert(1, 1);

        // Plain threads: `spawn_on`'s check after the insert (`len()`, then `capacity()`) may
        // see the old length and the new capacity while the shrink runs, which the
        // shrinking model's reader order excludes and guarantee 1 does not promise.
        let resizer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.resize(1).unwrap())
        };
        let inserter = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.insert(2, 2))
        };
        resizer.join().unwrap();
        assert_eq!(inserter.join().unwrap(), None);

        let (capacity, weight) = (cache.capacity(), cache.weight());
        assert!(weight <= capacity as u64, "weight {weight} over capacity {capacity}");
        assert_eq!((capacity, cache.len(), cache.queued()), (1, 1, 0));
        ledger.assert_each_key_once(&cache);
    });
}
