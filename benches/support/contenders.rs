//! The caches under test, each behind one small adapter, so that every bench drives every
//! contender through the same calls with the same keys, capacity and seeds.
//!
//! Adding a contender is one adapter (a struct and its [`Contender`] impl), one [`Kind`] variant,
//! one arm in [`Spec::visit`] and one line in [`CONTENDERS`].
//!
//! Each adapter uses its cache the way its documentation recommends, with its default shard
//! count and hasher, except dashmap, which gets ahash so that it stays a true ceiling (its
//! default SipHash would make it slower than some bounded caches).
#![allow(dead_code)]

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What a key must offer to every contender.
pub trait Key: Hash + Eq + Clone + Send + Sync + 'static {}
impl<T: Hash + Eq + Clone + Send + Sync + 'static> Key for T {}

/// What a value must offer to every contender.
pub trait Value: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Value for T {}

/// What a contender's eviction hook (callback, listener, lifecycle) does for each entry evicted
/// for capacity.
#[derive(Clone, Default)]
pub enum Hook {
    /// No hook is configured at all.
    #[default]
    None,
    /// Counts evictions: the cheapest useful callback.
    Count(Arc<AtomicU64>),
    /// Counts, then sleeps `each` while `active` is set: a callback blocked on I/O. Clearing
    /// `active` after the measurement lets the caches' drops deliver what is queued quickly.
    Block { each: Duration, count: Arc<AtomicU64>, active: Arc<AtomicBool> },
}

impl Hook {
    /// Runs the hook for one evicted entry.
    #[inline]
    pub fn fire(&self) {
        match self {
            Hook::None => {}
            Hook::Count(count) => {
                // Relaxed: a statistic read after the threads are joined.
                count.fetch_add(1, Relaxed);
            }
            Hook::Block { each, count, active } => {
                count.fetch_add(1, Relaxed);
                if active.load(Relaxed) {
                    std::thread::sleep(*each);
                }
            }
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Hook::None)
    }
}

/// One cache under test, as every bench drives it.
pub trait Contender<K: Key, V: Value>: Send + Sync + Sized {
    /// An empty cache bounded to `capacity` entries (dashmap: unbounded), with `hook` as its
    /// eviction hook unless it is [`Hook::None`].
    fn build(capacity: usize, hook: Hook) -> Self;
    /// A clone of the value for `key`, counted as a use for the eviction policy.
    fn get(&self, key: &K) -> Option<V>;
    /// Inserts or replaces; whatever it evicts goes to the hook.
    fn insert(&self, key: K, value: V);
    /// Whether [`get_or_insert_with`](Self::get_or_insert_with) is the cache's own loader API.
    /// A bench of loaders skips the contenders without one.
    const LOADER: bool = false;
    /// The value for `key`, counted as a use; on a miss, `load()`, inserted and returned.
    /// Through the cache's own loader API where it has one ([`LOADER`](Self::LOADER): one
    /// loader per missing key, the other callers wait for its value). Without one, this
    /// default: `get`, then `insert` on a miss, racy (two callers may both load).
    #[inline]
    fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V {
        self.get(&key).unwrap_or_else(|| {
            let value = load();
            self.insert(key, value.clone());
            value
        })
    }
    /// How many entries the cache holds, after any deferred maintenance.
    fn len(&self) -> usize;
    /// The most evicted entries the cache's queue has held since it was built
    /// (shardlru's `Stats::queued_peak`); `None` for a cache that keeps no such queue.
    fn queued_peak(&self) -> Option<usize> {
        None
    }
}

/// shardlru with its defaults (shard count from the machine, ahash), but for the setting that
/// `VARIANT` names: [`Variant::Default`], or one other eviction scope, or a weigher.
pub struct ShardLru<K, V, const VARIANT: u8 = { Variant::Default as u8 }>(shardlru::Cache<K, V>);

