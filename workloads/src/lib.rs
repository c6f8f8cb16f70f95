//! Request streams shared by shardlru's tests, benches and shard-count tuner, so that each of
//! them replays the same keys without including another's files:
//!
//! * [`trace`] reads the cache traces kept in the repository's `tests/data/traces/` (the trace
//!   tests, the tuner's `--trace FILE`);
//! * [`keys`] draws seeded synthetic key streams, Zipf or uniform (the benches, the tuner's
//!   default workload).
//!
//! Everything here runs before any timed loop: a stream is computed whole, then replayed.

pub mod keys;
pub mod trace;
