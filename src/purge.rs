//! The purge: how evicted entries travel from a shard to the user's callback.
//!
//! ```text
//!  shard lock held        lock released                     any thread, no lock held
//!  ───────────────        ─────────────                     ────────────────────────
//!  unlink the victim ──▶  queue.push(Evicted) ──▶ … ──▶  purge: take a slot (≤ cap) ─▶ pop ─▶ callback
//! ```
//!
//! # The protocol
//!
//! A shard never runs the callback: it hands the evicted entry back to the cache, which pushes it
//! onto the queue *after* releasing the shard lock. Pushing never blocks and runs no user code,
//! so it is safe from anywhere, including inside a callback or a `Drop`. A purge pops entries and
//! runs the callback on each, holding no lock of any kind. Every mutating call ends with a purge
//! attempt (unless delivery threads run: `background.rs`), and
//! [`Cache::purge`](crate::Cache::purge) runs one on demand.
//!
//! The common case takes a shortcut (`push_and_purge`): an insert that evicts while nothing is
//! queued and a slot is free hands its entry straight to the callback, with no queue round
//! trip. Whenever that is not so, it pushes and purges like everyone else.
//!
//! A purge goes through these checks, in order, and returns at once (delivering nothing) when
//! one fails:
//!
//! 1. **Anything queued?** A racy read. The thread that pushes an entry attempts a purge after
//!    its push (program order), so an entry missed here still has that purge to come.
//! 2. **No shard lock held by this thread?** (`lock::holds_any`.) The purge was reached from a
//!    key's `Eq` or a value's `Clone`, under a lock of this cache or of another one. So a callback
//!    never runs while its thread holds any shard lock. Such a call queues nothing itself (the
//!    cache refuses a write that would evict from there, with `BusyCause::WouldEvict`), so the
//!    entries it leaves are other calls' entries, which those calls purge.
//! 3. **Not already purging this cache on this thread?** (the record's `running` scopes,
//!    `nesting.rs`.) A callback called back into the cache; the outer purge on this thread keeps
//!    draining, so the stack does not grow with the length of a chain of evictions. A thread
//!    already inside [`MAX_NESTING`](crate::MAX_NESTING) purges of different caches is refused
//!    here too.
//! 4. **A free slot?** `pending_callbacks` counts purging threads, each running at most one
//!    callback at a time; it may not exceed `max_pending_callbacks`. At the cap the purge counts
//!    itself in `purges_skipped` and leaves the entries queued, to the slot holders: threads
//!    never wait behind slow callbacks (see "A purge refused at the cap strands nothing").
//!
//! Then it delivers at most `min(queue.len(), PURGE_BATCH) + PURGE_EXTRA` entries: what was
//! queued when it started, up to a batch, plus a few entries its own callbacks evicted. So a
//! callback that keeps inserting (an "amplification" callback) cannot trap the caller, and a
//! caller who meets a long queue delivers one batch of it: what is left stays queued, visible
//! in [`Cache::queued`](crate::Cache::queued), for later purges.
//!
//! # A purge refused at the cap strands nothing
//!
//! A purge refused at the cap leaves its entry to the threads holding the slots. A holder that
//! has just found the queue empty might miss it, so a holder that gives its slot back looks at
//! the queue again and, if the budget allows, takes a slot again and goes on. That second look
//! and the refused purge's check of the cap form a store-buffering pattern:
//!
//! ```text
//!   refused purger                    slot holder
//!   queue.push(entry)                 pending_callbacks.fetch_sub(1)
//!   fence(SeqCst)                     fence(SeqCst)
//!   pending_callbacks.load() == cap?  queue.is_empty()?
//! ```
//!
//! With a `SeqCst` fence on each side, one of the fences comes first in the single total order
//! of `SeqCst` operations, and the thread of the later fence sees the other's write: either the
//! refused purger sees the freed slot (it then takes it and delivers), or the holder sees the
//! entry.
//!
//! Only a holder whose release takes the count down *from the cap* needs its fence. A refused
//! purger read the cap, written by some slot acquisition; the next change of the count in its
//! modification order can only be a release, from the cap. That release's fence is the partner:
//! were it first in the `SeqCst` order, the refused purger's load (after its own fence) would
//! read that release's value or a later one, not the cap. Releases from below the cap owe no
//! refused purger anything, so the common case (the cap far from reached) pays no fence. The
//! holder's side runs in `Slot`'s drop, so every release has it; every caller that gives a slot
//! back looks at the queue again afterwards, or is draining a dropping cache.
//!
//! Without the fences both could read stale values and the entry would wait for some later
//! call; the loom models `purge_cap::refused_purge_leaves_no_entry_behind` (cap 1: every release
//! comes down from the cap) and `purge_cap::cap_two_three_evicting_threads` (a release from
//! below the cap skips its fence) find that execution when a fence is removed. The fences sit on
//! the refusal path and on releases from the cap, never per entry.
//!
//! What this section promises is about refusals at the cap. Entries also stay queued, by
//! design, when the purge that would take them has spent its budget (the bound on each call's
//! work: later calls, [`Cache::purge`](crate::Cache::purge) or the drop go on), and when a
//! callback panic resumes under [`Builder::resume_callback_panics`](crate::Builder::resume_callback_panics)
//! (the entries not yet popped wait for the next purge).
//!
//! # Waiting for a slot
//!
//! A purge never waits: refused at the cap, it leaves its entries to the slot holders. Three
//! callers do wait, for the cap to come down: [`Cache::flush`](crate::Cache::flush), a write
//! held at the bound, and a delivery thread. Each registers in `slot_wait.waiting` under
//! `slot_wait.lock`, fences, reads the count of pending callbacks, and waits on
//! `slot_wait.freed` if it is at the cap. A slot given back from the cap fences (the same fence
//! as above), reads `waiting`, and notifies under the lock if anyone is registered: the
//! store-buffering pattern again, so either the waiter sees the slot free or the holder sees the
//! waiter (whose wait began before the holder could take the lock). A release from below the
//! cap owes no waiter anything: a waiter waits only having read the cap, and the next change of
//! the count is a release from it. A thread inside a callback never waits for a slot (it may
//! hold the slot its waiters need, of this cache or, through a chain of callbacks, of another):
//! it delivers what a free slot allows and returns. loom: `background::bound_two_writers_one_slot`.
//!
//! # The bound
//!
//! With [`Builder::max_queued`](crate::Builder::max_queued), a write that finds the queue at
//! the bound after its own purge (`hold`) delivers entries itself until the queue is below it,
//! taking a slot or waiting for one; `clear`, `retain` and a shrinking `resize` look after each
//! entry they queue. A waiting writer is woken by a release from the cap (which it may not
//! miss), and also, as a hint, by a pop that takes the queue below the bound: it then returns
//! after one callback's time, not after the slot holder's whole batch. Each writer pushes its entries and then holds, so the queue exceeds the
//! bound by at most the entries of the writes between their push and their hold: one each for
//! writes of weight-1 entries, plus whatever threads inside callbacks queue (they are never
//! held, see above). The hold reports callback panics instead of resuming them: it may run
//! while a call still has entries in hand (`hand_off_all`) or a value on its way back.
//!
//! # Flush
//!
//! [`Cache::flush`](crate::Cache::flush) delivers what was queued when it began, plus at most
//! [`PURGE_EXTRA`] entries, one batch per slot taken, so that a writer waiting for a slot at
//! the bound gets one between batches, and a callback that keeps inserting cannot keep it
//! going. `purge` is the bounded, never-waiting step that ends each write; `flush` is for
//! emptying the backlog.
//!
//! # Exactly once
//!
//! Each queued entry is popped by exactly one purge (the queue hands each element to one
//! `pop`), and a popped entry is given to the callback by value, before anything else can fail.
//! A panicking callback is caught (`catch_unwind`): the entry counts as delivered (the callback
//! had it, and dropped it while unwinding), the panic is counted and reported, and the purge goes
//! on. A report handler that panics in turn is caught too (its panic is reported on stderr). With
//! [`Builder::resume_callback_panics`](crate::Builder::resume_callback_panics) the panic
//! resumes in the purging caller instead, after the slot is returned; the entries not yet popped
//! stay queued. So that such a panic never unwinds past a value on its way back to the caller,
//! `remove` purges *before* its shard work and a replacing `insert` (which queues nothing)
//! does not purge; every other write purges after its shard work. The calls that must both
//! queue entries and hand a value back (an `insert` that replaces a value and evicts others to
//! make room for a heavier one, or one too heavy to store over a key that had a value) purge
//! with panics reported instead of resumed.
//!
//! # Drop
//!
//! A dropping cache marks itself closing and then drains the queue with no budget. While it is
//! closing, entries its callbacks evict (or clear, or shrink away) are dropped instead of queued,
//! like every entry still in the cache, so the drain delivers exactly what was queued when the
//! drop began and always ends. A cache dropped while its thread holds a shard lock (in another
//! cache's `Eq` or `Clone`) cannot run callbacks there: it moves itself into the thread's record
//! and is dropped, drain and all, when the thread releases its outermost lock (`nesting.rs`).
//!
//! # Loads wait for write-backs
//!
//! A load of a key must not read the backing store while an evicted entry of that key is still
//! queued or in its callback (`load.rs`, "No stale loads"). So every entry handed to the callback
//! is recorded in `in_delivery` by its key's hash: `begin` under the shard lock that removes it
//! (a load that then misses the key, under the same lock, finds the record), `end` once its
//! callback has returned or panicked, or once it is dropped undelivered (a closing cache). A
//! load whose hash is recorded waits ([`Purger::wait_for_delivery`]), delivering queued entries
//! itself meanwhile, until it is not; an async load's task waits the same way, its waker
//! registered beside the threads (`poll_delivery`), its thread free. A load from inside a callback of the same cache does not
//! wait: the entries it would wait for may need the slot its thread holds (with a cap of 1,
//! nobody else could deliver them).
//!
//! The record is exact (the full 64-bit hash, each entry once), so a load waits only for its own
//! key's write-backs (and, once in 2^64, a colliding key's), never for a backlog of other keys:
//! an earlier design counted entries by stripe of the hash, and under a backlog of thousands of
//! entries nearly every stripe was busy, so nearly every miss waited for the whole queue.
//!
//! The hashes are spread over `STRIPES` stripes by the hash. Each stripe has `SLOTS` lock-free
//! slots, claimed by a compare-exchange from 0 and freed by one back to 0, so that `begin` and
//! `end` cost one read-modify-write each in the common case (few entries on their way); the
//! hashes that find every slot taken (a backlog) go to the stripe's list behind a mutex.
//!
//! The wake-up: a waiter holds its stripe's mutex while it looks for its hash and marks where
//! it found it, then waits on the stripe's condition variable (which releases the mutex). A
//! slot is marked by a compare-exchange that sets its `WAITED` bit: the mark and `end`'s
//! compare-exchange that frees the slot are read-modify-writes of one atomic, so one comes
//! first: either `end` sees the mark and notifies, under the mutex (so after the wait began),
//! or the waiter's compare-exchange fails and it finds the hash gone. The overflow list is
//! marked by a flag under the mutex that guards it. The slot's release pairs with the waiter's
//! acquire, so a load that finds its hash gone sees what the callback wrote. A waiter also
//! wakes every millisecond to purge: an entry still queued is delivered by some purge, and a
//! purge's budget may leave it for the next one. loom: `load::load_races_the_callback_of_its_key`
//! (a slot) and `load::load_races_a_clear_through_the_overflow`.
//!
//! # Orderings
//!
//! `pending_callbacks` protects no data: the entries reach the purging thread through the queue,
//! which synchronises each push with its pop. The counter only bounds how many threads are inside
//! the delivery loop, and read-modify-writes of one atomic are totally ordered whatever their
//! ordering, so a compare-exchange from `n` to `n + 1` that checks `n < cap` can never let the
//! count pass the cap. `Relaxed` suffices for the count itself; the two `SeqCst` fences of
//! "A purge refused at the cap strands nothing" order it against the queue.

