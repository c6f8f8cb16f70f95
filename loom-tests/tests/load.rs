//! Loads (load.rs): one loader per missing key, its waiters woken whatever the interleaving, a
//! failed loader's waiters taking the load over, and a load that never reads the store before
//! the write-back of its key's evicted entry (purge.rs, "Loads wait for write-backs").
#![cfg(loom)]

use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use loom::thread;
use loom_tests::{Arc, TestCache, builder, run_model};
use std::panic::{self, AssertUnwindSafe};

/// Two threads ask for one missing key: one loads, the other waits for its value, arriving
/// before the load is recorded, while it runs, or after it completed. The loader runs once and
/// both get its value: no lost wake-up, no second load.
#[test]
fn waiter_races_the_load() {
    run_model("load::waiter_races_the_load", || {
        let cache = Arc::new(builder::<u32>(4, 1).build().unwrap());
        let loads = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
                thread::spawn(move || {
                    cache.get_or_insert_with(7, || {
                        loads.fetch_add(1, Relaxed);
                        70
                    })
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 70);
        }
        assert_eq!(loads.load(Relaxed), 1, "the key was loaded twice");
        assert_eq!(cache.peek(&7), Some(70));
        cache.validate();
    });
}

/// The loader panics while another thread asks for the same key: the other thread, waiting or
/// not yet arrived, loads the key itself. Nothing stays stuck, and the key ends up cached with
/// the value of the load that succeeded.
#[test]
fn loader_panic_with_one_waiter() {
    quiet_store_down();
    run_model("load::loader_panic_with_one_waiter", || {
        let cache = Arc::new(builder::<u32>(4, 1).build().unwrap());
        let panicking = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let loaded = panic::catch_unwind(AssertUnwindSafe(|| {
                    cache.get_or_insert_with(7, || panic!("{STORE_DOWN}"))
                }));
                // A thread that found the other's value loaded never ran its loader.
                loaded.ok()
            })
        };
        let waiting = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.get_or_insert_with(7, || 71))
        };
        let first = panicking.join().unwrap();
        assert_eq!(waiting.join().unwrap(), 71);
        assert!(matches!(first, None | Some(71)), "{first:?}");
        assert_eq!(cache.peek(&7), Some(71));
        cache.validate();
    });
}

/// The panic message of the failing loader.
const STORE_DOWN: &str = "the store is down";

/// Keeps the expected loader panic, once per execution, off stderr; every other panic is
/// printed as usual.
fn quiet_store_down() {
    let print = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<String>().map(String::as_str) != Some(STORE_DOWN) {
            print(info);
        }
    }));
}

/// The set-up of the two models below: a one-entry cache holding key 0 at version 2, dirty,
/// whose callback writes key 0 back to the store, which holds version 1.
fn dirty_key_cache() -> (Arc<TestCache>, Arc<AtomicU32>) {
    let store = Arc::new(AtomicU32::new(1));
    let cache = {
        let store = Arc::clone(&store);
        Arc::new(
            builder::<u32>(1, 1)
                .on_evict(move |_cache, evicted| {
                    if evicted.key == 0 {
                        store.store(evicted.value, Relaxed);
                    }
                })
                .build()
                .unwrap(),
        )
    };
    cache.insert(0, 2);
    (cache, store)
}

/// Key 0 holds version 2, dirty; the store holds version 1. One thread inserts key 1, which
/// evicts key 0, whose callback writes version 2 back. The other loads key 0 from the store
/// through `get_or_insert_with`. Whatever the interleaving, it gets version 2: from the cache
/// before the eviction, or from the store after the write-back, never version 1 from the store
/// between the two. The store is a `Relaxed` atomic: what orders the write-back before the load
/// is the in-delivery count's `Release`/`Acquire`.
#[test]
fn load_races_the_callback_of_its_key() {
    run_model("load::load_races_the_callback_of_its_key", || {
        let (cache, store) = dirty_key_cache();
        let evicting = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.insert(1, 10);
            })
        };
        let loading = {
            let (cache, store) = (Arc::clone(&cache), Arc::clone(&store));
            thread::spawn(move || cache.get_or_insert_with(0, || store.load(Relaxed)))
        };
        evicting.join().unwrap();
        assert_eq!(loading.join().unwrap(), 2, "the load read the store before the write-back");
        assert_eq!(store.load(Relaxed), 2);
        assert_eq!(cache.queued(), 0);
        cache.validate();
    });
}

/// [`load_races_the_callback_of_its_key`] with an async load, polled by loom's `block_on`: its
/// task waits for the write-back with its waker registered in the stripe (purge.rs,
/// `poll_delivery`), and its thread parks in `block_on` until the waker is woken. A wake-up
/// lost between the registration and the callback's end is a deadlock loom reports.
#[test]
fn async_load_races_the_callback_of_its_key() {
    run_model("load::async_load_races_the_callback_of_its_key", || {
        let (cache, store) = dirty_key_cache();
        let evicting = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.insert(1, 10);
            })
        };
        let loading = {
            let (cache, store) = (Arc::clone(&cache), Arc::clone(&store));
            thread::spawn(move || {
                loom::future::block_on(
                    cache.get_or_insert_with_async(0, async move { store.load(Relaxed) }),
                )
            })
        };
        evicting.join().unwrap();
        assert_eq!(loading.join().unwrap(), 2, "the load read the store before the write-back");
        assert_eq!(store.load(Relaxed), 2);
        assert_eq!(cache.queued(), 0);
        cache.validate();
    });
}

/// The stripe `in_delivery` lists `key`'s hash in; mirrors purge.rs `InDelivery::stripe` with
/// loom's two stripes.
fn delivery_stripe(key: u32) -> u64 {
    (loom_tests::hasher().hash_one(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) & 1
}

/// Two entries of one stripe on their way at once, so that one takes the stripe's only slot
/// under loom and the other its overflow list: `clear` hands both to a callback that writes
/// them back, while another thread loads one of them. The load gets the written-back version
/// whichever of the two places its hash was listed in.
#[test]
fn load_races_a_clear_through_the_overflow() {
    let other = (1..).find(|&key| delivery_stripe(key) == delivery_stripe(0)).unwrap();
    run_model("load::load_races_a_clear_through_the_overflow", move || {
        let store = Arc::new(AtomicU32::new(1));
        let cache = {
            let store = Arc::clone(&store);
            Arc::new(
                builder::<u32>(2, 1)
                    .on_evict(move |_cache, evicted| {
                        if evicted.key == 0 {
                            store.store(evicted.value, Relaxed);
                        }
                    })
                    .build()
                    .unwrap(),
            )
        };
        cache.insert(other, 20);
        cache.insert(0, 2);
        let clearing = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.clear())
        };
        let loading = {
            let (cache, store) = (Arc::clone(&cache), Arc::clone(&store));
            thread::spawn(move || cache.get_or_insert_with(0, || store.load(Relaxed)))
        };
        clearing.join().unwrap();
        assert_eq!(loading.join().unwrap(), 2, "the load read the store before the write-back");
        assert_eq!(cache.queued(), 0);
        cache.validate();
    });
}
