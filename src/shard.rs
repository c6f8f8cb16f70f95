//! One shard: an exact LRU, as plain data behind the shard's reader-writer lock.
//!
//! ```text
//!   table: HashTable<NodeId>          slab: Slab<Entry>  (see slab.rs)
//!   ┌────┬────┬────┬────┐             head ─▶ [k2 v2 h2 w2] ◀─▶ [k0 v0 h0 w0] ◀─▶ [k1 …] ◀─ tail
//!   │ ·  │ 2  │ ·  │ 0  │ ─ indices ─▶         most recent                        least recent
//!   └────┴────┴────┴────┘             touches: clock, drained, log of touched nodes (recency.rs)
//! ```
//!
//! The `Cache` computes each key's hash once, before it locks the shard, and passes it down:
//! every method here takes `hash: u64` and never hashes a key. Each entry stores its hash, so the
//! table grows and re-points entries with `|id| slab[id].hash`, which runs no user code and
//! cannot panic. Each entry also stores its weight, computed by the cache before the lock.
//!
//! Two modes, as the lock is held:
//!
//! * **Read mode** (`&self`): `lookup`, `peek`, and `get_shared`, which records its touch with
//!   read-modify-writes (`recency.rs`) instead of moving the node, so hits run at once.
//! * **Write mode** (`&mut self`): `get_exclusive`, which records with plain stores, and
//!   everything that reads or changes the recency order. Each such method drains the recorded
//!   touches first (one load when there are none), so the list is the exact order of last use
//!   when it is read or changed.
//!
//! The shard has no capacity of its own: the cache counts weight over all shards and tells a
//! shard what to evict ([`Shard::lru`], [`Shard::evict_lru`]).
//!
//! Rules that keep user code from breaking a shard (guarantees 4 and 7):
//!
//! * The only user code that runs in here is the key's `Eq`/`Borrow`, inside table probes.
//!   Every method runs its probes *before* its first mutation, so a panic in them leaves the
//!   shard untouched. (The caller clones what `get`/`peek` return, still under the lock: after
//!   a `get` has stamped the entry, so a panicking `Clone` leaves it most recent, which breaks
//!   no invariant.)
//! * Nothing is dropped here. Every key or value that leaves the shard is *returned*, and the
//!   caller drops it (or queues it) after releasing the lock.
//! * No locks or callbacks: those belong to `cache.rs` and `purge.rs`.
//!
//! Invariants, checked by `validate` in tests: the table holds exactly one index per live slab
//! node, under that node's stored hash; `weight` is the sum of the entries' weights; and those
//! of `recency.rs` (the log agrees with the stamps; after a drain, stamps strictly decrease from
//! head to tail). Beside the entries, the shard keeps the records of loads in flight
//! (`load.rs`): never one for a key it holds.

use crate::load::Load;
use crate::recency::Touches;
use crate::slab::{Moved, NodeId, Slab};
use crate::sync::Ordering::Relaxed;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::mem;
use std::sync::Arc;

/// A key, its value, the key's hash and the entry's weight, as stored in the slab: `repr(C)`,
/// in the order a hit reads them (see `slab.rs`'s `Node`).
#[repr(C)]
struct Entry<K, V> {
    hash: u64,
    key: K,
    value: V,
    weight: u64,
}

/// An entry that left the shard: its key, its value, its weight and its key's hash.
pub(crate) type Removed<K, V> = (K, V, u64, u64);

/// The stamp [`Shard::tail_stamp`] reports for an empty shard: never the oldest.
pub(crate) const EMPTY: u64 = u64::MAX;

/// One exact LRU shard. See the module docs.
///
/// `repr(C)`, `touches` first, for the layout `LockedShard` in `cache.rs` describes.
#[repr(C)]
pub(crate) struct Shard<K, V> {
    touches: Touches,
    table: HashTable<NodeId>,
    slab: Slab<Entry<K, V>>,
    /// The total weight of the entries.
    weight: u64,
    /// The loads in flight for keys of this shard (`load.rs`): never for a key the shard holds.
    loading: HashTable<Record<K, V>>,
}

/// A load in flight: its key's hash, a clone of its key, and what its waiters wait on.
pub(crate) struct Record<K, V> {
    hash: u64,
    key: K,
    load: Arc<Load<V>>,
}

