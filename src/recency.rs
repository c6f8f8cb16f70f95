//! Deferred recency: a hit records its touch instead of moving its node, and the next write
//! applies every recorded touch, in order, to the recency list (the *drain*). A hit writes
//! nothing but the node's stamp (and, on its first touch since the last drain, one log slot):
//! no relink, no stores to other nodes. Each shard stays an exact LRU.
//!
//! ```text
//!  a hit (either lock mode)                            a write (write mode)
//!  ─────────────────────────────────────────           ────────────────────────────────────────
//!  s = next stamp          (the shard's clock)          drain: sort the logged nodes by stamp,
//!  prev = node's stamp; node's stamp = max(prev, s)            move each to the head, in order;
//!  prev <= drained?  ──yes──▶ log the node (once)              drained = clock
//!                                                       then insert / evict / remove / iterate
//! ```
//!
//! # Two ways to record a hit
//!
//! A hit takes the shard lock in write mode when it is free at once, and records with plain
//! loads and stores ([`Touches::touch_exclusive`]): the uncontended hit costs the two
//! read-modify-writes of taking and releasing the lock, nothing more. When the lock is held, the
//! hit joins in read mode and records with read-modify-writes ([`Touches::touch_shared`]), so
//! that hits on a busy shard run together instead of queueing. (Read mode for every hit made
//! an uncontended hit dearer: BENCHMARKS.md, "The hit path, before and after".)
//!
//! # State, per shard
//!
//! * `clock`: the shard's stamp counter. Every stamp this shard hands out moves it forward
//!   (in read mode with a compare-exchange), so stamps are unique in the shard and follow the
//!   order of the hits that took them (a hit's *linearisation point* is its stamp).
//! * each node's `stamp` (in the slab): the largest stamp of its touches, or of its insert.
//! * `drained`: every touch stamped up to it is reflected in the list order. Written in write
//!   mode only.
//! * the `log`: the nodes touched since the last drain, each once, in no order. It has room for
//!   every node of the shard up to [`LOG_MAX`] (it is resized by drains, as the shard grows); a
//!   shard larger than that drains once the log is full (a hit in write mode at once, a hit in
//!   read mode if the lock is free at once), so no drain handles more than [`LOG_MAX`] logged
//!   nodes. A log that overflows anyway (read-mode hits on a busy shard) loses nothing: the
//!   touches are in the stamps, and the next drain finds them by scanning the slab.
//!
//! # Why it is exact
//!
//! A node whose stamp is at most `drained` was not touched since the last drain: such nodes
//! keep their list order, which was exact at the drain. Every touched node was accessed after
//! every untouched node's last access, and among touched nodes the last access is the stamp. So
//! "untouched nodes in list order, then touched nodes by stamp" is the exact order of last use,
//! and the drain makes the list that order. Every operation that reads or changes the order
//! (insert, eviction, remove, clear, resize, snapshot) drains first, in write mode; no touch is
//! ever dropped.
//!
//! # Invariants (checked by `Shard::validate` with no reader running)
//!
//! 1. A node is in the log if and only if its stamp is above `drained` (unless the log
//!    overflowed), and the log holds no node twice.
//! 2. The log holds at most as many nodes as the slab.
//! 3. After a drain, stamps strictly decrease from the head of the list to its tail.
//! 4. The list is never changed with touches undrained (`debug_assert!` at each change).
//!
//! # Two readers, one node
//!
//! In read mode, `fetch_max` keeps the larger stamp whatever the order of two racing readers,
//! and exactly one of them reads a `prev` at or below `drained` (the other reads the first one's
//! stamp), so the node is logged once and carries the newest stamp. Loom models: `recency.rs`
//! in `loom-tests`.
//!
//! # Stamps across shards
//!
//! Each thread keeps the last stamp it took, and a stamp is one more than the larger of that and
//! the shard's clock (a Lamport clock). On one thread, stamps increase across every shard, so
//! comparing two shards' stamps gives the exact order of that thread's accesses; across
//! threads, they follow each thread's order and every chain of accesses through a shard. The
//! cache compares the stamps of shards' least recent entries to choose a victim.
//!
//! # Orderings
//!
//! Everything here is `Relaxed`. The shard lock orders every holder in write mode after every
//! holder before it, in either mode: a reader's stamp, `fetch_max` and log push happen before its
//! read unlock (`Release`), which a writer's acquisition (`Acquire`) synchronises with, and so
//! on. Among readers, the clock and each node's stamp are single atomics changed only by
//! read-modify-writes, which are totally ordered whatever their ordering: that alone makes
//! stamps unique, keeps the largest, and logs a node once. The log's length is taken with
//! `fetch_add`, so each push owns its slot.

