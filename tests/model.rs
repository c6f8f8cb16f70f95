//! Model-based tests (guarantees 1, 2 and 3, single-threaded): random sequences of `get`, `peek`,
//! `contains_key`, `insert`, `remove`, `clear` and `resize` run against the cache and against a
//! naive reference LRU (a `VecDeque` in recency order, memchr's "naive oracle" style), one per
//! shard. After every step they must agree exactly on return values, contents and recency order
//! (`snapshot`), lengths, shares, statistics, and the evictions handed to the callback, in order
//! and with their cause.
//!
//! The key-to-shard mapping is internal, so the many-shard test discovers it through the public
//! API: with a fixed hasher, each key is inserted alone into a fresh probe cache of the same shape
//! and the shard whose `len` became 1 is the key's shard.

mod support;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shardlru::{Cache, Evicted, RemovalCause};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One operation of a random sequence. `Insert`'s value is not generated: the harness gives
/// every insert a fresh value, so that a value showing up in the wrong place cannot go unseen.
#[derive(Clone, Debug)]
enum Op {
    Get(u32),
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
        4 => (0..keys).prop_map(Op::Get),
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

/// The oracle: one strict LRU, most recent entry at the front.
#[derive(Default)]
struct NaiveLru {
    capacity: usize,
    entries: VecDeque<(u32, u32)>,
    hits: u64,
    misses: u64,
    inserts: u64,
    /// Capacity and shrink evictions (not `clear`), as `ShardStats::evictions` counts them.
    evictions: u64,
}

impl NaiveLru {
    fn new(capacity: usize) -> Self {
        Self { capacity, ..Self::default() }
    }

    fn position(&self, key: u32) -> Option<usize> {
        self.entries.iter().position(|&(k, _)| k == key)
    }

    fn get(&mut self, key: u32) -> Option<u32> {
        let Some(at) = self.position(key) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        let entry = self.entries.remove(at).unwrap();
        self.entries.push_front(entry);
        Some(entry.1)
    }

    fn peek(&self, key: u32) -> Option<u32> {
        self.position(key).map(|at| self.entries[at].1)
    }

    fn insert(&mut self, key: u32, value: u32, evicted: &mut Vec<Eviction>) -> Option<u32> {
        self.inserts += 1;
        let old = self.position(key).map(|at| self.entries.remove(at).unwrap().1);
        if old.is_none() && self.entries.len() == self.capacity {
            let (k, v) = self.entries.pop_back().unwrap();
            self.evictions += 1;
            evicted.push((k, v, RemovalCause::Capacity));
        }
        self.entries.push_front((key, value));
        old
    }

    fn remove(&mut self, key: u32) -> Option<u32> {
        self.position(key).map(|at| self.entries.remove(at).unwrap().1)
    }

    fn clear(&mut self, evicted: &mut Vec<Eviction>) {
        while let Some((k, v)) = self.entries.pop_back() {
            evicted.push((k, v, RemovalCause::Clear));
        }
    }

    fn resize(&mut self, capacity: usize, evicted: &mut Vec<Eviction>) {
        self.capacity = capacity;
        while self.entries.len() > capacity {
            let (k, v) = self.entries.pop_back().unwrap();
            self.evictions += 1;
            evicted.push((k, v, RemovalCause::Shrink));
        }
    }
}

/// One naive LRU per shard, each over the share the contract gives it.
struct Model {
    capacity: usize,
    shards: Vec<NaiveLru>,
    /// The shard of each key, as discovered by [`discover_shards`].
    shard_of: Vec<usize>,
}

/// Shard `index`'s share of `capacity` over `shards`: the shares differ by at most one, the
/// larger ones first, and add up to `capacity`.
fn share(capacity: usize, shards: usize, index: usize) -> usize {
    capacity / shards + usize::from(index < capacity % shards)
}

impl Model {
    fn new(capacity: usize, shard_of: Vec<usize>, shards: usize) -> Self {
        let shards = (0..shards).map(|i| NaiveLru::new(share(capacity, shards, i))).collect();
        Self { capacity, shards, shard_of }
    }

    fn shard(&mut self, key: u32) -> &mut NaiveLru {
        &mut self.shards[self.shard_of[key as usize]]
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.entries.len()).sum()
    }

    /// Shards in order, each from its most to its least recent entry, as `snapshot` lists them.
    fn snapshot(&self) -> Vec<(u32, u32)> {
        self.shards.iter().flat_map(|s| s.entries.iter().copied()).collect()
    }

