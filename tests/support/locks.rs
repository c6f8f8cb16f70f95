//! Whether this thread holds a shard lock (of any cache), seen from outside the crate. Used by
//! the tests of guarantee 4 (no user code under a lock): a callback or a `Drop` asks it where it
//! runs.
//!
//! The detector is a one-entry cache of this thread's with an eviction callback: each probe
//! inserts a new key, which evicts the last one into the callback. A thread that holds a shard
//! lock may not run a callback, so the insert is refused (`BusyCause::WouldEvict`) or its
//! entry stays queued; on any other thread the entry is delivered at once.

use shardlru::Cache;
use std::cell::Cell;

thread_local! {
    static DETECTOR: Cache<u64, ()> = {
        let detector = Cache::builder().capacity(1).shards(1).on_evict(|_, _| {}).build().unwrap();
        detector.insert(u64::MAX, ()); // full from the start: every probe evicts
        detector
    };
    static NEXT_KEY: Cell<u64> = const { Cell::new(0) };
}

/// Whether this thread holds a shard lock of any cache.
pub fn holds_a_shard_lock() -> bool {
    let key = NEXT_KEY.with(|next| next.replace(next.get() + 1));
    DETECTOR.with(|detector| {
        let refused = detector.try_insert(key, ()).is_err();
        refused || detector.queued() > 0
    })
}
