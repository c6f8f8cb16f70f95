//! The cache: hash once, pick the shard, lock it (in read mode to look up, in write mode to
//! change), call the shard, unlock, then drop or queue what came out and purge. This is the only
//! file that takes a shard lock.
//!
//! Every keyed method has the same shape:
//!
//! ```text
//! weight = weigher(key, value)  user code: inserts weigh their entry here, before any lock
//! hash = hasher(key)            user Hash runs here, before any lock
//! shard = shards[hash bits]     no second hash under the lock
//! [purge]                       `remove` purges here, before a value is in hand (purge.rs)
//! guard = read / write(shard)?  refused (Busy) where waiting could deadlock (lock.rs)
//! … shard work …                user Eq/Borrow (and Clone for get/peek) may run here
//! drop(guard)                   ── the lock is released ──
//! drop / queue the removed      user Drop runs here, never under a lock
//! purge                         the callback runs here (writes, but not a replacing insert)
//! ```
//!
//! # One capacity for the whole cache
//!
//! The capacity is a budget of weight shared by every shard (guarantee 1): a shard holds what its
//! keys bring, and the cache evicts only when the whole cache is full.
//!
//! * `weight` counts the weight of every entry, plus what inserts in flight have claimed. An
//!   insert claims its entry's weight with a compare-exchange that fails past the capacity
//!   ([`Cache::reserve`]); a removal gives it back after the entry has left its shard. So the
//!   entries' total weight never exceeds the capacity, at any instant (a shrinking `resize`
//!   aside, until it returns).
//! * When a claim fails, the insert makes room: it evicts one entry at a time, each time the
//!   least recent of a shard chosen by the [`EvictionScope`], then claims again. Each shard
//!   publishes the stamp of its least recent entry (`tail_stamp`) so that the choice takes no
//!   lock; stamps compare across shards (`recency.rs`). A victim in the inserting shard is
//!   evicted under the lock already held, and in the common case its node is recycled for the
//!   new entry; a victim elsewhere is evicted after the inserting shard's lock is released:
//!   **a thread never holds two shard locks of one cache**.
//! * Published stamps are hints: a hit raises its entry's stamp without publishing. Under
//!   [`EvictionScope::Global`] the victim shard re-checks, under its lock and after its drain,
//!   that its least recent entry is still the oldest, and passes the choice on if not
//!   ([`Cache::evict_from`]; loom: `victim_choice_races_a_touch_of_the_tail`).
//! * `limit` is what claims are checked against, and `capacity` what [`Cache::capacity`]
//!   reports: they differ only while a `resize` runs (see there for the orderings).
//! * Without a weigher, [`Cache::len`] is the weight: one load, never above the capacity. A sum
//!   of the shards' lengths could count an entry twice while an insert moves capacity from one
//!   shard to another.
//!
//! A call made while its thread holds a shard lock (from a key's `Eq`/`Borrow` or a value's
//! `Clone`) never queues an entry: a write that would evict there is refused
//! ([`BusyCause::WouldEvict`]), because its purge could not run the callback and nobody else
//! would be bound to. For the same reason a cache dropped there puts its drop off until the
//! thread releases its outermost lock (`Drop for Cache`).

use crate::builder::{Builder, EvictionScope};
use crate::error::{Busy, BusyCause, ResizeError};
use crate::evict::{Evicted, RemovalCause};
use crate::load::{self, Load, Loader};
use crate::lock::{self, HitGuard, ReadGuard, ShardLock, WriteGuard};
use crate::nesting;
use crate::purge::{OnEvict, PanicPolicy, Purger, Resume};
use crate::shard::{EMPTY, Record, Removed, Shard};
use crate::slab::{MAX_LEN, NodeId};
use crate::stats::{GetCounters, ShardCounters, ShardStats, Stats};
use crate::sync::{
    AtomicU64, Mutex,
    Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst},
    fence,
};
use ahash::RandomState;
use crossbeam_utils::CachePadded;
use std::borrow::Borrow;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// The shard index comes from bits 32 and up of the hash. hashbrown takes the bucket index from
/// the low bits and its tag from the top 7, so the middle bits spread keys over shards without
/// making keys of one shard collide inside its table.
const SHARD_HASH_SHIFT: u32 = 32;

/// The weigher: an entry's weight, from its key and value.
pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// A concurrent, sharded LRU cache with one capacity for all its shards. See the [crate
/// docs](crate) for the design and its guarantees.
///
/// `Cache` is `Send + Sync` when its keys and values are `Send + Sync` (and its hasher is `Send +
/// Sync`): hits on one shard run at once, each cloning its value under a shared lock, as in moka
/// and quick_cache. Share it between threads with `Arc` or a `static`, and call every method on
/// `&self`. A cache with an eviction callback holds `'static` keys, values and hasher, and its
/// hasher is `Clone` (see [`Builder::on_evict`]).
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
    /// The capacity `capacity()` reports, in weight.
    capacity: AtomicU64,
    /// The capacity claims are checked against: `capacity`, except while a shrinking `resize`
    /// runs, when it is already the new one.
    limit: AtomicU64,
    /// The entries' total weight, plus the claims of inserts in flight. Never above `limit`
    /// (see `reserve`).
    weight: CachePadded<AtomicU64>,
    /// Serialises `resize` calls. Held while shard locks are taken one at a time, never across
    /// user code.
    resizing: Mutex<()>,
    /// `None` when no callback is configured: nothing is ever queued then.
    purger: Option<Purger<K, V, S>>,
    /// `None`: every entry weighs 1.
    weigher: Option<Weigher<K, V>>,
    scope: EvictionScope,
}

/// One shard behind its lock, with what the cache publishes about it.
///
/// `repr(C)`, in this order because of what a hit writes: its counter (`gets`), the lock's
/// acquisition count, the lock word and the shard's clock (and, on a node's first touch, the
/// log's length). With `ShardLock`, `Shard` and `Touches` laid out to match, these share the
/// block's first 64-byte line, so a hit dirties one line of the shard, not three: at two
/// threads, each line that the other thread wrote last has to move between cores
/// (BENCHMARKS.md, notes).
#[repr(C)]
struct LockedShard<K, V> {
    gets: GetCounters,
    lock: ShardLock<Shard<K, V>>,
    counters: ShardCounters,
    /// The stamp of the shard's least recent entry when it was last published, or `EMPTY`.
    /// Hits only raise stamps, so it is a lower bound of the real one. Stored under the lock in
    /// write mode, loaded without it: `Relaxed`, a hint that decides only which shard to lock.
    tail_stamp: AtomicU64,
}

/// The entry an insert replaces, which the evictions that make room for it must spare.
struct Keep<'a, K, V> {
    /// The inserting shard, and its least recent stamp not counting the entry.
    shard: usize,
    tail: u64,
    /// Finds the entry in the inserting shard.
    find: &'a dyn Fn(&Shard<K, V>) -> Option<NodeId>,
}

/// What an insert does when its key is present, and whose load it completes (`load.rs`).
enum Present<'a, V> {
    /// `insert`: the value is replaced and handed back.
    Replace,
    /// `get_or_insert`: the resident value stays, and the caller gets a clone of it, made by
    /// this function (`V::clone`, passed so that the insert path needs no `V: Clone`).
    Keep(fn(&V) -> V),
    /// A load's completion: as `Keep`, and the value is stored only while the load's record is
    /// still in its shard.
    Complete(fn(&V) -> V, &'a Arc<Load<V>>),
}

/// What an insert did.
enum Inserted<K, V> {
    /// Stored; the key was absent.
    New,
    /// Stored over this value (`Present::Replace`).
    Replaced(V),
    /// Not stored: the key is present, with this value (a clone); the offered key and value
    /// come back.
    Kept(V, K, V),
    /// Not stored: the load was superseded; the offered key and value come back.
    Superseded(K, V),
    /// Not stored: heavier than the whole capacity, so it went to the callback; this is a clone.
    TooHeavy(V),
}

// By hand: derived, they would ask for `V: Copy`.
impl<V> Clone for Present<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Present<'_, V> {}

