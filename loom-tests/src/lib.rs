//! Loom models of the shardlru protocol live in `tests/`; this crate has no code of its own.
