//! A write-back cache under concurrent load, and a check that no write is lost or read stale.
//!
//! Several threads serve a Zipf-distributed stream of requests for pages of a simulated disk
//! (a `Mutex<HashMap>` whose reads and writes block for a few tens of microseconds, as real I/O
//! does). A read goes through the cache's loader, `get_or_insert_with(page, || disk.read(page))`
//! (read-through): on a miss one thread reads the page from the disk and fills the cache, and
//! the others asking for that page meanwhile wait for its value. A write replaces the page in
//! the cache and marks it dirty, without touching the disk. The eviction callback writes dirty
//! pages back, outside every shard lock and with at most `MAX_PENDING` write-backs in flight
//! (`max_pending_callbacks`): a thread that finds that many under way skips its purge and serves
//! its next request instead of queueing behind the disk.
//!
//! At the end the program prints what happened (throughput, hit ratio, evictions, pages written
//! back, purges skipped at the cap) and checks that nothing was lost: for every page ever
//! written, the newest version is in the cache or on the disk. It then flushes the cache with
//! `clear()`, which hands every remaining page to the callback, and checks that the disk alone
//! now holds every newest version.
//!
//! It also counts *stale loads*: misses that loaded an older version from the disk than a write
//! which had completed before the read began, and checks that there are none. Between its
//! eviction and its write-back a dirty page is in neither the cache nor the disk, so a racy
//! read-through (`get`, then on a miss read the disk and `insert`) that misses in that window
//! reads the previous version from the disk, and the wider the window the more often: it is wide
//! when the cap binds and evicted pages wait in the queue. The loader rules this out: a load does
//! not start while an entry evicted under its key is still queued for the callback or in it (it
//! waits for the write-back to return), and a write to the key while the loader runs wins over
//! the loaded value. The program exits with status 1 if any check fails: a lost page, a page
//! missing from the disk after the flush, or a stale load.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example write_back
//! ```

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use shardlru::{Cache, Evicted};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Threads serving requests. More than the cores: they spend most of their time blocked on the
/// simulated disk.
const THREADS: usize = 4;
/// Pages on the disk.
const PAGES: u64 = 100_000;
/// Pages the cache holds.
const CAPACITY: usize = 5_000;
/// Zipf exponent of the page requests.
const ZIPF: f64 = 0.9;
/// Fraction of requests that write their page.
const WRITE_RATIO: f64 = 0.2;
/// How long a disk read or write blocks.
const IO_DELAY: Duration = Duration::from_micros(50);
/// Write-backs that may run at once (`max_pending_callbacks`).
const MAX_PENDING: usize = 2;
/// Lost pages reported one by one; the rest are only counted.
const SHOW_LOST: usize = 10;
/// How long the threads serve requests.
const RUN_FOR: Duration = Duration::from_secs(2);

/// A cached page: which version of it, and whether the disk has that version yet.
#[derive(Clone, Copy, Debug)]
struct Page {
    version: u64,
    dirty: bool,
}

impl Page {
    /// Whether `self` should win over `other` for the same key: the newer version, and for one
    /// version the dirty copy (it carries the duty to be written back).
    fn supersedes(&self, other: &Page) -> bool {
        (self.version, self.dirty) > (other.version, other.dirty)
    }
}

/// The simulated disk: the version of each page it holds (version 0 for a page never written).
#[derive(Default)]
struct Disk {
    pages: Mutex<HashMap<u64, u64>>,
    writes: AtomicU64,
}

impl Disk {
    fn read(&self, key: u64) -> u64 {
        thread::sleep(IO_DELAY);
        self.pages.lock().unwrap().get(&key).copied().unwrap_or(0)
    }

    /// Writes `version` of page `key`. Two write-backs of one page may race (an evicted page
    /// is rewritten, evicted again, and the two callbacks run at once), so an older version
    /// never overwrites a newer one.
    fn write(&self, key: u64, version: u64) {
        thread::sleep(IO_DELAY);
        let mut pages = self.pages.lock().unwrap();
        let stored = pages.entry(key).or_insert(0);
        *stored = (*stored).max(version);
        self.writes.fetch_add(1, Relaxed);
    }

    fn version(&self, key: u64) -> u64 {
        self.pages.lock().unwrap().get(&key).copied().unwrap_or(0)
    }
}

/// A write: puts `page` in the cache, unless the cache holds a newer version of it. `insert`
/// replaces whatever it finds and hands it back: if that was newer (a write of a newer version
/// that raced this one), it goes back in, and so on until the newest page is in place. An older
/// page handed back is simply dropped: the newer one supersedes it, dirty or not.
fn install(cache: &Cache<u64, Page>, key: u64, mut page: Page) {
    while let Some(replaced) = cache.insert(key, page) {
        if !replaced.supersedes(&page) {
            break;
        }
        page = replaced;
    }
}

/// What one thread saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    stale_loads: u64,
}

