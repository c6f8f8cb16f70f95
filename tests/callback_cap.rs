//! The pending-callback cap (guarantee 5's purge protocol and guarantee 3, seed `000`: lru_ng's
//! `_max_pending_callbacks`): at most `max_pending_callbacks` eviction callbacks run at once over
//! all threads, and a thread whose purge finds the cap reached returns at once, leaving the
//! entries queued for a later purge, instead of waiting behind slow callbacks. Nothing queued is
//! lost on the way.

mod support;

use shardlru::Cache;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;
use support::{fixed_hasher, watchdog};

/// Scenario 13: 8 threads insert fresh keys into a full cache, so that every insert evicts and
/// purges; the callback sleeps a little (to widen the window in which callbacks overlap) and
/// tracks how many run at once. For each cap k in {1, 2, 4}, that number never exceeds k. After
/// the threads finish, purges drain what the skipped purges left queued, and every evicted entry
/// was delivered exactly once: delivered + cached = inserted.
#[test]
fn no_more_than_the_cap_of_callbacks_run_at_once() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 150;
    const CAPACITY: usize = 64;
    for cap in [1, 2, 4] {
        let name = format!("no_more_than_the_cap_of_callbacks_run_at_once (cap {cap})");
        watchdog(&name, move || {
            let in_flight = Arc::new(AtomicUsize::new(0));
            let most_in_flight = Arc::new(AtomicUsize::new(0));
            let delivered = Arc::new(Mutex::new(vec![0u32; THREADS * PER_THREAD + 100 * CAPACITY]));
            let cache = Cache::<usize, usize>::builder()
                .hasher(fixed_hasher())
                .capacity(CAPACITY)
                .shards(8)
                .max_pending_callbacks(cap)
                .resume_callback_panics()
                .on_evict({
                    let (in_flight, most, delivered) =
                        (in_flight.clone(), most_in_flight.clone(), delivered.clone());
                    move |_cache, evicted| {
                        let now = in_flight.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::sleep(Duration::from_micros(50));
                        delivered.lock().unwrap()[evicted.key] += 1;
                        in_flight.fetch_sub(1, SeqCst);
                    }
                })
                .build()
                .unwrap();
            // Fill every shard, so that each insert below evicts.
            let mut key = 0;
            while cache.len() < CAPACITY {
                cache.insert(key, key);
                key += 1;
            }
            let first_fresh = key;
            assert!(first_fresh + THREADS * PER_THREAD <= delivered.lock().unwrap().len());
            let start = Barrier::new(THREADS);
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let (cache, start) = (&cache, &start);
                    s.spawn(move || {
                        start.wait();
                        for i in 0..PER_THREAD {
                            let key = first_fresh + t * PER_THREAD + i;
                            assert_eq!(cache.insert(key, key), None);
                        }
                    });
                }
            });
            let mut purges = 0;
            while cache.queued() > 0 {
                assert!(cache.purge() > 0, "with no rival, a purge delivers");
                purges += 1;
                assert!(purges < 100);
            }
            let most = most_in_flight.load(SeqCst);
            let stats = cache.stats();
            println!(
                "cap {cap}: at most {most} callbacks at once; {} purges skipped at the cap",
                stats.purges_skipped
            );
            assert!(most <= cap, "{most} callbacks ran at once under a cap of {cap}");
            assert!(most >= 1);

            let inserted = first_fresh + THREADS * PER_THREAD;
            let delivered = delivered.lock().unwrap();
            let cached: Vec<usize> = (0..inserted).filter(|k| cache.contains_key(k)).collect();
            assert_eq!(cached.len(), cache.len());
            for (k, &times) in delivered.iter().enumerate().take(inserted) {
                let cached = cached.contains(&k);
                assert_eq!(
                    times + u32::from(cached),
                    1,
                    "key {k}: delivered {times}x, cached {cached}"
                );
            }
            assert_eq!(stats.delivered as usize + cache.len(), inserted);
            assert_eq!(stats.callback_panics, 0);
        });
    }
}

/// Scenario 14: a thread whose purge finds the cap reached returns without waiting. With a cap
/// of 1, thread A's insert evicts the blocker, whose callback signals that it is running and then
/// blocks until the test releases it, holding the only slot. While it is provably still blocked
/// (the test has not released it), this thread's insert, which evicts and purges, returns; the
/// purge was counted as skipped and its entry stays queued (as does a plain `purge()`'s). Then
/// the test releases the callback, and thread A's purge goes on to deliver the skipped entry.
/// If a purge at the cap waited for the slot, this would deadlock (and the watchdog would fail it).
#[test]
fn a_purge_at_the_cap_returns_without_waiting() {
    const BLOCKER: u64 = 0;
    watchdog("a_purge_at_the_cap_returns_without_waiting", || {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let returned = Arc::new(AtomicUsize::new(0));
        let cache = Arc::new(
            Cache::<u64, u64>::builder()
                .capacity(2)
                .shards(1)
                .max_pending_callbacks(1)
                .resume_callback_panics()
                .on_evict({
                    let (delivered, returned) = (delivered.clone(), returned.clone());
                    move |_cache, evicted| {
                        if evicted.key == BLOCKER {
                            entered_tx.lock().unwrap().send(()).unwrap();
                            release_rx.lock().unwrap().recv().unwrap();
                        }
                        delivered.lock().unwrap().push(evicted.key);
                        returned.fetch_add(1, SeqCst);
                    }
                })
                .build()
                .unwrap(),
        );
        cache.insert(BLOCKER, 0);
        cache.insert(1, 1);
        let thread_a = std::thread::spawn({
            let cache = cache.clone();
            move || cache.insert(2, 2) // evicts BLOCKER: its callback blocks in this thread
        });
        entered_rx.recv().unwrap(); // the callback is running and holds the only slot

        let skipped = cache.stats().purges_skipped;
        assert_eq!(cache.insert(3, 3), None); // evicts 1, and its purge finds the cap reached
        assert_eq!(returned.load(SeqCst), 0, "the insert returned while the callback is blocked");
        assert_eq!(cache.stats().purges_skipped, skipped + 1);
        assert_eq!(cache.queued(), 1, "the evicted entry waits in the queue");
        assert_eq!(cache.purge(), 0, "an explicit purge at the cap returns at once too");
        assert_eq!(cache.stats().purges_skipped, skipped + 2);
        assert_eq!(cache.queued(), 1);

        release_tx.send(()).unwrap();
        assert_eq!(thread_a.join().unwrap(), None);
        // Thread A's purge (its budget covers the entry queued meanwhile) went on to deliver 1.
        assert_eq!(*delivered.lock().unwrap(), [BLOCKER, 1]);
        assert_eq!(cache.queued(), 0);
        let stats = cache.stats();
        assert_eq!((stats.delivered, stats.len), (2, 2));
    });
}
