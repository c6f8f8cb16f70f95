//! Guarantee 6 (re-entrant methods never deadlock, seeds `000` and `001`): user code that the
//! cache runs inside one of its methods (a key's `Hash` or `Eq`, a value's `Clone`) and that
//! calls back into the same cache.
//!
//! * From a key's **`Hash`**, which runs before any lock: the inner call simply works.
//! * From a key's **`Eq`** or a value's **`Clone`**, which run under a shard lock: the inner
//!   call is refused (`Err(Busy)` from `try_*`, a panic naming the `try_*` twin from the plain
//!   methods, 0 from `purge`) instead of deadlocking, while other threads are not refused.
//! * The refusal's message names only methods that exist.
//!
//! The keys and values that call back are `support::hooks`'s. Anything that could deadlock runs
//! under `support::watchdog`.

mod support;

use shardlru::{BusyCause, Cache};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use support::{
    HookCache, HookValue, clear_hook, fixed_hasher, on_eq, on_hash, panic_message, plain, set_hook,
    shard_of, watchdog,
};

/// Runs `call`, which must panic as a refused re-entrant call to `method`, and returns the
/// message.
fn refused_with_panic(method: &str, call: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(call))
        .expect_err(&format!("a re-entrant `{method}` must panic, not go through"));
    let message = panic_message(&*payload);
    assert!(message.contains("re-entrant call"), "`{method}` panicked with: {message}");
    assert!(message.contains(&format!("Cache::{method}")), "`{method}` panicked with: {message}");
    message
}

// ---------------------------------------------------------------------------------------------
// Re-entry from a key's Hash, which runs before any lock.
// ---------------------------------------------------------------------------------------------

/// Scenario 4: a key whose `Hash` calls `get`, `insert` (which evicts and runs the callback) or
/// `remove` on the same cache just works: the hash is computed before the shard lock is taken.
/// The outer call then sees what the inner calls did, and `Hash` runs once per call.
#[test]
fn a_hash_that_calls_into_the_same_cache_works() {
    watchdog("a_hash_that_calls_into_the_same_cache_works", || {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let cache = Arc::new(
            HookCache::builder()
                .hasher(fixed_hasher())
                .capacity(8)
                .shards(1)
                .resume_callback_panics()
                .on_evict({
                    let delivered = delivered.clone();
                    move |_, evicted| delivered.lock().unwrap().push(evicted.key.id)
                })
                .build()
                .unwrap(),
        );
        for id in 0..8 {
            cache.insert(plain(id), id);
        }
        let hook_runs = Rc::new(Cell::new(0));

        // get: the hook inserts the very key the outer call looks up (evicting key 0).
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.get(&plain(1)), Some(1));
                assert_eq!(cache.insert(plain(100), 1_000), None);
            }
        });
        assert_eq!(cache.get(&on_hash(100)), Some(1_000));
        assert_eq!(hook_runs.get(), 1, "the key is hashed once per call");
        assert_eq!(*delivered.lock().unwrap(), [0], "the inner insert evicted and purged");

        // insert: the hook inserts the key first, so the outer insert replaces it.
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.insert(plain(101), 1_010), None);
            }
        });
        assert_eq!(cache.insert(on_hash(101), 1_011), Some(1_010));
        assert_eq!(cache.peek(&plain(101)), Some(1_011));

        // remove: the hook inserts the key, and the outer remove takes it out again.
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(cache.insert(plain(102), 1_020), None);
                assert_eq!(cache.remove(&plain(1)), Some(1));
            }
        });
        assert_eq!(cache.remove(&on_hash(102)), Some(1_020));
        clear_hook();

        assert_eq!(hook_runs.get(), 3);
        assert!(!cache.contains_key(&plain(102)));
        assert!(!cache.contains_key(&plain(1)));
        assert!(cache.len() <= cache.capacity());
        let mut keys: Vec<u64> = cache.snapshot().into_iter().map(|(k, _)| k.id).collect();
        keys.sort_unstable();
        assert_eq!(keys, [4, 5, 6, 7, 100, 101]);
        // 100 evicted 0; 101 evicted 2 (1 had been touched by the first hook); 102 evicted 3.
        assert_eq!(*delivered.lock().unwrap(), [0, 2, 3]);
        // 100 and 101 were inserted with a hooked key and stay findable with a plain one.
        assert_eq!(cache.get(&plain(100)), Some(1_000));
    });
}

