//! The builder: every setting of a cache, its default, and the one place where a configuration
//! is validated (guarantee 8).

use crate::cache::Cache;
use crate::cache::Weigher;
use crate::error::BuildError;
use crate::evict::Evicted;
use crate::purge::{CallbackPanic, OnEvict, PanicPolicy, PutOff};
use crate::slab::MAX_LEN;
use crate::sync;
use ahash::RandomState;

/// The default cap on eviction callbacks running at once (lru_ng's default, for the same reason:
/// high enough never to bind for cheap callbacks).
pub const DEFAULT_MAX_PENDING_CALLBACKS: usize = 8192;

/// Default shards per available core, before rounding up to a power of two. Writes take their
/// shard's lock exclusively, and so does a hit when the lock is free (otherwise it joins the
/// readers), so the share of lock acquisitions that find the lock held grows with
/// (threads − 1) / shards; the figures behind this choice, measured with
/// the tuner, are in the README ("Choosing the shard count").
///
/// ```
/// assert!(shardlru::SHARDS_PER_CORE.is_power_of_two());
/// ```
pub const SHARDS_PER_CORE: usize = 8;

/// The most shards a cache can have. Each shard costs a cache line and a lock before it holds
/// anything; far more shards than any machine has threads buy nothing.
///
/// ```
/// use shardlru::{BuildError, Cache, MAX_SHARDS};
///
/// let err = Cache::<u32, u32>::builder().capacity(usize::MAX).shards(1 << 40).build();
/// assert_eq!(err.err(), Some(BuildError::TooManyShards { shards: 1 << 40, max: MAX_SHARDS }));
/// ```
pub const MAX_SHARDS: usize = 1 << 16;

/// The smallest share of the capacity the default shard count gives each shard. Under the
/// default [`EvictionScope::Shard`] a shard evicts its own least recent entry; with fewer than a
/// few dozen entries per shard that is a poor stand-in for the whole cache's least recent entry
/// and the hit ratio falls, so a cache that small gets fewer shards.
///
/// ```
/// let cache = shardlru::Cache::<u32, u32>::builder()
///     .capacity(shardlru::MIN_DEFAULT_SHARE)
///     .build()?;
/// assert_eq!(cache.shard_count(), 1);
/// # Ok::<(), shardlru::BuildError>(())
/// ```
pub const MIN_DEFAULT_SHARE: usize = 64;

/// How an insert into a full cache chooses its victim. The capacity belongs to the whole cache;
/// each shard keeps its entries in exact order of last use, and these settings differ in which
/// shards' least recently used entries they compare.
///
/// ```
/// use shardlru::{Cache, EvictionScope};
///
/// // One exact LRU over every shard: on one thread, the same evictions as a single list.
/// let cache = Cache::<u32, u32>::builder()
///     .capacity(2)
///     .shards(4)
///     .eviction_scope(EvictionScope::Global)
///     .build()?;
/// for key in 0..3 {
///     cache.insert(key, key);
/// }
/// assert_eq!(cache.peek(&0), None); // the least recent entry of the whole cache left
/// assert_eq!((cache.peek(&1), cache.peek(&2)), (Some(1), Some(2)));
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionScope {
    /// The least recently used entry of the whole cache: every shard's least recent entry is
    /// compared. On one thread the cache evicts exactly as one LRU list would. Each eviction
    /// reads a word per shard and usually locks a second shard.
    Global,
    /// The older of two least recent entries: the inserting shard's and one other shard's,
    /// picked at random ("the power of two choices"). Nearly the hit ratio of `Global`; about
    /// half of the evictions happen in the other shard, which costs a second lock and an
    /// insert that cannot reuse the victim's node (BENCHMARKS.md, "Eviction scope").
    TwoChoices,
    /// The inserting shard's own least recent entry, while it has one (otherwise the fullest
    /// shard's): the default, and the cheapest, as each eviction stays under the lock already
    /// held. The cache still evicts only when the whole cache is full. With keys spread over
    /// the shards by their hash, and at least [`MIN_DEFAULT_SHARE`] entries per shard, it keeps
    /// nearly the hit ratio of `Global` (BENCHMARKS.md, "Eviction scope"); a workload whose hot
    /// keys crowd into a few shards is better served by `TwoChoices` or `Global`.
    #[default]
    Shard,
}

