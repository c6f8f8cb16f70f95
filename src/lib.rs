//! A concurrent, sharded LRU cache for multithreaded servers, whose eviction callback may do
//! real work (write back to disk, close a handle, count a metric) without deadlocks, without
//! piling threads up behind a lock, and without losing entries.
//!
//! # Design
//!
//! ```text
//!  caller threads                 shards (N, power of two)                  purge (any thread)
//!  ───────────────               ────────────────────────────────           ───────────────────
//!  get/insert/remove ──hash(k)──▶ shard[i]: RwLock<table + list + touches> ─evict─▶ eviction queue ──▶ callback(k, v, cause)
//!    hash (and weight)             hits record touches (read mode when        lock-free MPSC;        run OUTSIDE every shard
//!    computed before               the lock is busy); writes drain them       pushes never block     lock, at most `cap` at once
//!    any lock                      into exact LRU order
//! ```
//!
//! * **Shards.** The key space is split over N independently locked shards, chosen by the key's
//!   hash (ahash by default, any `BuildHasher` through the builder). The hash is computed once,
//!   before locking, and reused inside the shard. Each shard keeps its entries in exact order of
//!   last use: a `hashbrown::HashTable` of indices into a dense slab threaded on an
//!   index-linked recency list. No allocation per entry on the steady-state path (a full cache
//!   recycles its victim's node), no `Rc`/`RefCell`, no `unsafe`.
//! * **Hits.** A hit relinks nothing: it stamps its node and, on the node's first touch since
//!   the last drain, logs it; the next write drains the log in stamp order. A hit takes the
//!   shard's lock in write mode when it is free, and in read mode beside other hits when it is
//!   not, so [`Cache`] is `Sync` only when `K` and `V` are `Sync` too.
//! * **One capacity.** The capacity, in entries or in the weight a [`Builder::weigher`] gives,
//!   belongs to the whole cache: an insert claims its weight from one cache-wide total, and an
//!   insert into a full cache evicts the entry its [`EvictionScope`] chooses (its own shard's
//!   least recent by default, or the older of two shards', or the whole cache's).
//! * **Eviction queue.** A full shard unlinks its least recently used entry and the cache pushes
//!   `(key, value, cause)` onto a lock-free queue (crossbeam's `SegQueue`) after releasing the
//!   shard lock. With no callback configured, evicted entries are dropped instead, still outside
//!   the lock, and nothing is queued.
//! * **Purge.** Any thread may pop queued entries and run the callback on them, outside every
//!   lock, while an atomic count of callbacks in flight stays under `max_pending_callbacks`.
//!   Every mutating call ends with a purge attempt; at the cap the attempt returns at once.
//!   [`Cache::flush`] delivers the whole backlog, waiting for slots.
//! * **Background delivery and the bound.** [`Cache::spawn_purge_threads`] starts threads that
//!   run the callback, so that writes only queue; dropping the returned [`PurgeThreads`] stops
//!   them and delivers what is queued. [`Builder::max_queued`] bounds the queue: a write that
//!   finds it full delivers until it is not.
//! * **Loads.** [`Cache::get_or_insert_with`] records a load in flight in its key's shard, beside
//!   the entries, so that other callers for that key wait for its value; the loader runs
//!   outside every lock, after any write-back of the key still on its way to the callback.
//!
//! # Guarantees
//!
//! 1. **Capacity.** The cache evicts only when its entries no longer fit the capacity, and
//!    after any call returns, `weight() <= capacity()` (without a weigher, `len() == weight()`).
//!    An entry heavier than the whole capacity is not stored: it goes to the callback as
//!    [`RemovalCause::TooHeavy`].
//! 2. **Recency.** `get` and `insert` make an entry the most recently used; `peek` and
//!    `contains_key` do not. Each shard is an exact LRU; with [`EvictionScope::Global`], one
//!    thread sees the cache evict exactly as one LRU list would.
//! 3. **Nothing is lost.** A value leaves the cache exactly once: handed back to a caller
//!    (`remove`, `remove_if`, the old value from `insert`) or handed to the callback (capacity
//!    eviction, `clear`, `retain`, a shrinking `resize`). Entries still queued when the cache is
//!    dropped, or when its purge threads are stopped, are delivered then. Without a callback,
//!    evicted values are dropped.
//! 4. **No user code under a shard lock** except the key's `Eq`/`Borrow` (its `Hash` runs
//!    before the lock), the value's `Clone` for `get`/`peek`/`snapshot`/`iter` and the
//!    `get_or_insert*` methods (and the key's for `snapshot`/`iter`), and the predicates of
//!    `retain` and `remove_if`, which are treated like `Eq`. Loaders run outside every lock. Callbacks and every `Drop` of
//!    a key or value run after the lock is released.
//! 5. **Re-entrant callbacks work**, with a bounded stack and bounded work per call.
//! 6. **Re-entrant methods never deadlock**: a thread holding a shard lock (running a key's
//!    `Eq` or a value's `Clone`) never waits for another one; where it would have to, its call
//!    is refused with [`Busy`] or a panic. This holds across caches too.
//! 7. **Panics are contained**: counted, reported, and the cache stays consistent and usable.
//! 8. **Bad configuration is refused** by [`Builder::build`] with a [`BuildError`].
//! 9. **One load per missing key, never a stale one**
//!    ([`get_or_insert_with`](Cache::get_or_insert_with)): concurrent callers for a missing key
//!    wait for one loader; a load starts only once the callback of its key's evicted entry has
//!    returned, and a write to the key during the load wins over the loaded value.
//!
//! # Quick start
//!
//! ```
//! use shardlru::Cache;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! let written_back = Arc::new(AtomicU64::new(0));
//! let counter = Arc::clone(&written_back);
//! let cache = Cache::<u64, Arc<str>>::builder()
//!     .capacity(1_000)
//!     .on_evict(move |_cache, evicted| {
//!         // Runs outside every lock: slow I/O here holds up no reader.
//!         counter.fetch_add(1, Ordering::Relaxed);
//!         drop(evicted.value);
//!     })
//!     .build()?;
//!
//! for key in 0..1_500 {
//!     cache.insert(key, Arc::from(format!("page {key}")));
//! }
//! assert!(cache.len() <= 1_000);
//! cache.flush(); // writes deliver as they go; this delivers what is still queued
//! assert_eq!(written_back.load(Ordering::Relaxed) as usize + cache.len(), 1_500);
//! # Ok::<(), shardlru::BuildError>(())
//! ```
//!
//! # Re-entrancy and panics
//!
//! * **Callbacks may call the cache.** The callback receives `&Cache`, so it can `get`,
//!   `insert`, `remove`, `clear`, `resize` or `purge` the very cache that evicted the entry.
//!   Take the cache from that argument rather than capturing an `Arc` of it: a callback that
//!   owns a handle to its own cache makes a reference cycle, and the cache is never dropped.
//! * **No recursion.** A purge started inside a callback on the same thread returns at once; the
//!   outer purge keeps draining, so the stack stays flat however long a chain of evictions gets.
//! * **Bounded work per call.** One purge delivers at most what was queued when it started plus
//!   a few more; a callback that inserts faster than the queue drains leaves the rest queued
//!   ([`Cache::queued`]) for later calls.
//! * **Calls from under a lock never wait.** A key's `Hash` runs before any lock is taken, so
//!   it may call the cache freely. A key's `Eq`/`Borrow` and a value's `Clone` run under a
//!   shard lock, and so do the predicates of `retain` and `remove_if`; calls they make into
//!   any cache never wait for a lock. Such a call is refused
//!   ([`BusyCause`]) when it would have to: a lock of the same cache, another cache's lock held
//!   by another thread (two caches whose `Clone`s call each other cannot deadlock), an insert
//!   that would evict into the callback, `clear` or `resize`. `try_*` methods return [`Busy`],
//!   handing back what they took; the other methods panic with a message naming the cause. A
//!   purge reached that way returns 0: no callback ever runs while its thread holds a shard
//!   lock.
//! * **Callback panics are caught.** The entry counts as delivered, the panic is counted in
//!   [`Stats::callback_panics`] and handed to [`Builder::on_callback_panic`] (default: a line on
//!   stderr), and the purge goes on; the callback stays in use.
//!   [`Builder::resume_callback_panics`] makes the panic resume in the purging caller instead.
//! * **Panics in `Hash`, `Eq`, `Clone` or `Drop`** leave the cache consistent: shard code runs
//!   `Eq` before it mutates (a `get` records its touch and then clones the value, so a panicking
//!   `Clone` leaves the entry most recent, nothing more), drops happen after the lock is
//!   released, and locks never poison. A report handler that panics is caught like the
//!   callback. `remove` purges before it takes its value out, and a replacing `insert` does not
//!   purge, so a panic resumed from a callback never unwinds past a value on its way back.
//! * **Drop.** Dropping the cache delivers the entries still queued, and drops the entries still
//!   in it. While it does, the cache is closing: whatever the callbacks insert, and whatever they
//!   evict or clear, is dropped with the cache instead of queued, so the drop always ends. Under
//!   `resume_callback_panics`, a callback panic during the drop resumes after the rest is
//!   delivered. A cache dropped under another cache's lock (in its `Eq` or `Clone`) finishes its
//!   drop when the thread releases that lock; one kept in a `thread_local!` delivers its queue at
//!   thread exit like any other (the per-thread state it relies on has no destructor).
//!
//! # Tuning
//!
//! * [`Builder::shards`]: more shards, less lock contention. Under the default eviction scope,
//!   fewer shards also keep the hit ratio closer to one global LRU; under
//!   [`EvictionScope::Global`] the shard count changes only contention. [`Cache::stats`] and
//!   [`Cache::shard_stats`] report lock contention and what each shard holds.
//! * [`Builder::eviction_scope`]: which shards' least recent entries an eviction compares.
//! * [`Builder::max_pending_callbacks`]: small for blocking, I/O-bound callbacks, large for
//!   cheap ones.
//! * [`Cache::spawn_purge_threads`] for callbacks slow enough that request threads should never
//!   run them, and [`Builder::max_queued`] where memory must stay bounded whatever the
//!   callbacks' speed (writers then pay at the bound; readers never do).
//!
//! # Verification
//!
//! The concurrent protocol (shard lock and queue hand-off, hits in read mode, the cache-wide
//! weight and the victim choice, the purge and its cap, re-entry detection, loads, the purge
//! threads' parking and the bound, statistics) is
//! written against a `sync` facade that switches to loom's
//! primitives under `--cfg loom`; the models live in the `loom-tests` crate of the repository.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod background;
mod builder;
mod cache;
mod error;
mod evict;
mod load;
mod lock;
mod nesting;
mod purge;
mod recency;
mod shard;
mod slab;
mod stats;
mod sync;

pub use background::PurgeThreads;
pub use builder::{
    Builder, DEFAULT_MAX_PENDING_CALLBACKS, EvictionScope, MAX_SHARDS, MIN_DEFAULT_SHARE,
    SHARDS_PER_CORE,
};
pub use cache::{Cache, Iter};
pub use error::{BuildError, Busy, BusyCause, ResizeError, SpawnError};
pub use evict::{Evicted, RemovalCause};
pub use nesting::MAX_NESTING;
pub use purge::CallbackPanic;
pub use stats::{ShardStats, Stats};

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
