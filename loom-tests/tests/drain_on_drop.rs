//! Dropping the cache (cache.rs, `Drop`): entries a purge refused at the cap left queued are
//! delivered when the last handle goes, on whichever thread drops it.
#![cfg(loom)]

use loom::thread;
use loom_tests::{Arc, ledger_cache, run_model};

#[test]
fn last_handle_delivers_what_the_cap_left_queued() {
    run_model("drain_on_drop::last_handle_delivers_what_the_cap_left_queued", || {
        let (cache, ledger) = ledger_cache(1, &[0, 1, 2]);
        cache.insert(0, 0);

        // With a cap of 1, one thread's purge may be refused while the other's has already
        // popped its last entry: that entry stays queued until the drop.
        let threads: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    cache.insert(key, key);
                    drop(cache);
                })
            })
            .collect();
        drop(cache);
        for thread in threads {
            thread.join().unwrap();
        }

        // Three keys through a capacity of 1: two evictions, both delivered; the last resident
        // entry is dropped with the cache, not delivered.
        assert_eq!(ledger.total(), 2, "an entry queued at the drop was not delivered");
    });
}
