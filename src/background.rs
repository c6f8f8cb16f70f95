//! Background delivery: threads that run the eviction callback so that the threads that write
//! never do.
//!
//! ```text
//!  writer                                        delivery thread (one of n)
//!  ──────                                        ──────────────────────────
//!  shard work, queue.push(evicted)               loop while running:
//!  running? ─ no ─▶ purge inline (purge.rs)        queue empty? ─ yes ─▶ park until a push
//!     │ yes                                        take a slot (else wait for one)
//!     ▼                                            deliver one batch, give the slot back
//!  a delivery thread parked? ─▶ wake one        on stop: flush, exit
//!  hold at the bound (purge.rs)
//! ```
//!
//! [`Cache::spawn_purge_threads`] sets `running` and starts the threads; each holds an
//! `Arc<Cache>`, which is what the callback's `&Cache` borrows from. While `running` is set,
//! a write that queued entries only wakes a parked thread; the purge at the end of each write
//! (`Purger::after_write`) is skipped. The delivery threads take slots like any purge, so
//! `max_pending_callbacks` bounds them too. What they do not change: the bound (a write that
//! finds [`max_queued`](crate::Builder::max_queued) entries queued delivers until fewer are,
//! which is the backstop for callbacks slower than the threads), an explicit
//! [`Cache::purge`] or [`Cache::flush`], and loads waiting for their key's write-back (which
//! wait, delivering nothing, while the threads run).
//!
//! # Invariants
//!
//! * **No lost wake-up.** An entry pushed while `running` is set is delivered by a delivery
//!   thread, or by the purge of the write that pushed it once it reads `running` clear: it is
//!   never left queued with every thread parked. See "Parking".
//! * **Stopping loses nothing.** Dropping [`PurgeThreads`] clears `running`, wakes and joins
//!   the threads (each flushes on its way out), and flushes: what was queued is delivered
//!   exactly once (the queue hands each entry to one `pop`), and writes from then on purge
//!   inline again. A callback that keeps inserting cannot hold the drop: a flush delivers what
//!   was queued when it began, plus a few. Dropped inside a callback, the handle joins nothing
//!   (a thread it joined might wait for that callback's slot): the threads flush and exit on
//!   their own.
//! * **The cache outlives its threads.** The threads hold the cache, so it is dropped (and its
//!   queue drained, `purge.rs`, "Drop") only once they have exited: a drop never races a
//!   delivery thread.
//!
//! # Parking
//!
//! A delivery thread parks when it finds the queue empty; a writer wakes one after its push.
//! Each side writes, fences, then reads what the other wrote, a store-buffering pattern:
//!
//! ```text
//!   writer                              delivery thread (holding `lock`)
//!   queue.push(entry)                   sleeping += 1
//!   fence(SeqCst)                       fence(SeqCst)
//!   sleeping > 0? wake one, under lock  queue empty (and running)? wait on `pushed`
//! ```
//!
//! One fence comes first in the single total order of `SeqCst` operations, and the thread of
//! the later one sees the other's write: either the delivery thread sees the entry and does not
//! park, or the writer sees it counted and notifies it. The notification is sent under `lock`,
//! which the delivery thread holds from its count until its wait begins, so it comes after the
//! wait began. The same fence of the writer pairs with `stop`'s: a writer that read `running`
//! set before a stop re-reads it after its fence, and either sees it clear (and purges inline)
//! or its push is seen by the flush that ends the stop. `running` is read `Relaxed` everywhere:
//! a stale "set" is caught by that re-read, and a stale "clear" only makes a writer purge
//! inline, as before the threads started. loom: `background::push_races_a_parking_thread`,
//! `background::stop_races_a_push`.

use crate::cache::Cache;
use crate::error::SpawnError;
use crate::lock;
use crate::purge::{self, Purger, Resume};
use crate::sync::{
    AtomicBool, AtomicUsize, Condvar, Mutex,
    Ordering::{Relaxed, SeqCst},
    fence,
    thread::{self, JoinHandle},
};
use ahash::RandomState;
use std::fmt;
use std::sync::Arc;

/// Whether delivery threads run, and where they park.
pub(crate) struct Background {
    running: AtomicBool,
    /// Delivery threads between counting themselves (under `lock`) and leaving `park`.
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    pushed: Condvar,
}

