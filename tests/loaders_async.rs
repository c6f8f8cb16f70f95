//! Async loaders (cargo feature `async`): `get_or_insert_with_async` and
//! `get_or_try_insert_with_async`, on the `futures` executors (no timer runtime: a loader
//! "sleeps" on a oneshot channel that a thread completes).
//!
//! * **Single flight without blocking.** 64 tasks on a two-thread pool miss one key: the
//!   loader runs once and all get its value. The waiters await; if they blocked their threads,
//!   the loader's task could never be polled again and the test would hang.
//! * **A failed load** goes to its caller only; one waiter loads next.
//! * **Blocking and async callers share a load**: threads in `get_or_insert_with` wait for an
//!   async loader's value.
//! * **Cancellation.** A dropped loading future hands the load to a waiter, which loads itself;
//!   a dropped waiter changes nothing.
//! * **Re-entry.** An async loader that awaits its own key panics, naming the cause.
//!
//! Everything that could hang runs under `support::watchdog`.

#![cfg(feature = "async")]

mod support;

use futures::channel::oneshot;
use futures::executor::{ThreadPool, block_on};
use futures::future::{join_all, pending};
use futures::task::{SpawnExt, noop_waker_ref};
use shardlru::Cache;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;
use support::{expect_panic, watchdog};

/// How long a loader sleeps so that the other callers arrive while it runs.
const LOAD_TIME: Duration = Duration::from_millis(50);

/// A future that completes after `duration`, woken by a thread: a timer without a runtime.
fn sleep(duration: Duration) -> impl Future<Output = ()> {
    let (done, finished) = oneshot::channel::<()>();
    thread::spawn(move || {
        thread::sleep(duration);
        let _ = done.send(());
    });
    async move {
        let _ = finished.await;
    }
}

/// A pool of two threads: fewer than the callers, so a caller that blocked its thread while
/// waiting would starve the loader.
fn small_pool() -> ThreadPool {
    ThreadPool::builder().pool_size(2).create().expect("a thread pool")
}

/// Runs the future `task(n)` for each of `tasks` tasks on a [`small_pool`], and returns their
/// outputs in task order.
fn run_tasks<T, F>(tasks: usize, task: impl Fn(usize) -> F) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let pool = small_pool();
    let handles: Vec<_> =
        (0..tasks).map(|n| pool.spawn_with_handle(task(n)).expect("spawn a task")).collect();
    block_on(join_all(handles))
}

/// 64 tasks on a two-thread pool miss one key at once: the loader runs exactly once, every
/// task gets its value, and it is cached.
#[test]
fn an_async_stampede_runs_the_loader_once() {
    watchdog("an_async_stampede_runs_the_loader_once", || {
        const CALLERS: usize = 64;
        let cache = Arc::new(Cache::<u64, String>::new(100));
        let loads = Arc::new(AtomicUsize::new(0));
        let got = run_tasks(CALLERS, |task| {
            let (cache, loads) = (cache.clone(), loads.clone());
            async move {
                let load = async {
                    loads.fetch_add(1, SeqCst);
                    sleep(LOAD_TIME).await;
                    format!("loaded by task {task}")
                };
                cache.get_or_insert_with_async(7, load).await
            }
        });
        assert_eq!(loads.load(SeqCst), 1, "the loader ran more than once");
        let resident = cache.peek(&7).expect("the loaded value is cached");
        assert!(resident.starts_with("loaded by task"), "{resident}");
        assert!(got.iter().all(|value| *value == resident), "tasks got {got:?}");
    });
}

