//! The shard lock: a reader-writer lock that a thread already holding a shard lock never waits
//! for (guarantee 6), that a hit takes in the cheaper mode the moment allows, and that counts how
//! often it was found held (the contention statistic users tune the shard count by).
//!
//! # Modes
//!
//! Writes (insert, remove, eviction, the drain of recorded hits, iteration) take write mode.
//! Peeks take read mode. A hit takes write mode if the lock is free at once (one
//! compare-exchange, after which it records its touch with plain stores), and otherwise read
//! mode beside the other readers ([`ShardLock::lock_for_hit`]; `recency.rs` explains the two
//! ways a hit records).
//!
//! # Never wait while holding a lock
//!
//! User code runs under a shard lock only in a key's `Eq`/`Borrow` and a value's `Clone`. That
//! code may call into any cache. If it waited for a lock there, it could deadlock: on a lock of
//! the same cache that this thread holds, against another thread that holds a second shard of
//! the same cache and waits for this one, or against another thread that holds a lock of the
//! second cache and waits, inside that cache's `Eq` or `Clone`, for this one (two caches, ABBA).
//! So the rule is: **a thread that holds any shard lock never blocks on another**.
//! Every acquisition, in either mode, goes one of two ways, decided by the thread's record of
//! held locks (`nesting.rs`):
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
//! An acquisition tries the lock first and counts a failure in `contended` before blocking, so
//! the uncontended path costs what a plain lock costs. A refused try counts as contended too, and
//! so does a hit that found the lock held and joined the readers. `acquisitions` counts both
//! modes: a writer bumps it with a plain load and store (it holds the lock alone), a reader with
//! a `fetch_add`.
//!
//! # Release
//!
//! A guard releases the lock first and then leaves the record; when that leaves the record
//! empty (the thread's outermost lock), it runs the cache drops put off while the lock was held
//! (`nesting.rs`), now that no lock is held.

use crate::error::BusyCause;
use crate::nesting::{self, NONE};
use crate::sync::{AtomicU64, Ordering::Relaxed, RwLock, RwLockReadGuard, RwLockWriteGuard};
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

/// A shard's reader-writer lock with its contention counters. See the module docs.
///
/// `repr(C)`, counters first: they share a cache line with the lock word (see `LockedShard` in
/// `cache.rs`).
#[repr(C)]
pub(crate) struct ShardLock<T> {
    /// How many times the lock was taken, in either mode.
    acquisitions: AtomicU64,
    /// How many times a thread found the lock held against it (and waited, or was refused).
    contended: AtomicU64,
    lock: RwLock<T>,
}

/// A [`ShardLock`] held in read mode: any number at once, no writer.
pub(crate) type ReadGuard<'a, T> = ShardGuard<RwLockReadGuard<'a, T>>;

