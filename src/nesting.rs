//! The per-thread record of what this thread is inside: the shard locks it holds (by cache) and
//! the purges it runs (by purger), plus the cache drops it has put off until it holds no lock.
//!
//! * **Held locks** (`lock.rs`). A lock of a cache already on the record is refused, and while
//!   any lock is held no other lock is waited for (guarantee 6): user code that runs under a lock
//!   (a key's `Eq`, a value's `Clone`) may call into any cache, but only ever without blocking.
//! * **Running purges** (`purge.rs`). A purge of a cache already on the record returns at once,
//!   so callbacks that call back into their cache do not recurse (guarantee 5).
//! * **Running loaders** (`load.rs`). A loader that asks for the key it is loading is refused
//!   instead of waiting for itself.
//! * **Drops put off** (`cache.rs`). A cache dropped while this thread holds a shard lock cannot
//!   run its callbacks there (guarantee 4); it hands itself over, and the thread drops it when it
//!   releases its outermost lock ([`Record::put_off_drop`]).
//!
//! # Layout, and why
//!
//! Each of the three nestings is a [`Scopes`]: the innermost id alone in a `Cell<usize>`, so the
//! hot-path question "is this thread inside anything?" is one thread-local load that answers
//! [`NONE`]; the ids further out in a fixed array of [`MAX_NESTING`] cells, used only when
//! scopes of different caches nest (user code of one cache calling into another). Scopes nest
//! strictly (each guard lives in one stack frame of its thread), so leaving one restores what
//! entering it found.
//!
//! The record has no destructor and a `const` initialiser: it stays readable while the thread's
//! thread-locals are being destroyed, which is when a cache kept in a `thread_local!` is dropped
//! and delivers its queue, possibly into another cache. (A `Vec` here, as before, had a
//! destructor: a cache dropped at thread exit found the record gone and its callbacks panicked.)
//! Only the list of put-off drops owns heap data; it lives in a thread-local of its own and is
//! touched only on the rare path that puts a drop off.
//!
//! The record is this thread's alone: no other thread reads or writes it, and it needs no
//! atomics.

use crate::sync::sync_thread_local;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// The innermost id of a thread outside every scope. Never an id (ids are addresses).
pub(crate) const NONE: usize = 0;

/// How many scopes of different caches one thread can be inside at once, in each nesting (shard
/// locks held, purges running, loaders running). A lock beyond it is refused with
/// [`Busy`](crate::Busy) ([`BusyCause::TooDeep`](crate::BusyCause::TooDeep)); a purge beyond it
/// returns at once and leaves its entries queued; a load beyond it panics. Reaching it takes
/// user code nested through that many caches (or loaders).
///
/// ```
/// assert!(shardlru::MAX_NESTING >= 8);
/// ```
pub const MAX_NESTING: usize = 16;

/// How many ids a [`Scopes`] keeps besides the innermost.
const OUTER: usize = MAX_NESTING - 1;

/// One nesting: ids of the scopes this thread is inside, innermost first.
pub(crate) struct Scopes {
    innermost: Cell<usize>,
    /// `outer[..depth]`: the ids further out than `innermost`, outermost first.
    outer: [Cell<usize>; OUTER],
    depth: Cell<usize>,
}

impl Scopes {
    const fn new() -> Self {
        Self {
            innermost: Cell::new(NONE),
            outer: [const { Cell::new(NONE) }; OUTER],
            depth: Cell::new(0),
        }
    }

    /// The innermost id, or [`NONE`].
    #[inline(always)]
    pub(crate) fn innermost(&self) -> usize {
        self.innermost.get()
    }

    /// Whether `id` is on the record, given its innermost id as just read.
    #[inline(always)]
    pub(crate) fn contains(&self, innermost: usize, id: usize) -> bool {
        innermost != NONE && (innermost == id || self.further_out(id))
    }

    /// Whether one more scope fits, given the innermost id as just read.
    #[inline(always)]
    pub(crate) fn has_room(&self, innermost: usize) -> bool {
        innermost == NONE || self.depth.get() < OUTER
    }

