//! The spill (`--spill DIR`): evicted items go to an on-disk store instead of being lost, and a
//! miss reads them back.
//!
//! ```text
//!  tokio workers                 shardlru                   purge thread            writer thread
//!  ─────────────                 ────────                   ────────────            ─────────────
//!  set ──insert───────────────▶ full: evict the LRU ──queue──▶ callback: stage ──▶ staging map
//!                                                             (waits while full)   key → newest
//!                                                                                  record by cas
//!                                                                                      │
//!  get ──miss──▶ get_or_try_insert_with_async                  one redb write txn per batch ◀┘
//!                 (waits for this key's callback to return)    (newer cas wins), then unstage
//!                 └─ spawn_blocking: read staging, then redb ─▶ found: cached again, answered
//! ```
//!
//! # Nothing lost
//!
//! Every key ever stored is, with its newest value, in the cache, in staging or in redb, or on
//! its way from one to the next:
//!
//! * The eviction callback stages every item that leaves for room (`Capacity`, `Shrink`,
//!   `TooHeavy`: an item heavier than the whole cache goes straight to the spill). `Clear` is
//!   not staged: `flush_all` means invalidate.
//! * The callback never runs on a tokio worker in the common case: [`Cache::spawn_purge_threads`]
//!   runs it on a thread of its own, and writes only queue. The queue is bounded
//!   ([`SPILL_MAX_QUEUED`]); a write that finds it full delivers entries itself, so that write
//!   runs the callback on its worker. That is the price of a bounded backlog.
//! * A miss loads through the library's single-flight loader: concurrent misses of one key run
//!   one read, and a load waits until the callback of its key's evicted entry has returned, so
//!   the record is staged by then. A load that finds nothing caches nothing.
//! * On shutdown the purge threads are stopped once the connections are done, which stages what
//!   is still queued; then the writer thread is stopped, which commits what is staged before it
//!   returns, and joined.
//!
//! # Staging and the writer thread
//!
//! A redb write transaction costs about 130 µs however little it writes, so the callback does
//! not write: it puts the record into the **staging map** (key → the newest record by cas,
//! under a mutex) and returns. The writer thread ([`Spill::commit_staged`]) takes everything
//! staged, commits it in one write transaction (each record only if newer than the stored one
//! and not below the floor, checked inside the transaction), and only then removes from
//! staging each record still staged at the cas it committed (a newer one staged meanwhile
//! stays, for the next batch).
//!
//! * **Reads consult staging first, then redb, and take the larger cas.** A record leaves
//!   staging only after its commit, so one that leaves between the two reads is on disk by the
//!   second. Both are needed: a late write-back of an old version can be staged while redb
//!   holds a newer record (staging only compares with staging), and the commit will drop it.
//! * **Bounded.** Staging holds at most [`SPILL_STAGED_RECORDS`] records and
//!   [`SPILL_STAGED_BYTES`] (a record that replaces one of its key, or the only one, always
//!   fits). A callback that finds it full waits (a condvar) until the writer has committed a
//!   batch. The purge thread then stops draining the library's queue, the queue reaches
//!   [`SPILL_MAX_QUEUED`], and writers deliver (and so wait) themselves: the backpressure reaches
//!   the `set`s, and the memory on top of `-m` stays bounded by the queue plus staging. Staged
//!   records share their values' buffers with the evicted items: staging copies nothing.
//! * A failed commit loses its batch (reported, counted in `errors`), as a failed write-back
//!   always lost its item: kept, it would fill staging and stall every eviction.
//!
//! # Versions: the cas unique orders them
//!
//! Write-backs can arrive out of order (the queue is drained by the purge thread and, at the
//! bound, by writers too), and late (a version evicted long ago may still be queued when the
//! key is deleted). So every record carries its item's cas unique and is **kept only if its cas
//! is larger than the record it would replace**: in staging (under its mutex), and again in the
//! writer's transaction against the stored record (redb runs one write transaction at a time,
//! and there is one writer). A record is either live (flags and value) or a **tombstone** (a
//! `delete`'s cas).
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
//!  3. stage tombstone(d) if the key is        a late write-back (cas < d) is dropped from now on;
//!     present or its record (staged or        reads see the tombstone at once (staging), and
//!     stored) is live and older               on disk once committed
//!  4. cache.remove(key)                       removes what is cached, and supersedes a load that
//!                                             read the old record before step 3
//! ```
//!
//! Step 3 before 4: with the remove first, a miss in between could load the old record again.
//! `remove` (not `remove_if`) in step 4, because it also supersedes a load still in flight (the
//! library does not cache a load that a write overtook); that it also removes a `set` that
//! raced the delete is a valid order of two overlapping commands. No tombstone is written for a
//! key that was nowhere: after step 2 nothing of it is in flight, so there is nothing to shadow.
//! Step 3 runs on a blocking thread: a full staging makes it wait like a callback.
//!
//! # flush_all
//!
//! `f` = next cas under every stripe (so every store with a smaller cas has inserted); then,
//! under the staging mutex, the floor is raised to `f` and the staged records below it dropped;
//! then one redb transaction empties the table; only then the cache is cleared. A write-back
//! below the floor is dropped: by the callback (which reads the floor under the staging mutex,
//! so it stages either before the clear of staging, and is dropped by it, or not at all), or by
//! the writer (a batch taken before the clear of staging commits either before the table is
//! emptied, and is emptied with it, or after, reading the raised floor inside its transaction).
//! A load that read a record before the clear is superseded by the cache's `clear` or cleared
//! by it. Clearing the cache first would let a miss in between load a record about to be
//! flushed.
//!
//! # Reloaded items stay on disk
//!
//! A load copies a record into the cache and leaves it in the spill. When that item is evicted
//! again its write-back has the same cas as the record, so it is dropped without a write (in
//! staging, or by the writer's transaction): an item that goes back and forth costs one write,
//! not one per eviction. A newer `set` is newer on disk too once evicted; a `delete` shadows it
//! with a tombstone. The spill thus holds every key ever evicted (and tombstones of deleted
//! ones) until `flush_all`; the file is scratch space, recreated empty at start.
//!
//! # add and replace
//!
//! `add` is a load whose loader returns the spilled record if there is one, else the new item
//! (drawing its cas): the library stores it unless a write overtook the load, and the `add`
//! stored iff the item the key ends up with is its own. `replace` is a `get` (reloading from
//! the spill) and then an insert, so as without spill a `delete` between the two is undone.
//!
//! # Why redb, and how it is used
//!
//! redb is pure Rust (no C++ toolchain, unlike RocksDB), maintained, ACID and copy-on-write with
//! MVCC readers that never block the writer. sled, the other pure-Rust choice, has had no
//! release since 2021. Each batch commits with `Durability::None` (no fsync: the spill is
//! scratch, and commits are visible to readers all the same), and one per
//! [`SPILL_DURABLE_EVERY`] records with `Immediate`, because redb frees the pages of
//! overwritten records only at durable commits. redb's page cache is bounded to
//! [`SPILL_CACHE_BYTES`], on top of `-m`.
//!
//! Measured (redb 2.6, release build, a loaded 2-core VM, 4 KiB values): one transaction per
//! evicted item took about 130 µs, some 7,000 write-backs per second; batched, the spill
//! commits some 25,000 to 35,000 per second.

