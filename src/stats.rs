//! Statistics: counters kept per shard (so that no single cache line is bumped by every
//! operation of every thread) and per purge, summed into plain snapshots on read.
//!
//! Every counter but `len` is `Relaxed`: it is only a statistic, never used to decide anything,
//! and a snapshot taken while other threads work may lag them by a few operations. The per-shard
//! counters of write-mode operations are written only by the thread holding that shard's lock in
//! write mode, so they are bumped with a plain load and store instead of a read-modify-write
//! (the lock orders successive writers); `hits` and `misses` are bumped that way by a `get` in
//! write mode, and with `fetch_add` by one in read mode, where readers hold the lock together.
//! The purge counters are written by any purging thread and use `fetch_add`, once per purge
//! call.
//!
//! `len` is stored with `Release` and loaded with `Acquire` by [`Cache::len`](crate::Cache::len)
//! (for a cache with a weigher; without one `len()` is the cache-wide weight), so that a length
//! published after an insert that only a raised capacity allowed is seen with that capacity (the
//! argument is at `Cache::resize`). On x86 all of these are plain moves.

use crate::sync::{
    AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

/// A shard's `get` counters. The cache keeps them just before the shard lock, on the cache line
/// that every hit writes anyway (see `LockedShard` in `cache.rs`).
pub(crate) struct GetCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl GetCounters {
    pub(crate) fn new() -> Self {
        Self { hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// A `get` holding the lock in read mode.
    #[inline]
    pub(crate) fn record_shared(&self, hit: bool) {
        // Relaxed: a statistic; readers share the lock, so this is a read-modify-write.
        (if hit { &self.hits } else { &self.misses }).fetch_add(1, Relaxed);
    }

    /// A `get` holding the lock in write mode.
    #[inline]
    pub(crate) fn record_exclusive(&self, hit: bool) {
        bump(if hit { &self.hits } else { &self.misses }, 1);
    }
}

/// A shard's other counters, next to the shard lock on the same padded block.
pub(crate) struct ShardCounters {
    inserts: AtomicU64,
    evictions: AtomicU64,
    /// A copy of the shard's length, so that `len()` takes no lock. `Release`/`Acquire`: see the
    /// module docs.
    len: AtomicUsize,
    /// A copy of the weight the shard holds.
    weight: AtomicU64,
}

/// Adds to a counter that only the holder of the shard's lock in write mode writes.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed) + by, Relaxed);
}

impl ShardCounters {
    pub(crate) fn new() -> Self {
        Self {
            inserts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            weight: AtomicU64::new(0),
        }
    }

    // Every method below is called only while holding the shard's lock in write mode.

    #[inline]
    pub(crate) fn record_insert(&self) {
        bump(&self.inserts, 1);
    }

    #[inline]
    pub(crate) fn record_evictions(&self, evicted: u64) {
        bump(&self.evictions, evicted);
    }

    /// Publishes the shard's length and weight after a change.
    #[inline]
    pub(crate) fn publish(&self, len: usize, weight: u64) {
        self.len.store(len, Release);
        self.weight.store(weight, Relaxed);
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Acquire)
    }

    pub(crate) fn snapshot(
        &self,
        gets: &GetCounters,
        (lock_acquisitions, lock_contended): (u64, u64),
    ) -> ShardStats {
        ShardStats {
            len: self.len.load(Relaxed),
            weight: self.weight.load(Relaxed),
            hits: gets.hits.load(Relaxed),
            misses: gets.misses.load(Relaxed),
            inserts: self.inserts.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            lock_acquisitions,
            lock_contended,
        }
    }
}

/// Counters of the purge step, shared by every purging thread.
pub(crate) struct PurgeCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) callback_panics: AtomicU64,
    pub(crate) purges_skipped: AtomicU64,
    pub(crate) writes_held: AtomicU64,
}