impl<V> Present<'_, V> {
    /// For a key present at `id`, under `Keep` or `Complete`: records the hit and clones the
    /// value (user `Clone`, under the lock, as `get` does).
    #[cold]
    fn keep<K>(self, guard: &mut Shard<K, V>, shard: &LockedShard<K, V>, id: NodeId) -> V {
        let (Self::Keep(clone) | Self::Complete(clone, _)) = self else {
            unreachable!("`Replace` replaces a present value")
        };
        if let Self::Keep(_) = self {
            shard.gets.record_exclusive(true);
        }
        clone(guard.touch(id))
    }

    /// For an absent key: whether the insert may store it. A write supersedes the key's load, if
    /// any, leaving its record in `record` (user `Eq`, before anything changes); a completion
    /// may store only while its record is in the shard. One check when no load is in flight.
    #[inline(always)]
    fn admits<K, Q>(
        self,
        guard: &mut Shard<K, V>,
        hash: u64,
        key: &Q,
        record: &mut Option<Record<K, V>>,
    ) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if !guard.has_loads() {
            // Nothing to supersede; a completion's record is gone (`clear` took it).
            return !matches!(self, Self::Complete(..));
        }
        match self {
            Self::Complete(_, load) => guard.holds_load(hash, load),
            Self::Replace | Self::Keep(_) => {
                *record = guard.supersede_load(hash, key);
                true
            }
        }
    }

    /// Just before an admitted insert stores its entry: a completion takes its record out.
    #[inline(always)]
    fn complete<K>(self, guard: &mut Shard<K, V>, hash: u64, record: &mut Option<Record<K, V>>) {
        if let Self::Complete(_, load) = self {
            *record = guard.forget_load(hash, load);
        }
    }
}

/// An entry on its way to the callback, with its key's hash (purge.rs, "Loads wait for
/// write-backs").
type Leaving<K, V> = (Evicted<K, V>, u64);

/// What a caller of a loader finds for a missing key (see `Cache::join`).
enum Joined<K, V> {
    /// The key is present after all.
    Hit(V),
    /// Another caller is loading it.
    Wait(Arc<Load<V>>),
    /// Nobody is: this caller loads. With the record of an abandoned load it took over, to be
    /// dropped once the caller's `Loader` guards the new load (a key's `Drop` may panic).
    Start(Arc<Load<V>>, Option<Record<K, V>>),
}

/// A validated configuration, from [`Builder::build`].
pub(crate) struct Config<K, V, S> {
    pub(crate) capacity: usize,
    pub(crate) shards: usize,
    pub(crate) hasher: S,
    pub(crate) callback: Option<OnEvict<K, V, S>>,
    pub(crate) max_pending_callbacks: usize,
    pub(crate) max_queued: usize,
    pub(crate) on_panic: PanicPolicy,
    pub(crate) name: Box<str>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) scope: EvictionScope,
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
        "shardlru: {kind} Cache::{method} from user code run under a shard lock (a key's \
         Eq/Borrow, a value's Clone, a retain or remove_if predicate), {why}{instead}"
    )
}