use crate::Error;
use crate::protocol::StoreMode;
use crate::store::{CasCounter, Item, Outcome, weight_of};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use shardlru::{Cache, PurgeThreads, RemovalCause};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;

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

/// One write transaction per this many records committed is `Durability::Immediate` (an
/// fsync), so that redb can free the pages of overwritten records; the others use
/// `Durability::None`. The file carries the pages of the batches in between before they are
/// freed.
pub const SPILL_DURABLE_EVERY: u64 = 1024;

/// The most records staged (evicted, not yet committed) before an eviction callback waits for
/// the writer thread to commit a batch.
pub const SPILL_STAGED_RECORDS: usize = 8192;

/// The most bytes (keys, values and [`STAGED_OVERHEAD`] per record) staged before an eviction
/// callback waits; a record heavier than this is staged alone.
pub const SPILL_STAGED_BYTES: usize = 32 * 1024 * 1024;

/// What a staged record is counted for beyond its key and value: its map slot and headers.
const STAGED_OVERHEAD: usize = 64;

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
    /// The thread that commits staged records; taken by `shutdown`, which stops it once the
    /// purge threads are done and joins it after its last commit.
    writer: Mutex<Option<JoinHandle<()>>>,
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
        let writer = spill.spawn_writer()?;
        let purge_threads = match cache.spawn_purge_threads(SPILL_PURGE_THREADS) {
            Ok(purge_threads) => purge_threads,
            Err(error) => {
                spill.stop_writer(writer);
                return Err(error.into());
            }
        };
        Ok(Self {
            cache,
            spill,
            order: CasOrder::new(),
            purge_threads: Mutex::new(Some(purge_threads)),
            writer: Mutex::new(Some(writer)),
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

    /// Stops the purge threads, delivering what is queued to staging, then the writer thread
    /// after it has committed everything staged (blocks). Later calls do nothing.
    pub(crate) fn shutdown(&self) {
        let purge_threads = self.purge_threads.lock().take();
        drop(purge_threads);
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            self.spill.stop_writer(writer);
        }
    }
}

