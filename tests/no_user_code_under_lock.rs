//! Guarantee 4 (no user code under a shard lock): the eviction callback and every `Drop` of a
//! key or value run after the cache has released its locks, so they may call back into the very
//! same cache, and the same shard, without deadlocking or being refused as re-entrant.
//!
//! The keys and values here call `try_get` and `try_insert` on their own cache from `Drop`. Run
//! under a shard lock, those calls would come back `Err(Busy)` (the re-entry check) or, without
//! the check, deadlock (the watchdog); each scenario asserts that they ran and returned what an
//! unlocked cache returns. Every scenario uses one shard, so every call meets the same lock.

mod support;

use shardlru::{BusyCause, Cache, ResizeError};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// What one callback saw: the evicted key, what its `get` and its `insert` returned.
type CallbackCall = (u32, Option<u32>, Option<u32>);

/// A callback that reads and writes keys of its own shard (the only shard) completes, and both
/// calls see and change the cache as they would from outside.
#[test]
fn a_callback_can_get_and_insert_keys_of_its_own_shard() {
    let (calls, snapshot, stats) = support::watchdog("callback re-entry", || {
        let calls: Arc<Mutex<Vec<CallbackCall>>> = Arc::default();
        let sink = Arc::clone(&calls);
        let cache = Cache::<u32, u32>::builder()
            .capacity(3)
            .shards(1)
            .on_evict(move |cache, evicted| {
                // Keys from 100 up were inserted by this callback: stop the chain there.
                if evicted.key < 100 {
                    let got = cache.get(&2);
                    let replaced = cache.insert(evicted.key + 100, evicted.value);
                    sink.lock().unwrap().push((evicted.key, got, replaced));
                }
            })
            .build()
            .unwrap();
        for key in 1..=4 {
            cache.insert(key, key * 10);
        }
        let calls = calls.lock().unwrap().clone();
        (calls, cache.snapshot(), cache.stats())
    });
    // Inserting 4 evicts 1 from [3, 2, 1]. Its callback makes 2 the most recent and inserts 101,
    // evicting 3; that callback does the same and inserts 103, evicting 4; inserting 104 then
    // evicts 101, whose callback does nothing.
    assert_eq!(calls, [(1, Some(20), None), (3, Some(20), None), (4, Some(20), None)]);
    assert_eq!(snapshot, [(104, 40), (2, 20), (103, 30)]);
    assert_eq!((stats.delivered, stats.queued, stats.hits), (4, 0, 3));
}

/// Which of a key and a value was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dropped {
    Key,
    Value,
}

/// What one `Drop` saw when it called back into the cache.
#[derive(Debug, PartialEq, Eq)]
struct Reentry {
    dropped: Dropped,
    id: u32,
    /// `try_get(&PROBE)`.
    got: Result<Option<u32>, BusyCause>,
    /// `try_insert` of a fresh key: the id of the value it replaced.
    inserted: Result<Option<u32>, BusyCause>,
    /// `resize(to)`, if the scenario asked for one.
    resized: Option<Result<(), ResizeError>>,
}

/// The key every re-entering `Drop` looks up.
const PROBE: u32 = 100;

/// A re-entering key's `Drop` inserts `KEY_ECHO + id`; a value's, `VALUE_ECHO + id`.
const KEY_ECHO: u32 = 1_000;
const VALUE_ECHO: u32 = 2_000;

fn ok(dropped: Dropped, id: u32, got: Option<u32>, inserted: Option<u32>) -> Reentry {
    Reentry { dropped, id, got: Ok(got), inserted: Ok(inserted), resized: None }
}

type TestCache = Cache<Key, Value>;

/// What the `Drop`s of this thread reach: the cache under test (a handle kept here rather than
/// inside the values, so that no cycle keeps the cache alive) and what they saw.
#[derive(Default)]
struct Reentrant {
    cache: Option<Arc<TestCache>>,
    resize_to: Option<usize>,
    seen: Vec<Reentry>,
}

thread_local! {
    static REENTRANT: RefCell<Reentrant> = RefCell::default();
}

