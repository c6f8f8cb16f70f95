//! Keys and values whose user code runs a closure that the test provides (a "hook"), so that a
//! test can call back into the cache from inside a key's `Hash` or `Eq` or a value's `Clone`.
//! Used by the tests of guarantee 6 (`reentrant_methods.rs`): from `Hash`, which runs before any
//! lock, the inner call works; from `Eq` or `Clone`, which run under a shard lock, it is refused.
//!
//! [`set_hook`] installs the closure for this thread, [`plain`], [`on_hash`] and [`on_eq`] make
//! keys that run it from no method, from `Hash` or from `Eq`, and [`HookValue`] runs it from
//! `Clone`. [`clear_hook`] removes it before the test checks the outcome.

use shardlru::Cache;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};

thread_local! {
    /// The closure that hooked `Hash`/`Eq`/`Clone` impls run on this thread. It is taken out
    /// while it runs, so that the calls it makes do not run it again.
    static HOOK: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
}

/// Installs `hook` as this thread's hook, replacing any other.
pub fn set_hook(hook: impl FnMut() + 'static) {
    HOOK.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));
}

/// Removes this thread's hook (and drops what it captured).
pub fn clear_hook() {
    drop(HOOK.with(|slot| slot.borrow_mut().take()));
}

/// Runs this thread's hook, if any, with the hook taken out meanwhile.
fn run_hook() {
    /// Puts the hook back when it returns or panics (a refused call may panic through it).
    struct PutBack(Box<dyn FnMut()>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            let hook = std::mem::replace(&mut self.0, Box::new(|| {}));
            HOOK.with(|slot| {
                slot.borrow_mut().get_or_insert(hook);
            });
        }
    }
    let Some(hook) = HOOK.with(|slot| slot.borrow_mut().take()) else { return };
    let mut running = PutBack(hook);
    (running.0)();
}

/// Which of a key's methods runs the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Never,
    OnHash,
    OnEq,
}

/// A key whose `Hash` or `Eq` runs the hook. Equality and hashing use `id` only, and hash
/// exactly like a `u64`.
#[derive(Clone, Debug)]
pub struct HookKey {
    pub id: u64,
    pub hook: Hook,
}

/// A key that runs no hook.
pub fn plain(id: u64) -> HookKey {
    HookKey { id, hook: Hook::Never }
}

/// A key whose `Hash` runs the hook.
pub fn on_hash(id: u64) -> HookKey {
    HookKey { id, hook: Hook::OnHash }
}

/// A key whose `Eq` runs the hook (whichever side of the comparison it is on).
pub fn on_eq(id: u64) -> HookKey {
    HookKey { id, hook: Hook::OnEq }
}

impl Hash for HookKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.hook == Hook::OnHash {
            run_hook();
        }
        self.id.hash(state);
    }
}

impl PartialEq for HookKey {
    fn eq(&self, other: &Self) -> bool {
        if self.hook == Hook::OnEq || other.hook == Hook::OnEq {
            run_hook();
        }
        self.id == other.id
    }
}

impl Eq for HookKey {}

/// A value whose `Clone` (run under the shard lock by `get`, `peek` and `snapshot`) runs the hook.
#[derive(Debug, PartialEq, Eq)]
pub struct HookValue(pub u64);

impl Clone for HookValue {
    fn clone(&self) -> Self {
        run_hook();
        HookValue(self.0)
    }
}

/// A cache of hooked keys, with the hasher type of [`fixed_hasher`](super::fixed_hasher).
pub type HookCache = Cache<HookKey, u64, ahash::RandomState>;
