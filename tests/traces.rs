//! Guarantee 2 (recency) on real workloads: with one shard the cache is a strict LRU, so a
//! read-through simulation of the traces in `tests/data/traces/` must reproduce the exact LRU hit
//! counts in that directory's README to the last hit, and the cache's own `stats().hits` must
//! agree. With many shards, the capacity still belongs to the whole cache: under
//! `EvictionScope::Global` (on one thread) the hits are still exact, and under the other scopes
//! they stay within a fraction of a point of exact, at the shard count the default gives this
//! machine and at the most it gives the capacity on any machine. Run
//! `cargo test --test traces -- --nocapture` to see the figures.

mod support;

use shardlru::{Cache, EvictionScope, MIN_DEFAULT_SHARE};
use shardlru_workloads::trace;
use std::sync::OnceLock;

/// Replays `keys` read-through (`get`; on a miss, `insert`) and returns the hits counted by
/// the replay, after checking them against the cache's own statistics.
fn replay(
    keys: &[u64],
    capacity: usize,
    shards: Option<usize>,
    scope: EvictionScope,
) -> (u64, usize) {
    // A fixed hasher, so that the default shard count's figures are the same on every run.
    let mut builder = Cache::<u64, ()>::builder()
        .hasher(support::fixed_hasher())
        .capacity(capacity)
        .eviction_scope(scope);
    if let Some(shards) = shards {
        builder = builder.shards(shards);
    }
    let cache = builder.build().unwrap();
    let mut hits = 0u64;
    for &key in keys {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, ());
        }
    }
    let stats = cache.stats();
    assert_eq!(stats.hits, hits, "stats().hits agrees with the replay");
    assert_eq!(stats.misses, keys.len() as u64 - hits);
    assert_eq!(stats.inserts, stats.misses);
    assert!(stats.len <= capacity);
    (hits, cache.shard_count())
}

/// One trace of `tests/data/traces/`, read once and shared by the tests that replay it, with
/// the exact strict-LRU hit counts from that directory's README.
struct Trace {
    file: &'static str,
    /// `(capacity, exact LRU hits)`.
    exact: &'static [(usize, u64)],
    /// How far, in points of hit ratio, the cache may fall from (or rise above) exact LRU under
    /// an approximate eviction scope; `None` for a capacity where only one shard is checked.
    tolerance: &'static [Option<f64>],
    keys: OnceLock<Vec<u64>>,
}

impl Trace {
    const fn new(
        file: &'static str,
        exact: &'static [(usize, u64)],
        tolerance: &'static [Option<f64>],
    ) -> Self {
        Self { file, exact, tolerance, keys: OnceLock::new() }
    }

    fn keys(&self) -> &[u64] {
        self.keys.get_or_init(|| trace::read(&trace::dir().join(self.file)).unwrap())
    }

    /// Asserts the exact hit counts with one shard.
    fn check_one_shard(&self) {
        let keys = self.keys();
        for &(capacity, exact) in self.exact {
            let (hits, shards) = replay(keys, capacity, Some(1), EvictionScope::default());
            assert_eq!(shards, 1);
            assert_eq!(
                hits, exact,
                "{} at capacity {capacity}, one shard: exact LRU hits",
                self.file
            );
        }
    }

    /// Checks the hits with many shards: exact under `Global`, within the tolerance under the
    /// other scopes, at the default shard count and at the most shards the default gives the
    /// capacity on any machine (the largest power of two with `MIN_DEFAULT_SHARE` per shard).
    fn check_many_shards(&self) {
        let keys = self.keys();
        let requests = keys.len() as f64;
        for (&(capacity, exact), &tolerance) in self.exact.iter().zip(self.tolerance) {
            let Some(tolerance) = tolerance else { continue };
            let most = 1 << (capacity / MIN_DEFAULT_SHARE).max(1).ilog2();
            for shards in [None, Some(most)] {
                for scope in
                    [EvictionScope::Shard, EvictionScope::TwoChoices, EvictionScope::Global]
                {
                    let (hits, shards) = replay(keys, capacity, shards, scope);
                    let points = 100.0 * (hits as f64 - exact as f64) / requests;
                    println!(
                        "{} @ {capacity}, {shards} shards, {scope:?}: {hits} hits, exact LRU \
                         {exact}: {points:+.3} points",
                        self.file
                    );
                    if scope == EvictionScope::Global {
                        assert_eq!(hits, exact, "{}: one thread, Global scope: exact", self.file);
                    }
                    assert!(
                        points.abs() <= tolerance,
                        "{} @ {capacity}, {shards} shards, {scope:?}: {points:+.3} points from \
                         exact LRU, beyond {tolerance}",
                        self.file
                    );
                }
            }
        }
    }
}

/// A strict loop over 1,011 keys: an LRU one entry too small never hits; one large enough
/// misses only the first pass. Any early eviction or any extra entry shows.
static LOOP: Trace =
    Trace::new("loop.trace.gz", &[(1_010, 0), (1_011, 504_489)], &[None, Some(1.0)]);

/// OLTP (914,145 requests) at the ARC paper's sizes.
static OLTP: Trace =
    Trace::new("OLTP.lis.zst", &[(1_000, 300_122), (2_000, 388_235)], &[Some(0.3), Some(0.3)]);

/// multi2 (26,311 requests) at cache2k-benchmark's sizes.
static MULTI2: Trace =
    Trace::new("multi2.trace.gz", &[(600, 9_769), (1_800, 12_757)], &[Some(0.3), Some(0.3)]);

#[test]
fn loop_trace_gives_exact_lru_hits_with_one_shard() {
    LOOP.check_one_shard();
}

#[test]
fn oltp_trace_gives_exact_lru_hits_with_one_shard() {
    OLTP.check_one_shard();
}

#[test]
fn multi2_trace_gives_exact_lru_hits_with_one_shard() {
    MULTI2.check_one_shard();
}

#[test]
fn loop_trace_with_many_shards_stays_near_exact_lru() {
    LOOP.check_many_shards();
}

#[test]
fn oltp_trace_with_many_shards_stays_near_exact_lru() {
    OLTP.check_many_shards();
}

#[test]
fn multi2_trace_with_many_shards_stays_near_exact_lru() {
    MULTI2.check_many_shards();
}
