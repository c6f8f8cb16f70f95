//! Model-based tests (guarantees 1, 2 and 3, single-threaded): random sequences of `get`, `peek`,
//! `contains_key`, `insert`, `remove`, `clear` and `resize`, with long runs of hits between
//! writes, run against the cache and against a naive reference LRU (a `VecDeque` in order of
//! last use, memchr's "naive oracle" style) that holds the whole cache's entries. After every
//! step they must agree exactly on return values, contents and recency order (`snapshot`),
//! lengths and weights, per-shard statistics, and the evictions handed to the callback, in
//! order and with their cause.
//!
//! * Under [`EvictionScope::Global`] the cache is one exact LRU over all its shards: every
//!   eviction takes the least recently used entry of the whole cache, as the oracle does.
//! * Under [`EvictionScope::Shard`] an insert into a full cache evicts its own shard's least
//!   recent entry (the fullest shard's, if its own is empty); the oracle does the same, from the
//!   same global order.
//! * With a weigher (weights 1 to 1,000, from the value), the capacity counts weight: the weight
//!   never passes it after a call, an insert evicts least recent entries until its entry fits
//!   (a replacement's own entry aside), and an entry heavier than the capacity goes to the
//!   callback as [`RemovalCause::TooHeavy`] with the key's old value handed back.
//!
//! Hits are recorded, not applied (`src/recency.rs`), so every write drains them first: the runs
//! of hits make those drains long, and the comparison exact.
//!
//! The key-to-shard mapping is internal, so the tests discover it through the public API: with
//! a fixed hasher, each key is inserted alone into a fresh probe cache of the same shape and the
//! shard whose `len` became 1 is the key's shard.

mod support;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shardlru::{Cache, Evicted, EvictionScope, RemovalCause};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One operation of a random sequence. `Insert`'s value is not generated: the harness gives
/// every insert a fresh value, so that a value showing up in the wrong place cannot go unseen.
#[derive(Clone, Debug)]
enum Op {
    /// A run of `get`s, each recorded as a touch until the next write drains them.
    Gets(Vec<u32>),
    Peek(u32),
    ContainsKey(u32),
    Insert(u32),
    Remove(u32),
    Clear,
    Resize(usize),
}

/// Operations on keys `0..keys`, resizing to capacities in `resize`.
fn op(keys: u32, resize: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..keys).prop_map(Op::Insert),
        4 => vec(0..keys, 1..40).prop_map(Op::Gets),
        2 => (0..keys).prop_map(Op::Peek),
        1 => (0..keys).prop_map(Op::ContainsKey),
        2 => (0..keys).prop_map(Op::Remove),
        1 => Just(Op::Clear),
        1 => resize.prop_map(Op::Resize),
    ]
}

/// Fixed seed: the same cases on every run and every machine.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_1e55),
        failure_persistence: None,
        ..Config::default()
    }
}

type Eviction = (u32, u32, RemovalCause);

/// What the oracle counts per shard, as `ShardStats` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    hits: u64,
    misses: u64,
    inserts: u64,
    /// Capacity and shrink evictions (not `clear`), counted on the victim's shard.
    evictions: u64,
}

/// An entry's weight, from its value: 1 without a weigher, 1 to 1,000 with one.
type Weigh = fn(u32) -> u64;

fn unweighted(_: u32) -> u64 {
    1
}

fn weighted(value: u32) -> u64 {
    u64::from(value.wrapping_mul(2_654_435_761) % 1_000 + 1)
}

/// The oracle: the whole cache's entries, most recent first, and the rule that picks a victim.
struct Model {
    capacity: usize,
    scope: EvictionScope,
    weigh: Weigh,
    entries: VecDeque<(u32, u32)>,
    /// The shard of each key, as discovered by [`discover_shards`].
    shard_of: Vec<usize>,
    counts: Vec<Counts>,
}