use crate::background::Background;
use crate::cache::Cache;
use crate::evict::Evicted;
use crate::lock;
use crate::nesting::{self, NONE, PutOffDrop};
use crate::stats::PurgeCounters;
use crate::sync::{
    AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
    Queue, fence,
};
use std::any::Any;
use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Waker;
use std::time::Duration;

/// The most of the entries queued before it started that one purge call delivers, so that a
/// caller who meets a long queue (slow callbacks under a small cap) pays for a bounded batch, not
/// for the whole queue.
const PURGE_BATCH: usize = 256;

/// How many entries beyond those one purge call may deliver: room for the entries its own
/// callbacks evict, so that a short chain (a callback that inserts one entry, which evicts one)
/// finishes within one call.
const PURGE_EXTRA: usize = 64;

/// How many stripes `in_delivery` spreads its hashes over (a power of two), and how many
/// lock-free slots each has before its mutex-guarded overflow list. Small under loom, so that
/// the models reach the overflow.
#[cfg(not(loom))]
const STRIPES: usize = 256;
#[cfg(not(loom))]
const SLOTS: usize = 4;
#[cfg(loom)]
const STRIPES: usize = 2;
#[cfg(loom)]
const SLOTS: usize = 1;

/// How long a load waiting for a write-back sleeps before it purges again.
const WAIT_FOR_DELIVERY: Duration = Duration::from_millis(1);

