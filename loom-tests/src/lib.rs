//! Loom models of shardlru's concurrent protocol.
//!
//! Each file in `tests/` checks one protocol; each `#[test]` in it is a named scenario of two or
//! three threads that asserts the guarantee it exists for:
//!
//! | file | protocol | guarantee checked |
//! |---|---|---|
//! | `capacity.rs` | shard lock, evict → queue | 1 (capacity), 3 (nothing lost) |
//! | `global_capacity.rs` | the cache-wide weight claim, victim choice across shards | 1: never over capacity, no claim leaked; 2: the victim re-checked after a racing hit; 3 |
//! | `recency.rs` | hits in read mode, touches drained by writes | 2: exact order of last use; shard invariants (log, stamps) |
//! | `purge_cap.rs` | the pending-callback cap | ≤ cap callbacks at once; count back to 0; a refused purge strands nothing (cap 1 and 2) |
//! | `handoff.rs` | queue → purge hand-off | 3: each queued entry delivered exactly once |
//! | `purge_reentry.rs` | a purge inside a callback | 5: no recursion; the outer purge finishes |
//! | `drain_on_drop.rs` | dropping the last handle | 3: what is left queued is delivered |
//! | `reentry.rs` | never waiting while holding a lock | 6: re-entry refused; two caches crossed never deadlock |
//! | `background.rs` | delivery threads parking; the bound; waiting for a slot | no lost wake-up; a stop strands nothing; a held write returns below the bound; no waiter left asleep |
//! | `load.rs` | loads: records, outcomes, the wait for write-backs | one loader per key, no lost wake-up; a panicking loader's waiter loads; no stale load (slot and overflow, thread and task) |
//! | `get_insert.rs` | `get`/`insert` on one key | no value lost, duplicated or torn |
//! | `resize.rs` | `resize`, growing and shrinking | 1: `len()` and `capacity()` never inverted |
//! | `stats.rs` | statistics counters | counters add up after the threads join |
//!
//! The models only exist under `RUSTFLAGS="--cfg loom"`, where shardlru's `sync` facade switches
//! to loom's primitives. `loom-tests/run.sh` fixes the flags; see it for the command.
//!
//! This library holds what every model shares: [`run_model`], the [`builder`] that gives every
//! cache the same fixed-seed hasher (so that a key lands in the same shard in every execution, and
//! an execution can be replayed), and the [`Ledger`] that counts deliveries per key (with
//! [`ledger_cache`], a cache whose callback does only that).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use shardlru::{Builder, Cache};
use std::time::Instant;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

pub use loom::sync::Arc;

/// The hasher of every model's cache.
pub type Hasher = ahash::RandomState;

/// The cache every model uses: `u32` keys, fixed-seed hashing.
pub type TestCache<V = u32> = Cache<u32, V, Hasher>;

/// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set, as in sharded-slab's and tokio's
/// loom runs. On two cores the whole suite takes under a minute at 2 and about 7 minutes at 3
/// (more than half of it in `purge_cap::cap_two_three_evicting_threads`, most of the rest in
/// `capacity.rs`, `handoff.rs` and `purge_reentry.rs`).
pub const DEFAULT_PREEMPTIONS: usize = 2;

/// How many bits the cache shifts a key's hash right before masking it to a shard index; mirrors
/// `SHARD_HASH_SHIFT` in shardlru's `cache.rs`. Models that rely on a placement check it with
/// [`Cache::shard_stats`], so a change there fails loudly instead of weakening a model.
const SHARD_HASH_SHIFT: u32 = 32;

/// A hasher with fixed seeds: the same key goes to the same shard in every execution.
pub fn hasher() -> Hasher {
    Hasher::with_seeds(1, 2, 3, 4)
}

/// A builder for a model's cache: `capacity` over `shards`, the fixed-seed hasher, and callback
/// panics resumed in the purging thread, so that an assertion failing inside a callback fails the
/// model instead of being caught and reported by the cache. Set `on_evict` after this.
pub fn builder<V>(capacity: usize, shards: usize) -> Builder<u32, V, Hasher> {
    Cache::<u32, V>::builder()
        .capacity(capacity)
        .shards(shards)
        .resume_callback_panics()
        .hasher(hasher())
}

/// The shard `key` lands in, in a cache of `shards` shards built by [`builder`].
pub fn shard_of(key: u32, shards: usize) -> usize {
    (hasher().hash_one(key) >> SHARD_HASH_SHIFT) as usize & (shards - 1)
}

/// The first `N` keys, counting up from 0, that land in `shard` of `shards`.
pub fn keys_in_shard<const N: usize>(shard: usize, shards: usize) -> [u32; N] {
    let mut keys = (0..).filter(|&key| shard_of(key, shards) == shard);
    std::array::from_fn(|_| keys.next().expect("some key lands in every shard"))
}

/// Asserts what a caller may rely on when its call returns (guarantee 1): `len()` within
/// `capacity()`. Cheap enough for the model's threads (a load per shard).
pub fn assert_capacity<V>(cache: &TestCache<V>) {
    let (len, capacity) = (cache.len(), cache.capacity());
    assert!(len <= capacity, "len {len} over capacity {capacity}");
}