impl Drop for Spilled {
    /// Shuts down if `shutdown` was not called, so that the writer thread does not outlive the
    /// store.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The redb database, the staging map in front of it, and the spill's counters.
struct Spill {
    db: Database,
    path: PathBuf,
    /// Records evicted (or deleted) and not yet committed (module docs, "Staging").
    staging: Mutex<Staging>,
    /// Signalled when a record is staged, and at shutdown: wakes the writer thread.
    staged: Condvar,
    /// Signalled when the writer has removed a committed batch: wakes callbacks waiting for
    /// room.
    room: Condvar,
    /// The cas of the last `flush_all`: write-backs of items below it are dropped. Raised under
    /// the staging lock (and read there by callbacks), then read inside write transactions:
    /// `clear` raises it before beginning its own, and redb's lock on the one write transaction
    /// orders that before any later one, so `Relaxed` suffices.
    floor: AtomicU64,
    /// Records batched into write transactions, to pick the durable ones.
    commits: AtomicU64,
    /// The statistics; each `Relaxed`, a count with nothing hanging on it.
    writes: AtomicU64,
    stale: AtomicU64,
    reads: AtomicU64,
    hits: AtomicU64,
    tombstones: AtomicU64,
    errors: AtomicU64,
}

/// The staging map and what the writer thread needs to know about it.
#[derive(Default)]
struct Staging {
    /// Key → its newest staged record.
    records: HashMap<Bytes, Record>,
    /// What `records` is counted for against [`SPILL_STAGED_BYTES`].
    bytes: usize,
    /// Set at shutdown: the writer commits what is staged and stops.
    stop: bool,
}

/// A record: a live item, or a tombstone at a cas (`item` `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    cas: u64,
    item: Option<Item>,
}

impl Record {
    fn live(item: &Item) -> Self {
        Self { cas: item.cas, item: Some(item.clone()) }
    }

    /// What it is counted for in the staging map.
    fn staged_bytes(&self, key: &[u8]) -> usize {
        key.len() + self.item.as_ref().map_or(0, |item| item.value.len()) + STAGED_OVERHEAD
    }