/// The eviction callback: the cache it belongs to (so that it can call back into it without
/// holding a handle), and the entry.
pub(crate) type Callback<K, V, S> = Box<dyn Fn(&Cache<K, V, S>, Evicted<K, V>) + Send + Sync>;

/// Moves a dropping cache's contents into a box to be dropped later (`nesting.rs`, "drops put
/// off"). Made by [`Builder::on_evict`](crate::Builder::on_evict), where the types are known
/// to be `'static` and the hasher `Clone`.
pub(crate) type PutOff<K, V, S> = fn(&mut Cache<K, V, S>) -> PutOffDrop;

/// What [`Builder::on_evict`](crate::Builder::on_evict) configures.
pub(crate) struct OnEvict<K, V, S> {
    pub(crate) callback: Callback<K, V, S>,
    pub(crate) put_off: PutOff<K, V, S>,
}

/// What to do when the eviction callback panics.
pub(crate) enum PanicPolicy {
    /// Catch the panic, hand it to this handler, and go on with the next entry.
    Report(Box<dyn Fn(CallbackPanic<'_>) + Send + Sync>),
    /// Resume the panic in the purging caller, after the purge is cleaned up.
    Resume,
}

impl Default for PanicPolicy {
    fn default() -> Self {
        Self::Report(Box::new(report_to_stderr))
    }
}

/// The default report of a callback panic: one line on stderr. A failed write is ignored
/// (`eprintln!` would panic), so reporting never fails.
fn report_to_stderr(panic: CallbackPanic<'_>) {
    let _ = writeln!(
        std::io::stderr(),
        "shardlru: the eviction callback of cache `{}` panicked: {}; the entry counts as \
         delivered and the purge goes on",
        panic.cache_name(),
        panic.message()
    );
}

/// Reports, on stderr, a panic of the handler set with
/// [`Builder::on_callback_panic`](crate::Builder::on_callback_panic).
#[cold]
fn report_handler_panic(cache_name: &str, payload: Box<dyn Any + Send>) {
    let panic = CallbackPanic { cache_name, payload };
    let _ = writeln!(
        std::io::stderr(),
        "shardlru: the callback-panic handler of cache `{}` panicked: {}; the purge goes on",
        panic.cache_name(),
        panic.message()
    );
}

/// A panic caught from the eviction callback, as given to the handler set with
/// [`Builder::on_callback_panic`](crate::Builder::on_callback_panic).
///
/// ```
/// use shardlru::Cache;
/// use std::sync::{Arc, Mutex};
///
/// let reports = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&reports);
/// let cache = Cache::<u32, u32>::builder()
///     .capacity(1)
///     .name("sessions")
///     .on_evict(|_cache, _evicted| panic!("disk full"))
///     .on_callback_panic(move |panic| {
///         sink.lock().unwrap().push(format!("{}: {}", panic.cache_name(), panic.message()));
///     })
///     .build()?;
/// cache.insert(1, 1);
/// cache.insert(2, 2); // evicts 1; its callback panics; the handler reports it
/// assert_eq!(*reports.lock().unwrap(), ["sessions: disk full"]);
/// assert_eq!(cache.stats().callback_panics, 1);
/// # Ok::<(), shardlru::BuildError>(())
/// ```
pub struct CallbackPanic<'a> {
    cache_name: &'a str,
    payload: Box<dyn Any + Send>,
}

impl CallbackPanic<'_> {
    /// The name given with [`Builder::name`](crate::Builder::name).
    pub fn cache_name(&self) -> &str {
        self.cache_name
    }

    /// The panic's message, when it is a string (as from `panic!`), or a placeholder.
    pub fn message(&self) -> &str {
        if let Some(message) = self.payload.downcast_ref::<&'static str>() {
            message
        } else if let Some(message) = self.payload.downcast_ref::<String>() {
            message
        } else {
            "a panic payload that is not a string"
        }
    }

    /// The panic's payload, for `std::panic::resume_unwind` or inspection.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }
}

impl fmt::Debug for CallbackPanic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackPanic")
            .field("cache_name", &self.cache_name)
            .field("message", &self.message())
            .finish()
    }
}

