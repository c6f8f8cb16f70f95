//! A dense slab of nodes threaded on one intrusive, index-linked recency list.
//!
//! ```text
//!   head (most recent)                                   tail (least recent)
//!        │                                                      │
//!        ▼                                                      ▼
//!   nodes: [ 2 ]◀──▶[ 0 ]◀──▶[ 3 ]◀──▶[ 1 ]        (arrows: `prev` / `next` indices)
//!   Vec:    0    1    2    3          every index below `len` is a live node
//! ```
//!
//! Invariants, checked by `Slab::validate` (tests and loom models):
//!
//! * **Dense.** Every index in `0..len` holds a live node, and every live node is on the list.
//!   There is no free list and no `Option` per slot: removing a node moves the last node into its
//!   index ([`Slab::remove`] reports the move, so the owner can re-point whatever indexes it).
//!   Replacing a node's value in place ([`Slab::replace`]) is how a full shard recycles its
//!   least-recent node for a new entry, so the steady-state insert/evict path never allocates.
//! * **Linked.** `head` is the most recent node and `tail` the least; `prev` points towards the
//!   head, `next` towards the tail; [`NIL`] ends the list at both sides and marks an empty list.
//!
//! * **Stamped.** Each node carries the stamp of its last use, an atomic so that hits can
//!   record themselves under the shard's read lock; what the stamps mean, and when the list is
//!   brought in line with them, is `recency.rs`'s business.
//!
//! The slab knows nothing of keys or hashing, and takes no locks. Indices are `u32` to keep
//! nodes and the hash table compact, so a slab holds at most [`MAX_LEN`] nodes.

use crate::sync::AtomicU64;

/// Marks "no node": the end of the list, or an empty list's head and tail.
const NIL: u32 = u32::MAX;

/// The most nodes a slab can hold: every index must be below [`NIL`].
pub(crate) const MAX_LEN: usize = NIL as usize;

/// The smallest allocation a growing slab makes, so that the first few inserts do not reallocate.
const MIN_GROWTH: usize = 16;

/// The index of a live node. Only valid until the next [`Slab::remove`] that reports a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeId(u32);

impl NodeId {
    /// The node at `index`, as recorded by [`NodeId::index`].
    #[inline]
    pub(crate) fn new(index: u32) -> Self {
        Self(index)
    }

    /// The node's index, for records kept outside the slab.
    #[inline]
    pub(crate) fn index(self) -> u32 {
        self.0
    }
}

/// `repr(C)`, stamp first: a hit reads the value's first fields (the shard puts the hash, the key
/// and the value there) and writes the stamp, so these share the node's first 32 bytes and at
/// most one node in four spans two cache lines for a hit (half of them did in Rust's order).
#[repr(C)]
struct Node<T> {
    /// The stamp of the node's last use (see `recency.rs`).
    stamp: AtomicU64,
    value: T,
    /// The next more recent node, or [`NIL`] at the head.
    prev: u32,
    /// The next less recent node, or [`NIL`] at the tail.
    next: u32,
}

/// A node moved from index `from` to index `to` by [`Slab::remove`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
}

/// Nodes in a `Vec`, linked from most to least recent. See the module docs.
pub(crate) struct Slab<T> {
    nodes: Vec<Node<T>>,
    head: u32,
    tail: u32,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Self { nodes: Vec::new(), head: NIL, tail: NIL }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    pub(crate) fn get(&self, id: NodeId) -> &T {
        &self.nodes[id.0 as usize].value
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: NodeId) -> &mut T {
        &mut self.nodes[id.0 as usize].value
    }

