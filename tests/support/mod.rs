//! Shared pieces of the integration tests: a watchdog that turns a deadlock into a failure,
//! and drop-counting keys and values. Each test file uses a part of it.
#![allow(dead_code)]

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a scenario may run before the watchdog calls it a deadlock. Generous: CI machines
/// are slow and shared, and a real deadlock never finishes at all.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `body` on its own thread and fails the test if it does not finish within [`WATCHDOG`],
/// so that a deadlock fails in bounded time instead of hanging CI. A panic in `body` is
/// re-raised here.
pub fn watchdog<T: Send + 'static>(name: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = body();
            let _ = done.send(());
            result
        })
        .expect("spawn the scenario thread");
    match finished.recv_timeout(WATCHDOG) {
        // Sent, or the sender dropped because `body` panicked: join either way.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("`{name}` did not finish within {WATCHDOG:?}: deadlock (or livelock)")
        }
    }
}

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

/// A deterministic hasher (ahash with fixed seeds), so that a test's key-to-shard mapping is the
/// same on every run.
pub fn fixed_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(1, 2, 3, 4)
}