    fn clear(&mut self, evicted: &mut Vec<Eviction>) {
        for shard in &mut self.shards {
            shard.clear(evicted);
        }
    }

    fn resize(&mut self, capacity: usize, evicted: &mut Vec<Eviction>) {
        self.capacity = capacity;
        let count = self.shards.len();
        for (i, shard) in self.shards.iter_mut().enumerate() {
            shard.resize(share(capacity, count, i), evicted);
        }
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

/// Runs `ops` against a cache of `capacity` over `shards` and against the model, comparing
/// everything observable after every step.
fn check_against_model(
    keys: u32,
    capacity: usize,
    shards: usize,
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
        .on_evict(move |_cache, Evicted { key, value, cause, .. }| {
            sink.lock().unwrap().push((key, value, cause));
        })
        .build()
        .unwrap();
    let mut model = Model::new(capacity, shard_of, shards);

    for (step, op) in ops.iter().enumerate() {
        let value = step as u32;
        let mut expected_evictions = Vec::new();
        match *op {
            Op::Get(key) => prop_assert_eq!(cache.get(&key), model.shard(key).get(key)),
            Op::Peek(key) => prop_assert_eq!(cache.peek(&key), model.shard(key).peek(key)),
            Op::ContainsKey(key) => {
                prop_assert_eq!(cache.contains_key(&key), model.shard(key).peek(key).is_some())
            }
            Op::Insert(key) => prop_assert_eq!(
                cache.insert(key, value),
                model.shard(key).insert(key, value, &mut expected_evictions)
            ),
            Op::Remove(key) => prop_assert_eq!(cache.remove(&key), model.shard(key).remove(key)),
            Op::Clear => {
                cache.clear();
                model.clear(&mut expected_evictions);
            }
            Op::Resize(capacity) => {
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
        prop_assert_eq!(cache.len(), model.len());
        prop_assert_eq!(cache.capacity(), model.capacity);

        let shard_stats = cache.shard_stats();
        prop_assert_eq!(shard_stats.len(), shards);
        for (i, (got, want)) in shard_stats.iter().zip(&model.shards).enumerate() {
            let got = (got.len, got.share, got.hits, got.misses, got.inserts, got.evictions);
            let want = (
                want.entries.len(),
                want.capacity,
                want.hits,
                want.misses,
                want.inserts,
                want.evictions,
            );
            prop_assert_eq!(
                got,
                want,
                "shard {} (len, share, hits, misses, inserts, evictions)",
                i
            );
        }
    }

    let stats = cache.stats();
    let sum = |f: fn(&NaiveLru) -> u64| model.shards.iter().map(f).sum::<u64>();
    prop_assert_eq!(stats.hits, sum(|s| s.hits));
    prop_assert_eq!(stats.misses, sum(|s| s.misses));
    prop_assert_eq!(stats.inserts, sum(|s| s.inserts));
    prop_assert_eq!(stats.evictions, sum(|s| s.evictions));
    prop_assert_eq!(stats.queued, 0);
    Ok(())
}

/// Keys for the one-shard test: a few more than the largest capacity, so that sequences hit,
/// miss, replace and evict.
const ONE_SHARD_KEYS: u32 = 24;

/// Keys for the many-shard test: about twice the largest capacity over all shards.
const MANY_SHARD_KEYS: u32 = 128;

proptest! {
    #![proptest_config(config(256))]

    /// With one shard the cache is a single strict LRU: every step must match the oracle
    /// exactly, including which entry each eviction took and in what order.
    #[test]
    fn one_shard_matches_a_naive_lru_after_every_operation(
        capacity in 1usize..=16,
        ops in vec(op(ONE_SHARD_KEYS, 1..=20), 1..200),
    ) {
        check_against_model(ONE_SHARD_KEYS, capacity, 1, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// With many shards each shard is a strict LRU over its share: every shard must match its
    /// own oracle exactly, and `clear` and shrinking `resize` deliver shard by shard, least
    /// recent first.
    #[test]
    fn every_shard_matches_its_own_naive_lru_after_every_operation(
        shards in prop::sample::select(vec![2usize, 4, 8]),
        capacity in 16usize..=64,
        ops in vec(op(MANY_SHARD_KEYS, 8..=80), 1..200),
    ) {
        check_against_model(MANY_SHARD_KEYS, capacity, shards, &ops)?;
    }
}
