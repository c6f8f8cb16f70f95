//! One shard: a strict LRU over its share of the capacity, as plain data.
//!
//! ```text
//!   table: HashTable<NodeId>          slab: Slab<Entry>  (see slab.rs)
//!   ┌────┬────┬────┬────┐             head ─▶ [k2 v2 h2] ◀─▶ [k0 v0 h0] ◀─▶ [k1 v1 h1] ◀─ tail
//!   │ ·  │ 2  │ ·  │ 0  │ ─ indices ─▶         most recent                   least recent
//!   └────┴────┴────┴────┘
//! ```
//!
//! The `Cache` computes each key's hash once, before it locks the shard, and passes it down:
//! every method here takes `hash: u64` and never hashes a key. Each entry stores its hash, so the
//! table grows and re-points entries with `|id| slab[id].hash`, which runs no user code and
//! cannot panic.
//!
//! Rules that keep user code from breaking a shard (guarantees 4 and 7):
//!
//! * The only user code that runs in here is the key's `Eq`/`Borrow`, inside table probes.
//!   Every method runs its probes *before* its first mutation, so a panic in them leaves the
//!   shard untouched. (The caller clones what `get`/`peek` return, still under the lock: after
//!   a `get` has relinked the entry, so a panicking `Clone` leaves it most recent, which breaks
//!   no invariant.)
//! * Nothing is dropped here. Every key or value that leaves the shard is *returned*, and the
//!   caller drops it (or queues it) after releasing the lock.
//! * No locks, atomics or callbacks: those belong to `cache.rs` and `purge.rs`.
//!
//! Invariants, checked by `validate` in tests: the table holds exactly one index per live slab
//! node, under that node's stored hash; and `len() <= share`.

use crate::slab::{Moved, NodeId, Slab};
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::mem;

/// A key, its value and the key's hash, as stored in the slab.
struct Entry<K, V> {
    key: K,
    value: V,
    hash: u64,
}

/// What [`Shard::insert`] did.
pub(crate) enum Inserted<K, V> {
    /// The key was new. If the shard was full, `evicted` is the entry that made room.
    New { evicted: Option<(K, V)> },
    /// The key was present: its value was replaced by the new one. `old` is the old value and
    /// `key` the caller's own copy of the key, which the map did not need.
    Replaced { key: K, old: V },
}

/// One strict LRU shard. See the module docs.
pub(crate) struct Shard<K, V> {
    table: HashTable<NodeId>,
    slab: Slab<Entry<K, V>>,
    /// How many entries this shard may hold: its share of the cache's capacity.
    share: usize,
}

impl<K, V> Shard<K, V> {
    pub(crate) fn new(share: usize) -> Self {
        Self { table: HashTable::new(), slab: Slab::new(), share }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Finds the node holding `key`. The one search behind `get`, `peek`, `contains_key`,
    /// `insert` and `remove`; the stored hash is compared first, so `Eq` runs only on a real
    /// candidate.
    #[inline]
    pub(crate) fn lookup<Q>(&self, hash: u64, key: &Q) -> Option<NodeId>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slab = &self.slab;
        self.table
            .find(hash, |&id| {
                let entry = slab.get(id);
                entry.hash == hash && entry.key.borrow() == key
            })
            .copied()
    }

