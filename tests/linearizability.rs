//! Linearizability (issue 16): random concurrent histories of `get`, `peek`, `contains_key`,
//! `insert` and `remove` on a small cache, with the evictions its callback received and the
//! entries left after the threads join, must be equivalent to some sequential run of an exact
//! LRU of the same capacity (`support::history`, a Wing–Gong search).
//!
//! * `one_shard_is_a_linearizable_lru`: `shards(1)`, one exact LRU (guarantee 2). Must always
//!   check out; the final entries are compared in recency order.
//! * `global_scope_histories` (ignored: a measurement, not a guarantee): 2 or 4 shards under
//!   `EvictionScope::Global`, final entries compared as a set. The README promises the exact
//!   LRU only "on one thread"; this test counts histories that are not linearizable against one
//!   LRU, and fails only if `SHARDLRU_LIN_STRICT_GLOBAL` is set. Measured: about 1 history in
//!   5 is not (tests/LINEARIZABILITY.md): Global stamps are chained through each *thread's*
//!   last stamp, so a hit on one thread does not order before a later eviction on another.
//! * `remove_racing_an_insert_of_a_new_key`: the minimal non-linearizable one-shard history
//!   found (tests/LINEARIZABILITY.md), run in a loop.
//!
//! Environment: `SHARDLRU_LIN_SECONDS` (default 5) is the wall-time budget per test;
//! `SHARDLRU_LIN_SEED=<n>` replays the operations of one seed (the interleaving is up to the
//! scheduler, so the seed is run again and again for the budget). A failure prints its seed
//! and the history.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shardlru::{Cache, Evicted, EvictionScope, RemovalCause};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use support::history::{Call, History, Ret, ThreadLog, Verdict, check};

const THREADS: usize = 4;
const KEYS: u32 = 5;
/// States the search may explore per history before it gives up.
const STATE_LIMIT: u64 = 200_000;

/// One thread's planned step: a call, and whether to yield first (to vary interleavings).
type Step = (Call, bool);

struct Plan {
    capacity: usize,
    shards: usize,
    threads: Vec<Vec<Step>>,
}

fn plan(seed: u64, multi_shard: bool) -> Plan {
    let mut rng = SmallRng::seed_from_u64(seed);
    let capacity = rng.random_range(2..=3);
    let shards = if multi_shard { [2, 4][rng.random_range(0..2)] } else { 1 };
    let threads = (0..THREADS)
        .map(|t| {
            let n = rng.random_range(4..=8);
            (0..n)
                .map(|c| {
                    let k = rng.random_range(0..KEYS);
                    let call = match rng.random_range(0..12) {
                        0..=3 => Call::Insert(k, (t as u32 + 1) * 1_000_000 + c),
                        4..=7 => Call::Get(k),
                        8..=9 => Call::Remove(k),
                        10 => Call::Peek(k),
                        _ => Call::ContainsKey(k),
                    };
                    (call, rng.random_bool(0.25))
                })
                .collect()
        })
        .collect();
    Plan { capacity, shards, threads }
}

fn run(plan: &Plan, global: bool) -> History {
    let log: Arc<Mutex<Vec<(u32, u32, RemovalCause)>>> = Arc::default();
    let sink = Arc::clone(&log);
    let mut builder = Cache::<u32, u32>::builder()
        .capacity(plan.capacity)
        .shards(plan.shards)
        .hasher(support::fixed_hasher())
        .on_evict(move |_cache, Evicted { key, value, cause, .. }| {
            sink.lock().unwrap().push((key, value, cause));
        });
    if global {
        builder = builder.eviction_scope(EvictionScope::Global);
    }
    let cache = builder.build().unwrap();
    let clock = AtomicU64::new(0);
    let barrier = Barrier::new(plan.threads.len());
    let mut events = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .threads
            .iter()
            .enumerate()
            .map(|(t, steps)| {
                let (cache, clock, barrier) = (&cache, &clock, &barrier);
                s.spawn(move || {
                    let mut tlog = ThreadLog::new(clock, t);
                    barrier.wait();
                    for &(call, yield_first) in steps {
                        if yield_first {
                            std::thread::yield_now();
                        }
                        tlog.record(call, || match call {
                            Call::Get(k) => Ret::Value(cache.get(&k)),
                            Call::Peek(k) => Ret::Value(cache.peek(&k)),
                            Call::ContainsKey(k) => Ret::Bool(cache.contains_key(&k)),
                            Call::Insert(k, v) => Ret::Value(cache.insert(k, v)),
                            Call::Remove(k) => Ret::Value(cache.remove(&k)),
                        });
                    }
                    tlog.events
                })
            })
            .collect();
        for handle in handles {
            events.extend(handle.join().unwrap());
        }
    });
    cache.flush();
    assert_eq!(cache.queued(), 0);
    let evicted = log
        .lock()
        .unwrap()
        .iter()
        .map(|&(k, v, cause)| {
            assert_eq!(cause, RemovalCause::Capacity, "unexpected eviction cause for ({k}, {v})");
            (k, v)
        })
        .collect();
    // One shard: `snapshot` is the exact recency order. Several: per shard only, so a set.
    let resident = cache.snapshot();
    History {
        capacity: plan.capacity,
        events,
        evicted,
        resident,
        resident_ordered: plan.shards == 1,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|s| s.trim().parse().unwrap_or_else(|_| panic!("{name}={s:?}: not a number")))
}

