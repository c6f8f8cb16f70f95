//! Deferred recency: a hit records its touch under the shard's *read* lock, and the next write
//! applies every recorded touch, in order, to the recency list (the *drain*). Hits share the
//! lock; each shard stays an exact LRU.
//!
//! ```text
//!  read mode (any number of hits at once)            write mode (one thread)
//!  ───────────────────────────────────────           ────────────────────────────────────────
//!  s = next stamp          (the shard's clock)         drain: sort the logged nodes by stamp,
//!  prev = node.stamp.fetch_max(s)                             move each to the head, in order;
//!  prev <= drained?  ──yes──▶ log the node (once)             drained = clock
//!                                                      then insert / evict / remove / iterate
//! ```
//!
//! # State, per shard
//!
//! * `clock`: the shard's stamp counter. Every stamp this shard hands out comes from one
//!   compare-exchange on it, so stamps are unique in the shard and follow the order of the hits
//!   that took them (a hit's *linearisation point* is its stamp).
//! * each node's `stamp` (in the slab): the largest stamp of its touches, or of its insert.
//! * `drained`: every touch stamped up to it is reflected in the list order. Written in write
//!   mode only.
//! * the `log`: the nodes touched since the last drain, each once, in no order, up to
//!   [`LOG_CAPACITY`]; past that a flag says the log overflowed, and the next drain finds the
//!   touched nodes by scanning the slab instead.
//!
//! # Why it is exact
//!
//! A node whose stamp is at most `drained` was not touched since the last drain: such nodes
//! keep their list order, which was exact at the drain. Every touched node was accessed after
//! every untouched node's last access, and among touched nodes the last access is the stamp. So
//! "untouched nodes in list order, then touched nodes by stamp" is the exact order of last use,
//! and the drain makes the list that order. Every operation that reads or changes the order
//! (insert, eviction, remove, clear, resize, snapshot) drains first, in write mode; no touch is
//! ever dropped (a full log only makes the next drain scan).
//!
//! # Invariants (checked by `Shard::validate` after a drain or with no reader running)
//!
//! 1. A node is in the log if and only if its stamp is above `drained` (unless the log
//!    overflowed), and the log holds no node twice.
//! 2. The log holds at most as many nodes as the slab.
//! 3. After a drain, stamps strictly decrease from the head of the list to its tail.
//! 4. The list is never changed with touches undrained (`debug_assert!` at each change).
//!
//! # Two readers, one node
//!
//! `fetch_max` keeps the larger stamp whatever the order of two racing readers, and exactly one
//! of them reads a `prev` at or below `drained` (the other reads the first one's stamp), so the
//! node is logged once and carries the newest stamp. Loom models: `recency.rs` in `loom-tests`.
//!
//! # Stamps across shards
//!
//! Each thread keeps the last stamp it took, and a stamp is one more than the larger of that and
//! the shard's clock (a Lamport clock). On one thread, stamps increase across every shard, so
//! comparing two shards' stamps gives the exact order of that thread's accesses; across
//! threads, they follow each thread's order and every chain of accesses through a shard. A
//! global capacity compares the stamps of shards' least recent entries to choose a victim.
//!
//! # Orderings
//!
//! Everything here is `Relaxed`. The shard lock orders a writer after every reader that held
//! it before: a reader's stamp, `fetch_max` and log push happen before its read unlock
//! (`Release`), which the writer's acquisition (`Acquire`) synchronises with. Among readers, the
//! clock and each node's stamp are single atomics changed only by read-modify-writes, which are
//! totally ordered whatever their ordering: that alone makes stamps unique, keeps the largest,
//! and logs a node once. The log's length is taken with `fetch_add`, so each push owns its slot.

use crate::slab::{NodeId, Slab};
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed, sync_thread_local};
use std::cell::Cell;

/// How many touched nodes a shard's log records between drains. A hit that fills it past
/// [`DRAIN_AT`] asks for an early drain; past the capacity, touches are still recorded in the
/// nodes' stamps and the drain scans the slab for them.
pub(crate) const LOG_CAPACITY: usize = 1024;

/// The log length at which a hit asks for a drain (taken only if the shard lock is free at
/// once), so that the drain a write pays for stays short.
pub(crate) const DRAIN_AT: usize = usize::MAX;

sync_thread_local! {
    /// The last stamp this thread took, in any shard of any cache (see "Stamps across shards").
    static LAST_STAMP: Cell<u64> = Cell::new(0);
}

/// A shard's recency bookkeeping. See the module docs.
pub(crate) struct Touches {
    clock: AtomicU64,
    /// Written only in write mode; read by readers, who never run with a writer.
    drained: u64,
    log: Box<[AtomicU32]>,
    /// How many pushes the log has had since the last drain; may pass its capacity.
    log_len: AtomicUsize,
    /// A reusable buffer for sorting a drain's nodes by stamp: write mode only.
    sorted: Vec<(u64, NodeId)>,
}

