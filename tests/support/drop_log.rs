//! Drop counting: [`DropLog`] counts the drops of each id, and [`Tracked`] is a key or value
//! whose drop it counts, to check that the cache drops every key and value exactly once. Used by
//! the tests of guarantee 3 (`nothing_lost.rs`, `drops.rs`), guarantee 5
//! (`reentrant_callbacks.rs`: amplifying callbacks lose nothing) and guarantee 7 (`panics.rs`:
//! panics lose nothing; `faulty::Bomb` counts its drops here).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Counts drops per id, to check that every key and value is dropped exactly once.
#[derive(Clone)]
pub struct DropLog(Arc<Vec<AtomicU32>>);

impl DropLog {
    /// A log for ids `0..ids`.
    pub fn new(ids: usize) -> Self {
        Self(Arc::new((0..ids).map(|_| AtomicU32::new(0)).collect()))
    }

    /// A value with this id whose drop is counted here.
    pub fn track(&self, id: u64) -> Tracked {
        Tracked { id, log: self.clone() }
    }

    pub fn drops(&self, id: u64) -> u32 {
        self.0[id as usize].load(Ordering::SeqCst)
    }

    /// Ids dropped other than exactly once, with their counts.
    pub fn not_dropped_once(&self) -> Vec<(u64, u32)> {
        (0..self.0.len() as u64).map(|id| (id, self.drops(id))).filter(|&(_, n)| n != 1).collect()
    }
}

/// A key or value whose drop is counted in a [`DropLog`]. Equality and hashing use the id only.
pub struct Tracked {
    pub id: u64,
    log: DropLog,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.0[self.id as usize].fetch_add(1, Ordering::SeqCst);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Tracked {}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}