impl<K, V> Shard<K, V> {
    /// An empty shard; `across_shards`: whether its stamps are compared with other shards'
    /// (see `recency.rs`).
    pub(crate) fn new(across_shards: bool) -> Self {
        let touches = Touches::new(across_shards);
        Self {
            table: HashTable::new(),
            slab: Slab::new(),
            touches,
            weight: 0,
            loading: HashTable::new(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// The total weight of the entries.
    #[inline]
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// Finds the node holding `key`. The one search behind every keyed call; the stored hash is
    /// compared first, so `Eq` runs only on a real candidate. Either mode.
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

    /// Looks `key` up and records the hit (guarantee 2), holding the lock in write mode.
    #[inline]
    pub(crate) fn get_exclusive<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let id = self.lookup(hash, key)?;
        let Shard { slab, touches, .. } = self;
        touches.touch_exclusive(slab, id);
        Some(&self.slab.get(id).value)
    }

    /// Looks `key` up and records the hit (guarantee 2), holding the lock in read mode. The flag
    /// says whether the shard should drain once it can (see `recency.rs`).
    #[inline]
    pub(crate) fn get_shared<Q>(&self, hash: u64, key: &Q) -> Option<(&V, bool)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let id = self.lookup(hash, key)?;
        let drain_due = self.touches.touch_shared(&self.slab, id);
        Some((&self.slab.get(id).value, drain_due))
    }

    /// Looks `key` up without changing its recency. Either mode.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.lookup(hash, key).map(|id| &self.slab.get(id).value)
    }

    /// Applies every recorded touch to the list (write mode). Every method below that reads or
    /// changes the order has it done first.
    #[inline]
    pub(crate) fn drain(&mut self) {
        let Shard { slab, touches, .. } = self;
        touches.drain(slab);
    }

    /// The weight of the entry at `id`.
    #[inline]
    pub(crate) fn weight_of(&self, id: NodeId) -> u64 {
        self.slab.get(id).weight
    }

    /// Replaces the value at `id` (found by `lookup` for the caller's `key`) and makes it the
    /// most recent entry. Returns the caller's `key`, which the map does not need, the old value
    /// and its weight. Runs no user code.
    pub(crate) fn replace(&mut self, id: NodeId, key: K, value: V, weight: u64) -> Removed<K, V> {
        self.drain();
        let entry = self.slab.get_mut(id);
        let entry_hash = entry.hash;
        let old = mem::replace(&mut entry.value, value);
        let old_weight = mem::replace(&mut entry.weight, weight);
        self.weight = self.weight - old_weight + weight;
        self.slab.move_to_front(id);
        self.touches.stamp_written(&self.slab, id);
        (key, old, old_weight, entry_hash)
    }

    /// Inserts a key that `lookup` did not find as the most recent entry. Runs no user code.
    pub(crate) fn insert(&mut self, hash: u64, key: K, value: V, weight: u64) {
        self.drain();
        let id = self.slab.push_front(Entry { key, value, hash, weight });
        self.index(hash, id);
        self.weight += weight;
        self.touches.stamp_written(&self.slab, id);
    }

    /// Inserts a key that `lookup` did not find in the place of the least recent entry, which it
    /// returns: the node is recycled, so a full cache's steady state allocates nothing. `None`
    /// if the shard is empty. Runs no user code.
    pub(crate) fn insert_evicting(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
    ) -> Option<Removed<K, V>> {
        let victim = self.lru()?;
        self.unindex(victim);
        let old = self.slab.replace(victim, Entry { key, value, hash, weight });
        self.index(hash, victim);
        self.weight = self.weight - old.weight + weight;
        self.touches.stamp_written(&self.slab, victim);
        Some((old.key, old.value, old.weight, old.hash))
    }

    /// The least recent entry, after a drain; `None` if the shard is empty.
    #[inline]
    pub(crate) fn lru(&mut self) -> Option<NodeId> {
        self.drain();
        self.slab.lru()
    }

    /// The weight of the least recent entry, after a drain; `None` if the shard is empty.
    #[inline]
    pub(crate) fn lru_weight(&mut self) -> Option<u64> {
        self.lru().map(|id| self.slab.get(id).weight)
    }

