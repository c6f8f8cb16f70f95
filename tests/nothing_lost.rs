//! Guarantee 3 (nothing is lost): every value leaves the cache exactly once, either handed back
//! to a caller (`remove`, the old value from `insert`) or handed to the callback (capacity
//! eviction, `clear`, shrinking `resize`, or the drain when the cache is dropped), and every
//! value is dropped exactly once. Checked under eight threads of random operations, with the
//! default cap on callbacks in flight and with a cap of one.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shardlru::{Cache, Evicted, RemovalCause};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{DropLog, Tracked};

const THREADS: u64 = 8;
const OPS_PER_THREAD: u64 = 4_000;
const KEYS: u32 = 200;

/// Values are `Arc`s so that `get` and `snapshot` can clone them; the `Tracked` inside is
/// dropped once, when the last clone goes, and its id is unique over the whole run.
type Value = Arc<Tracked>;

/// What one thread saw: the ids it inserted and the ids handed back to it.
#[derive(Default)]
struct ThreadLedger {
    inserted: Vec<u64>,
    returned: Vec<u64>,
}

fn run_threads(cache: &Cache<u32, Value>, drops: &DropLog, seed: u64) -> Vec<ThreadLedger> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(seed * 1_000 + thread);
                    let mut ledger = ThreadLedger::default();
                    let mut next_id = thread * OPS_PER_THREAD;
                    for _ in 0..OPS_PER_THREAD {
                        let key = rng.random_range(0..KEYS);
                        match rng.random_range(0..1_000) {
                            0..450 => {
                                let id = next_id;
                                next_id += 1;
                                ledger.inserted.push(id);
                                if let Some(old) = cache.insert(key, Arc::new(drops.track(id))) {
                                    ledger.returned.push(old.id);
                                }
                            }
                            450..650 => {
                                if let Some(value) = cache.remove(&key) {
                                    ledger.returned.push(value.id);
                                }
                            }
                            650..985 => {
                                // A clone: the cache keeps the value, nothing leaves.
                                drop(cache.get(&key));
                            }
                            985..995 if thread == 0 => {
                                // Shrinks and grows: shrinking delivers with `Shrink`.
                                cache.resize(rng.random_range(16..=96)).unwrap();
                            }
                            985..995 => {
                                // Lookups that leave recency alone; no assertion on them: other
                                // threads change the same keys between any two calls.
                                drop(cache.peek(&key));
                                cache.contains_key(&key);
                            }
                            _ => cache.clear(),
                        }
                    }
                    ledger
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).collect()
    })
}

/// Eight threads, then a flush, then every id must be in exactly one place: still cached,
/// returned to a caller, or delivered to the callback. After the cache is dropped, every value
/// must have been dropped exactly once.
fn every_value_accounted_for_exactly_once(seed: u64, max_pending_callbacks: Option<usize>) {
    let drops = DropLog::new((THREADS * OPS_PER_THREAD) as usize);
    let delivered: Arc<Mutex<Vec<(u64, RemovalCause)>>> = Arc::default();
    let sink = Arc::clone(&delivered);
    let mut builder = Cache::<u32, Value>::builder().capacity(64).shards(8).on_evict(
        move |_cache, Evicted { value, cause, .. }| {
            sink.lock().unwrap().push((value.id, cause));
            // Stay in the callback a little, so that with a cap of one other threads find
            // the slot taken and leave their entries queued.
            std::thread::yield_now();
        },
    );
    if let Some(max) = max_pending_callbacks {
        builder = builder.max_pending_callbacks(max);
    }
    let cache = builder.build().unwrap();

    let ledgers = run_threads(&cache, &drops, seed);

    // No other thread now: purging until the queue is empty must succeed.
    for _ in 0..1_000 {
        if cache.queued() == 0 {
            break;
        }
        cache.purge();
    }
    assert_eq!(cache.queued(), 0, "purge() with no other thread drains the queue");

    let remaining: Vec<(u32, Value)> = cache.snapshot();
    let delivered = std::mem::take(&mut *delivered.lock().unwrap());
    let mut places = vec![0u32; (THREADS * OPS_PER_THREAD) as usize];
    let returned = ledgers.iter().flat_map(|l| &l.returned).copied();
    let handed_to_callback = delivered.iter().map(|&(id, _)| id);
    let still_cached = remaining.iter().map(|(_, value)| value.id);
    for id in returned.chain(handed_to_callback).chain(still_cached) {
        places[id as usize] += 1;
    }
    let inserted: Vec<u64> = ledgers.iter().flat_map(|l| &l.inserted).copied().collect();
    let misplaced: Vec<(u64, u32)> =
        inserted.iter().map(|&id| (id, places[id as usize])).filter(|&(_, n)| n != 1).collect();
    assert!(misplaced.is_empty(), "(id, places found) other than exactly one: {misplaced:?}");
    let found: u32 = places.iter().sum();
    assert_eq!(found as usize, inserted.len(), "an id turned up that was never inserted");

    let stats = cache.stats();
    assert_eq!(stats.inserts, inserted.len() as u64);
    assert_eq!(stats.delivered, delivered.len() as u64);
    let evictions = delivered.iter().filter(|(_, cause)| *cause != RemovalCause::Clear).count();
    assert_eq!(stats.evictions, evictions as u64, "capacity and shrink evictions");
    assert!(delivered.iter().any(|(_, cause)| *cause == RemovalCause::Capacity));
    assert!(delivered.iter().any(|(_, cause)| *cause == RemovalCause::Clear));
    assert!(delivered.iter().any(|(_, cause)| *cause == RemovalCause::Shrink));

    drop(remaining);
    drop(cache);
    let wrong: Vec<(u64, u32)> =
        inserted.iter().map(|&id| (id, drops.drops(id))).filter(|&(_, n)| n != 1).collect();
    assert!(wrong.is_empty(), "(id, drops) other than exactly one: {wrong:?}");
}

