//! Linearizability checking (issue 16): a recorder of concurrent histories and a Wing–Gong
//! checker against a sequential, exact LRU of capacity `C`.
//!
//! * [`ThreadLog`] records each operation of one thread: a global sequence number taken (SeqCst)
//!   before the call and another after it returns, the call with its arguments, and the result.
//!   The numbers come from one `AtomicU64` shared by every thread, so `inv < resp'` means the
//!   first call really was invoked before the second one returned: the real-time order.
//! * [`check`] searches depth first for a linearization: at each step any pending operation
//!   whose invocation precedes every not-yet-linearized operation's response (minimal in
//!   real-time order) is applied to the model; a result that differs, or an eviction the callback
//!   never saw, cuts the branch. A complete linearization must also evict exactly the observed
//!   evictions and end with the cache's resident entries (in recency order, where the cache is
//!   one LRU list). (set of linearized ops, evictions used, model state) is memoized, and the
//!   number of states explored is bounded: [`Verdict::GaveUp`] is neither a pass nor a failure.
//!
//! Evictions are not attributed to inserts: every insert's value is unique, so an evicted
//! (key, value) pair is unique too, and the search tracks which of them the model has produced.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// One call, with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Get(u32),
    Peek(u32),
    ContainsKey(u32),
    Insert(u32, u32),
    Remove(u32),
}

/// What a call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    Value(Option<u32>),
    Bool(bool),
}

/// One completed operation of a history.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub thread: usize,
    pub call: Call,
    pub ret: Ret,
    /// Sequence number taken before the call.
    pub inv: u64,
    /// Sequence number taken after it returned.
    pub resp: u64,
}

/// The operations of one thread, recorded against the shared clock.
pub struct ThreadLog<'a> {
    clock: &'a AtomicU64,
    thread: usize,
    pub events: Vec<Event>,
}

impl<'a> ThreadLog<'a> {
    pub fn new(clock: &'a AtomicU64, thread: usize) -> Self {
        ThreadLog { clock, thread, events: Vec::with_capacity(16) }
    }

    /// Runs `f` (the call `call` on the cache) between two ticks of the clock, and records it.
    pub fn record(&mut self, call: Call, f: impl FnOnce() -> Ret) -> Ret {
        let inv = self.clock.fetch_add(1, SeqCst);
        let ret = f();
        let resp = self.clock.fetch_add(1, SeqCst);
        self.events.push(Event { thread: self.thread, call, ret, inv, resp });
        ret
    }
}

/// A finished concurrent run: its operations, and what the cache showed after the threads
/// joined.
#[derive(Clone, Debug)]
pub struct History {
    pub capacity: usize,
    pub events: Vec<Event>,
    /// Every (key, value) the callback received (all `RemovalCause::Capacity`).
    pub evicted: Vec<(u32, u32)>,
    /// The resident entries after the join, most recent first.
    pub resident: Vec<(u32, u32)>,
    /// Whether `resident` is in exact recency order (one LRU list), or only a set.
    pub resident_ordered: bool,
}

/// The checker's answer.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// A linearization: indices into `History::events`, in order.
    Linearizable { order: Vec<usize>, explored: u64 },
    /// The search completed without finding one. `why` explains the deepest dead end.
    NotLinearizable { explored: u64, why: String },
    /// The state bound was reached first: no verdict.
    GaveUp { explored: u64 },
}

impl Verdict {
    pub fn explored(&self) -> u64 {
        match self {
            Verdict::Linearizable { explored, .. }
            | Verdict::NotLinearizable { explored, .. }
            | Verdict::GaveUp { explored } => *explored,
        }
    }
}

/// The sequential model: an exact LRU, most recent entry first.
type Model = Vec<(u32, u32)>;

/// Applies `call` to the model. Returns the result and the entry it evicted, if any.
fn apply(model: &mut Model, capacity: usize, call: Call) -> (Ret, Option<(u32, u32)>) {
    let pos = |m: &Model, k: u32| m.iter().position(|&(key, _)| key == k);
    match call {
        Call::Get(k) => match pos(model, k) {
            Some(i) => {
                let entry = model.remove(i);
                model.insert(0, entry);
                (Ret::Value(Some(entry.1)), None)
            }
            None => (Ret::Value(None), None),
        },
        Call::Peek(k) => (Ret::Value(pos(model, k).map(|i| model[i].1)), None),
        Call::ContainsKey(k) => (Ret::Bool(pos(model, k).is_some()), None),
        Call::Insert(k, v) => match pos(model, k) {
            Some(i) => {
                let (_, old) = model.remove(i);
                model.insert(0, (k, v));
                (Ret::Value(Some(old)), None)
            }
            None => {
                let victim = if model.len() >= capacity { model.pop() } else { None };
                model.insert(0, (k, v));
                (Ret::Value(None), victim)
            }
        },
        Call::Remove(k) => (Ret::Value(pos(model, k).map(|i| model.remove(i).1)), None),
    }
}

struct Search<'h> {
    h: &'h History,
    memo: HashSet<(u64, u64, Model)>,
    explored: u64,
    limit: u64,
    /// The deepest dead end: its prefix, and why each candidate failed there.
    deepest: Option<(Vec<usize>, Model, Vec<String>)>,
}

enum Outcome {
    Found,
    Dead,
    GaveUp,
}