/// A [`ShardLock`] held in write mode: alone.
pub(crate) type WriteGuard<'a, T> = ShardGuard<RwLockWriteGuard<'a, T>>;

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            lock: RwLock::new(value),
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
        }
    }

    /// Takes the lock in read mode for the cache `cache`: waits for it if this thread holds no
    /// shard lock, and otherwise only tries it (see the module docs).
    #[inline(always)]
    pub(crate) fn read(&self, cache: usize) -> Result<ReadGuard<'_, T>, BusyCause> {
        let guard = self.acquire(cache, || self.lock.try_read(), || self.lock.read())?;
        // Relaxed: a statistic. Readers hold the lock together, so they count with an RMW.
        self.acquisitions.fetch_add(1, Relaxed);
        Ok(guard)
    }

    /// Takes the lock in write mode for the cache `cache`, as [`ShardLock::read`] does.
    #[inline(always)]
    pub(crate) fn write(&self, cache: usize) -> Result<WriteGuard<'_, T>, BusyCause> {
        let guard = self.acquire(cache, || self.lock.try_write(), || self.lock.write())?;
        self.count_exclusive();
        Ok(guard)
    }

    /// Takes the lock for a hit: in write mode if it is free at once (the hit then records with
    /// plain stores), otherwise in read mode, beside the other readers. The acquisition rule of
    /// the module docs applies: holding another lock, this thread only tries.
    #[inline(always)]
    pub(crate) fn lock_for_hit(&self, cache: usize) -> Result<HitGuard<'_, T>, BusyCause> {
        let outer = nesting::record(|record| record.held.innermost());
        if outer != NONE {
            return self.lock_for_hit_nested(outer, cache);
        }
        if let Some(guard) = self.lock.try_write() {
            self.count_exclusive();
            return Ok(HitGuard::Exclusive(self.hold(guard, outer, cache)));
        }
        Ok(HitGuard::Shared(self.read_contended(outer, cache)))
    }

    /// [`ShardLock::lock_for_hit`] for a lock found held, by a thread that may wait: joins the
    /// readers (waiting only for a writer).
    #[cold]
    #[inline(never)]
    fn read_contended(&self, outer: usize, cache: usize) -> ReadGuard<'_, T> {
        // Relaxed: statistics, as in `acquire`.
        self.contended.fetch_add(1, Relaxed);
        let guard = self.lock.read();
        self.acquisitions.fetch_add(1, Relaxed);
        self.hold(guard, outer, cache)
    }

    /// [`ShardLock::lock_for_hit`] for a thread that holds another lock: tries write mode once,
    /// then read mode as [`ShardLock::read`] does for such a thread (once, refusing if held).
    #[cold]
    #[inline(never)]
    fn lock_for_hit_nested(
        &self,
        outer: usize,
        cache: usize,
    ) -> Result<HitGuard<'_, T>, BusyCause> {
        if let Some(cause) = Self::refusal(outer, cache) {
            return Err(cause);
        }
        if let Some(guard) = self.lock.try_write() {
            self.count_exclusive();
            return Ok(HitGuard::Exclusive(self.hold(guard, outer, cache)));
        }
        self.read(cache).map(HitGuard::Shared)
    }

    /// Takes the lock in write mode only if that needs no waiting, whatever this thread holds
    /// (for work that can be left to a later call). `None` if it is held, or refused.
    #[inline]
    pub(crate) fn try_write(&self, cache: usize) -> Option<WriteGuard<'_, T>> {
        let outer = nesting::record(|record| record.held.innermost());
        if outer != NONE && Self::refusal(outer, cache).is_some() {
            return None;
        }
        let guard = self.lock.try_write()?;
        self.count_exclusive();
        Some(self.hold(guard, outer, cache))
    }

    /// The acquisition rule of the module docs, for either mode: `try_once` tries the lock,
    /// `wait` waits for it.
    #[inline(always)]
    fn acquire<G>(
        &self,
        cache: usize,
        try_once: impl FnOnce() -> Option<G>,
        wait: impl FnOnce() -> G,
    ) -> Result<ShardGuard<G>, BusyCause> {
        let outer = nesting::record(|record| record.held.innermost());
        if outer != NONE {
            // Holding a lock already: decide by the record, never wait.
            if let Some(cause) = Self::refusal(outer, cache) {
                return Err(cause);
            }
            return match try_once() {
                Some(guard) => Ok(self.hold(guard, outer, cache)),
                None => Err(self.refused_held()),
            };
        }
        let guard = match try_once() {
            Some(guard) => guard,
            None => {
                // Relaxed: a statistic, written by every waiter, read by nobody that decides.
                self.contended.fetch_add(1, Relaxed);
                wait()
            }
        };
        Ok(self.hold(guard, outer, cache))
    }

    /// Why a thread that holds a lock already (`outer` is its innermost one) may not even try
    /// this one: a cache on the record, or a full record.
    #[cold]
    #[inline(never)]
    fn refusal(outer: usize, cache: usize) -> Option<BusyCause> {
        nesting::record(|record| {
            if record.held.contains(outer, cache) {
                Some(BusyCause::Reentered)
            } else if !record.held.has_room(outer) {
                Some(BusyCause::TooDeep)
            } else {
                None
            }
        })
    }

    /// A try that found the lock held, by a thread that may not wait.
    #[cold]
    #[inline(never)]
    fn refused_held(&self) -> BusyCause {
        // Relaxed: a statistic, as in `acquire`.
        self.contended.fetch_add(1, Relaxed);
        BusyCause::LockHeld
    }

    /// Counts an acquisition in write mode.
    #[inline(always)]
    fn count_exclusive(&self) {
        // Relaxed load-and-store: a writer holds the lock alone, and the lock orders it after
        // every reader's `fetch_add` and every writer before it.
        self.acquisitions.store(self.acquisitions.load(Relaxed) + 1, Relaxed);
    }

    /// Enters the record: the lock is this thread's now.
    #[inline(always)]
    fn hold<G>(&self, guard: G, outer: usize, cache: usize) -> ShardGuard<G> {
        nesting::record(|record| record.held.enter(outer, cache));
        ShardGuard { guard, leave: Leave { outer } }
    }

    /// How many times the lock has been taken, and how many times it was found held.
    pub(crate) fn counts(&self) -> (u64, u64) {
        // Relaxed: statistics; a snapshot may lag other threads by a few operations.
        (self.acquisitions.load(Relaxed), self.contended.load(Relaxed))
    }
}