#[test]
fn every_value_is_cached_returned_or_delivered_exactly_once_on_eight_threads() {
    support::watchdog("nothing lost, default cap", || {
        every_value_accounted_for_exactly_once(1, None)
    });
}

#[test]
fn every_value_is_cached_returned_or_delivered_exactly_once_with_one_callback_at_a_time() {
    support::watchdog("nothing lost, cap 1", || every_value_accounted_for_exactly_once(2, Some(1)));
}

/// An amplifying callback (one eviction inserts many entries, each evicting another) leaves
/// entries queued beyond what one purge delivers; dropping the cache must deliver them, and
/// every value must be dropped exactly once.
#[test]
fn entries_still_queued_when_the_cache_is_dropped_are_delivered_during_the_drop() {
    const AMPLIFY: u64 = 1_000;
    support::watchdog("drain on drop", || {
        let drops = DropLog::new(AMPLIFY as usize + 2);
        let delivered: Arc<Mutex<Vec<u64>>> = Arc::default();
        let sink = Arc::clone(&delivered);
        let amplified = AtomicBool::new(false);
        let values = drops.clone();
        let cache = Cache::<u64, Value>::builder()
            .capacity(1)
            .max_pending_callbacks(1)
            .on_evict(move |cache, evicted| {
                sink.lock().unwrap().push(evicted.value.id);
                if !amplified.swap(true, Ordering::Relaxed) {
                    // Each insert evicts the previous entry into the queue.
                    for id in 2..AMPLIFY + 2 {
                        cache.insert(id, Arc::new(values.track(id)));
                    }
                }
            })
            .build()
            .unwrap();
        cache.insert(0, Arc::new(drops.track(0)));
        cache.insert(1, Arc::new(drops.track(1))); // evicts 0: the callback amplifies

        let queued = cache.queued();
        assert!(queued > 0, "precondition: one purge delivers a bounded number of entries");
        let remaining: Vec<u64> = cache.snapshot().iter().map(|(_, v)| v.id).collect();
        let delivered_before = delivered.lock().unwrap().len();
        assert_eq!(delivered_before + queued + remaining.len(), AMPLIFY as usize + 2);

        drop(cache);
        let mut seen = delivered.lock().unwrap().clone();
        assert_eq!(seen.len(), delivered_before + queued, "the drop delivered every queued entry");
        seen.extend(remaining);
        seen.sort_unstable();
        assert_eq!(seen, (0..AMPLIFY + 2).collect::<Vec<_>>(), "each id delivered or cached once");
        assert_eq!(drops.not_dropped_once(), [], "every value dropped exactly once");
    });
}
