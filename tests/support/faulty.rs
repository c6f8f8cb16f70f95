//! Keys and values whose user code panics: a key whose `Hash` or `Eq` panics ([`Faulty`]), a
//! value whose `Clone` panics ([`Fragile`]) and a value whose `Drop` panics ([`Bomb`]). Used by
//! the tests of guarantee 7 (`panics.rs`: a panic in user code leaves the cache consistent and
//! usable), which check the panic messages written here.

use super::drop_log::{DropLog, Tracked};
use shardlru::Cache;
use std::hash::{Hash, Hasher};

/// Which of a key's methods panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Never,
    Hash,
    Eq,
}

/// A key whose `Hash` or `Eq` panics. Equality and hashing use `id` only.
#[derive(Clone, Debug)]
pub struct Faulty {
    pub id: u64,
    pub fault: Fault,
}

/// A key that never panics.
pub fn key(id: u64) -> Faulty {
    Faulty { id, fault: Fault::Never }
}

impl Hash for Faulty {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.fault == Fault::Hash {
            panic!("Hash of key {} fails", self.id);
        }
        self.id.hash(state);
    }
}

impl PartialEq for Faulty {
    fn eq(&self, other: &Self) -> bool {
        if self.fault == Fault::Eq || other.fault == Fault::Eq {
            panic!("Eq of key {} fails", self.id.max(other.id));
        }
        self.id == other.id
    }
}

impl Eq for Faulty {}

/// A value whose `Clone` panics when `fails` is set.
#[derive(Debug, PartialEq, Eq)]
pub struct Fragile {
    pub value: u64,
    pub fails: bool,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if self.fails {
            panic!("Clone of value {} fails", self.value);
        }
        Fragile { value: self.value, fails: false }
    }
}

/// A cache of faulty keys and fragile values.
pub type FaultyCache<S = ahash::RandomState> = Cache<Faulty, Fragile, S>;

/// A value whose `Drop` panics if `armed`. Its drop is counted by `tracked` either way (a field
/// is still dropped when its owner's `Drop` panics).
pub struct Bomb {
    tracked: Tracked,
    armed: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed {
            panic!("drop of value {} fails", self.tracked.id);
        }
    }
}

/// A [`Bomb`] with this id, counted in `log`, whose drop panics if `armed`.
pub fn bomb(log: &DropLog, id: u64, armed: bool) -> Bomb {
    Bomb { tracked: log.track(id), armed }
}
