//! Drop hazards (guarantees 3 and 4, seed `003`: finalizers introduce concurrency, so never run
//! them under a lock): when and how often the cache drops what it holds.
//!
//! * **Drops run outside locks.** Every key and value the cache drops (a replaced key, a removed
//!   key, an evicted or cleared entry, an entry a shrinking `resize` removed, the entries the cache
//!   holds when it is dropped) is dropped after the shard lock is released. The probes here look
//!   from inside `Drop`: a call into their own cache is not refused as `Busy`, and a purge of
//!   another cache is not skipped for holding a shard lock. A value whose `Drop` inserts into the
//!   same cache works.
//! * **The drop delivers.** Entries still queued when the cache is dropped reach the callback
//!   during the drop.
//! * **No leak.** A callback that calls back into its cache through its `&Cache` argument (or
//!   through a `Weak` handle) makes no cycle: dropping the cache drops every key and value exactly
//!   once.

mod support;

use shardlru::{BusyCause, Cache, Evicted, RemovalCause};
use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use support::{DropLog, Tracked, expect_panic, watchdog};

// ---------------------------------------------------------------------------------------------
// Probes: keys and values that look, from inside their Drop, whether a lock is held.
// ---------------------------------------------------------------------------------------------

type ProbeCache = Cache<Probe, Probe>;

/// What one test's probes share: their cache (weakly: a value must not keep its own cache
/// alive), a detector of held shard locks, and what each probe saw.
struct Home {
    cache: OnceLock<Weak<ProbeCache>>,
    /// Capacity 1 and never empty, so that each insert evicts the previous key and then purges.
    detector: Cache<u64, ()>,
    detector_next: AtomicU64,
    seen: Mutex<Vec<Seen>>,
}

/// What a probe saw, from its `Drop` (or from its `Eq`, for the detector's own check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    id: u64,
    event: Event,
    /// `try_contains_key` on the probe's own cache: `Some(true)` if it answered, `Some(false)` if
    /// it was refused as `Busy` (this thread held one of that cache's locks), `None` once the
    /// cache is gone (during its own drop).
    own_cache: Option<bool>,
    /// Whether this thread held no shard lock of any cache, by [`Home::no_lock_held`].
    no_lock: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Drop,
    Eq,
}

