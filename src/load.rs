//! Loads: how `get_or_insert_with` runs one loader per missing key, however many threads ask
//! for it, and never caches a value older than a write it raced.
//!
//! ```text
//!  caller              shard (write lock)                        no lock held
//!  ──────              ──────────────────                        ────────────
//!  get(key) miss ──▶  entry?   ── yes ─▶ Hit (touch, clone)
//!                     record?  ── yes ─▶ Wait ─────────────────▶ wait on the record's Load
//!                     neither  ───────▶ Start: record (key, Load) ▶ wait for the key's write-back,
//!                                                                   run the loader, then complete:
//!                     record still ours? insert; else Superseded ◀┘ publish the value, wake waiters
//! ```
//!
//! # Records
//!
//! A load in flight is a *record* in its key's shard, beside the entries: the key (a clone of
//! the caller's) and an `Arc<Load>` that its waiters hold. Records are found and changed under
//! the shard lock, so "is the key present, or being loaded, or neither?" has one answer per lock
//! hold, and of the threads that miss a key at once exactly one starts its load.
//!
//! Invariants (checked by `Shard::validate`):
//!
//! * At most one record per key, and never a record for a key the shard holds: every insert of
//!   a key (`insert`, `get_or_insert`, a load's completion) takes the key's record out in the
//!   lock hold that inserts it (an insert that must make room elsewhere may also take one out
//!   in an earlier hold, the key still absent).
//! * A record leaves its shard exactly once: taken by an insert or a `remove` of its key, or by
//!   `clear` (the load is *superseded*), by its own loader when it completes, fails, panics or
//!   is cancelled, or by the next caller of its key if its loader gave up without taking it
//!   out (a cancelled future dropped under a shard lock). Leaving the shard never ends the load
//!   itself; only its loader publishes an outcome, and every path out of a loader publishes
//!   one (the guard's `Drop`), before the record's key is dropped.
//!
//! # No stale loads
//!
//! A loaded value is what a backing store held when the load read it. Two races could put an
//! older value in the cache than one the user wrote:
//!
//! * **A write during the load.** A loader that read version 1 must not cache it over a
//!   version 2 inserted (or a removal made) while it ran, even one already evicted again. Such
//!   a write supersedes the record, and a superseded loader caches nothing: its caller and
//!   waiters get the resident value if there is one, else the loaded one (the load and the
//!   write were concurrent, so either order is a linearization).
//! * **A write-back not yet done.** An evicted entry may still be queued, or in its callback,
//!   when a load of its key begins: the store still holds the older version. So a load waits,
//!   before running, until no entry of its key is on its way to the callback, delivering queued
//!   entries itself meanwhile (`purge.rs`, "Loads wait for write-backs"). The entries on their
//!   way are recorded by their full hash, so a load waits for its own key's only. Without a
//!   callback nothing is delivered and nothing is waited for; from inside a
//!   callback of the same cache nothing is waited for either (the entries may need the
//!   callback's slot), so such a load may read an older version.
//!
//! # Waiting, failing, panicking, re-entering
//!
//! A [`Load`] ends in one of two outcomes, published under its mutex and announced to both
//! kinds of waiter (threads on the condition variable, tasks by their wakers): `Loaded(value)`,
//! which every waiter clones, or `Abandoned` (the loader failed, panicked or was cancelled),
//! after which each waiter starts over, so one of them loads next. A waiter that registers after
//! the outcome finds it at once: the outcome is published before the waiters are woken, under
//! the same mutex they check it under, so no wake-up is lost (loom: `load::waiter_races_the_load`).
//! Waiters clone the value under that mutex (user `Clone`, under no shard lock).
//!
//! Each thread keeps the loads whose loaders it is running on its record (`nesting.rs`). A
//! loader that asks for its own key would wait for itself: it is refused with a panic that
//! names the cause. Loads of other keys from inside a loader work (they nest).
//!
//! # Orderings
//!
//! Records live under the shard lock and outcomes under the load's mutex: no atomics here.

use crate::nesting;
use crate::shard::Record;
use crate::sync::{Condvar, Mutex};
use std::sync::Arc;
use std::task::Waker;
#[cfg(feature = "async")]
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

/// A load in flight: what its waiters wait on.
pub(crate) struct Load<V> {
    outcome: Mutex<Outcome<V>>,
    done: Condvar,
}

/// Where a load stands.
enum Outcome<V> {
    /// The loader is running; the tasks waiting for it.
    Loading(Vec<Waker>),
    /// The value every waiter gets.
    Loaded(V),
    /// The loader failed, panicked or was cancelled: each waiter starts over.
    Abandoned,
}