use crate::slab::{NodeId, Slab};
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed, sync_thread_local};
use std::cell::Cell;

/// The most touched nodes one drain applies from the log: a shard holding more entries drains
/// when its log fills, so that no write pays for more than this many relinks (and a sort of
/// them).
pub(crate) const LOG_MAX: usize = 16 * 1024;

sync_thread_local! {
    /// The last stamp this thread took, in any shard of any cache (see "Stamps across shards").
    static LAST_STAMP: Cell<u64> = Cell::new(0);
}

/// A shard's recency bookkeeping. See the module docs.
///
/// `repr(C)`: a hit writes `clock` and, on a first touch, `log_len`, and reads `drained`; these
/// come first, so that they share the cache line of the lock word (see `LockedShard` in
/// `cache.rs`).
#[repr(C)]
pub(crate) struct Touches {
    clock: AtomicU64,
    /// Written only in write mode; read by readers, who never run with a writer.
    drained: u64,
    /// How many pushes the log has had since the last drain; may pass its length (overflow).
    log_len: AtomicUsize,
    /// Room for `min(slab capacity, LOG_MAX)` nodes, resized by drains (with nothing logged).
    log: Box<[AtomicU32]>,
    /// A reusable buffer for sorting a drain's nodes by stamp: write mode only.
    sorted: Vec<(u64, NodeId)>,
    /// Whether stamps are compared across shards, and so chained through each thread's last
    /// stamp (see "Stamps across shards"); otherwise the shard's clock alone orders them.
    across_shards: bool,
}

impl Touches {
    pub(crate) fn new(across_shards: bool) -> Self {
        Self {
            across_shards,
            clock: AtomicU64::new(0),
            drained: 0,
            log: Box::new([]),
            log_len: AtomicUsize::new(0),
            sorted: Vec::new(),
        }
    }

    /// This thread's last stamp (see "Stamps across shards"), or 0 if stamps stay in the shard.
    #[inline]
    fn last_stamp(&self) -> u64 {
        if self.across_shards { LAST_STAMP.with(Cell::get) } else { 0 }
    }

    #[inline]
    fn set_last_stamp(&self, stamp: u64) {
        if self.across_shards {
            LAST_STAMP.with(|cell| cell.set(stamp));
        }
    }

    /// A new stamp, holding the lock in write mode: the clock moves with a plain store.
    #[inline]
    fn next_stamp_exclusive(&mut self) -> u64 {
        // Relaxed: write mode; no reader runs (see "Orderings").
        let stamp = self.clock.load(Relaxed).max(self.last_stamp()) + 1;
        self.clock.store(stamp, Relaxed);
        self.set_last_stamp(stamp);
        stamp
    }

    /// A new stamp, holding the lock in read mode: larger than every stamp this shard has handed
    /// out and than every stamp this thread has taken.
    #[inline]
    fn next_stamp_shared(&self) -> u64 {
        let last = self.last_stamp();
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
        self.set_last_stamp(stamp);
        stamp
    }

