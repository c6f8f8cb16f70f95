//! The shard lock: a mutex that a thread already holding a shard lock never waits for (guarantee
//! 6), and that counts how often it was found held (the contention statistic users tune the
//! shard count by).
//!
//! # Never wait while holding a lock
//!
//! User code runs under a shard lock only in a key's `Eq`/`Borrow` and a value's `Clone`. That
//! code may call into any cache. If it waited for a lock there, it could deadlock: on a lock of
//! the same cache that this thread holds, against another thread that holds a second shard of
//! the same cache and waits for this one, or against another thread that holds a lock of the
//! second cache and waits, inside that cache's `Eq` or `Clone`, for this one (two caches, ABBA).
//! So the rule is: **a thread that holds any shard lock never blocks on another**.
//! [`ShardLock::lock`] takes a lock in one of two ways, decided by the thread's record of held
//! locks (`nesting.rs`):
//!
//! * holding nothing (every call from outside user code): wait for the lock as usual;
//! * holding a lock already: refuse a lock of a cache on the record ([`BusyCause::Reentered`]),
//!   and otherwise only *try* the lock, refusing if another thread holds it
//!   ([`BusyCause::LockHeld`]) or if the record is full ([`BusyCause::TooDeep`]).
//!
//! No thread in the second state ever waits, so no cycle of waiting threads can form: every
//! waiter holds nothing, and a thread that holds nothing is in no cycle. The loom model
//! `reentry::two_caches_crossed` checks the two-cache case. The cache turns a refusal into
//! `Err(Busy)` from `try_*` methods or a panic naming the cause.
//!
//! On the hot path the record holds nothing and one thread-local load answers so. A cache's id
//! is any address unique among live caches and stable while the cache is borrowed (the cache
//! uses its shard array's).
//!
//! # Contention counting
//!
//! [`ShardLock::lock`] tries the lock first and counts a failure in `contended` before blocking,
//! so the uncontended path costs what a plain `lock` costs. A refused try counts as contended
//! too. `acquisitions` is bumped by the holder (a plain load and store: only the holder writes
//! it).
//!
//! # Release
//!
//! A guard releases the mutex first and then leaves the record; when that leaves the record
//! empty (the thread's outermost lock), it runs the cache drops put off while the lock was held
//! (`nesting.rs`), now that no lock is held.

use crate::error::BusyCause;
use crate::nesting::{self, NONE};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering::Relaxed};
use std::ops::{Deref, DerefMut};

/// Whether this thread holds any shard lock of any cache. One thread-local load.
#[inline]
pub(crate) fn holds_any() -> bool {
    nesting::record(|record| record.held.innermost()) != NONE
}

/// Whether this thread holds a shard lock of the cache `cache`.
#[inline]
pub(crate) fn holds_lock_of(cache: usize) -> bool {
    nesting::record(|record| record.held.contains(record.held.innermost(), cache))
}

/// A shard's mutex with its contention counters. See the module docs.
pub(crate) struct ShardLock<T> {
    mutex: Mutex<T>,
    /// How many times the lock was taken. Written only by the holder.
    acquisitions: AtomicU64,
    /// How many times a thread found the lock held (and waited, or was refused).
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

    /// Takes the lock for the cache `cache`: waits for it if this thread holds no shard lock,
    /// and otherwise only tries it (see the module docs).
    #[inline(always)]
    pub(crate) fn lock(&self, cache: usize) -> Result<ShardGuard<'_, T>, BusyCause> {
        let outer = nesting::record(|record| record.held.innermost());
        if outer != NONE {
            return self.lock_nested(outer, cache);
        }
        let guard = match self.mutex.try_lock() {
            Some(guard) => guard,
            None => {
                // Relaxed: a statistic, written by every waiter, read by nobody that decides.
                self.contended.fetch_add(1, Relaxed);
                self.mutex.lock()
            }
        };
        Ok(self.hold(guard, outer, cache))
    }

    /// The rule for a thread that holds a lock already (`outer` is its innermost one): refuse
    /// a cache on the record, or a full record, and otherwise try the lock once.
    #[cold]
    #[inline(never)]
    fn lock_nested(&self, outer: usize, cache: usize) -> Result<ShardGuard<'_, T>, BusyCause> {
        let refusal = nesting::record(|record| {
            if record.held.contains(outer, cache) {
                Some(BusyCause::Reentered)
            } else if !record.held.has_room(outer) {
                Some(BusyCause::TooDeep)
            } else {
                None
            }
        });
        if let Some(cause) = refusal {
            return Err(cause);
        }
        match self.mutex.try_lock() {
            Some(guard) => Ok(self.hold(guard, outer, cache)),
            None => {
                // Relaxed: a statistic, as in `lock`.
                self.contended.fetch_add(1, Relaxed);
                Err(BusyCause::LockHeld)
            }
        }
    }

    /// Counts the acquisition and enters the record: the lock is this thread's now.
    #[inline(always)]
    fn hold<'a>(
        &'a self,
        guard: MutexGuard<'a, T>,
        outer: usize,
        cache: usize,
    ) -> ShardGuard<'a, T> {
        // Relaxed load-and-store: only the holder writes it, and the mutex orders holders.
        self.acquisitions.store(self.acquisitions.load(Relaxed) + 1, Relaxed);
        nesting::record(|record| record.held.enter(outer, cache));
        ShardGuard { guard, leave: Leave { outer } }
    }

    /// How many times the lock has been taken, and how many times it was found held.
    pub(crate) fn counts(&self) -> (u64, u64) {
        // Relaxed: statistics; a snapshot may lag other threads by a few operations.
        (self.acquisitions.load(Relaxed), self.contended.load(Relaxed))
    }
}

