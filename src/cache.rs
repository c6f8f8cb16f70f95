//! The cache: hash once, pick the shard, lock it, call the shard, unlock, then drop or queue what
//! came out and purge. This is the only file that takes a shard lock.
//!
//! Every keyed method has the same shape:
//!
//! ```text
//! hash = hasher(key)          user Hash runs here, before any lock
//! shard = shards[hash bits]   no second hash under the lock
//! [purge]                     `remove` purges here, before a value is in hand (purge.rs)
//! guard = lock(shard)?        refused (Busy) where waiting could deadlock (lock.rs)
//! … shard work …              user Eq/Borrow (and Clone for get/peek) may run here
//! drop(guard)                 ── the lock is released ──
//! drop / queue the removed    user Drop runs here, never under a lock
//! purge                       the callback runs here (writes, but not a replacing insert)
//! ```
//!
//! A call made while its thread holds a shard lock (from a key's `Eq`/`Borrow` or a value's
//! `Clone`) never queues an entry: a write that would evict there is refused
//! ([`BusyCause::WouldEvict`]), because its purge could not run the callback and nobody else
//! would be bound to. For the same reason a cache dropped there puts its drop off until the
//! thread releases its outermost lock (`Drop for Cache`).
//!
//! Shards are cache-line padded so that two threads working on different shards never write
//! the same line; each shard's counters share the line with its lock, which the holder has
//! already claimed.

use crate::builder::Builder;
use crate::error::{Busy, BusyCause, ResizeError};
use crate::evict::{Evicted, RemovalCause};
use crate::lock::{self, ShardGuard, ShardLock};
use crate::nesting;
use crate::purge::{OnEvict, PanicPolicy, Purger};
use crate::shard::{Inserted, Shard};
use crate::slab::MAX_LEN;
use crate::stats::{ShardCounters, ShardStats, Stats};
use crate::sync::{
    AtomicUsize, Mutex,
    Ordering::{Acquire, Relaxed, Release},
};
use ahash::RandomState;
use crossbeam_utils::CachePadded;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};

/// The shard index comes from bits 32 and up of the hash. hashbrown takes the bucket index from
/// the low bits and its tag from the top 7, so the middle bits spread keys over shards without
/// making keys of one shard collide inside its table.
const SHARD_HASH_SHIFT: u32 = 32;

/// A concurrent, sharded, strict-per-shard LRU cache. See the [crate docs](crate) for the design
/// and its guarantees.
///
/// `Cache` is `Send + Sync` when its keys and values are `Send` (and its hasher is `Send +
/// Sync`): share it between threads with `Arc` or a `static`, and call every method on `&self`.
/// A cache with an eviction callback holds `'static` keys, values and hasher (see
/// [`Builder::on_evict`]).
///
/// ```
/// use shardlru::Cache;
/// use std::sync::Arc;
///
/// let cache = Arc::new(Cache::<u64, Arc<str>>::builder().capacity(1024).build()?);
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         let cache = Arc::clone(&cache);
///         s.spawn(move || {
///             for i in 0..100 {
///                 cache.insert(t * 1000 + i, Arc::from(format!("value {i}")));
///             }
///         });
///     }
/// });
/// assert_eq!(cache.len(), 400);
/// assert_eq!(cache.get(&3042).as_deref(), Some("value 42"));
/// # Ok::<(), shardlru::BuildError>(())
/// ```
pub struct Cache<K, V, S = RandomState> {
    shards: Box<[CachePadded<LockedShard<K, V>>]>,
    /// `shards.len() - 1`; the shard count is a power of two.
    shard_mask: usize,
    hasher: S,
    /// At least the sum of the shards' shares (equal to it whenever no `resize` is in progress).
    /// `Release`/`Acquire`: see `resize`.
    capacity: AtomicUsize,
    /// Serialises `resize` calls, so that shares and `capacity` move together. Held while shard
    /// locks are taken one at a time, never across user code.
    resizing: Mutex<()>,
    /// `None` when no callback is configured: nothing is ever queued then.
    purger: Option<Purger<K, V, S>>,
}

/// One shard behind its lock, with the counters that only the lock holder writes.
struct LockedShard<K, V> {
    lock: ShardLock<Shard<K, V>>,
    counters: ShardCounters,
}