fn main() -> ExitCode {
    let disk = Arc::new(Disk::default());
    let clean_evictions = Arc::new(AtomicU64::new(0));
    let cache = {
        let disk = Arc::clone(&disk);
        let clean_evictions = Arc::clone(&clean_evictions);
        Cache::<u64, Page>::builder()
            .capacity(CAPACITY)
            .max_pending_callbacks(MAX_PENDING)
            .name("write-back demo")
            .on_evict(move |_cache, Evicted { key, value, .. }| {
                // Outside every shard lock: the disk's delay holds up no reader of the cache.
                if value.dirty {
                    disk.write(key, value.version);
                } else {
                    clean_evictions.fetch_add(1, Relaxed);
                }
            })
            .build()
            .expect("a valid configuration")
    };
    // The newest version written of each page, set once its write is in the cache.
    let newest: Vec<AtomicU64> = (0..PAGES).map(|_| AtomicU64::new(0)).collect();
    let next_version = AtomicU64::new(1);
    let stop = AtomicBool::new(false);
    let queue_peak = AtomicUsize::new(0);

    println!(
        "write-back demo: {THREADS} threads, read-through over {PAGES} pages (Zipf {ZIPF}), \
         {:.0} % writes; capacity {CAPACITY} in {} shards; disk I/O {} µs; \
         max_pending_callbacks({MAX_PENDING}); {:.1} s",
        WRITE_RATIO * 100.0,
        cache.shard_count(),
        IO_DELAY.as_micros(),
        RUN_FOR.as_secs_f64(),
    );

    let started = Instant::now();
    let tallies: Vec<Tally> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let (cache, disk, newest, next_version, stop) =
                    (&cache, &*disk, &newest, &next_version, &stop);
                s.spawn(move || {
                    let pages = Zipf::new(PAGES as f64, ZIPF).expect("valid Zipf parameters");
                    let mut rng = SmallRng::seed_from_u64(t);
                    let mut tally = Tally::default();
                    while !stop.load(Relaxed) {
                        // Zipf ranks start at 1: page 0 is the most requested.
                        let key = pages.sample(&mut rng) as u64 - 1;
                        let written = &newest[key as usize];
                        tally.requests += 1;
                        if rng.random_bool(WRITE_RATIO) {
                            let version = next_version.fetch_add(1, Relaxed);
                            install(cache, key, Page { version, dirty: true });
                            written.fetch_max(version, Relaxed);
                            continue;
                        }
                        // This version's write completed before the read began.
                        let floor = written.load(Relaxed);
                        cache.get_or_insert_with(key, || {
                            // A miss, and this thread loads. The load waited for any evicted
                            // copy of the page to be written back, so the disk holds every
                            // version that left the cache before the read began.
                            let version = disk.read(key);
                            tally.stale_loads += u64::from(version < floor);
                            Page { version, dirty: false }
                        });
                    }
                    tally
                })
            })
            .collect();
        while started.elapsed() < RUN_FOR {
            thread::sleep(Duration::from_millis(5));
            queue_peak.fetch_max(cache.queued(), Relaxed);
        }
        stop.store(true, Relaxed);
        workers.into_iter().map(|w| w.join().expect("a worker panicked")).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();

    // Nobody else purges now: deliver what the last purges left queued.
    while cache.queued() > 0 {
        cache.purge();
    }
    let stats = cache.stats();
    let requests: u64 = tallies.iter().map(|t| t.requests).sum();
    let stale_loads: u64 = tallies.iter().map(|t| t.stale_loads).sum();
    let written_back = disk.writes.load(Relaxed);

    println!("requests        {requests:>10}  ({:.0} per second)", requests as f64 / elapsed);
    println!(
        "hit ratio       {:>10.1} %  ({} hits, {} misses)",
        stats.hit_ratio() * 100.0,
        stats.hits,
        stats.misses
    );
    println!(
        "evictions       {:>10}  ({written_back} dirty pages written back, {} clean dropped)",
        stats.evictions,
        clean_evictions.load(Relaxed)
    );
    println!(
        "purges skipped  {:>10}  (found {MAX_PENDING} write-backs in flight: served the next \
         request instead)",
        stats.purges_skipped
    );
    println!(
        "queue peak      {:>10}  evicted pages waiting for a write-back slot",
        queue_peak.load(Relaxed)
    );
    println!(
        "stale loads     {stale_loads:>10}  misses that read an older version from the disk than \
         a write completed before the read began: {}",
        if stale_loads == 0 { "OK" } else { "FAILED" }
    );

    // Nothing lost: each page's newest version is in the cache or on the disk.
    let mut lost = 0;
    let (mut pages_written, mut in_cache, mut dirty_in_cache, mut on_disk) = (0, 0, 0, 0);
    for key in 0..PAGES {
        let newest = newest[key as usize].load(Relaxed);
        if newest == 0 {
            continue;
        }
        pages_written += 1;
        match cache.peek(&key) {
            Some(page) if page.version == newest => {
                in_cache += 1;
                dirty_in_cache += u64::from(page.dirty);
            }
            _ if disk.version(key) == newest => on_disk += 1,
            cached => {
                lost += 1;
                if lost > SHOW_LOST {
                    continue;
                }
                eprintln!(
                    "LOST: page {key}: newest version {newest}, cache holds {cached:?}, disk \
                     holds {}",
                    disk.version(key)
                );
            }
        }
    }
    println!(
        "nothing lost:   {pages_written} pages written; the newest version is in the cache for \
         {in_cache} ({dirty_in_cache} of them dirty) and on the disk for {on_disk}: {}",
        if lost == 0 { "OK".to_owned() } else { format!("FAILED, {lost} lost") }
    );

    // Shutting down: `clear` hands every page to the callback, which writes the dirty ones.
    let before_flush = disk.writes.load(Relaxed);
    cache.clear();
    while cache.queued() > 0 {
        cache.purge();
    }
    let flushed = disk.writes.load(Relaxed) - before_flush;
    let missing = (0..PAGES)
        .filter(|&key| {
            let newest = newest[key as usize].load(Relaxed);
            newest != 0 && disk.version(key) != newest
        })
        .count();
    println!(
        "after clear():  {flushed} dirty pages flushed; the disk holds the newest version of \
         {} of {pages_written} written pages: {}",
        pages_written - missing as u64,
        if missing == 0 { "OK" } else { "FAILED" }
    );

    if lost == 0 && missing == 0 && stale_loads == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
