//! The crate's errors: configuration refused by the builder or by `resize` (guarantee 8), and
//! `Busy`, a call from inside a shard lock refused instead of deadlocking (guarantee 6).

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
    /// More shards than [`MAX_SHARDS`](crate::MAX_SHARDS).
    TooManyShards {
        /// The shard count asked for.
        shards: usize,
        /// The most shards a cache can have.
        max: usize,
    },
    /// `max_pending_callbacks(0)`: no callback could ever run.
    ZeroMaxPendingCallbacks,
    /// `max_queued(0)`: an evicted entry must be queued before its callback runs.
    ZeroMaxQueued,
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
            Self::TooManyShards { shards, max } => {
                write!(f, "{shards} shards: a cache has at most {max}")
            }
            Self::ZeroMaxPendingCallbacks => {
                write!(f, "max_pending_callbacks is 0: no callback could ever run; use at least 1")
            }
            Self::ZeroMaxQueued => write!(
                f,
                "max_queued is 0: an evicted entry is queued before its callback runs; use at \
                 least 1 (or leave it unset for no bound)"
            ),
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
/// let cache = Cache::<u32, u32>::builder().capacity(64).build()?;
/// assert_eq!(cache.resize(0), Err(ResizeError::ZeroCapacity));
/// assert_eq!(cache.capacity(), 64);
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResizeError {
    /// `resize(0)`: a cache must hold at least one entry.
    ZeroCapacity,
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => write!(f, "capacity 0: a cache must hold at least one entry"),
        }
    }
}

impl std::error::Error for ResizeError {}

/// Why [`Cache::spawn_purge_threads`](crate::Cache::spawn_purge_threads) started no threads.
///
/// ```
/// use shardlru::{Cache, SpawnError};
/// use std::sync::Arc;
///
/// let cache = Arc::new(Cache::<u32, u32>::builder().capacity(8).on_evict(|_, _| {}).build()?);
/// let err = cache.spawn_purge_threads(0).unwrap_err();
/// assert!(matches!(err, SpawnError::ZeroThreads));
/// assert!(err.to_string().contains("at least 1"));
/// # Ok::<(), shardlru::BuildError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// The cache has no eviction callback: there is nothing to deliver.
    NoCallback,
    /// `spawn_purge_threads(0)`.
    ZeroThreads,
    /// Another [`PurgeThreads`](crate::PurgeThreads) handle of this cache lives: drop it first.
    AlreadyRunning,
    /// The system could not start a thread.
    Spawn(std::io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCallback => write!(
                f,
                "the cache has no eviction callback (`on_evict`): there is nothing to deliver"
            ),
            Self::ZeroThreads => write!(f, "0 purge threads asked for: start at least 1"),
            Self::AlreadyRunning => write!(
                f,
                "the cache's purge threads already run: drop their handle before starting others"
            ),
            Self::Spawn(err) => write!(f, "could not start a purge thread: {err}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(err) => Some(err),
            _ => None,
        }
    }
}

/// Why a call was refused with [`Busy`]. Each cause comes from the rule that a thread holding a
/// shard lock never waits for another one and never runs an eviction callback (guarantees 4
/// and 6); such a thread is running a key's `Eq`/`Borrow` or a value's `Clone` for some cache.
///
/// ```
/// use shardlru::{Busy, BusyCause};
///
/// /// Whether the same call, made again once this thread has left the other cache's lock,
/// /// could succeed.
/// fn worth_retrying(refused: &Busy) -> bool {
///     match refused.cause() {
///         BusyCause::LockHeld => true, // another thread held the lock for a moment
///         BusyCause::Reentered | BusyCause::WouldEvict | BusyCause::TooDeep => false,
///         _ => false,
///     }
/// }
/// # let _ = worth_retrying;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BusyCause {
    /// This thread already holds a lock of this cache: waiting for another of its locks could
    /// deadlock.
    Reentered,
    /// This thread holds a lock of another cache, and the call would have to wait for a lock
    /// of this one: one held by another thread, or (`clear`, `resize`) each shard's in turn.
    /// Waiting could deadlock: the other thread may be waiting for this one.
    LockHeld,
    /// The call would hand entries to the eviction callback (an insert that must evict, a
    /// `clear`, a `resize`), and callbacks never run while this thread holds a shard lock.
    WouldEvict,
    /// This thread already holds the locks of [`MAX_NESTING`](crate::MAX_NESTING) caches.
    TooDeep,
}