/// The same stampede with `get_or_try_insert_with_async`, whose first load fails: exactly one
/// task gets the error, one waiter loads next (two loads in all), the others get that value,
/// and it is cached.
#[test]
fn a_failed_async_load_hands_the_stampede_to_a_waiter() {
    watchdog("a_failed_async_load_hands_the_stampede_to_a_waiter", || {
        const CALLERS: usize = 64;
        let cache = Arc::new(Cache::<u64, String>::new(100));
        let loads = Arc::new(AtomicUsize::new(0));
        let got: Vec<Result<String, &str>> = run_tasks(CALLERS, |task| {
            let (cache, loads) = (cache.clone(), loads.clone());
            async move {
                let load = async {
                    let nth = loads.fetch_add(1, SeqCst);
                    sleep(LOAD_TIME).await;
                    if nth == 0 { Err("store down") } else { Ok(format!("loaded by {task}")) }
                };
                cache.get_or_try_insert_with_async(7, load).await
            }
        });
        assert_eq!(loads.load(SeqCst), 2, "one failed load, then exactly one more");
        assert_eq!(got.iter().filter(|result| result.is_err()).count(), 1, "{got:?}");
        assert!(got.contains(&Err("store down")));
        let resident = cache.peek(&7).expect("the second load is cached");
        let values: Vec<&String> = got.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(values.len(), CALLERS - 1);
        assert!(values.iter().all(|value| **value == resident), "tasks got {got:?}");
    });
}

/// Threads calling the blocking `get_or_insert_with` wait for an async loader that is running:
/// its value is the only one loaded, and they all get it.
#[test]
fn blocking_callers_wait_for_an_async_load() {
    watchdog("blocking_callers_wait_for_an_async_load", || {
        let cache = Arc::new(Cache::<u32, String>::new(16));
        let loads = Arc::new(AtomicUsize::new(0));
        let (started, loading) = mpsc::channel();
        let loader = {
            let (cache, loads) = (cache.clone(), loads.clone());
            thread::spawn(move || {
                block_on(cache.get_or_insert_with_async(1, async move {
                    loads.fetch_add(1, SeqCst);
                    started.send(()).unwrap();
                    sleep(Duration::from_millis(100)).await;
                    "async".to_string()
                }))
            })
        };
        loading.recv().unwrap();
        let blocking: Vec<_> = (0..4)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                thread::spawn(move || {
                    cache.get_or_insert_with(1, || {
                        loads.fetch_add(1, SeqCst);
                        "blocking".to_string()
                    })
                })
            })
            .collect();
        assert_eq!(loader.join().unwrap(), "async");
        for caller in blocking {
            assert_eq!(caller.join().unwrap(), "async");
        }
        assert_eq!(loads.load(SeqCst), 1);
    });
}

/// A loading future polled once (so it runs the load) and then dropped hands the load to the
/// caller waiting for it, which runs its own loader, after the drop, and caches its value.
#[test]
fn a_cancelled_load_hands_the_load_to_a_waiter() {
    watchdog("a_cancelled_load_hands_the_load_to_a_waiter", || {
        let cache = Arc::new(Cache::<u32, String>::new(16));
        let cancelled = Arc::new(AtomicBool::new(false));
        let first_loads = Arc::new(AtomicUsize::new(0));
        let mut first = Box::pin(cache.get_or_insert_with_async(1, {
            let first_loads = first_loads.clone();
            async move {
                first_loads.fetch_add(1, SeqCst);
                pending::<String>().await
            }
        }));
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert_eq!(first_loads.load(SeqCst), 1, "the first caller runs the load");
        let waiter = {
            let (cache, cancelled) = (cache.clone(), cancelled.clone());
            thread::spawn(move || {
                block_on(cache.get_or_insert_with_async(1, async move {
                    format!("loaded after the cancellation: {}", cancelled.load(SeqCst))
                }))
            })
        };
        thread::sleep(Duration::from_millis(50)); // the waiter joins the load
        cancelled.store(true, SeqCst);
        drop(first);
        let got = waiter.join().unwrap();
        assert_eq!(got, "loaded after the cancellation: true", "the waiter did not wait");
        assert_eq!(cache.peek(&1).as_deref(), Some(got.as_str()));
    });
}