// ---------------------------------------------------------------------------------------------
// Re-entry from a key's Eq or a value's Clone, which run under the shard lock.
// ---------------------------------------------------------------------------------------------

/// Scenario 5: from a key's `Eq`, which runs under the shard lock, every `try_*` method of the
/// same cache returns `Err(Busy)` (and `try_insert` hands the key and the value back), every
/// plain method panics with a message that names the `try_*` method, and `purge()` returns 0
/// leaving the queue alone; `len`, `capacity`, `stats` and `queued` take no lock and
/// answer. The outer call then completes correctly, and its own trailing purge delivers what the
/// refused purge could not.
#[test]
fn an_eq_that_calls_into_the_same_cache_is_refused() {
    watchdog("an_eq_that_calls_into_the_same_cache_is_refused", || {
        const TRIGGER: u64 = 999;
        let delivered = Arc::new(AtomicUsize::new(0));
        let cache = Arc::new(
            HookCache::builder()
                .hasher(fixed_hasher())
                .capacity(8)
                .shards(1)
                .resume_callback_panics()
                .on_evict({
                    let delivered = delivered.clone();
                    move |cache, evicted| {
                        delivered.fetch_add(1, SeqCst);
                        // Strands entries in the queue: 100 evictions from one delivery are more
                        // than the purge running it may deliver.
                        if evicted.key.id == TRIGGER {
                            for id in 1_000..1_100 {
                                cache.insert(plain(id), id);
                            }
                        }
                    }
                })
                .build()
                .unwrap(),
        );
        cache.insert(plain(TRIGGER), TRIGGER);
        for id in 0..8 {
            cache.insert(plain(id), id); // the last one evicts TRIGGER
        }
        let stranded = cache.queued();
        assert!(stranded > 0, "entries are queued for the refused purge to leave alone");

        let hook_runs = Rc::new(Cell::new(0));
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                let present = plain(1_095);
                assert_eq!(
                    cache.try_get(&present).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                assert_eq!(
                    cache.try_peek(&present).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                assert_eq!(
                    cache.try_contains_key(&present).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                assert_eq!(
                    cache.try_remove(&present).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                let (key, value) = cache
                    .try_insert(plain(5_000), 5_000)
                    .expect_err("a re-entrant try_insert is refused")
                    .into_inner();
                assert_eq!((key.id, value), (5_000, 5_000), "the key and value come back");

                refused_with_panic("get", || {
                    cache.get(&present);
                });
                refused_with_panic("peek", || {
                    cache.peek(&present);
                });
                refused_with_panic("contains_key", || {
                    cache.contains_key(&present);
                });
                refused_with_panic("remove", || {
                    cache.remove(&present);
                });
                let message = refused_with_panic("insert", || {
                    cache.insert(plain(1), 1);
                });
                assert!(message.contains("Cache::try_insert"), "{message}");
                refused_with_panic("clear", || cache.clear());
                refused_with_panic("resize", || {
                    let _ = cache.resize(4);
                });
                refused_with_panic("snapshot", || {
                    let _ = cache.snapshot();
                });

                let queued = cache.queued();
                assert_eq!(cache.purge(), 0, "no callback runs while this thread holds a lock");
                assert_eq!(cache.queued(), queued);
                assert_eq!(cache.len(), 8);
                assert_eq!(cache.capacity(), 8);
                assert_eq!(cache.stats().queued, queued);
            }
        });
        let delivered_before = delivered.load(SeqCst);
        assert_eq!(cache.get(&on_eq(1_095)), Some(1_095), "the outer get completes correctly");
        assert_eq!(hook_runs.get(), 1);
        assert_eq!(delivered.load(SeqCst), delivered_before, "get does not purge");
        assert_eq!(cache.queued(), stranded, "the refused purge left the queue as it was");

        // The outer remove purges before it locks (it hands a value back), then holds the lock
        // while its Eq runs the same refusals.
        assert_eq!(cache.remove(&on_eq(1_096)), Some(1_096));
        clear_hook();
        assert_eq!(hook_runs.get(), 2);
        assert_eq!(cache.queued(), 0, "the outer call purged, with no lock held");
        assert_eq!(delivered.load(SeqCst), delivered_before + stranded);

        // Nothing refused left a trace: the cache is whole and usable.
        assert_eq!(cache.len(), 7);
        assert!(!cache.contains_key(&plain(5_000)));
        for id in (1_092..1_100).filter(|&id| id != 1_096) {
            assert_eq!(cache.get(&plain(id)), Some(id));
        }
        assert_eq!(cache.insert(plain(1), 1), None);
        assert_eq!(cache.len(), 8);
        assert_eq!(cache.stats().callback_panics, 0);
    });
}

/// Scenario 5: a plain method called from `Eq` and not caught there panics through the outer
/// call. The outer call unwinds, its shard lock is released (on this thread: `try_get` is not
/// `Busy`; on another: no deadlock), and the cache is consistent and usable: nothing lost,
/// nothing inserted by the refused call.
#[test]
fn a_refused_call_from_eq_unwinds_the_outer_call_and_leaves_the_cache_usable() {
    watchdog("a_refused_call_from_eq_unwinds", || {
        let cache = Arc::new(
            HookCache::builder().hasher(fixed_hasher()).capacity(256).shards(4).build().unwrap(),
        );
        for id in 0..32 {
            cache.insert(plain(id), id * 10);
        }
        let expected_len = 32;
        assert_eq!(cache.len(), expected_len, "no shard is full: nothing was evicted");
        set_hook({
            let cache = cache.clone();
            move || {
                cache.insert(plain(7_777), 1); // refused: panics through Eq and the outer call
            }
        });
        let outer_get = catch_unwind(AssertUnwindSafe(|| cache.get(&on_eq(5))));
        let outer_insert = catch_unwind(AssertUnwindSafe(|| cache.insert(on_eq(6), 666)));
        let outer_remove = catch_unwind(AssertUnwindSafe(|| cache.remove(&on_eq(7))));
        clear_hook();
        for (name, outcome) in [
            ("get", outer_get.map(drop)),
            ("insert", outer_insert.map(drop)),
            ("remove", outer_remove.map(drop)),
        ] {
            let payload = outcome.expect_err(name);
            let message = panic_message(&*payload);
            assert!(message.contains("re-entrant call to Cache::insert"), "{name}: {message}");
            assert!(message.contains("Cache::try_insert"), "{name}: {message}");
        }

        assert!(cache.try_get(&plain(5)).is_ok(), "this thread holds no lock any more");
        assert_eq!(cache.len(), expected_len);
        assert!(!cache.contains_key(&plain(7_777)));
        let snapshot = cache.snapshot();
        assert_eq!(snapshot.len(), expected_len);
        for (key, value) in snapshot {
            assert_eq!(value, key.id * 10, "key {} kept its value", key.id);
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                for id in 0..32 {
                    assert_eq!(cache.get(&plain(id)), Some(id * 10));
                }
                cache.insert(plain(100), 100);
                assert_eq!(cache.remove(&plain(100)), Some(100));
            });
        });
    });
}

