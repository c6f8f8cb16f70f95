//! Shared pieces of the integration tests, one concept per module, re-exported here so that a
//! test file imports them as `support::{watchdog, DropLog, ...}`. Each test file uses a part:
//!
//! * [`watchdog`] (here) turns a deadlock into a failure, for every scenario that could hang;
//!   [`fixed_hasher`] (here) makes the key-to-shard mapping the same on every run.
//! * [`drop_log`]: keys and values whose drops are counted (guarantees 3, 5 and 7).
//! * [`hooks`]: keys and values whose `Hash`, `Eq` or `Clone` run a closure (guarantee 6).
//! * [`faulty`]: keys and values whose `Hash`, `Eq`, `Clone` or `Drop` panic (guarantee 7).
//! * [`panic`]: catching a panic and reading its message (guarantees 4, 6 and 7).
//! * [`shards`]: which shard a key falls in, through the public statistics.
//! * [`locks`]: whether this thread holds a shard lock, for code that must not run under one.
//! * [`log`]: a cache whose callback records what it delivers.
//! * [`stale`]: writers and loaders of a write-back cache, checked for stale loads (guarantee 9).
//! * [`child`]: a test run again in a child process, where a failure would abort the process.
#![allow(dead_code)]

pub mod child;
pub mod drop_log;
pub mod faulty;
pub mod history;
pub mod hooks;
pub mod locks;
pub mod log;
pub mod panic;
pub mod shards;
pub mod stale;

// Each test file uses a part of these; in each, the rest would be "unused imports".
#[allow(unused_imports)]
pub use {
    child::{in_child, run_in_child},
    drop_log::{DropLog, Tracked},
    faulty::{Bomb, Fault, Faulty, FaultyCache, Fragile, bomb, key},
    history::{Call, Event, History, Ret, ThreadLog, Verdict, check},
    hooks::{Hook, HookCache, HookKey, HookValue, clear_hook, on_eq, on_hash, plain, set_hook},
    locks::holds_a_shard_lock,
    log::{Log, logged, take},
    panic::{expect_panic, panic_message},
    shards::shard_of,
    stale::assert_no_stale_loads,
};

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

/// A deterministic hasher (ahash with fixed seeds), so that a test's key-to-shard mapping is the
/// same on every run.
pub fn fixed_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(1, 2, 3, 4)
}
