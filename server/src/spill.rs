//! The spill (`--spill DIR`): evicted items go to an on-disk store instead of being lost, and a
//! miss reads them back.
//!
//! ```text
//!  tokio workers                      shardlru                        purge thread (not a worker)
//!  ─────────────                      ────────                        ──────────────────────────
//!  set ──insert──────────────────────▶ full: evict the LRU item ──queue──▶ callback: write_back
//!                                                                             one redb write txn:
//!  get ──miss──▶ get_or_try_insert_with_async                                 keep the newer cas
//!                 (waits for this key's write-back in flight)
//!                 └─ spawn_blocking: redb read ─▶ found: cached again, answered
//! ```
//!
//! # Nothing lost
//!
//! Every key ever stored is, with its newest value, in the cache or in the spill, or on its way
//! from one to the other:
//!
//! * The eviction callback writes every item that leaves for room (`Capacity`, `Shrink`,
//!   `TooHeavy`: an item heavier than the whole cache goes straight to disk). `Clear` is not
//!   written: `flush_all` means invalidate.
//! * The callback never runs on a tokio worker in the common case: [`Cache::spawn_purge_threads`]
//!   runs it on a thread of its own, and writes only queue. The queue is bounded
//!   ([`SPILL_MAX_QUEUED`]); a write that finds it full delivers entries itself, so that write
//!   does disk I/O on its worker. That is the price of a bounded backlog; the bound is generous
//!   so that only a sustained overload meets it.
//! * A miss loads through the library's single-flight loader: concurrent misses of one key run
//!   one disk read, and a load waits for the write-back of its key still queued or in the
//!   callback, so it never reads the disk before the evicted value is there. A load that finds
//!   nothing caches nothing.
//! * On shutdown the purge threads are stopped once the connections are done, which delivers
//!   what is still queued.
//!
//! # Versions: the cas unique orders them
//!
//! Write-backs can arrive out of order (the queue is drained by the purge thread and, at the
//! bound, by writers too), and late (a version evicted long ago may still be queued when the
//! key is deleted). So every record carries its item's cas unique and a write-back **stores only
//! if its cas is larger than the stored record's**. A record is either live (flags and value)
//! or a **tombstone** (a `delete`'s cas). The check and the write are one redb write
//! transaction, and redb runs one at a time, so two write-backs of a key cannot interleave. (A
//! read transaction first skips the write transaction when the disk already holds this version
//! or a newer one: safe, since a record's cas only grows until `flush_all` empties the table.)
//!
//! That makes the cas order the version order only if a later store of a key draws a larger
//! cas. Two sets of one key race: A draws cas 5, B draws 6, B inserts, is evicted and written,
//! then A inserts. A is the cache's newest value, but its write-back (5 < 6) would be dropped.
//! So, with a spill, drawing the cas and inserting are one step under a striped lock of the
//! key ([`CAS_STRIPES`] `parking_lot` mutexes, held for the insert only, never across an
//! `await`): for each key, insert order is cas order.
//!
//! # Delete
//!
//! ```text
//!  1. d = next cas, under the key's stripe    every store with a smaller cas has inserted
//!  2. a load that loads nothing               waits for the key's write-back in flight; a hit
//!                                             says the key is present
//!  3. spill txn: tombstone(d) if the key is   a late write-back (cas < d) is dropped from now on
//!     present or its record is live and older
//!  4. cache.remove(key)                       removes what is cached, and supersedes a load that
//!                                             read the old record before step 3
//! ```
//!
//! Step 3 before 4: with the remove first, a miss in between could load the old record again.
//! `remove` (not `remove_if`) in step 4, because it also supersedes a load still in flight (the
//! library does not cache a load that a write overtook); that it also removes a `set` that
//! raced the delete is a valid order of two overlapping commands. No tombstone is written for a
//! key that was nowhere: after step 2 nothing of it is in flight, so there is nothing to shadow.
//!
//! # flush_all
//!
//! `f` = next cas under every stripe (so every store with a smaller cas has inserted); then one
//! redb transaction sets the floor to `f` and empties the table, and only then the cache is
//! cleared. A write-back below the floor is dropped (the floor is read inside its write
//! transaction, so it is either before the clear and emptied by it, or after and dropped); a
//! load that read the disk before the clear is superseded by the cache's `clear` or cleared by
//! it. Clearing the cache first would let a miss in between load a record about to be flushed.
//!
//! # Reloaded items stay on disk
//!
//! A load copies a record into the cache and leaves it in the spill. When that item is evicted
//! again its write-back has the same cas as the record, so it is dropped without a write: an item
//! that goes back and forth costs one write, not one per eviction. A newer `set` is newer on
//! disk too once evicted; a `delete` shadows it with a tombstone. The spill thus holds every key
//! ever evicted (and tombstones of deleted ones) until `flush_all`; the file is scratch space,
//! recreated empty at start.
//!
//! # add and replace
//!
//! `add` is a load whose loader returns the spilled record if there is one, else the new item
//! (drawing its cas): the library stores it unless a write overtook the load, and the `add`
//! stored iff the item the key ends up with is its own. `replace` is a `get` (reloading from
//! disk) and then an insert, so as without spill a `delete` between the two is undone.
//!
//! # Why redb, and how it is used
//!
//! redb is pure Rust (no C++ toolchain, unlike RocksDB), maintained, ACID and copy-on-write with
//! MVCC readers that never block the writer. sled, the other pure-Rust choice, has had no
//! release since 2021. One write transaction per evicted item is simple and correct; each
//! commits with `Durability::None` (no fsync: the spill is scratch, and commits are visible to
//! readers all the same), and one in [`SPILL_DURABLE_EVERY`] with `Immediate`, because redb frees
//! the pages of overwritten records only at durable commits. redb's page cache is bounded to
//! [`SPILL_CACHE_BYTES`], on top of `-m`.
//!
//! Measured (redb 2.6, release build, a loaded 2-core VM): about 130 µs per write-back, and
//! about 64 KiB of file per transaction until the next durable commit makes its pages reusable.
//! Batching transactions would be faster, but a callback must not return before its item is
//! readable (a miss waits for exactly that): a batch needs an in-memory staging map that reads
//! consult until the batch commits, or a library callback that takes a batch.

