//! Which shard a key falls in. The key-to-shard mapping is internal, so it is found through the
//! public per-shard statistics. Used by the tests that need keys of one shard or of two
//! different shards: guarantee 6 (`reentrant_methods.rs`: other threads are not refused) and
//! the contention statistics (`contention.rs`).

use shardlru::Cache;
use std::hash::{BuildHasher, Hash};

/// Inserts `key → value` and returns the index of the shard it went to: the one whose insert
/// count went up. Leaves the entry in the cache. Only for a cache no other thread is using.
pub fn shard_of<K: Hash + Eq, V, S: BuildHasher>(
    cache: &Cache<K, V, S>,
    key: K,
    value: V,
) -> usize {
    let before = cache.shard_stats();
    cache.insert(key, value);
    let after = cache.shard_stats();
    (0..after.len()).find(|&i| after[i].inserts > before[i].inserts).expect("some shard took it")
}
