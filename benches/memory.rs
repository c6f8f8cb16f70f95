//! Bytes per entry: each contender filled to a capacity of 1,000,000 entries, measured with a
//! counting global allocator (the heap bytes the cache holds, divided by its entry count).
//!
//! ```text
//! cargo bench --bench memory                         # capacity 1,000,000 (about a minute)
//! SHARDLRU_BENCH_QUICK=1 cargo bench --bench memory  # capacity 100,000
//! ```
//!
//! Two payloads: `u64` keys and values, and 64-byte `String` keys with 64-byte `Vec<u8>` values
//! (128 heap bytes of payload per entry, counted too, so the last column subtracts them). Each
//! cache is measured twice: when `capacity` distinct keys have been inserted ("filled"), and
//! after twice as many more ("steady": every structure that grows with evictions, such as
//! quick_cache's ghost entries, has grown). Entries still in an eviction queue count as held.
//! The counts are of requested bytes; the allocator's own rounding is not included.

#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/settings.rs"]
mod settings;

use contenders::{CONTENDERS, Contender, Hook, Key, QUICK_CACHE, Spec, Value, Visit};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

/// Bytes allocated and not yet freed, over the whole process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the counting touches only an atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            // Relaxed: one thread measures, and reads after the work it measures.
            LIVE.fetch_add(layout.size() as isize, Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator (that is, `System`) returned.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's valid size.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

/// One contender's figures for one payload.
struct Row {
    filled_len: usize,
    filled_bytes: f64,
    steady_len: usize,
    steady_bytes: f64,
}

/// Fills a fresh cache with `make(0..)` and reads the allocator at both points.
struct Measure<K, V> {
    capacity: usize,
    make: fn(u64) -> (K, V),
}

impl<K: Key, V: Value> Visit<K, V> for Measure<K, V> {
    type Out = Row;

    fn visit<C: Contender<K, V>>(self, _: &Spec) -> Row {
        let capacity = self.capacity as u64;
        let before = live();
        let cache = C::build(self.capacity, Hook::None);
        for i in 0..capacity {
            let (key, value) = (self.make)(i);
            cache.insert(key, value);
        }
        let filled_len = cache.len();
        let filled_bytes = (live() - before) as f64 / filled_len as f64;
        for i in capacity..3 * capacity {
            let (key, value) = (self.make)(i);
            cache.insert(key, value);
        }
        let steady_len = cache.len();
        let steady_bytes = (live() - before) as f64 / steady_len as f64;
        drop(cache);
        Row { filled_len, filled_bytes, steady_len, steady_bytes }
    }
}

fn u64_pair(i: u64) -> (u64, u64) {
    (i, i)
}

/// Heap bytes of payload per entry in [`string_pair`]'s entries.
const STRING_PAYLOAD: f64 = 128.0;

fn string_pair(i: u64) -> (String, Vec<u8>) {
    let mut key = String::with_capacity(64);
    let _ = write!(key, "{i:064}");
    (key, vec![i as u8; 64])
}

fn main() {
    let capacity = settings::number("SHARDLRU_BENCH_MEMORY_CAPACITY", 1_000_000, 100_000) as usize;
    let contenders: Vec<&Spec> = match settings::list("SHARDLRU_BENCH_CONTENDERS") {
        Some(names) => names.iter().filter_map(|n| Spec::by_name(n)).collect(),
        None => CONTENDERS.iter().filter(|spec| !spec.hooked).collect(),
    };
    let mut rows = Vec::new();
    for spec in contenders {
        eprintln!("{}: u64/u64 ...", spec.name);
        let small = spec.visit(Measure { capacity, make: u64_pair });
        eprintln!("{}: String/Vec<u8> ...", spec.name);
        let large = spec.visit(Measure { capacity, make: string_pair });
        rows.push((spec, small, large));
    }
    let mut md = format!(
        "## Memory: bytes per entry at capacity {capacity}\n\nFrom `cargo bench --bench memory`: \
         heap bytes held by the cache (a counting global allocator, requested sizes) divided \
         by the entries it holds, after inserting `capacity` distinct keys (filled) and after \
         inserting twice as many more (steady). dashmap has no bound, so it holds every key \
         inserted. String/Vec\\<u8> entries carry {STRING_PAYLOAD} heap bytes of payload, \
         included in the bytes and subtracted in the overhead column.\n\n\
         | contender | u64/u64 filled (entries) | u64/u64 steady (entries) | String/Vec\\<u8> \
         steady | overhead beyond payload |\n|---|---:|---:|---:|---:|\n"
    );
    for (spec, small, large) in &rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} ({}) | {:.1} ({}) | {:.1} | {:.1} |",
            spec.name.replace('<', "\\<"),
            small.filled_bytes,
            small.filled_len,
            small.steady_bytes,
            small.steady_len,
            large.steady_bytes,
            large.steady_bytes - STRING_PAYLOAD
        );
    }
    let find = |name: &str| rows.iter().find(|(spec, ..)| spec.name == name);
    if let (Some((_, ours, _)), Some((_, theirs, _))) = (find("shardlru"), find(QUICK_CACHE)) {
        let met = if ours.steady_bytes <= theirs.steady_bytes { "met" } else { "not met" };
        let _ = writeln!(
            md,
            "\nTarget (issue 5): shardlru's bytes per u64/u64 entry ≤ quick_cache's: {:.1} vs \
             {:.1}, {met}.",
            ours.steady_bytes, theirs.steady_bytes
        );
    }
    println!("{md}");
    settings::leave_section("memory.md", &md);
}