use crate::Error;
use crate::protocol::StoreMode;
use crate::store::{CasCounter, Item, Outcome, weight_of};
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use shardlru::{Cache, PurgeThreads, RemovalCause};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The spill database's file name inside `--spill DIR`.
pub const SPILL_FILE: &str = "shardlru-spill.redb";

/// Threads that write evicted items to disk. One: redb runs one write transaction at a time, so
/// more threads would only queue behind its lock.
pub const SPILL_PURGE_THREADS: usize = 1;

/// The most evicted items queued for the purge thread (`Builder::max_queued`) before a write
/// delivers some itself. Their memory is on top of `-m`: at 1 KiB per item, 4 MiB.
pub const SPILL_MAX_QUEUED: usize = 4096;

/// redb's page cache, in bytes (its default is 1 GiB).
pub const SPILL_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// One write transaction in this many commits with `Durability::Immediate` (an fsync), so that
/// redb can free the pages of overwritten records; the others use `Durability::None`. The file
/// carries the pages of up to this many transactions (about 64 KiB each) before they are freed.
pub const SPILL_DURABLE_EVERY: u64 = 1024;

/// Stripes of the lock that makes, per key, insert order the cas order (module docs).
pub const CAS_STRIPES: usize = 1024;

/// The one table: key → record.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");

/// A record: cas (8 bytes, LE), flags (4, LE), kind (1), then the value of a live record.
const HEADER_LEN: usize = 13;
/// The kind of a record holding an item.
const LIVE: u8 = 0;
/// The kind of a record of a delete.
const TOMBSTONE: u8 = 1;