    /// Records a hit on `id` holding the lock in write mode, with plain loads and stores, and
    /// drains if that fills the log.
    #[inline]
    pub(crate) fn touch_exclusive<T>(&mut self, slab: &mut Slab<T>, id: NodeId) {
        let stamp = self.next_stamp_exclusive();
        let node = slab.stamp(id);
        // Relaxed: write mode. Every stamp this shard handed out is below `stamp`.
        let previous = node.load(Relaxed);
        node.store(stamp, Relaxed);
        if previous <= self.drained {
            let at = self.log_len.load(Relaxed);
            self.log_len.store(at + 1, Relaxed);
            if let Some(slot) = self.log.get(at) {
                slot.store(id.index(), Relaxed);
            }
            if at + 1 >= LOG_MAX {
                self.drain(slab);
            }
        }
    }

    /// Records a hit on `id` holding the lock in read mode. Returns whether the log is full, so
    /// that the caller drains once it can (see "State, per shard").
    #[inline]
    pub(crate) fn touch_shared<T>(&self, slab: &Slab<T>, id: NodeId) -> bool {
        let stamp = self.next_stamp_shared();
        // Relaxed: a read-modify-write; see "Two readers, one node".
        let previous = slab.stamp(id).fetch_max(stamp, Relaxed);
        previous <= self.drained && self.log_shared(id)
    }

    /// Logs the first touch of `id` since the drain, in read mode; returns whether the log has
    /// reached [`LOG_MAX`].
    #[cold]
    #[inline(never)]
    fn log_shared(&self, id: NodeId) -> bool {
        // Relaxed: the push owns slot `at`; a writer reads the log after the lock orders it.
        let at = self.log_len.fetch_add(1, Relaxed);
        if let Some(slot) = self.log.get(at) {
            slot.store(id.index(), Relaxed);
        }
        at + 1 >= LOG_MAX
    }

    /// Whether every touch is reflected in the list (write mode): the list may change.
    #[inline]
    pub(crate) fn is_drained(&self) -> bool {
        self.log_len.load(Relaxed) == 0
    }

    /// The drain (write mode): moves every node touched since the last drain to the head of the
    /// list, least recently touched first, so the list is in exact order of last use again.
    /// One load when nothing was touched.
    #[inline]
    pub(crate) fn drain<T>(&mut self, slab: &mut Slab<T>) {
        if !self.is_drained() {
            self.drain_touched(slab);
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_touched<T>(&mut self, slab: &mut Slab<T>) {
        let pushed = self.log_len.load(Relaxed);
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
        self.fit_log(slab.capacity());
    }

    /// Makes room in the log for every node a slab of `capacity` holds, up to [`LOG_MAX`]
    /// (write mode, with nothing logged).
    #[cold]
    fn fit_log(&mut self, capacity: usize) {
        let wanted = capacity.min(LOG_MAX);
        if self.log.len() != wanted {
            self.log = (0..wanted).map(|_| AtomicU32::new(0)).collect();
        }
    }

    /// Stamps a node just written (inserted or replaced) and moved to the head, in write mode
    /// after a drain: it is the most recent node and counts as untouched. Grows the log with
    /// the slab.
    #[inline]
    pub(crate) fn stamp_written<T>(&mut self, slab: &Slab<T>, id: NodeId) {
        debug_assert!(self.is_drained(), "a node is written with touches undrained");
        let stamp = self.next_stamp_exclusive();
        // Relaxed: write mode.
        slab.stamp(id).store(stamp, Relaxed);
        self.drained = stamp;
        if self.log.len() < slab.capacity().min(LOG_MAX) {
            self.fit_log(slab.capacity());
        }
    }

    /// Checks invariants 1 and 2 of the module docs.
    #[cfg(any(test, loom))]
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
            let mut touched: Vec<u32> = slab
                .ids()
                .filter(|&id| slab.stamp(id).load(Relaxed) > self.drained)
                .map(NodeId::index)
                .collect();
            touched.sort_unstable();
            assert_eq!(logged, touched, "the log and the stamps above `drained` disagree");
        }
    }
}