impl Touches {
    pub(crate) fn new() -> Self {
        Self {
            clock: AtomicU64::new(0),
            drained: 0,
            log: (0..LOG_CAPACITY).map(|_| AtomicU32::new(0)).collect(),
            log_len: AtomicUsize::new(0),
            sorted: Vec::new(),
        }
    }

    /// A new stamp of this shard: larger than every stamp this shard has handed out and than
    /// every stamp this thread has taken.
    #[inline]
    pub(crate) fn next_stamp(&self) -> u64 {
        let last = LAST_STAMP.with(Cell::get);
        // Relaxed: see "Orderings"; the compare-exchange makes the stamp unique in the shard.
        let mut current = self.clock.load(Relaxed);
        let stamp = loop {
            let next = current.max(last) + 1;
            match self.clock.compare_exchange_weak(current, next, Relaxed, Relaxed) {
                Ok(_) => break next,
                // Another hit took a stamp meanwhile: go past it.
                Err(actual) => current = actual,
            }
        };
        LAST_STAMP.with(|cell| cell.set(stamp));
        stamp
    }

    /// Records a hit on `id` (read mode). Returns whether the shard should drain early (the log
    /// is past [`DRAIN_AT`]).
    #[inline]
    pub(crate) fn touch<T>(&self, slab: &Slab<T>, id: NodeId) -> bool {
        let stamp = self.next_stamp();
        // Relaxed: a read-modify-write; see "Two readers, one node".
        let previous = slab.stamp(id).fetch_max(stamp, Relaxed);
        previous <= self.drained && self.log(id)
    }

    /// Logs the first touch of `id` since the drain; returns whether a drain is due.
    #[cold]
    #[inline(never)]
    fn log(&self, id: NodeId) -> bool {
        // Relaxed: the push owns slot `at`; the writer reads the log after the lock orders it.
        let at = self.log_len.fetch_add(1, Relaxed);
        if let Some(slot) = self.log.get(at) {
            slot.store(id.index(), Relaxed);
        }
        at + 1 >= DRAIN_AT
    }

    /// Whether every touch is reflected in the list (write mode): the list may change.
    #[inline]
    pub(crate) fn is_drained(&self) -> bool {
        self.log_len.load(Relaxed) == 0
    }

    /// The drain (write mode): moves every node touched since the last drain to the head of the
    /// list, least recently touched first, so the list is in exact order of last use again.
    pub(crate) fn drain<T>(&mut self, slab: &mut Slab<T>) {
        let pushed = self.log_len.load(Relaxed);
        if pushed == 0 {
            return;
        }
        let drained = self.drained;
        self.sorted.clear();
        if pushed <= self.log.len() {
            for slot in &self.log[..pushed] {
                let id = NodeId::new(slot.load(Relaxed));
                self.sorted.push((slab.stamp(id).load(Relaxed), id));
            }
        } else {
            // The log overflowed: the touched nodes are those stamped after the last drain.
            for id in slab.ids() {
                let stamp = slab.stamp(id).load(Relaxed);
                if stamp > drained {
                    self.sorted.push((stamp, id));
                }
            }
        }
        // Stamps are unique in a shard, so this is the order of last use.
        self.sorted.sort_unstable_by_key(|&(stamp, _)| stamp);
        for &(_, id) in &self.sorted {
            slab.move_to_front(id);
        }
        self.log_len.store(0, Relaxed);
        self.drained = self.clock.load(Relaxed);
    }

    /// Stamps a node just written (inserted or replaced) and moved to the head, in write mode
    /// after a drain: it is the most recent node and counts as untouched.
    #[inline]
    pub(crate) fn stamp_written<T>(&mut self, slab: &Slab<T>, id: NodeId) {
        debug_assert!(self.is_drained(), "a node is written with touches undrained");
        let stamp = self.next_stamp();
        slab.stamp(id).store(stamp, Relaxed);
        self.drained = stamp;
    }

    /// Checks invariants 1 and 2 of the module docs.
    #[cfg(test)]
    pub(crate) fn validate<T>(&self, slab: &Slab<T>) {
        let pushed = self.log_len.load(Relaxed);
        let mut logged: Vec<u32> =
            self.log[..pushed.min(self.log.len())].iter().map(|s| s.load(Relaxed)).collect();
        logged.sort_unstable();
        let before = logged.len();
        logged.dedup();
        assert_eq!(logged.len(), before, "a node is in the log twice");
        if pushed <= self.log.len() {
            assert!(pushed <= slab.len(), "the log holds more nodes than the slab");
            let touched: Vec<u32> = slab
                .ids()
                .filter(|&id| slab.stamp(id).load(Relaxed) > self.drained)
                .map(NodeId::index)
                .collect();
            let mut touched = touched;
            touched.sort_unstable();
            assert_eq!(logged, touched, "the log and the stamps above `drained` disagree");
        }
    }
}