/// What the spill reports to `stats`.
#[derive(Clone, Debug, Default)]
pub struct SpillStats {
    /// Evicted items written to disk.
    pub writes: u64,
    /// Write-backs dropped: the disk already held this version or a newer one, or the item was
    /// older than the last `flush_all`.
    pub stale: u64,
    /// Misses that read the disk.
    pub reads: u64,
    /// Reads that found a live record (and cached it again).
    pub hits: u64,
    /// Tombstones written by deletes.
    pub tombstones: u64,
    /// Failed disk operations (each reported on stderr; a failed write-back loses its item).
    pub errors: u64,
    /// The database file's size.
    pub file_bytes: u64,
}

/// The shardlru cache with its spill: the backend of `--spill`.
pub(crate) struct Spilled {
    cache: Arc<Cache<Bytes, Item>>,
    spill: Arc<Spill>,
    order: CasOrder,
    /// Taken and dropped by `shutdown`, which stops the purge threads and delivers what is
    /// queued.
    purge_threads: Mutex<Option<PurgeThreads<Bytes, Item>>>,
}

/// Why a load loaded nothing.
struct NotLoaded;

impl Spilled {
    /// Creates the spill database (emptying any left from an earlier run), the cache that
    /// writes to it, and its purge threads.
    pub(crate) fn open(dir: &Path, capacity: usize, shards: Option<usize>) -> Result<Self, Error> {
        let spill = Arc::new(Spill::create(dir)?);
        let sink = Arc::clone(&spill);
        let mut builder = Cache::builder()
            .capacity(capacity)
            .weigher(weight_of)
            .max_queued(SPILL_MAX_QUEUED)
            .name("shardlru-server");
        if let Some(shards) = shards {
            builder = builder.shards(shards);
        }
        let cache = builder
            .on_evict(move |_cache, evicted| {
                // Every cause but `Clear` (flush_all: invalidate) leaves for room, or is one
                // this server does not use; writing it is the safe side.
                if evicted.cause != RemovalCause::Clear {
                    sink.write_back(&evicted.key, &evicted.value);
                }
            })
            .build()?;
        let cache = Arc::new(cache);
        let purge_threads = cache.spawn_purge_threads(SPILL_PURGE_THREADS)?;
        Ok(Self {
            cache,
            spill,
            order: CasOrder::new(),
            purge_threads: Mutex::new(Some(purge_threads)),
        })
    }

    /// The cache, for its statistics.
    pub(crate) fn cache(&self) -> &Cache<Bytes, Item> {
        &self.cache
    }

    /// The item under `key`, read back from disk on a miss (module docs, "Nothing lost").
    pub(crate) async fn get(&self, key: &Bytes) -> Option<Item> {
        let load = async {
            match self.read(key).await {
                Ok(Some(item)) => Ok(item),
                Ok(None) | Err(_) => Err(NotLoaded),
            }
        };
        self.cache.get_or_try_insert_with_async(key.clone(), load).await.ok()
    }

    /// `set`, `add` or `replace` (module docs).
    pub(crate) async fn store(
        &self,
        cas: &CasCounter,
        mode: StoreMode,
        key: Bytes,
        flags: u32,
        value: Bytes,
    ) -> Result<Outcome, Error> {
        match mode {
            StoreMode::Set => {
                self.insert(cas, key, flags, value);
                Ok(Outcome::Stored)
            }
            StoreMode::Replace => {
                if self.get(&key).await.is_none() {
                    return Ok(Outcome::NotStored);
                }
                self.insert(cas, key, flags, value);
                Ok(Outcome::Stored)
            }
            StoreMode::Add => {
                // The cas of the new item, once the loader has made it (cas uniques start at 1).
                let ours = AtomicU64::new(0);
                let load = async {
                    let item = match self.read(&key).await? {
                        Some(spilled) => spilled,
                        None => {
                            let item = Item { value, flags, cas: cas.next() };
                            ours.store(item.cas, Relaxed);
                            item
                        }
                    };
                    Ok::<_, Error>(item)
                };
                let resident = self.cache.get_or_try_insert_with_async(key.clone(), load).await?;
                // `ours` was stored (if at all) by this task, before the await returned.
                let stored = resident.cas == ours.load(Relaxed);
                Ok(if stored { Outcome::Stored } else { Outcome::NotStored })
            }
        }
    }

