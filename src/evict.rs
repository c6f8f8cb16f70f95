//! What the eviction callback receives: the entry that left the cache, and why.

/// An entry that left the cache without being handed back to a caller, on its way to the
/// eviction callback.
///
/// ```
/// use shardlru::{Cache, Evicted, RemovalCause};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let cache = Cache::<u32, &str>::builder()
///     .capacity(1)
///     .on_evict(move |_cache, Evicted { key, value, cause, .. }| {
///         sink.lock().unwrap().push((key, value, cause));
///     })
///     .build()?;
/// cache.insert(1, "one");
/// cache.insert(2, "two");
/// assert_eq!(*seen.lock().unwrap(), [(1, "one", RemovalCause::Capacity)]);
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evicted<K, V> {
    /// The entry's key.
    pub key: K,
    /// The entry's value.
    pub value: V,
    /// Why the entry left the cache.
    pub cause: RemovalCause,
}

/// Why an entry was handed to the eviction callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// The cache was full, and it was the entry chosen to make room: the least recently used
    /// entry (see [`EvictionScope`](crate::EvictionScope) for how it is chosen across shards).
    Capacity,
    /// A `resize` to a smaller capacity removed it.
    Shrink,
    /// `clear` removed it.
    Clear,
    /// `retain` removed it: the predicate returned `false`.
    Retain,
    /// It weighs more than the whole capacity, so `insert` did not store it (see
    /// [`Builder::weigher`](crate::Builder::weigher)). The callback gets the value that was
    /// inserted; a value the key had before was handed back to the caller.
    TooHeavy,
}