impl Model {
    fn new(
        capacity: usize,
        scope: EvictionScope,
        weigh: Weigh,
        shard_of: Vec<usize>,
        shards: usize,
    ) -> Self {
        let counts = vec![Counts::default(); shards];
        Self { capacity, scope, weigh, entries: VecDeque::new(), shard_of, counts }
    }

    fn weight(&self) -> u64 {
        self.entries.iter().map(|&(_, v)| (self.weigh)(v)).sum()
    }

    fn shard(&self, key: u32) -> usize {
        self.shard_of[key as usize]
    }

    fn position(&self, key: u32) -> Option<usize> {
        self.entries.iter().position(|&(k, _)| k == key)
    }

    fn get(&mut self, key: u32) -> Option<u32> {
        let shard = self.shard(key);
        let Some(at) = self.position(key) else {
            self.counts[shard].misses += 1;
            return None;
        };
        self.counts[shard].hits += 1;
        let entry = self.entries.remove(at).unwrap();
        self.entries.push_front(entry);
        Some(entry.1)
    }

    fn peek(&self, key: u32) -> Option<u32> {
        self.position(key).map(|at| self.entries[at].1)
    }

    /// The position of the entry to evict to make room for an insert of `key` into `shard`;
    /// `key`'s own entry is no candidate.
    fn victim(&self, shard: usize, key: u32) -> usize {
        let candidate = |&(k, _): &(u32, u32)| k != key;
        let last_in = |shard: usize| {
            self.entries.iter().rposition(|entry| candidate(entry) && self.shard(entry.0) == shard)
        };
        match self.scope {
            EvictionScope::Shard => last_in(shard).unwrap_or_else(|| {
                // Its own shard has no candidate: the fullest shard, the last of equals
                // (`max_by_key`), by length.
                let len =
                    |s: usize| self.entries.iter().filter(|&&(k, _)| self.shard(k) == s).count();
                let fullest = (0..self.counts.len()).max_by_key(|&s| len(s)).unwrap();
                last_in(fullest).unwrap()
            }),
            _ => self.entries.iter().rposition(candidate).unwrap(),
        }
    }

    fn insert(&mut self, key: u32, value: u32, evicted: &mut Vec<Eviction>) -> Option<u32> {
        let shard = self.shard(key);
        let weight = (self.weigh)(value);
        if weight > self.capacity as u64 {
            let old = self.remove(key);
            evicted.push((key, value, RemovalCause::TooHeavy));
            return old;
        }
        self.counts[shard].inserts += 1;
        let old_weight = self.position(key).map_or(0, |at| (self.weigh)(self.entries[at].1));
        while self.weight() - old_weight + weight > self.capacity as u64 {
            let (k, v) = self.entries.remove(self.victim(shard, key)).unwrap();
            let victim_shard = self.shard(k);
            self.counts[victim_shard].evictions += 1;
            evicted.push((k, v, RemovalCause::Capacity));
        }
        let old = self.remove(key);
        self.entries.push_front((key, value));
        old
    }

    fn remove(&mut self, key: u32) -> Option<u32> {
        self.position(key).map(|at| self.entries.remove(at).unwrap().1)
    }

    /// Shards in order, each from its least recent entry, as `clear` delivers them.
    fn clear(&mut self, evicted: &mut Vec<Eviction>) {
        for shard in 0..self.counts.len() {
            for &(k, v) in self.entries.iter().rev().filter(|&&(k, _)| self.shard(k) == shard) {
                evicted.push((k, v, RemovalCause::Clear));
            }
        }
        self.entries.clear();
    }

    /// Evicts least recent entries until the rest fit. A shrink compares shards by their least
    /// recent entries under every scope but `Shard`, where it takes the fullest shard's.
    fn resize(&mut self, capacity: usize, evicted: &mut Vec<Eviction>) {
        self.capacity = capacity;
        while self.weight() > capacity as u64 {
            let at = match self.scope {
                EvictionScope::Shard => self.victim(usize::MAX, u32::MAX),
                _ => self.entries.len() - 1,
            };
            let (k, v) = self.entries.remove(at).unwrap();
            let victim_shard = self.shard(k);
            self.counts[victim_shard].evictions += 1;
            evicted.push((k, v, RemovalCause::Shrink));
        }
    }