/// Builds a [`Cache`]. Start with [`Cache::builder`]; only [`capacity`](Builder::capacity) is
/// required.
///
/// ```
/// use shardlru::{Cache, RemovalCause};
///
/// let cache = Cache::<String, Vec<u8>>::builder()
///     .capacity(10_000)
///     .shards(16)
///     .max_pending_callbacks(4)
///     .name("pages")
///     .on_evict(|_cache, evicted| {
///         if evicted.cause == RemovalCause::Capacity {
///             // write evicted.value back to disk …
///         }
///     })
///     .build()?;
/// assert_eq!((cache.capacity(), cache.shard_count()), (10_000, 16));
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<K, V, S = RandomState> {
    capacity: Option<usize>,
    shards: Option<usize>,
    max_pending_callbacks: Option<usize>,
    max_queued: Option<usize>,
    hasher: S,
    callback: Option<OnEvict<K, V, S>>,
    on_panic: Option<PanicPolicy>,
    name: Option<String>,
    weigher: Option<Weigher<K, V>>,
    scope: Option<EvictionScope>,
    /// `hasher` was called after `on_evict`, dropping the callback: `build` refuses.
    hasher_after_callback: bool,
}

impl<K, V> Builder<K, V, RandomState> {
    pub(crate) fn new() -> Self {
        Self {
            capacity: None,
            shards: None,
            max_pending_callbacks: None,
            max_queued: None,
            hasher: RandomState::new(),
            callback: None,
            on_panic: None,
            name: None,
            weigher: None,
            scope: None,
            hasher_after_callback: false,
        }
    }
}

impl<K, V, S> Builder<K, V, S> {
    /// The most weight the cache holds: the most entries, unless a
    /// [`weigher`](Self::weigher) gives entries weights. Required; at least 1.
    ///
    /// The capacity belongs to the whole cache: it evicts only when all its shards together are
    /// full (see [`EvictionScope`] for which entry it evicts then).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// How many shards, each with its own lock: a power of two, at most [`MAX_SHARDS`].
    ///
    /// Defaults to: [`SHARDS_PER_CORE`] × the available parallelism, rounded up to a power of
    /// two, lowered so that the capacity is at least [`MIN_DEFAULT_SHARE`] per shard (and at
    /// least one shard), and raised where a shard would have to index more entries than it can.
    /// With a [`weigher`](Self::weigher) the capacity, and so this share, is in weight (bytes,
    /// say), not entries: a cache of large entries may want fewer shards than the default.
    /// More shards mean fewer threads waiting on one lock. The capacity belongs to the whole
    /// cache whatever the count; under the default [`EvictionScope::Shard`], many small shards
    /// also make each shard's least recent entry a poorer stand-in for the cache's.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The most eviction callbacks that may run at once, over all threads. A purge that finds
    /// the cap reached returns at once and leaves entries queued for a later purge.
    ///
    /// Defaults to: [`DEFAULT_MAX_PENDING_CALLBACKS`]. Use a small number for callbacks that
    /// block on I/O, so that only that many threads are ever held up by them.
    pub fn max_pending_callbacks(mut self, max: usize) -> Self {
        self.max_pending_callbacks = Some(max);
        self
    }