/// The eviction queue, the callback and the pending-callback cap of one cache.
pub(crate) struct Purger<K, V, S> {
    /// Evicted entries, each with its key's hash.
    queue: Queue<(Evicted<K, V>, u64)>,
    /// The hashes of the entries on their way to the callback (see "Loads wait for
    /// write-backs").
    in_delivery: InDelivery,
    callback: Callback<K, V, S>,
    /// Boxes the cache for a drop put off until its thread holds no lock.
    put_off: PutOff<K, V, S>,
    /// Threads inside the delivery loop, each running at most one callback at a time.
    pending_callbacks: AtomicUsize,
    max_pending_callbacks: usize,
    on_panic: PanicPolicy,
    name: Box<str>,
    counters: PurgeCounters,
    /// Set when the cache starts dropping: from then on nothing more is queued.
    closing: AtomicBool,
    /// From [`Builder::max_queued`](crate::Builder::max_queued); `usize::MAX` when unbounded.
    max_queued: usize,
    /// The longest the queue was seen, just after a push. A statistic, `Relaxed`.
    queued_peak: AtomicUsize,
    /// Where threads wait for a slot (see "Waiting for a slot").
    slot_wait: SlotWait,
    /// The delivery threads' switch and parking (`background.rs`).
    pub(crate) background: Background,
}

/// The threads that wait for a delivery slot: a flush, a write held at the bound, a delivery
/// thread. Woken by a release from the cap (see "Waiting for a slot").
struct SlotWait {
    /// How many threads are between registering (under `lock`) and leaving the wait.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl<K, V, S> Purger<K, V, S> {
    pub(crate) fn new(
        OnEvict { callback, put_off }: OnEvict<K, V, S>,
        max_pending_callbacks: usize,
        max_queued: usize,
        on_panic: PanicPolicy,
        name: Box<str>,
    ) -> Self {
        Self {
            queue: Queue::new(),
            in_delivery: InDelivery::new(),
            callback,
            put_off,
            pending_callbacks: AtomicUsize::new(0),
            max_pending_callbacks,
            on_panic,
            name,
            counters: PurgeCounters::new(),
            closing: AtomicBool::new(false),
            max_queued,
            queued_peak: AtomicUsize::new(0),
            slot_wait: SlotWait {
                waiting: AtomicUsize::new(0),
                lock: Mutex::new(()),
                freed: Condvar::new(),
            },
            background: Background::new(),
        }
    }

    /// Counts an entry of `hash` as on its way to the callback. Called under the shard lock that
    /// removes it, before the entry is handed to [`push`](Self::push) or
    /// [`push_and_purge`](Self::push_and_purge).
    #[inline]
    pub(crate) fn begin_delivery(&self, hash: u64) {
        self.in_delivery.begin(hash);
    }

    /// Queues an evicted entry, counted by [`begin_delivery`](Self::begin_delivery), for
    /// delivery. Never blocks, runs no user code. Once the cache is closing, hands the entry
    /// back instead (no longer counted): the caller drops it.
    #[inline]
    pub(crate) fn push(&self, evicted: Evicted<K, V>, hash: u64) -> Option<Evicted<K, V>> {
        // Relaxed: `closing` is set by the dropping thread, in `drain_on_drop`, before it runs
        // any callback; only callbacks run by that same thread can push afterwards.
        if self.closing.load(Relaxed) {
            self.in_delivery.end(hash);
            return Some(evicted);
        }
        self.queue.push((evicted, hash));
        // The peak is a statistic, decided on by nothing: left out of the loom models, where
        // each atomic access is one more scheduling point.
        #[cfg(not(loom))]
        {
            let len = self.queue.len();
            // Relaxed: a statistic. The read first, so that the common case writes nothing.
            if len > self.queued_peak.load(Relaxed) {
                self.queued_peak.fetch_max(len, Relaxed);
            }
        }
        None
    }

    /// Returns once no entry of `hash` is on its way to the callback, delivering queued entries
    /// meanwhile (see "Loads wait for write-backs"). At once from inside a callback of this
    /// cache: the entries waited for may need the slot this thread holds.
    pub(crate) fn wait_for_delivery(&self, cache: &Cache<K, V, S>, hash: u64) {
        if self.runs_here() {
            return;
        }
        while self.in_delivery.lists(hash) {
            // The entry may be queued: deliver what is (unless delivery threads do), then wait
            // for a change.
            if !self.background.takes_over(self) {
                self.purge(cache);
            }
            self.in_delivery.wait(hash, WAIT_FOR_DELIVERY);
        }
    }

    /// [`wait_for_delivery`](Self::wait_for_delivery) for an async load: its task waits, its
    /// thread never does.
    #[cfg(feature = "async")]
    pub(crate) async fn wait_for_delivery_async(&self, cache: &Cache<K, V, S>, hash: u64) {
        if self.runs_here() {
            return;
        }
        std::future::poll_fn(|cx| self.poll_delivery(cache, hash, cx)).await;
    }

