//! The shard lock: a mutex that knows which thread holds it, so that a re-entrant call from the
//! same thread is refused instead of deadlocking (guarantee 6), and that counts how often it was
//! found held (the contention statistic users tune the shard count by).
//!
//! # Re-entry detection
//!
//! User code runs under a shard lock only in a key's `Eq`/`Borrow` and a value's `Clone`.
//! If that code calls back into the same cache, blocking on any of its shard locks could deadlock
//! (on the lock this thread holds, or against another thread that holds a second shard and
//! waits for this one). So a thread that holds a lock of a cache may not take another lock of
//! that cache: the call is refused with `Busy` or a panic.
//!
//! Two pieces of state answer "does this thread hold a lock of this cache?":
//!
//! * `LOCKS_HELD`, a per-thread count of the shard locks (of any cache) this thread holds. On the
//!   hot path it is zero, and one thread-local load answers "no".
//! * `owner` on each lock: the token of the thread holding it, or `UNOWNED`. Only when
//!   `LOCKS_HELD` is not zero does the cache scan its locks' owners for this thread's token.
//!
//! The token is the address of this thread's `LOCKS_HELD` cell: unique among live threads, free to
//! compute, and never `UNOWNED` (zero).
//!
//! `owner` is written only by the thread that holds the lock: set right after acquiring it,
//! cleared right before releasing it. So a thread that reads its *own* token there holds the lock
//! (it wrote the token itself and has not cleared it yet), and a thread that does not hold the
//! lock can never read its own token: other threads only ever write theirs or `UNOWNED`. Only that
//! equality is ever decided, and a thread always sees its own latest writes, so `Relaxed` suffices
//! for every access to `owner`; the mutex orders everything else.
//!
//! Building with `RUSTFLAGS="--cfg shardlru_no_reentry_check"` compiles the detection out (no
//! owner, no per-thread count). It exists only to measure what the detection costs; a cache built
//! that way deadlocks on a re-entrant call instead of refusing it.
//!
//! # Contention counting
//!
//! [`ShardLock::lock`] tries the lock first and counts a failure in `contended` before blocking,
//! so the uncontended path costs exactly what a plain `lock` costs. `acquisitions` is bumped by the
//! holder (a plain load and store: only the holder writes it). `--cfg shardlru_no_contention_count`
//! compiles the counting out, only to measure what it costs.

use crate::sync::{
    AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering::Relaxed, sync_thread_local,
};
use std::cell::Cell;
use std::ops::{Deref, DerefMut};

/// `owner` of a lock that no thread holds.
const UNOWNED: usize = 0;

sync_thread_local! {
    /// How many shard locks, of any cache, this thread holds right now.
    static LOCKS_HELD: Cell<usize> = Cell::new(0);
}

/// This thread's token (see the module docs) and how many shard locks it holds.
#[inline]
fn this_thread() -> (usize, usize) {
    LOCKS_HELD.with(|held| (held as *const Cell<usize> as usize, held.get()))
}

/// Whether this thread holds any shard lock of any cache. One thread-local load: the hot-path
/// check before the owner scan.
#[inline]
pub(crate) fn holds_any() -> bool {
    !cfg!(shardlru_no_reentry_check) && LOCKS_HELD.with(|held| held.get() != 0)
}

/// A shard's mutex with its owner and contention counters. See the module docs.
pub(crate) struct ShardLock<T> {
    mutex: Mutex<T>,
    /// The token of the thread holding `mutex`, or `UNOWNED`. Written only by the holder.
    owner: AtomicUsize,
    /// How many times the lock was taken. Written only by the holder.
    acquisitions: AtomicU64,
    /// How many times a thread found the lock held and had to wait.
    contended: AtomicU64,
}

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            mutex: Mutex::new(value),
            owner: AtomicUsize::new(UNOWNED),
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
        }
    }

    /// Whether the calling thread holds this lock. Callers check [`holds_any`] first.
    pub(crate) fn is_held_by_this_thread(&self) -> bool {
        // Relaxed: only this thread ever writes its own token here (module docs).
        self.owner.load(Relaxed) == this_thread().0
    }

    /// Takes the lock, blocking if another thread holds it. The caller has made sure that this
    /// thread does not hold it already (the cache's re-entry check).
    #[inline]
    pub(crate) fn lock(&self) -> ShardGuard<'_, T> {
        let guard = if cfg!(shardlru_no_contention_count) {
            self.mutex.lock()
        } else {
            let guard = match self.mutex.try_lock() {
                Some(guard) => guard,
                None => {
                    // Relaxed: a statistic, written by every waiter, read by nobody that decides.
                    self.contended.fetch_add(1, Relaxed);
                    self.mutex.lock()
                }
            };
            // Relaxed load-and-store: only the holder writes it, and the mutex orders holders.
            self.acquisitions.store(self.acquisitions.load(Relaxed) + 1, Relaxed);
            guard
        };
        if !cfg!(shardlru_no_reentry_check) {
            let (token, held) = this_thread();
            // Relaxed: see "Re-entry detection" in the module docs.
            self.owner.store(token, Relaxed);
            LOCKS_HELD.with(|cell| cell.set(held + 1));
        }
        ShardGuard { guard, owner: &self.owner }
    }

    /// How many times the lock has been taken, and how many of those found it held.
    pub(crate) fn counts(&self) -> (u64, u64) {
        // Relaxed: statistics; a snapshot may lag other threads by a few operations.
        (self.acquisitions.load(Relaxed), self.contended.load(Relaxed))
    }
}

/// Holds a [`ShardLock`]; clears the owner and the thread's count before the mutex unlocks.
pub(crate) struct ShardGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a AtomicUsize,
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if cfg!(shardlru_no_reentry_check) {
            return;
        }
        // Runs before `self.guard` is dropped, so the owner is cleared while the lock is still
        // held: no other thread can have written its token yet. Relaxed: module docs.
        self.owner.store(UNOWNED, Relaxed);
        LOCKS_HELD.with(|held| held.set(held.get() - 1));
    }
}

impl<T> Deref for ShardGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for ShardGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(all(test, not(loom), not(shardlru_no_reentry_check), not(shardlru_no_contention_count)))]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_known_and_forgotten_on_release() {
        let lock = ShardLock::new(5);
        assert!(!holds_any());
        let guard = lock.lock();
        assert!(holds_any());
        assert!(lock.is_held_by_this_thread());
        std::thread::scope(|s| {
            s.spawn(|| assert!(!lock.is_held_by_this_thread()));
        });
        drop(guard);
        assert!(!holds_any());
        assert!(!lock.is_held_by_this_thread());
        assert_eq!(lock.counts(), (1, 0));
    }

    #[test]
    fn a_waiter_counts_contention() {
        let lock = ShardLock::new(0);
        let guard = lock.lock();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *lock.lock() += 1);
            while lock.counts().1 == 0 {
                std::thread::yield_now();
            }
            drop(guard);
            waiter.join().unwrap();
        });
        assert_eq!(lock.counts(), (2, 1));
        assert_eq!(*lock.lock(), 1);
    }
}