    /// Shards in order, each from its most to its least recent entry, as `snapshot` lists them.
    fn snapshot(&self) -> Vec<(u32, u32)> {
        (0..self.counts.len())
            .flat_map(|shard| {
                self.entries.iter().copied().filter(move |&(k, _)| self.shard(k) == shard)
            })
            .collect()
    }

    fn len_of(&self, shard: usize) -> usize {
        self.entries.iter().filter(|&&(k, _)| self.shard(k) == shard).count()
    }

    fn weight_of(&self, shard: usize) -> u64 {
        let in_shard = |&&(k, _): &&(u32, u32)| self.shard(k) == shard;
        self.entries.iter().filter(in_shard).map(|&(_, v)| (self.weigh)(v)).sum()
    }
}

/// Finds each key's shard through the public API: a fresh probe cache of the same shape and
/// hasher per key, holding only that key; the shard whose `len` is 1 is the key's.
fn discover_shards(keys: u32, capacity: usize, shards: usize) -> Vec<usize> {
    (0..keys)
        .map(|key| {
            let probe = Cache::<u32, u32>::builder()
                .hasher(support::fixed_hasher())
                .capacity(capacity)
                .shards(shards)
                .build()
                .unwrap();
            probe.insert(key, 0);
            let lens: Vec<usize> = probe.shard_stats().iter().map(|s| s.len).collect();
            assert_eq!(lens.iter().sum::<usize>(), 1, "probe for key {key}: {lens:?}");
            lens.iter().position(|&len| len == 1).unwrap()
        })
        .collect()
}

/// Runs `ops` against a cache of `capacity` over `shards` under `scope` (weighing entries by
/// `weigh`) and against the model, comparing everything observable after every step.
fn check_against_model(
    keys: u32,
    capacity: usize,
    shards: usize,
    scope: EvictionScope,
    weigh: Weigh,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let shard_of = discover_shards(keys, capacity, shards);
    if shards > 1 {
        // Otherwise the test would not be testing shards at all.
        let used = (0..shards).filter(|i| shard_of.contains(i)).count();
        prop_assert_eq!(used, shards, "every shard gets some key: {:?}", shard_of);
    }
    let log: Arc<Mutex<Vec<Eviction>>> = Arc::default();
    let sink = Arc::clone(&log);
    let cache = Cache::<u32, u32>::builder()
        .hasher(support::fixed_hasher())
        .capacity(capacity)
        .shards(shards)
        .eviction_scope(scope)
        .weigher(move |_key, &value| weigh(value))
        .on_evict(move |_cache, Evicted { key, value, cause, .. }| {
            sink.lock().unwrap().push((key, value, cause));
        })
        .build()
        .unwrap();
    let mut model = Model::new(capacity, scope, weigh, shard_of, shards);

    for (step, op) in ops.iter().enumerate() {
        let value = step as u32;
        let mut expected_evictions = Vec::new();
        match op {
            Op::Gets(keys) => {
                for &key in keys {
                    prop_assert_eq!(
                        cache.get(&key),
                        model.get(key),
                        "get({}) at step {}",
                        key,
                        step
                    );
                }
            }
            &Op::Peek(key) => prop_assert_eq!(cache.peek(&key), model.peek(key)),
            &Op::ContainsKey(key) => {
                prop_assert_eq!(cache.contains_key(&key), model.peek(key).is_some())
            }
            &Op::Insert(key) => prop_assert_eq!(
                cache.insert(key, value),
                model.insert(key, value, &mut expected_evictions)
            ),
            &Op::Remove(key) => prop_assert_eq!(cache.remove(&key), model.remove(key)),
            Op::Clear => {
                cache.clear();
                model.clear(&mut expected_evictions);
            }
            &Op::Resize(capacity) => {
                prop_assert_eq!(cache.resize(capacity), Ok(()));
                model.resize(capacity, &mut expected_evictions);
            }
        }

        // With a callback, every mutating call purges before returning, single-threaded
        // nothing stops it, and these batches are far below one purge's bound.
        prop_assert_eq!(cache.queued(), 0, "step {}: {:?}", step, op);
        let evictions = std::mem::take(&mut *log.lock().unwrap());
        prop_assert_eq!(evictions, expected_evictions, "evictions at step {}: {:?}", step, op);
        prop_assert_eq!(cache.snapshot(), model.snapshot(), "step {}: {:?}", step, op);
        prop_assert_eq!(cache.len(), model.entries.len());
        prop_assert_eq!(cache.weight(), model.weight());
        prop_assert!(cache.weight() <= cache.capacity() as u64);
        prop_assert_eq!(cache.capacity(), model.capacity);

        let shard_stats = cache.shard_stats();
        prop_assert_eq!(shard_stats.len(), shards);
        for (i, got) in shard_stats.iter().enumerate() {
            let want = model.counts[i];
            let got_counts = Counts {
                hits: got.hits,
                misses: got.misses,
                inserts: got.inserts,
                evictions: got.evictions,
            };
            prop_assert_eq!((got.len, got.weight), (model.len_of(i), model.weight_of(i)));
            prop_assert_eq!(got_counts, want, "shard {} after step {}: {:?}", i, step, op);
        }
    }
    prop_assert_eq!(cache.stats().queued, 0);
    Ok(())
}