/// Called from the `Drop` of a loud key or value: looks up [`PROBE`], inserts a fresh entry,
/// maybe resizes, and records the results. Does nothing once the test has let go of the cache.
fn call_back_into_the_cache(dropped: Dropped, id: u32) {
    let (cache, resize_to) = REENTRANT.with(|state| {
        let state = state.borrow();
        (state.cache.clone(), state.resize_to)
    });
    let Some(cache) = cache else { return };
    let got = cache.try_get(&PROBE).map(|value| value.map(|v| v.id)).map_err(|busy| busy.cause());
    let echo = match dropped {
        Dropped::Key => KEY_ECHO + id,
        Dropped::Value => VALUE_ECHO + id,
    };
    let inserted = cache
        .try_insert(Key::quiet(echo), Value::quiet(echo))
        .map(|old| old.map(|v| v.id))
        .map_err(|busy| busy.cause());
    let resized = resize_to.map(|to| cache.resize(to));
    REENTRANT.with(|state| {
        state.borrow_mut().seen.push(Reentry { dropped, id, got, inserted, resized });
    });
}

/// A key whose `Drop` calls back into the cache when `loud`. It hashes and compares as its
/// `id`, so the cache can be searched with a `&u32`.
struct Key {
    id: u32,
    loud: bool,
}

impl Key {
    fn quiet(id: u32) -> Self {
        Self { id, loud: false }
    }

    fn loud(id: u32) -> Self {
        Self { id, loud: true }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.loud {
            call_back_into_the_cache(Dropped::Key, self.id);
        }
    }
}

