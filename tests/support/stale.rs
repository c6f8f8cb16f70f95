//! Guarantee 9 under load: a write-back cache over 64 keys (16 entries, one callback at a time,
//! each a sleep) and 4 threads that write new versions of their own keys (each key has one
//! writer, so its versions are inserted in order) and read any key through
//! `get_or_insert_with`, loading from the store. A read must never return a version older than
//! one whose `insert` had returned before the read began: it would mean a load read the store
//! before the write-back of an evicted newer version, or cached an old value over a write made
//! during the load.
//!
//! The store keeps the highest version written back for each key, since write-backs of one key
//! by different threads may run in either order.

use shardlru::{Cache, Evicted};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const KEYS: u64 = 64;
const THREADS: u64 = 4;
const OPS_PER_THREAD: usize = 1_500;

/// Runs the scenario for at most `run_for`, with each write-back taking `callback`, delivered by
/// `purge_threads` threads (0: inline), and asserts that no read was stale.
pub fn assert_no_stale_loads(purge_threads: usize, callback: Duration, run_for: Duration) {
    let store: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let cache = {
        let store = store.clone();
        Arc::new(
            Cache::<u64, u64>::builder()
                .capacity(16)
                .max_pending_callbacks(1)
                .on_evict(move |_, Evicted { key, value, .. }| {
                    thread::sleep(callback);
                    let mut store = store.lock().unwrap();
                    let stored = store.entry(key).or_insert(0);
                    *stored = (*stored).max(value);
                })
                .build()
                .unwrap(),
        )
    };
    let purge_threads =
        (purge_threads > 0).then(|| cache.spawn_purge_threads(purge_threads).unwrap());
    // Per key: the version whose `insert` has returned (versions start at 1).
    let written: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let loads = Arc::new(AtomicUsize::new(0));
    // Loads of a key that had been written (so they must find a written-back version).
    let reloads = Arc::new(AtomicUsize::new(0));
    let violations = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (cache, store, written) = (cache.clone(), store.clone(), written.clone());
            let (loads, reloads) = (loads.clone(), reloads.clone());
            let (violations, stop) = (violations.clone(), stop.clone());
            thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (thread + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for _ in 0..OPS_PER_THREAD {
                    if stop.load(SeqCst) || start.elapsed() > run_for {
                        stop.store(true, SeqCst);
                        break;
                    }
                    if next() % 4 == 0 {
                        // A write of one of this thread's keys: key % THREADS == thread.
                        let key = thread + THREADS * (next() % (KEYS / THREADS));
                        let version = written[key as usize].load(SeqCst) + 1;
                        cache.insert(key, version);
                        written[key as usize].store(version, SeqCst);
                    } else {
                        let key = next() % KEYS;
                        let floor = written[key as usize].load(SeqCst);
                        let got = cache.get_or_insert_with(key, || {
                            loads.fetch_add(1, SeqCst);
                            if floor > 0 {
                                reloads.fetch_add(1, SeqCst);
                            }
                            let stored = store.lock().unwrap().get(&key).copied();
                            // A slow read: writes of the key may come meanwhile.
                            thread::sleep(Duration::from_micros(100));
                            stored.unwrap_or(0)
                        });
                        if got < floor {
                            violations.lock().unwrap().push((key, floor, got));
                        }
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|thread| thread.join().unwrap());
    if let Some(purge_threads) = purge_threads {
        drop(purge_threads);
        assert_eq!(cache.queued(), 0, "stopping the purge threads left entries queued");
    }
    let violations = violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} reads returned a version older than a completed write, (key, written, read): {:?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    let stats = cache.stats();
    assert!(stats.evictions > 0, "nothing was evicted: {stats:?}");
    assert!(loads.load(SeqCst) > 0, "nothing was loaded");
    assert!(reloads.load(SeqCst) > 0, "no written key was ever loaded back");
    assert!(cache.len() <= 16);
}
