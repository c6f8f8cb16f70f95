//! Guarantee 2 (recency) on real workloads: with one shard the cache is a strict LRU, so a
//! read-through simulation of the traces in `tests/data/traces/` must reproduce the exact LRU hit
//! counts in that directory's README to the last hit, and the cache's own `stats().hits` must
//! agree. With the default shard count the hit counts are reported (not asserted), with how far
//! they fall from a strict LRU's: run `cargo test --test traces -- --nocapture` to see them.

mod support;

use shardlru::Cache;
use shardlru_workloads::trace;
use std::sync::OnceLock;

/// Replays `keys` read-through (`get`; on a miss, `insert`) and returns the hits counted by
/// the replay, after checking them against the cache's own statistics.
fn replay(keys: &[u64], capacity: usize, shards: Option<usize>) -> (u64, usize) {
    // A fixed hasher, so that the default shard count's figures are the same on every run.
    let mut builder =
        Cache::<u64, ()>::builder().hasher(support::fixed_hasher()).capacity(capacity);
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
    keys: OnceLock<Vec<u64>>,
}

impl Trace {
    const fn new(file: &'static str, exact: &'static [(usize, u64)]) -> Self {
        Self { file, exact, keys: OnceLock::new() }
    }

    fn keys(&self) -> &[u64] {
        self.keys.get_or_init(|| trace::read(&trace::dir().join(self.file)).unwrap())
    }

    /// Asserts the exact hit counts with one shard.
    fn check_one_shard(&self) {
        let keys = self.keys();
        for &(capacity, exact) in self.exact {
            let (hits, shards) = replay(keys, capacity, Some(1));
            assert_eq!(shards, 1);
            assert_eq!(
                hits, exact,
                "{} at capacity {capacity}, one shard: exact LRU hits",
                self.file
            );
        }
    }

    /// Prints the hit counts with the default shard count and how far they fall from exact.
    fn report_default_shards(&self) {
        let keys = self.keys();
        let requests = keys.len() as f64;
        for &(capacity, exact) in self.exact {
            let (hits, shards) = replay(keys, capacity, None);
            let ratio = 100.0 * hits as f64 / requests;
            let exact_ratio = 100.0 * exact as f64 / requests;
            println!(
                "{} @ {capacity}, default {shards} shards: {hits} hits ({ratio:.2} %), \
                 exact LRU {exact} ({exact_ratio:.2} %): {:+.2} pp",
                self.file,
                ratio - exact_ratio
            );
        }
    }
}

/// A strict loop over 1,011 keys: an LRU one entry too small never hits; one large enough
/// misses only the first pass. Any early eviction or any extra entry shows.
static LOOP: Trace = Trace::new("loop.trace.gz", &[(1_010, 0), (1_011, 504_489)]);

/// OLTP (914,145 requests) at the ARC paper's sizes.
static OLTP: Trace = Trace::new("OLTP.lis.zst", &[(1_000, 300_122), (2_000, 388_235)]);

/// multi2 (26,311 requests) at cache2k-benchmark's sizes.
static MULTI2: Trace = Trace::new("multi2.trace.gz", &[(600, 9_769), (1_800, 12_757)]);

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

// With the default shard count the cache is a strict LRU per shard only, so these report (and
// do not assert) how far the hit counts fall from a global LRU's; `replay` still checks that
// the cache's statistics agree with the hits it counted.

#[test]
fn loop_trace_with_default_shards_reports_its_hits() {
    LOOP.report_default_shards();
}

#[test]
fn oltp_trace_with_default_shards_reports_its_hits() {
    OLTP.report_default_shards();
}

#[test]
fn multi2_trace_with_default_shards_reports_its_hits() {
    MULTI2.report_default_shards();
}