impl Home {
    fn new() -> Arc<Home> {
        let detector = Cache::builder().capacity(1).shards(1).on_evict(|_, _| {}).build().unwrap();
        detector.insert(0, ());
        Arc::new(Home {
            cache: OnceLock::new(),
            detector,
            detector_next: AtomicU64::new(1),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// Whether this thread holds no shard lock of any cache. The detector's insert evicts its
    /// one entry into its callback: a thread that holds a shard lock has it refused
    /// (`BusyCause::WouldEvict`, crate docs), any other thread has the entry delivered at once.
    fn no_lock_held(&self) -> bool {
        let key = self.detector_next.fetch_add(1, SeqCst);
        match self.detector.try_insert(key, ()) {
            Ok(_) => {
                assert_eq!(self.detector.queued(), 0, "the evicted entry was delivered");
                true
            }
            Err(busy) => {
                assert_eq!(busy.cause(), BusyCause::WouldEvict);
                false
            }
        }
    }

    fn look(&self, id: u64, event: Event) -> Option<Arc<ProbeCache>> {
        let cache = self.cache.get().and_then(Weak::upgrade);
        let own_cache = cache.as_ref().map(|cache| cache.try_contains_key(&u64::MAX).is_ok());
        let no_lock = self.no_lock_held();
        self.seen.lock().unwrap().push(Seen { id, event, own_cache, no_lock });
        cache
    }

    /// What the probes saw since the last call.
    fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A key or value that records, when dropped, whether a lock was held. Equality and hashing use
/// `id` only, and hash like a `u64` (so `&u64` looks it up).
struct Probe {
    id: u64,
    home: Arc<Home>,
    behaviour: Behaviour,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Only record.
    Observe,
    /// Record, and when dropped insert `key → key + 1` into the same cache.
    InsertOnDrop { key: u64 },
    /// Record from `Eq` as well (the detector's check of itself).
    ObserveInEq,
    /// `Eq` panics.
    PanicInEq,
    /// `Clone` panics.
    PanicInClone,
}

impl Probe {
    fn new(home: &Arc<Home>, id: u64) -> Probe {
        Probe { id, home: home.clone(), behaviour: Behaviour::Observe }
    }

    fn with(home: &Arc<Home>, id: u64, behaviour: Behaviour) -> Probe {
        Probe { id, home: home.clone(), behaviour }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let cache = self.home.look(self.id, Event::Drop);
        if let (Behaviour::InsertOnDrop { key }, Some(cache)) = (self.behaviour, cache) {
            let old = cache.insert(Probe::new(&self.home, key), Probe::new(&self.home, key + 1));
            assert!(old.is_none());
        }
    }
}

impl Clone for Probe {
    fn clone(&self) -> Probe {
        if self.behaviour == Behaviour::PanicInClone {
            panic!("Clone of probe {} fails", self.id);
        }
        Probe::new(&self.home, self.id)
    }
}

impl Hash for Probe {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl PartialEq for Probe {
    fn eq(&self, other: &Self) -> bool {
        for probe in [self, other] {
            match probe.behaviour {
                Behaviour::ObserveInEq => drop(probe.home.look(probe.id, Event::Eq)),
                Behaviour::PanicInEq => panic!("Eq of probe {} fails", probe.id),
                _ => {}
            }
        }
        self.id == other.id
    }
}

impl Eq for Probe {}

impl Borrow<u64> for Probe {
    fn borrow(&self) -> &u64 {
        &self.id
    }
}

/// What a probe cache's callback got: each entry's key id and why it left.
type Deliveries = Arc<Mutex<Vec<(u64, RemovalCause)>>>;

/// A probe cache registered in `home`, optionally with a callback that records what it gets and
/// checks, from inside, that it may call the cache.
fn probe_cache(home: &Arc<Home>, capacity: usize, callback: Option<Deliveries>) -> Arc<ProbeCache> {
    let builder = ProbeCache::builder().capacity(capacity).shards(1);
    let builder = match callback {
        None => builder,
        Some(delivered) => builder.resume_callback_panics().on_evict(move |cache, evicted| {
            assert!(cache.try_contains_key(&u64::MAX).is_ok(), "a callback runs outside locks");
            delivered.lock().unwrap().push((evicted.key.id, evicted.cause));
            // The key and value are dropped here, when the callback returns.
        }),
    };
    let cache = Arc::new(builder.build().unwrap());
    assert!(home.cache.set(Arc::downgrade(&cache)).is_ok(), "one cache per home");
    cache
}

/// Each of `ids` was dropped exactly once since the last check, after the lock was released:
/// its own cache answered (or, with `own_cache: None`, was already gone) and no lock was held.
fn assert_dropped_unlocked(home: &Home, ids: &[u64], own_cache: Option<bool>) {
    let seen = home.take_seen();
    let mut dropped: Vec<u64> =
        seen.iter().filter(|s| s.event == Event::Drop).map(|s| s.id).collect();
    dropped.sort_unstable();
    let mut expected = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(dropped, expected, "dropped exactly once each: {seen:?}");
    for s in seen {
        assert_eq!(s.own_cache, own_cache, "probe {} saw its cache {:?}", s.id, s.own_cache);
        assert!(s.no_lock, "probe {} was dropped while this thread held a shard lock", s.id);
    }
}

// ---------------------------------------------------------------------------------------------
// Drops run outside locks.
// ---------------------------------------------------------------------------------------------

/// The detector works: from a key's `Eq`, under the shard lock, the probe's own cache refuses
/// with `Busy` and the held lock is seen; the same probe, dropped after the call, sees neither.
#[test]
fn the_probes_see_a_held_lock() {
    let home = Home::new();
    let cache = probe_cache(&home, 4, None);
    cache.insert(Probe::new(&home, 1), Probe::new(&home, 101));
    home.take_seen();
    assert!(cache.contains_key(&Probe::with(&home, 1, Behaviour::ObserveInEq)));
    let seen = home.take_seen();
    assert_eq!(
        seen,
        [
            Seen { id: 1, event: Event::Eq, own_cache: Some(false), no_lock: false },
            Seen { id: 1, event: Event::Drop, own_cache: Some(true), no_lock: true },
        ]
    );
}

/// Scenario 10, `insert` replacing a value: the caller's spare copy of the key is dropped by the
/// cache after the lock is released; the old value goes back to the caller.
#[test]
fn a_replaced_entry_is_dropped_outside_the_lock() {
    let home = Home::new();
    let cache = probe_cache(&home, 4, None);
    cache.insert(Probe::new(&home, 1), Probe::new(&home, 101));
    let old = cache.insert(Probe::new(&home, 1), Probe::new(&home, 201));
    assert_dropped_unlocked(&home, &[1], Some(true)); // the spare key
    assert_eq!(old.as_ref().map(|v| v.id), Some(101), "the old value is handed back");
    drop(old);
    assert_dropped_unlocked(&home, &[101], Some(true));
}

/// Scenario 10, `remove`: the stored key is dropped after the lock is released.
#[test]
fn a_removed_key_is_dropped_outside_the_lock() {
    let home = Home::new();
    let cache = probe_cache(&home, 4, None);
    cache.insert(Probe::new(&home, 1), Probe::new(&home, 101));
    let removed = cache.remove(&1);
    assert_dropped_unlocked(&home, &[1], Some(true));
    assert_eq!(removed.as_ref().map(|v| v.id), Some(101));
    drop(removed);
    assert_dropped_unlocked(&home, &[101], Some(true));
}

/// Scenario 10, capacity eviction with no callback: the evicted key and value are dropped after
/// the lock is released.
#[test]
fn an_evicted_entry_without_a_callback_is_dropped_outside_the_lock() {
    let home = Home::new();
    let cache = probe_cache(&home, 2, None);
    for id in 0..2 {
        cache.insert(Probe::new(&home, id), Probe::new(&home, 100 + id));
    }
    cache.insert(Probe::new(&home, 2), Probe::new(&home, 102)); // evicts 0
    assert_dropped_unlocked(&home, &[0, 100], Some(true));
    assert_eq!(cache.len(), 2);
}

/// Scenario 10, `clear`: without a callback the cache drops every entry after releasing the
/// lock; with one, every entry goes to the callback, which runs outside every lock (it checks
/// that itself) and drops it there.
#[test]
fn cleared_entries_are_dropped_outside_the_lock() {
    for with_callback in [false, true] {
        let home = Home::new();
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let cache = probe_cache(&home, 8, with_callback.then(|| delivered.clone()));
        for id in 0..4 {
            cache.insert(Probe::new(&home, id), Probe::new(&home, 100 + id));
        }
        cache.clear();
        assert_dropped_unlocked(&home, &[0, 1, 2, 3, 100, 101, 102, 103], Some(true));
        assert!(cache.is_empty());
        let expected: Vec<_> = if with_callback {
            (0..4).map(|id| (id, RemovalCause::Clear)).collect()
        } else {
            vec![]
        };
        assert_eq!(*delivered.lock().unwrap(), expected);
    }
}

/// Scenario 10, a shrinking `resize`: the entries beyond the new capacity are dropped after every
/// lock (and the resize's own serialising lock) is released.
#[test]
fn entries_removed_by_a_shrinking_resize_are_dropped_outside_the_lock() {
    let home = Home::new();
    let cache = probe_cache(&home, 8, None);
    for id in 0..8 {
        cache.insert(Probe::new(&home, id), Probe::new(&home, 100 + id));
    }
    cache.resize(5).unwrap();
    assert_dropped_unlocked(&home, &[0, 1, 2, 100, 101, 102], Some(true));
    assert_eq!(cache.len(), 5);
}

/// Scenario 10, the cache's own drop: the entries it holds are dropped with no lock held (their
/// cache is already gone, so only the detector can look), and the entries still queued are
/// delivered to the callback, which drops them, also with no lock held.
#[test]
fn the_cache_drops_its_entries_outside_any_lock() {
    let home = Home::new();
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let cache = {
        let delivered = delivered.clone();
        Arc::new(
            ProbeCache::builder()
                .capacity(4)
                .shards(1)
                .resume_callback_panics()
                .on_evict(move |cache, Evicted { key, .. }| {
                    delivered.lock().unwrap().push(key.id);
                    // Strand queued entries, so that the drop has some to deliver.
                    if key.id == 999 {
                        for id in 1_000..1_100 {
                            cache.insert(Probe::new(&key.home, id), Probe::new(&key.home, id));
                        }
                    }
                })
                .build()
                .unwrap(),
        )
    };
    assert!(home.cache.set(Arc::downgrade(&cache)).is_ok());
    cache.insert(Probe::new(&home, 999), Probe::new(&home, 9_999));
    for id in 0..4 {
        cache.insert(Probe::new(&home, id), Probe::new(&home, 100 + id)); // 3 evicts 999
    }
    let queued = cache.queued();
    assert!(queued > 0);
    let cached: Vec<u64> = (1_000..1_100).filter(|id| cache.contains_key(id)).collect();
    assert_eq!(cached.len(), 4);
    home.take_seen();
    let delivered_before = delivered.lock().unwrap().len();

    drop(cache); // the last handle
    assert_eq!(delivered.lock().unwrap().len() - delivered_before, queued);
    let seen = home.take_seen();
    // Each queued entry's key and value, and each cached entry's key and value.
    assert_eq!(seen.iter().filter(|s| s.event == Event::Drop).count(), 2 * (queued + 4));
    for s in seen {
        assert!(s.no_lock, "probe {} was dropped while this thread held a shard lock", s.id);
        assert_eq!(s.own_cache, None, "the cache is gone: Weak::upgrade fails during its drop");
    }
}

/// Scenario 10: a value whose `Drop` inserts into the same cache (here an evicted value, dropped
/// by the insert that evicted it, with no callback) works: the inner insert goes through, evicts
/// in its turn, and the cache is consistent afterwards.
#[test]
fn a_value_whose_drop_inserts_into_the_same_cache_works() {
    watchdog("a_value_whose_drop_inserts_into_the_same_cache_works", || {
        let home = Home::new();
        let cache = probe_cache(&home, 3, None);
        cache.insert(
            Probe::new(&home, 0),
            Probe::with(&home, 100, Behaviour::InsertOnDrop { key: 50 }),
        );
        for id in 1..3 {
            cache.insert(Probe::new(&home, id), Probe::new(&home, 100 + id));
        }
        cache.insert(Probe::new(&home, 3), Probe::new(&home, 103)); // evicts 0 → inserts 50 → evicts 1
        assert_eq!(cache.len(), 3);
        for id in [2, 3, 50] {
            assert!(cache.contains_key(&id), "key {id}");
        }
        assert_dropped_unlocked(&home, &[0, 100, 1, 101], Some(true));
        assert_eq!(cache.peek(&50).map(|v| v.id), Some(51));
    });
}

/// Scenario 10, the panic path of `insert`: when the key's `Eq` panics, the key and the value the
/// caller handed in are dropped while unwinding, after the shard lock is released: `try_insert`
/// declares its guard after them, so the guard is dropped first and their own cache answers.
#[test]
fn a_key_and_value_refused_by_a_panicking_eq_are_dropped_outside_the_lock() {
    watchdog("a_key_and_value_refused_by_a_panicking_eq_are_dropped_outside_the_lock", || {
        let home = Home::new();
        let cache = probe_cache(&home, 4, None);
        cache.insert(Probe::new(&home, 1), Probe::new(&home, 101));
        home.take_seen();
        expect_panic("insert", || {
            cache.insert(Probe::with(&home, 1, Behaviour::PanicInEq), Probe::new(&home, 201))
        });
        assert_dropped_unlocked(&home, &[1, 201], Some(true));
        assert_eq!(cache.peek(&1).map(|v| v.id), Some(101), "the stored entry is untouched");
    });
}

/// Scenario 10, the panic path of `snapshot`: when a value's `Clone` panics, the clone of its key,
/// already made, is dropped while unwinding, after the shard lock is released (the clones are
/// kept in vectors declared before the guard).
#[test]
fn a_key_clone_abandoned_by_a_failed_snapshot_is_dropped_outside_the_lock() {
    watchdog("a_key_clone_abandoned_by_a_failed_snapshot_is_dropped_outside_the_lock", || {
        let home = Home::new();
        let cache = probe_cache(&home, 4, None);
        cache.insert(Probe::new(&home, 1), Probe::with(&home, 101, Behaviour::PanicInClone));
        home.take_seen();
        expect_panic("snapshot", || cache.snapshot());
        assert_dropped_unlocked(&home, &[1], Some(true));
    });
}

// ---------------------------------------------------------------------------------------------
// The drop delivers; nothing leaks.
// ---------------------------------------------------------------------------------------------

/// Scenario 11: entries still queued when the cache is dropped are delivered during the drop.
/// They are queued deterministically: one delivery's callback inserts 100 keys, each evicting
/// one, more than the purge running it may deliver (queue length at its start + 64). While the
/// drop delivers them the cache is closing: what the callbacks insert then, and whatever those
/// inserts evict, is dropped with the cache, never delivered. Every key and value is dropped
/// exactly once.
#[test]
fn dropping_the_cache_delivers_the_entries_still_queued() {
    const TRIGGER: u64 = 999;
    watchdog("dropping_the_cache_delivers_the_entries_still_queued", || {
        let (keys, values) = (DropLog::new(2_000), DropLog::new(2_000));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let dropping = Arc::new(AtomicBool::new(false));
        let late = Arc::new(AtomicU64::new(1_500));
        let cache = Cache::<Tracked, Tracked>::builder()
            .capacity(8)
            .shards(1)
            .max_pending_callbacks(1)
            .resume_callback_panics()
            .on_evict({
                let (keys, values) = (keys.clone(), values.clone());
                let (delivered, dropping, late) =
                    (delivered.clone(), dropping.clone(), late.clone());
                move |cache, evicted| {
                    delivered.lock().unwrap().push(evicted.key.id);
                    if evicted.key.id == TRIGGER {
                        for id in 1_000..1_100 {
                            cache.insert(keys.track(id), values.track(id));
                        }
                    }
                    if dropping.load(SeqCst) {
                        let id = late.fetch_add(1, SeqCst);
                        assert!(cache.insert(keys.track(id), values.track(id)).is_none());
                    }
                }
            })
            .build()
            .unwrap();
        cache.insert(keys.track(TRIGGER), values.track(TRIGGER));
        for id in 0..8 {
            cache.insert(keys.track(id), values.track(id)); // 7 evicts TRIGGER
        }
        let queued = cache.queued();
        assert!(queued > 0, "101 evictions, more than one purge may deliver");
        let delivered_before = delivered.lock().unwrap().len();

        dropping.store(true, SeqCst);
        drop(cache);
        let delivered = delivered.lock().unwrap();
        assert_eq!(delivered.len() - delivered_before, queued, "the drop delivered the queue");
        // Everything evicted was delivered exactly once: all but the last 8 of 1000..1100.
        let expected: BTreeSet<u64> =
            [TRIGGER].into_iter().chain(0..8).chain(1_000..1_092).collect();
        assert_eq!(delivered.iter().copied().collect::<BTreeSet<_>>(), expected);
        assert_eq!(delivered.len(), expected.len(), "no entry delivered twice");
        // The callbacks during the drop inserted, and none of that was evicted or delivered.
        let late = late.load(SeqCst);
        assert_eq!(late - 1_500, queued as u64);
        let used = || [TRIGGER].into_iter().chain(0..8).chain(1_000..1_100).chain(1_500..late);
        assert!(used().all(|id| keys.drops(id) == 1 && values.drops(id) == 1));
    });
}

/// The callback of the no-leak scenarios: it calls back into `cache` (get-like lookups, removes,
/// re-inserts of the evicted entry, fresh inserts) and counts its own steps to stay finite.
fn calling_back(
    cache: &Cache<Tracked, Tracked>,
    evicted: Evicted<Tracked, Tracked>,
    logs: &(DropLog, DropLog, DropLog),
    next: &AtomicU64,
    steps: &AtomicU64,
) {
    let (keys, values, lookups) = logs;
    if evicted.cause != RemovalCause::Capacity || steps.fetch_add(1, SeqCst) >= 200 {
        return; // the entry is dropped here
    }
    match evicted.key.id % 4 {
        // Put the evicted entry back: it moves, and is dropped later, once.
        0 => drop(cache.insert(evicted.key, evicted.value)),
        // Remove another entry: the removed value is handed back, and dropped here.
        1 => {
            let other = lookups.track(evicted.key.id + 1);
            drop(cache.remove(&other));
            assert!(!cache.contains_key(&other));
        }
        // Insert a fresh entry, evicting another.
        _ => {
            let id = next.fetch_add(1, SeqCst);
            assert!(cache.insert(keys.track(id), values.track(id)).is_none());
        }
    }
}

/// Scenario 12: a cache whose callback calls back into the cache through its `&Cache` argument
/// (the recommended pattern) holds no handle to itself: dropping it drops every key and value
/// exactly once.
#[test]
fn a_callback_using_its_cache_argument_leaks_nothing() {
    watchdog("a_callback_using_its_cache_argument_leaks_nothing", || {
        let logs = (DropLog::new(1_000), DropLog::new(1_000), DropLog::new(1_000));
        let next = Arc::new(AtomicU64::new(100));
        let steps = Arc::new(AtomicU64::new(0));
        let cache = Cache::<Tracked, Tracked>::builder()
            .capacity(16)
            .shards(2)
            .resume_callback_panics()
            .on_evict({
                let (logs, next, steps) = (logs.clone(), next.clone(), steps.clone());
                move |cache, evicted| calling_back(cache, evicted, &logs, &next, &steps)
            })
            .build()
            .unwrap();
        let (keys, values, _) = &logs;
        for id in 0..100 {
            cache.insert(keys.track(id), values.track(id));
        }
        assert!(steps.load(SeqCst) > 50, "the callback called back");
        drop(cache);
        let used = next.load(SeqCst);
        assert!((0..used).all(|id| keys.drops(id) == 1), "keys: {:?}", keys.not_dropped_once());
        assert!((0..used).all(|id| values.drops(id) == 1), "{:?}", values.not_dropped_once());
    });
}

/// Scenario 12, with a handle: a cache in an `Arc` whose callback holds only a `Weak` of it (made
/// with `Arc::new_cyclic`) and upgrades it to call back. No cycle: when the last `Arc` goes, the
/// cache is dropped (the `Weak` no longer upgrades, so the drop's own deliveries just drop their
/// entries) and every key and value is dropped exactly once.
#[test]
fn a_callback_holding_a_weak_handle_leaks_nothing() {
    watchdog("a_callback_holding_a_weak_handle_leaks_nothing", || {
        let logs = (DropLog::new(1_000), DropLog::new(1_000), DropLog::new(1_000));
        let next = Arc::new(AtomicU64::new(100));
        let steps = Arc::new(AtomicU64::new(0));
        let cache = Arc::new_cyclic(|weak: &Weak<Cache<Tracked, Tracked>>| {
            let (weak, logs, next, steps) =
                (weak.clone(), logs.clone(), next.clone(), steps.clone());
            Cache::<Tracked, Tracked>::builder()
                .capacity(16)
                .shards(2)
                .resume_callback_panics()
                .on_evict(move |_cache, evicted| {
                    if let Some(cache) = weak.upgrade() {
                        calling_back(&cache, evicted, &logs, &next, &steps);
                    }
                })
                .build()
                .unwrap()
        });
        let (keys, values, _) = &logs;
        for id in 0..100 {
            cache.insert(keys.track(id), values.track(id));
        }
        assert!(steps.load(SeqCst) > 50, "the callback called back");
        let weak = Arc::downgrade(&cache);
        drop(cache);
        assert!(weak.upgrade().is_none(), "the cache was dropped");
        let used = next.load(SeqCst);
        assert!((0..used).all(|id| keys.drops(id) == 1), "keys: {:?}", keys.not_dropped_once());
        assert!((0..used).all(|id| values.drops(id) == 1), "{:?}", values.not_dropped_once());
    });
}