    /// Stores an item with a fresh cas: drawn and inserted under the key's stripe, so that
    /// insert order is cas order for the key (module docs).
    fn insert(&self, cas: &CasCounter, key: Bytes, flags: u32, value: Bytes) {
        let order = self.order.lock(&key);
        let item = Item { value, flags, cas: cas.next() };
        let replaced = self.cache.insert(key, item);
        drop(order);
        drop(replaced);
    }

    /// `delete`: whether the key held an item (module docs, "Delete").
    pub(crate) async fn delete(&self, cas: &CasCounter, key: &Bytes) -> Result<bool, Error> {
        let deleted_at = {
            let _order = self.order.lock(key);
            cas.next()
        };
        let nothing = async { Err::<Item, _>(NotLoaded) };
        let resident = self.cache.get_or_try_insert_with_async(key.clone(), nothing).await.ok();
        let present = resident.is_some_and(|item| item.cas < deleted_at);
        let spill = Arc::clone(&self.spill);
        let tombstone_key = key.clone();
        let spilled =
            tokio::task::spawn_blocking(move || spill.delete(&tombstone_key, deleted_at, present))
                .await;
        // Removed whatever happened on disk: what is cached is deleted at least.
        let removed = self.cache.remove(&key[..]).is_some();
        let spilled = spilled?.inspect_err(|error| self.spill.report("delete", error))?;
        Ok(present || spilled || removed)
    }

    /// `flush_all` (module docs).
    pub(crate) async fn flush_all(&self, cas: &CasCounter) -> Result<(), Error> {
        let floor = {
            let _order = self.order.lock_all();
            cas.next()
        };
        let spill = Arc::clone(&self.spill);
        let cache = Arc::clone(&self.cache);
        let cleared = tokio::task::spawn_blocking(move || {
            let cleared = spill.clear(floor);
            cache.clear();
            cleared
        })
        .await?;
        cleared.inspect_err(|error| self.spill.report("flush_all", error))?;
        Ok(())
    }

    /// Reads `key`'s live record on a blocking thread.
    async fn read(&self, key: &Bytes) -> Result<Option<Item>, Error> {
        let spill = Arc::clone(&self.spill);
        let key = key.clone();
        let read = tokio::task::spawn_blocking(move || spill.read(&key)).await?;
        read.inspect_err(|error| self.spill.report("read", error))
    }

    /// The spill's counters.
    pub(crate) fn stats(&self) -> SpillStats {
        self.spill.stats()
    }

    /// Stops the purge threads, delivering what is queued to disk (blocks).
    pub(crate) fn shutdown(&self) {
        let purge_threads = self.purge_threads.lock().take();
        drop(purge_threads);
    }
}

/// The redb database and the spill's counters.
struct Spill {
    db: Database,
    path: PathBuf,
    /// The cas of the last `flush_all`: write-backs of items below it are dropped. Written
    /// inside `clear`'s write transaction and read inside write-backs' ones: redb's lock on the
    /// one write transaction orders them, so `Relaxed` suffices.
    floor: AtomicU64,
    /// Write transactions begun, to pick the durable ones.
    commits: AtomicU64,
    /// The statistics; each `Relaxed`, a count with nothing hanging on it.
    writes: AtomicU64,
    stale: AtomicU64,
    reads: AtomicU64,
    hits: AtomicU64,
    tombstones: AtomicU64,
    errors: AtomicU64,
}