impl Background {
    pub(crate) fn new() -> Self {
        Self {
            running: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            pushed: Condvar::new(),
        }
    }

    /// Whether delivery threads run. Relaxed: see "Parking".
    #[inline]
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Relaxed)
    }

    /// Called by a write after its pushes, instead of its purge: whether delivery threads take
    /// what it queued (waking one if any is parked). `false`: the write purges inline.
    #[inline]
    pub(crate) fn takes_over<K, V, S>(&self, purger: &Purger<K, V, S>) -> bool {
        if !self.is_running() {
            return false;
        }
        if purger.is_queue_empty() {
            // Nothing of this thread's is queued (its own push would be seen).
            return true;
        }
        // SeqCst fence: pairs with `park`'s (the thread sees the push, or this sees it
        // counted) and with `stop`'s (this sees `running` clear, or the stop's flush sees the
        // push). Relaxed accesses around it: ordered by the fences.
        fence(SeqCst);
        if !self.is_running() {
            return false;
        }
        if self.sleeping.load(Relaxed) > 0 {
            let _lock = self.lock.lock();
            self.pushed.notify_one();
        }
        true
    }

    /// Parks the calling delivery thread until a push or a stop, unless `is_empty` says there
    /// is something to deliver.
    fn park(&self, is_empty: impl Fn() -> bool) {
        let guard = self.lock.lock();
        self.sleeping.fetch_add(1, Relaxed);
        // SeqCst fence: pairs with `takes_over`'s (see "Parking").
        fence(SeqCst);
        let guard = if is_empty() && self.is_running() { self.pushed.wait(guard) } else { guard };
        self.sleeping.fetch_sub(1, Relaxed);
        drop(guard);
    }

    /// Sets `running`, or returns `false` if it was set.
    fn start(&self) -> bool {
        // Relaxed: the delivery threads are spawned after this (the spawn orders it for them),
        // and a writer that reads `running` clear late purges inline, as before.
        self.running.compare_exchange(false, true, Relaxed, Relaxed).is_ok()
    }

    /// Clears `running` and wakes every parked thread.
    fn stop(&self) {
        {
            // Under `lock`: a thread parking checks `running` under it, so it sees the clear or
            // is waiting when the notification comes.
            let _lock = self.lock.lock();
            self.running.store(false, Relaxed);
        }
        self.pushed.notify_all();
        // SeqCst fence: pairs with the fence of `takes_over` (see "Parking"); the flush that
        // ends the stop reads the queue after it.
        fence(SeqCst);
    }
}

/// The delivery threads of one cache, started by [`Cache::spawn_purge_threads`]. While this
/// handle lives, writes only queue their evicted entries and these threads run the callback;
/// dropping it stops them, joins them and flushes the queue, and writes purge inline again.
///
/// The threads keep the cache alive (each holds an `Arc` of it): drop this handle to let the
/// cache go.
///
/// ```
/// use shardlru::Cache;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static WRITTEN_BACK: AtomicUsize = AtomicUsize::new(0);
/// let cache = Arc::new(
///     Cache::<u32, u32>::builder()
///         .capacity(100)
///         .on_evict(|_cache, _evicted| {
///             WRITTEN_BACK.fetch_add(1, Ordering::Relaxed); // a write-back, off the writers
///         })
///         .build()?,
/// );
/// let purge_threads = cache.spawn_purge_threads(2)?;
/// for key in 0..1_000 {
///     cache.insert(key, key); // evicts from the 101st on; never runs the callback
/// }
/// drop(purge_threads); // stops and joins the threads, delivering what is queued
/// assert_eq!(WRITTEN_BACK.load(Ordering::Relaxed), 900);
/// assert_eq!(cache.queued(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the handle stops the threads at once"]
pub struct PurgeThreads<K, V, S = RandomState> {
    cache: Arc<Cache<K, V, S>>,
    threads: Vec<JoinHandle<()>>,
}

