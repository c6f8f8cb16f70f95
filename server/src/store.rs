//! The store behind the protocol: the item, its cas unique, and the three backends.
//!
//! ```text
//!  command.rs ──▶ Store ─┬─ Shardlru: Arc<shardlru::Cache<Bytes, Item>>, weighed in bytes
//!                        ├─ Spilled:  the same, plus an on-disk spill of what it evicts (spill.rs)
//!                        ├─ MutexLru: Mutex<lru::LruCache<Bytes, Item>>, weighed in bytes
//!                        └─ DashMap:  dashmap::DashMap<Bytes, Item>, unbounded
//! ```
//!
//! The backends answer the same commands so that a benchmark can tell what the cache itself
//! contributes: `mutex-lru` is the textbook LRU behind one lock, `dashmap` a sharded map that
//! never evicts (its `-m` is reported, not enforced). An enum, not a trait: there are exactly
//! these, and the server matches on them in one place.
//!
//! # Items and their weight
//!
//! An [`Item`] is the value, the client's flags and a cas unique. Keys and values are
//! [`Bytes`] copied out of the read buffer (a slice of it would pin the whole buffer in the
//! cache). Both bounded backends count an item as `key.len() + value.len() +`
//! [`ITEM_OVERHEAD`], so `-m` bounds roughly the memory the items take, bookkeeping included.
//!
//! # Cas uniques
//!
//! Every stored item takes the next number of one counter per store ([`CasCounter`]), so a
//! later store of a key has a larger cas than an earlier one. `gets` reports it; the spill
//! relies on it to order versions of a key (spill.rs).
//!
//! # The commands on each backend
//!
//! | command | shardlru | mutex-lru | dashmap |
//! |---|---|---|---|
//! | `get` | `Cache::get` | `LruCache::get` | `DashMap::get` |
//! | `set` | `insert` | `put`, then evict to fit | `insert` |
//! | `add` | `get_or_insert`: stored iff the resident item is ours (same cas) | under the lock | `entry` |
//! | `replace` | `contains_key`, then `insert` (see below) | under the lock | `get_mut` |
//! | `delete` | `remove` | `pop` | `remove` |
//! | `touch` | `get` | `get` | `get` |
//! | `flush_all` | `clear` | `clear` | `clear` |
//!
//! `replace` on shardlru is two calls: the library has no "insert if present", so a `delete`
//! that lands between the check and the insert is undone (the replace stores as if it had come
//! first). `add` has no such window: `get_or_insert` decides under the shard lock.
//!
//! An item heavier than the whole capacity cannot be cached: without a spill the server answers
//! memcached's `SERVER_ERROR out of memory storing object` (a `set` also drops the key's old
//! item, as memcached does); with a spill it goes to disk like any evicted item.

use crate::protocol::StoreMode;
use crate::spill::{SpillStats, Spilled};
use crate::{Config, Error};
use bytes::Bytes;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use parking_lot::Mutex;
use shardlru::Cache;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// The bytes an item is counted for beyond its key and value: an estimate of what the cache
/// spends per entry. For shardlru: the slab node (key and item, 80 bytes, plus the hash, weight,
/// stamp and links, 32), its hash-table slot with control byte and load-factor slack (about 8),
/// and the two heap blocks of key and value with their `Bytes` headers (about 80 with
/// allocator rounding). memcached's own item header is about 50 bytes, plus slab-class
/// rounding.
pub const ITEM_OVERHEAD: u64 = 200;

/// The weight of an item under `key`: what it is counted for against `-m`.
pub fn weight(key: &[u8], item: &Item) -> u64 {
    key.len() as u64 + item.value.len() as u64 + ITEM_OVERHEAD
}

/// A stored value with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The data block.
    pub value: Bytes,
    /// The client's opaque flags.
    pub flags: u32,
    /// The cas unique, from one counter per store: larger for later stores.
    pub cas: u64,
}

/// The source of cas uniques: one per store, starting at 1.
#[derive(Debug)]
pub struct CasCounter(AtomicU64);

impl CasCounter {
    fn new() -> Self {
        Self(AtomicU64::new(1))
    }

    /// The next cas unique. `Relaxed`: read-modify-writes of one atomic are totally ordered, so
    /// a call that starts after another returned gets a larger number; no data hangs on it.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Relaxed)
    }
}

/// Which store the server runs on (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// `shardlru::Cache`, bounded by `-m`: the cache under test.
    #[default]
    Shardlru,
    /// `Mutex<lru::LruCache>`, bounded by `-m` in the same weight: one lock for everything.
    MutexLru,
    /// `dashmap::DashMap`, unbounded: a concurrent map with no eviction at all.
    DashMap,
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "shardlru" => Ok(Backend::Shardlru),
            "mutex-lru" => Ok(Backend::MutexLru),
            "dashmap" => Ok(Backend::DashMap),
            _ => Err(format!("unknown backend {name:?}: shardlru, mutex-lru or dashmap")),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Shardlru => "shardlru",
            Backend::MutexLru => "mutex-lru",
            Backend::DashMap => "dashmap",
        })
    }
}

