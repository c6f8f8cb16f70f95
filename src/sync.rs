//! The synchronisation facade: every lock, atomic, thread-local and the eviction queue that the
//! crate uses comes from here, so that the same code runs on std in production and on loom's
//! model-checked primitives under `RUSTFLAGS="--cfg loom"`.
//!
//! Both sides offer the same paths and signatures:
//!
//! * [`Mutex`] (with its [`Condvar`]) and [`RwLock`]: poison-free (the lock has `try_*`
//!   forms). Poisoning is meaningless here: a panic under a shard lock can only come from user
//!   code that the shard runs before it mutates anything (a key's `Eq`/`Borrow`, a value's
//!   `Clone`, a `retain` predicate; see `shard.rs`), so the data behind a lock released by
//!   unwinding is always consistent.
//! * [`Queue`]: the eviction queue. Normally crossbeam's lock-free [`SegQueue`]; under loom a
//!   `Mutex<VecDeque>` stand-in, because crossbeam-queue uses `core` atomics directly and loom
//!   cannot see (or schedule around) them. The protocol built on top of the queue (the purge, its
//!   cap, exactly-once delivery) is what the loom models check; the queue itself is crossbeam's
//!   well-tested code. The stand-in promises no more than the protocol may assume of any queue:
//!   `push` and `pop` are linearizable (the mutex), but `len` and `is_empty` read a length that
//!   `push`/`pop` publish with `Release` and they load with `Acquire`, without the mutex. So a
//!   thread may see another's push late, as it may with a real lock-free queue, and the `SeqCst`
//!   fences of purge.rs ("A purge refused at the cap strands nothing") are what the models
//!   check, not the mutex.
//! * atomics, `thread_local!` (as [`sync_thread_local!`]), threads (the background purge's) and
//!   the machine's parallelism, which loom fixes at 2 so that models stay deterministic.
//!
//! [`SegQueue`]: crossbeam_queue::SegQueue

pub(crate) use inner::*;

#[cfg(not(loom))]
mod inner {
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    use std::time::Duration;

    /// A mutex that never poisons (parking_lot's, which is also smaller and faster than std's).
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// parking_lot's condition variable, for [`Mutex`]. Waits take the guard and give it back,
    /// as loom's do.
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }

        /// Waits for a notification (or a spurious wake-up), at most `timeout`.
        pub(crate) fn wait_for<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            timeout: Duration,
        ) -> MutexGuard<'a, T> {
            self.0.wait_for(&mut guard, timeout);
            guard
        }

        /// Waits for a notification (or a spurious wake-up).
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    /// A reader-writer lock that never poisons (parking_lot's: task-fair, so a reader never
    /// jumps a queued writer, and a writer cannot starve).
    pub(crate) struct RwLock<T>(parking_lot::RwLock<T>);

    pub(crate) type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    pub(crate) type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::RwLock::new(value))
        }

        #[inline]
        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read()
        }

        #[inline]
        pub(crate) fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
            self.0.try_read()
        }

        #[inline]
        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write()
        }

        #[inline]
        pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            self.0.try_write()
        }
    }

    /// The lock-free multi-producer queue of evicted entries.
    pub(crate) struct Queue<T>(crossbeam_queue::SegQueue<T>);

    impl<T> Queue<T> {
        pub(crate) fn new() -> Self {
            Self(crossbeam_queue::SegQueue::new())
        }

        #[inline]
        pub(crate) fn push(&self, value: T) {
            self.0.push(value);
        }

        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }

        #[inline]
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }

        #[inline]
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    pub(crate) use std::thread::yield_now;

    /// Threads: the background purge's (`background.rs`).
    pub(crate) mod thread {
        pub(crate) use std::thread::{Builder, JoinHandle};
    }

    /// How many threads can run at once, as std reports it (1 if it cannot tell).
    pub(crate) fn available_parallelism() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// `thread_local!` with a `const` initialiser, so that access needs no lazy-init check.
    macro_rules! sync_thread_local {
        ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
            std::thread_local!($(#[$attr])* static $name: $ty = const { $init });
        };
    }
    pub(crate) use sync_thread_local;
}

#[cfg(loom)]
mod inner {
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    use std::collections::VecDeque;

    /// loom's mutex, with std's poisoning taken off to match the parking_lot side.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        #[track_caller]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// loom's condition variable, with the parking_lot side's signatures. loom has no clock: a
    /// timed wait is a plain wait, so a model that needs a timeout to make progress deadlocks,
    /// and loom reports it.
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait_for<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _timeout: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            self.wait(guard)
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    /// loom's reader-writer lock, with std's poisoning taken off to match the parking_lot side.
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    pub(crate) type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    pub(crate) type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        #[track_caller]
        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        #[track_caller]
        pub(crate) fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
            match self.0.try_read() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }

        #[track_caller]
        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        #[track_caller]
        pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            match self.0.try_write() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// A loom-visible stand-in for `SegQueue` with the same interface (see the module docs).
    pub(crate) struct Queue<T> {
        items: Mutex<VecDeque<T>>,
        /// `items.len()`, stored under the mutex after every change and read without it.
        len: AtomicUsize,
    }

    impl<T> Queue<T> {
        pub(crate) fn new() -> Self {
            Self { items: Mutex::new(VecDeque::new()), len: AtomicUsize::new(0) }
        }

        pub(crate) fn push(&self, value: T) {
            let mut items = self.items.lock();
            items.push_back(value);
            // Release: a reader that sees this length also sees the item behind it. Nothing
            // stronger, so that a reader may also see an older length (see the module docs).
            self.len.store(items.len(), Ordering::Release);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            let mut items = self.items.lock();
            let value = items.pop_front();
            // Release: as in `push`.
            self.len.store(items.len(), Ordering::Release);
            value
        }

        pub(crate) fn len(&self) -> usize {
            // Acquire: pairs with the stores in `push` and `pop`; may return an older length.
            self.len.load(Ordering::Acquire)
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    pub(crate) use loom::thread::yield_now;

    pub(crate) mod thread {
        pub(crate) use loom::thread::{Builder, JoinHandle};
    }

    /// Fixed under loom, so that a model's shard count does not depend on the machine.
    pub(crate) fn available_parallelism() -> usize {
        2
    }

    macro_rules! sync_thread_local {
        ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
            loom::thread_local!($(#[$attr])* static $name: $ty = $init);
        };
    }
    pub(crate) use sync_thread_local;
}