    /// One poll of [`wait_for_delivery_async`](Self::wait_for_delivery_async). Delivers queued
    /// entries while that makes progress (unless delivery threads do), then registers the task
    /// to be woken when an entry of `hash` leaves. What the thread version's timeout is for, a
    /// purge that leaves the key's entry queued, is covered without one: a purge that delivered
    /// something is tried again at once, and one that delivered nothing with entries queued
    /// (the cap reached) has the task yield and poll again.
    #[cfg(feature = "async")]
    fn poll_delivery(
        &self,
        cache: &Cache<K, V, S>,
        hash: u64,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::task::Poll;
        while self.in_delivery.lists(hash) {
            if self.background.takes_over(self) || self.purge(cache) == 0 {
                if !self.background.is_running() && !self.queue.is_empty() {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                return if self.in_delivery.register(hash, cx.waker()) {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                };
            }
        }
        Poll::Ready(())
    }

    /// Whether this thread is inside a purge (a callback) of this cache.
    pub(crate) fn runs_here(&self) -> bool {
        let id = self as *const Self as usize;
        nesting::record(|record| record.running.contains(record.running.innermost(), id))
    }

    /// How [`Cache`]'s drop boxes the cache when it must put the drop off.
    pub(crate) fn put_off(&self) -> PutOff<K, V, S> {
        self.put_off
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_queue_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn queued_peak(&self) -> usize {
        self.queued_peak.load(Relaxed)
    }

    pub(crate) fn counters(&self) -> &PurgeCounters {
        &self.counters
    }

    /// One purge attempt, bounded; see "The protocol" in the module docs.
    pub(crate) fn purge(&self, cache: &Cache<K, V, S>) -> usize {
        self.purge_with(cache, Resume::AtOnce)
    }

    /// What ends a write: a purge, unless delivery threads run (then it only wakes one), and
    /// then the hold at the bound (see "The bound").
    #[inline]
    pub(crate) fn after_write(&self, cache: &Cache<K, V, S>) {
        self.after_write_with(cache, Resume::AtOnce);
    }

    /// [`after_write`](Self::after_write) for a call with a value on its way back to its
    /// caller: a callback panic is reported, never resumed, under either panic policy (see
    /// "Exactly once").
    pub(crate) fn after_write_reporting_panics(&self, cache: &Cache<K, V, S>) {
        self.after_write_with(cache, Resume::Never);
    }

    #[inline]
    fn after_write_with(&self, cache: &Cache<K, V, S>, resume: Resume) {
        if !self.background.takes_over(self) {
            self.purge_with(cache, resume);
        }
        self.hold_at_bound(cache);
    }

    fn purge_with(&self, cache: &Cache<K, V, S>, resume: Resume) -> usize {
        if self.queue.is_empty() || lock::holds_any() {
            return 0;
        }
        match self.enter(Refusal::Fenced) {
            Some(slot) => self.deliver_batch(cache, slot, None, resume),
            None => 0,
        }
    }

    /// `push(evicted)` then `purge`, except that when nothing is queued and a slot is free right
    /// now, `evicted` goes straight to the callback instead of through the queue: the common
    /// case (one eviction per insert, nothing queued) costs no queue push and pop and writes
    /// none of the queue's cache lines. With entries already queued it goes behind them, so one
    /// thread's evictions reach the callback in order. When no slot is free (or this thread
    /// holds a shard lock, is already purging this cache, or the cache is closing), it is
    /// exactly `push` then `purge`, so a refusal at the cap still comes after the push, as
    /// "A purge refused at the cap strands nothing" needs.
    pub(crate) fn push_and_purge(&self, cache: &Cache<K, V, S>, evicted: Evicted<K, V>, hash: u64) {
        // Relaxed: as in `push`. With delivery threads running, the entry is theirs: the
        // `background` check reads a flag, as fresh as `takes_over` needs it after the push.
        if self.queue.is_empty()
            && !self.closing.load(Relaxed)
            && !self.background.is_running()
            && !lock::holds_any()
        {
            if let Some(slot) = self.enter(Refusal::Quiet) {
                self.deliver_batch(cache, slot, Some((evicted, hash)), Resume::AtOnce);
                return;
            }
        }
        self.push_then_purge(cache, evicted, hash);
    }

    /// [`push_and_purge`](Self::push_and_purge) without the shortcut: kept out of line, so that
    /// the shortcut (the common case) stays short.
    #[inline(never)]
    fn push_then_purge(&self, cache: &Cache<K, V, S>, evicted: Evicted<K, V>, hash: u64) {
        // Handed back (and dropped here) only while the cache is being dropped.
        drop(self.push(evicted, hash));
        self.after_write(cache);
    }

    /// The delivery loop of an ordinary purge, from its first slot: one bounded batch (see "The
    /// protocol"), giving the slot back and looking again as "A purge refused at the cap strands
    /// nothing" requires. `first` is an entry in hand that was never queued; it counts against
    /// the budget as if it had been.
    fn deliver_batch<'a>(
        &'a self,
        cache: &Cache<K, V, S>,
        mut slot: Slot<'a, K, V, S>,
        mut first: Option<(Evicted<K, V>, u64)>,
        resume: Resume,
    ) -> usize {
        let in_hand = usize::from(first.is_some());
        let budget = (self.queue.len() + in_hand).min(PURGE_BATCH) + PURGE_EXTRA;
        let mut delivered = 0;
        loop {
            if let Some((evicted, hash)) = first.take() {
                slot.deliver_one(cache, evicted, hash, resume);
            }
            // Usually nothing is queued after a hand-off: skip a `pop` that would find nothing.
            if !self.queue.is_empty() {
                let left = budget.saturating_sub(delivered + slot.delivered as usize);
                slot.deliver(cache, left, resume);
            }
            delivered += slot.delivered as usize;
            // The release fences when it comes down from the cap (see there).
            drop(slot);
            if delivered >= budget || self.queue.is_empty() {
                return delivered;
            }
            match self.enter(Refusal::Fenced) {
                Some(again) => slot = again,
                None => return delivered,
            }
        }
    }

    /// Delivers everything queued: the cache is being dropped, and nothing else can reach it.
    ///
    /// The cache is marked closing first, so entries that the callbacks evict or clear from now
    /// on are dropped instead of queued: the drain delivers exactly what was queued when the
    /// drop began, whatever the callbacks do. A callback panic under
    /// [`PanicPolicy::Resume`] does not stop the drain; the first one resumes after it.
    pub(crate) fn drain_on_drop(&self, cache: &Cache<K, V, S>) {
        self.closing.store(true, Relaxed);
        let Some(mut slot) = self.enter(Refusal::Fenced) else { return };
        let first_panic = slot.deliver(cache, usize::MAX, Resume::AfterDrain);
        drop(slot);
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
    }

    /// Delivers what is queued when it is called, plus at most [`PURGE_EXTRA`] entries that
    /// arrive meanwhile, one batch per slot taken, waiting for a slot at the cap (see "Flush").
    /// Returns how many it delivered.
    pub(crate) fn flush(&self, cache: &Cache<K, V, S>, resume: Resume) -> usize {
        if lock::holds_any() || self.runs_here() {
            return 0;
        }
        let inside_purge = inside_any_purge();
        let budget = self.queue.len().saturating_add(PURGE_EXTRA);
        let mut delivered = 0;
        while delivered < budget && !self.queue.is_empty() {
            match self.enter(Refusal::Quiet) {
                Some(mut slot) => {
                    slot.deliver(cache, (budget - delivered).min(PURGE_BATCH), resume);
                    delivered += slot.delivered as usize;
                }
                // Inside a callback, whose slot may be what the others wait for: no waiting.
                None if inside_purge => break,
                None => self.wait_for_slot(|| true),
            }
        }
        delivered
    }

    /// A delivery thread's purge: one batch, panics reported. `false` if no slot was free.
    pub(crate) fn purge_in_background(&self, cache: &Cache<K, V, S>) -> bool {
        match self.enter(Refusal::Quiet) {
            Some(slot) => {
                self.deliver_batch(cache, slot, None, Resume::Never);
                true
            }
            None => false,
        }
    }

    /// Holds a write that finds [`max_queued`](crate::Builder::max_queued) entries queued until
    /// fewer are, delivering them itself (see "The bound").
    #[inline]
    pub(crate) fn hold_at_bound(&self, cache: &Cache<K, V, S>) {
        if self.max_queued != usize::MAX && self.queue.len() >= self.max_queued {
            self.hold(cache);
        }
    }

    #[cold]
    #[inline(never)]
    fn hold(&self, cache: &Cache<K, V, S>) {
        // Relaxed: as in `push`.
        if lock::holds_any() || self.closing.load(Relaxed) {
            return;
        }
        let inside_purge = inside_any_purge();
        let mut held = false;
        loop {
            let queued = self.queue.len();
            if queued < self.max_queued {
                break;
            }
            // `enter` refuses a thread already purging this cache: it returns at once.
            match self.enter(Refusal::Quiet) {
                Some(mut slot) => {
                    held = true;
                    slot.deliver(cache, queued + 1 - self.max_queued, Resume::Never);
                }
                None if inside_purge => break,
                None => {
                    held = true;
                    self.wait_for_slot(|| true);
                }
            }
        }
        if held {
            PurgeCounters::add(&self.counters.writes_held, 1);
        }
    }

    /// Waits until a slot is given back from the cap (or at once if none is taken, or if
    /// `keep_waiting` says no), without taking it (see "Waiting for a slot").
    pub(crate) fn wait_for_slot(&self, keep_waiting: impl Fn() -> bool) {
        let wait = &self.slot_wait;
        let guard = wait.lock.lock();
        // Relaxed: the counter is read only after the fence below and its partner.
        wait.waiting.fetch_add(1, Relaxed);
        // SeqCst fence: pairs with the fence of a release from the cap ("Waiting for a slot"):
        // either this sees the slot free, or that release sees this thread registered and
        // notifies it, under `lock`, so after the wait below began.
        fence(SeqCst);
        let guard = if self.pending_callbacks.load(Relaxed) >= self.max_pending_callbacks
            && keep_waiting()
        {
            wait.freed.wait(guard)
        } else {
            guard
        };
        wait.waiting.fetch_sub(1, Relaxed);
        drop(guard);
    }

    /// After a pop: wakes the writers held at the bound once the queue is below it, so that
    /// they return without waiting for this batch's slot (see "The bound"). An early wake-up
    /// only: what no waiter may miss is the release from the cap.
    #[inline]
    fn wake_held_writers(&self) {
        // Relaxed: a hint, see above.
        if self.max_queued != usize::MAX
            && self.slot_wait.waiting.load(Relaxed) > 0
            && self.queue.len() < self.max_queued
        {
            self.wake_slot_waiters();
        }
    }

    /// Wakes every thread in [`wait_for_slot`](Self::wait_for_slot).
    #[cold]
    #[inline(never)]
    pub(crate) fn wake_slot_waiters(&self) {
        let _lock = self.slot_wait.lock.lock();
        self.slot_wait.freed.notify_all();
    }

    /// Checks 3 and 4 of the protocol: takes a delivery slot, or says why not by returning `None`.
    fn enter(&self, refusal: Refusal) -> Option<Slot<'_, K, V, S>> {
        let id = self as *const Self as usize;
        let outer = nesting::record(|record| record.running.innermost());
        if outer != NONE && !self.may_nest(outer, id) {
            return None;
        }
        // Relaxed loads and compare-exchange: see "Orderings" in the module docs.
        let mut pending = self.pending_callbacks.load(Relaxed);
        let mut fenced = false;
        loop {
            if pending >= self.max_pending_callbacks {
                if refusal == Refusal::Quiet {
                    return None;
                }
                if fenced {
                    PurgeCounters::add(&self.counters.purges_skipped, 1);
                    return None;
                }
                // SeqCst fence, then look again: pairs with the fence after a slot is given
                // back from the cap ("A purge refused at the cap strands nothing"): either this
                // sees that slot free, or its holder sees what this thread queued.
                fence(SeqCst);
                fenced = true;
                pending = self.pending_callbacks.load(Relaxed);
                continue;
            }
            match self.pending_callbacks.compare_exchange_weak(
                pending,
                pending + 1,
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => break,
                // Another purge took or returned a slot: decide again with the fresh count.
                Err(actual) => pending = actual,
            }
        }
        nesting::record(|record| record.running.enter(outer, id));
        Some(Slot { purger: self, id, outer, delivered: 0, panics: 0 })
    }

