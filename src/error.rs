//! The crate's errors: configuration refused by the builder or by `resize` (guarantee 8), and
//! `Busy`, a re-entrant call refused instead of deadlocking (guarantee 6).

use std::fmt;

/// Why [`Builder::build`](crate::Builder::build) refused a configuration. Each variant carries
/// the numbers involved and its message says what to change.
///
/// ```
/// use shardlru::{BuildError, Cache};
///
/// let err = Cache::<u32, u32>::builder().capacity(100).shards(12).build().unwrap_err();
/// assert_eq!(err, BuildError::ShardsNotPowerOfTwo { shards: 12 });
/// assert!(err.to_string().contains("power of two"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `capacity` was never set.
    MissingCapacity,
    /// `capacity(0)`: a cache must hold at least one entry.
    ZeroCapacity,
    /// `shards(0)`: a cache needs at least one shard.
    ZeroShards,
    /// The shard count is not a power of two.
    ShardsNotPowerOfTwo {
        /// The shard count asked for.
        shards: usize,
    },
    /// More shards than capacity: some shard could hold nothing.
    MoreShardsThanCapacity {
        /// The shard count asked for.
        shards: usize,
        /// The capacity asked for.
        capacity: usize,
    },
    /// A shard's share of the capacity exceeds the most one shard can index.
    ShareTooLarge {
        /// The largest share asked for.
        share: usize,
        /// The most entries one shard can hold.
        max: usize,
    },
    /// `max_pending_callbacks(0)`: no callback could ever run.
    ZeroMaxPendingCallbacks,
    /// `hasher` was called after `on_evict`, which would have discarded the callback (the
    /// callback's type names the hasher's).
    HasherAfterCallback,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingCapacity => {
                write!(f, "no capacity was set: call `capacity(n)` with the most entries to keep")
            }
            Self::ZeroCapacity => write!(f, "capacity is 0: a cache must hold at least one entry"),
            Self::ZeroShards => {
                write!(f, "shard count is 0: use at least 1 (or leave `shards` unset)")
            }
            Self::ShardsNotPowerOfTwo { shards } => write!(
                f,
                "shard count {shards} is not a power of two: use {} or {}",
                prev_power_of_two(*shards),
                shards.next_power_of_two()
            ),
            Self::MoreShardsThanCapacity { shards, capacity } => write!(
                f,
                "{shards} shards for a capacity of {capacity}: use at most {} shards \
                 (each shard needs room for one entry)",
                prev_power_of_two(*capacity)
            ),
            Self::ShareTooLarge { share, max } => write!(
                f,
                "a shard would hold {share} entries but one shard holds at most {max}: \
                 use more shards"
            ),
            Self::ZeroMaxPendingCallbacks => {
                write!(f, "max_pending_callbacks is 0: no callback could ever run; use at least 1")
            }
            Self::HasherAfterCallback => write!(
                f,
                "`hasher` was called after `on_evict`: set the hasher first, then the callback"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why [`Cache::resize`](crate::Cache::resize) refused a capacity. The cache is unchanged.
///
/// ```
/// use shardlru::{Cache, ResizeError};
///
/// let cache = Cache::<u32, u32>::builder().capacity(64).shards(4).build()?;
/// assert_eq!(cache.resize(2), Err(ResizeError::FewerThanShards { capacity: 2, shards: 4 }));
/// assert_eq!(cache.capacity(), 64);
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResizeError {
    /// `resize(0)`: a cache must hold at least one entry.
    ZeroCapacity,
    /// Fewer entries than shards: some shard could hold nothing.
    FewerThanShards {
        /// The capacity asked for.
        capacity: usize,
        /// The cache's shard count, fixed when it was built.
        shards: usize,
    },
    /// A shard's share of the capacity would exceed the most one shard can index.
    ShareTooLarge {
        /// The largest share asked for.
        share: usize,
        /// The most entries one shard can hold.
        max: usize,
    },
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => write!(f, "capacity 0: a cache must hold at least one entry"),
            Self::FewerThanShards { capacity, shards } => write!(
                f,
                "capacity {capacity} is below the shard count {shards}: use at least {shards}"
            ),
            Self::ShareTooLarge { share, max } => {
                write!(f, "a shard would hold {share} entries but one shard holds at most {max}")
            }
        }
    }
}

impl std::error::Error for ResizeError {}

/// A call refused because the calling thread is already inside the same cache, holding one of
/// its shard locks: it came from a key's `Eq`/`Borrow` or a value's `Clone` (guarantee 6).
/// Blocking would deadlock, so the `try_*` methods return this instead; the plain methods panic.
///
/// A refused call that took ownership of its inputs hands them back: `try_insert` returns
/// `Busy<(K, V)>`, whose [`into_inner`](Busy::into_inner) gives back the key and the value.
///
/// ```
/// use shardlru::Busy;
///
/// let refused: Busy<(u32, String)> = Busy::new((1, "one".to_string()));
/// assert_eq!(refused.to_string(), "the cache is busy: this thread already holds one of its locks");
/// let (key, value) = refused.into_inner();
/// assert_eq!((key, value.as_str()), (1, "one"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Busy<T = ()> {
    inner: T,
}

impl<T> Busy<T> {
    /// Wraps what the refused call hands back.
    pub fn new(inner: T) -> Self {
        Self { inner }
    }

    /// What the refused call handed back: `()` for lookups, `(key, value)` for `try_insert`.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> fmt::Debug for Busy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Busy { .. }")
    }
}

impl<T> fmt::Display for Busy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the cache is busy: this thread already holds one of its locks")
    }
}

impl<T> std::error::Error for Busy<T> {}

/// The largest power of two at or below `n` (1 for 0).
fn prev_power_of_two(n: usize) -> usize {
    if n <= 1 { 1 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_suggest_valid_numbers() {
        let msg = BuildError::ShardsNotPowerOfTwo { shards: 12 }.to_string();
        assert!(msg.contains("use 8 or 16"), "{msg}");
        let msg = BuildError::MoreShardsThanCapacity { shards: 64, capacity: 40 }.to_string();
        assert!(msg.contains("at most 32 shards"), "{msg}");
    }

    #[test]
    fn errors_are_send_sync_and_static() {
        fn check<E: std::error::Error + Send + Sync + 'static>() {}
        check::<BuildError>();
        check::<ResizeError>();
        check::<Busy<(String, Vec<u8>)>>();
    }
}