impl<K, V> Cache<K, V, RandomState> {
    /// A cache of `capacity` entries with every other setting at its default (see [`Builder`]):
    /// `Cache::builder().capacity(capacity).build()`, for the common case.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0, with [`BuildError::ZeroCapacity`](crate::BuildError::ZeroCapacity)'s
    /// message. The builder returns
    /// the error instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u64, String>::new(1_000);
    /// assert_eq!(cache.capacity(), 1_000);
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        match Self::builder().capacity(capacity).build() {
            Ok(cache) => cache,
            Err(error) => panic!("shardlru: Cache::new({capacity}): {error}"),
        }
    }

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
        let Config {
            capacity,
            shards,
            hasher,
            callback,
            max_pending_callbacks,
            max_queued,
            on_panic,
            name,
            weigher,
            scope,
        } = config;
        let shards: Box<[_]> = (0..shards)
            .map(|_| {
                CachePadded::new(LockedShard {
                    gets: GetCounters::new(),
                    lock: ShardLock::new(Shard::new(scope != EvictionScope::Shard)),
                    counters: ShardCounters::new(),
                    tail_stamp: AtomicU64::new(EMPTY),
                })
            })
            .collect();
        Self {
            shard_mask: shards.len() - 1,
            shards,
            hasher,
            capacity: AtomicU64::new(capacity as u64),
            limit: AtomicU64::new(capacity as u64),
            weight: CachePadded::new(AtomicU64::new(0)),
            resizing: Mutex::new(()),
            purger: callback.map(|callback| {
                Purger::new(callback, max_pending_callbacks, max_queued, on_panic, name)
            }),
            weigher,
            scope,
        }
    }

    /// How many entries the cache holds. It takes no lock: under concurrent writes it may count
    /// an insert in flight. Without a weigher it is never above [`capacity`](Self::capacity).
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
        match self.weigher {
            // Every entry weighs 1: the weight is the count, in one load. A sum of the shards'
            // lengths, loaded one after another, could count an entry that an insert evicted
            // from one shard for another already counted (loom: `two_inserters_race_for_the_
            // last_slot`).
            None => self.weight() as usize,
            Some(_) => self.shards.iter().map(|shard| shard.counters.len()).sum(),
        }
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

    /// The total weight of the entries: their count when no weigher is set. Never above
    /// [`capacity`](Self::capacity) once a call has returned (and at no instant, but while a
    /// shrinking `resize` runs).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, Vec<u8>>::builder()
    ///     .capacity(1_000)
    ///     .weigher(|_key, value| value.len() as u64)
    ///     .build()?;
    /// cache.insert(1, vec![0; 300]);
    /// cache.insert(2, vec![0; 500]);
    /// assert_eq!((cache.len(), cache.weight()), (2, 800));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn weight(&self) -> u64 {
        // Acquire: see `resize`.
        self.weight.load(Acquire)
    }

    /// The capacity: the most weight the cache holds, which is the most entries when no
    /// weigher is set. `weight() <= capacity()` after every call returns.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(300).build()?;
    /// assert_eq!(cache.capacity(), 300);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        // Acquire: pairs with `resize`'s `Release` stores; see there.
        self.capacity.load(Acquire) as usize
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
    /// Mutating calls purge on their own (unless [purge threads](Self::spawn_purge_threads) run:
    /// then this call is the one way a caller delivers on its own thread). To empty the queue,
    /// call [`flush`](Self::flush).
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

    /// Delivers everything queued when it is called, waiting for a delivery slot whenever
    /// `max_pending_callbacks` callbacks are running, and returns how many entries it delivered.
    /// Entries queued meanwhile (by other threads, or by its own callbacks) are delivered only
    /// up to a few dozen, so it always ends.
    ///
    /// Use it to empty the backlog: after a [`clear`](Self::clear) of a large cache, before a
    /// shutdown that must not wait for the cache's drop, or in a test. [`purge`](Self::purge)
    /// is the step that ends each write: one bounded batch, and never a wait.
    ///
    /// Returns 0 at once if this thread holds a shard lock of any cache, or is running this
    /// cache's callback (the outer purge goes on draining). Called from a callback of another
    /// cache it delivers what it can without waiting for a slot, which a thread inside a
    /// callback must never do.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// static DELIVERED: AtomicUsize = AtomicUsize::new(0);
    /// let cache = shardlru::Cache::<u32, u32>::builder()
    ///     .capacity(10_000)
    ///     .on_evict(|_, _| {
    ///         DELIVERED.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// for key in 0..10_000 {
    ///     cache.insert(key, key);
    /// }
    /// cache.clear(); // queues 10,000 entries, and its purge delivers one batch of them
    /// assert!(cache.queued() > 0);
    /// let delivered = cache.flush();
    /// assert_eq!((cache.queued(), DELIVERED.load(Ordering::Relaxed)), (0, 10_000));
    /// assert!(delivered > 0);
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn flush(&self) -> usize {
        self.purger.as_ref().map_or(0, |purger| purger.flush(self, Resume::AtOnce))
    }

    /// What ends a write: its purge (or a delivery thread woken), then the hold at
    /// `max_queued` (purge.rs, "The bound").
    #[inline]
    fn after_write(&self) {
        if let Some(purger) = &self.purger {
            purger.after_write(self);
        }
    }

    /// The purge step, for `background.rs`.
    pub(crate) fn purger(&self) -> Option<&Purger<K, V, S>> {
        self.purger.as_ref()
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
            stats.add_purge(purger.counters(), purger.queued(), purger.queued_peak());
        }
        stats
    }

    /// Each shard's statistics, in shard order, without locking them: how many entries and how
    /// much weight each holds, and how often its lock was found held.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(64).shards(4).build()?;
    /// for key in 0..64 {
    ///     cache.insert(key, key);
    /// }
    /// let shards = cache.shard_stats();
    /// assert_eq!(shards.iter().map(|shard| shard.len).sum::<usize>(), 64); // nothing evicted
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.shards
            .iter()
            .map(|shard| shard.counters.snapshot(&shard.gets, shard.lock.counts()))
            .collect()
    }

    /// Checks every shard's invariants (`shard.rs`, `recency.rs`, `slab.rs`) before and after a
    /// drain, and that the published lengths and weights add up: for loom models, once their
    /// threads have joined.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn validate(&self) {
        let mut weight = 0;
        for shard in self.shards.iter() {
            let mut guard = self.write(shard).expect("no lock is held");
            guard.validate();
            guard.drain();
            guard.validate();
            assert_eq!(shard.counters.len(), guard.len(), "a shard's published length is stale");
            weight += guard.weight();
        }
        assert_eq!(self.weight(), weight, "the cache's weight is not the sum of its shards'");
        assert!(weight <= self.capacity() as u64, "weight {weight} over the capacity");
    }

    /// This cache's id for re-entry detection (`lock.rs`): the address of its shard array,
    /// unique among live caches and stable while the cache is borrowed.
    #[inline]
    fn id(&self) -> usize {
        self.shards.as_ptr() as usize
    }

    /// Locks a shard in read mode, or says why not (see `lock.rs`).
    #[inline]
    fn read<'a>(
        &self,
        shard: &'a LockedShard<K, V>,
    ) -> Result<ReadGuard<'a, Shard<K, V>>, BusyCause> {
        shard.lock.read(self.id())
    }

    /// Locks a shard in write mode, or says why not (see `lock.rs`).
    #[inline]
    fn write<'a>(
        &self,
        shard: &'a LockedShard<K, V>,
    ) -> Result<WriteGuard<'a, Shard<K, V>>, BusyCause> {
        shard.lock.write(self.id())
    }

    /// Publishes what a write changed in a shard (write mode): its length, its weight and, when
    /// the eviction scope compares shards, the stamp of its least recent entry.
    #[inline]
    fn publish(&self, shard: &LockedShard<K, V>, guard: &mut Shard<K, V>) {
        shard.counters.publish(guard.len(), guard.weight());
        if self.scope != EvictionScope::Shard {
            // Relaxed: a hint (see `LockedShard::tail_stamp`).
            shard.tail_stamp.store(guard.tail_stamp(), Relaxed);
        }
    }

    /// Claims `weight` of the capacity for an entry about to be stored; `false` if it does not
    /// fit. See "One capacity for the whole cache".
    #[inline]
    fn reserve(&self, weight: u64) -> bool {
        // Acquire: pairs with `resize`'s `Release` store of a raised limit, so that a length
        // this claim makes possible is published after the raised capacity (see `resize`).
        let limit = self.limit.load(Acquire);
        // Relaxed load: a first guess for the compare-exchange, which checks it.
        let mut current = self.weight.load(Relaxed);
        let claimed = loop {
            let Some(next) = current.checked_add(weight).filter(|&next| next <= limit) else {
                return false;
            };
            // AcqRel: the read-modify-writes of one atomic are totally ordered, so no two claims
            // can pass the limit together whatever the ordering. Release publishes the claim
            // (see `resize`, growing); Acquire orders it after the removals it counted on.
            match self.weight.compare_exchange_weak(current, next, AcqRel, Relaxed) {
                Ok(_) => break next,
                // Another insert claimed or a removal gave back meanwhile: check again.
                Err(actual) => current = actual,
            }
        };
        // Store buffering with a shrinking `resize`, which stores the lower limit, fences and
        // loads the weight: of two `SeqCst` fences one comes first, so either the resize sees
        // this claim and evicts for it, or this sees the lower limit and gives the claim back.
        // (Fences, not `SeqCst` accesses: loom models the fences only.)
        fence(SeqCst);
        if claimed > self.limit.load(Relaxed) {
            self.release(weight);
            return false;
        }
        true
    }

    /// Gives back `weight` of the capacity, once the entry that held it has left its shard (or a
    /// claim was not used). An entry's weight goes back **before its shard lock is released**:
    /// given back after, an insert that took the lock in between would find the cache full
    /// and evict, though no sequential order of the two calls evicts (a remove then an insert
    /// of a new key into a cache that was full: the insert must not evict). Found by the
    /// linearizability checker (`tests/linearizability.rs`).
    #[inline]
    fn release(&self, weight: u64) {
        if weight != 0 {
            // Release: a thread that claims this weight (it reads this value or a later one)
            // and then publishes a length finds the victim's shard already shrunk.
            self.weight.fetch_sub(weight, Release);
        }
    }

    /// [`release`](Self::release) for the entry a shard call took out, if any: called under
    /// its shard lock, after the shard is published.
    #[inline]
    fn release_removed(&self, removed: &Option<Removed<K, V>>) {
        if let Some(&(_, _, weight, _)) = removed.as_ref() {
            self.release(weight);
        }
    }

    /// The shard to take a victim from to make room for an insert into shard `own`, whose
    /// least recent entry has stamp `own_tail` (`EMPTY` if it has no candidate). `hash` picks
    /// the second candidate of [`EvictionScope::TwoChoices`].
    fn victim_shard(&self, own: usize, own_tail: u64, hash: u64) -> usize {
        // Relaxed: hints (see `LockedShard::tail_stamp`).
        let published = |index: usize| self.shards[index].tail_stamp.load(Relaxed);
        let n = self.shards.len();
        match self.scope {
            EvictionScope::Shard if own_tail != EMPTY => own,
            EvictionScope::Shard => self.fullest_shard(),
            EvictionScope::TwoChoices if n > 1 => {
                // Another shard, uniform over the other n - 1, from hash bits that pick neither
                // the shard nor the bucket. Two empty candidates: any shard with an entry.
                let other = (own + 1 + (hash as usize >> 8) % (n - 1)) & self.shard_mask;
                let other_tail = published(other);
                match own_tail.min(other_tail) {
                    EMPTY => self.oldest_tail(&[(own, own_tail)]),
                    oldest if oldest == own_tail => own,
                    _ => other,
                }
            }
            _ => self.oldest_tail(&[(own, own_tail)]),
        }
    }

    /// The shard whose least recent entry is the oldest, with the stamps in `known` standing for
    /// their shards' and the published stamps for the others'. Ties go to the lower index.
    fn oldest_tail(&self, known: &[(usize, u64)]) -> usize {
        (0..self.shards.len())
            .min_by_key(|&index| match known.iter().find(|&&(shard, _)| shard == index) {
                Some(&(_, tail)) => tail,
                // Relaxed: hints (see `LockedShard::tail_stamp`).
                None => self.shards[index].tail_stamp.load(Relaxed),
            })
            .expect("a cache has at least one shard")
    }

    /// The shard holding the most entries, for the `Shard` scope, which publishes no stamps,
    /// when an insert's own shard has no candidate, and for a shrinking `resize`.
    fn fullest_shard(&self) -> usize {
        (0..self.shards.len())
            .max_by_key(|&index| self.shards[index].counters.len())
            .expect("a cache has at least one shard")
    }

    /// The shard a shrinking `resize` evicts from: the oldest published tail, or the fullest
    /// shard under the `Shard` scope.
    fn oldest_shard(&self) -> usize {
        match self.scope {
            EvictionScope::Shard => self.fullest_shard(),
            _ => self.oldest_tail(&[]),
        }
    }

    /// Evicts the least recent entry of shard `index` for a cache that is full, with no lock of
    /// this cache held, and gives its weight back; never the entry an insert replaces, `keep`.
    /// Under [`EvictionScope::Global`] it first checks that the shard's least recent entry,
    /// drained, is still the oldest published one, and moves on to the shard that is otherwise.
    /// `None` if every candidate is empty.
    fn evict_from(
        &self,
        mut index: usize,
        cause: RemovalCause,
        keep: Option<Keep<'_, K, V>>,
    ) -> Result<Option<Leaving<K, V>>, BusyCause> {
        for retry in 0.. {
            let shard = &self.shards[index];
            let mut guard = self.write(shard)?;
            // A shrink that read the weight with a claim in it that was given back since (under
            // this lock, which orders it before us) has nothing left to evict.
            if cause == RemovalCause::Shrink
                && self.weight.load(Relaxed) <= self.limit.load(Relaxed)
            {
                return Ok(None);
            }
            let mut kept = match &keep {
                Some(keep) if keep.shard == index => (keep.find)(&guard),
                _ => None,
            };
            // Under the `Global` scope, a shard whose published least recent entry turns out,
            // drained, not to be the oldest (it was used since) publishes its real stamp and the
            // choice is made again: after at most one retry per shard, every stamp compared is
            // real, so on one thread the victim is exactly the least recent entry.
            if self.scope == EvictionScope::Global && retry < self.shards.len() {
                // Relaxed: as in `victim_shard`.
                shard.tail_stamp.store(guard.tail_stamp(), Relaxed);
                let here = (index, guard.tail_stamp_except(kept));
                // The inserting shard counts without the entry being replaced.
                let inserting = keep.as_ref().map_or(here, |keep| (keep.shard, keep.tail));
                let oldest = self.oldest_tail(&[here, inserting]);
                if oldest != index {
                    drop(guard);
                    index = oldest;
                    continue;
                }
            }
            let removed = guard.evict_lru(&mut kept);
            if let Some((.., hash)) = removed {
                shard.counters.record_evictions(1);
                self.begin_delivery(hash);
            }
            self.publish(shard, &mut guard);
            self.release_removed(&removed);
            drop(guard);
            // The shard lock is released: the entry has left.
            return Ok(removed.map(|(key, value, _, hash)| (Evicted { key, value, cause }, hash)));
        }
        unreachable!("the loop returns")
    }

    /// Counts an entry of `hash` as on its way to the callback, if there is one: called under
    /// the shard lock that removes it (purge.rs, "Loads wait for write-backs").
    #[inline]
    fn begin_delivery(&self, hash: u64) {
        if let Some(purger) = &self.purger {
            purger.begin_delivery(hash);
        }
    }

    /// Hands an entry that left a shard (listed by `begin_delivery`) to the callback's queue,
    /// or drops it if there is no callback. Called with no lock held: the drop may run user
    /// code.
    fn hand_off(&self, (evicted, hash): Leaving<K, V>) {
        if let Some(purger) = &self.purger {
            // Handed back (and dropped here) only while the cache is being dropped.
            drop(purger.push(evicted, hash));
        }
    }

    /// [`hand_off`](Self::hand_off) for many entries: every one is queued before any is
    /// dropped, so a panicking `Drop` cannot leave one listed but never queued.
    fn hand_off_all(&self, leaving: impl IntoIterator<Item = Leaving<K, V>>) {
        let Some(purger) = &self.purger else { return leaving.into_iter().for_each(drop) };
        let handed_back: Vec<_> = leaving
            .into_iter()
            .filter_map(|(evicted, hash)| {
                let handed_back = purger.push(evicted, hash);
                // Past the bound, deliver before queueing more (a no-op while closing, the
                // only time an entry is handed back).
                purger.hold_at_bound(self);
                handed_back
            })
            .collect();
        // Not empty only while the cache is being dropped.
        drop(handed_back);
    }

    /// Entries that `clear` or `retain` removed, as they leave for the callback.
    fn leaving(
        removed: Vec<Removed<K, V>>,
        cause: RemovalCause,
    ) -> impl Iterator<Item = Leaving<K, V>> {
        removed.into_iter().map(move |(key, value, _, hash)| (Evicted { key, value, cause }, hash))
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
        // The records of loads in flight, which `clear` supersedes (load.rs), dropped unlocked.
        let mut superseded = Vec::new();
        for shard in self.shards.iter() {
            let drained = {
                let mut guard =
                    self.write(shard).unwrap_or_else(|cause| refused("clear", None, cause));
                let drained = guard.take_all();
                drained.iter().for_each(|&(.., hash)| self.begin_delivery(hash));
                superseded.extend(guard.supersede_all_loads());
                self.publish(shard, &mut guard);
                // Under the lock (see `release`).
                self.release(drained.iter().map(|&(_, _, weight, _)| weight).sum());
                drained
            };
            // The shard lock is released: the entries have left. They are queued before the
            // first key or value is dropped, as a drop may panic.
            self.hand_off_all(Self::leaving(drained, RemovalCause::Clear));
            superseded.clear();
        }
        self.after_write();
    }

    /// Changes the capacity. Shrinking evicts the least recently used entries of the whole
    /// cache until the weight fits, delivered with [`RemovalCause::Shrink`] (or dropped without
    /// a callback). The shard count stays as built.
    ///
    /// # Errors
    ///
    /// [`ResizeError::ZeroCapacity`] if `capacity` is 0; the cache is unchanged.
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
        if capacity == 0 {
            return Err(ResizeError::ZeroCapacity);
        }
        if let Some(cause) = self.refuses_whole_cache_call() {
            refused("resize", None, cause);
        }
        let new = capacity as u64;
        // What the shrink evicts, handed off once `resizing` is released: a drop may call back
        // into the cache, even to resize it.
        let mut evicted_all = Vec::new();
        {
            let _serial = self.resizing.lock();
            // Raise `capacity` before `limit` and lower it after, so that `capacity()` never
            // reads below the weight, in both orders a reader may read in:
            // * growing, `weight()`/`len()` then `capacity()`: a claim under the raised limit
            //   loaded it with `Acquire` (`reserve`), after this `Release` store of `capacity`
            //   in program order, and publishes its weight and length with `Release`; a reader
            //   whose `Acquire` load sees them sees this capacity too.
            // * shrinking, `capacity()` then `weight()`: the lower limit is stored first, and
            //   the capacity with `Release` only once the weight fits under it; a claim that
            //   missed the lower limit is given back (`reserve`'s store-buffering check), so a
            //   reader whose `Acquire` load sees the new capacity then reads a weight under it.
            // `resizing` orders resizes among themselves, so the load is `Relaxed`.
            if new >= self.limit.load(Relaxed) {
                self.capacity.store(new, Release);
                self.limit.store(new, Release);
            } else {
                // Store buffering with `reserve`'s check (see there); `Relaxed` accesses around
                // the fence, which orders them.
                self.limit.store(new, Relaxed);
                fence(SeqCst);
                while self.weight.load(Relaxed) > new {
                    let victim = self.oldest_shard();
                    let evicted = self.evict_from(victim, RemovalCause::Shrink, None);
                    match evicted.unwrap_or_else(|_| unreachable!("no lock is held")) {
                        Some(evicted) => evicted_all.push(evicted),
                        // Claims in flight hold the rest: their inserts evict for them.
                        None => crate::sync::yield_now(),
                    }
                }
                self.capacity.store(new, Release);
            }
        }
        self.hand_off_all(evicted_all);
        self.after_write();
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
    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &LockedShard<K, V>) {
        let (hash, index) = self.locate_index(key);
        (hash, &self.shards[index])
    }

    /// [`locate`](Self::locate), giving the shard's index.
    #[inline]
    #[expect(clippy::manual_hash_one, reason = "hash_one may be overridden inconsistently")]
    fn locate_index<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, usize) {
        let mut hasher = self.hasher.build_hasher();
        key.hash(&mut hasher);
        let hash = hasher.finish();
        (hash, (hash >> SHARD_HASH_SHIFT) as usize & self.shard_mask)
    }

    /// Returns a clone of the value for `key` and makes the entry the most recently used. The
    /// hit is recorded, not applied (`recency.rs`): it takes the shard's lock in write mode when
    /// the lock is free, and in read mode beside other hits when it is not, so hits on a busy
    /// shard run at once. Put `Arc`s in the cache when values are costly to clone: the clone
    /// runs under the lock.
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
        self.get_located(hash, shard, key)
    }

    /// [`try_get`](Self::try_get) for a key already hashed.
    #[inline]
    fn get_located<Q>(
        &self,
        hash: u64,
        shard: &LockedShard<K, V>,
        key: &Q,
    ) -> Result<Option<V>, Busy>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        match shard.lock.lock_for_hit(self.id()).map_err(|cause| Busy::new(cause, ()))? {
            HitGuard::Exclusive(mut guard) => {
                let value = guard.get_exclusive(hash, key).cloned();
                shard.gets.record_exclusive(value.is_some());
                Ok(value)
            }
            HitGuard::Shared(guard) => {
                let found = guard.get_shared(hash, key).map(|(value, full)| (value.clone(), full));
                shard.gets.record_shared(found.is_some());
                drop(guard);
                let Some((value, log_full)) = found else { return Ok(None) };
                if log_full {
                    self.drain_early(shard);
                }
                Ok(Some(value))
            }
        }
    }

    /// Drains a shard whose log of hits is full (`recency.rs`), if its lock is free at once:
    /// otherwise a later hit or write does it.
    #[cold]
    #[inline(never)]
    fn drain_early(&self, shard: &LockedShard<K, V>) {
        if let Some(mut guard) = shard.lock.try_write(self.id()) {
            guard.drain();
            self.publish(shard, &mut guard);
        }
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
        let guard = self.read(shard).map_err(|cause| Busy::new(cause, ()))?;
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
        let guard = self.read(shard).map_err(|cause| Busy::new(cause, ()))?;
        Ok(guard.peek(hash, key).is_some())
    }

    /// Inserts `value` under `key` as the most recently used entry and returns the value it
    /// replaced, if any (the cache keeps its own copy of the key then, as `HashMap` does).
    ///
    /// If the entry does not fit in the capacity, the cache evicts its least recently used
    /// entries until it does (see [`EvictionScope`]); they go to the callback. An entry that
    /// weighs more than the whole capacity is not stored: it goes to the callback with
    /// [`RemovalCause::TooHeavy`], and a value the key had is removed and handed back.
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
    /// As every `try_*` method of this crate, it is refused only instead of re-entering (see
    /// [`Busy`]). It is not std's unstable `HashMap::try_insert`, which fails when the key is
    /// present: this one replaces a present value, as `insert` does. For "insert unless
    /// present", use [`get_or_insert`](Self::get_or_insert).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::builder().capacity(8).build()?;
    /// assert_eq!(cache.try_insert(1, 10), Ok(None));
    /// # Ok::<(), shardlru::BuildError>(())
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>, Busy<(K, V)>> {
        Ok(match self.insert_as(key, value, Present::Replace)? {
            Inserted::Replaced(old) => Some(old),
            _ => None,
        })
    }

    /// The insert behind `insert`, `get_or_insert` and a load's completion: `present` says what
    /// happens when the key is there, and whose load the insert completes.
    #[inline]
    fn insert_as(
        &self,
        key: K,
        value: V,
        present: Present<'_, V>,
    ) -> Result<Inserted<K, V>, Busy<(K, V)>> {
        let (hash, index) = self.locate_index(&key);
        self.insert_located(hash, index, key, value, present)
    }

    /// [`insert_as`](Self::insert_as) for a key already hashed: a load's completion inserts
    /// under the hash its record was found by.
    #[inline]
    fn insert_located(
        &self,
        hash: u64,
        index: usize,
        key: K,
        value: V,
        present: Present<'_, V>,
    ) -> Result<Inserted<K, V>, Busy<(K, V)>> {
        // User code first, before any lock: the key's `Hash` (in the caller), then the weigher.
        let weight = self.weigher.as_ref().map_or(1, |weigh| weigh(&key, &value));
        let shard = &self.shards[index];
        if weight > self.limit.load(Relaxed) {
            return self.insert_too_heavy(shard, hash, key, value, present);
        }
        // The record of a load this insert supersedes or completes, dropped unlocked: declared
        // before the guard, so also after a panic in `Eq`.
        let mut record = None;
        let mut guard = match self.write(shard) {
            Ok(guard) => guard,
            Err(cause) => return Err(Busy::new(cause, (key, value))),
        };
        // A victim in another shard, chosen under this lock, for the slow path to evict first.
        let mut elsewhere = None;
        // The lookup (user `Eq`) runs here: if it panics, `guard`, declared after `key` and
        // `value`, is dropped first, so they are dropped unlocked.
        if let Some(id) = guard.lookup(hash, &key) {
            let Present::Replace = present else {
                let resident = present.keep(&mut guard, shard, id);
                drop(guard);
                return Ok(Inserted::Kept(resident, key, value));
            };
            let old_weight = guard.weight_of(id);
            if weight <= old_weight || self.reserve(weight - old_weight) {
                let (spare, old, ..) = guard.replace(id, key, value, weight);
                self.release(old_weight.saturating_sub(weight));
                self.record_insert(shard, &mut guard);
                drop(guard);
                // The shard lock is released: the spare key may be dropped; the old value goes
                // back to the caller. No purge: it queued nothing, and a callback panic resumed
                // here would unwind past `old` (see purge.rs, "Exactly once").
                drop(spare);
                return Ok(Inserted::Replaced(old));
            }
        } else if !present.admits(&mut guard, hash, &key, &mut record) {
            drop(guard);
            return Ok(Inserted::Superseded(key, value));
        } else if self.reserve(weight) {
            present.complete(&mut guard, hash, &mut record);
            guard.insert(hash, key, value, weight);
            self.record_insert(shard, &mut guard);
            drop(guard);
            self.after_write();
            return Ok(Inserted::New);
        } else if let Some(lru_weight) =
            self.own_victim_fits(index, hash, &mut guard, weight, &mut elsewhere)
        {
            // The common full cache: the new entry takes the node of this shard's least recent
            // entry, and its weight.
            present.complete(&mut guard, hash, &mut record);
            let (key, value, _, victim_hash) = guard
                .insert_evicting(hash, key, value, weight)
                .expect("a shard with a least recent entry evicts it");
            self.release(lru_weight.saturating_sub(weight));
            shard.counters.record_evictions(1);
            self.begin_delivery(victim_hash);
            self.record_insert(shard, &mut guard);
            drop(guard);
            // The shard lock is released: the victim may be dropped or queued. Straight to the
            // callback when a slot is free, else queued and purged.
            if let Some(purger) = &self.purger {
                let evicted = Evicted { key, value, cause: RemovalCause::Capacity };
                purger.push_and_purge(self, evicted, victim_hash);
            }
            return Ok(Inserted::New);
        }
        drop(guard);
        self.insert_making_room(index, hash, key, value, weight, elsewhere, present)
    }

    /// Counts an insert in shard `shard` and publishes the shard (write mode).
    #[inline]
    fn record_insert(&self, shard: &LockedShard<K, V>, guard: &mut Shard<K, V>) {
        shard.counters.record_insert();
        self.publish(shard, guard);
    }

    /// For an insert of `weight` of an absent key into a full cache, holding shard `own`'s lock:
    /// the weight of this shard's least recent entry, if the eviction scope takes the victim here
    /// and evicting it makes room (claiming the rest of `weight`, if any). `None` otherwise, with
    /// the victim's shard in `elsewhere` if it is another; always `None` from under another lock
    /// with a callback (see the module docs).
    #[inline]
    fn own_victim_fits(
        &self,
        own: usize,
        hash: u64,
        guard: &mut WriteGuard<'_, Shard<K, V>>,
        weight: u64,
        elsewhere: &mut Option<usize>,
    ) -> Option<u64> {
        if guard.is_nested() && self.purger.is_some() {
            return None;
        }
        let lru_weight = guard.lru_weight()?;
        if self.scope != EvictionScope::Shard && guard.len() < MAX_LEN {
            let victim = self.victim_shard(own, guard.tail_stamp(), hash);
            if victim != own {
                *elsewhere = Some(victim);
                return None;
            }
        }
        (weight <= lru_weight || self.reserve(weight - lru_weight)).then_some(lru_weight)
    }

    /// The general insert into a full cache: evicts one entry at a time, in this shard or in the
    /// one the eviction scope chooses (with this shard's lock released, as a thread never holds
    /// two), then claims again, until the entry fits. `elsewhere`: a victim shard the fast path
    /// already chose, evicted from first.
    #[cold]
    #[inline(never)]
    #[expect(clippy::too_many_arguments, reason = "the fast path's state, handed over")]
    fn insert_making_room(
        &self,
        index: usize,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        elsewhere: Option<usize>,
        present: Present<'_, V>,
    ) -> Result<Inserted<K, V>, Busy<(K, V)>> {
        let shard = &self.shards[index];
        if let Some(victim) = elsewhere {
            // No lock of this cache is held. The key was absent: nothing to spare.
            match self.evict_from(victim, RemovalCause::Capacity, None) {
                Ok(Some(evicted)) => self.hand_off(evicted),
                Ok(None) => {}
                Err(cause) => return Err(Busy::new(cause, (key, value))),
            }
        }
        // Records of loads superseded or completed, dropped unlocked.
        let mut records = Vec::new();
        loop {
            let mut record = None;
            let mut guard = match self.write(shard) {
                Ok(guard) => guard,
                Err(cause) => return Err(Busy::new(cause, (key, value))),
            };
            let mut existing = guard.lookup(hash, &key);
            match existing {
                Some(id) if !matches!(present, Present::Replace) => {
                    let resident = present.keep(&mut guard, shard, id);
                    drop(guard);
                    return Ok(Inserted::Kept(resident, key, value));
                }
                Some(_) => {}
                None if !present.admits(&mut guard, hash, &key, &mut record) => {
                    drop(guard);
                    return Ok(Inserted::Superseded(key, value));
                }
                None => records.extend(record.take()),
            }
            let needed = existing.map_or(weight, |id| weight.saturating_sub(guard.weight_of(id)));
            // Entries this shard gives up for the insert, handed off once its lock is released.
            let mut evicted_here = Vec::new();
            // This shard's least recent stamp, not counting the entry being replaced.
            let mut own_tail = guard.tail_stamp_except(existing);
            let victim = loop {
                if needed == 0 || self.reserve(needed) {
                    break None;
                }
                // From under another lock, an eviction could not be delivered (module docs).
                if guard.is_nested() && self.purger.is_some() {
                    drop(guard);
                    return Err(Busy::new(BusyCause::WouldEvict, (key, value)));
                }
                let victim = if guard.len() >= MAX_LEN {
                    index
                } else {
                    self.victim_shard(index, own_tail, hash)
                };
                if victim != index {
                    break Some(victim);
                }
                // `existing` follows the entry being replaced if the removal moves its node.
                match guard.evict_lru(&mut existing) {
                    Some((evicted_key, value, weight, evicted_hash)) => {
                        self.release(weight);
                        shard.counters.record_evictions(1);
                        self.begin_delivery(evicted_hash);
                        let evicted =
                            Evicted { key: evicted_key, value, cause: RemovalCause::Capacity };
                        evicted_here.push((evicted, evicted_hash));
                        own_tail = guard.tail_stamp_except(existing);
                    }
                    // Nothing here but the entry being replaced: take a victim elsewhere.
                    None => break Some(self.victim_shard(index, EMPTY, hash)),
                }
            };
            let Some(victim) = victim else {
                let old = match existing {
                    Some(id) => {
                        let (spare, old, old_weight, _) = guard.replace(id, key, value, weight);
                        self.release(old_weight.saturating_sub(weight));
                        Some((spare, old))
                    }
                    None => {
                        present.complete(&mut guard, hash, &mut record);
                        guard.insert(hash, key, value, weight);
                        None
                    }
                };
                self.record_insert(shard, &mut guard);
                drop(guard);
                // The shard lock is released: what left may be dropped or queued; a replaced
                // value goes back to the caller, so the purge that delivers what this call
                // evicted reports callback panics instead of resuming them (see purge.rs,
                // "Exactly once").
                self.hand_off_all(evicted_here);
                drop(record);
                return Ok(match old {
                    Some((spare, old)) => {
                        drop(spare);
                        if let Some(purger) = &self.purger {
                            purger.after_write_reporting_panics(self);
                        }
                        Inserted::Replaced(old)
                    }
                    None => {
                        self.after_write();
                        Inserted::New
                    }
                });
            };
            self.publish(shard, &mut guard);
            drop(guard);
            // No lock of this cache is held now.
            self.hand_off_all(evicted_here);
            let find = |shard: &Shard<K, V>| shard.lookup(hash, &key);
            let keep = existing.map(|_| Keep { shard: index, tail: own_tail, find: &find });
            match self.evict_from(victim, RemovalCause::Capacity, keep) {
                Ok(Some(evicted)) => self.hand_off(evicted),
                Ok(None) => crate::sync::yield_now(),
                Err(cause) => return Err(Busy::new(cause, (key, value))),
            }
        }
    }

    /// The insert of an entry heavier than the whole capacity: it is not stored. A value the key
    /// had is removed and handed back (`Replace`) or kept and cloned (`Keep`, `Complete`); the
    /// new entry goes to the callback as [`RemovalCause::TooHeavy`], its caller keeping a clone
    /// under `Keep` and `Complete`.
    #[cold]
    fn insert_too_heavy(
        &self,
        shard: &LockedShard<K, V>,
        hash: u64,
        key: K,
        value: V,
        present: Present<'_, V>,
    ) -> Result<Inserted<K, V>, Busy<(K, V)>> {
        let mut record = None;
        let mut guard = match self.write(shard) {
            Ok(guard) => guard,
            Err(cause) => return Err(Busy::new(cause, (key, value))),
        };
        // From under another lock, the callback could not run (see the module docs).
        if guard.is_nested() && self.purger.is_some() {
            drop(guard);
            return Err(Busy::new(BusyCause::WouldEvict, (key, value)));
        }
        let (removed, passed) = match (present, guard.lookup(hash, &key)) {
            (Present::Replace, _) => {
                let removed = guard.remove(hash, &key);
                if removed.is_none() {
                    record = guard.supersede_load(hash, &key);
                }
                (removed, None)
            }
            (_, Some(id)) => {
                let resident = present.keep(&mut guard, shard, id);
                drop(guard);
                return Ok(Inserted::Kept(resident, key, value));
            }
            (Present::Keep(clone) | Present::Complete(clone, _), None) => {
                if !present.admits(&mut guard, hash, &key, &mut record) {
                    drop(guard);
                    return Ok(Inserted::Superseded(key, value));
                }
                present.complete(&mut guard, hash, &mut record);
                (None, Some(clone(&value)))
            }
        };
        self.begin_delivery(hash);
        self.publish(shard, &mut guard);
        self.release_removed(&removed);
        drop(guard);
        // The shard lock is released: the old entry has left, the new one never entered. The
        // new one is queued before any key is dropped (a drop may panic).
        let (stored_key, old) = match removed {
            Some((stored_key, old, ..)) => (Some(stored_key), Some(old)),
            None => (None, None),
        };
        if let Some(purger) = &self.purger {
            // Handed back (and dropped here) only while the cache is being dropped.
            let handed_back =
                purger.push(Evicted { key, value, cause: RemovalCause::TooHeavy }, hash);
            drop((record, stored_key, handed_back));
            if old.is_some() || passed.is_some() {
                // With a value on its way back, a callback panic is reported, not resumed (see
                // purge.rs, "Exactly once").
                purger.after_write_reporting_panics(self);
            } else {
                purger.after_write(self);
            }
        }
        Ok(match (old, passed) {
            (_, Some(clone)) => Inserted::TooHeavy(clone),
            (Some(old), None) => Inserted::Replaced(old),
            (None, None) => Inserted::New,
        })
    }

    /// Returns the value for `key`, inserting `value` first if the key is absent: Python's
    /// `setdefault`. Among callers racing on one absent key, exactly one value is stored and all
    /// of them get that one; the others' keys and values are dropped after the lock is
    /// released, and never reach the callback. (A value heavier than the whole capacity is never
    /// stored: it goes to the callback as [`RemovalCause::TooHeavy`], as from `insert`, and its
    /// caller gets a clone.) A present entry becomes the most recently used,
    /// as with [`get`](Self::get). An insert evicts as [`insert`](Self::insert) does.
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// let cache = shardlru::Cache::<&str, u32>::new(8);
    /// assert_eq!(cache.get_or_insert("a", 1), 1);
    /// assert_eq!(cache.get_or_insert("a", 2), 1); // the first value stays
    /// ```
    pub fn get_or_insert(&self, key: K, value: V) -> V
    where
        V: Clone,
    {
        let inserted = self.insert_as(key, value.clone(), Present::Keep(V::clone));
        match inserted.unwrap_or_else(|busy| refused("get_or_insert", None, busy.cause())) {
            Inserted::Kept(resident, ..) => resident,
            Inserted::New | Inserted::TooHeavy(_) => value,
            Inserted::Replaced(_) | Inserted::Superseded(..) => {
                unreachable!("get_or_insert neither replaces nor completes a load")
            }
        }
    }

    /// Returns the value for `key`, loading it with `load` and inserting it if the key is
    /// absent. **Single flight**: while one caller runs `load` for a key, the others asking for
    /// that key wait for its value instead of loading again.
    ///
    /// * `load` runs outside every lock, on the caller's thread. If it panics, the panic goes on
    ///   in this caller and one of the waiters loads instead; nothing stays stuck.
    /// * **No stale loads.** With a callback, `load` does not start while an entry evicted
    ///   under `key` is still queued for the callback or in it: it waits for that callback to
    ///   return (delivering queued entries itself meanwhile), so a write-back callback and a
    ///   loader that reads the same store never race. It waits for this key's write-backs only
    ///   (and those of a key with the same 64-bit hash), however long the queue of others'; a
    ///   write-back queued behind others comes after them. A load from inside a callback of this
    ///   cache does not wait (see Panics). And a write to `key` while `load` runs
    ///   (`insert`, `get_or_insert`, `remove`, `clear`) wins: the loaded value is then not
    ///   cached, and the callers get the written value if it is still present, else the loaded
    ///   one.
    /// * The value is inserted as [`insert`](Self::insert) would (evicting as needed; the
    ///   callback runs after the locks are released) unless the key was inserted meanwhile, in
    ///   which case the resident value wins, as in [`get_or_insert`](Self::get_or_insert).
    ///
    /// A hit costs what [`get`](Self::get) costs. `K: Clone` because the load in flight keeps a
    /// copy of its key for the callers who arrive meanwhile.
    ///
    /// # Panics
    ///
    /// If `load` asks for its own key (it would wait for itself; other keys work), when called
    /// from user code under a shard lock (a key's `Eq`/`Borrow`, a value's `Clone`) and the key
    /// is missing (a load or a wait there could deadlock), and from an eviction callback of
    /// this cache when another caller is loading the key (the callback holds a delivery slot
    /// that load may wait for).
    ///
    /// From an eviction callback, a load does not wait for write-backs either: the entries it
    /// would wait for may need the slot the callback holds. Loaders that wait for each other
    /// across threads (the loader of `a` asks for `b` while the loader of `b` asks for `a`)
    /// deadlock, as with any single-flight loader: a loader's own key is the only cycle that
    /// is detected.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u64, String>::new(100);
    /// let page = cache.get_or_insert_with(7, || format!("page {}", 7)); // loads
    /// assert_eq!(page, "page 7");
    /// let again = cache.get_or_insert_with(7, || unreachable!("a hit does not load"));
    /// assert_eq!(again, "page 7");
    /// ```
    pub fn get_or_insert_with<F>(&self, key: K, load: F) -> V
    where
        F: FnOnce() -> V,
        K: Clone,
        V: Clone,
    {
        match self.get_or_try_insert_with(key, || Ok::<V, Infallible>(load())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with a loader that may fail. An error
    /// goes back to this caller and nothing is cached; the callers waiting for this load then
    /// start over, and one of them loads next.
    ///
    /// Here `try` is the loader's, as in std's `OnceCell::get_or_try_init`, not the `try_*`
    /// methods' "refused instead of re-entering" (whose error is [`Busy`]): this method panics
    /// where `get_or_insert_with` does.
    ///
    /// # Errors
    ///
    /// The error `load` returned.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u64, String>::new(100);
    /// let failed = cache.get_or_try_insert_with(1, || Err("store down"));
    /// assert_eq!(failed, Err("store down"));
    /// assert!(!cache.contains_key(&1)); // nothing cached
    /// let loaded = cache.get_or_try_insert_with(1, || Ok::<_, &str>("one".to_string()));
    /// assert_eq!(loaded.as_deref(), Ok("one"));
    /// ```
    pub fn get_or_try_insert_with<F, E>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Result<V, E>,
        K: Clone,
        V: Clone,
    {
        const METHOD: &str = "get_or_insert_with";
        let (hash, index) = self.locate_index(&key);
        let mut load = Some(load);
        loop {
            match self.join(hash, index, &key, METHOD) {
                Joined::Hit(value) => return Ok(value),
                Joined::Wait(other) => {
                    if let Some(value) = other.wait() {
                        return Ok(value);
                    }
                }
                Joined::Start(started, stale) => {
                    let loader = self.loader(hash, index, started);
                    drop(stale);
                    self.wait_for_delivery(hash);
                    let load = load.take().expect("a caller runs at most one load");
                    let loaded = load::running(loader.load(), load);
                    let value = loaded.unwrap_or_else(|| load::too_deep())?;
                    return Ok(self.complete((hash, index), key, value, loader));
                }
            }
        }
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with an async loader: the callers
    /// waiting for a load await it instead of blocking their thread. Runtime-agnostic (it needs
    /// only the wakers of the task that polls it). A dropped (cancelled) call that was loading
    /// hands the load to one of its waiters.
    ///
    /// A load waits for a write-back of its key still on its way to the callback (see "No
    /// stale loads") as a task too: it delivers queued entries itself (unless [purge
    /// threads](Self::spawn_purge_threads) run), then awaits the callback's return, never
    /// blocking its thread. With every delivery slot taken and the key's entry still queued, it
    /// yields to its executor and tries again. What still runs on the polling thread, as in
    /// the blocking form: the callbacks of the purges it runs (the insert's own included), so
    /// with a slow callback, start purge threads.
    ///
    /// # Panics
    ///
    /// As [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let cache = shardlru::Cache::<u64, String>::new(100);
    /// let page = cache.get_or_insert_with_async(7, async { "page 7".to_string() }).await;
    /// assert_eq!(page, "page 7");
    /// # });
    /// ```
    #[cfg(feature = "async")]
    pub async fn get_or_insert_with_async<F>(&self, key: K, load: F) -> V
    where
        F: Future<Output = V>,
        K: Clone,
        V: Clone,
    {
        let load = async { Ok::<V, Infallible>(load.await) };
        match self.get_or_try_insert_with_async(key, load).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_or_try_insert_with`](Self::get_or_try_insert_with) with an async loader, as
    /// [`get_or_insert_with_async`](Self::get_or_insert_with_async).
    ///
    /// # Errors
    ///
    /// The error `load` returned.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let cache = shardlru::Cache::<u64, String>::new(100);
    /// let failed = cache.get_or_try_insert_with_async(1, async { Err("store down") }).await;
    /// assert_eq!(failed, Err("store down"));
    /// # });
    /// ```
    #[cfg(feature = "async")]
    pub async fn get_or_try_insert_with_async<F, E>(&self, key: K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
        K: Clone,
        V: Clone,
    {
        const METHOD: &str = "get_or_insert_with_async";
        let (hash, index) = self.locate_index(&key);
        let mut load = std::pin::pin!(load);
        loop {
            match self.join(hash, index, &key, METHOD) {
                Joined::Hit(value) => return Ok(value),
                Joined::Wait(other) => {
                    if let Some(value) = load::Wait(other).await {
                        return Ok(value);
                    }
                }
                Joined::Start(started, stale) => {
                    let loader = self.loader(hash, index, started);
                    drop(stale);
                    if let Some(purger) = &self.purger {
                        purger.wait_for_delivery_async(self, hash).await;
                    }
                    let value =
                        load::Running { load: loader.load(), future: load.as_mut() }.await?;
                    return Ok(self.complete((hash, index), key, value, loader));
                }
            }
        }
    }

    /// The first step of every load: a hit, or under the shard lock, a hit after all, a load in
    /// flight to wait for, or a new load this caller starts.
    fn join(&self, hash: u64, index: usize, key: &K, method: &str) -> Joined<K, V>
    where
        K: Clone,
        V: Clone,
    {
        let shard = &self.shards[index];
        let hit = self.get_located(hash, shard, key);
        if let Some(value) = hit.unwrap_or_else(|busy| refused(method, None, busy.cause())) {
            return Joined::Hit(value);
        }
        if lock::holds_any() {
            // A load, or a wait for one, under a shard lock could deadlock (lock.rs).
            let cause = if lock::holds_lock_of(self.id()) {
                BusyCause::Reentered
            } else {
                BusyCause::LockHeld
            };
            refused(method, None, cause);
        }
        // Cloned before the lock, in case this caller starts the load: user code.
        let record_key = key.clone();
        let mut guard = self.write(shard).unwrap_or_else(|cause| refused(method, None, cause));
        if let Some(id) = guard.lookup(hash, key) {
            let value = guard.touch(id).clone();
            drop(guard);
            return Joined::Hit(value);
        }
        // A record whose loader gave up without taking it out (its guard found the lock
        // refused) is taken over.
        let mut stale = None;
        if let Some(load) = guard.find_load(hash, key).filter(|load| !load.is_abandoned()) {
            let load = Arc::clone(load);
            drop(guard);
            if load::runs_here(&load) {
                panic!(
                    "shardlru: Cache::{method} called by the loader of the same key: it would \
                     wait for itself"
                );
            }
            if self.purger.as_ref().is_some_and(|purger| purger.runs_here()) {
                panic!(
                    "shardlru: Cache::{method} from an eviction callback of the same cache, for \
                     a key another caller is loading: the load may need this callback's slot, \
                     so waiting for it could deadlock"
                );
            }
            return Joined::Wait(load);
        }
        if let Some(load) = guard.find_load(hash, key).map(Arc::clone) {
            stale = guard.forget_load(hash, &load);
        }
        let load = Load::new();
        guard.start_load(hash, record_key, Arc::clone(&load));
        drop(guard);
        Joined::Start(load, stale)
    }

    /// The guard of a load this caller started: if the caller fails, panics or is cancelled, it
    /// takes the record out of the shard and wakes the waiters to start over.
    #[expect(clippy::type_complexity, reason = "the guard's closure type, named once")]
    fn loader(
        &self,
        hash: u64,
        index: usize,
        started: Arc<Load<V>>,
    ) -> Loader<K, V, impl Fn(&Arc<Load<V>>) -> Option<Record<K, V>> + '_> {
        Loader::new(started, move |load| {
            // No lock is held here (loads start only outside locks), so the write is granted;
            // if it is not, the record stays, and the next caller takes it over (`join`).
            let mut guard = self.write(&self.shards[index]).ok()?;
            guard.forget_load(hash, load)
        })
    }

    /// Waits, before a load of `hash`, for the write-backs of its key (purge.rs, "Loads wait for
    /// write-backs").
    fn wait_for_delivery(&self, hash: u64) {
        if let Some(purger) = &self.purger {
            purger.wait_for_delivery(self, hash);
        }
    }

    /// Inserts a loaded value unless the load was superseded (load.rs), and publishes what the
    /// callers get: this one, and those waiting.
    fn complete(
        &self,
        (hash, index): (u64, usize),
        key: K,
        value: V,
        loader: Loader<K, V, impl Fn(&Arc<Load<V>>) -> Option<Record<K, V>>>,
    ) -> V
    where
        V: Clone,
    {
        let returned = value.clone();
        let complete = Present::Complete(V::clone, loader.load());
        let value = match self.insert_located(hash, index, key, value, complete) {
            Ok(Inserted::New) => returned,
            Ok(Inserted::Kept(resident, ..)) => resident,
            Ok(Inserted::Superseded(_, value) | Inserted::TooHeavy(value)) => value,
            Ok(Inserted::Replaced(_)) => unreachable!("a completion does not replace"),
            // An async load finished under a shard lock (polled from user code run there): the
            // value goes to this caller uncached, and the load is abandoned (`loader` dropped),
            // so its waiters start over.
            Err(_) => return returned,
        };
        loader.finish(&value);
        value
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
        self.after_write();
        // The record of a load this removal supersedes (load.rs), dropped unlocked.
        let mut record = None;
        let mut guard = self.write(shard).map_err(|cause| Busy::new(cause, ()))?;
        let removed = guard.remove(hash, key);
        if removed.is_none() {
            record = guard.supersede_load(hash, key);
        }
        self.publish(shard, &mut guard);
        self.release_removed(&removed);
        drop(guard);
        drop(record);
        // The shard lock is released: the stored key may be dropped.
        Ok(removed.map(|(_key, value, ..)| value))
    }

    /// Removes `key` if it is present and `predicate` holds for its value, and returns the value.
    ///
    /// `predicate` runs under the shard lock, as a key's `Eq` does: a call it makes into this
    /// cache that would need the lock is refused (see [`Busy`]), and one into another cache
    /// never waits. If it panics, nothing is removed. An absent key is left alone, a load of it
    /// in flight included: unlike [`remove`](Self::remove), which supersedes that load, there
    /// is no value to test.
    ///
    /// # Panics
    ///
    /// As [`remove`](Self::remove); [`try_remove_if`](Self::try_remove_if) returns `Err`
    /// instead.
    ///
    /// ```
    /// let cache = shardlru::Cache::<&str, u32>::new(8);
    /// cache.insert("a", 1);
    /// assert_eq!(cache.remove_if("a", |v| *v > 1), None); // kept
    /// assert_eq!(cache.remove_if("a", |v| *v == 1), Some(1));
    /// assert!(cache.is_empty());
    /// ```
    pub fn remove_if<Q, F>(&self, key: &Q, predicate: F) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: FnOnce(&V) -> bool,
    {
        self.try_remove_if(key, predicate)
            .unwrap_or_else(|busy| refused("remove_if", Some("try_remove_if"), busy.cause()))
    }

    /// [`remove_if`](Self::remove_if), or `Err(Busy)` where it would panic.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::new(8);
    /// assert_eq!(cache.try_remove_if(&1, |_| true), Ok(None));
    /// ```
    pub fn try_remove_if<Q, F>(&self, key: &Q, predicate: F) -> Result<Option<V>, Busy>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: FnOnce(&V) -> bool,
    {
        let (hash, shard) = self.locate(key);
        // Before the value is in hand: see purge.rs, "Exactly once".
        self.after_write();
        let mut guard = self.write(shard).map_err(|cause| Busy::new(cause, ()))?;
        let Some(value) = guard.peek(hash, key) else { return Ok(None) };
        if !predicate(value) {
            return Ok(None);
        }
        let removed = guard.remove(hash, key);
        self.publish(shard, &mut guard);
        self.release_removed(&removed);
        drop(guard);
        // The shard lock is released: the stored key may be dropped.
        Ok(removed.map(|(_key, value, ..)| value))
    }

    /// Keeps only the entries for which `predicate` returns `true`; the others are delivered to
    /// the callback with [`RemovalCause::Retain`] (or dropped, without a callback), after the
    /// lock is released. Shard by shard, as [`clear`](Self::clear); recency is unchanged.
    ///
    /// `predicate` runs under each shard's lock, as a key's `Eq` does: a call it makes into
    /// this cache that would need the lock is refused (see [`Busy`]), and one into another
    /// cache never waits. It sees every entry of a shard before any is removed, so if it
    /// panics, that shard keeps all its entries.
    ///
    /// # Panics
    ///
    /// As [`clear`](Self::clear).
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::new(8);
    /// for k in 0..6 {
    ///     cache.insert(k, k * 10);
    /// }
    /// cache.retain(|k, _v| k % 2 == 0);
    /// assert_eq!(cache.len(), 3);
    /// assert_eq!(cache.get(&4), Some(40));
    /// assert_eq!(cache.get(&3), None);
    /// ```
    pub fn retain<F>(&self, mut predicate: F)
    where
        F: FnMut(&K, &V) -> bool,
    {
        if let Some(cause) = self.refuses_whole_cache_call() {
            refused("retain", None, cause);
        }
        for shard in self.shards.iter() {
            let removed = {
                let mut guard =
                    self.write(shard).unwrap_or_else(|cause| refused("retain", None, cause));
                let removed = guard.remove_unless(&mut predicate);
                removed.iter().for_each(|&(.., hash)| self.begin_delivery(hash));
                self.publish(shard, &mut guard);
                // Under the lock (see `release`).
                self.release(removed.iter().map(|&(_, _, weight, _)| weight).sum());
                removed
            };
            // The shard lock is released: the entries have left (see `clear`).
            self.hand_off_all(Self::leaving(removed, RemovalCause::Retain));
        }
        self.after_write();
    }

    /// An iterator over clones of the entries, shard by shard, each shard from its most to its
    /// least recently used entry, without changing recency. Each shard is copied under its
    /// lock when the iterator reaches it, and no lock is held between items: entries that
    /// other threads insert or remove meanwhile may or may not be seen, but each item was in
    /// the cache when its shard was copied.
    ///
    /// # Panics
    ///
    /// As [`snapshot`](Self::snapshot), when the iterator reaches a shard.
    ///
    /// ```
    /// let cache = shardlru::Cache::<u32, u32>::new(8);
    /// cache.insert(1, 10);
    /// cache.insert(2, 20);
    /// let mut entries: Vec<(u32, u32)> = cache.iter().collect();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 10), (2, 20)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        Iter { cache: self, next_shard: 0, copied: Vec::new().into_iter().zip(Vec::new()) }
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
        let mut entries = Vec::with_capacity(self.len());
        for index in 0..self.shards.len() {
            entries.extend(self.copy_shard(index, "snapshot"));
        }
        entries
    }

    /// Clones the entries of shard `index`, from most to least recent (`snapshot`, `iter`).
    fn copy_shard(&self, index: usize, method: &str) -> Copied<K, V>
    where
        K: Clone,
        V: Clone,
    {
        // Keys and values are cloned into vectors declared before the guard, so that if a
        // `Clone` panics, the clones already made are dropped after the lock is released.
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        let mut guard =
            self.write(&self.shards[index]).unwrap_or_else(|cause| refused(method, None, cause));
        keys.reserve(guard.len());
        values.reserve(guard.len());
        for (key, value) in guard.iter_mru() {
            keys.push(key.clone());
            values.push(value.clone());
        }
        drop(guard);
        keys.into_iter().zip(values)
    }
}

/// The iterator of [`Cache::iter`]: clones of the entries, one shard at a time, with no lock
/// held between items.
///
/// ```
/// let cache = shardlru::Cache::<u32, u32>::new(8);
/// cache.insert(1, 10);
/// let mut iter = cache.iter();
/// assert_eq!(iter.next(), Some((1, 10)));
/// assert_eq!(iter.next(), None);
/// ```
pub struct Iter<'a, K, V, S = RandomState> {
    cache: &'a Cache<K, V, S>,
    next_shard: usize,
    copied: Copied<K, V>,
}

/// One shard's entries, cloned: the keys and the values side by side.
type Copied<K, V> = std::iter::Zip<std::vec::IntoIter<K>, std::vec::IntoIter<V>>;

impl<K, V, S> Iterator for Iter<'_, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(entry) = self.copied.next() {
                return Some(entry);
            }
            if self.next_shard == self.cache.shards.len() {
                return None;
            }
            self.copied = self.cache.copy_shard(self.next_shard, "iter");
            self.next_shard += 1;
        }
    }
}

impl<K, V, S> std::fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.next_shard)
            .field("copied_left", &self.copied.len())
            .finish_non_exhaustive()
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
            capacity: AtomicU64::new(self.capacity.load(Relaxed)),
            limit: AtomicU64::new(self.limit.load(Relaxed)),
            weight: CachePadded::new(AtomicU64::new(self.weight.load(Relaxed))),
            resizing: Mutex::new(()),
            purger: self.purger.take(),
            weigher: self.weigher.take(),
            scope: self.scope,
        }
    }
}

impl<K, V, S> std::fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.len())
            .field("weight", &self.weight())
            .field("capacity", &self.capacity())
            .field("shards", &self.shard_count())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}