/// A validated configuration, from [`Builder::build`].
pub(crate) struct Config<K, V, S> {
    pub(crate) capacity: usize,
    pub(crate) shards: usize,
    pub(crate) hasher: S,
    pub(crate) callback: Option<OnEvict<K, V, S>>,
    pub(crate) max_pending_callbacks: usize,
    pub(crate) on_panic: PanicPolicy,
    pub(crate) name: Box<str>,
}

/// Shard `index`'s share of `capacity` split over `shards`: the shares differ by at most one and
/// add up to `capacity` exactly (guarantee 1).
fn share_of(capacity: usize, shards: usize, index: usize) -> usize {
    capacity / shards + usize::from(index < capacity % shards)
}

/// The panic of a plain method refused for `cause` (see [`Busy`]). `fallible` names its
/// `try_*` twin, which returns `Err(Busy)` instead, where there is one.
#[cold]
#[track_caller]
fn refused(method: &str, fallible: Option<&str>, cause: BusyCause) -> ! {
    let instead = match fallible {
        Some(twin) => format!("; Cache::{twin} returns Err(Busy) instead"),
        None => String::new(),
    };
    let why = match cause {
        BusyCause::Reentered => {
            "while this thread holds a lock of the same cache: it would deadlock"
        }
        BusyCause::LockHeld => {
            "while this thread holds a lock of another cache, and the call would wait for a lock \
             of this one (held by another thread, or each shard's in turn): waiting could deadlock"
        }
        BusyCause::WouldEvict => {
            "while this thread holds a shard lock, and the call would run the eviction callback \
             under it"
        }
        BusyCause::TooDeep => "while this thread already holds the locks of MAX_NESTING caches",
    };
    let kind = if cause == BusyCause::Reentered { "re-entrant call to" } else { "call to" };
    panic!(
        "shardlru: {kind} Cache::{method} from a key's Eq/Borrow or a value's Clone, {why}{instead}"
    )
}

impl<K, V> Cache<K, V, RandomState> {
    /// Starts building a cache. See [`Builder`] for the settings and their defaults.
    ///
    /// ```
    /// let cache = shardlru::Cache::<&str, u32>::builder().capacity(100).build()?;
    /// cache.insert("a", 1);
    /// assert_eq!(cache.get("a"), Some(1));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn builder() -> Builder<K, V, RandomState> {
        Builder::new()
    }
}

impl<K, V, S> Cache<K, V, S> {
    pub(crate) fn from_config(config: Config<K, V, S>) -> Self {
        let Config { capacity, shards, hasher, callback, max_pending_callbacks, on_panic, name } =
            config;
        let shards: Box<[_]> = (0..shards)
            .map(|index| {
                let share = share_of(capacity, shards, index);
                CachePadded::new(LockedShard {
                    lock: ShardLock::new(Shard::new(share)),
                    counters: ShardCounters::new(share),
                })
            })
            .collect();
        Self {
            shard_mask: shards.len() - 1,
            shards,
            hasher,
            capacity: AtomicUsize::new(capacity),
            resizing: Mutex::new(()),
            purger: callback
                .map(|callback| Purger::new(callback, max_pending_callbacks, on_panic, name)),
        }
    }