impl<V> Load<V> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { outcome: Mutex::new(Outcome::Loading(Vec::new())), done: Condvar::new() })
    }

    /// Publishes the outcome (`None`: abandoned) and wakes every waiter.
    fn publish(&self, value: Option<V>) {
        let wakers = {
            let mut outcome = self.outcome.lock();
            let next = match value {
                Some(value) => Outcome::Loaded(value),
                None => Outcome::Abandoned,
            };
            match std::mem::replace(&mut *outcome, next) {
                Outcome::Loading(wakers) => wakers,
                _ => unreachable!("a load publishes one outcome"),
            }
        };
        self.done.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<V> Load<V> {
    /// Whether the loader gave up (a record left behind is then taken over).
    pub(crate) fn is_abandoned(&self) -> bool {
        matches!(*self.outcome.lock(), Outcome::Abandoned)
    }
}

impl<V: Clone> Load<V> {
    /// Blocks until the loader publishes: the value, or `None` if the load was abandoned.
    pub(crate) fn wait(&self) -> Option<V> {
        let mut outcome = self.outcome.lock();
        loop {
            match &*outcome {
                Outcome::Loaded(value) => return Some(value.clone()),
                Outcome::Abandoned => return None,
                Outcome::Loading(_) => outcome = self.done.wait(outcome),
            }
        }
    }

    /// [`wait`](Self::wait) for a task: registers its waker while the load runs.
    #[cfg(feature = "async")]
    fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<Option<V>> {
        let mut outcome = self.outcome.lock();
        match &mut *outcome {
            Outcome::Loaded(value) => Poll::Ready(Some(value.clone())),
            Outcome::Abandoned => Poll::Ready(None),
            Outcome::Loading(wakers) => {
                if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// The id of a load on this thread's record: its address, unique while the load lives.
pub(crate) fn id<V>(load: &Arc<Load<V>>) -> usize {
    Arc::as_ptr(load) as usize
}

/// Whether this thread is running the loader of `load` (a loader asking for its own key).
pub(crate) fn runs_here<V>(load: &Arc<Load<V>>) -> bool {
    nesting::record(|record| {
        let innermost = record.loading.innermost();
        record.loading.contains(innermost, id(load))
    })
}

/// Runs `f` with `load` on this thread's record of running loaders. `None` if the record is
/// full (loads nested [`MAX_NESTING`](crate::MAX_NESTING) deep).
pub(crate) fn running<V, R>(load: &Arc<Load<V>>, f: impl FnOnce() -> R) -> Option<R> {
    let outer = nesting::record(|record| record.loading.innermost());
    if !nesting::record(|record| record.loading.has_room(outer)) {
        return None;
    }
    nesting::record(|record| record.loading.enter(outer, id(load)));
    // Leaves the record also when `f` panics.
    struct Leave(usize);
    impl Drop for Leave {
        fn drop(&mut self) {
            nesting::record(|record| record.loading.leave(self.0));
        }
    }
    let _leave = Leave(outer);
    Some(f())
}

/// The loader's side of a load: publishes `Abandoned` and takes the record out if it is dropped
/// before [`finish`](Self::finish) (a failed, panicking or cancelled loader). `forget` takes the
/// record out of its shard and hands it back, to be dropped once the waiters are woken: its key's
/// `Drop` may panic.
pub(crate) struct Loader<K, V, F: Fn(&Arc<Load<V>>) -> Option<Record<K, V>>> {
    load: Arc<Load<V>>,
    forget: F,
    finished: bool,
}

impl<K, V, F: Fn(&Arc<Load<V>>) -> Option<Record<K, V>>> Loader<K, V, F> {
    pub(crate) fn new(load: Arc<Load<V>>, forget: F) -> Self {
        Self { load, forget, finished: false }
    }

    pub(crate) fn load(&self) -> &Arc<Load<V>> {
        &self.load
    }

    /// Publishes the value the caller gets, which every waiter gets too. Called once the record
    /// has left its shard: a load that nobody else holds then has no waiter, and can have none
    /// (waiters take their handle from the record, under the shard lock), so nothing is
    /// published and the value is not cloned.
    pub(crate) fn finish(mut self, value: &V)
    where
        V: Clone,
    {
        self.finished = true;
        if Arc::strong_count(&self.load) > 1 {
            self.load.publish(Some(value.clone()));
        }
    }
}

impl<K, V, F: Fn(&Arc<Load<V>>) -> Option<Record<K, V>>> Drop for Loader<K, V, F> {
    fn drop(&mut self) {
        if !self.finished {
            // The record first, so that the waiters who start over find the key free; the
            // waiters woken before the record's key is dropped.
            let record = (self.forget)(&self.load);
            self.load.publish(None);
            drop(record);
        }
    }
}

#[cfg(feature = "async")]
/// A task's wait for another caller's load: `Some(value)`, or `None` if it was abandoned.
pub(crate) struct Wait<V>(pub(crate) Arc<Load<V>>);

#[cfg(feature = "async")]
impl<V: Clone> Future for Wait<V> {
    type Output = Option<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
        self.0.poll_wait(cx)
    }
}

#[cfg(feature = "async")]
/// A loader future, polled with its load on this thread's record of running loaders (so that
/// the loader asking for its own key is refused, as for a blocking loader).
pub(crate) struct Running<'a, V, F> {
    pub(crate) load: &'a Arc<Load<V>>,
    pub(crate) future: Pin<&'a mut F>,
}

#[cfg(feature = "async")]
impl<V, F: Future> Future for Running<'_, V, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let load = this.load;
        let future = this.future.as_mut();
        running(load, || future.poll(cx)).unwrap_or_else(|| too_deep())
    }
}

/// The panic of a load nested deeper than the record holds.
#[cold]
pub(crate) fn too_deep() -> ! {
    panic!(
        "shardlru: loads nested more than MAX_NESTING deep on one thread (a loader that loads \
         through a loader, and so on)"
    )
}