    /// How many nodes the slab has room for without growing.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.nodes.capacity()
    }

    /// The stamp of `id`'s last use.
    #[inline]
    pub(crate) fn stamp(&self, id: NodeId) -> &AtomicU64 {
        &self.nodes[id.0 as usize].stamp
    }

    /// Every live node, in index order (not recency order).
    pub(crate) fn ids(&self) -> impl Iterator<Item = NodeId> + use<T> {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    /// The least recently used node, if any.
    #[inline]
    pub(crate) fn lru(&self) -> Option<NodeId> {
        (self.tail != NIL).then_some(NodeId(self.tail))
    }

    /// The node just more recent than `id`, if any.
    #[inline]
    pub(crate) fn more_recent(&self, id: NodeId) -> Option<NodeId> {
        let prev = self.nodes[id.0 as usize].prev;
        (prev != NIL).then_some(NodeId(prev))
    }

    /// Adds `value` as the most recent node.
    pub(crate) fn push_front(&mut self, value: T) -> NodeId {
        let len = self.nodes.len();
        assert!(len < MAX_LEN, "a slab holds at most {MAX_LEN} nodes");
        if len == self.nodes.capacity() {
            let target = (len * 2).clamp(MIN_GROWTH, MAX_LEN);
            self.nodes.reserve_exact(target - len);
        }
        self.nodes.push(Node { value, prev: NIL, next: NIL, stamp: AtomicU64::new(0) });
        let id = len as u32;
        self.link_front(id);
        NodeId(id)
    }

    /// Makes `id` the most recent node. The common case on a hot key, already at the head,
    /// costs one comparison.
    #[inline]
    pub(crate) fn move_to_front(&mut self, id: NodeId) {
        if self.head != id.0 {
            self.unlink(id.0);
            self.link_front(id.0);
        }
    }

    /// Replaces the value at `id` and makes it the most recent node; returns the old value.
    #[inline]
    pub(crate) fn replace(&mut self, id: NodeId, value: T) -> T {
        let old = std::mem::replace(&mut self.nodes[id.0 as usize].value, value);
        self.move_to_front(id);
        old
    }

    /// Removes the node at `id` and returns its value. The last node moves into the freed index
    /// to keep the slab dense; the move is returned so the owner can re-point its index.
    pub(crate) fn remove(&mut self, id: NodeId) -> (T, Option<Moved>) {
        self.unlink(id.0);
        let last = (self.nodes.len() - 1) as u32;
        let node = self.nodes.swap_remove(id.0 as usize);
        if id.0 == last {
            return (node.value, None);
        }
        // The node that was at `last` now lives at `id`: re-point its neighbours (or the ends).
        let Node { prev, next, .. } = self.nodes[id.0 as usize];
        match prev {
            NIL => self.head = id.0,
            prev => self.nodes[prev as usize].next = id.0,
        }
        match next {
            NIL => self.tail = id.0,
            next => self.nodes[next as usize].prev = id.0,
        }
        (node.value, Some(Moved { from: NodeId(last), to: id }))
    }

    /// Removes every node, least recent first, and keeps the allocation for reuse.
    pub(crate) fn drain_lru_first(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.nodes.len());
        while let Some(tail) = self.lru() {
            // Removing the tail moves the last node into its index; `remove` re-links it.
            out.push(self.remove(tail).0);
        }
        out
    }

    /// The values from most to least recent.
    pub(crate) fn iter_mru(&self) -> impl Iterator<Item = &T> {
        self.ids_mru().map(|id| &self.nodes[id.0 as usize].value)
    }

    /// The nodes from most to least recent.
    pub(crate) fn ids_mru(&self) -> impl Iterator<Item = NodeId> {
        let mut cursor = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(cursor as usize)?;
            let id = NodeId(cursor);
            cursor = node.next;
            Some(id)
        })
    }

    fn unlink(&mut self, id: u32) {
        let Node { prev, next, .. } = self.nodes[id as usize];
        match prev {
            NIL => self.head = next,
            prev => self.nodes[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.nodes[next as usize].prev = prev,
        }
    }

    fn link_front(&mut self, id: u32) {
        let old_head = self.head;
        let node = &mut self.nodes[id as usize];
        node.prev = NIL;
        node.next = old_head;
        match old_head {
            NIL => self.tail = id,
            old_head => self.nodes[old_head as usize].prev = id,
        }
        self.head = id;
    }

    /// Walks the list both ways and checks every invariant in the module docs.
    #[cfg(any(test, loom))]
    pub(crate) fn validate(&self) {
        let len = self.nodes.len();
        let mut seen = vec![false; len];
        let (mut cursor, mut prev, mut count) = (self.head, NIL, 0);
        while cursor != NIL {
            let node = &self.nodes[cursor as usize];
            assert!(!seen[cursor as usize], "node {cursor} is on the list twice");
            seen[cursor as usize] = true;
            assert_eq!(node.prev, prev, "node {cursor} has a wrong prev link");
            (prev, cursor, count) = (cursor, node.next, count + 1);
        }
        assert_eq!(self.tail, prev, "tail is not the last node on the list");
        assert_eq!(count, len, "the list does not hold every node of the slab");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn order(slab: &Slab<u32>) -> Vec<u32> {
        slab.iter_mru().copied().collect()
    }

    #[test]
    fn push_touch_remove_keep_recency_order() {
        let mut slab = Slab::new();
        let ids: Vec<NodeId> = (0..4).map(|v| slab.push_front(v)).collect();
        assert_eq!(order(&slab), [3, 2, 1, 0]);
        slab.move_to_front(ids[1]);
        assert_eq!(order(&slab), [1, 3, 2, 0]);
        slab.move_to_front(ids[1]);
        assert_eq!(order(&slab), [1, 3, 2, 0]);
        assert_eq!(slab.lru(), Some(ids[0]));
        let (value, moved) = slab.remove(ids[0]);
        assert_eq!(value, 0);
        assert_eq!(moved, Some(Moved { from: ids[3], to: ids[0] }));
        assert_eq!(order(&slab), [1, 3, 2]);
        slab.validate();
    }

    #[test]
    fn growth_doubles_from_a_minimum() {
        let mut slab = Slab::new();
        slab.push_front(0);
        assert_eq!(slab.nodes.capacity(), MIN_GROWTH);
        for v in 1..=MIN_GROWTH as u32 {
            slab.push_front(v);
        }
        assert_eq!(slab.nodes.capacity(), 2 * MIN_GROWTH);
    }

    #[test]
    fn drain_yields_least_recent_first_and_empties() {
        let mut slab = Slab::new();
        let ids: Vec<NodeId> = (0..5).map(|v| slab.push_front(v)).collect();
        slab.move_to_front(ids[0]);
        assert_eq!(slab.drain_lru_first(), [1, 2, 3, 4, 0]);
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.lru(), None);
        slab.validate();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push,
        Touch(usize),
        Remove(usize),
        Replace(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Push),
            any::<usize>().prop_map(Op::Touch),
            any::<usize>().prop_map(Op::Remove),
            any::<usize>().prop_map(Op::Replace),
        ]
    }

    proptest! {
        /// The slab against a `VecDeque` kept in recency order (most recent at the front).
        #[test]
        fn matches_a_vecdeque(ops in proptest::collection::vec(op(), 0..200)) {
            let mut slab = Slab::new();
            let mut model: VecDeque<u32> = VecDeque::new();
            // Where each value lives in the slab, kept up to date through reported moves.
            let mut where_is: Vec<(u32, NodeId)> = Vec::new();
            let mut next_value = 0;
            for op in ops {
                match op {
                    Op::Push => {
                        let id = slab.push_front(next_value);
                        model.push_front(next_value);
                        where_is.push((next_value, id));
                        next_value += 1;
                    }
                    Op::Touch(i) | Op::Remove(i) | Op::Replace(i) if !where_is.is_empty() => {
                        let k = i % where_is.len();
                        let (value, id) = where_is[k];
                        let pos = model.iter().position(|&v| v == value).unwrap();
                        match op {
                            Op::Touch(_) => {
                                slab.move_to_front(id);
                                model.remove(pos);
                                model.push_front(value);
                            }
                            Op::Replace(_) => {
                                prop_assert_eq!(slab.replace(id, next_value), value);
                                model.remove(pos);
                                model.push_front(next_value);
                                where_is[k].0 = next_value;
                                next_value += 1;
                            }
                            _ => {
                                let (removed, moved) = slab.remove(id);
                                prop_assert_eq!(removed, value);
                                model.remove(pos);
                                where_is.swap_remove(k);
                                if let Some(Moved { from, to }) = moved {
                                    let entry = where_is.iter_mut().find(|(_, id)| *id == from).unwrap();
                                    entry.1 = to;
                                }
                            }
                        }
                    }
                    _ => {}
                }
                slab.validate();
                prop_assert_eq!(order(&slab), Vec::from(model.clone()));
                for &(value, id) in &where_is {
                    prop_assert_eq!(*slab.get(id), value);
                }
            }
        }
    }
}