/// A waiter dropped while it waits changes nothing: the load completes, is cached, and a
/// second waiter gets its value.
#[test]
fn a_cancelled_waiter_changes_nothing() {
    watchdog("a_cancelled_waiter_changes_nothing", || {
        let cache = Arc::new(Cache::<u32, String>::new(16));
        let (started, loading) = mpsc::channel();
        let (proceed, go) = oneshot::channel::<()>();
        let loader = {
            let cache = cache.clone();
            thread::spawn(move || {
                block_on(cache.get_or_insert_with_async(1, async move {
                    started.send(()).unwrap();
                    go.await.unwrap();
                    "loaded".to_string()
                }))
            })
        };
        loading.recv().unwrap();
        {
            let mut cancelled_waiter =
                pin!(cache.get_or_insert_with_async(1, async { "cancelled".to_string() }));
            let mut cx = Context::from_waker(noop_waker_ref());
            assert!(cancelled_waiter.as_mut().poll(&mut cx).is_pending(), "it waits");
        }
        let mut waiter = Box::pin(cache.get_or_insert_with_async(1, async { "waiter".into() }));
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(waiter.as_mut().poll(&mut cx).is_pending(), "it waits");
        proceed.send(()).unwrap();
        assert_eq!(loader.join().unwrap(), "loaded");
        assert_eq!(waiter.as_mut().poll(&mut cx), Poll::Ready("loaded".to_string()));
        assert_eq!(cache.peek(&1).as_deref(), Some("loaded"));
    });
}

/// An async loader that awaits its own key panics with a message naming the cause instead of
/// waiting for itself; afterwards the key loads normally.
#[test]
fn an_async_loader_that_awaits_its_own_key_panics() {
    watchdog("an_async_loader_that_awaits_its_own_key_panics", || {
        let cache = Cache::<u32, u32>::new(16);
        let message = expect_panic("an async loader awaiting its own key", || {
            block_on(cache.get_or_insert_with_async(1, async {
                cache.get_or_insert_with_async(1, async { 10 }).await + 1
            }))
        });
        assert!(message.contains("itself"), "the panic does not say why: {message}");
        assert!(cache.is_empty());
        let loaded = block_on(cache.get_or_insert_with_async(1, async {
            cache.get_or_insert_with_async(2, async { 20 }).await + 1
        }));
        assert_eq!(loaded, 21, "another key loads from inside a loader");
        assert_eq!((cache.peek(&1), cache.peek(&2)), (Some(21), Some(20)));
    });
}

/// A load whose key's write-back is in its callback waits as a task, not as a thread: on a
/// one-thread executor, the task that loads and the task that lets the callback finish share
/// the thread. If the load blocked the thread until the write-back ended, the other task could
/// never run and the test would hang. The load then reads what the write-back stored. With the
/// callback on a purge thread, and inline on a thread of its own.
#[test]
fn an_async_load_awaits_the_write_back_of_its_key_without_blocking_its_thread() {
    for purge_threads in [true, false] {
        watchdog("an_async_load_awaits_the_write_back_of_its_key", move || {
            let store = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
            let (entered, in_callback) = mpsc::channel::<()>();
            let (release, gate) = mpsc::channel::<()>();
            let gate = std::sync::Mutex::new(gate);
            let cache = {
                let store = Arc::clone(&store);
                Arc::new(
                    Cache::<u32, u32>::builder()
                        .capacity(1)
                        .on_evict(move |_, evicted| {
                            if evicted.key == 1 {
                                entered.send(()).unwrap();
                                gate.lock().unwrap().recv().unwrap();
                            }
                            store.lock().unwrap().insert(evicted.key, evicted.value);
                        })
                        .build()
                        .unwrap(),
                )
            };
            let handle = purge_threads.then(|| cache.spawn_purge_threads(1).unwrap());
            cache.insert(1, 10);
            let evicting = {
                let cache = Arc::clone(&cache);
                // Evicts 1: its callback runs on the purge thread, or inline on this thread.
                thread::spawn(move || cache.insert(2, 20))
            };
            in_callback.recv().unwrap();

            let mut pool = futures::executor::LocalPool::new();
            let loaded = {
                let (cache, store) = (Arc::clone(&cache), Arc::clone(&store));
                pool.spawner()
                    .spawn_with_handle(async move {
                        let store = Arc::clone(&store);
                        cache
                            .get_or_insert_with_async(1, async move {
                                store.lock().unwrap().get(&1).copied().unwrap_or(0)
                            })
                            .await
                    })
                    .unwrap()
            };
            // Runs once the load's task is pending: the write-back goes on.
            pool.spawner().spawn(async move { release.send(()).unwrap() }).unwrap();
            assert_eq!(pool.run_until(loaded), 10, "the load read the store before its write-back");
            evicting.join().unwrap();
            drop(handle);
        });
    }
}
