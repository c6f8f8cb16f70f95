//! A per-thread record of nested scopes, each named by an id (an address, never [`NONE`]): which
//! one is innermost, and which enclose it. Two mechanisms keep one each:
//!
//! * the shard locks a thread holds, by cache (`lock.rs`): a lock of a cache already on the
//!   record is refused, because waiting for it could deadlock (guarantee 6);
//! * the purges a thread runs, by purger (`purge.rs`): a purge of a cache already on the record
//!   returns at once, so callbacks that call back into their cache do not recurse (guarantee 5).
//!
//! The innermost id lives alone in a `Cell<usize>` (const-initialised, no destructor), so the
//! hot-path question, "is this thread inside any scope?", is one thread-local load that answers
//! [`NONE`]. The ids further out live in a `Vec`, used only when scopes of different caches nest
//! (user code of one cache calling into another), out of line. Scopes nest strictly (each guard
//! lives in one stack frame of its thread), so leaving one restores what entering it found.
//!
//! The record is this thread's alone: no other thread reads or writes it, and it needs no
//! atomics.

use crate::sync::LocalKey;
use std::cell::{Cell, RefCell};

/// The innermost id of a thread outside every scope. Never an id (ids are addresses).
pub(crate) const NONE: usize = 0;

/// One record: the two thread-locals it is kept in, declared by its owner with
/// `sync_thread_local!` (`Cell::new(NONE)` and `RefCell::new(Vec::new())`).
///
/// Declare a record as a `const`, not a `static`: a const is inlined where it is used, so each
/// access compiles to a direct thread-local load. Through a `static` the accessor stayed an
/// indirect call in the caller's crate: 175 instead of 147 instructions per cached `get`
/// (callgrind on the `compare` bench, W4, one thread).
pub(crate) struct Nesting {
    pub(crate) innermost: &'static LocalKey<Cell<usize>>,
    pub(crate) outer: &'static LocalKey<RefCell<Vec<usize>>>,
}

impl Nesting {
    /// The innermost id on this thread's record, or [`NONE`]. One thread-local load.
    #[inline(always)]
    pub(crate) fn innermost(&self) -> usize {
        self.innermost.with(Cell::get)
    }

    /// Whether `id` is on the record, given its `innermost` id as just read.
    #[inline(always)]
    pub(crate) fn contains(&self, innermost: usize, id: usize) -> bool {
        innermost != NONE && (innermost == id || self.further_out(id))
    }

    /// Makes `id` the innermost scope; `innermost` is the record's innermost id as just read,
    /// which the caller keeps for [`Nesting::leave`].
    #[inline(always)]
    pub(crate) fn enter(&self, innermost: usize, id: usize) {
        if innermost != NONE {
            self.push_outer(innermost);
        }
        self.innermost.with(|cell| cell.set(id));
    }

    /// Leaves the innermost scope, restoring `previous` (what [`Nesting::enter`] was given), and
    /// returns the id of the scope left.
    #[inline(always)]
    pub(crate) fn leave(&self, previous: usize) -> usize {
        let left = self.innermost.with(|cell| cell.replace(previous));
        if previous != NONE {
            self.pop_outer(previous);
        }
        left
    }

    /// Whether `id` is further out than the innermost scope. Reached only from inside a scope.
    #[cold]
    #[inline(never)]
    fn further_out(&self, id: usize) -> bool {
        self.outer.with(|outer| outer.borrow().contains(&id))
    }

    #[cold]
    #[inline(never)]
    fn push_outer(&self, id: usize) {
        self.outer.with(|outer| outer.borrow_mut().push(id));
    }

    #[cold]
    #[inline(never)]
    fn pop_outer(&self, id: usize) {
        let popped = self.outer.with(|outer| outer.borrow_mut().pop());
        debug_assert_eq!(popped, Some(id), "scopes nest: the innermost leaves first");
    }
}