/// Scenario 5: a value whose `Clone` (run under the shard lock by `get`, `peek` and `snapshot`)
/// calls into the same cache is refused the same way, and the outer call returns the right value.
#[test]
fn a_value_clone_that_calls_into_the_same_cache_is_refused() {
    watchdog("a_value_clone_that_calls_into_the_same_cache_is_refused", || {
        let cache = Arc::new(
            Cache::<u64, HookValue>::builder()
                .hasher(fixed_hasher())
                .capacity(8)
                .shards(2)
                .build()
                .unwrap(),
        );
        for id in 0..4 {
            cache.insert(id, HookValue(id * 10));
        }
        let hook_runs = Rc::new(Cell::new(0));
        set_hook({
            let (cache, runs) = (cache.clone(), hook_runs.clone());
            move || {
                runs.set(runs.get() + 1);
                assert_eq!(
                    cache.try_get(&3).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                assert_eq!(
                    cache.try_remove(&3).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                let (key, value) = cache.try_insert(9, HookValue(90)).unwrap_err().into_inner();
                assert_eq!((key, value), (9, HookValue(90)));
                refused_with_panic("get", || {
                    let _ = cache.get(&3);
                });
                refused_with_panic("insert", || {
                    let _ = cache.insert(9, HookValue(90));
                });
                assert_eq!(cache.purge(), 0);
            }
        });
        assert_eq!(cache.get(&1), Some(HookValue(10)));
        assert_eq!(cache.peek(&2), Some(HookValue(20)));
        let mut snapshot = cache.snapshot();
        clear_hook();
        assert_eq!(hook_runs.get(), 2 + 4, "one clone per get/peek, one per entry in snapshot");
        snapshot.sort_by_key(|(k, _)| *k);
        assert_eq!(snapshot, (0..4).map(|id| (id, HookValue(id * 10))).collect::<Vec<_>>());
        assert_eq!(cache.len(), 4);
        assert!(!cache.contains_key(&9));
    });
}

/// Scenario 5: the refusal is per thread. While this thread's `Eq` holds the lock of shard A,
/// another thread's call on shard B goes through, and another thread's call on shard A is not
/// refused either: it waits for the lock (seen through shard A's contention counter) and gets
/// its answer once the outer call releases it.
#[test]
fn other_threads_are_not_refused_while_eq_holds_a_lock() {
    watchdog("other_threads_are_not_refused_while_eq_holds_a_lock", || {
        let cache = Arc::new(
            HookCache::builder().hasher(fixed_hasher()).capacity(256).shards(4).build().unwrap(),
        );
        // Keys for shard A (the one the outer call locks) and for some other shard B.
        let outer = 0;
        let shard_a = shard_of(&cache, plain(outer), outer);
        let (mut same_shard, mut other_shard) = (None, None);
        for id in 1..64 {
            let shard = shard_of(&cache, plain(id), id);
            if shard == shard_a {
                same_shard.get_or_insert(id);
            } else {
                other_shard.get_or_insert(id);
            }
            if same_shard.is_some() && other_shard.is_some() {
                break;
            }
        }
        let (same_shard, other_shard) = (same_shard.unwrap(), other_shard.unwrap());
        assert!(cache.len() < cache.capacity() / 4, "no shard is full: nothing was evicted");

        let waiter = Arc::new(Mutex::new(None));
        set_hook({
            let (cache, waiter) = (cache.clone(), waiter.clone());
            move || {
                assert_eq!(
                    cache.try_get(&plain(other_shard)).map_err(|busy| busy.cause()),
                    Err(BusyCause::Reentered)
                );
                // Another thread, another shard: served at once.
                let answer = std::thread::scope(|s| {
                    s.spawn(|| cache.try_get(&plain(other_shard))).join().unwrap()
                });
                assert_eq!(answer, Ok(Some(other_shard)), "another thread is not refused");
                // Another thread, this shard: it blocks on the lock this thread holds.
                let contended = cache.shard_stats()[shard_a].lock_contended;
                let handle = std::thread::spawn({
                    let cache = cache.clone();
                    move || cache.try_get(&plain(same_shard))
                });
                while cache.shard_stats()[shard_a].lock_contended == contended {
                    assert!(!handle.is_finished(), "the other thread did not wait for the lock");
                    std::thread::yield_now();
                }
                *waiter.lock().unwrap() = Some(handle);
            }
        });
        assert_eq!(cache.get(&on_eq(outer)), Some(outer));
        clear_hook();
        let handle = waiter.lock().unwrap().take().expect("the hook ran");
        assert_eq!(handle.join().unwrap(), Ok(Some(same_shard)), "served once the lock is free");
    });
}

// ---------------------------------------------------------------------------------------------
// The wording of the refusal.
// ---------------------------------------------------------------------------------------------

/// Scenario 5, the wording of the refusal: the panic of a plain method tells the user which
/// `try_*` method returns `Err(Busy)` instead. `clear`, `resize` and `snapshot` have no `try_*`
/// twin, so their panics must name none (an earlier version pointed to `Cache::try_clear`,
/// `Cache::try_resize` and `Cache::try_snapshot`, which do not exist).
#[test]
fn the_refusal_of_clear_resize_and_snapshot_names_no_missing_method() {
    watchdog("the_refusal_of_clear_resize_and_snapshot_names_no_missing_method", || {
        let cache = Arc::new(
            HookCache::builder().hasher(fixed_hasher()).capacity(8).shards(1).build().unwrap(),
        );
        cache.insert(plain(1), 1);
        let messages = Rc::new(RefCell::new(Vec::new()));
        set_hook({
            let (cache, messages) = (cache.clone(), messages.clone());
            move || {
                let mut messages = messages.borrow_mut();
                messages.push(refused_with_panic("clear", || cache.clear()));
                messages.push(refused_with_panic("resize", || {
                    let _ = cache.resize(4);
                }));
                messages.push(refused_with_panic("snapshot", || {
                    let _ = cache.snapshot();
                }));
            }
        });
        assert_eq!(cache.get(&on_eq(1)), Some(1));
        clear_hook();
        let messages = messages.borrow();
        assert_eq!(messages.len(), 3);
        for message in messages.iter() {
            for missing in ["try_clear", "try_resize", "try_snapshot"] {
                assert!(
                    !message.contains(missing),
                    "names a method that does not exist: {message}"
                );
            }
        }
    });
}