impl Spill {
    /// Creates `dir` if needed and an empty database in it, replacing an earlier run's.
    fn create(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(SPILL_FILE);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot replace {}: {error}", path.display()).into());
            }
            _ => {}
        }
        let db = Database::builder().set_cache_size(SPILL_CACHE_BYTES).create(&path)?;
        let txn = db.begin_write()?;
        // Created now, so that a read never finds it missing.
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(Self {
            db,
            path,
            floor: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            tombstones: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// A write transaction, durable once in [`SPILL_DURABLE_EVERY`].
    fn begin_write(&self) -> Result<WriteTransaction, Error> {
        let mut txn = self.db.begin_write()?;
        let durable = self.commits.fetch_add(1, Relaxed) % SPILL_DURABLE_EVERY == 0;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None });
        Ok(txn)
    }

    /// The eviction callback's work: stores `item` unless the disk holds this version or a newer
    /// one. Errors are reported and counted: the item is lost.
    fn write_back(&self, key: &[u8], item: &Item) {
        if let Err(error) = self.try_write_back(key, item) {
            self.report("write-back", &error);
        }
    }

    fn try_write_back(&self, key: &[u8], item: &Item) -> Result<(), Error> {
        // A read first: an item reloaded and evicted again finds its own record there, and
        // skips the write transaction. Skipping on what a read saw is safe because a record's
        // cas only grows, until a `flush_all` empties the table, and an item evicted across a
        // flush is as validly gone as written (it raced the flush).
        if self.stored_cas(key)?.is_some_and(|stored| stored >= item.cas) {
            self.stale.fetch_add(1, Relaxed);
            return Ok(());
        }
        let txn = self.begin_write()?;
        let written = {
            let mut table = txn.open_table(TABLE)?;
            let newer = table.get(key)?.is_some_and(|stored| cas_of(stored.value()) >= item.cas);
            let stale = newer || item.cas < self.floor.load(Relaxed);
            if !stale {
                table.insert(key, encode(item.cas, Some(item)).as_slice())?;
            }
            !stale
        };
        if written {
            txn.commit()?;
            self.writes.fetch_add(1, Relaxed);
        } else {
            txn.abort()?;
            self.stale.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// The cas of the record under `key`, if any.
    fn stored_cas(&self, key: &[u8]) -> Result<Option<u64>, Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.map(|stored| cas_of(stored.value())))
    }

    /// The live record under `key`, if any.
    fn read(&self, key: &[u8]) -> Result<Option<Item>, Error> {
        self.reads.fetch_add(1, Relaxed);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let item = table.get(key)?.and_then(|stored| decode(stored.value()));
        if item.is_some() {
            self.hits.fetch_add(1, Relaxed);
        }
        Ok(item)
    }

    /// Step 3 of a delete at cas `deleted_at` (module docs): writes a tombstone if the key is
    /// `present` in the cache or its record is live and older. Returns whether it was.
    fn delete(&self, key: &[u8], deleted_at: u64, present: bool) -> Result<bool, Error> {
        let txn = self.begin_write()?;
        let (live, written) = {
            let mut table = txn.open_table(TABLE)?;
            let stored = table.get(key)?.map(|stored| {
                let record = stored.value();
                (cas_of(record), record.get(HEADER_LEN - 1) == Some(&LIVE))
            });
            let live = stored.is_some_and(|(cas, live)| live && cas < deleted_at);
            let older = stored.is_none_or(|(cas, _)| cas < deleted_at);
            let write = (present || live) && older;
            if write {
                table.insert(key, encode(deleted_at, None).as_slice())?;
            }
            (live, write)
        };
        if written {
            txn.commit()?;
            self.tombstones.fetch_add(1, Relaxed);
        } else {
            txn.abort()?;
        }
        Ok(live)
    }

    /// `flush_all`'s disk side: raises the floor to `floor` and empties the table, durably.
    fn clear(&self, floor: u64) -> Result<(), Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        self.floor.fetch_max(floor, Relaxed);
        txn.delete_table(TABLE)?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(())
    }

    /// Reports a failed disk operation on stderr (the first, then every power of two, so that a
    /// full disk does not flood the log) and counts it.
    fn report(&self, what: &str, error: &dyn fmt::Display) {
        let count = self.errors.fetch_add(1, Relaxed) + 1;
        if count.is_power_of_two() {
            eprintln!("shardlru-server: spill {what} failed ({count} errors so far): {error}");
        }
    }

    fn stats(&self) -> SpillStats {
        SpillStats {
            writes: self.writes.load(Relaxed),
            stale: self.stale.load(Relaxed),
            reads: self.reads.load(Relaxed),
            hits: self.hits.load(Relaxed),
            tombstones: self.tombstones.load(Relaxed),
            errors: self.errors.load(Relaxed),
            file_bytes: std::fs::metadata(&self.path).map_or(0, |meta| meta.len()),
        }
    }
}