/// [`assert_capacity`], the published weights adding up to the cache's, and every shard's
/// invariants (`Cache::validate`, which exists under `--cfg loom` only); for after the threads
/// join.
pub fn assert_settled<V>(cache: &TestCache<V>) {
    assert_capacity(cache);
    let weights: u64 = cache.shard_stats().iter().map(|shard| shard.weight).sum();
    assert_eq!(weights, cache.weight(), "the shards' weights do not add up to the cache's");
    cache.validate();
}

/// Runs `model` in every interleaving loom explores, under `LOOM_MAX_PREEMPTIONS` (or
/// [`DEFAULT_PREEMPTIONS`]), and reports on stderr how many executions that took and how long.
/// The other `LOOM_*` variables work as in `loom::model`: `LOOM_LOG=trace` prints each step of
/// the executions, `LOOM_LOCATION=1` adds source locations to a failure report, and
/// `LOOM_CHECKPOINT_FILE` (with loom's `checkpoint` feature) replays a failing execution.
pub fn run_model<F>(name: &str, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    // What `loom::model` does before it checks, which `Builder::check` alone does not.
    let _log = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_env("LOOM_LOG"))
        .with_test_writer()
        .without_time()
        .finish()
        .set_default();
    let mut builder = loom::model::Builder::new();
    let bound = *builder.preemption_bound.get_or_insert(DEFAULT_PREEMPTIONS);
    // Counts executions outside loom's view: a std atomic is invisible to the model.
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    eprintln!("loom model {name}: running (preemption bound {bound})");
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom model {name}: passed, {} executions in {:.2?} (preemption bound {bound})",
        executions.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed(),
    );
}

/// The cache `builder` makes, with a callback that records each delivered key in the returned
/// ledger (over `keys`): the set-up of every model whose callback only counts deliveries.
pub fn ledger_cache(
    builder: Builder<u32, u32, Hasher>,
    keys: &[u32],
) -> (Arc<TestCache>, Arc<Ledger>) {
    let ledger = Ledger::new(keys);
    let delivered = Arc::clone(&ledger);
    let cache = builder.on_evict(move |_cache, evicted| delivered.deliver(evicted.key)).build();
    (Arc::new(cache.unwrap()), ledger)
}

/// Spawns a loom thread that runs `body` on `cache` and then checks, as its caller may rely on,
/// that the call ended within the capacity ([`assert_capacity`]).
pub fn spawn_on<T: 'static>(
    cache: &Arc<TestCache>,
    body: impl FnOnce(&TestCache) -> T + 'static,
) -> loom::thread::JoinHandle<T> {
    let cache = Arc::clone(cache);
    loom::thread::spawn(move || {
        let result = body(&cache);
        assert_capacity(&cache);
        result
    })
}

/// Inserts each of `keys` (as its own value) from a loom thread of its own, runs `then` on that
/// thread after its insert returns, and joins the threads.
pub fn insert_from_threads(cache: &Arc<TestCache>, keys: &[u32], then: fn()) {
    let threads: Vec<_> = keys
        .iter()
        .map(|&key| {
            let cache = Arc::clone(cache);
            loom::thread::spawn(move || {
                cache.insert(key, key);
                then();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// How many times each key reached the eviction callback. A second delivery of a key fails the
/// model at once, inside the callback that received it.
pub struct Ledger {
    keys: Vec<(u32, AtomicUsize)>,
}

impl Ledger {
    /// A ledger for these keys; recording any other key fails the model.
    pub fn new(keys: &[u32]) -> Arc<Self> {
        Arc::new(Self { keys: keys.iter().map(|&key| (key, AtomicUsize::new(0))).collect() })
    }

    fn slot(&self, key: u32) -> &AtomicUsize {
        let found = self.keys.iter().find(|(k, _)| *k == key);
        &found.unwrap_or_else(|| panic!("key {key} was delivered but never inserted")).1
    }

    /// Records a delivery of `key`; panics if the key was delivered before.
    pub fn deliver(&self, key: u32) {
        // Relaxed: a read-modify-write reads the latest count whatever its ordering, so a second
        // delivery always sees the first; the final counts are read after the threads join.
        let before = self.slot(key).fetch_add(1, Relaxed);
        assert_eq!(before, 0, "key {key} delivered twice");
    }

    /// How many times `key` was delivered.
    pub fn count(&self, key: u32) -> usize {
        self.slot(key).load(Relaxed)
    }

    /// How many deliveries there were, all keys together.
    pub fn total(&self) -> usize {
        self.keys.iter().map(|(_, count)| count.load(Relaxed)).sum()
    }

    /// Asserts that every key of the ledger left the cache exactly once or is still in it: that
    /// nothing was lost or delivered twice (guarantee 3). Call it after the threads join.
    pub fn assert_each_key_once<V>(&self, cache: &TestCache<V>) {
        for &(key, ref count) in &self.keys {
            let delivered = count.load(Relaxed);
            let resident = usize::from(cache.contains_key(&key));
            assert_eq!(
                delivered + resident,
                1,
                "key {key}: delivered {delivered} times, resident {resident} times"
            );
        }
    }
}