    /// How many entries the cache holds. Under concurrent writes this is a snapshot that may be
    /// a few operations old; it takes no lock.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(2).build()?;
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// cache.insert(3, 3);
    /// assert_eq!(cache.len(), 2);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.counters.len()).sum()
    }

    /// Whether the cache holds no entries (see [`len`](Self::len)).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(2).build()?;
    /// assert!(cache.is_empty());
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the cache holds: `len() <= capacity()` after every call returns.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(300).build()?;
    /// assert_eq!(cache.capacity(), 300);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        // Acquire: pairs with the `Release` store of a shrinking `resize`, so that a thread that
        // reads the new capacity and then `len()` sees the lengths of the shrunk shards.
        self.capacity.load(Acquire)
    }

    /// How many shards the cache has (fixed when it is built).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(64).shards(8).build()?;
    /// assert_eq!(cache.shard_count(), 8);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// How many evicted entries are queued: waiting for a purge to deliver them to the callback
    /// (the same figure as [`Stats::queued`]).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder()
    ///     .capacity(1)
    ///     .on_evict(|_, _| {})
    ///     .build()?;
    /// cache.insert(1, 1);
    /// cache.insert(2, 2); // evicts 1, and its purge delivers it
    /// assert_eq!(cache.queued(), 0);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.purger.as_ref().map_or(0, Purger::queued)
    }

    /// Delivers queued evictions to the callback, outside every lock, and returns how many it
    /// delivered.
    ///
    /// Returns 0 at once if nothing is queued, if `max_pending_callbacks` callbacks are already
    /// running (the entries stay queued), if this thread is already purging this cache (called
    /// from the callback: the outer purge goes on draining), or if this thread holds a shard
    /// lock of any cache. One call delivers at most what was queued when it started (up to a
    /// batch of 256) plus a few of the entries its own callbacks evict, so it always returns
    /// soon.
    ///
    /// Mutating calls purge on their own; to flush the queue when no writes come, call this
    /// until it returns 0 or [`queued`](Self::queued) is 0.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder()
    ///     .capacity(1)
    ///     .on_evict(|_, _| {})
    ///     .build()?;
    /// assert_eq!(cache.purge(), 0);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn purge(&self) -> usize {
        self.purger.as_ref().map_or(0, |purger| purger.purge(self))
    }

    /// A snapshot of the statistics, summed over the shards without locking them.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// cache.insert(1, 1);
    /// cache.get(&1);
    /// assert_eq!(cache.stats().hits, 1);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = Stats { capacity: self.capacity(), ..Stats::default() };
        for shard in self.shard_stats() {
            stats.add_shard(&shard);
        }
        if let Some(purger) = &self.purger {
            stats.add_purge(purger.counters(), purger.queued());
        }
        stats
    }

    /// Each shard's statistics, in shard order, without locking them: how full each shard is
    /// against its share, and how often its lock was found held.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(64).shards(4).build()?;
    /// assert!(cache.shard_stats().iter().all(|shard| shard.share == 16));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.shards.iter().map(|shard| shard.counters.snapshot(shard.lock.counts())).collect()
    }

    /// This cache's id for re-entry detection (`lock.rs`): the address of its shard array,
    /// unique among live caches and stable while the cache is borrowed.
    #[inline]
    fn id(&self) -> usize {
        self.shards.as_ptr() as usize
    }

    /// Locks a shard, or says why not (see `lock.rs`).
    #[inline]
    fn lock<'a>(
        &self,
        shard: &'a LockedShard<K, V>,
    ) -> Result<ShardGuard<'a, Shard<K, V>>, BusyCause> {
        shard.lock.lock(self.id())
    }

    /// Why this thread may not run a call that locks every shard in turn and hands entries to
    /// the callback (`clear`, `resize`), or `None` if it may: a thread holding a shard lock
    /// may neither wait for a lock nor run the callback.
    fn refuses_whole_cache_call(&self) -> Option<BusyCause> {
        if !lock::holds_any() {
            None
        } else if lock::holds_lock_of(self.id()) {
            Some(BusyCause::Reentered)
        } else if self.purger.is_some() {
            Some(BusyCause::WouldEvict)
        } else {
            Some(BusyCause::LockHeld)
        }
    }

    /// Hands the entries that left the shards to the callback's queue, in order, or drops them
    /// if there is no callback. Called with no lock held: the drops may run user code.
    fn hand_off(&self, entries: Vec<(K, V)>, cause: RemovalCause) {
        let Some(purger) = &self.purger else { return };
        for (key, value) in entries {
            // Handed back (and dropped here) only while the cache is being dropped.
            drop(purger.push(Evicted { key, value, cause }));
        }
    }

    /// Removes every entry. With a callback, each is delivered with [`RemovalCause::Clear`];
    /// without, each is dropped, outside the lock.
    ///
    /// Shards are cleared one after another, so entries that other threads insert meanwhile may
    /// survive.
    ///
    /// # Panics
    ///
    /// If called while this thread holds a shard lock of any cache (from a key's `Eq`/`Borrow`
    /// or a value's `Clone`): it would wait for locks, or run the callback, under that lock.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// cache.insert(1, 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn clear(&self) {
        if let Some(cause) = self.refuses_whole_cache_call() {
            refused("clear", None, cause);
        }
        for shard in self.shards.iter() {
            let drained = {
                let mut guard =
                    self.lock(shard).unwrap_or_else(|cause| refused("clear", None, cause));
                let drained = guard.drain();
                shard.counters.record_len(0);
                drained
            };
            // The shard lock is released: the entries may be dropped or queued.
            self.hand_off(drained, RemovalCause::Clear);
        }
        self.purge();
    }

    /// Changes the capacity. Shrinking evicts each shard's least recently used entries beyond
    /// its new share, delivered with [`RemovalCause::Shrink`] (or dropped without a callback).
    /// The shard count stays as built.
    ///
    /// # Errors
    ///
    /// [`ResizeError`] if `capacity` is 0 or below the shard count; the cache is unchanged.
    ///
    /// # Panics
    ///
    /// As [`clear`](Self::clear).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(4).shards(1).build()?;
    /// for k in 0..4 {
    ///     cache.insert(k, k);
    /// }
    /// cache.resize(2).unwrap();
    /// assert_eq!((cache.len(), cache.capacity()), (2, 2));
    /// assert_eq!(cache.peek(&0), None); // least recent went first
    /// assert_eq!(cache.peek(&3), Some(3));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn resize(&self, capacity: usize) -> Result<(), ResizeError> {
        let shards = self.shards.len();
        if capacity == 0 {
            return Err(ResizeError::ZeroCapacity);
        }
        if capacity < shards {
            return Err(ResizeError::FewerThanShards { capacity, shards });
        }
        let share = capacity.div_ceil(shards);
        if share > MAX_LEN {
            return Err(ResizeError::ShareTooLarge { share, max: MAX_LEN });
        }
        if let Some(cause) = self.refuses_whole_cache_call() {
            refused("resize", None, cause);
        }
        let mut evicted = Vec::new();
        {
            let _serial = self.resizing.lock();
            // Grow the total before the shares and shrink it after them, so that `capacity()`
            // never reads below what the shards may hold, in both orders a reader may read in:
            // * growing, `len()` then `capacity()`: each shard publishes its length with
            //   `Release` under its lock, after this store in program order, so a reader whose
            //   `Acquire` load sees a length the new share allows sees this capacity too;
            // * shrinking, `capacity()` then `len()`: the `Release` store below comes after
            //   every shard has shrunk and published its length, so a reader whose `Acquire`
            //   load (`capacity()`) sees the new capacity then reads the shrunk lengths.
            // The store of a growing resize can be `Relaxed` (the lengths' `Release` orders it);
            // `resizing` orders resizes among themselves, so the load is `Relaxed` too.
            let growing = capacity > self.capacity.load(Relaxed);
            if growing {
                self.capacity.store(capacity, Relaxed);
            }
            for (index, shard) in self.shards.iter().enumerate() {
                let share = share_of(capacity, shards, index);
                let Ok(mut guard) = self.lock(shard) else {
                    unreachable!("checked above: this thread holds no shard lock")
                };
                let removed = guard.set_share(share);
                shard.counters.record_share(share, removed.len(), guard.len());
                evicted.extend(removed);
            }
            if !growing {
                self.capacity.store(capacity, Release);
            }
        }
        // No lock is held: the evicted entries may be dropped or queued.
        self.hand_off(evicted, RemovalCause::Shrink);
        self.purge();
        Ok(())
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Hashes `key` and picks its shard: the one hash of every keyed call.
    ///
    /// The hash goes through `Hash::hash` into a fresh `Hasher`, never `BuildHasher::hash_one`:
    /// `Borrow` lookups rely on a key and its borrowed form feeding a hasher the same bytes, and
    /// some `hash_one` overrides (ahash's specialised one on nightly compilers) hash a `u64` or a
    /// `str` by another route than a type whose `Hash` writes that `u64` or `str`, so a
    /// `String` key looked up by `&str` would be missed.
    #[inline]
    #[expect(clippy::manual_hash_one, reason = "hash_one may be overridden inconsistently")]
    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &LockedShard<K, V>) {
        let mut hasher = self.hasher.build_hasher();
        key.hash(&mut hasher);
        let hash = hasher.finish();
        let index = (hash >> SHARD_HASH_SHIFT) as usize & self.shard_mask;
        (hash, &self.shards[index])
    }

    /// Returns a clone of the value for `key` and makes the entry its shard's most recently
    /// used. Put `Arc`s in the cache when values are costly to clone: the clone runs under the
    /// shard lock.
    ///
    /// # Panics
    ///
    /// If called from a key's `Eq`/`Borrow` or a value's `Clone`, where going on could deadlock
    /// (see [`Busy`]); [`try_get`](Self::try_get) returns `Err` instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<String, u32>::builder().capacity(8).build()?;
    /// cache.insert("a".to_string(), 1);
    /// assert_eq!(cache.get("a"), Some(1)); // borrowed lookup: &str for a String key
    /// assert_eq!(cache.get("b"), None);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.try_get(key).unwrap_or_else(|busy| refused("get", Some("try_get"), busy.cause()))
    }

    /// [`get`](Self::get), or `Err(Busy)` where `get` would panic.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// assert_eq!(cache.try_get(&1), Ok(None));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn try_get<Q>(&self, key: &Q) -> Result<Option<V>, Busy>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (hash, shard) = self.locate(key);
        let mut guard = self.lock(shard).map_err(|cause| Busy::new(cause, ()))?;
        let value = guard.get(hash, key).cloned();
        shard.counters.record_get(value.is_some());
        Ok(value)
    }

    /// Returns a clone of the value for `key` without changing its recency.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get); [`try_peek`](Self::try_peek) returns `Err` instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(2).shards(1).build()?;
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// assert_eq!(cache.peek(&1), Some(1)); // 1 stays least recent …
    /// cache.insert(3, 3);
    /// assert_eq!(cache.peek(&1), None); // … so it is evicted
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.try_peek(key).unwrap_or_else(|busy| refused("peek", Some("try_peek"), busy.cause()))
    }

    /// [`peek`](Self::peek), or `Err(Busy)` where `peek` would panic.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// assert_eq!(cache.try_peek(&1), Ok(None));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn try_peek<Q>(&self, key: &Q) -> Result<Option<V>, Busy>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (hash, shard) = self.locate(key);
        let guard = self.lock(shard).map_err(|cause| Busy::new(cause, ()))?;
        Ok(guard.peek(hash, key).cloned())
    }

    /// Whether `key` is in the cache, without changing its recency.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get); [`try_contains_key`](Self::try_contains_key) returns `Err` instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// cache.insert(1, 1);
    /// assert!(cache.contains_key(&1));
    /// assert!(!cache.contains_key(&2));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.try_contains_key(key)
            .unwrap_or_else(|busy| refused("contains_key", Some("try_contains_key"), busy.cause()))
    }

    /// [`contains_key`](Self::contains_key), or `Err(Busy)` where it would panic.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// assert_eq!(cache.try_contains_key(&1), Ok(false));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn try_contains_key<Q>(&self, key: &Q) -> Result<bool, Busy>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        let guard = self.lock(shard).map_err(|cause| Busy::new(cause, ()))?;
        Ok(guard.peek(hash, key).is_some())
    }

    /// Inserts `value` under `key` as its shard's most recently used entry and returns the value
    /// it replaced, if any (the cache keeps its own copy of the key then, as `HashMap` does). If
    /// the shard is full, its least recently used entry is evicted and goes to the callback.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get), and also when called from a key's `Eq`/`Borrow` or a value's
    /// `Clone` if the insert would evict into the callback ([`BusyCause::WouldEvict`]);
    /// [`try_insert`](Self::try_insert) returns `Err` instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, &str>::builder().capacity(8).build()?;
    /// assert_eq!(cache.insert(1, "a"), None);
    /// assert_eq!(cache.insert(1, "b"), Some("a"));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        self.try_insert(key, value)
            .unwrap_or_else(|busy| refused("insert", Some("try_insert"), busy.cause()))
    }

    /// [`insert`](Self::insert), or `Err(Busy)` where `insert` would panic. The error hands
    /// back the key and the value, so nothing is lost.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// assert_eq!(cache.try_insert(1, 10), Ok(None));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>, Busy<(K, V)>> {
        let (hash, shard) = self.locate(&key);
        let mut guard = match self.lock(shard) {
            Ok(guard) => guard,
            Err(cause) => return Err(Busy::new(cause, (key, value))),
        };
        // The lookup (user `Eq`) runs here, not inside `Shard::insert`: if it panics, `guard`,
        // declared after `key` and `value`, is dropped first, so they are dropped unlocked.
        let existing = guard.lookup(hash, &key);
        if guard.is_nested() && self.purger.is_some() && guard.would_evict(existing) {
            // Its entry would be queued with no purge able to run: see the module docs.
            drop(guard);
            return Err(Busy::new(BusyCause::WouldEvict, (key, value)));
        }
        let inserted = guard.insert(existing, hash, key, value);
        let evicted = matches!(inserted, Inserted::New { evicted: Some(_) });
        shard.counters.record_insert(evicted, guard.len());
        drop(guard);
        // The shard lock is released: the spare key and the evicted entry may be dropped or
        // queued; the replaced value goes back to the caller.
        match inserted {
            Inserted::Replaced { key, old } => {
                // No purge: it queued nothing, and a callback panic resumed here would unwind
                // past `old` (see purge.rs, "Exactly once").
                drop(key);
                Ok(Some(old))
            }
            Inserted::New { evicted: Some((key, value)) } => {
                // Straight to the callback when a slot is free, else queued and purged. Without
                // a callback the entry is dropped here.
                if let Some(purger) = &self.purger {
                    let evicted = Evicted { key, value, cause: RemovalCause::Capacity };
                    purger.push_and_purge(self, evicted);
                }
                Ok(None)
            }
            Inserted::New { evicted: None } => {
                self.purge();
                Ok(None)
            }
        }
    }

    /// Removes `key` and returns its value, if present.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get); [`try_remove`](Self::try_remove) returns `Err` instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// cache.insert(1, 10);
    /// assert_eq!(cache.remove(&1), Some(10));
    /// assert_eq!(cache.remove(&1), None);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.try_remove(key)
            .unwrap_or_else(|busy| refused("remove", Some("try_remove"), busy.cause()))
    }

    /// [`remove`](Self::remove), or `Err(Busy)` where `remove` would panic.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// assert_eq!(cache.try_remove(&1), Ok(None));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    #[inline]
    pub fn try_remove<Q>(&self, key: &Q) -> Result<Option<V>, Busy>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        // Before the value is in hand: see purge.rs, "Exactly once".
        self.purge();
        let mut guard = self.lock(shard).map_err(|cause| Busy::new(cause, ()))?;
        let removed = guard.remove(hash, key);
        shard.counters.record_len(guard.len());
        drop(guard);
        // The shard lock is released: the stored key may be dropped.
        Ok(removed.map(|(_key, value)| value))
    }

    /// Clones every entry, shard by shard, each shard from its most to its least recently used
    /// entry, without changing recency. Each shard is locked while it is copied; the copy is
    /// consistent per shard, not across shards.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).shards(1).build()?;
    /// cache.insert(1, 10);
    /// cache.insert(2, 20);
    /// cache.get(&1);
    /// assert_eq!(cache.snapshot(), [(1, 10), (2, 20)]);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn snapshot(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        // Keys and values are cloned into separate vectors declared before each guard, so that
        // if a `Clone` panics, the clones already made are dropped after the lock is released.
        let (mut keys, mut values) =
            (Vec::with_capacity(self.len()), Vec::with_capacity(self.len()));
        for shard in self.shards.iter() {
            let guard = self.lock(shard).unwrap_or_else(|cause| refused("snapshot", None, cause));
            for (key, value) in guard.iter_mru() {
                keys.push(key.clone());
                values.push(value.clone());
            }
        }
        keys.into_iter().zip(values).collect()
    }
}