/// Keys for the one-shard test: a few more than the largest capacity, so that sequences hit,
/// miss, replace and evict.
const ONE_SHARD_KEYS: u32 = 24;

/// Keys for the many-shard tests: about twice the largest capacity.
const MANY_SHARD_KEYS: u32 = 128;

proptest! {
    #![proptest_config(config(256))]

    /// With one shard the cache is a single strict LRU under every scope: every step must match
    /// the oracle exactly, including which entry each eviction took and in what order.
    #[test]
    fn one_shard_matches_a_naive_lru_after_every_operation(
        capacity in 1usize..=16,
        scope in prop::sample::select(vec![EvictionScope::Global, EvictionScope::TwoChoices, EvictionScope::Shard]),
        ops in vec(op(ONE_SHARD_KEYS, 1..=20), 1..200),
    ) {
        check_against_model(ONE_SHARD_KEYS, capacity, 1, scope, unweighted, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// With many shards, under the `Global` scope the cache is one exact LRU over all its
    /// shards: every eviction (capacity or shrink) takes the least recently used entry of the
    /// whole cache, whichever shard holds it. Under the `Shard` scope a full cache evicts the
    /// inserting shard's own least recent entry. Under both, it never evicts while it has room.
    #[test]
    fn many_shards_match_the_naive_rule_of_their_scope(
        shards in prop::sample::select(vec![2usize, 4, 8]),
        scope in prop::sample::select(vec![EvictionScope::Global, EvictionScope::Shard]),
        capacity in 16usize..=64,
        ops in vec(op(MANY_SHARD_KEYS, 8..=80), 1..200),
    ) {
        check_against_model(MANY_SHARD_KEYS, capacity, shards, scope, unweighted, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Weighted entries (1 to 1,000) under the `Global` scope: the weight never passes the
    /// capacity, evictions follow the global order of last use until the new entry fits (a
    /// replacement's own entry aside, so a heavier value evicts others as needed), and an entry
    /// heavier than the capacity reaches the callback as `TooHeavy`.
    #[test]
    fn weighted_entries_under_the_global_scope_match_the_weighted_naive_lru(
        shards in prop::sample::select(vec![1usize, 2, 4, 8]),
        capacity in 800usize..=6_000,
        ops in vec(op(MANY_SHARD_KEYS, 600..=6_000), 1..150),
    ) {
        check_against_model(MANY_SHARD_KEYS, capacity, shards, EvictionScope::Global, weighted, &ops)?;
    }
}