impl Clone for Key {
    /// Clones are quiet: only the instance a scenario created calls back.
    fn clone(&self) -> Self {
        Self::quiet(self.id)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl Borrow<u32> for Key {
    fn borrow(&self) -> &u32 {
        &self.id
    }
}

/// A value whose `Drop` calls back into the cache when `loud`.
struct Value {
    id: u32,
    loud: bool,
}

impl Value {
    fn quiet(id: u32) -> Self {
        Self { id, loud: false }
    }

    fn loud(id: u32) -> Self {
        Self { id, loud: true }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        if self.loud {
            call_back_into_the_cache(Dropped::Value, self.id);
        }
    }
}

impl Clone for Value {
    /// Clones are quiet: `get` and `snapshot` hand out copies that must not call back.
    fn clone(&self) -> Self {
        Self::quiet(self.id)
    }
}

/// What a scenario leaves: what the `Drop`s saw (sorted), the keys left in the cache (sorted),
/// and its capacity.
#[derive(Debug)]
struct Outcome {
    seen: Vec<Reentry>,
    keys: Vec<u32>,
    capacity: usize,
}

/// Runs `body` under the watchdog against a fresh one-shard cache with no callback, reachable
/// from the `Drop`s of this thread's loud keys and values.
fn scenario(
    name: &str,
    capacity: usize,
    resize_to: Option<usize>,
    body: impl FnOnce(&TestCache) + Send + 'static,
) -> Outcome {
    support::watchdog(name, move || {
        let cache = Arc::new(TestCache::builder().capacity(capacity).shards(1).build().unwrap());
        REENTRANT.with(|state| {
            let mut state = state.borrow_mut();
            state.cache = Some(Arc::clone(&cache));
            state.resize_to = resize_to;
        });
        body(&cache);
        let mut seen = REENTRANT.with(|state| std::mem::take(&mut state.borrow_mut().seen));
        seen.sort_by_key(|reentry| (reentry.dropped, reentry.id));
        let mut keys: Vec<u32> = cache.snapshot().iter().map(|(key, _)| key.id).collect();
        keys.sort_unstable();
        let capacity = cache.capacity();
        // Let go of the cache before it drops, so that its loud entries stay quiet.
        let handle = REENTRANT.with(|state| state.borrow_mut().cache.take());
        drop(handle);
        drop(cache);
        Outcome { seen, keys, capacity }
    })
}

/// `insert` over an existing key drops the caller's spare copy of the key inside the cache,
/// after the lock; the replaced value goes back to the caller, who drops it.
#[test]
fn drops_of_a_replaced_entry_may_call_back_into_the_cache() {
    let outcome = scenario("replace", 8, None, |cache| {
        cache.insert(Key::quiet(PROBE), Value::quiet(PROBE));
        cache.insert(Key::quiet(1), Value::loud(1));
        let old = cache.insert(Key::loud(1), Value::quiet(2)); // the spare key drops in here
        let old = old.expect("the old value is handed back");
        assert_eq!(old.id, 1);
        drop(old);
        assert_eq!(cache.peek(&1).map(|v| v.id), Some(2));
    });
    assert_eq!(
        outcome.seen,
        [ok(Dropped::Key, 1, Some(PROBE), None), ok(Dropped::Value, 1, Some(PROBE), None)]
    );
    assert_eq!(outcome.keys, [1, PROBE, KEY_ECHO + 1, VALUE_ECHO + 1]);
}

/// `remove` drops the stored key inside the cache, after the lock; the value goes back to the
/// caller.
#[test]
fn drops_of_a_removed_entry_may_call_back_into_the_cache() {
    let outcome = scenario("remove", 8, None, |cache| {
        cache.insert(Key::quiet(PROBE), Value::quiet(PROBE));
        cache.insert(Key::loud(1), Value::loud(1));
        let value = cache.remove(&1).expect("the removed value is handed back"); // key drops
        assert_eq!(value.id, 1);
        drop(value);
    });
    assert_eq!(
        outcome.seen,
        [ok(Dropped::Key, 1, Some(PROBE), None), ok(Dropped::Value, 1, Some(PROBE), None)]
    );
    assert_eq!(outcome.keys, [PROBE, KEY_ECHO + 1, VALUE_ECHO + 1]);
}

/// With no callback, a capacity eviction drops the victim's key and value inside `insert`,
/// after the lock. Each `Drop` makes [`PROBE`] the most recent entry and inserts one more,
/// evicting the least recent quiet entry in turn.
#[test]
fn drops_of_an_entry_evicted_without_a_callback_may_call_back_into_the_cache() {
    let outcome = scenario("evict, no callback", 3, None, |cache| {
        cache.insert(Key::loud(1), Value::loud(1));
        cache.insert(Key::quiet(PROBE), Value::quiet(PROBE));
        cache.insert(Key::quiet(3), Value::quiet(3));
        cache.insert(Key::quiet(4), Value::quiet(4)); // evicts 1: both its drops call back
    });
    assert_eq!(
        outcome.seen,
        [ok(Dropped::Key, 1, Some(PROBE), None), ok(Dropped::Value, 1, Some(PROBE), None)]
    );
    // 3 and 4 were evicted by the two echoes; PROBE survived because each drop touched it.
    assert_eq!(outcome.keys, [PROBE, KEY_ECHO + 1, VALUE_ECHO + 1]);
}

/// `clear` (no callback) drops every entry after releasing the shard's lock: the `Drop`s find
/// the shard empty, and what they insert survives the clear.
#[test]
fn drops_of_cleared_entries_may_call_back_into_the_cache() {
    let outcome = scenario("clear", 8, None, |cache| {
        cache.insert(Key::loud(1), Value::loud(1));
        cache.insert(Key::loud(2), Value::quiet(2));
        cache.insert(Key::quiet(PROBE), Value::quiet(PROBE));
        cache.clear();
    });
    assert_eq!(
        outcome.seen,
        [
            ok(Dropped::Key, 1, None, None),
            ok(Dropped::Key, 2, None, None),
            ok(Dropped::Value, 1, None, None),
        ]
    );
    assert_eq!(outcome.keys, [KEY_ECHO + 1, KEY_ECHO + 2, VALUE_ECHO + 1]);
}

/// A shrinking `resize` (no callback) drops what it evicts after releasing every lock it took,
/// including the one that serialises resizes: the `Drop`s may even resize the cache again.
#[test]
fn drops_of_entries_evicted_by_a_shrinking_resize_may_call_back_into_the_cache() {
    const GROWN: usize = 8;
    let outcome = scenario("shrink", 4, Some(GROWN), |cache| {
        cache.insert(Key::loud(1), Value::loud(1));
        cache.insert(Key::quiet(2), Value::quiet(2));
        cache.insert(Key::quiet(3), Value::quiet(3));
        cache.insert(Key::quiet(PROBE), Value::quiet(PROBE));
        cache.resize(2).unwrap(); // evicts 1 (loud) and 2, least recent first
    });
    let resized = |reentry: Reentry| Reentry { resized: Some(Ok(())), ..reentry };
    assert_eq!(
        outcome.seen,
        [
            resized(ok(Dropped::Key, 1, Some(PROBE), None)),
            resized(ok(Dropped::Value, 1, Some(PROBE), None)),
        ]
    );
    // The first drop's echo evicted 3 (capacity 2); then it grew the cache, so the second
    // drop's echo evicted nothing.
    assert_eq!(outcome.keys, [PROBE, KEY_ECHO + 1, VALUE_ECHO + 1]);
    assert_eq!(outcome.capacity, GROWN);
}