impl Search<'_> {
    fn dfs(&mut self, done: u64, used: u64, model: &Model, order: &mut Vec<usize>) -> Outcome {
        let h = self.h;
        let n = h.events.len();
        let mut reasons = Vec::new();
        if order.len() == n {
            let all_used =
                if h.evicted.len() == 64 { u64::MAX } else { (1u64 << h.evicted.len()) - 1 };
            let resident_ok = if h.resident_ordered {
                *model == h.resident
            } else {
                let (mut a, mut b) = (model.clone(), h.resident.clone());
                a.sort_unstable();
                b.sort_unstable();
                a == b
            };
            if used == all_used && resident_ok {
                return Outcome::Found;
            }
            if used != all_used {
                let missing: Vec<_> = (0..h.evicted.len())
                    .filter(|&i| used & (1 << i) == 0)
                    .map(|i| h.evicted[i])
                    .collect();
                reasons.push(format!(
                    "all ops linearized, but the callback saw evictions the model never made: {missing:?}"
                ));
            }
            if !resident_ok {
                reasons.push(format!(
                    "all ops linearized, but the model ends with {model:?} and the cache with {:?}",
                    h.resident
                ));
            }
            self.note_dead_end(order, model, reasons);
            return Outcome::Dead;
        }
        let min_resp =
            (0..n).filter(|&i| done & (1 << i) == 0).map(|i| h.events[i].resp).min().unwrap();
        for i in 0..n {
            if done & (1 << i) != 0 || h.events[i].inv > min_resp {
                continue;
            }
            let e = h.events[i];
            let mut next = model.clone();
            let (ret, victim) = apply(&mut next, h.capacity, e.call);
            if ret != e.ret {
                reasons.push(format!(
                    "{} returned {} but the model says {}",
                    show_call(&e),
                    show_ret(e.ret),
                    show_ret(ret)
                ));
                continue;
            }
            let mut next_used = used;
            if let Some(victim) = victim {
                match (0..h.evicted.len()).find(|&j| used & (1 << j) == 0 && h.evicted[j] == victim)
                {
                    Some(j) => next_used |= 1 << j,
                    None => {
                        reasons.push(format!(
                            "{} would evict {victim:?} (the least recent of {model:?}), which the callback never received",
                            show_call(&e)
                        ));
                        continue;
                    }
                }
            }
            let next_done = done | (1 << i);
            if !self.memo.insert((next_done, next_used, next.clone())) {
                continue;
            }
            self.explored += 1;
            if self.explored > self.limit {
                return Outcome::GaveUp;
            }
            order.push(i);
            match self.dfs(next_done, next_used, &next, order) {
                Outcome::Found => return Outcome::Found,
                Outcome::GaveUp => return Outcome::GaveUp,
                Outcome::Dead => {}
            }
            order.pop();
        }
        if !reasons.is_empty() {
            self.note_dead_end(order, model, reasons);
        }
        Outcome::Dead
    }

    fn note_dead_end(&mut self, order: &[usize], model: &Model, reasons: Vec<String>) {
        if self.deepest.as_ref().is_none_or(|(o, _, _)| order.len() >= o.len()) {
            self.deepest = Some((order.to_vec(), model.clone(), reasons));
        }
    }
}

/// Searches for a linearization of `h`, exploring at most `limit` states.
pub fn check(h: &History, limit: u64) -> Verdict {
    assert!(h.events.len() <= 64 && h.evicted.len() <= 64, "history too long for the bit sets");
    let mut search = Search { h, memo: HashSet::new(), explored: 0, limit, deepest: None };
    let mut order = Vec::with_capacity(h.events.len());
    match search.dfs(0, 0, &Vec::new(), &mut order) {
        Outcome::Found => Verdict::Linearizable { order, explored: search.explored },
        Outcome::GaveUp => Verdict::GaveUp { explored: search.explored },
        Outcome::Dead => {
            let why = match search.deepest {
                Some((prefix, model, reasons)) => {
                    let prefix: Vec<String> = prefix.iter().map(|&i| format!("#{i}")).collect();
                    format!(
                        "no linearization; the deepest consistent prefix has {} of {} ops [{}], \
                         model then {:?}; every next candidate fails:\n    {}",
                        prefix.len(),
                        h.events.len(),
                        prefix.join(" "),
                        model,
                        reasons.join("\n    ")
                    )
                }
                None => "no linearization".to_owned(),
            };
            Verdict::NotLinearizable { explored: search.explored, why }
        }
    }
}

fn show_call(e: &Event) -> String {
    match e.call {
        Call::Get(k) => format!("T{} get({k})", e.thread),
        Call::Peek(k) => format!("T{} peek({k})", e.thread),
        Call::ContainsKey(k) => format!("T{} contains_key({k})", e.thread),
        Call::Insert(k, v) => format!("T{} insert({k}, {v})", e.thread),
        Call::Remove(k) => format!("T{} remove({k})", e.thread),
    }
}

fn show_ret(r: Ret) -> String {
    match r {
        Ret::Value(Some(v)) => format!("Some({v})"),
        Ret::Value(None) => "None".to_owned(),
        Ret::Bool(b) => b.to_string(),
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "capacity {}, {} ops (by invocation; [inv, resp] on the global clock):",
            self.capacity,
            self.events.len()
        )?;
        let mut idx: Vec<usize> = (0..self.events.len()).collect();
        idx.sort_by_key(|&i| self.events[i].inv);
        for i in idx {
            let e = &self.events[i];
            let indent = "    ".repeat(e.thread);
            writeln!(
                f,
                "  #{i:<2} [{:>3}, {:>3}] {indent}{} -> {}",
                e.inv,
                e.resp,
                show_call(e),
                show_ret(e.ret)
            )?;
        }
        writeln!(f, "  evicted (callback): {:?}", self.evicted)?;
        write!(
            f,
            "  resident after join{}: {:?}",
            if self.resident_ordered { " (most recent first)" } else { " (as a set)" },
            self.resident
        )
    }
}