/// What a storage command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `STORED`.
    Stored,
    /// `NOT_STORED`: `add` found the key, or `replace` did not.
    NotStored,
    /// `SERVER_ERROR out of memory storing object`: heavier than the whole capacity.
    TooHeavy,
}

/// What the store reports to `stats`.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    /// Items held (in memory; spilled items are counted in `spill`).
    pub curr_items: u64,
    /// Their weight in bytes, [`ITEM_OVERHEAD`] included.
    pub bytes: u64,
    /// `-m` in bytes.
    pub limit_maxbytes: u64,
    /// Items evicted to make room.
    pub evictions: u64,
    /// The shard count (locks) of the backend; 1 for `mutex-lru`.
    pub shards: usize,
    /// shardlru's own statistics (shardlru backend only).
    pub cache: Option<shardlru::Stats>,
    /// The spill's counters (with `--spill` only).
    pub spill: Option<SpillStats>,
}

/// The store: a backend and its cas counter.
pub struct Store {
    cas: CasCounter,
    backend: Kind,
}

/// The backends; see the module docs.
enum Kind {
    /// In a box: a cache is some hundreds of bytes, the other variants far less.
    Shardlru(Box<Cache<Bytes, Item>>),
    Spilled(Spilled),
    MutexLru(MutexLru),
    DashMap(DashMapStore),
}

impl Store {
    /// Builds the backend `config` asks for; with a spill directory, creates its database
    /// (blocking I/O: call it before serving, or from a blocking thread) and starts the purge
    /// threads.
    ///
    /// # Errors
    ///
    /// A memory limit of 0, a shard count the backend refuses, `--spill` with another backend
    /// than shardlru, or a spill directory where the database cannot be created.
    pub fn open(config: &Config) -> Result<Self, Error> {
        let capacity = usize::try_from(config.memory_limit)?;
        if capacity == 0 {
            return Err("the memory limit must be at least 1 byte".into());
        }
        let backend = match (config.backend, config.spill.as_deref()) {
            (Backend::Shardlru, Some(dir)) => {
                Kind::Spilled(Spilled::open(dir, capacity, config.shards)?)
            }
            (Backend::Shardlru, None) => {
                let mut builder = Cache::builder().capacity(capacity).weigher(weight_of);
                if let Some(shards) = config.shards {
                    builder = builder.shards(shards);
                }
                Kind::Shardlru(Box::new(builder.name("shardlru-server").build()?))
            }
            (backend, Some(_)) => {
                return Err(format!("--spill needs --backend shardlru, not {backend}").into());
            }
            (Backend::MutexLru, None) => Kind::MutexLru(MutexLru::new(config.memory_limit)),
            (Backend::DashMap, None) => {
                Kind::DashMap(DashMapStore::new(config.memory_limit, config.shards)?)
            }
        };
        Ok(Self { cas: CasCounter::new(), backend })
    }

    /// The item under `key`, making it the most recently used. With a spill, a miss reads the
    /// spill (spill.rs).
    pub async fn get(&self, key: &Bytes) -> Option<Item> {
        match &self.backend {
            Kind::Shardlru(cache) => cache.get(&key[..]),
            Kind::Spilled(spilled) => spilled.get(key).await,
            Kind::MutexLru(lru) => lru.inner.lock().lru.get(&key[..]).cloned(),
            Kind::DashMap(map) => map.map.get(&key[..]).map(|entry| entry.value().clone()),
        }
    }

    /// `set`, `add` or `replace`.
    ///
    /// # Errors
    ///
    /// With a spill, an `add` whose disk read failed.
    pub async fn store(
        &self,
        mode: StoreMode,
        key: Bytes,
        flags: u32,
        value: Bytes,
    ) -> Result<Outcome, Error> {
        let cas = &self.cas;
        match &self.backend {
            Kind::Shardlru(cache) => Ok(store_in_cache(cache, cas, mode, key, flags, value)),
            Kind::Spilled(spilled) => spilled.store(cas, mode, key, flags, value).await,
            Kind::MutexLru(lru) => Ok(lru.store(cas, mode, key, flags, value)),
            Kind::DashMap(map) => Ok(map.store(cas, mode, key, flags, value)),
        }
    }