/// The settings shardlru is measured under besides its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Variant {
    Default,
    /// `EvictionScope::TwoChoices`.
    TwoChoices,
    /// `EvictionScope::Global`.
    Global,
    /// A weigher that gives every entry weight 1 (so the same capacity): its cost alone.
    Weigher,
}

impl<K: Key, V: Value, const VARIANT: u8> Contender<K, V> for ShardLru<K, V, VARIANT> {
    fn build(capacity: usize, hook: Hook) -> Self {
        let builder = shardlru::Cache::builder().capacity(capacity);
        let builder = match VARIANT {
            v if v == Variant::TwoChoices as u8 => {
                builder.eviction_scope(shardlru::EvictionScope::TwoChoices)
            }
            v if v == Variant::Global as u8 => {
                builder.eviction_scope(shardlru::EvictionScope::Global)
            }
            v if v == Variant::Weigher as u8 => builder.weigher(|_key, _value| 1),
            _ => builder,
        };
        let builder =
            if hook.is_none() { builder } else { builder.on_evict(move |_, _| hook.fire()) };
        Self(builder.build().expect("a valid configuration"))
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    const LOADER: bool = true;
    #[inline]
    fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V {
        self.0.get_or_insert_with(key, load)
    }
    fn len(&self) -> usize {
        self.0.purge();
        self.0.len()
    }
    fn queued_peak(&self) -> Option<usize> {
        Some(self.0.stats().queued_peak)
    }
}

/// moka's `sync::Cache` (TinyLFU admission, deferred maintenance).
pub struct Moka<K, V>(moka::sync::Cache<K, V>);

impl<K: Key, V: Value> Contender<K, V> for Moka<K, V> {
    fn build(capacity: usize, hook: Hook) -> Self {
        let builder = moka::sync::Cache::builder().max_capacity(capacity as u64);
        let cache = if hook.is_none() {
            builder.build()
        } else {
            builder
                .eviction_listener(move |_key, _value, cause| {
                    if cause.was_evicted() {
                        hook.fire();
                    }
                })
                .build()
        };
        Self(cache)
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    const LOADER: bool = true;
    #[inline]
    fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V {
        self.0.get_with(key, load)
    }
    fn len(&self) -> usize {
        self.0.run_pending_tasks();
        self.0.entry_count() as usize
    }
}

/// quick_cache's `sync::Cache` with its default weighter and hasher, and lifecycle `L`.
type QuickCacheSync<K, V, L> =
    quick_cache::sync::Cache<K, V, quick_cache::UnitWeighter, quick_cache::DefaultHashBuilder, L>;

/// quick_cache's `sync::Cache` (CLOCK-Pro-like, read-locked gets), with lifecycle `L`.
pub struct QuickCache<K, V, L = quick_cache::sync::DefaultLifecycle<K, V>>(QuickCacheSync<K, V, L>);

/// A quick_cache lifecycle made from a [`Hook`].
pub trait FromHook {
    fn from_hook(hook: Hook) -> Self;
}

impl<K, V> FromHook for quick_cache::sync::DefaultLifecycle<K, V> {
    fn from_hook(_: Hook) -> Self {
        Self::default()
    }
}

/// A quick_cache lifecycle that runs a [`Hook`] for each eviction. quick_cache calls it under
/// the shard lock.
#[derive(Clone)]
pub struct HookLifecycle(Hook);

impl FromHook for HookLifecycle {
    fn from_hook(hook: Hook) -> Self {
        Self(hook)
    }
}

impl<K, V> quick_cache::Lifecycle<K, V> for HookLifecycle {
    type RequestState = ();
    #[inline]
    fn begin_request(&self) {}
    #[inline]
    fn on_evict(&self, _: &mut (), _key: K, _value: V) {
        self.0.fire();
    }
}

impl<K, V, L> Contender<K, V> for QuickCache<K, V, L>
where
    K: Key,
    V: Value,
    L: quick_cache::Lifecycle<K, V> + FromHook + Clone + Send + Sync,
{
    fn build(capacity: usize, hook: Hook) -> Self {
        Self(quick_cache::sync::Cache::with(
            capacity,
            capacity as u64,
            quick_cache::UnitWeighter,
            quick_cache::DefaultHashBuilder::default(),
            L::from_hook(hook),
        ))
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    const LOADER: bool = true;
    #[inline]
    fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V {
        match self.0.get_or_insert_with(&key, || Ok::<V, Infallible>(load())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// One `lru::LruCache` behind one parking_lot mutex: a strict global LRU.
pub struct LruMutex<K, V>(Mutex<lru::LruCache<K, V>>);

impl<K: Key, V: Value> Contender<K, V> for LruMutex<K, V> {
    fn build(capacity: usize, _: Hook) -> Self {
        Self(Mutex::new(lru::LruCache::new(NonZeroUsize::new(capacity).expect("capacity >= 1"))))
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.lock().get(key).cloned()
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.lock().put(key, value);
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// One shard of [`LruSharded`].
type LruShard<K, V> = Mutex<lru::LruCache<K, V>>;

/// How many shards [`LruSharded`] has.
const LRU_SHARDS: usize = 64;

/// [`LRU_SHARDS`] × `Mutex<lru::LruCache>`, picked by the key's ahash: the hand-rolled sharded
/// LRU that shardlru replaces. Each shard is padded to its own cache line.
pub struct LruSharded<K, V> {
    shards: Box<[CachePadded<LruShard<K, V>>]>,
    hasher: ahash::RandomState,
}

impl<K: Key, V: Value> LruSharded<K, V> {
    #[inline]
    fn shard(&self, key: &K) -> &LruShard<K, V> {
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> 32) as usize % LRU_SHARDS]
    }
}

impl<K: Key, V: Value> Contender<K, V> for LruSharded<K, V> {
    fn build(capacity: usize, _: Hook) -> Self {
        let shards = (0..LRU_SHARDS)
            .map(|i| {
                let share = capacity / LRU_SHARDS + usize::from(i < capacity % LRU_SHARDS);
                let share = NonZeroUsize::new(share).expect("capacity >= 64");
                CachePadded::new(Mutex::new(lru::LruCache::new(share)))
            })
            .collect();
        Self { shards, hasher: ahash::RandomState::new() }
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.shard(key).lock().get(key).cloned()
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.shard(&key).lock().put(key, value);
    }
    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }
}

/// dashmap with ahash and no bound at all: what a concurrent map costs without any eviction
/// policy, the ceiling for the bounded caches.
pub struct DashMap<K, V>(dashmap::DashMap<K, V, ahash::RandomState>);

impl<K: Key, V: Value> Contender<K, V> for DashMap<K, V> {
    fn build(_capacity: usize, _: Hook) -> Self {
        Self(dashmap::DashMap::with_hasher(ahash::RandomState::new()))
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key).map(|entry| entry.value().clone())
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Which adapter a [`Spec`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ShardLru(Variant),
    Moka,
    QuickCache,
    QuickCacheLifecycle,
    LruMutex,
    LruSharded,
    DashMap,
}

/// A named contender: an adapter and whether its eviction hook is on.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The name in tables and charts, and in `SHARDLRU_BENCH_CONTENDERS`.
    pub name: &'static str,
    pub kind: Kind,
    /// Whether the contender is built with a counting eviction hook.
    pub hooked: bool,
    /// The contender it is compared with: quick_cache, or quick_cache with a counting
    /// lifecycle for the hooked ones.
    pub baseline: &'static str,
}

/// The baseline of the plain contenders.
pub const QUICK_CACHE: &str = "quick_cache";
/// The baseline of the contenders with a counting eviction hook.
pub const QUICK_CACHE_HOOKED: &str = "quick_cache+lifecycle";

/// Every contender, in table order.
pub const CONTENDERS: &[Spec] = &[
    Spec {
        name: "shardlru",
        kind: Kind::ShardLru(Variant::Default),
        hooked: false,
        baseline: QUICK_CACHE,
    },
    Spec {
        name: "shardlru+callback",
        kind: Kind::ShardLru(Variant::Default),
        hooked: true,
        baseline: QUICK_CACHE_HOOKED,
    },
    Spec { name: QUICK_CACHE, kind: Kind::QuickCache, hooked: false, baseline: QUICK_CACHE },
    Spec {
        name: QUICK_CACHE_HOOKED,
        kind: Kind::QuickCacheLifecycle,
        hooked: true,
        baseline: QUICK_CACHE_HOOKED,
    },
    Spec { name: "moka", kind: Kind::Moka, hooked: false, baseline: QUICK_CACHE },
    Spec { name: "moka+listener", kind: Kind::Moka, hooked: true, baseline: QUICK_CACHE_HOOKED },
    Spec { name: "Mutex<lru>", kind: Kind::LruMutex, hooked: false, baseline: QUICK_CACHE },
    Spec { name: "64xMutex<lru>", kind: Kind::LruSharded, hooked: false, baseline: QUICK_CACHE },
    Spec { name: "dashmap", kind: Kind::DashMap, hooked: false, baseline: QUICK_CACHE },
    Spec {
        name: "shardlru/two-choices",
        kind: Kind::ShardLru(Variant::TwoChoices),
        hooked: false,
        baseline: QUICK_CACHE,
    },
    Spec {
        name: "shardlru/global",
        kind: Kind::ShardLru(Variant::Global),
        hooked: false,
        baseline: QUICK_CACHE,
    },
    Spec {
        name: "shardlru+weigher",
        kind: Kind::ShardLru(Variant::Weigher),
        hooked: false,
        baseline: QUICK_CACHE,
    },
];

/// Work to do with one contender type: [`Spec::visit`] calls `visit` with the adapter named by
/// the spec, so that the bench code is generic (monomorphic, no dynamic dispatch per call).
pub trait Visit<K: Key, V: Value> {
    type Out;
    fn visit<C: Contender<K, V>>(self, spec: &Spec) -> Self::Out;
}

impl Spec {
    pub fn visit<K: Key, V: Value, F: Visit<K, V>>(&self, work: F) -> F::Out {
        match self.kind {
            Kind::ShardLru(Variant::Default) => work.visit::<ShardLru<K, V>>(self),
            Kind::ShardLru(Variant::TwoChoices) => {
                work.visit::<ShardLru<K, V, { Variant::TwoChoices as u8 }>>(self)
            }
            Kind::ShardLru(Variant::Global) => {
                work.visit::<ShardLru<K, V, { Variant::Global as u8 }>>(self)
            }
            Kind::ShardLru(Variant::Weigher) => {
                work.visit::<ShardLru<K, V, { Variant::Weigher as u8 }>>(self)
            }
            Kind::Moka => work.visit::<Moka<K, V>>(self),
            Kind::QuickCache => work.visit::<QuickCache<K, V>>(self),
            Kind::QuickCacheLifecycle => work.visit::<QuickCache<K, V, HookLifecycle>>(self),
            Kind::LruMutex => work.visit::<LruMutex<K, V>>(self),
            Kind::LruSharded => work.visit::<LruSharded<K, V>>(self),
            Kind::DashMap => work.visit::<DashMap<K, V>>(self),
        }
    }

    pub fn by_name(name: &str) -> Option<&'static Spec> {
        CONTENDERS.iter().find(|spec| spec.name == name)
    }

    /// Whether the contender's cache has its own loader API ([`Contender::LOADER`]).
    pub fn has_loader(&self) -> bool {
        struct HasLoader;
        impl Visit<u64, u64> for HasLoader {
            type Out = bool;
            fn visit<C: Contender<u64, u64>>(self, _: &Spec) -> bool {
                C::LOADER
            }
        }
        self.visit(HasLoader)
    }
}