    /// Makes `id` the innermost scope; `innermost` is the id read just before, which the caller
    /// keeps for [`Scopes::leave`]. The caller has checked [`Scopes::has_room`].
    #[inline(always)]
    pub(crate) fn enter(&self, innermost: usize, id: usize) {
        if innermost != NONE {
            self.push_outer(innermost);
        }
        self.innermost.set(id);
    }

    /// Leaves the innermost scope, restoring `previous` (what [`Scopes::enter`] was given), and
    /// returns the id of the scope left.
    #[inline(always)]
    pub(crate) fn leave(&self, previous: usize) -> usize {
        let left = self.innermost.replace(previous);
        if previous != NONE {
            self.pop_outer(previous);
        }
        left
    }

    /// Whether `id` is further out than the innermost scope. Reached only from inside a scope.
    #[cold]
    #[inline(never)]
    fn further_out(&self, id: usize) -> bool {
        self.outer[..self.depth.get()].iter().any(|outer| outer.get() == id)
    }

    #[cold]
    #[inline(never)]
    fn push_outer(&self, id: usize) {
        let depth = self.depth.get();
        self.outer[depth].set(id);
        self.depth.set(depth + 1);
    }

    #[cold]
    #[inline(never)]
    fn pop_outer(&self, id: usize) {
        let depth = self.depth.get() - 1;
        debug_assert_eq!(self.outer[depth].get(), id, "scopes nest: the innermost leaves first");
        self.depth.set(depth);
    }
}

/// This thread's record. See the module docs.
pub(crate) struct Record {
    /// The shard locks this thread holds, by cache id.
    pub(crate) held: Scopes,
    /// The purges this thread runs, by purger id.
    pub(crate) running: Scopes,
    /// The loaders this thread runs, by load id (`load.rs`).
    pub(crate) loading: Scopes,
    /// Whether [`PUT_OFF`] may hold drops: checked when the outermost lock is released.
    put_off: Cell<bool>,
}

/// A cache whose drop waits for this thread to release its last shard lock. Dropping it runs
/// the cache's drop (its queue's delivery) as it would have run.
pub(crate) type PutOffDrop = Box<dyn Any>;

sync_thread_local! {
    /// This thread's record: const-initialised, no destructor (see the module docs).
    static RECORD: Record = Record {
        held: Scopes::new(),
        running: Scopes::new(),
        loading: Scopes::new(),
        put_off: Cell::new(false),
    };
}

sync_thread_local! {
    /// The drops put off until this thread holds no shard lock, in the order they were put off.
    static PUT_OFF: RefCell<VecDeque<PutOffDrop>> = RefCell::new(VecDeque::new());
}

/// Runs `f` on this thread's record. Never fails, also while thread-locals are destroyed.
#[inline(always)]
pub(crate) fn record<R>(f: impl FnOnce(&Record) -> R) -> R {
    RECORD.with(f)
}

/// Whether this thread can put drops off: false only once its thread-locals are being
/// destroyed (the list of put-off drops is gone), and then a cache's drop runs where it is.
pub(crate) fn can_put_off_drops() -> bool {
    PUT_OFF.try_with(|_| ()).is_ok()
}

impl Record {
    /// Puts off a drop until this thread releases its outermost shard lock. The caller has
    /// checked [`can_put_off_drops`].
    #[cold]
    pub(crate) fn put_off_drop(&self, drop: PutOffDrop) {
        PUT_OFF.with(|list| list.borrow_mut().push_back(drop));
        self.put_off.set(true);
    }

    /// Called when this thread has just released its outermost shard lock: runs the drops put
    /// off meanwhile, in order. One `Cell` load when there are none.
    #[inline(always)]
    pub(crate) fn run_put_off_drops(&self) {
        if self.put_off.get() {
            self.drain_put_off();
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_put_off(&self) {
        // One at a time, with the list unborrowed: a drop may take locks, put off more drops
        // (those run in this loop too) or call into caches that do. The flag is cleared only
        // once the list is empty, so a drop that panics leaves the rest to the next release.
        let next = || PUT_OFF.try_with(|list| list.borrow_mut().pop_front()).ok().flatten();
        while let Some(cache) = next() {
            drop(cache);
        }
        self.put_off.set(false);
    }
}