    /// The stamp of the least recent entry after a drain, or [`EMPTY`]: what the shard
    /// publishes for choosing a victim across shards.
    #[inline]
    pub(crate) fn tail_stamp(&mut self) -> u64 {
        self.tail_stamp_except(None)
    }

    /// The least recent entry but `keep` (the entry a replacement is about to overwrite, which
    /// is no candidate), after a drain.
    fn lru_except(&mut self, keep: Option<NodeId>) -> Option<NodeId> {
        let victim = self.lru()?;
        if Some(victim) == keep { self.slab.more_recent(victim) } else { Some(victim) }
    }

    /// [`Shard::tail_stamp`] with `keep` aside, as [`Shard::lru_except`] chooses.
    pub(crate) fn tail_stamp_except(&mut self, keep: Option<NodeId>) -> u64 {
        match self.lru_except(keep) {
            Some(id) => self.slab.stamp(id).load(Relaxed),
            None => EMPTY,
        }
    }

    /// Removes the least recent entry, `keep` aside, and re-points `keep` if the removal moved
    /// its node, so the caller needs no second lookup (no user code after a change). `None` if
    /// no other entry is left.
    pub(crate) fn evict_lru(&mut self, keep: &mut Option<NodeId>) -> Option<Removed<K, V>> {
        let victim = self.lru_except(*keep)?;
        self.unindex(victim);
        let (removed, moved) = self.remove_node(victim);
        if let Some(Moved { from, to }) = moved {
            if *keep == Some(from) {
                *keep = Some(to);
            }
        }
        Some(removed)
    }

