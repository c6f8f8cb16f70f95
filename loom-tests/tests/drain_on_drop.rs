//! Dropping the cache (cache.rs, `Drop`): entries still queued when the last handle goes are
//! delivered during the drop, on whichever thread drops it.
//!
//! An entry stays queued after every call has returned when a callback panic resumed in the
//! purging caller (`resume_callback_panics`): that purge stops at once, and what it had not
//! popped waits. (A purge refused at the cap leaves nothing behind: the slot holder looks again,
//! see `purge_cap.rs`.)
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use loom::thread;
use loom_tests::{Arc, Ledger, builder, run_model};
use std::panic::{self, AssertUnwindSafe};

/// The message of the one callback panic the model plans.
const PLANNED: &str = "the first delivery fails (planned)";

#[test]
fn last_handle_delivers_what_a_resumed_panic_left_queued() {
    quiet_planned_panics();
    run_model("drain_on_drop::last_handle_delivers_what_a_resumed_panic_left_queued", || {
        let ledger = Ledger::new(&[0, 1, 2]);
        let failed = Arc::new(AtomicBool::new(false));
        let cache = {
            let (ledger, failed) = (Arc::clone(&ledger), Arc::clone(&failed));
            Arc::new(
                builder(1, 1)
                    .max_pending_callbacks(1)
                    .on_evict(move |_cache, evicted| {
                        ledger.deliver(evicted.key);
                        // Relaxed: one flag, swapped by callbacks that the cap of 1 runs one at
                        // a time; the swap's read-modify-write sees every earlier swap.
                        if !failed.swap(true, Relaxed) {
                            panic!("{PLANNED}");
                        }
                    })
                    .build()
                    .unwrap(),
            )
        };
        cache.insert(0, 0);

        // Two evictions. The first delivery panics and resumes in its caller; if the other
        // thread's entry was queued behind it (refused at the cap of 1), it is still queued.
        let threads: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| cache.insert(key, key)));
                    drop(cache);
                })
            })
            .collect();
        drop(cache);
        for thread in threads {
            thread.join().unwrap();
        }

        // Three keys through a capacity of 1: two evictions, both delivered (the panicking
        // delivery counts); the last resident entry is dropped with the cache, not delivered.
        assert!(failed.load(Relaxed), "the planned panic did not happen");
        assert_eq!(ledger.total(), 2, "an entry queued at the drop was not delivered");
    });
}

/// Keeps the planned panic of every execution off stderr; any other panic is reported as usual.
fn quiet_planned_panics() {
    let report = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let planned = info.payload().downcast_ref::<String>().is_some_and(|m| m == PLANNED);
        if !planned {
            report(info);
        }
    }));
}