    /// The newer of two records of one key, by cas.
    fn newest(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.cas > a.cas { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

impl Spill {
    /// Creates `dir` if needed and an empty database in it, replacing an earlier run's. The
    /// writer thread is started apart ([`Spill::spawn_writer`]).
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
            staging: Mutex::new(Staging::default()),
            staged: Condvar::new(),
            room: Condvar::new(),
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

    /// Starts the writer thread, which commits staged records until [`Spill::stop_writer`].
    fn spawn_writer(self: &Arc<Self>) -> Result<JoinHandle<()>, Error> {
        let spill = Arc::clone(self);
        let writer = std::thread::Builder::new()
            .name("shardlru-spill-writer".into())
            .spawn(move || while spill.commit_staged(true) {})?;
        Ok(writer)
    }

    /// Tells the writer thread to commit what is staged and stop, and waits for it.
    fn stop_writer(&self, writer: JoinHandle<()>) {
        self.staging.lock().stop = true;
        self.staged.notify_all();
        if writer.join().is_err() {
            eprintln!("shardlru-server: the spill writer panicked; staged records are lost");
        }
    }

    /// A write transaction for a batch of `records`: durable when the count of records
    /// batched crosses a multiple of [`SPILL_DURABLE_EVERY`] (and the first).
    fn begin_write(&self, records: u64) -> Result<WriteTransaction, Error> {
        let mut txn = self.db.begin_write()?;
        let before = self.commits.fetch_add(records, Relaxed);
        let durable =
            before == 0 || before / SPILL_DURABLE_EVERY != (before + records) / SPILL_DURABLE_EVERY;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None });
        Ok(txn)
    }

    /// The eviction callback's work: stages `item` unless it is below the floor or staging
    /// holds this version or a newer one. Waits while staging is full.
    fn write_back(&self, key: &Bytes, item: &Item) {
        if !self.stage(key, Record::live(item)) {
            self.stale.fetch_add(1, Relaxed);
        }
    }

    /// Stages `record` under `key`, replacing an older staged record; waits first while
    /// staging is full (unless it replaces, staging is empty, or the writer is stopped).
    /// Returns whether it staged:
    /// not when the record is below the floor or staging holds one as new.
    fn stage(&self, key: &Bytes, record: Record) -> bool {
        let weight = record.staged_bytes(key);
        let mut staging = self.staging.lock();
        loop {
            let full = staging.records.len() >= SPILL_STAGED_RECORDS
                || staging.bytes + weight > SPILL_STAGED_BYTES;
            // After shutdown no writer makes room: what is staged then stays (readable).
            let fits = staging.records.is_empty() || staging.records.contains_key(key);
            if !full || fits || staging.stop {
                break;
            }
            self.room.wait(&mut staging);
        }
        // Under the lock that `clear` raises the floor under: a record is either below it and
        // dropped here, or staged before the clear empties staging.
        if record.cas < self.floor.load(Relaxed) {
            return false;
        }
        let state = &mut *staging;
        let old_bytes = match state.records.get(key) {
            Some(staged) if staged.cas >= record.cas => return false,
            Some(staged) => staged.staged_bytes(key),
            None => 0,
        };
        state.records.insert(key.clone(), record);
        state.bytes = state.bytes - old_bytes + weight;
        drop(staging);
        self.staged.notify_one();
        true
    }

    /// One round of the writer: waits for staged records (if `wait`), commits all of them in
    /// one write transaction (each only if newer than the disk's record and not below the
    /// floor), then removes from staging each one still staged at the cas it committed. Returns
    /// false once stopped with nothing staged.
    fn commit_staged(&self, wait: bool) -> bool {
        let batch: Vec<(Bytes, Record)> = {
            let mut staging = self.staging.lock();
            while wait && staging.records.is_empty() && !staging.stop {
                self.staged.wait(&mut staging);
            }
            if staging.records.is_empty() {
                return !staging.stop;
            }
            staging.records.iter().map(|(key, record)| (key.clone(), record.clone())).collect()
        };
        if let Err(error) = self.try_commit(&batch) {
            // The batch is lost (as a failed write-back always was): dropped from staging
            // below, so that a full disk does not hold every eviction forever.
            self.report("write-back", &error);
        }
        let mut staging = self.staging.lock();
        let staging = &mut *staging;
        for (key, record) in &batch {
            if staging.records.get(key).is_some_and(|staged| staged.cas == record.cas) {
                staging.records.remove(key);
                staging.bytes -= record.staged_bytes(key);
            }
        }
        self.room.notify_all();
        true
    }

    /// Writes `batch` in one transaction, each record only if newer than the stored one and
    /// not below the floor.
    fn try_commit(&self, batch: &[(Bytes, Record)]) -> Result<(), Error> {
        let txn = self.begin_write(batch.len() as u64)?;
        let (mut inserted, mut written, mut stale) = (0, 0, 0);
        {
            let mut table = txn.open_table(TABLE)?;
            // Read inside the transaction: see `floor`.
            let floor = self.floor.load(Relaxed);
            for (key, record) in batch {
                let newer =
                    table.get(&key[..])?.is_some_and(|stored| cas_of(stored.value()) >= record.cas);
                if newer || record.cas < floor {
                    stale += 1;
                    continue;
                }
                table.insert(&key[..], encode(record.cas, record.item.as_ref()).as_slice())?;
                inserted += 1;
                written += u64::from(record.item.is_some());
            }
        }
        if inserted > 0 {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        self.writes.fetch_add(written, Relaxed);
        self.stale.fetch_add(stale, Relaxed);
        Ok(())
    }

    /// The newest record of `key`: staging first, then the disk (in that order: a record
    /// leaves staging only once committed, so one that leaves between the two reads is on
    /// disk by the second), the larger cas of the two (a late write-back of an old version
    /// can be staged while the disk holds a newer one).
    fn record(&self, key: &[u8]) -> Result<Option<Record>, Error> {
        let staged = self.staging.lock().records.get(key).cloned();
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let stored = table.get(key)?.map(|stored| {
            let record = stored.value();
            Record { cas: cas_of(record), item: decode(record) }
        });
        Ok(Record::newest(staged, stored))
    }

    /// The live record under `key`, if any, from staging or disk.
    fn read(&self, key: &[u8]) -> Result<Option<Item>, Error> {
        self.reads.fetch_add(1, Relaxed);
        let item = self.record(key)?.and_then(|record| record.item);
        if item.is_some() {
            self.hits.fetch_add(1, Relaxed);
        }
        Ok(item)
    }

    /// Step 3 of a delete at cas `deleted_at` (module docs): stages a tombstone if the key is
    /// `present` in the cache or its record is live and older. Returns whether it was live.
    /// Blocks while staging is full.
    fn delete(&self, key: &Bytes, deleted_at: u64, present: bool) -> Result<bool, Error> {
        let record = self.record(key)?;
        let live =
            record.as_ref().is_some_and(|record| record.item.is_some() && record.cas < deleted_at);
        let older = record.is_none_or(|record| record.cas < deleted_at);
        if (present || live) && older {
            // Staged, it shadows the old record for reads at once; committed, on disk.
            if self.stage(key, Record { cas: deleted_at, item: None }) {
                self.tombstones.fetch_add(1, Relaxed);
            }
        }
        Ok(live)
    }

    /// `flush_all`'s disk side: raises the floor to `floor` and drops the staged records below
    /// it, then empties the table, durably.
    fn clear(&self, floor: u64) -> Result<(), Error> {
        {
            let mut staging = self.staging.lock();
            self.floor.fetch_max(floor, Relaxed);
            let staging = &mut *staging;
            let mut bytes = staging.bytes;
            staging.records.retain(|key, record| {
                let keep = record.cas >= floor;
                if !keep {
                    bytes -= record.staged_bytes(key);
                }
                keep
            });
            staging.bytes = bytes;
        }
        self.room.notify_all();
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
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

    /// A spill without its writer thread: `commit` commits what is staged.
    fn spill() -> Result<(Spill, tempfile::TempDir), Error> {
        let dir = tempfile::tempdir()?;
        Ok((Spill::create(dir.path())?, dir))
    }

    fn item(cas: u64) -> Item {
        Item { value: Bytes::from(format!("v{cas}")), flags: 0, cas }
    }

    fn commit(spill: &Spill) {
        assert!(spill.commit_staged(false));
        assert!(spill.staging.lock().records.is_empty());
    }

    /// The record under `key` on disk only.
    fn on_disk(spill: &Spill, key: &[u8]) -> Result<Option<Record>, Error> {
        let txn = spill.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let record = table
            .get(key)?
            .map(|stored| Record { cas: cas_of(stored.value()), item: decode(stored.value()) });
        Ok(record)
    }

    #[test]
    fn write_backs_keep_the_newest_version() -> Result<(), Error> {
        let (spill, _dir) = spill()?;
        let k = Bytes::from_static(b"k");
        spill.write_back(&k, &item(5));
        spill.write_back(&k, &item(3)); // late: dropped in staging
        commit(&spill);
        assert_eq!(spill.read(&k)?, Some(item(5)));
        spill.write_back(&k, &item(4)); // late: staged, dropped at commit
        assert_eq!(spill.read(&k)?, Some(item(5))); // the disk's is newer than the staged one
        commit(&spill);
        assert!(spill.delete(&k, 6, false)?); // live and older: tombstone
        commit(&spill);
        spill.write_back(&k, &item(5)); // again: dropped at commit
        assert_eq!(spill.read(&k)?, None);
        commit(&spill);
        assert_eq!(spill.read(&k)?, None);
        spill.write_back(&k, &item(7)); // newer than the delete
        commit(&spill);
        assert_eq!(spill.read(&k)?, Some(item(7)));
        spill.clear(8)?;
        spill.write_back(&k, &item(7)); // below the floor
        commit(&spill);
        assert_eq!(spill.read(&k)?, None);
        let stats = spill.stats();
        assert_eq!((stats.writes, stats.stale, stats.tombstones), (2, 4, 1));
        Ok(())
    }

    #[test]
    fn reads_find_staged_records_before_their_commit() -> Result<(), Error> {
        let (spill, _dir) = spill()?;
        let k = Bytes::from_static(b"k");
        spill.write_back(&k, &item(5));
        assert_eq!(on_disk(&spill, &k)?, None); // staged, not committed
        assert_eq!(spill.read(&k)?, Some(item(5)));
        assert!(spill.delete(&k, 6, false)?); // a staged tombstone replaces it
        assert_eq!(spill.read(&k)?, None);
        spill.write_back(&k, &item(5)); // a late write-back: older than the staged tombstone
        assert_eq!(spill.read(&k)?, None);
        commit(&spill);
        assert_eq!(on_disk(&spill, &k)?, Some(Record { cas: 6, item: None }));
        spill.write_back(&k, &item(7));
        spill.clear(8)?; // drops the staged record below the floor
        assert_eq!(spill.read(&k)?, None);
        commit(&spill);
        assert_eq!(on_disk(&spill, &k)?, None);
        Ok(())
    }

    #[test]
    fn a_full_staging_waits_for_the_writer() -> Result<(), Error> {
        let (spill, _dir) = spill()?;
        let spill = Arc::new(spill);
        for cas in 1..=SPILL_STAGED_RECORDS as u64 {
            spill.write_back(&Bytes::from(format!("k{cas}")), &item(cas));
        }
        let last = Bytes::from_static(b"last");
        let waiting = {
            let (spill, last) = (Arc::clone(&spill), last.clone());
            std::thread::spawn(move || spill.write_back(&last, &item(u64::MAX)))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiting.is_finished()); // full: waits for room
        assert!(spill.commit_staged(false));
        waiting.join().expect("the waiting write-back");
        commit(&spill);
        assert_eq!(spill.stats().writes, SPILL_STAGED_RECORDS as u64 + 1);
        assert_eq!(spill.read(&last)?, Some(item(u64::MAX)));
        Ok(())
    }

    #[tokio::test]
    async fn shutdown_commits_what_is_staged() -> Result<(), Error> {
        let dir = tempfile::tempdir()?;
        let config = crate::Config {
            memory_limit: 20 * 300,
            spill: Some(dir.path().to_path_buf()),
            ..crate::Config::default()
        };
        let store = crate::Store::open(&config)?;
        let value = |i: u32| Bytes::from(format!("value {i} {}", "x".repeat(60)));
        for i in 0..2000 {
            store.store(StoreMode::Set, Bytes::from(format!("key{i}")), i, value(i)).await?;
        }
        let cached = store.stats().curr_items;
        store.shutdown(); // blocks; nothing else runs on this runtime
        drop(store);
        // Every key but those still cached is in the file.
        let db = Database::open(dir.path().join(SPILL_FILE))?;
        let txn = db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let mut found = 0;
        for i in 0..2000 {
            if let Some(stored) = table.get(format!("key{i}").as_bytes())? {
                let item = decode(stored.value()).expect("a live record");
                assert_eq!((item.value, item.flags), (value(i), i));
                found += 1;
            }
        }
        assert!(cached > 0);
        assert_eq!(found, 2000 - cached);
        Ok(())
    }
}
