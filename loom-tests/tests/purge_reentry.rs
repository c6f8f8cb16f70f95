//! A purge entered from inside a callback (purge.rs, check 3): it returns at once instead of
//! recursing, so a thread never runs a callback inside a callback of the same cache, and the
//! outer purge delivers what the callback's own insert evicted. A purge that ended leaves no
//! trace on its thread: the next purge there delivers.
#![cfg(loom)]

use loom_tests::{Arc, Ledger, builder, insert_from_threads, run_model};
use std::cell::Cell;

loom::thread_local! {
    /// How many callbacks of the model's cache this thread is inside.
    static DEPTH: Cell<usize> = Cell::new(0);
}

/// The key whose callback inserts [`ECHO`], evicting whatever is resident from inside the
/// callback.
const AMPLIFIER: u32 = 0;
/// The key the amplifier's callback inserts.
const ECHO: u32 = 10;
/// The key the main thread evicts before the race, so that it has purged once already.
const FIRST: u32 = 5;
/// The key the main thread inserts after the race: its purge must not be refused.
const LAST: u32 = 3;

#[test]
fn callback_that_evicts_and_purges() {
    run_model("purge_reentry::callback_that_evicts_and_purges", || {
        let ledger = Ledger::new(&[FIRST, AMPLIFIER, 1, 2, ECHO, LAST]);
        let delivered = Arc::clone(&ledger);
        let cache = Arc::new(
            builder(1, 1)
                .on_evict(move |cache, evicted| {
                    let depth = DEPTH.with(|depth| depth.replace(depth.get() + 1));
                    assert_eq!(depth, 0, "a purge recursed into the callback");
                    delivered.deliver(evicted.key);
                    if evicted.key == AMPLIFIER {
                        // Evicts the resident entry; the purge at the end of this insert, and
                        // this explicit one, must return without delivering anything.
                        cache.insert(ECHO, ECHO);
                        assert_eq!(cache.purge(), 0, "a purge inside a callback delivered");
                    }
                    DEPTH.with(|depth| depth.set(depth.get() - 1));
                })
                .build()
                .unwrap(),
        );
        cache.insert(FIRST, 0);
        cache.insert(AMPLIFIER, 0);
        assert_eq!(ledger.count(FIRST), 1);

        insert_from_threads(&cache, &[1, 2], || DEPTH.with(|depth| assert_eq!(depth.get(), 0)));

        // Every entry a callback evicted was delivered by an outer purge before the threads
        // returned: the default cap refuses no purge, and the budget is far above 3 entries.
        assert_eq!(cache.queued(), 0, "the outer purges left the queue unfinished");
        // The main thread's first purge ended: this one delivers what its insert evicts.
        cache.insert(LAST, 0);
        assert_eq!(cache.queued(), 0, "a purge was refused on a thread that purged before");
        ledger.assert_each_key_once(&cache);
        assert_eq!(ledger.total(), 5);
    });
}