    /// Looks `key` up and makes it the most recent entry (guarantee 2).
    #[inline]
    pub(crate) fn get<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let id = self.lookup(hash, key)?;
        self.slab.touch(id);
        Some(&self.slab.get(id).value)
    }

    /// Looks `key` up without changing its recency.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.lookup(hash, key).map(|id| &self.slab.get(id).value)
    }

    /// Inserts `key` as the most recent entry, replacing its value if present and otherwise
    /// evicting the victim that [`Shard::select_victim`] names when the shard is full.
    ///
    /// `existing` is `self.lookup(hash, &key)`, made by the caller with no mutation since: the
    /// caller runs the user's `Eq` while it still owns `key` and `value`, so that a panic there
    /// drops them outside the lock. Nothing in here runs user code.
    pub(crate) fn insert(
        &mut self,
        existing: Option<NodeId>,
        hash: u64,
        key: K,
        value: V,
    ) -> Inserted<K, V> {
        if let Some(id) = existing {
            let old = mem::replace(&mut self.slab.get_mut(id).value, value);
            self.slab.touch(id);
            return Inserted::Replaced { key, old };
        }
        let entry = Entry { key, value, hash };
        let (id, evicted) = match self.select_victim(1) {
            // Recycle the victim's node in place: no allocation on the steady-state path.
            Some(victim) => {
                self.unindex(victim);
                let old = self.slab.replace(victim, entry);
                (victim, Some((old.key, old.value)))
            }
            None => (self.slab.push_front(entry, self.share), None),
        };
        let slab = &self.slab;
        self.table.insert_unique(hash, id, |&id| slab.get(id).hash);
        Inserted::New { evicted }
    }

    /// Whether inserting a key whose lookup gave `existing` would evict an entry.
    #[inline]
    pub(crate) fn would_evict(&self, existing: Option<NodeId>) -> bool {
        existing.is_none() && self.select_victim(1).is_some()
    }

    /// Removes `key` and returns its entry (the stored key, the value).
    pub(crate) fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slab = &self.slab;
        let found = self.table.find_entry(hash, |&id| {
            let entry = slab.get(id);
            entry.hash == hash && entry.key.borrow() == key
        });
        let (id, _) = found.ok()?.remove();
        Some(self.remove_node(id))
    }

    /// Chooses the entry to evict so that `incoming` more entries fit, or `None` while the shard
    /// has room. This is the only place that decides what the cache evicts: today a full shard
    /// gives up its own least recently used entry.
    #[inline]
    fn select_victim(&self, incoming: usize) -> Option<NodeId> {
        if self.slab.len() + incoming > self.share { self.slab.lru() } else { None }
    }

    /// Sets this shard's share and removes, least recent first, the entries beyond it.
    pub(crate) fn set_share(&mut self, share: usize) -> Vec<(K, V)> {
        self.share = share;
        let mut evicted = Vec::new();
        while let Some(victim) = self.select_victim(0) {
            self.unindex(victim);
            evicted.push(self.remove_node(victim));
        }
        evicted
    }

    /// Removes every entry, least recent first, and keeps both allocations for reuse.
    pub(crate) fn drain(&mut self) -> Vec<(K, V)> {
        self.table.clear();
        self.slab.drain_lru_first().into_iter().map(|e| (e.key, e.value)).collect()
    }

    /// The entries from most to least recent.
    pub(crate) fn iter_mru(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slab.iter_mru().map(|e| (&e.key, &e.value))
    }

    /// Removes `id`'s index from the table, matching by identity so that no user code runs.
    fn unindex(&mut self, id: NodeId) {
        let hash = self.slab.get(id).hash;
        let found = self.table.find_entry(hash, |&other| other == id);
        found.expect("every live node is indexed under its stored hash").remove();
    }

    /// Removes an already unindexed node from the slab and re-points the node that moved.
    fn remove_node(&mut self, id: NodeId) -> (K, V) {
        let (entry, moved) = self.slab.remove(id);
        if let Some(Moved { from, to }) = moved {
            let hash = self.slab.get(to).hash;
            let index = self.table.find_mut(hash, |&other| other == from);
            *index.expect("every live node is indexed under its stored hash") = to;
        }
        (entry.key, entry.value)
    }

    /// Checks the invariants in the module docs.
    #[cfg(test)]
    pub(crate) fn validate(&self) {
        self.slab.validate();
        assert_eq!(self.table.len(), self.slab.len(), "table and slab disagree on the count");
        for (id, entry) in self.slab.iter_unordered() {
            let hits = self.table.iter_hash(entry.hash).filter(|&&other| other == id).count();
            assert_eq!(hits, 1, "node {id:?} is indexed {hits} times under its hash");
        }
        assert!(self.len() <= self.share, "{} entries over a share of {}", self.len(), self.share);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deliberately weak hash, so that probes meet collisions.
    fn hash(key: u32) -> u64 {
        u64::from(key % 7).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// `lookup` then `insert`, as the cache does.
    fn put(shard: &mut Shard<u32, u32>, key: u32, value: u32) -> Inserted<u32, u32> {
        let existing = shard.lookup(hash(key), &key);
        shard.insert(existing, hash(key), key, value)
    }

    fn keys(shard: &Shard<u32, u32>) -> Vec<u32> {
        shard.iter_mru().map(|(k, _)| *k).collect()
    }

    #[test]
    fn full_shard_evicts_its_least_recent_entry() {
        let mut shard = Shard::new(3);
        for k in 0..3 {
            assert!(matches!(put(&mut shard, k, k * 10), Inserted::New { evicted: None }));
        }
        assert_eq!(shard.get(hash(0), &0), Some(&0));
        match put(&mut shard, 3, 30) {
            Inserted::New { evicted } => assert_eq!(evicted, Some((1, 10))),
            Inserted::Replaced { .. } => panic!("3 was not present"),
        }
        assert_eq!(keys(&shard), [3, 0, 2]);
        shard.validate();
    }

    #[test]
    fn replacing_returns_the_old_value_and_the_spare_key() {
        let mut shard = Shard::new(2);
        put(&mut shard, 1, 10);
        put(&mut shard, 2, 20);
        match put(&mut shard, 1, 11) {
            Inserted::Replaced { key, old } => assert_eq!((key, old), (1, 10)),
            Inserted::New { .. } => panic!("1 was present"),
        }
        assert_eq!(keys(&shard), [1, 2]);
        shard.validate();
    }

    #[test]
    fn peek_does_not_change_recency() {
        let mut shard = Shard::new(2);
        put(&mut shard, 1, 10);
        put(&mut shard, 2, 20);
        assert_eq!(shard.peek(hash(1), &1), Some(&10));
        assert_eq!(keys(&shard), [2, 1]);
    }

    #[test]
    fn shrinking_evicts_least_recent_first() {
        let mut shard = Shard::new(5);
        for k in 0..5 {
            put(&mut shard, k, k);
        }
        shard.get(hash(0), &0);
        assert_eq!(shard.set_share(2), [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(keys(&shard), [0, 4]);
        shard.validate();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Get(u32),
        Peek(u32),
        Insert(u32),
        Remove(u32),
        Share(usize),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..24u32;
        prop_oneof![
            4 => key.clone().prop_map(Op::Get),
            1 => key.clone().prop_map(Op::Peek),
            4 => key.clone().prop_map(Op::Insert),
            2 => key.prop_map(Op::Remove),
            1 => (1..12usize).prop_map(Op::Share),
            1 => Just(Op::Drain),
        ]
    }

    proptest! {
        /// Every operation keeps the table and the slab in step (`validate`), with colliding
        /// hashes and a share that changes under the shard.
        #[test]
        fn invariants_hold_after_every_operation(ops in proptest::collection::vec(op(), 0..300)) {
            let mut shard = Shard::new(6);
            for (step, op) in ops.into_iter().enumerate() {
                let value = step as u32;
                match op {
                    Op::Get(k) => { shard.get(hash(k), &k); }
                    Op::Peek(k) => { shard.peek(hash(k), &k); }
                    Op::Insert(k) => { put(&mut shard, k, value); }
                    Op::Remove(k) => {
                        let present = shard.peek(hash(k), &k).is_some();
                        prop_assert_eq!(shard.remove(hash(k), &k).is_some(), present);
                        prop_assert!(shard.peek(hash(k), &k).is_none());
                    }
                    Op::Share(share) => { shard.set_share(share); }
                    Op::Drain => { shard.drain(); }
                }
                shard.validate();
            }
        }
    }
}