    /// Check 3 for a thread already purging (`outer` is its innermost purge): not this cache
    /// again, and room on the record.
    #[cold]
    #[inline(never)]
    fn may_nest(&self, outer: usize, id: usize) -> bool {
        nesting::record(|record| {
            !record.running.contains(outer, id) && record.running.has_room(outer)
        })
    }
}

/// Whether this thread is inside a purge (a callback) of any cache: then it must not wait for
/// a slot, nor for a thread that might (see "Waiting for a slot").
pub(crate) fn inside_any_purge() -> bool {
    nesting::record(|record| record.running.innermost()) != NONE
}

/// What [`Purger::enter`] does when it finds every slot taken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The refusal of a purge: fence and look again (see "A purge refused at the cap
    /// strands nothing"), then count the purge
    /// as skipped.
    Fenced,
    /// Just return `None`: the caller has queued nothing yet and falls back to `push` then
    /// `purge`, which refuses properly.
    Quiet,
}

/// One thread's place in the delivery loop. Dropping it (also while unwinding) releases it:
/// gives the slot back, leaves the record, and publishes the counts.
struct Slot<'a, K, V, S> {
    purger: &'a Purger<K, V, S>,
    id: usize,
    /// The purge this one nests in on this thread (the record's innermost before it), or `NONE`.
    outer: usize,
    delivered: u64,
    panics: u64,
}

