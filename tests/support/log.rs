//! A cache whose eviction callback records every delivered entry, for tests that check what
//! reached the callback and why.

use shardlru::{Cache, Evicted, RemovalCause};
use std::sync::{Arc, Mutex};

/// The delivered entries, in delivery order.
pub type Log = Arc<Mutex<Vec<(u32, u32, RemovalCause)>>>;

/// A cache of `capacity` over `shards` shards whose callback records every delivered entry.
pub fn logged(capacity: usize, shards: usize) -> (Cache<u32, u32>, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let cache = Cache::builder()
        .capacity(capacity)
        .shards(shards)
        .on_evict(move |_cache, Evicted { key, value, cause, .. }| {
            sink.lock().unwrap().push((key, value, cause));
        })
        .build()
        .unwrap();
    (cache, log)
}

/// The entries delivered since the last call, emptying the log.
pub fn take(log: &Log) -> Vec<(u32, u32, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}
