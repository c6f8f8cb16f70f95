//! Single-threaded hot paths of every contender, with criterion: what one call costs when no
//! other thread competes for anything.
//!
//! ```text
//! cargo bench --bench micro                   # about a minute and a half
//! cargo bench --bench micro -- get_hit        # one group
//! ```
//!
//! * `get_hit`: `get` of a present key, uniform over 100,000 pre-filled keys (W4, one thread).
//! * `miss_insert`: `get` of an absent key, then `insert` of it into a full cache, which
//!   evicts (W1's miss path; the keys are uniform over 10M, so nearly every one is new).
//! * `insert_evict`: `insert` of a new key into a full cache (W3, one thread).
//!
//! The throughput comparisons that count run interleaved in `benches/compare.rs`; this bench is
//! for looking at one path at a time (and at its instruction count, under callgrind).

#[path = "support/contenders.rs"]
mod contenders;

use contenders::{CONTENDERS, Contender, Hook, Spec, Visit};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use shardlru_workloads::keys;
use std::hint::black_box;
use std::time::Duration;

/// Entries every cache may hold.
const CAPACITY: usize = 100_000;
/// Keys per precomputed stream: a power of two, so that the index wraps with a mask.
const STREAM: usize = 1 << 20;

/// Which hot path a group measures.
#[derive(Clone, Copy)]
enum Path {
    GetHit,
    MissInsert,
    InsertEvict,
}

/// One contender's benchmark in one group.
struct Bench<'a, 'g> {
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    path: Path,
    fill: &'a [u64],
    keys: &'a [u64],
}

impl Visit<u64, u64> for Bench<'_, '_> {
    type Out = ();

    fn visit<C: Contender<u64, u64>>(self, spec: &Spec) {
        let Bench { group, path, fill, keys } = self;
        let cache = C::build(CAPACITY, Hook::None);
        for &key in fill {
            cache.insert(key, key);
        }
        let mask = keys.len() - 1;
        let mut i = 0;
        group.bench_function(spec.name, |b| match path {
            Path::GetHit => b.iter(|| {
                i = (i + 1) & mask;
                black_box(cache.get(&keys[i]))
            }),
            Path::MissInsert => b.iter(|| {
                i = (i + 1) & mask;
                let key = keys[i];
                if cache.get(&key).is_none() {
                    cache.insert(key, key);
                }
            }),
            Path::InsertEvict => b.iter(|| {
                i = (i + 1) & mask;
                cache.insert(keys[i], keys[i]);
            }),
        });
    }
}

fn hot_paths(c: &mut Criterion) {
    let present = keys::key_set(CAPACITY as u64);
    let hits = keys::uniform(CAPACITY as u64, STREAM, 1);
    let fresh = keys::uniform(10_000_000, STREAM, 2);
    let fill_fresh = keys::uniform(10_000_000, CAPACITY, 3);
    let groups = [
        ("get_hit", Path::GetHit, &present, &hits),
        ("miss_insert", Path::MissInsert, &fill_fresh, &fresh),
        ("insert_evict", Path::InsertEvict, &fill_fresh, &fresh),
    ];
    for (name, path, fill, keys) in groups {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        for spec in CONTENDERS.iter().filter(|spec| !spec.hooked) {
            spec.visit(Bench { group: &mut group, path, fill, keys });
        }
        group.finish();
    }
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, with shorter runs than the defaults.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    hot_paths(&mut criterion);
    criterion.final_summary();
}
