//! The pending-callback cap (purge.rs, check 4): with `max_pending_callbacks(1)`, two threads
//! whose inserts evict and purge at the same time never run the callback at once; the count of
//! purging threads returns to zero, so a later purge is not refused; and what a refused purge
//! left queued is delivered before every call has returned ("A purge refused at the cap strands
//! nothing"), at cap 1, where every release comes down from the cap, and at cap 2, where a
//! release from below the cap skips its fence.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use loom_tests::{Arc, Ledger, builder, insert_from_threads, ledger_cache, run_model};

/// The cap under test.
const CAP: usize = 1;

#[test]
fn cap_one_two_purging_threads() {
    run_model("purge_cap::cap_one_two_purging_threads", || {
        let ledger = Ledger::new(&[0, 1, 2, 3]);
        let in_callback = Arc::new(AtomicUsize::new(0));
        let cache = {
            let (ledger, in_callback) = (Arc::clone(&ledger), Arc::clone(&in_callback));
            Arc::new(
                builder(1, 1)
                    .max_pending_callbacks(CAP)
                    .on_evict(move |_cache, evicted| {
                        // Relaxed: read-modify-writes of one atomic are totally ordered, so an
                        // increment always sees another callback's unmatched increment.
                        let running = in_callback.fetch_add(1, Relaxed) + 1;
                        assert!(
                            running <= CAP,
                            "{running} callbacks in flight under a cap of {CAP}"
                        );
                        ledger.deliver(evicted.key);
                        in_callback.fetch_sub(1, Relaxed);
                    })
                    .build()
                    .unwrap(),
            )
        };
        cache.insert(0, 0);

        // Each insert evicts the resident entry and purges: the two purges race for one slot.
        insert_from_threads(&cache, &[1, 2], || {});

        // Both slots were given back: this purge is not refused at the cap, and it delivers the
        // entry this insert evicts plus whatever a refused purge left queued.
        let skipped = cache.stats().purges_skipped;
        cache.insert(3, 3);
        assert_eq!(
            cache.stats().purges_skipped,
            skipped,
            "a purge was refused after every slot was given back"
        );
        assert_eq!(cache.queued(), 0, "queued entries left behind");
        assert_eq!(in_callback.load(Relaxed), 0);
        ledger.assert_each_key_once(&cache);
        assert_eq!(cache.stats().delivered, 3);
    });
}

/// A purge refused at the cap must not leave its entry behind when the slot holder has already
/// popped its last entry: when every call has returned, nothing may be left queued.
///
/// The interleaving it guards: T1's purge pops its last entry and finds the queue empty; T2
/// pushes, is refused at the cap (T1 still holds the slot); T1 gives the slot back. Without the
/// second look after giving a slot back (and the fences that pair it with the refusal, see
/// "A purge refused at the cap strands nothing" in `src/purge.rs`), T2's entry would stay
/// queued until some later call.
#[test]
fn refused_purge_leaves_no_entry_behind() {
    run_model("purge_cap::refused_purge_leaves_no_entry_behind", || {
        let (cache, ledger) = ledger_cache(builder(1, 1).max_pending_callbacks(CAP), &[0, 1, 2]);
        cache.insert(0, 0);
        insert_from_threads(&cache, &[1, 2], || {});
        assert_eq!(cache.queued(), 0, "an entry stranded after every call returned");
        ledger.assert_each_key_once(&cache);
    });
}

/// Cap 2, three evicting threads: two can hold the slots while the third is refused, and of the
/// two releases that follow, only the one down from the cap fences (the other skips it, the
/// optimisation this model covers). The refused thread's entry must still be delivered before
/// every call has returned: by the holder whose release came down from the cap, whose fence
/// pairs with the refusal's.
#[test]
fn cap_two_three_evicting_threads() {
    run_model("purge_cap::cap_two_three_evicting_threads", || {
        let (cache, ledger) = ledger_cache(builder(1, 1).max_pending_callbacks(2), &[0, 1, 2, 3]);
        cache.insert(0, 0);
        insert_from_threads(&cache, &[1, 2, 3], || {});
        assert_eq!(cache.queued(), 0, "an entry stranded after every call returned");
        ledger.assert_each_key_once(&cache);
    });
}