impl<K, V, S> Drop for Cache<K, V, S> {
    /// Delivers the entries still queued to the callback; the entries in the shards are dropped
    /// with the cache. Entries that the callbacks evict during the drop are dropped too, not
    /// delivered, so the drop always ends (see `purge.rs`, "Drop").
    ///
    /// A cache with a callback dropped while its thread holds a shard lock (in another cache's
    /// `Eq` or `Clone`) moves its contents into a cache that the thread drops, in the same way,
    /// when it releases its outermost lock: no callback and no entry's `Drop` runs under the
    /// lock.
    fn drop(&mut self) {
        let Some(purger) = &self.purger else { return };
        if lock::holds_any() && nesting::can_put_off_drops() {
            let put_off = purger.put_off();
            let moved = put_off(self);
            nesting::record(|record| record.put_off_drop(moved));
            return;
        }
        purger.drain_on_drop(self);
    }
}

impl<K, V, S: Clone> Cache<K, V, S> {
    pub(crate) fn move_out(&mut self) -> Self {
        Cache {
            shards: std::mem::take(&mut self.shards),
            shard_mask: self.shard_mask,
            hasher: self.hasher.clone(),
            capacity: AtomicUsize::new(self.capacity.load(Relaxed)),
            resizing: Mutex::new(()),
            purger: self.purger.take(),
        }
    }
}

impl<K, V, S> std::fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("shards", &self.shard_count())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}
