//! Never waiting while holding a lock (lock.rs, guarantee 6): a call into a cache from a
//! value's `Clone`, while this thread holds one of that cache's shard locks, is refused with
//! `Busy` (`Reentered`) instead of deadlocking; a call into another cache only tries its lock,
//! and is refused (`LockHeld`) when another thread holds it, so two caches whose values' clones
//! call each other cannot deadlock; a call from a thread that holds nothing is never refused.
//!
//! The probe: `Val::clone` runs under the shard lock of the `get` that clones it. When this
//! thread has armed a probe, that clone calls `try_get` on the probe's target and records the
//! outcome.
#![cfg(loom)]

use loom::thread;
use loom_tests::{Arc, TestCache, builder, keys_in_shard, run_model};
use shardlru::{Busy, BusyCause};
use std::cell::RefCell;

/// A value whose `Clone` fires this thread's armed probe, once.
#[derive(Debug, PartialEq)]
struct Val(u32);

/// A call to make from inside `Val::clone`: `target.try_get(&key)`.
struct Probe {
    target: Arc<TestCache<Val>>,
    key: u32,
}

type Outcome = Result<Option<Val>, BusyCause>;

loom::thread_local! {
    static PROBE: RefCell<Option<Probe>> = RefCell::new(None);
    static OUTCOME: RefCell<Option<Outcome>> = RefCell::new(None);
}

impl Clone for Val {
    fn clone(&self) -> Self {
        // Taken out first: the probe's own `try_get` may clone a `Val` too.
        if let Some(probe) = PROBE.with(|probe| probe.borrow_mut().take()) {
            let outcome = probe.target.try_get(&probe.key).map_err(|busy: Busy| busy.cause());
            OUTCOME.with(|slot| *slot.borrow_mut() = Some(outcome));
        }
        Val(self.0)
    }
}

/// `cache.try_get(&key)` with a probe armed: returns what the get returned and what the probe
/// `target.try_get(&probe_key)`, run under the get's shard lock, returned.
fn get_probing(
    cache: &TestCache<Val>,
    key: u32,
    target: &Arc<TestCache<Val>>,
    probe_key: u32,
) -> (Outcome, Outcome) {
    let probe = Probe { target: Arc::clone(target), key: probe_key };
    PROBE.with(|slot| *slot.borrow_mut() = Some(probe));
    let got = cache.try_get(&key).map_err(|busy| busy.cause());
    let probed = OUTCOME.with(|slot| slot.borrow_mut().take()).expect("the probe fired");
    (got, probed)
}

/// A cache with `keys` in it, each key's value equal to the key.
fn cache_with(capacity: usize, shards: usize, keys: &[u32]) -> Arc<TestCache<Val>> {
    let cache = builder(capacity, shards).build().unwrap();
    for &key in keys {
        cache.insert(key, Val(key));
    }
    Arc::new(cache)
}

/// Both threads lock shard 0 and, under it, ask for shard 1 of the same cache: each is refused
/// (it holds a lock of that cache), each outer call goes through (the other thread's lock does
/// not count), and once released, the same call succeeds.
#[test]
fn same_cache_reentry_is_refused() {
    run_model("reentry::same_cache_reentry_is_refused", || {
        let [a] = keys_in_shard::<1>(0, 2);
        let [b] = keys_in_shard::<1>(1, 2);
        let cache = cache_with(2, 2, &[a, b]);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    let (got, probed) = get_probing(&cache, a, &cache, b);
                    assert_eq!(got, Ok(Some(Val(a))), "another thread's lock refused this call");
                    assert_eq!(probed, Err(BusyCause::Reentered), "a re-entrant call went on");
                    assert_eq!(cache.try_get(&b).ok(), Some(Some(Val(b))), "refused after release");
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

/// The threads lock different shards of one cache and each asks for the other's: without the
/// refusal this is a lock-order (ABBA) deadlock, which loom reports.
#[test]
fn crossed_shards_reentry_is_refused() {
    run_model("reentry::crossed_shards_reentry_is_refused", || {
        let [a] = keys_in_shard::<1>(0, 2);
        let [b] = keys_in_shard::<1>(1, 2);
        let cache = cache_with(2, 2, &[a, b]);
        let threads: Vec<_> = [(a, b), (b, a)]
            .into_iter()
            .map(|(held, wanted)| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    let (got, probed) = get_probing(&cache, held, &cache, wanted);
                    assert_eq!(got, Ok(Some(Val(held))), "another thread's lock refused this call");
                    assert_eq!(probed, Err(BusyCause::Reentered), "a re-entrant call went on");
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

/// Holding a lock of cache B is no reason to refuse a call into cache A as re-entry, even when
/// this thread held A's lock before (its record of A must be gone): the call goes through when
/// A's lock is free and is refused with `LockHeld` only while the other thread holds it. The
/// other thread holds nothing, so it waits for the lock and is never refused.
#[test]
fn another_caches_lock_is_not_reentry() {
    run_model("reentry::another_caches_lock_is_not_reentry", || {
        let (first, second) = (cache_with(2, 1, &[1]), cache_with(2, 1, &[1]));
        let prober = {
            let (first, second) = (Arc::clone(&first), Arc::clone(&second));
            thread::spawn(move || {
                assert_eq!(first.try_get(&1), Ok(Some(Val(1))));
                let (got, probed) = get_probing(&second, 1, &first, 1);
                assert_eq!(got, Ok(Some(Val(1))));
                assert!(
                    matches!(probed, Ok(Some(Val(1))) | Err(BusyCause::LockHeld)),
                    "a call into another cache was refused as {probed:?}"
                );
            })
        };
        let other = thread::spawn(move || {
            let got = first.try_get(&1).map_err(|busy| busy.cause());
            assert_eq!(got, Ok(Some(Val(1))), "a thread that holds nothing was refused");
        });
        prober.join().unwrap();
        other.join().unwrap();
    });
}

/// Two caches, each thread holding one's lock (in a value's `Clone`) and asking for the other's:
/// the two-cache ABBA deadlock. A thread that holds a lock never waits for another, so each
/// probe either gets the value (the other lock was free at that moment) or is refused with
/// `LockHeld`; loom reports a deadlock if a holder ever waits.
#[test]
fn two_caches_crossed() {
    run_model("reentry::two_caches_crossed", || {
        let caches = [cache_with(2, 1, &[1]), cache_with(2, 1, &[1])];
        let threads: Vec<_> = (0..2)
            .map(|me| {
                let (mine, other) = (Arc::clone(&caches[me]), Arc::clone(&caches[1 - me]));
                thread::spawn(move || {
                    let (got, probed) = get_probing(&mine, 1, &other, 1);
                    assert_eq!(got, Ok(Some(Val(1))), "the outer call completes");
                    assert!(
                        matches!(probed, Ok(Some(Val(1))) | Err(BusyCause::LockHeld)),
                        "the crossed call came back {probed:?}"
                    );
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}