impl<K, V, S> Cache<K, V, S>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: Send + Sync + 'static,
{
    /// Starts `threads` threads that deliver evicted entries to the callback, so that writes
    /// only queue them: background delivery. Dropping the returned handle stops them.
    ///
    /// The threads park while the queue is empty and take delivery slots like any purge, so at
    /// most [`max_pending_callbacks`](crate::Builder::max_pending_callbacks) callbacks run at
    /// once, theirs included. A write never runs the callback while they run, except where
    /// the backlog reaches [`max_queued`](crate::Builder::max_queued): there it delivers until
    /// the backlog is below the bound, as without them. A callback panic on a delivery thread
    /// is reported (to the [`on_callback_panic`](crate::Builder::on_callback_panic) handler, or
    /// stderr), even under [`resume_callback_panics`](crate::Builder::resume_callback_panics):
    /// there is no caller to resume it in.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoCallback`] for a cache built without [`on_evict`](crate::Builder::on_evict),
    /// [`SpawnError::ZeroThreads`], [`SpawnError::AlreadyRunning`] while another handle of this
    /// cache lives, and [`SpawnError::Spawn`] if the system cannot start a thread (those
    /// already started are stopped first).
    ///
    /// ```
    /// use shardlru::{Cache, SpawnError};
    /// use std::sync::Arc;
    ///
    /// let cache = Arc::new(Cache::<u32, u32>::builder().capacity(8).on_evict(|_, _| {}).build()?);
    /// let purge_threads = cache.spawn_purge_threads(1)?;
    /// assert!(matches!(cache.spawn_purge_threads(1), Err(SpawnError::AlreadyRunning)));
    /// drop(purge_threads);
    /// let _again = cache.spawn_purge_threads(1)?; // one handle at a time
    ///
    /// let plain = Arc::new(Cache::<u32, u32>::new(8));
    /// assert!(matches!(plain.spawn_purge_threads(1), Err(SpawnError::NoCallback)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_purge_threads(
        self: &Arc<Self>,
        threads: usize,
    ) -> Result<PurgeThreads<K, V, S>, SpawnError> {
        let purger = self.purger().ok_or(SpawnError::NoCallback)?;
        if threads == 0 {
            return Err(SpawnError::ZeroThreads);
        }
        if !purger.background.start() {
            return Err(SpawnError::AlreadyRunning);
        }
        // Dropped on an error: stops the threads already started.
        let mut handle = PurgeThreads { cache: Arc::clone(self), threads: Vec::new() };
        for index in 0..threads {
            let cache = Arc::clone(self);
            let spawned = thread::Builder::new()
                .name(format!("shardlru-purge-{index}"))
                .spawn(move || deliver_until_stopped(&cache));
            handle.threads.push(spawned.map_err(SpawnError::Spawn)?);
        }
        Ok(handle)
    }
}

/// A delivery thread's life: deliver while running, park when there is nothing to deliver,
/// flush on the way out.
fn deliver_until_stopped<K, V, S>(cache: &Cache<K, V, S>) {
    let purger = cache.purger().expect("spawned for a cache with a callback");
    let background = &purger.background;
    while background.is_running() {
        if purger.is_queue_empty() {
            background.park(|| purger.is_queue_empty());
        } else if !purger.purge_in_background(cache) {
            purger.wait_for_slot(|| background.is_running());
        }
    }
    // What a stop left queued (the stop may have come from a callback on this thread, whose
    // own flush could not run there).
    purger.flush(cache, Resume::Never);
}

impl<K, V, S> Drop for PurgeThreads<K, V, S> {
    /// Stops the threads, joins them and delivers what is queued.
    ///
    /// Dropped inside a callback (of any cache), or while its thread holds a shard lock (in a
    /// key's `Eq`), it joins none and delivers nothing: a thread it joined might wait for the
    /// slot that callback holds, or its callback for that lock. The threads then finish on
    /// their own, each flushing on its way out.
    fn drop(&mut self) {
        let purger = self.cache.purger().expect("spawned for a cache with a callback");
        purger.background.stop();
        purger.wake_slot_waiters();
        if lock::holds_any() || purge::inside_any_purge() {
            return;
        }
        for handle in self.threads.drain(..) {
            // A delivery thread catches the callback's panics: it has none to pass on.
            let _ = handle.join();
        }
        purger.flush(&self.cache, Resume::Never);
    }
}

impl<K, V, S> fmt::Debug for PurgeThreads<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurgeThreads").field("threads", &self.threads.len()).finish()
    }
}
