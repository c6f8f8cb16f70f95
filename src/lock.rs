//! The shard lock: a mutex that refuses a re-entrant acquisition by the same thread instead of
//! deadlocking (guarantee 6), and that counts how often it was found held (the contention
//! statistic users tune the shard count by).
//!
//! # Re-entry detection
//!
//! User code runs under a shard lock only in a key's `Eq`/`Borrow` and a value's `Clone`. If
//! that code calls back into the same cache, blocking on any of its shard locks could deadlock
//! (on the lock this thread holds, or against another thread that holds a second shard and waits
//! for this one). So a thread that holds a lock of a cache may not take another lock of that
//! cache: [`ShardLock::lock`] refuses, and the cache turns that into `Busy` or a panic.
//!
//! The answer to "does this thread hold a lock of this cache?" is the thread's record of held
//! locks by cache ([`Nesting`], `nesting.rs`): on the hot path it holds nothing, and one
//! thread-local load answers "no". A cache's id is any address that is unique among live caches
//! and stable while the cache is borrowed (the cache uses its shard array's).
//!
//! Building with `RUSTFLAGS="--cfg shardlru_no_reentry_check"` compiles the detection out. It
//! exists only to measure what the detection costs; a cache built that way deadlocks on a
//! re-entrant call instead of refusing it.
//!
//! # Contention counting
//!
//! [`ShardLock::lock`] tries the lock first and counts a failure in `contended` before blocking,
//! so the uncontended path costs exactly what a plain `lock` costs. `acquisitions` is bumped by the
//! holder (a plain load and store: only the holder writes it). `--cfg shardlru_no_contention_count`
//! compiles the counting out, only to measure what it costs.

use crate::nesting::{NONE, Nesting};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering::Relaxed, sync_thread_local};
use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

sync_thread_local! {
    /// The cache whose shard lock this thread took last and still holds, or `NONE`.
    static INNERMOST: Cell<usize> = Cell::new(NONE);
}

sync_thread_local! {
    /// The caches of the shard locks this thread holds further out than `INNERMOST`.
    static OUTER: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// This thread's record of the shard locks it holds, by cache.
const HELD: Nesting = Nesting { innermost: &INNERMOST, outer: &OUTER };

/// Whether this thread holds any shard lock of any cache. One thread-local load.
#[inline]
pub(crate) fn holds_any() -> bool {
    !cfg!(shardlru_no_reentry_check) && HELD.innermost() != NONE
}

/// Whether this thread holds a shard lock of the cache `cache`.
#[inline]
pub(crate) fn holds_lock_of(cache: usize) -> bool {
    !cfg!(shardlru_no_reentry_check) && HELD.contains(HELD.innermost(), cache)
}

/// A shard's mutex with its contention counters. See the module docs.
pub(crate) struct ShardLock<T> {
    mutex: Mutex<T>,
    /// How many times the lock was taken. Written only by the holder.
    acquisitions: AtomicU64,
    /// How many times a thread found the lock held and had to wait.
    contended: AtomicU64,
}

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            mutex: Mutex::new(value),
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
        }
    }

    /// Takes the lock for the cache `cache`, blocking if another thread holds it, or returns
    /// `None` at once if this thread already holds a lock of that cache (waiting would deadlock).
    #[inline(always)]
    pub(crate) fn lock(&self, cache: usize) -> Option<ShardGuard<'_, T>> {
        let outer = if cfg!(shardlru_no_reentry_check) { NONE } else { HELD.innermost() };
        if HELD.contains(outer, cache) {
            return None;
        }
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
            HELD.enter(outer, cache);
        }
        Some(ShardGuard { guard, outer })
    }

    /// How many times the lock has been taken, and how many of those found it held.
    pub(crate) fn counts(&self) -> (u64, u64) {
        // Relaxed: statistics; a snapshot may lag other threads by a few operations.
        (self.acquisitions.load(Relaxed), self.contended.load(Relaxed))
    }
}

/// Holds a [`ShardLock`]; gives this thread's record back to what it was before the lock.
pub(crate) struct ShardGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    /// The innermost cache on this thread's record before this lock was taken.
    outer: usize,
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if cfg!(shardlru_no_reentry_check) {
            return;
        }
        // Runs before `self.guard` unlocks; the record is this thread's alone, so the order
        // against the unlock does not matter to other threads.
        HELD.leave(self.outer);
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

    const CACHE_A: usize = 0x1000;
    const CACHE_B: usize = 0x2000;

    #[test]
    fn a_lock_of_the_same_cache_is_refused_and_forgotten_on_release() {
        let (first, second) = (ShardLock::new(1), ShardLock::new(2));
        assert!(!holds_any());
        let guard = first.lock(CACHE_A).expect("nothing held yet");
        assert!(holds_any() && holds_lock_of(CACHE_A) && !holds_lock_of(CACHE_B));
        assert!(second.lock(CACHE_A).is_none(), "another shard of the same cache");
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(!holds_lock_of(CACHE_A), "another thread holds nothing");
                assert_eq!(*second.lock(CACHE_A).expect("another thread is not refused"), 2);
            });
        });
        drop(guard);
        assert!(!holds_any() && !holds_lock_of(CACHE_A));
        assert!(second.lock(CACHE_A).is_some());
        assert_eq!(first.counts(), (1, 0));
    }

    #[test]
    fn nested_caches_are_remembered_and_unwound() {
        let (a, b, a2) = (ShardLock::new(()), ShardLock::new(()), ShardLock::new(()));
        let outer = a.lock(CACHE_A).unwrap();
        let inner = b.lock(CACHE_B).expect("another cache is not re-entry");
        assert!(holds_lock_of(CACHE_A) && holds_lock_of(CACHE_B));
        assert!(a2.lock(CACHE_A).is_none(), "A is still held further out");
        drop(inner);
        assert!(holds_lock_of(CACHE_A) && !holds_lock_of(CACHE_B));
        drop(outer);
        assert!(!holds_any());
        OUTER.with(|held| assert!(held.borrow().is_empty()));
        assert_eq!(HELD.innermost(), NONE);
    }

    #[test]
    fn a_waiter_counts_contention() {
        let lock = ShardLock::new(0);
        let guard = lock.lock(CACHE_A).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *lock.lock(CACHE_A).unwrap() += 1);
            while lock.counts().1 == 0 {
                std::thread::yield_now();
            }
            drop(guard);
            waiter.join().unwrap();
        });
        assert_eq!(lock.counts(), (2, 1));
        assert_eq!(*lock.lock(CACHE_A).unwrap(), 1);
    }
}