/// Holds a [`ShardLock`]. Dropping it unlocks, then gives this thread's record back to what it
/// was before the lock (fields drop in declaration order).
pub(crate) struct ShardGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    leave: Leave,
}

impl<T> ShardGuard<'_, T> {
    /// Whether this thread held another shard lock when it took this one.
    #[inline]
    pub(crate) fn is_nested(&self) -> bool {
        self.leave.outer != NONE
    }
}

/// Leaves the record when a [`ShardGuard`] is dropped, after its mutex is unlocked.
struct Leave {
    /// The innermost cache on this thread's record before the lock was taken.
    outer: usize,
}

impl Drop for Leave {
    #[inline]
    fn drop(&mut self) {
        // The mutex is already unlocked; the record is this thread's alone, so the order
        // against the unlock does not matter to other threads.
        nesting::record(|record| {
            record.held.leave(self.outer);
            if self.outer == NONE {
                // The outermost lock is released: no lock is held from here on.
                record.run_put_off_drops();
            }
        });
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

#[cfg(all(test, not(loom)))]
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
        assert!(matches!(second.lock(CACHE_A), Err(BusyCause::Reentered)));
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(!holds_lock_of(CACHE_A), "another thread holds nothing");
                assert_eq!(*second.lock(CACHE_A).expect("another thread is not refused"), 2);
            });
        });
        drop(guard);
        assert!(!holds_any() && !holds_lock_of(CACHE_A));
        assert!(second.lock(CACHE_A).is_ok());
        assert_eq!(first.counts(), (1, 0));
    }

    #[test]
    fn nested_caches_are_remembered_and_unwound() {
        let (a, b, a2) = (ShardLock::new(()), ShardLock::new(()), ShardLock::new(()));
        let outer = a.lock(CACHE_A).unwrap();
        let inner = b.lock(CACHE_B).expect("another cache is not re-entry");
        assert!(inner.is_nested() && !outer.is_nested());
        assert!(holds_lock_of(CACHE_A) && holds_lock_of(CACHE_B));
        assert!(matches!(a2.lock(CACHE_A), Err(BusyCause::Reentered)), "A is further out");
        drop(inner);
        assert!(holds_lock_of(CACHE_A) && !holds_lock_of(CACHE_B));
        drop(outer);
        assert!(!holds_any());
    }

    #[test]
    fn holding_a_lock_a_thread_does_not_wait_for_another() {
        let (mine, theirs) = (ShardLock::new(()), ShardLock::new(()));
        let (taken, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                let _held = theirs.lock(CACHE_B).unwrap();
                taken.wait();
                release.wait();
            });
            taken.wait();
            let _outer = mine.lock(CACHE_A).unwrap();
            assert!(matches!(theirs.lock(CACHE_B), Err(BusyCause::LockHeld)), "it would wait");
            assert_eq!(theirs.counts(), (1, 1), "a refused try counts as contended");
            release.wait();
        });
    }

    #[test]
    fn the_record_refuses_a_scope_beyond_its_depth() {
        let locks: Vec<_> = (0..=nesting::MAX_NESTING).map(|_| ShardLock::new(())).collect();
        let mut guards = Vec::new();
        for (i, lock) in locks[..nesting::MAX_NESTING].iter().enumerate() {
            guards.push(lock.lock(CACHE_A + i).expect("within the depth"));
        }
        let beyond = locks[nesting::MAX_NESTING].lock(CACHE_B);
        assert!(matches!(beyond, Err(BusyCause::TooDeep)), "one lock past MAX_NESTING");
        while guards.pop().is_some() {}
        assert!(!holds_any());
        assert!(locks[nesting::MAX_NESTING].lock(CACHE_B).is_ok(), "the record is empty again");
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