    /// The most evicted entries queued for the callback before writes are held: a write that
    /// finds `max` entries queued does not return until fewer are, delivering them itself
    /// (waiting for a slot when `max_pending_callbacks` callbacks run). So the backlog stays
    /// under `max` plus the number of threads writing at once, whatever the callback's speed,
    /// and nothing is dropped. `clear`, `retain` and a shrinking `resize` deliver as they go
    /// once the queue reaches it.
    ///
    /// The trade: latency for writers at the bound (they run callbacks, or wait for a slot),
    /// never for readers (a `get` never queues, never waits). A thread inside a callback is
    /// never held (it might hold the slot that the others wait for); its writes may pass the
    /// bound.
    ///
    /// Defaults to: unbounded.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// static DELIVERED: AtomicUsize = AtomicUsize::new(0);
    /// let cache = shardlru::Cache::<u32, u32>::builder()
    ///     .capacity(10_000)
    ///     .max_queued(100)
    ///     .on_evict(|_, _| {
    ///         DELIVERED.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// for key in 0..10_000 {
    ///     cache.insert(key, key);
    /// }
    /// cache.clear(); // delivers as it goes: never more than 100 entries queued
    /// assert!(cache.stats().queued_peak <= 100);
    /// assert!(cache.stats().writes_held > 0);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn max_queued(mut self, max: usize) -> Self {
        self.max_queued = Some(max);
        self
    }

    /// A name for the cache, used in the default report of a panicking callback.
    ///
    /// Defaults to: `"unnamed"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The hasher that picks each key's shard and slot. Call it before
    /// [`on_evict`](Self::on_evict): the callback's type names the hasher's, so calling it after
    /// makes `build` fail with [`BuildError::HasherAfterCallback`].
    ///
    /// Defaults to: `ahash::RandomState::new()`.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    ///
    /// let cache = shardlru::Cache::<u32, u32>::builder()
    ///     .hasher(RandomState::new())
    ///     .capacity(10)
    ///     .build()?;
    /// cache.insert(1, 1);
    /// assert_eq!(cache.get(&1), Some(1));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn hasher<S2>(self, hasher: S2) -> Builder<K, V, S2> {
        Builder {
            capacity: self.capacity,
            shards: self.shards,
            max_pending_callbacks: self.max_pending_callbacks,
            max_queued: self.max_queued,
            hasher,
            callback: None,
            on_panic: self.on_panic,
            name: self.name,
            weigher: self.weigher,
            scope: self.scope,
            hasher_after_callback: self.hasher_after_callback || self.callback.is_some(),
        }
    }

    /// Gives each entry a weight, so that the capacity counts weight (bytes, say) rather than
    /// entries. It runs on the caller's thread before any lock, once per `insert`; the weight
    /// is kept with the entry. An entry heavier than the whole capacity is not stored: it goes
    /// to the callback with [`RemovalCause::TooHeavy`](crate::RemovalCause::TooHeavy). An entry
    /// of weight 0 takes no capacity (only the number of entries one shard can index bounds
    /// how many the cache keeps).
    ///
    /// Defaults to: none; every entry weighs 1.
    ///
    /// ```
    /// use shardlru::{Cache, RemovalCause};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let evicted = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&evicted);
    /// let cache = Cache::<&str, String>::builder()
    ///     .capacity(11) // bytes
    ///     .weigher(|_key, value| value.len() as u64)
    ///     .on_evict(move |_cache, e| sink.lock().unwrap().push((e.key, e.cause)))
    ///     .build()?;
    /// cache.insert("a", "four".into());
    /// cache.insert("b", "five!".into());
    /// cache.insert("c", "six!!!".into()); // 15 bytes: "a" goes, then there is room
    /// cache.insert("d", "far too long".into()); // 12 bytes: never stored
    /// assert_eq!(cache.weight(), 11);
    /// assert_eq!(
    ///     *evicted.lock().unwrap(),
    ///     [("a", RemovalCause::Capacity), ("d", RemovalCause::TooHeavy)]
    /// );
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn weigher<F>(mut self, weigher: F) -> Self
    where
        F: Fn(&K, &V) -> u64 + Send + Sync + 'static,
    {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// How an insert into a full cache chooses its victim among the shards' least recently
    /// used entries; see [`EvictionScope`].
    ///
    /// Defaults to: [`EvictionScope::Shard`].
    pub fn eviction_scope(mut self, scope: EvictionScope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The eviction callback: called once with every entry that leaves the cache without being
    /// handed back to a caller (capacity eviction, `clear`, a shrinking `resize`), outside every
    /// lock, by whichever thread purges.
    ///
    /// It receives the cache itself, so it can call any method of it without holding a handle,
    /// which would make a reference cycle that never drops. Entries still queued when the cache
    /// is dropped are delivered during the drop.
    ///
    /// A cache with a callback holds `'static` keys, values and hasher, and its hasher is
    /// `Clone` (as every `BuildHasher` of std and of the common hashing crates is): a cache
    /// dropped inside another cache's `Eq` or `Clone` (under that cache's lock) finishes its
    /// drop, callbacks and all, in a cache that takes over its contents once its thread has
    /// released the lock, which can be after any borrow it held has ended.
    ///
    /// Between leaving its shard and reaching the callback, an entry is in neither place: a
    /// read-through cache whose callback writes back must expect a miss in that window to read
    /// the old value from its backing store (keep the write-back idempotent and versioned, or
    /// serialise misses on a key with the write-back).
    ///
    /// Defaults to: none. Evicted entries are then dropped, outside the lock, and nothing is
    /// queued.
    ///
    /// ```
    /// use shardlru::{Cache, RemovalCause};
    ///
    /// // Pinned entries survive capacity eviction: the callback puts them back.
    /// let cache = Cache::<u32, (&str, bool)>::builder()
    ///     .capacity(2)
    ///     .shards(1)
    ///     .on_evict(|cache, evicted| {
    ///         let (_, pinned) = evicted.value;
    ///         if pinned && evicted.cause == RemovalCause::Capacity {
    ///             cache.insert(evicted.key, evicted.value);
    ///         }
    ///     })
    ///     .build()?;
    /// cache.insert(1, ("config", true));
    /// cache.insert(2, ("a", false));
    /// cache.insert(3, ("b", false)); // evicts 1, which the callback puts back, evicting 2
    /// assert_eq!(cache.peek(&1), Some(("config", true)));
    /// assert_eq!(cache.peek(&2), None);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn on_evict<F>(mut self, callback: F) -> Self
    where
        F: Fn(&Cache<K, V, S>, Evicted<K, V>) + Send + Sync + 'static,
        K: 'static,
        V: 'static,
        S: Clone + 'static,
    {
        // Made here, where the bounds are known: see `nesting.rs` and `Drop for Cache`.
        let put_off: PutOff<K, V, S> = |cache| Box::new(cache.move_out());
        self.callback = Some(OnEvict { callback: Box::new(callback), put_off });
        self
    }

    /// Handles a panic caught from the eviction callback; the purge then goes on with the next
    /// entry, and the callback stays in use. Replaces
    /// [`resume_callback_panics`](Self::resume_callback_panics) if that was set.
    ///
    /// Defaults to: one line on stderr naming the cache and the panic.
    pub fn on_callback_panic<F>(mut self, handler: F) -> Self
    where
        F: Fn(CallbackPanic<'_>) + Send + Sync + 'static,
    {
        self.on_panic = Some(PanicPolicy::Report(Box::new(handler)));
        self
    }

    /// Resume a callback's panic in the thread that was purging, after the pending-callback
    /// count is restored; the entries not yet delivered stay queued. Replaces
    /// [`on_callback_panic`](Self::on_callback_panic) if that was set.
    ///
    /// A panic caught while the thread is already unwinding is reported on stderr instead (a
    /// second panic would abort the process). During the cache's drop, the first panic resumes
    /// after the remaining queued entries are delivered.
    pub fn resume_callback_panics(mut self) -> Self {
        self.on_panic = Some(PanicPolicy::Resume);
        self
    }

    /// Checks the configuration and builds the cache.
    ///
    /// ```
    /// use shardlru::{BuildError, Cache};
    ///
    /// assert_eq!(Cache::<u8, u8>::builder().build().err(), Some(BuildError::MissingCapacity));
    /// assert_eq!(
    ///     Cache::<u8, u8>::builder().capacity(4).shards(6).build().err(),
    ///     Some(BuildError::ShardsNotPowerOfTwo { shards: 6 })
    /// );
    /// ```
    pub fn build(self) -> Result<Cache<K, V, S>, BuildError> {
        if self.hasher_after_callback {
            return Err(BuildError::HasherAfterCallback);
        }
        let capacity = match self.capacity {
            None => return Err(BuildError::MissingCapacity),
            Some(0) => return Err(BuildError::ZeroCapacity),
            Some(capacity) => capacity,
        };
        let shards = match self.shards {
            None => default_shards(capacity, sync::available_parallelism()),
            Some(0) => return Err(BuildError::ZeroShards),
            Some(shards) if !shards.is_power_of_two() => {
                return Err(BuildError::ShardsNotPowerOfTwo { shards });
            }
            Some(shards) if shards > MAX_SHARDS => {
                return Err(BuildError::TooManyShards { shards, max: MAX_SHARDS });
            }
            Some(shards) => shards,
        };
        let max_pending_callbacks = match self.max_pending_callbacks {
            Some(0) => return Err(BuildError::ZeroMaxPendingCallbacks),
            max => max.unwrap_or(DEFAULT_MAX_PENDING_CALLBACKS),
        };
        let max_queued = match self.max_queued {
            Some(0) => return Err(BuildError::ZeroMaxQueued),
            max => max.unwrap_or(usize::MAX),
        };
        Ok(Cache::from_config(crate::cache::Config {
            capacity,
            shards,
            hasher: self.hasher,
            callback: self.callback,
            max_pending_callbacks,
            max_queued,
            on_panic: self.on_panic.unwrap_or_default(),
            name: self.name.unwrap_or_else(|| "unnamed".to_owned()).into_boxed_str(),
            weigher: self.weigher,
            scope: self.scope.unwrap_or_default(),
        }))
    }
}

/// The default shard count: see [`Builder::shards`].
fn default_shards(capacity: usize, parallelism: usize) -> usize {
    let wanted = SHARDS_PER_CORE.saturating_mul(parallelism).min(MAX_SHARDS).next_power_of_two();
    let most = (capacity / MIN_DEFAULT_SHARE).max(1);
    // The largest power of two at or below `most`.
    let most = 1 << (usize::BITS - 1 - most.leading_zeros());
    // Enough shards that a capacity of entries fits their indices (a shard holds at most
    // `MAX_LEN`, and one that is full evicts its own least recent entry).
    let fewest = capacity.div_ceil(MAX_LEN).next_power_of_two().min(MAX_SHARDS);
    wanted.min(most).max(fewest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shards_scale_with_cores_and_shrink_for_small_caches() {
        let shards = default_shards;
        assert_eq!(shards(1_000_000, 2), 16);
        assert_eq!(shards(1_000_000, 3), 32);
        assert_eq!(shards(1_000_000, 64), 512);
        assert_eq!(shards(1_011, 2), 8);
        assert_eq!(shards(200, 16), 2);
        assert_eq!(shards(10, 16), 1);
        assert_eq!(shards(1 << 30, 1 << 20), MAX_SHARDS, "never above the maximum");
    }

    #[test]
    fn default_shards_grow_until_every_share_fits_a_shard() {
        // 2^40 entries fit the indices of 512 shards (at most MAX_LEN = 2^32 - 1 each), not 16.
        let shards = default_shards(1 << 40, 2);
        assert_eq!(shards, 512);
        assert!((1usize << 40).div_ceil(shards) <= MAX_LEN);
        assert_eq!(default_shards(usize::MAX, 2), MAX_SHARDS, "never above the maximum");
    }
}