    /// Removes `key` and returns its entry (the stored key, the value, the weight).
    pub(crate) fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<Removed<K, V>>
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
        self.drain();
        Some(self.remove_node(id).0)
    }

    /// Removes every entry, least recent first, and keeps both allocations for reuse.
    pub(crate) fn take_all(&mut self) -> Vec<Removed<K, V>> {
        self.drain();
        self.table.clear();
        self.weight = 0;
        let entries = self.slab.drain_lru_first();
        entries.into_iter().map(|e| (e.key, e.value, e.weight, e.hash)).collect()
    }

    /// Removes the entries for which `keep` returns `false`. `keep` (user
    /// code) sees every entry before anything changes, so if it panics, nothing is removed.
    pub(crate) fn remove_unless(
        &mut self,
        keep: &mut impl FnMut(&K, &V) -> bool,
    ) -> Vec<Removed<K, V>> {
        self.drain();
        let doomed: Vec<NodeId> = self
            .slab
            .ids()
            .filter(|&id| {
                let entry = self.slab.get(id);
                !keep(&entry.key, &entry.value)
            })
            .collect();
        // Highest index first: a removal moves only the last node, which is then never one
        // still to remove (those all have lower indices).
        doomed
            .into_iter()
            .rev()
            .map(|id| {
                self.unindex(id);
                self.remove_node(id).0
            })
            .collect()
    }

    /// The entries from most to least recent, after a drain.
    pub(crate) fn iter_mru(&mut self) -> impl Iterator<Item = (&K, &V)> {
        self.drain();
        self.slab.iter_mru().map(|e| (&e.key, &e.value))
    }

    /// Records the hit on the node at `id` (found by `lookup`) and returns its value.
    pub(crate) fn touch(&mut self, id: NodeId) -> &V {
        let Shard { slab, touches, .. } = self;
        touches.touch_exclusive(slab, id);
        &self.slab.get(id).value
    }

    /// The load in flight for `key`, if any. `key` is absent from the shard.
    pub(crate) fn find_load<Q>(&self, hash: u64, key: &Q) -> Option<&Arc<Load<V>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.loading.is_empty() {
            return None;
        }
        let found =
            self.loading.find(hash, |record| record.hash == hash && record.key.borrow() == key);
        found.map(|record| &record.load)
    }

    /// Whether any load is in flight for a key of this shard.
    #[inline]
    pub(crate) fn has_loads(&self) -> bool {
        !self.loading.is_empty()
    }

    /// Records a load of `key`, which is neither in the shard nor being loaded.
    pub(crate) fn start_load(&mut self, hash: u64, key: K, load: Arc<Load<V>>) {
        self.loading.insert_unique(hash, Record { hash, key, load }, |record| record.hash);
    }

    /// Whether `load`'s record is still in the shard (not superseded). Runs no user code.
    pub(crate) fn holds_load(&self, hash: u64, load: &Arc<Load<V>>) -> bool {
        self.loading.find(hash, |record| Arc::ptr_eq(&record.load, load)).is_some()
    }

    /// Takes `load`'s record out, if it is still in the shard. Runs no user code.
    pub(crate) fn forget_load(&mut self, hash: u64, load: &Arc<Load<V>>) -> Option<Record<K, V>> {
        let found = self.loading.find_entry(hash, |record| Arc::ptr_eq(&record.load, load));
        found.ok().map(|entry| entry.remove().0)
    }

    /// Takes the record of a load of `key` out, if there is one: `key` is about to be inserted
    /// or was removed, which supersedes the load (`load.rs`). The probe runs `Eq`: callers
    /// call this before they change anything else.
    pub(crate) fn supersede_load<Q>(&mut self, hash: u64, key: &Q) -> Option<Record<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.loading.is_empty() {
            return None;
        }
        let found = self
            .loading
            .find_entry(hash, |record| record.hash == hash && record.key.borrow() == key);
        found.ok().map(|entry| entry.remove().0)
    }

    /// Takes every record out: `clear` supersedes every load.
    pub(crate) fn supersede_all_loads(&mut self) -> Vec<Record<K, V>> {
        self.loading.drain().collect()
    }

    /// Indexes `id` under `hash`; the caller has established that its key is absent.
    fn index(&mut self, hash: u64, id: NodeId) {
        let slab = &self.slab;
        self.table.insert_unique(hash, id, |&id| slab.get(id).hash);
    }

    /// Removes `id`'s index from the table, matching by identity so that no user code runs.
    fn unindex(&mut self, id: NodeId) {
        let hash = self.slab.get(id).hash;
        let found = self.table.find_entry(hash, |&other| other == id);
        found.expect("every live node is indexed under its stored hash").remove();
    }

    /// Removes an already unindexed node from the slab and re-points the table at the node that
    /// moved, which it reports. The touches are drained, so no record outside the slab names a
    /// node index.
    fn remove_node(&mut self, id: NodeId) -> (Removed<K, V>, Option<Moved>) {
        debug_assert!(self.touches.is_drained(), "a node is removed with touches undrained");
        let (entry, moved) = self.slab.remove(id);
        if let Some(Moved { from, to }) = moved {
            let hash = self.slab.get(to).hash;
            let index = self.table.find_mut(hash, |&other| other == from);
            *index.expect("every live node is indexed under its stored hash") = to;
        }
        self.weight -= entry.weight;
        ((entry.key, entry.value, entry.weight, entry.hash), moved)
    }

    /// Checks the invariants in the module docs (and `recency.rs`'s), with no reader running.
    #[cfg(any(test, loom))]
    pub(crate) fn validate(&self) {
        self.slab.validate();
        self.touches.validate(&self.slab);
        assert_eq!(self.table.len(), self.slab.len(), "table and slab disagree on the count");
        let mut weight = 0;
        for id in self.slab.ids() {
            let entry = self.slab.get(id);
            let hits = self.table.iter_hash(entry.hash).filter(|&&other| other == id).count();
            assert_eq!(hits, 1, "node {id:?} is indexed {hits} times under its hash");
            weight += entry.weight;
        }
        assert_eq!(weight, self.weight, "the shard's weight is not the sum of its entries'");
        // By hash (`validate` has no `Eq`): tests use keys whose hashes differ.
        for record in &self.loading {
            let held = self.slab.ids().any(|id| self.slab.get(id).hash == record.hash);
            assert!(!held, "a load is recorded for a key the shard holds");
        }
        if self.touches.is_drained() {
            let stamps: Vec<u64> =
                self.slab.ids_mru().map(|id| self.slab.stamp(id).load(Relaxed)).collect();
            assert!(
                stamps.windows(2).all(|pair| pair[0] > pair[1]),
                "after a drain, stamps strictly decrease from head to tail: {stamps:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recency::LOG_MAX;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// A deliberately weak hash, so that probes meet collisions.
    fn hash(key: u32) -> u64 {
        u64::from(key % 7).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// `lookup` then `replace` or `insert`, as the cache does; returns the old value.
    fn put(shard: &mut Shard<u32, u32>, key: u32, value: u32) -> Option<u32> {
        match shard.lookup(hash(key), &key) {
            Some(id) => Some(shard.replace(id, key, value, 1).1),
            None => {
                shard.insert(hash(key), key, value, 1);
                None
            }
        }
    }

    fn get(shard: &Shard<u32, u32>, key: u32) -> Option<u32> {
        shard.get_shared(hash(key), &key).map(|(value, _)| *value)
    }

    fn keys(shard: &mut Shard<u32, u32>) -> Vec<u32> {
        shard.iter_mru().map(|(k, _)| *k).collect()
    }

    #[test]
    fn hits_in_read_mode_set_the_order_of_the_next_eviction() {
        let mut shard = Shard::new(true);
        for k in 0..4 {
            put(&mut shard, k, k * 10);
        }
        // Hits through `&Shard`, as under the read lock: nothing moves yet.
        assert_eq!(get(&shard, 1), Some(10));
        assert_eq!(get(&shard, 0), Some(0));
        assert_eq!(get(&shard, 1), Some(10), "a second touch of 1 is not logged again");
        shard.validate();
        assert_eq!(shard.evict_lru(&mut None), Some((2, 20, 1, hash(2))));
        assert_eq!(keys(&mut shard), [1, 0, 3]);
        shard.validate();
    }

    #[test]
    fn hits_in_write_mode_record_the_same_order() {
        let mut shard = Shard::new(true);
        for k in 0..4 {
            put(&mut shard, k, k * 10);
        }
        assert_eq!(shard.get_exclusive(hash(1), &1), Some(&10));
        assert_eq!(get(&shard, 0), Some(0), "modes mix: a read-mode hit after a write-mode one");
        assert_eq!(shard.get_exclusive(hash(1), &1), Some(&10));
        shard.validate();
        assert_eq!(keys(&mut shard), [1, 0, 3, 2]);
        shard.validate();
    }

    #[test]
    fn replacing_returns_the_old_value_and_the_spare_key() {
        let mut shard = Shard::new(true);
        put(&mut shard, 1, 10);
        put(&mut shard, 2, 20);
        let id = shard.lookup(hash(1), &1).unwrap();
        assert_eq!(shard.replace(id, 1, 11, 5), (1, 10, 1, hash(1)));
        assert_eq!(shard.weight(), 6);
        assert_eq!(keys(&mut shard), [1, 2]);
        shard.validate();
    }

    #[test]
    fn peek_does_not_change_recency() {
        let mut shard = Shard::new(true);
        put(&mut shard, 1, 10);
        put(&mut shard, 2, 20);
        assert_eq!(shard.peek(hash(1), &1), Some(&10));
        assert_eq!(keys(&mut shard), [2, 1]);
    }

    #[test]
    fn an_insert_in_place_of_the_least_recent_entry_recycles_its_node() {
        let mut shard = Shard::new(true);
        for k in 0..3 {
            put(&mut shard, k, k);
        }
        get(&shard, 0);
        assert_eq!(shard.insert_evicting(hash(9), 9, 90, 2), Some((1, 1, 1, hash(1))));
        assert_eq!(keys(&mut shard), [9, 0, 2]);
        assert_eq!((shard.len(), shard.weight()), (3, 4));
        shard.validate();
    }

    #[test]
    fn the_replaced_entry_is_never_its_own_victim() {
        let mut shard = Shard::new(true);
        put(&mut shard, 1, 1);
        let mut id = shard.lookup(hash(1), &1);
        assert!(shard.evict_lru(&mut id).is_none(), "the only entry is the one kept");
        put(&mut shard, 2, 2);
        let mut id = shard.lookup(hash(1), &1);
        assert_eq!(shard.evict_lru(&mut id).map(|(k, ..)| k), Some(2));
    }

    /// An eviction that moves the kept entry's node (the last one fills the victim's place)
    /// re-points the caller's id, so that it never has to look the key up again.
    #[test]
    fn the_kept_entry_is_followed_when_its_node_moves() {
        let mut shard = Shard::new(true);
        for key in [2, 3, 1] {
            put(&mut shard, key, key); // nodes 0, 1, 2; key 1 holds the last node
        }
        let mut kept = shard.lookup(hash(1), &1);
        assert_eq!(shard.evict_lru(&mut kept).map(|(k, ..)| k), Some(2));
        assert_eq!(kept, shard.lookup(hash(1), &1), "key 1's node moved into key 2's place");
        assert_eq!(shard.evict_lru(&mut kept).map(|(k, ..)| k), Some(3));
        assert_eq!(kept, shard.lookup(hash(1), &1));
        assert!(shard.evict_lru(&mut kept).is_none());
        shard.validate();
    }

    #[test]
    fn a_shard_larger_than_the_log_keeps_exact_order() {
        let mut shard = Shard::new(true);
        let n = LOG_MAX as u32 + 100;
        for k in 0..n {
            put(&mut shard, k, k);
        }
        // Touch every key but 0, newest last, half in each mode: the log fills (read mode
        // leaves the drain to the next write; write mode drains at once).
        for k in (1..n).rev() {
            if k % 2 == 0 {
                get(&shard, k);
            } else {
                shard.get_exclusive(hash(k), &k);
            }
        }
        shard.validate();
        assert_eq!(shard.evict_lru(&mut None).map(|(k, ..)| k), Some(0));
        let expected: Vec<u32> = (1..n).collect();
        assert_eq!(keys(&mut shard), expected);
        shard.validate();
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// `get` of each key, in order: a run of hits between writes.
        Gets(Vec<u32>),
        Peek(u32),
        Insert(u32),
        Remove(u32),
        EvictLru,
        TakeAll,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..40u32;
        prop_oneof![
            4 => proptest::collection::vec(key.clone(), 0..60).prop_map(Op::Gets),
            1 => key.clone().prop_map(Op::Peek),
            4 => key.clone().prop_map(Op::Insert),
            2 => key.prop_map(Op::Remove),
            2 => Just(Op::EvictLru),
            1 => Just(Op::TakeAll),
        ]
    }

    proptest! {
        /// The shard against a `VecDeque` kept in order of last use (most recent in front),
        /// with long runs of hits recorded in either lock mode between writes, so that drains of
        /// many touches are compared with the exact order; the invariants (`validate`) hold
        /// after every operation.
        #[test]
        fn read_mode_hits_keep_the_shard_an_exact_lru(
            ops in proptest::collection::vec(op(), 0..120),
        ) {
            let mut shard = Shard::new(true);
            let mut model: VecDeque<u32> = VecDeque::new();
            let to_front = |model: &mut VecDeque<u32>, k: u32| {
                if let Some(pos) = model.iter().position(|&m| m == k) {
                    model.remove(pos);
                }
                model.push_front(k);
            };
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Gets(keys) => {
                        for k in keys {
                            let present = model.contains(&k);
                            let found = if k % 3 == 0 {
                                shard.get_exclusive(hash(k), &k).is_some()
                            } else {
                                get(&shard, k).is_some()
                            };
                            prop_assert_eq!(found, present);
                            if present {
                                to_front(&mut model, k);
                            }
                        }
                    }
                    Op::Peek(k) => {
                        prop_assert_eq!(shard.peek(hash(k), &k).is_some(), model.contains(&k));
                    }
                    Op::Insert(k) => {
                        put(&mut shard, k, step as u32);
                        to_front(&mut model, k);
                    }
                    Op::Remove(k) => {
                        let present = model.contains(&k);
                        prop_assert_eq!(shard.remove(hash(k), &k).is_some(), present);
                        model.retain(|&m| m != k);
                    }
                    Op::EvictLru => {
                        let evicted = shard.evict_lru(&mut None).map(|(k, ..)| k);
                        prop_assert_eq!(evicted, model.pop_back());
                    }
                    Op::TakeAll => {
                        let taken: Vec<u32> = shard.take_all().into_iter().map(|(k, ..)| k).collect();
                        let expected: Vec<u32> = model.drain(..).rev().collect();
                        prop_assert_eq!(taken, expected, "least recent first");
                    }
                }
                shard.validate();
                prop_assert_eq!(shard.weight(), model.len() as u64);
            }
            prop_assert_eq!(keys(&mut shard), Vec::from(model));
        }
    }
}
