//! The `stats` command: the server's own counters, and the reply that joins them with the
//! store's.
//!
//! The fields are memcached's common ones (same names, same meaning where the server has the
//! concept), then the backend's, then shardlru's own (`queued`, `lock_contention`, …) and the
//! spill's (`spill_*`), so that a memcached dashboard reads the first part and a benchmark
//! reads all of it. Every counter is a `Relaxed` atomic: a statistic, with nothing ordered
//! after it.

use crate::Config;
use crate::protocol::VERSION;
use crate::store::StoreStats;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A count only ever added to.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The server's counters, shared by every connection.
#[derive(Debug)]
pub(crate) struct ServerStats {
    started: Instant,
    /// Connections open now: raised and lowered by [`ConnectionGuard`].
    curr_connections: AtomicU64,
    pub(crate) total_connections: Counter,
    /// Keys asked for by `get`/`gets` (memcached counts keys, not commands).
    pub(crate) cmd_get: Counter,
    pub(crate) get_hits: Counter,
    pub(crate) get_misses: Counter,
    /// Storage commands: `set`, `add`, `replace`.
    pub(crate) cmd_set: Counter,
    pub(crate) cmd_touch: Counter,
    pub(crate) touch_hits: Counter,
    pub(crate) touch_misses: Counter,
    pub(crate) delete_hits: Counter,
    pub(crate) delete_misses: Counter,
    pub(crate) cmd_flush: Counter,
}

impl ServerStats {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            curr_connections: AtomicU64::new(0),
            total_connections: Counter::default(),
            cmd_get: Counter::default(),
            get_hits: Counter::default(),
            get_misses: Counter::default(),
            cmd_set: Counter::default(),
            cmd_touch: Counter::default(),
            touch_hits: Counter::default(),
            touch_misses: Counter::default(),
            delete_hits: Counter::default(),
            delete_misses: Counter::default(),
            cmd_flush: Counter::default(),
        }
    }

    /// Counts a connection open until the guard drops.
    pub(crate) fn connection(&self) -> ConnectionGuard<'_> {
        self.curr_connections.fetch_add(1, Relaxed);
        self.total_connections.add(1);
        ConnectionGuard(self)
    }

    /// The `stats` reply, `END` included.
    pub(crate) fn render(&self, store: &StoreStats, config: &Config, out: &mut Vec<u8>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        let mut stat = |name: &str, value: &dyn std::fmt::Display| {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "STAT {name} {value}\r\n");
        };
        stat("pid", &std::process::id());
        stat("uptime", &self.started.elapsed().as_secs());
        stat("time", &now);
        stat("version", &VERSION);
        stat("pointer_size", &(usize::BITS));
        stat("curr_connections", &self.curr_connections.load(Relaxed));
        stat("total_connections", &self.total_connections.get());
        stat("max_connections", &config.max_connections);
        stat("threads", &config.threads);
        stat("cmd_get", &self.cmd_get.get());
        stat("cmd_set", &self.cmd_set.get());
        stat("cmd_flush", &self.cmd_flush.get());
        stat("cmd_touch", &self.cmd_touch.get());
        stat("get_hits", &self.get_hits.get());
        stat("get_misses", &self.get_misses.get());
        stat("delete_hits", &self.delete_hits.get());
        stat("delete_misses", &self.delete_misses.get());
        stat("touch_hits", &self.touch_hits.get());
        stat("touch_misses", &self.touch_misses.get());
        stat("curr_items", &store.curr_items);
        stat("bytes", &store.bytes);
        stat("limit_maxbytes", &store.limit_maxbytes);
        stat("item_size_max", &config.max_item_size);
        stat("evictions", &store.evictions);
        stat("backend", &config.backend);
        stat("shards", &store.shards);
        if let Some(cache) = &store.cache {
            stat("queued", &cache.queued);
            stat("queued_peak", &cache.queued_peak);
            stat("delivered", &cache.delivered);
            stat("writes_held", &cache.writes_held);
            stat("callback_panics", &cache.callback_panics);
            stat("lock_acquisitions", &cache.lock_acquisitions);
            stat("lock_contended", &cache.lock_contended);
            stat("lock_contention", &format_args!("{:.6}", cache.contention_rate()));
        }
        if let Some(spill) = &store.spill {
            stat("spill_writes", &spill.writes);
            stat("spill_stale", &spill.stale);
            stat("spill_reads", &spill.reads);
            stat("spill_hits", &spill.hits);
            stat("spill_tombstones", &spill.tombstones);
            stat("spill_errors", &spill.errors);
            stat("spill_file_bytes", &spill.file_bytes);
        }
        out.extend_from_slice(b"END\r\n");
    }
}

/// Keeps a connection counted in `curr_connections` while it lives.
#[derive(Debug)]
pub(crate) struct ConnectionGuard<'a>(&'a ServerStats);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.curr_connections.fetch_sub(1, Relaxed);
    }
}