    /// Removes `key`; whether it held an item.
    ///
    /// # Errors
    ///
    /// With a spill, a failed tombstone write (the cached item is removed all the same).
    pub async fn delete(&self, key: &Bytes) -> Result<bool, Error> {
        match &self.backend {
            Kind::Shardlru(cache) => Ok(cache.remove(&key[..]).is_some()),
            Kind::Spilled(spilled) => spilled.delete(&self.cas, key).await,
            Kind::MutexLru(lru) => {
                let removed = lru.remove(key);
                Ok(removed.is_some())
            }
            Kind::DashMap(map) => Ok(map.remove(key).is_some()),
        }
    }

    /// Removes every item (and the spill's records), on a blocking thread: it walks the whole
    /// store.
    ///
    /// # Errors
    ///
    /// With a spill, a failed clear of the database.
    pub async fn flush_all(self: &Arc<Self>) -> Result<(), Error> {
        if let Kind::Spilled(spilled) = &self.backend {
            return spilled.flush_all(&self.cas).await;
        }
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || match &store.backend {
            Kind::Shardlru(cache) => cache.clear(),
            Kind::Spilled(_) => unreachable!("handled above"),
            Kind::MutexLru(lru) => lru.clear(),
            Kind::DashMap(map) => map.clear(),
        })
        .await?;
        Ok(())
    }

    /// The figures for `stats`.
    pub fn stats(&self) -> StoreStats {
        match &self.backend {
            Kind::Shardlru(cache) => cache_stats(cache, None),
            Kind::Spilled(spilled) => cache_stats(spilled.cache(), Some(spilled.stats())),
            Kind::MutexLru(lru) => lru.stats(),
            Kind::DashMap(map) => map.stats(),
        }
    }

    /// Stops the spill's purge threads, writing every evicted item still queued to disk. Call
    /// once the connections are done; blocks (joins threads), so from a blocking thread.
    pub fn shutdown(&self) {
        if let Kind::Spilled(spilled) = &self.backend {
            spilled.shutdown();
        }
    }
}

/// The weigher given to shardlru: [`weight`].
pub(crate) fn weight_of(key: &Bytes, item: &Item) -> u64 {
    weight(key, item)
}

/// shardlru's statistics as the server reports them.
fn cache_stats(cache: &Cache<Bytes, Item>, spill: Option<SpillStats>) -> StoreStats {
    let stats = cache.stats();
    StoreStats {
        curr_items: stats.len as u64,
        bytes: stats.weight,
        limit_maxbytes: stats.capacity as u64,
        evictions: stats.evictions,
        shards: cache.shard_count(),
        cache: Some(stats),
        spill,
    }
}

/// A storage command on a shardlru cache without spill.
fn store_in_cache(
    cache: &Cache<Bytes, Item>,
    cas: &CasCounter,
    mode: StoreMode,
    key: Bytes,
    flags: u32,
    value: Bytes,
) -> Outcome {
    let item = Item { value, flags, cas: cas.next() };
    let too_heavy = weight(&key, &item) > cache.capacity() as u64;
    match mode {
        _ if too_heavy => {
            if mode == StoreMode::Set {
                cache.remove(&key[..]);
            }
            Outcome::TooHeavy
        }
        StoreMode::Set => {
            cache.insert(key, item);
            Outcome::Stored
        }
        StoreMode::Add => {
            let ours = item.cas;
            // The resident item if there is one, else ours, decided under the shard lock.
            if cache.get_or_insert(key, item).cas == ours {
                Outcome::Stored
            } else {
                Outcome::NotStored
            }
        }
        StoreMode::Replace => {
            // Not atomic with the insert: see the module docs.
            if cache.contains_key(&key[..]) {
                cache.insert(key, item);
                Outcome::Stored
            } else {
                Outcome::NotStored
            }
        }
    }
}

/// `Mutex<lru::LruCache>` bounded by weight.
struct MutexLru {
    capacity: u64,
    inner: Mutex<LruState>,
}

/// What the mutex guards.
struct LruState {
    /// Unbounded by count: the weight bounds it.
    lru: lru::LruCache<Bytes, Item>,
    /// The items' total weight, never above `capacity` once a call returns.
    weight: u64,
    /// Items evicted for room.
    evictions: u64,
}

impl MutexLru {
    fn new(capacity: u64) -> Self {
        let lru = lru::LruCache::unbounded();
        Self { capacity, inner: Mutex::new(LruState { lru, weight: 0, evictions: 0 }) }
    }