/// A record: see [`HEADER_LEN`]. A tombstone when `item` is `None`.
fn encode(cas: u64, item: Option<&Item>) -> Vec<u8> {
    let value = item.map_or(&[][..], |item| &item.value[..]);
    let mut record = Vec::with_capacity(HEADER_LEN + value.len());
    record.extend_from_slice(&cas.to_le_bytes());
    record.extend_from_slice(&item.map_or(0, |item| item.flags).to_le_bytes());
    record.push(if item.is_some() { LIVE } else { TOMBSTONE });
    record.extend_from_slice(value);
    record
}

/// The cas of a record (0 for a malformed one, which any write-back then replaces).
fn cas_of(record: &[u8]) -> u64 {
    record.first_chunk::<8>().map_or(0, |cas| u64::from_le_bytes(*cas))
}

/// The item of a live record; `None` for a tombstone (or a malformed record).
fn decode(record: &[u8]) -> Option<Item> {
    let (header, value) = record.split_first_chunk::<HEADER_LEN>()?;
    let (cas, rest) = header.split_first_chunk::<8>()?;
    let (flags, kind) = rest.split_first_chunk::<4>()?;
    (kind == [LIVE]).then(|| Item {
        value: Bytes::copy_from_slice(value),
        flags: u32::from_le_bytes(*flags),
        cas: u64::from_le_bytes(*cas),
    })
}

/// The striped lock under which a store draws its cas and inserts (module docs).
struct CasOrder {
    stripes: Box<[Mutex<()>]>,
    hasher: RandomState,
}

impl CasOrder {
    fn new() -> Self {
        Self {
            stripes: (0..CAS_STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The stripe of `key`, locked.
    fn lock(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        let stripe = self.hasher.hash_one(key) as usize % CAS_STRIPES;
        self.stripes[stripe].lock()
    }

    /// Every stripe, locked in order (so two callers cannot deadlock).
    fn lock_all(&self) -> Vec<MutexGuard<'_, ()>> {
        self.stripes.iter().map(|stripe| stripe.lock()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let item = Item { value: Bytes::from_static(b"v\r\n\0"), flags: 7, cas: 42 };
        let record = encode(item.cas, Some(&item));
        assert_eq!((cas_of(&record), decode(&record)), (42, Some(item)));
        let tombstone = encode(43, None);
        assert_eq!((cas_of(&tombstone), decode(&tombstone)), (43, None));
        assert_eq!((cas_of(b"short"), decode(b"short")), (0, None));
    }

    #[test]
    fn write_backs_keep_the_newest_version() -> Result<(), Error> {
        let dir = tempfile::tempdir()?;
        let spill = Spill::create(dir.path())?;
        let item = |cas| Item { value: Bytes::from(format!("v{cas}")), flags: 0, cas };
        spill.write_back(b"k", &item(5));
        spill.write_back(b"k", &item(3)); // late: dropped
        assert_eq!(spill.read(b"k")?, Some(item(5)));
        assert!(spill.delete(b"k", 6, false)?); // live and older: tombstone
        spill.write_back(b"k", &item(5)); // again: dropped
        assert_eq!(spill.read(b"k")?, None);
        spill.write_back(b"k", &item(7)); // newer than the delete
        assert_eq!(spill.read(b"k")?, Some(item(7)));
        spill.clear(8)?;
        spill.write_back(b"k", &item(7)); // below the floor
        assert_eq!(spill.read(b"k")?, None);
        let stats = spill.stats();
        assert_eq!((stats.writes, stats.stale, stats.tombstones), (2, 3, 1));
        Ok(())
    }
}