impl BusyCause {
    /// What the cause means, as a sentence fragment.
    fn describe(self) -> &'static str {
        match self {
            Self::Reentered => "this thread already holds one of its locks",
            Self::LockHeld => {
                "this thread holds another cache's lock and would have to wait for this cache's; \
                 waiting could deadlock"
            }
            Self::WouldEvict => {
                "the call would run the eviction callback while this thread holds a shard lock"
            }
            Self::TooDeep => "this thread already holds the locks of MAX_NESTING caches",
        }
    }
}

/// A call refused because the calling thread holds a shard lock: it came from a key's
/// `Eq`/`Borrow` or a value's `Clone`, which run under one (guarantee 6). Going on would mean
/// waiting for a lock, which could deadlock, or running the eviction callback under a lock;
/// [`cause`](Busy::cause) says which. The `try_*` methods return this; the plain methods panic
/// with the same message.
///
/// A refused call that took ownership of its inputs hands them back: `try_insert` returns
/// `Busy<(K, V)>`, whose [`into_inner`](Busy::into_inner) gives back the key and the value.
///
/// ```
/// use shardlru::{Busy, BusyCause, Cache};
/// use std::sync::{Mutex, OnceLock};
///
/// static CACHE: OnceLock<Cache<u32, Page>> = OnceLock::new();
/// static REFUSED: Mutex<Option<Busy<(u32, Page)>>> = Mutex::new(None);
///
/// #[derive(Debug, PartialEq)]
/// struct Page(u32);
///
/// impl Clone for Page {
///     // Runs under the shard lock of the `get` that clones it.
///     fn clone(&self) -> Self {
///         let cache = CACHE.get().unwrap();
///         if let Err(refused) = cache.try_insert(self.0 + 1, Page(self.0 + 1)) {
///             *REFUSED.lock().unwrap() = Some(refused);
///         }
///         Page(self.0)
///     }
/// }
///
/// let cache = CACHE.get_or_init(|| Cache::builder().capacity(8).build().unwrap());
/// cache.insert(1, Page(1));
/// assert_eq!(cache.get(&1), Some(Page(1)));
/// let refused = REFUSED.lock().unwrap().take().unwrap();
/// assert_eq!(refused.cause(), BusyCause::Reentered);
/// assert!(refused.to_string().contains("already holds one of its locks"));
/// assert_eq!(refused.into_inner(), (2, Page(2))); // nothing is lost
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Busy<T = ()> {
    cause: BusyCause,
    inner: T,
}

impl<T> Busy<T> {
    pub(crate) fn new(cause: BusyCause, inner: T) -> Self {
        Self { cause, inner }
    }

    /// Why the call was refused.
    pub fn cause(&self) -> BusyCause {
        self.cause
    }

    /// What the refused call handed back: `()` for lookups, `(key, value)` for `try_insert`.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> fmt::Debug for Busy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Busy").field("cause", &self.cause).finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Busy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the cache is busy: {}", self.cause.describe())
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
        let msg = Busy::new(BusyCause::LockHeld, ()).to_string();
        assert!(msg.contains("could deadlock"), "{msg}");
    }

    #[test]
    fn errors_are_send_sync_and_static() {
        fn check<E: std::error::Error + Send + Sync + 'static>() {}
        check::<BuildError>();
        check::<ResizeError>();
        check::<Busy<(String, Vec<u8>)>>();
    }
}
