//! Background delivery and the bound (background.rs, "Parking"; purge.rs, "Waiting for a slot"):
//! a push never leaves a delivery thread asleep with an entry queued; a stop racing a push
//! strands nothing; two writers held at a bound of one entry, with one slot, both return with the
//! queue below the bound, and nobody waits forever.
//!
//! `spawn_purge_threads` takes `&std::sync::Arc<Cache>` (a method receiver must be a std
//! pointer), so these models hold the cache in a std `Arc`. Its count is invisible to loom; every
//! clone is dropped before a `join` that loom sees, or on the model's main thread.
#![cfg(loom)]

use loom::sync::{Condvar, Mutex};
use loom_tests::{Arc, Ledger, TestCache, builder, run_model};

/// A cache of one entry whose callback records each key in the ledger and signals `delivered`.
fn signalling_cache(
    ledger: &Arc<Ledger>,
    delivered: &Arc<(Mutex<usize>, Condvar)>,
) -> std::sync::Arc<TestCache> {
    let (ledger, delivered) = (Arc::clone(ledger), Arc::clone(delivered));
    let cache = builder::<u32>(1, 1)
        .on_evict(move |_cache, evicted| {
            ledger.deliver(evicted.key);
            let (count, changed) = &*delivered;
            *count.lock().unwrap() += 1;
            changed.notify_all();
        })
        .build()
        .unwrap();
    std::sync::Arc::new(cache)
}

/// The delivery thread finds the queue empty and parks while the main thread's insert evicts and
/// pushes. The main thread then waits for the callback with no timeout: if the push's wake-up
/// were lost (a fence of "Parking" removed), the delivery thread would sleep on and loom would
/// report the deadlock.
#[test]
fn push_races_a_parking_thread() {
    run_model("background::push_races_a_parking_thread", || {
        let ledger = Ledger::new(&[0, 1]);
        let delivered = Arc::new((Mutex::new(0), Condvar::new()));
        let cache = signalling_cache(&ledger, &delivered);
        cache.insert(0, 0);
        let purge_threads = cache.spawn_purge_threads(1).unwrap();

        cache.insert(1, 1); // evicts 0: queued, a delivery thread woken, no inline purge
        let (count, changed) = &*delivered;
        let mut count = count.lock().unwrap();
        while *count == 0 {
            count = changed.wait(count).unwrap();
        }
        drop(count);

        drop(purge_threads);
        assert_eq!(cache.queued(), 0);
        ledger.assert_each_key_once(&cache);
    });
}

/// A writer's insert evicts while the main thread drops the handle: the writer either sees the
/// threads stopped and purges inline, or its push is seen by the flush that ends the stop. Once
/// both have returned nothing is queued (a stale read of `running`, without the re-read after the
/// fence, would strand the entry).
#[test]
fn stop_races_a_push() {
    run_model("background::stop_races_a_push", || {
        let ledger = Ledger::new(&[0, 1]);
        let delivered = Arc::new((Mutex::new(0), Condvar::new()));
        let cache = signalling_cache(&ledger, &delivered);
        cache.insert(0, 0);
        let purge_threads = cache.spawn_purge_threads(1).unwrap();

        let writer = {
            let cache = std::sync::Arc::clone(&cache);
            loom::thread::spawn(move || {
                cache.insert(1, 1);
            })
        };
        drop(purge_threads);
        writer.join().unwrap();

        assert_eq!(cache.queued(), 0, "an entry stranded by a stop");
        ledger.assert_each_key_once(&cache);
    });
}

/// `max_queued(1)` and one slot: two writers evict at once. One holds the slot; the other, held
/// at the bound, waits for it. Each returns only with the queue empty (below the bound of 1), and
/// the waiter is woken by the slot's release from the cap: without that wake-up ("Waiting for a
/// slot") it would wait forever and loom would report the deadlock.
#[test]
fn bound_two_writers_one_slot() {
    run_model("background::bound_two_writers_one_slot", || {
        let ledger = Ledger::new(&[0, 1, 2]);
        let cache: std::sync::Arc<TestCache> = {
            let ledger = Arc::clone(&ledger);
            std::sync::Arc::new(
                builder::<u32>(1, 1)
                    .max_pending_callbacks(1)
                    .max_queued(1)
                    .on_evict(move |_cache, evicted| ledger.deliver(evicted.key))
                    .build()
                    .unwrap(),
            )
        };
        cache.insert(0, 0);
        let writers: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let cache = std::sync::Arc::clone(&cache);
                loom::thread::spawn(move || {
                    cache.insert(key, key);
                    // At most the other writer's entry, pushed after this one's hold ended.
                    assert!(cache.queued() <= 1, "{} queued past a bound of 1", cache.queued());
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(cache.queued(), 0, "a writer returned with the queue at the bound");
        ledger.assert_each_key_once(&cache);
    });
}

/// `max_queued(1)` and one slot, held by the main thread inside the callback of its own insert:
/// from there it starts a writer whose insert evicts, is refused a slot, and is held at the
/// bound, waiting for one; the callback returns, and the main thread's purge gives the slot back
/// (waking the writer) and looks at the queue again. Whoever delivers the writer's entry, the
/// writer returns only once the queue is below the bound: empty, as nothing else is pushed.
/// Without the hold, it would return with its entry queued behind the main thread's slot.
#[test]
fn bound_holds_a_writer_behind_a_callback() {
    run_model("background::bound_holds_a_writer_behind_a_callback", || {
        let ledger = Ledger::new(&[0, 1, 2]);
        // The cache, for the callback to hand to the writer it starts, and the writer.
        let handle: Arc<Mutex<Option<std::sync::Arc<TestCache>>>> = Arc::new(Mutex::new(None));
        let writer = Arc::new(Mutex::new(None));
        let cache: std::sync::Arc<TestCache> = {
            let (ledger, handle, writer) =
                (Arc::clone(&ledger), Arc::clone(&handle), Arc::clone(&writer));
            std::sync::Arc::new(
                builder::<u32>(1, 1)
                    .max_pending_callbacks(1)
                    .max_queued(1)
                    .on_evict(move |_cache, evicted| {
                        ledger.deliver(evicted.key);
                        let Some(cache) = handle.lock().unwrap().take() else { return };
                        *writer.lock().unwrap() = Some(loom::thread::spawn(move || {
                            cache.insert(2, 2); // evicts 1
                            assert_eq!(cache.queued(), 0, "a write returned at the bound");
                        }));
                    })
                    .build()
                    .unwrap(),
            )
        };
        cache.insert(0, 0);
        *handle.lock().unwrap() = Some(std::sync::Arc::clone(&cache));
        cache.insert(1, 1); // evicts 0: its callback starts the writer
        let writer = writer.lock().unwrap().take().expect("the callback started the writer");
        writer.join().unwrap();
        assert_eq!(cache.queued(), 0);
        ledger.assert_each_key_once(&cache);
    });
}