#[derive(Default, Debug)]
struct Tally {
    histories: u64,
    linearizable: u64,
    gave_up: u64,
    states: u64,
    failures: Vec<String>,
}

/// Runs seeds for the time budget; each history is checked at once.
fn campaign(name: &str, multi_shard: bool, global: bool, stop_at_first_failure: bool) -> Tally {
    let budget = Duration::from_secs_f64(env_u64("SHARDLRU_LIN_SECONDS").unwrap_or(5) as f64);
    let replay = env_u64("SHARDLRU_LIN_SEED");
    let base = replay.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64
            & 0xffff_ffff
    });
    eprintln!(
        "{name}: budget {budget:?}, first seed {base}{}",
        if replay.is_some() { " (replay)" } else { "" }
    );
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut i = 0u64;
    while started.elapsed() < budget {
        let seed = if replay.is_some() { base } else { base + i };
        i += 1;
        let plan = plan(seed, multi_shard);
        let history = run(&plan, global);
        let verdict = check(&history, STATE_LIMIT);
        tally.histories += 1;
        tally.states += verdict.explored();
        match verdict {
            Verdict::Linearizable { .. } => tally.linearizable += 1,
            Verdict::GaveUp { explored } => {
                tally.gave_up += 1;
                eprintln!("{name}: seed {seed}: gave up after {explored} states");
            }
            Verdict::NotLinearizable { explored, why } => {
                let report = format!(
                    "seed {seed} (replay with SHARDLRU_LIN_SEED={seed}), shards {}, {explored} states explored\n\
                     NOT LINEARIZABLE: {why}\n{history}",
                    plan.shards
                );
                // The first few in full; the rest are counted.
                if tally.failures.len() < 3 {
                    eprintln!("{name}: {report}");
                }
                tally.failures.push(report);
                if stop_at_first_failure {
                    break;
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {} histories in {secs:.1} s ({:.0}/s), {} linearizable, {} not, {} gave up, {:.1} states per history",
        tally.histories,
        tally.histories as f64 / secs,
        tally.linearizable,
        tally.failures.len(),
        tally.gave_up,
        tally.states as f64 / tally.histories.max(1) as f64
    );
    tally
}

fn assert_gave_up_rarely(t: &Tally) {
    // A give-up is no pass: it must be rare (at most 1 in 1,000 histories, and never all).
    assert!(
        t.gave_up * 1000 <= t.histories && t.linearizable > 0,
        "the search gave up on {} of {} histories",
        t.gave_up,
        t.histories
    );
}

#[test]
fn one_shard_is_a_linearizable_lru() {
    let t = campaign("one shard", false, false, true);
    assert!(t.failures.is_empty(), "{}", t.failures[0]);
    assert_gave_up_rarely(&t);
}

#[test]
#[ignore = "a measurement: EvictionScope::Global is an exact LRU on one thread only"]
fn global_scope_histories() {
    let strict = std::env::var_os("SHARDLRU_LIN_STRICT_GLOBAL").is_some();
    let t = campaign("global scope", true, true, strict);
    if strict {
        assert!(t.failures.is_empty(), "{}", t.failures[0]);
    }
    assert_gave_up_rarely(&t);
}

/// The checker itself: a history that no LRU produces is refused, with a reason.
#[test]
fn the_checker_refuses_a_non_lru_history() {
    use support::history::Event;
    let ev = |thread, call, ret, inv, resp| Event { thread, call, ret, inv, resp };
    // Sequential: insert 0, insert 1, get 0, insert 2 (capacity 2) must evict 1, not 0.
    let events = vec![
        ev(0, Call::Insert(0, 10), Ret::Value(None), 0, 1),
        ev(0, Call::Insert(1, 11), Ret::Value(None), 2, 3),
        ev(0, Call::Get(0), Ret::Value(Some(10)), 4, 5),
        ev(0, Call::Insert(2, 12), Ret::Value(None), 6, 7),
    ];
    let good = History {
        capacity: 2,
        events: events.clone(),
        evicted: vec![(1, 11)],
        resident: vec![(2, 12), (0, 10)],
        resident_ordered: true,
    };
    assert!(matches!(check(&good, 1000), Verdict::Linearizable { .. }));
    let bad = History { evicted: vec![(0, 10)], resident: vec![(2, 12), (1, 11)], ..good.clone() };
    match check(&bad, 1000) {
        Verdict::NotLinearizable { why, .. } => assert!(why.contains("never received"), "{why}"),
        v => panic!("{v:?}"),
    }
    // The same ops overlapping in time: the get may come before insert 1, hence evict 0? No: get
    // 0 then insert 1 then insert 2 evicts 0. Overlap get with insert 1 and it checks out.
    let mut overlapping = bad.clone();
    overlapping.events[1] = ev(1, Call::Insert(1, 11), Ret::Value(None), 2, 5);
    overlapping.events[2] = ev(0, Call::Get(0), Ret::Value(Some(10)), 3, 4);
    assert!(matches!(check(&overlapping, 1000), Verdict::Linearizable { .. }));
    // Gives up distinctly under a tiny bound.
    assert!(matches!(check(&good, 2), Verdict::GaveUp { .. }));
}

/// The smallest history found so far that is not linearizable on one shard (seed
/// 2953185371's, reduced): with 1 the least recent of two entries in a full cache of 2,
/// `remove(1)` racing `insert(2, ..)`. Sequentially, either the remove comes first (no
/// eviction: 4 and 2 stay) or the insert does (it evicts 1, and the remove finds nothing).
/// Observed: the remove returns 1's value AND the insert evicts 4: `try_remove` releases the
/// removed entry's weight only after it has dropped the shard lock, so an insert in between
/// still finds the cache full. Runs up to `SHARDLRU_LIN_SECONDS` (default 5).
#[test]
fn remove_racing_an_insert_of_a_new_key() {
    let budget = Duration::from_secs(env_u64("SHARDLRU_LIN_SECONDS").unwrap_or(5));
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < budget {
        rounds += 1;
        let plan = Plan {
            capacity: 2,
            shards: 1,
            threads: vec![
                vec![(Call::Insert(1, 1_000_000), false), (Call::Insert(4, 1_000_001), false)],
                vec![],
            ],
        };
        // The setup runs alone; then the two racing calls.
        let mut history = run_after(&plan, &[Call::Remove(1)], &[Call::Insert(2, 2_000_000)]);
        history.events.sort_by_key(|e| e.inv);
        if let v @ Verdict::NotLinearizable { .. } = check(&history, STATE_LIMIT) {
            panic!("after {rounds} rounds: {v:?}\n{history}");
        }
    }
    eprintln!("remove racing insert: {rounds} rounds, all linearizable");
}

/// Runs `plan.threads[0]` alone, then `a` and `b` on two threads started together.
fn run_after(plan: &Plan, a: &[Call], b: &[Call]) -> History {
    let log: Arc<Mutex<Vec<(u32, u32, RemovalCause)>>> = Arc::default();
    let sink = Arc::clone(&log);
    let cache = Cache::<u32, u32>::builder()
        .capacity(plan.capacity)
        .shards(plan.shards)
        .on_evict(move |_cache, Evicted { key, value, .. }| {
            sink.lock().unwrap().push((key, value, RemovalCause::Capacity))
        })
        .build()
        .unwrap();
    let clock = AtomicU64::new(0);
    let mut setup = ThreadLog::new(&clock, 0);
    for &(call, _) in &plan.threads[0] {
        let Call::Insert(k, v) = call else { unreachable!() };
        setup.record(call, || Ret::Value(cache.insert(k, v)));
    }
    let mut events = setup.events;
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let hs: Vec<_> = [a, b]
            .into_iter()
            .enumerate()
            .map(|(t, calls)| {
                let (cache, clock, barrier) = (&cache, &clock, &barrier);
                s.spawn(move || {
                    let mut tlog = ThreadLog::new(clock, t + 1);
                    barrier.wait();
                    for &call in calls {
                        tlog.record(call, || match call {
                            Call::Insert(k, v) => Ret::Value(cache.insert(k, v)),
                            Call::Remove(k) => Ret::Value(cache.remove(&k)),
                            _ => unreachable!(),
                        });
                    }
                    tlog.events
                })
            })
            .collect();
        for h in hs {
            events.extend(h.join().unwrap());
        }
    });
    cache.flush();
    let evicted = log.lock().unwrap().iter().map(|&(k, v, _)| (k, v)).collect();
    History {
        capacity: plan.capacity,
        events,
        evicted,
        resident: cache.snapshot(),
        resident_ordered: true,
    }
}