/// A [`ShardLock`] held for a hit, by [`ShardLock::lock_for_hit`].
pub(crate) enum HitGuard<'a, T> {
    /// Held alone: the hit records with plain stores.
    Exclusive(WriteGuard<'a, T>),
    /// Held beside other readers: the hit records with read-modify-writes.
    Shared(ReadGuard<'a, T>),
}

/// Holds a [`ShardLock`] in either mode (`G` is the lock's own guard). Dropping it unlocks, then
/// gives this thread's record back to what it was before the lock (fields drop in declaration
/// order).
pub(crate) struct ShardGuard<G> {
    guard: G,
    leave: Leave,
}

impl<G> ShardGuard<G> {
    /// Whether this thread held another shard lock when it took this one.
    #[inline]
    pub(crate) fn is_nested(&self) -> bool {
        self.leave.outer != NONE
    }
}

/// Leaves the record when a [`ShardGuard`] is dropped, after its lock is released.
struct Leave {
    /// The innermost cache on this thread's record before the lock was taken.
    outer: usize,
}

impl Drop for Leave {
    #[inline]
    fn drop(&mut self) {
        // The lock is already released; the record is this thread's alone, so the order
        // against the release does not matter to other threads.
        nesting::record(|record| {
            record.held.leave(self.outer);
            if self.outer == NONE {
                // The outermost lock is released: no lock is held from here on.
                record.run_put_off_drops();
            }
        });
    }
}

impl<G: Deref> Deref for ShardGuard<G> {
    type Target = G::Target;

    #[inline]
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for ShardGuard<G> {
    #[inline]
    fn deref_mut(&mut self) -> &mut G::Target {
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
        let guard = first.write(CACHE_A).expect("nothing held yet");
        assert!(holds_any() && holds_lock_of(CACHE_A) && !holds_lock_of(CACHE_B));
        assert!(matches!(second.write(CACHE_A), Err(BusyCause::Reentered)));
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(!holds_lock_of(CACHE_A), "another thread holds nothing");
                assert_eq!(*second.write(CACHE_A).expect("another thread is not refused"), 2);
            });
        });
        drop(guard);
        assert!(!holds_any() && !holds_lock_of(CACHE_A));
        assert!(second.write(CACHE_A).is_ok());
        assert_eq!(first.counts(), (1, 0));
    }

    #[test]
    fn nested_caches_are_remembered_and_unwound() {
        let (a, b, a2) = (ShardLock::new(()), ShardLock::new(()), ShardLock::new(()));
        let outer = a.write(CACHE_A).unwrap();
        let inner = b.write(CACHE_B).expect("another cache is not re-entry");
        assert!(inner.is_nested() && !outer.is_nested());
        assert!(holds_lock_of(CACHE_A) && holds_lock_of(CACHE_B));
        assert!(matches!(a2.write(CACHE_A), Err(BusyCause::Reentered)), "A is further out");
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
                let _held = theirs.write(CACHE_B).unwrap();
                taken.wait();
                release.wait();
            });
            taken.wait();
            let _outer = mine.write(CACHE_A).unwrap();
            assert!(matches!(theirs.write(CACHE_B), Err(BusyCause::LockHeld)), "it would wait");
            assert_eq!(theirs.counts(), (1, 1), "a refused try counts as contended");
            release.wait();
        });
    }

    #[test]
    fn the_record_refuses_a_scope_beyond_its_depth() {
        let locks: Vec<_> = (0..=nesting::MAX_NESTING).map(|_| ShardLock::new(())).collect();
        let mut guards = Vec::new();
        for (i, lock) in locks[..nesting::MAX_NESTING].iter().enumerate() {
            guards.push(lock.write(CACHE_A + i).expect("within the depth"));
        }
        let beyond = locks[nesting::MAX_NESTING].write(CACHE_B);
        assert!(matches!(beyond, Err(BusyCause::TooDeep)), "one lock past MAX_NESTING");
        while guards.pop().is_some() {}
        assert!(!holds_any());
        assert!(locks[nesting::MAX_NESTING].write(CACHE_B).is_ok(), "the record is empty again");
    }

    #[test]
    fn a_waiter_counts_contention() {
        let lock = ShardLock::new(0);
        let guard = lock.write(CACHE_A).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *lock.write(CACHE_A).unwrap() += 1);
            while lock.counts().1 == 0 {
                std::thread::yield_now();
            }
            drop(guard);
            waiter.join().unwrap();
        });
        assert_eq!(lock.counts(), (2, 1));
        assert_eq!(*lock.write(CACHE_A).unwrap(), 1);
    }
}