/// When a callback panic resumes under [`PanicPolicy::Resume`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Right away, leaving the rest queued: an ordinary purge.
    AtOnce,
    /// After the rest is delivered, returned by `deliver`: the drain of a dropping cache,
    /// whose queue would otherwise be dropped undelivered.
    AfterDrain,
    /// Never: the panic is reported on stderr instead, as when the thread is already
    /// unwinding. The purge of a call with a value on its way back to its caller.
    Never,
}

impl<K, V, S> Slot<'_, K, V, S> {
    /// Delivers up to `budget` entries. Returns the first panic held back under
    /// [`Resume::AfterDrain`], if any.
    fn deliver(
        &mut self,
        cache: &Cache<K, V, S>,
        budget: usize,
        resume: Resume,
    ) -> Option<Box<dyn Any + Send>> {
        let mut held_back = None;
        for _ in 0..budget {
            let Some((evicted, hash)) = self.purger.queue.pop() else { break };
            self.purger.wake_held_writers();
            if let Some(payload) = self.deliver_one(cache, evicted, hash, resume) {
                held_back.get_or_insert(payload);
            }
        }
        held_back
    }

    /// Hands one entry to the callback. Returns its panic if `resume` holds it back.
    fn deliver_one(
        &mut self,
        cache: &Cache<K, V, S>,
        evicted: Evicted<K, V>,
        hash: u64,
        resume: Resume,
    ) -> Option<Box<dyn Any + Send>> {
        let purger = self.purger;
        self.delivered += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| (purger.callback)(cache, evicted)));
        // Delivered, panic or not: a load of the key may go on.
        purger.in_delivery.end(hash);
        let Err(payload) = outcome else { return None };
        self.panics += 1;
        let report = |payload| CallbackPanic { cache_name: &purger.name, payload };
        match &purger.on_panic {
            PanicPolicy::Report(handler) => {
                // The handler is user code too: contain its panic like the callback's, so that
                // the purge (and a drop's drain) goes on.
                let handled = catch_unwind(AssertUnwindSafe(|| handler(report(payload))));
                if let Err(payload) = handled {
                    report_handler_panic(&purger.name, payload);
                }
            }
            // A second panic while unwinding would abort the process: report it instead.
            PanicPolicy::Resume if resume == Resume::Never || std::thread::panicking() => {
                report_to_stderr(report(payload))
            }
            PanicPolicy::Resume if resume == Resume::AtOnce => resume_unwind(payload),
            PanicPolicy::Resume => return Some(payload),
        }
        None
    }
}

impl<K, V, S> Drop for Slot<'_, K, V, S> {
    /// Leaves the record, gives the slot back and publishes the counts.
    #[inline]
    fn drop(&mut self) {
        let purger = self.purger;
        let left = nesting::record(|record| record.running.leave(self.outer));
        debug_assert_eq!(left, self.id, "purges nest: the innermost leaves first");
        // Relaxed: see "Orderings" in the module docs.
        let before = purger.pending_callbacks.fetch_sub(1, Relaxed);
        if before >= purger.max_pending_callbacks {
            purger.released_from_the_cap();
        }
        PurgeCounters::add(&purger.counters.delivered, self.delivered);
        PurgeCounters::add(&purger.counters.callback_panics, self.panics);
    }
}

impl<K, V, S> Purger<K, V, S> {
    /// What a slot given back from the cap owes the threads that found the cap reached.
    #[cold]
    #[inline(never)]
    fn released_from_the_cap(&self) {
        // SeqCst fence: pairs with the fence of a purge refused at the cap (see "A purge
        // refused at the cap strands nothing"): either it sees the slot given back, or this
        // sees its entry; and with the fence of a thread waiting for a slot ("Waiting for a
        // slot"): either it sees the slot free, or this sees it registered. Only a release
        // from the cap can owe either.
        fence(SeqCst);
        // Relaxed: ordered by the fence.
        if self.slot_wait.waiting.load(Relaxed) > 0 {
            self.wake_slot_waiters();
        }
    }
}

/// The hashes of the entries on their way to the callback, and the wake-up of the loads that
/// wait for a hash to leave (see "Loads wait for write-backs").
struct InDelivery {
    stripes: Box<[Stripe]>,
}

/// The hashes of one stripe: a few lock-free slots, and a list behind a mutex for the rest.
struct Stripe {
    /// 0 (free), or a hash as [`listed`], with [`WAITED`] set once a load waits for it.
    slots: [AtomicU64; SLOTS],
    /// The hashes that found every slot taken, and whether a load waits for one of them.
    overflow: Mutex<Overflow>,
    left: Condvar,
}

