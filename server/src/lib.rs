//! A memcached-protocol server on [`shardlru`]: the cache measured end to end, against the same
//! server on `Mutex<lru::LruCache>` and on an unbounded `DashMap`, with an optional on-disk spill
//! of evicted items.
//!
//! ```text
//!  main.rs (CLI, runtime, ctrl-c)
//!     │
//!     ▼
//!  server.rs  Listener: accept, cap live connections, shutdown ──spawn──▶ Handler per connection
//!                                                                           │
//!  connection.rs  socket + read buffer + BufWriter ◀── read_requests ───────┤
//!  protocol.rs    the text protocol parser (every complete request)         │
//!  command.rs     a request against the store, its reply ◀──────────────────┘
//!  store.rs       Item, cas uniques, the backends (shardlru, mutex-lru, dashmap)
//!  spill.rs       --spill: evicted items on disk (redb), read back on a miss
//!  stats.rs       the `stats` command's counters
//!  shutdown.rs    the shutdown signal each handler listens to
//! ```
//!
//! The shape is mini-redis's (tokio-rs/mini-redis), with pipelining: a connection parses every
//! complete request in its buffer, applies them in order, and writes the replies in one flush.
//!
//! # Example: run a server on any port and talk to it
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(shardlru_server::run(listener, Default::default(), stopped));
//!
//! let mut client = tokio::net::TcpStream::connect(addr).await?;
//! client.write_all(b"set a 0 0 1\r\nA\r\nget a\r\n").await?;
//! let mut reply = vec![0; 64];
//! let mut len = 0;
//! while !reply[..len].ends_with(b"END\r\n") {
//!     len += client.read(&mut reply[len..]).await?;
//! }
//! assert_eq!(&reply[..len], b"STORED\r\nVALUE a 0 1\r\nA\r\nEND\r\n");
//!
//! drop(stop);
//! server.await??;
//! # Ok::<(), shardlru_server::Error>(())
//! # })?;
//! # Ok::<(), shardlru_server::Error>(())
//! ```

#![warn(missing_docs)]

mod command;
mod connection;
pub mod protocol;
mod server;
mod shutdown;
mod spill;
mod stats;
mod store;

pub use server::{run, serve};
pub use spill::{SPILL_FILE, SpillStats};
pub use store::{Backend, ITEM_OVERHEAD, Item, Store, StoreStats};

use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Any error of the server: boxed, as in mini-redis (the binary only reports it).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The default memory limit, in bytes: memcached's default `-m 64`.
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// The default cap on live connections: memcached's default `-c 1024`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The server's settings; [`Default`] gives memcached's defaults where it has one.
#[derive(Clone, Debug)]
pub struct Config {
    /// The store (`--backend`).
    pub backend: Backend,
    /// The weight the store may hold, in bytes (`-m` × 2^20): keys, values and
    /// [`ITEM_OVERHEAD`] per item. Reported, not enforced, for [`Backend::DashMap`].
    pub memory_limit: u64,
    /// The largest value accepted, in bytes (`-I`).
    pub max_item_size: usize,
    /// The most connections served at once (`-c`); more wait to be accepted.
    pub max_connections: usize,
    /// The store's shard count (`--shards`): shardlru's (a power of two) or dashmap's (a power
    /// of two above 1); `None` for the library's default. Not used by `mutex-lru`.
    pub shards: Option<usize>,
    /// The spill directory (`--spill`), shardlru backend only.
    pub spill: Option<PathBuf>,
    /// The runtime's worker threads (`-t`), as `stats` reports them; the caller builds the
    /// runtime.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: Backend::Shardlru,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_item_size: protocol::DEFAULT_MAX_ITEM_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shards: None,
            spill: None,
            threads: default_threads(),
        }
    }
}

/// The default worker thread count: the available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}
