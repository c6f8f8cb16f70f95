//! Loaders (`load.rs`): `get_or_insert_with` and `get_or_try_insert_with`, blocking, and
//! `get_or_insert`, checked from outside.
//!
//! * **Single flight.** However many threads miss one key at once, its loader runs once and
//!   every caller gets its value; a failed or panicking load hands the key to one waiter, which
//!   loads next, and nothing stays stuck.
//! * **`get_or_insert`** stores exactly one of the values racing callers offer; the others are
//!   dropped unlocked and never reach the callback.
//! * **Re-entry.** A loader that asks for its own key (directly or through another key's
//!   loader) panics, naming the cause, instead of waiting for itself; other keys load fine.
//! * **No stale loads.** A write of the key during its load supersedes the load (the loaded
//!   value is not cached); a load does not read the store while an evicted entry of its key is
//!   still queued or in its write-back callback. A stress test with a versioned write-back
//!   store checks that no read ever returns a version older than a write that completed before
//!   it began. A load does not wait for a backlog of other keys' write-backs.
//! * **Key drops that panic.** A record's key whose `Drop` panics (in `clear`, a failed load, a
//!   completion that evicts) loses no entry on its way to the callback and wakes every waiter.
//! * **Loads from an eviction callback** of keys that nobody is loading and that have no
//!   write-back on the way work.
//! * `Cache::new(0)` panics with the builder's message.
//!
//! Everything that could hang runs under `support::watchdog`. Sleeps only create interleavings;
//! nothing asserts a duration.

mod support;

use shardlru::{Cache, Evicted, RemovalCause};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicIsize, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;
use support::{assert_no_stale_loads, expect_panic, holds_a_shard_lock, panic_message, watchdog};

/// How long a loader sleeps so that the other callers of a stampede arrive while it runs.
const LOAD_TIME: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// Single flight.
// ---------------------------------------------------------------------------------------------