impl PurgeCounters {
    pub(crate) fn new() -> Self {
        Self {
            delivered: AtomicU64::new(0),
            callback_panics: AtomicU64::new(0),
            purges_skipped: AtomicU64::new(0),
            writes_held: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, by: u64) {
        if by != 0 {
            counter.fetch_add(by, Relaxed);
        }
    }
}

/// One shard's statistics, from [`Cache::shard_stats`](crate::Cache::shard_stats).
///
/// ```
/// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).shards(2).build()?;
/// cache.insert(1, 1);
/// let shards = cache.shard_stats();
/// assert_eq!(shards.len(), 2);
/// assert_eq!(shards.iter().map(|s| s.len).sum::<usize>(), 1);
/// assert_eq!(shards.iter().map(|s| s.weight).sum::<u64>(), 1); // every entry weighs 1
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// Entries in the shard now.
    pub len: usize,
    /// The weight the shard holds now: its share of the cache's capacity in use (the capacity
    /// belongs to the whole cache; a shard holds what its keys bring).
    pub weight: u64,
    /// `get` calls that found their key.
    pub hits: u64,
    /// `get` calls that did not.
    pub misses: u64,
    /// `insert` calls, new keys and replaced values alike.
    pub inserts: u64,
    /// Entries evicted from the shard to make room, anywhere in the cache, or to shrink it (not
    /// those removed by `clear`).
    pub evictions: u64,
    /// How many times the shard's lock was taken.
    pub lock_acquisitions: u64,
    /// How many of those found it held by another thread and had to wait.
    pub lock_contended: u64,
}

/// A snapshot of a cache's statistics, from [`Cache::stats`](crate::Cache::stats).
///
/// The totals are sums over the shards and the purge step, read without stopping other
/// threads: under concurrent use they may lag by a few operations.
///
/// ```
/// let cache = shardlru::Cache::<u32, u32>::builder().capacity(1).build()?;
/// cache.insert(1, 10);
/// cache.insert(2, 20); // evicts 1
/// assert_eq!(cache.get(&2), Some(20));
/// assert_eq!(cache.get(&1), None);
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.inserts, stats.evictions), (1, 1, 2, 1));
/// assert_eq!(stats.hit_ratio(), 0.5);
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// `get` calls that found their key (`peek` and `contains_key` are not counted).
    pub hits: u64,
    /// `get` calls that did not.
    pub misses: u64,
    /// `insert` calls, new keys and replaced values alike.
    pub inserts: u64,
    /// Entries evicted for capacity or by a shrinking `resize` (not those removed by `clear`).
    pub evictions: u64,
    /// Entries handed to the eviction callback, including those whose callback panicked. Counted
    /// when each purge call ends (one shared update per call, not per entry).
    pub delivered: u64,
    /// Callbacks that panicked.
    pub callback_panics: u64,
    /// Purge attempts that found `max_pending_callbacks` callbacks in flight and returned at once.
    pub purges_skipped: u64,
    /// Evicted entries waiting in the queue for a purge.
    pub queued: usize,
    /// The most entries the queue was seen to hold, just after a push (a high-water mark since
    /// the cache was built). With [`max_queued`](crate::Builder::max_queued) set it stays
    /// below the bound plus the number of threads that write at once (and of those that write
    /// from callbacks, which are not held).
    pub queued_peak: usize,
    /// Writes held at [`max_queued`](crate::Builder::max_queued): each found the bound reached
    /// and delivered entries (or waited for a slot to) before it returned.
    pub writes_held: u64,
    /// How many times a shard lock was taken, over all shards.
    pub lock_acquisitions: u64,
    /// How many of those found the lock held by another thread and had to wait.
    pub lock_contended: u64,
    /// Entries in the cache.
    pub len: usize,
    /// The total weight of the entries (their count, with no weigher set).
    pub weight: u64,
    /// The cache's capacity, in weight.
    pub capacity: usize,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before the first `get`.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 { 0.0 } else { self.hits as f64 / lookups as f64 }
    }

    /// `lock_contended / lock_acquisitions`: the fraction of lock acquisitions that had to
    /// wait, or 0 before the first.
    pub fn contention_rate(&self) -> f64 {
        if self.lock_acquisitions == 0 {
            0.0
        } else {
            self.lock_contended as f64 / self.lock_acquisitions as f64
        }
    }

    pub(crate) fn add_shard(&mut self, shard: &ShardStats) {
        self.hits += shard.hits;
        self.misses += shard.misses;
        self.inserts += shard.inserts;
        self.evictions += shard.evictions;
        self.lock_acquisitions += shard.lock_acquisitions;
        self.lock_contended += shard.lock_contended;
        self.len += shard.len;
        self.weight += shard.weight;
    }

    pub(crate) fn add_purge(&mut self, purge: &PurgeCounters, queued: usize, queued_peak: usize) {
        self.delivered = purge.delivered.load(Relaxed);
        self.callback_panics = purge.callback_panics.load(Relaxed);
        self.purges_skipped = purge.purges_skipped.load(Relaxed);
        self.writes_held = purge.writes_held.load(Relaxed);
        self.queued = queued;
        self.queued_peak = queued_peak;
    }
}