/// What a stripe's mutex guards.
struct Overflow {
    hashes: Vec<u64>,
    waited: bool,
    /// The tasks of async loads waiting for a hash of the stripe (see "Loads wait for
    /// write-backs"), woken with the threads.
    wakers: Vec<Waker>,
}

/// The bit of a slot that says a load waits for its hash to leave.
const WAITED: u64 = 1;

/// How a stripe lists `hash`: bit 1 set, so never 0 (a free slot), and bit 0 clear, for
/// [`WAITED`]. Two hashes that differ only in those bits share a listing (a needless wait,
/// once in 2^62).
#[inline]
fn listed(hash: u64) -> u64 {
    (hash | 2) & !WAITED
}

impl InDelivery {
    fn new() -> Self {
        let stripe = || Stripe {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: Mutex::new(Overflow {
                hashes: Vec::new(),
                waited: false,
                wakers: Vec::new(),
            }),
            left: Condvar::new(),
        };
        Self { stripes: (0..STRIPES).map(|_| stripe()).collect() }
    }

    /// The stripe of `hash`: from its top bits after a multiplication, which neither the shard
    /// index (bits 32 and up, masked small) nor a weak hasher's low bits decide alone.
    #[inline]
    fn stripe(&self, hash: u64) -> &Stripe {
        &self.stripes[(hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize & (STRIPES - 1)]
    }

    /// Lists `hash`. Called under the shard lock that removes the entry: a load that misses the
    /// key under that lock afterwards finds it listed, so `Relaxed` suffices here.
    #[inline]
    fn begin(&self, hash: u64) {
        let (stripe, listed) = (self.stripe(hash), listed(hash));
        for slot in &stripe.slots {
            if slot.compare_exchange(0, listed, Relaxed, Relaxed).is_ok() {
                return;
            }
        }
        stripe.overflow.lock().hashes.push(listed);
    }

    /// Unlists one `hash`, waking the loads that wait for it.
    #[inline]
    fn end(&self, hash: u64) {
        let (stripe, listed) = (self.stripe(hash), listed(hash));
        for slot in &stripe.slots {
            // Release: a load that reads the slot changed sees what the callback did. A
            // compare-exchange, not a store: of two `end`s of one hash in two slots, each frees
            // one; and one that meets a waiter's mark fails, and frees the marked value instead.
            let marked = match slot.compare_exchange(listed, 0, Release, Relaxed) {
                Ok(_) => return,
                Err(actual) if actual == listed | WAITED => actual,
                Err(_) => continue,
            };
            // Only `end` clears a mark, and this `end` owns one listing of `hash`: the slot
            // keeps the marked value until this exchange.
            if slot.compare_exchange(marked, 0, Release, Relaxed).is_ok() {
                self.wake(stripe);
                return;
            }
        }
        self.end_overflow(stripe, listed);
    }

    #[cold]
    #[inline(never)]
    fn end_overflow(&self, stripe: &Stripe, listed: u64) {
        let mut overflow = stripe.overflow.lock();
        if let Some(at) = overflow.hashes.iter().position(|&hash| hash == listed) {
            overflow.hashes.swap_remove(at);
        }
        if overflow.waited {
            overflow.waited = false;
            let wakers = std::mem::take(&mut overflow.wakers);
            drop(overflow);
            stripe.left.notify_all();
            // Outside the mutex: a waker runs the executor's code.
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self, stripe: &Stripe) {
        // Under the mutex, which a waiter holds from before it marks the slot until it waits
        // (or registers its waker): the notification comes after the wait began.
        let wakers = {
            let mut overflow = stripe.overflow.lock();
            stripe.left.notify_all();
            std::mem::take(&mut overflow.wakers)
        };
        // Outside the mutex: a waker runs the executor's code.
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether `hash` is listed. Acquire: pairs with `end`'s release of a slot.
    fn lists(&self, hash: u64) -> bool {
        let (stripe, listed) = (self.stripe(hash), listed(hash));
        stripe.slots.iter().any(|slot| slot.load(Acquire) & !WAITED == listed)
            || stripe.overflow.lock().hashes.contains(&listed)
    }

    /// If `hash` is listed, waits for a change of its stripe, at most `timeout`, having marked
    /// what it waits for ([`mark`](Self::mark)).
    fn wait(&self, hash: u64, timeout: Duration) {
        let (stripe, listed) = (self.stripe(hash), listed(hash));
        let mut overflow = stripe.overflow.lock();
        if Self::mark(stripe, listed, &mut overflow) {
            drop(stripe.left.wait_for(overflow, timeout));
        }
    }

    /// [`wait`](Self::wait) for a task: if `hash` is listed, registers `waker` to be woken by a
    /// change of its stripe and returns `true`; else `false`. No timeout: see
    /// [`Purger::poll_delivery`].
    #[cfg(feature = "async")]
    fn register(&self, hash: u64, waker: &Waker) -> bool {
        let (stripe, listed) = (self.stripe(hash), listed(hash));
        let mut overflow = stripe.overflow.lock();
        let waits = Self::mark(stripe, listed, &mut overflow);
        if waits && !overflow.wakers.iter().any(|known| known.will_wake(waker)) {
            overflow.wakers.push(waker.clone());
        }
        waits
    }

    /// Under the stripe's mutex: whether `listed` is listed, and if so marks it, a slot by a
    /// compare-exchange that sets `WAITED` (so that the `end` that frees it, a
    /// read-modify-write of the same atomic, sees the mark or is seen first), or the overflow
    /// list by its flag.
    fn mark(stripe: &Stripe, listed: u64, overflow: &mut Overflow) -> bool {
        let marked = stripe.slots.iter().any(|slot| {
            // Acquire: as in `lists`.
            slot.compare_exchange(listed, listed | WAITED, Acquire, Acquire).is_ok()
                || slot.load(Acquire) == listed | WAITED
        });
        let waits = marked || overflow.hashes.contains(&listed);
        overflow.waited |= waits && !marked;
        waits
    }
}