/// Runs `call(caller)` on `callers` threads that start together (a barrier), and returns what
/// each returned, in caller order.
fn race<T: Send>(callers: usize, call: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(callers);
    thread::scope(|s| {
        let threads: Vec<_> = (0..callers)
            .map(|caller| {
                let (barrier, call) = (&barrier, &call);
                s.spawn(move || {
                    barrier.wait();
                    call(caller)
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).collect()
    })
}

/// 64 threads miss one key at once: the loader runs exactly once, every caller gets the value
/// it loaded, and that value is cached.
#[test]
fn a_stampede_runs_the_loader_once() {
    watchdog("a_stampede_runs_the_loader_once", || {
        const CALLERS: usize = 64;
        let cache = Arc::new(Cache::<u64, String>::new(100));
        let loads = AtomicUsize::new(0);
        let got = race(CALLERS, |caller| {
            cache.get_or_insert_with(7, || {
                loads.fetch_add(1, SeqCst);
                thread::sleep(LOAD_TIME);
                format!("loaded by {caller}")
            })
        });
        assert_eq!(loads.load(SeqCst), 1, "the loader ran more than once");
        let resident = cache.peek(&7).expect("the loaded value is cached");
        assert!(resident.starts_with("loaded by "), "{resident}");
        assert!(got.iter().all(|value| *value == resident), "callers got {got:?}");
        assert_eq!(cache.len(), 1);
    });
}

/// The same stampede with `get_or_try_insert_with`, whose first load fails: exactly one caller
/// (the first loader's) gets the error, one waiter loads next (two loads in all), everyone else
/// gets that value, and it is cached.
#[test]
fn a_failed_load_hands_the_stampede_to_a_waiter() {
    watchdog("a_failed_load_hands_the_stampede_to_a_waiter", || {
        const CALLERS: usize = 64;
        let cache = Arc::new(Cache::<u64, String>::new(100));
        let loads = AtomicUsize::new(0);
        let got: Vec<Result<String, &str>> = race(CALLERS, |caller| {
            cache.get_or_try_insert_with(7, || {
                let nth = loads.fetch_add(1, SeqCst);
                thread::sleep(LOAD_TIME);
                if nth == 0 { Err("store down") } else { Ok(format!("loaded by {caller}")) }
            })
        });
        assert_eq!(loads.load(SeqCst), 2, "one failed load, then exactly one more");
        let errors = got.iter().filter(|result| result.is_err()).count();
        assert_eq!(errors, 1, "only the failed loader's caller gets the error: {got:?}");
        assert!(got.contains(&Err("store down")));
        let resident = cache.peek(&7).expect("the second load is cached");
        let values: Vec<&String> = got.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(values.len(), CALLERS - 1);
        assert!(values.iter().all(|value| **value == resident), "callers got {got:?}");
    });
}

/// A value that counts its live copies (clones included) and its drops made while the
/// dropping thread holds a shard lock.
struct Counted {
    id: usize,
    live: Arc<AtomicIsize>,
    dropped_under_lock: Arc<AtomicUsize>,
}

impl Counted {
    fn new(id: usize, live: &Arc<AtomicIsize>, dropped_under_lock: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self { id, live: live.clone(), dropped_under_lock: dropped_under_lock.clone() }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Self::new(self.id, &self.live, &self.dropped_under_lock)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
        if holds_a_shard_lock() {
            self.dropped_under_lock.fetch_add(1, SeqCst);
        }
    }
}

/// 16 threads offer different values for one absent key with `get_or_insert`: all get the same
/// value, that value is resident, the others are dropped (only the resident copy is left alive),
/// none is dropped under a shard lock, and none reaches the eviction callback.
#[test]
fn racing_get_or_insert_stores_one_value() {
    watchdog("racing_get_or_insert_stores_one_value", || {
        const CALLERS: usize = 16;
        let live = Arc::new(AtomicIsize::new(0));
        let dropped_under_lock = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let cache = Arc::new(
            Cache::<u32, Counted>::builder()
                .capacity(64)
                .on_evict({
                    let delivered = delivered.clone();
                    move |_, evicted| delivered.lock().unwrap().push(evicted.value.id)
                })
                .build()
                .unwrap(),
        );
        let offered: Vec<Mutex<Option<Counted>>> = (0..CALLERS)
            .map(|caller| Mutex::new(Some(Counted::new(caller, &live, &dropped_under_lock))))
            .collect();
        let got = race(CALLERS, |caller| {
            let offered = offered[caller].lock().unwrap().take().unwrap();
            cache.get_or_insert(0, offered).id
        });
        let resident = cache.peek(&0).expect("one value is stored").id;
        assert!(got.iter().all(|&id| id == resident), "callers got {got:?}, resident {resident}");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.stats().inserts, 1, "exactly one value was stored");
        cache.purge();
        assert_eq!(*delivered.lock().unwrap(), [], "no offered value reaches the callback");
        assert_eq!(live.load(SeqCst), 1, "only the resident value is left alive");
        assert_eq!(dropped_under_lock.load(SeqCst), 0, "a value was dropped under a shard lock");
        drop(cache);
        assert_eq!(live.load(SeqCst), 0);
    });
}

/// A loader that panics while several threads wait for it: the panic goes on in its caller,
/// one waiter loads instead (two loads in all), every waiter gets that value, and it is cached.
#[test]
fn a_panicking_loader_hands_the_load_to_a_waiter() {
    watchdog("a_panicking_loader_hands_the_load_to_a_waiter", || {
        const WAITERS: usize = 4;
        let cache = Arc::new(Cache::<u32, String>::new(16));
        let loads = Arc::new(AtomicUsize::new(0));
        let (started, loading) = mpsc::channel();
        let first = {
            let (cache, loads) = (cache.clone(), loads.clone());
            thread::spawn(move || {
                cache.get_or_insert_with(1, || {
                    loads.fetch_add(1, SeqCst);
                    started.send(()).unwrap();
                    thread::sleep(Duration::from_millis(100));
                    panic!("the loader fails");
                })
            })
        };
        loading.recv().unwrap();
        let waiters: Vec<_> = (0..WAITERS)
            .map(|waiter| {
                let (cache, loads) = (cache.clone(), loads.clone());
                thread::spawn(move || {
                    cache.get_or_insert_with(1, || {
                        loads.fetch_add(1, SeqCst);
                        format!("loaded by waiter {waiter}")
                    })
                })
            })
            .collect();
        let payload = first.join().expect_err("the loader's panic goes on in its caller");
        assert_eq!(panic_message(&*payload), "the loader fails");
        let got: Vec<String> = waiters.into_iter().map(|waiter| waiter.join().unwrap()).collect();
        assert_eq!(loads.load(SeqCst), 2, "the panicked load, then exactly one more");
        let resident = cache.peek(&1).expect("the second load is cached");
        assert!(resident.starts_with("loaded by waiter"), "{resident}");
        assert!(got.iter().all(|value| *value == resident), "waiters got {got:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// Re-entry.
// ---------------------------------------------------------------------------------------------

/// A loader that asks for its own key panics with a message naming the cause instead of
/// waiting for itself; afterwards nothing is cached, and a new load of the key, on this thread
/// or another, runs normally.
#[test]
fn a_loader_that_asks_for_its_own_key_panics() {
    watchdog("a_loader_that_asks_for_its_own_key_panics", || {
        let cache = Arc::new(Cache::<u32, u32>::new(16));
        let message = expect_panic("a loader asking for its own key", || {
            cache.get_or_insert_with(1, || cache.get_or_insert_with(1, || 10) + 1)
        });
        assert!(message.contains("itself"), "the panic does not say why: {message}");
        assert!(message.contains("get_or_insert_with"), "{message}");
        assert!(!cache.contains_key(&1));
        assert_eq!(cache.get_or_insert_with(1, || 11), 11, "a fresh load on the same thread");
        assert_eq!(cache.remove(&1), Some(11));
        let other = cache.clone();
        let loaded = thread::spawn(move || other.get_or_insert_with(1, || 12)).join().unwrap();
        assert_eq!(loaded, 12, "a fresh load on another thread");
        assert_eq!(cache.peek(&1), Some(12));
    });
}

/// The same through a chain: the loader of 1 loads 2, whose loader asks for 1. That still
/// panics (the thread runs 1's loader, further out), and both keys load normally afterwards.
#[test]
fn a_loader_chain_back_to_its_own_key_panics() {
    watchdog("a_loader_chain_back_to_its_own_key_panics", || {
        let cache = Cache::<u32, u32>::new(16);
        let message = expect_panic("a loader chain back to its own key", || {
            cache.get_or_insert_with(1, || {
                cache.get_or_insert_with(2, || cache.get_or_insert_with(1, || 10) + 1) + 1
            })
        });
        assert!(message.contains("itself"), "the panic does not say why: {message}");
        assert!(cache.is_empty());
        assert_eq!(cache.get_or_insert_with(1, || cache.get_or_insert_with(2, || 20) + 1), 21);
        assert_eq!((cache.peek(&1), cache.peek(&2)), (Some(21), Some(20)));
    });
}

/// A loader may load other keys: both values are returned and cached.
#[test]
fn a_loader_may_load_another_key() {
    watchdog("a_loader_may_load_another_key", || {
        let cache = Cache::<u32, u32>::new(16);
        let loaded = cache.get_or_insert_with(1, || cache.get_or_insert_with(2, || 20) + 1);
        assert_eq!(loaded, 21);
        assert_eq!((cache.peek(&1), cache.peek(&2)), (Some(21), Some(20)));
        assert_eq!(cache.get_or_insert_with(2, || unreachable!("2 is cached")), 20);
    });
}

// ---------------------------------------------------------------------------------------------
// Writes during a load supersede it.
// ---------------------------------------------------------------------------------------------

/// A cache, and a thread that loads key 1 (the value 100) with a loader that blocks between
/// `started` and `proceed`: the caller's thread returns what `get_or_insert_with` returned.
struct BlockedLoad {
    cache: Arc<Cache<u32, u32>>,
    loader: thread::JoinHandle<u32>,
    proceed: mpsc::Sender<()>,
}

impl BlockedLoad {
    /// Starts the load in a cache of 16, and returns once the loader is running.
    fn start() -> Self {
        Self::start_in(Cache::new(16))
    }

    /// Starts the load in `cache`, and returns once the loader is running.
    fn start_in(cache: Cache<u32, u32>) -> Self {
        let cache = Arc::new(cache);
        let (started, running) = mpsc::channel();
        let (proceed, go) = mpsc::channel::<()>();
        let loader = {
            let cache = cache.clone();
            thread::spawn(move || {
                cache.get_or_insert_with(1, move || {
                    started.send(()).unwrap();
                    go.recv().unwrap();
                    100
                })
            })
        };
        running.recv().unwrap();
        Self { cache, loader, proceed }
    }

    /// Lets the loader return, and returns what its caller got.
    fn finish(self) -> u32 {
        self.proceed.send(()).unwrap();
        self.loader.join().unwrap()
    }
}

/// An `insert` of the key during its load wins: the loader's caller, and a caller that waits
/// for that load, get the inserted value, and it stays cached.
#[test]
fn an_insert_during_a_load_supersedes_it() {
    watchdog("an_insert_during_a_load_supersedes_it", || {
        let load = BlockedLoad::start();
        let waiter = {
            let cache = load.cache.clone();
            thread::spawn(move || cache.get_or_insert_with(1, || 300))
        };
        thread::sleep(Duration::from_millis(20)); // the waiter joins the load (or finds 200)
        assert_eq!(load.cache.insert(1, 200), None);
        let cache = load.cache.clone();
        assert_eq!(load.finish(), 200, "the loader's caller gets the inserted value");
        assert_eq!(waiter.join().unwrap(), 200, "the waiter gets the inserted value");
        assert_eq!(cache.peek(&1), Some(200));
        assert_eq!(cache.len(), 1);
    });
}

/// An `insert` of the key during its load still wins when the inserted entry is evicted again
/// before the load completes: the loaded value (read before the write) goes back to the caller
/// but is not cached over the newer write.
#[test]
fn an_insert_evicted_again_during_a_load_still_supersedes_it() {
    watchdog("an_insert_evicted_again_during_a_load_still_supersedes_it", || {
        let load = BlockedLoad::start_in(Cache::builder().capacity(1).shards(1).build().unwrap());
        assert_eq!(load.cache.insert(1, 200), None);
        load.cache.insert(2, 2); // evicts 1
        assert!(!load.cache.contains_key(&1));
        let cache = load.cache.clone();
        assert_eq!(load.finish(), 100, "no resident value: the loaded one goes back");
        assert!(!cache.contains_key(&1), "a load older than an insert was cached");
        assert_eq!(cache.peek(&2), Some(2));
    });
}

/// `get_or_insert` during a load supersedes it too: its value stays, and the loader's caller
/// gets it.
#[test]
fn a_get_or_insert_during_a_load_supersedes_it() {
    watchdog("a_get_or_insert_during_a_load_supersedes_it", || {
        let load = BlockedLoad::start();
        assert_eq!(load.cache.get_or_insert(1, 200), 200);
        let cache = load.cache.clone();
        assert_eq!(load.finish(), 200);
        assert_eq!(cache.peek(&1), Some(200));
    });
}

/// A `remove` of the key during its load wins: the loader's caller gets the loaded value, but
/// it is not cached.
#[test]
fn a_remove_during_a_load_supersedes_it() {
    watchdog("a_remove_during_a_load_supersedes_it", || {
        let load = BlockedLoad::start();
        assert_eq!(load.cache.remove(&1), None);
        let cache = load.cache.clone();
        assert_eq!(load.finish(), 100, "the loaded value goes back to the caller");
        assert!(!cache.contains_key(&1), "a load superseded by a remove cached its value");
        assert!(cache.is_empty());
        assert_eq!(cache.get_or_insert_with(1, || 101), 101, "the next call loads again");
    });
}

/// `clear` during a load supersedes it as `remove` does.
#[test]
fn a_clear_during_a_load_supersedes_it() {
    watchdog("a_clear_during_a_load_supersedes_it", || {
        let load = BlockedLoad::start();
        load.cache.insert(2, 2);
        load.cache.clear();
        let cache = load.cache.clone();
        assert_eq!(load.finish(), 100);
        assert!(!cache.contains_key(&1), "a load superseded by clear cached its value");
        assert!(cache.is_empty());
    });
}

/// A value that does not change during a load (an insert of another key, a `get` of the key)
/// does not supersede it: the loaded value is cached.
#[test]
fn other_calls_during_a_load_do_not_supersede_it() {
    watchdog("other_calls_during_a_load_do_not_supersede_it", || {
        let load = BlockedLoad::start();
        load.cache.insert(2, 2);
        assert_eq!(load.cache.get(&1), None);
        assert_eq!(load.cache.remove(&3), None);
        let cache = load.cache.clone();
        assert_eq!(load.finish(), 100);
        assert_eq!(cache.peek(&1), Some(100));
    });
}

// ---------------------------------------------------------------------------------------------
// Loads wait for write-backs.
// ---------------------------------------------------------------------------------------------

type Store = Arc<Mutex<HashMap<u32, u64>>>;

/// A one-entry, one-shard cache whose callback writes each evicted entry back to `store`. The
/// callback for key 1 first reports on `entered` and blocks until `release` sends.
fn write_back_cache(store: &Store) -> (Arc<Cache<u32, u64>>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let sink = store.clone();
    let cache = Cache::builder()
        .capacity(1)
        .shards(1)
        .max_pending_callbacks(1)
        .on_evict(move |_, Evicted { key, value, .. }| {
            if key == 1 {
                entered_tx.lock().unwrap().send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            }
            sink.lock().unwrap().insert(key, value);
        })
        .build()
        .unwrap();
    (Arc::new(cache), entered, release)
}

/// Loads `key` from `store` on a new thread.
fn load_from(cache: &Arc<Cache<u32, u64>>, store: &Store, key: u32) -> thread::JoinHandle<u64> {
    let (cache, store) = (cache.clone(), store.clone());
    thread::spawn(move || {
        cache.get_or_insert_with(key, || store.lock().unwrap().get(&key).copied().unwrap_or(0))
    })
}

/// A load of a key whose evicted entry is inside its write-back callback waits for the
/// callback to return, and so reads the written-back value, not the store's older one.
#[test]
fn a_load_waits_for_the_write_back_of_its_key() {
    watchdog("a_load_waits_for_the_write_back_of_its_key", || {
        let store = Store::default();
        let (cache, entered, release) = write_back_cache(&store);
        cache.insert(1, 10);
        let evicting = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(2, 20)) // evicts 1 into the blocking callback
        };
        entered.recv().unwrap();
        let reader = load_from(&cache, &store, 1);
        thread::sleep(Duration::from_millis(50)); // the reader misses 1 and would load now
        assert_eq!(store.lock().unwrap().get(&1), None, "the write-back has not happened yet");
        release.send(()).unwrap();
        assert_eq!(evicting.join().unwrap(), None);
        assert_eq!(reader.join().unwrap(), 10, "the load read the store before its write-back");
        assert_eq!(cache.peek(&1), Some(10));
    });
}

/// A load of a key whose evicted entry is still queued (every callback slot busy) waits until
/// it is delivered, and reads the written-back value.
#[test]
fn a_load_waits_for_a_queued_write_back_of_its_key() {
    watchdog("a_load_waits_for_a_queued_write_back_of_its_key", || {
        let store = Store::default();
        let (cache, entered, release) = write_back_cache(&store);
        cache.insert(1, 10);
        let evicting = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(2, 20)) // evicts 1 into the blocking callback
        };
        entered.recv().unwrap();
        cache.insert(3, 30); // evicts 2; the only callback slot is taken, so it is queued
        assert_eq!(cache.queued(), 1);
        let reader = load_from(&cache, &store, 2);
        thread::sleep(Duration::from_millis(50)); // the reader misses 2 and would load now
        assert_eq!(store.lock().unwrap().get(&2), None, "the write-back has not happened yet");
        release.send(()).unwrap();
        evicting.join().unwrap();
        assert_eq!(reader.join().unwrap(), 20, "the load read the store before its write-back");
        assert_eq!(store.lock().unwrap().get(&1), Some(&10));
    });
}

/// No stale loads, under load (`support::stale`): write-backs of ~200 µs, inline, for about a
/// second.
#[test]
fn loads_never_return_a_version_older_than_a_completed_write() {
    watchdog("loads_never_return_a_version_older_than_a_completed_write", || {
        assert_no_stale_loads(0, Duration::from_micros(200), Duration::from_secs(1));
    });
}

/// A hasher for `u64` keys whose hash is the key itself, so that a test chooses which keys
/// share the low bits of their hashes.
#[derive(Clone, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0 << 8 | u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// An eviction callback may load keys that nobody is loading and that have no write-back on
/// the way (the panic is documented only for a key another caller is loading, or whose
/// evicted entry is still on its way to the callback). The callback delivering key 1 loads
/// keys 2 to 10 000 of a cache that holds them all (so nothing else is evicted meanwhile): every
/// load must succeed. With hashes equal to the keys, some of them share any power-of-two
/// number of low hash bits up to 8 192 with key 1, whose entry is the one being delivered.
#[test]
fn an_eviction_callback_may_load_other_keys() {
    watchdog("an_eviction_callback_may_load_other_keys", || {
        const KEYS: u64 = 10_000;
        let failures = Arc::new(Mutex::new(Vec::new()));
        let cache = Cache::<u64, u64, _>::builder()
            .hasher(BuildHasherDefault::<IdentityHasher>::default())
            .capacity(KEYS as usize + 1)
            .shards(1)
            .on_evict({
                let failures = failures.clone();
                move |cache, evicted| {
                    if evicted.key != 1 {
                        return;
                    }
                    for key in 2..=KEYS {
                        let loaded = catch_unwind(AssertUnwindSafe(|| {
                            cache.get_or_insert_with(key, || key)
                        }));
                        if let Err(payload) = loaded {
                            failures.lock().unwrap().push((key, panic_message(&*payload)));
                        }
                    }
                }
            })
            .build()
            .unwrap();
        cache.insert(1, 1);
        cache.retain(|&key, _| key != 1); // hands 1 to the callback
        cache.purge();
        let failures = failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "{} loads from the callback panicked, e.g. key {}: {}",
            failures.len(),
            failures[0].0,
            failures[0].1
        );
        assert_eq!(cache.len(), KEYS as usize - 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Cache::new.
// ---------------------------------------------------------------------------------------------

/// `Cache::new(0)` panics with `BuildError::ZeroCapacity`'s message.
#[test]
#[should_panic(expected = "capacity is 0: a cache must hold at least one entry")]
fn new_with_zero_capacity_panics_with_the_builders_message() {
    let _ = Cache::<u32, u32>::new(0);
}

/// `Cache::new(n)` builds a working cache of capacity `n` with the builder's defaults.
#[test]
fn new_builds_a_cache_of_that_capacity() {
    let cache = Cache::<u32, u32>::new(3);
    assert_eq!(cache.capacity(), 3);
    for key in 0..10 {
        cache.insert(key, key);
    }
    assert!(cache.len() <= 3);
    assert_eq!(cache.get_or_insert(42, 1), 1);
    assert_eq!(cache.get(&42), Some(1));
}

// ---------------------------------------------------------------------------------------------
// Regressions: a backlog of other keys' write-backs, and a key's `Drop` that panics.
// ---------------------------------------------------------------------------------------------

/// A load of a key never inserted does not wait for a backlog of other keys' write-backs. One
/// callback slot, held by a callback blocked on key 0's entry, and ~1 000 evicted entries
/// queued behind it (hashes equal to the keys); then loads of keys whose hashes share their low
/// 12 bits with a queued key's or with key 0's (an earlier design counted the wait by those
/// bits, so these loads waited for the whole queue) must all return while the callback is
/// still blocked. A load of a queued key still waits for its write-back, and reads the
/// written-back value.
#[test]
fn a_load_of_another_key_does_not_wait_for_a_backlog() {
    watchdog("a_load_of_another_key_does_not_wait_for_a_backlog", || {
        const LAST: u64 = 1_000;
        let store: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
        let cache = {
            let store = store.clone();
            Arc::new(
                Cache::<u64, u64, _>::builder()
                    .hasher(BuildHasherDefault::<IdentityHasher>::default())
                    .capacity(4)
                    .shards(1)
                    .max_pending_callbacks(1)
                    .on_evict(move |_, Evicted { key, value, .. }| {
                        if key == 0 {
                            entered_tx.lock().unwrap().send(()).unwrap();
                            release_rx.lock().unwrap().recv().unwrap();
                        }
                        store.lock().unwrap().insert(key, value);
                    })
                    .build()
                    .unwrap(),
            )
        };
        for key in 0..4 {
            cache.insert(key, key * 10);
        }
        let evicting = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(4, 40)) // evicts 0 into the blocking callback
        };
        entered.recv().unwrap();
        for key in 5..=LAST {
            cache.insert(key, key * 10); // evicts one more; the only slot is taken: queued
        }
        let queued = cache.queued();
        assert!(queued >= 100, "no backlog to wait for: {queued} queued");
        // 4096 * m + 500 shares its low 12 bits with queued key 500, 4096 * 9 with key 0.
        let others: Vec<u64> = (1..=8).map(|m| 4096 * m + 500).chain([4096 * 9]).collect();
        let (loaded_tx, loaded) = mpsc::channel();
        let _loading = {
            let (cache, others) = (cache.clone(), others.clone());
            thread::spawn(move || {
                for key in others {
                    let _ = loaded_tx.send(cache.get_or_insert_with(key, || key + 1));
                }
            })
        };
        let got: Result<Vec<u64>, _> =
            others.iter().map(|_| loaded.recv_timeout(Duration::from_secs(10))).collect();
        if got.is_err() {
            release.send(()).unwrap(); // lets the stuck load go on before the test fails
        }
        let got = got.expect("a load of a key never inserted waited for other keys' write-backs");
        assert_eq!(got, others.iter().map(|key| key + 1).collect::<Vec<_>>());
        assert!(!evicting.is_finished(), "the callback returned before it was released");
        // A load of a queued key still waits for its write-back.
        let reader = {
            let (cache, store) = (cache.clone(), store.clone());
            thread::spawn(move || {
                cache.get_or_insert_with(500, || {
                    store.lock().unwrap().get(&500).copied().unwrap_or(0)
                })
            })
        };
        thread::sleep(Duration::from_millis(50)); // the reader misses 500 and would load now
        assert!(!reader.is_finished(), "a load of a queued key did not wait for its write-back");
        assert_eq!(store.lock().unwrap().get(&500), None, "the write-back has not happened yet");
        release.send(()).unwrap();
        assert_eq!(evicting.join().unwrap(), None);
        assert_eq!(reader.join().unwrap(), 5000, "the load read the store before its write-back");
        while cache.queued() > 0 {
            cache.purge();
        }
        let store = store.lock().unwrap();
        let missing: Vec<u64> = (0..=LAST).filter(|key| !store.contains_key(key)).collect();
        assert_eq!(missing, [], "evicted entries never written back");
    });
}

/// No tag is armed in a [`Fuse`].
const DISARMED: u32 = u32::MAX;

/// A key whose copies made by `Clone` panic when dropped while their tag is armed in `armed`,
/// once (the drop disarms it); keys made with [`Fuse::new`] or [`Fuse::tagged`] never panic.
/// The cache copies a key only for the record of a load in flight (and for a caller that finds
/// the key present or being loaded, a copy dropped before it waits), so arming the tag of a
/// caller's key while its load runs makes the drop of that load's record's key panic, and no
/// other caller's. Equality and hashing use `id` only.
struct Fuse {
    id: u32,
    tag: u32,
    copy: bool,
    armed: Arc<AtomicU32>,
}

impl Fuse {
    /// Key `id`, tagged `id`.
    fn new(id: u32, armed: &Arc<AtomicU32>) -> Self {
        Self::tagged(id, id, armed)
    }

    fn tagged(id: u32, tag: u32, armed: &Arc<AtomicU32>) -> Self {
        Self { id, tag, copy: false, armed: armed.clone() }
    }
}

impl Clone for Fuse {
    fn clone(&self) -> Self {
        Self { id: self.id, tag: self.tag, copy: true, armed: self.armed.clone() }
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        if self.copy
            && !thread::panicking()
            && self.armed.compare_exchange(self.tag, DISARMED, SeqCst, SeqCst).is_ok()
        {
            panic!("drop of a copy of key {} (tag {}) fails", self.id, self.tag);
        }
    }
}

impl PartialEq for Fuse {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Fuse {}

impl Hash for Fuse {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// What a recording callback got: (key, cause), in delivery order.
type Delivered = Arc<Mutex<Vec<(u32, RemovalCause)>>>;

/// What a recording callback got, sorted by key.
fn sorted(delivered: &Delivered) -> Vec<(u32, RemovalCause)> {
    let mut delivered = delivered.lock().unwrap().clone();
    delivered.sort_by_key(|&(key, _)| key);
    delivered
}

/// A one-shard cache of [`Fuse`] keys whose callback records what it gets.
fn recording_cache(builder: shardlru::Builder<Fuse, u32>) -> (Arc<Cache<Fuse, u32>>, Delivered) {
    let delivered = Delivered::default();
    let cache = builder
        .shards(1)
        .on_evict({
            let delivered = delivered.clone();
            move |_, evicted: Evicted<Fuse, u32>| {
                delivered.lock().unwrap().push((evicted.key.id, evicted.cause));
            }
        })
        .build()
        .unwrap();
    (Arc::new(cache), delivered)
}

/// `clear` during a load whose record's key panics when `clear` drops it (the load is
/// superseded): the panic goes on in `clear`'s caller, but every entry cleared (A, B, C) is
/// still delivered, exactly once, with `RemovalCause::Clear`, the weight is given back, and a
/// new load of a cleared key does not wait forever for a write-back that never comes (an
/// earlier version dropped the superseded records before queueing the cleared entries, so the
/// panic lost them).
#[test]
fn a_panicking_key_drop_in_clear_loses_no_entry() {
    watchdog("a_panicking_key_drop_in_clear_loses_no_entry", || {
        const P: u32 = 9;
        let armed = Arc::new(AtomicU32::new(DISARMED));
        let key = |id| Fuse::new(id, &armed);
        let (cache, delivered) = recording_cache(Cache::builder().capacity(16));
        let (started, running) = mpsc::channel();
        let (proceed, go) = mpsc::channel::<()>();
        let loader = {
            let (cache, p) = (cache.clone(), key(P));
            thread::spawn(move || {
                cache.get_or_insert_with(p, move || {
                    started.send(()).unwrap();
                    go.recv().unwrap();
                    100
                })
            })
        };
        running.recv().unwrap(); // P's record, holding a copy of P, is in the shard
        for id in 1..=3 {
            cache.insert(key(id), id * 10);
        }
        armed.store(P, SeqCst);
        let cleared = catch_unwind(AssertUnwindSafe(|| cache.clear()));
        let payload = cleared.expect_err("the superseded record's key panics when dropped");
        assert_eq!(panic_message(&*payload), format!("drop of a copy of key {P} (tag {P}) fails"));
        assert_eq!(armed.load(SeqCst), DISARMED);
        assert!(cache.is_empty());
        assert_eq!(cache.weight(), 0, "the cleared entries' weight was not given back");
        while cache.queued() > 0 {
            cache.purge();
        }
        let clear = RemovalCause::Clear;
        assert_eq!(sorted(&delivered), [(1, clear), (2, clear), (3, clear)]);
        proceed.send(()).unwrap();
        assert_eq!(loader.join().unwrap(), 100, "the superseded load's value goes back");
        assert!(!cache.contains_key(&key(P)), "a load superseded by clear cached its value");
        assert_eq!(cache.get_or_insert_with(key(1), || 11), 11, "a new load of a cleared key");
        assert_eq!(cache.peek(&key(1)), Some(11));
        assert_eq!(sorted(&delivered).len(), 3, "delivered more than once");
    });
}

/// A failed load (`get_or_try_insert_with` returns `Err`) whose record's key panics when the
/// loader's guard drops it: the panic goes on in the failed loader's caller, and a waiter that
/// joined the load is still woken, loads the key itself and gets its value (an earlier version
/// dropped the record before publishing the outcome, so the waiter slept forever).
#[test]
fn a_failed_load_whose_key_drop_panics_still_wakes_its_waiters() {
    watchdog("a_failed_load_whose_key_drop_panics_still_wakes_its_waiters", || {
        const P: u32 = 5;
        // The failing caller's key, and so its record's: the waiter's record, once it loads,
        // holds a copy of its own key, tagged P.
        const FAILING: u32 = 1_000;
        let armed = Arc::new(AtomicU32::new(DISARMED));
        let cache = Arc::new(Cache::<Fuse, u32>::new(16));
        let (started, running) = mpsc::channel();
        let (proceed, go) = mpsc::channel::<()>();
        let failing = {
            let (cache, p) = (cache.clone(), Fuse::tagged(P, FAILING, &armed));
            thread::spawn(move || {
                cache.get_or_try_insert_with(p, move || {
                    started.send(()).unwrap();
                    go.recv().unwrap();
                    Err::<u32, &str>("store down")
                })
            })
        };
        running.recv().unwrap();
        let (waited_tx, waited) = mpsc::channel();
        let _waiter = {
            let (cache, p) = (cache.clone(), Fuse::new(P, &armed));
            thread::spawn(move || waited_tx.send(cache.get_or_insert_with(p, || 55)).unwrap())
        };
        while cache.stats().misses < 2 {
            thread::yield_now(); // the waiter missed P
        }
        thread::sleep(Duration::from_millis(50)); // and waits for the load
        armed.store(FAILING, SeqCst);
        proceed.send(()).unwrap();
        let payload =
            failing.join().expect_err("the record's key drop panics in the loader's caller");
        assert_eq!(
            panic_message(&*payload),
            format!("drop of a copy of key {P} (tag {FAILING}) fails")
        );
        assert_eq!(armed.load(SeqCst), DISARMED);
        let got = waited.recv_timeout(Duration::from_secs(10));
        assert_eq!(got, Ok(55), "the waiter of the failed load was not woken");
        assert_eq!(cache.peek(&Fuse::new(P, &armed)), Some(55));
        assert_eq!(cache.get_or_insert_with(Fuse::new(P, &armed), || 56), 55);
    });
}

/// A load whose completion must evict two entries of a full weighted cache (capacity 10: five
/// entries of weight 2, the loaded value weighs 4), and whose record's key panics when the
/// completion drops it: the panic goes on in the loader's caller, but both evicted entries are
/// delivered, exactly once, the weight stays within the capacity, and a later load of an
/// evicted key does not wait forever for a write-back that never comes (an earlier version
/// dropped the record before queueing what the completion evicted).
#[test]
fn a_load_completing_into_a_full_cache_delivers_what_it_evicted() {
    watchdog("a_load_completing_into_a_full_cache_delivers_what_it_evicted", || {
        const P: u32 = 9;
        let armed = Arc::new(AtomicU32::new(DISARMED));
        let key = |id| Fuse::new(id, &armed);
        let builder = Cache::builder().capacity(10).weigher(|_, value: &u32| u64::from(*value));
        let (cache, delivered) = recording_cache(builder);
        for id in 100..105 {
            cache.insert(key(id), 2);
        }
        assert_eq!(cache.weight(), 10);
        armed.store(P, SeqCst); // the only copy of P the load makes is its record's
        let loaded = catch_unwind(AssertUnwindSafe(|| cache.get_or_insert_with(key(P), || 4)));
        let payload = loaded.expect_err("the record's key drop panics in the loader's caller");
        assert_eq!(panic_message(&*payload), format!("drop of a copy of key {P} (tag {P}) fails"));
        assert_eq!(armed.load(SeqCst), DISARMED);
        assert!(cache.weight() <= 10, "weight {} over the capacity", cache.weight());
        while cache.queued() > 0 {
            cache.purge();
        }
        let capacity = RemovalCause::Capacity;
        assert_eq!(sorted(&delivered), [(100, capacity), (101, capacity)]);
        assert_eq!(cache.get_or_insert_with(key(100), || 1), 1, "a new load of an evicted key");
        assert_eq!(cache.get_or_insert_with(key(P), || 3), cache.peek(&key(P)).unwrap());
        assert!(cache.weight() <= 10, "weight {} over the capacity", cache.weight());
    });
}
