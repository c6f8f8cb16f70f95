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
//! The answer to "does this thread hold a lock of this cache?" lives entirely in thread-local
//! state, so no other thread ever reads or writes it and it needs no atomics:
//!
//! * `INNERMOST`: the id of the cache whose shard lock this thread took last and still holds, or
//!   [`NONE`]. On the hot path it is `NONE`, and one thread-local load answers "no".
//! * `OUTER`: the caches of the locks this thread holds further out, innermost last. Only a
//!   thread whose user code, under one cache's lock, calls into another cache ever pushes here.
//!
//! A cache's id is any address that is unique among live caches and stable while the cache is
//! borrowed (the cache uses its shard array's). Locks nest strictly (a guard lives in one stack
//! frame of its thread), so each guard restores `INNERMOST` to what it found and pops `OUTER` if
//! it pushed.
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

use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering::Relaxed, sync_thread_local};
use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

/// `INNERMOST` of a thread that holds no shard lock. Never a cache's id (an address).
const NONE: usize = 0;

sync_thread_local! {
    /// The cache whose shard lock this thread took last and still holds, or `NONE`.
    static INNERMOST: Cell<usize> = Cell::new(NONE);
}

sync_thread_local! {
    /// The caches of the shard locks this thread holds further out than `INNERMOST`, innermost
    /// last. Empty unless one cache's user code, under its lock, called into another cache.
    static OUTER: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// Whether this thread holds any shard lock of any cache. One thread-local load.
#[inline]
pub(crate) fn holds_any() -> bool {
    !cfg!(shardlru_no_reentry_check) && INNERMOST.with(Cell::get) != NONE
}

/// Whether this thread holds a shard lock of the cache `cache`.
#[inline]
pub(crate) fn holds_lock_of(cache: usize) -> bool {
    if cfg!(shardlru_no_reentry_check) {
        return false;
    }
    match INNERMOST.with(Cell::get) {
        NONE => false,
        innermost => innermost == cache || held_further_out(cache),
    }
}

/// Whether `cache` is on `OUTER`. Only reached while this thread holds some shard lock, i.e.
/// from user code under a lock: kept out of line so the hot path stays small.
#[cold]
#[inline(never)]
fn held_further_out(cache: usize) -> bool {
    OUTER.with(|outer| outer.borrow().contains(&cache))
}

/// Pushes `outer` onto `OUTER`: a lock taken while another cache's lock is held.
#[cold]
#[inline(never)]
fn push_outer(outer: usize) {
    OUTER.with(|held| held.borrow_mut().push(outer));
}

/// Pops what [`push_outer`] pushed.
#[cold]
#[inline(never)]
fn pop_outer() {
    OUTER.with(|held| held.borrow_mut().pop());
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
        let outer = if cfg!(shardlru_no_reentry_check) { NONE } else { INNERMOST.with(Cell::get) };
        if outer != NONE && (outer == cache || held_further_out(cache)) {
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
            if outer != NONE {
                push_outer(outer);
            }
            INNERMOST.with(|innermost| innermost.set(cache));
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
    /// `INNERMOST` before this lock was taken, pushed onto `OUTER` if it was not `NONE`.
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
        INNERMOST.with(|innermost| innermost.set(self.outer));
        if self.outer != NONE {
            pop_outer();
        }
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