    fn store(
        &self,
        cas: &CasCounter,
        mode: StoreMode,
        key: Bytes,
        flags: u32,
        value: Bytes,
    ) -> Outcome {
        let item = Item { value, flags, cas: cas.next() };
        let item_weight = weight(&key, &item);
        // What leaves the cache is dropped after the lock is released.
        let mut evicted = Vec::new();
        let mut state = self.inner.lock();
        let present = state.lru.contains(&key[..]);
        let stored = match mode {
            StoreMode::Add if present => {
                state.lru.promote(&key[..]);
                return Outcome::NotStored;
            }
            StoreMode::Replace if !present => return Outcome::NotStored,
            _ if item_weight > self.capacity => {
                if mode == StoreMode::Set {
                    evicted.extend(state.remove(&key));
                }
                Outcome::TooHeavy
            }
            _ => {
                if let Some(old) = state.lru.put(key.clone(), item) {
                    state.weight -= weight(&key, &old);
                    evicted.push(old);
                }
                state.weight += item_weight;
                while state.weight > self.capacity {
                    let Some((old_key, old)) = state.lru.pop_lru() else { break };
                    state.weight -= weight(&old_key, &old);
                    state.evictions += 1;
                    evicted.push(old);
                }
                Outcome::Stored
            }
        };
        drop(state);
        drop(evicted);
        stored
    }

    fn remove(&self, key: &Bytes) -> Option<Item> {
        self.inner.lock().remove(key)
    }

    fn clear(&self) {
        let old = {
            let mut state = self.inner.lock();
            state.weight = 0;
            std::mem::replace(&mut state.lru, lru::LruCache::unbounded())
        };
        drop(old);
    }

    fn stats(&self) -> StoreStats {
        let state = self.inner.lock();
        StoreStats {
            curr_items: state.lru.len() as u64,
            bytes: state.weight,
            limit_maxbytes: self.capacity,
            evictions: state.evictions,
            shards: 1,
            cache: None,
            spill: None,
        }
    }
}

impl LruState {
    fn remove(&mut self, key: &Bytes) -> Option<Item> {
        let item = self.lru.pop(&key[..])?;
        self.weight -= weight(key, &item);
        Some(item)
    }
}

/// An unbounded `DashMap`, with the weight it holds counted beside it.
struct DashMapStore {
    map: DashMap<Bytes, Item>,
    /// `-m`, reported only.
    capacity: u64,
    /// The shard count it was built with.
    shards: usize,
    /// The items' total weight: added after each insert and taken off after each removal, so
    /// it can lag concurrent writes, or dip below 0 while they race a clear (a statistic,
    /// `Relaxed`).
    weight: AtomicI64,
}

impl DashMapStore {
    fn new(capacity: u64, shards: Option<usize>) -> Result<Self, Error> {
        // dashmap's own default: four shards per core, rounded up to a power of two.
        let shards = shards.unwrap_or_else(|| (crate::default_threads() * 4).next_power_of_two());
        // dashmap's own condition, which it asserts.
        if shards < 2 || !shards.is_power_of_two() {
            return Err(format!("dashmap needs a power of two above 1 shards, not {shards}").into());
        }
        let map = DashMap::with_shard_amount(shards);
        Ok(Self { map, capacity, shards, weight: AtomicI64::new(0) })
    }

    fn store(
        &self,
        cas: &CasCounter,
        mode: StoreMode,
        key: Bytes,
        flags: u32,
        value: Bytes,
    ) -> Outcome {
        let item = Item { value, flags, cas: cas.next() };
        let added = weight(&key, &item) as i64;
        let replaced = match mode {
            StoreMode::Set => self.map.insert(key.clone(), item),
            StoreMode::Add => match self.map.entry(key.clone()) {
                Entry::Occupied(_) => return Outcome::NotStored,
                Entry::Vacant(vacant) => {
                    vacant.insert(item);
                    None
                }
            },
            StoreMode::Replace => match self.map.get_mut(&key[..]) {
                Some(mut resident) => Some(std::mem::replace(resident.value_mut(), item)),
                None => return Outcome::NotStored,
            },
        };
        self.weight.fetch_add(added, Relaxed);
        if let Some(old) = replaced {
            self.weight.fetch_sub(weight(&key, &old) as i64, Relaxed);
        }
        Outcome::Stored
    }

    fn remove(&self, key: &Bytes) -> Option<Item> {
        let (key, item) = self.map.remove(&key[..])?;
        self.weight.fetch_sub(weight(&key, &item) as i64, Relaxed);
        Some(item)
    }

    fn clear(&self) {
        self.map.clear();
        // Recounted from what survived (writes that raced the clear).
        let left: u64 = self.map.iter().map(|entry| weight(entry.key(), entry.value())).sum();
        self.weight.store(left as i64, Relaxed);
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            curr_items: self.map.len() as u64,
            bytes: self.weight.load(Relaxed).max(0) as u64,
            limit_maxbytes: self.capacity,
            evictions: 0,
            shards: self.shards,
            cache: None,
            spill: None,
        }
    }
}
