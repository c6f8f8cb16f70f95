//! The read-mode hit protocol (shardlru's `recency.rs`): a hit on a busy shard takes the lock
//! in read mode and records its touch with read-modify-writes (a stamp from the shard's clock,
//! `fetch_max` on the node's stamp, a log slot on the node's first touch since the drain); the
//! next write drains the touches into the list. Each model runs a third thread that only peeks
//! (read mode, no recency change), so that a hit finds the lock held and joins it in read mode
//! beside another reader. After the threads join, the order must be the exact order of last use
//! for some order of the calls consistent with each thread's, and every shard invariant holds
//! (`Cache::validate`: the log and the stamps agree, no node logged twice, stamps strictly
//! decreasing after a drain).
#![cfg(loom)]

use loom_tests::{Arc, TestCache, builder, run_model, spawn_on};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The keys, in order of the cache's contents: most recent first.
fn order(cache: &TestCache) -> Vec<u32> {
    cache.snapshot().into_iter().map(|(key, _)| key).collect()
}

/// Whether some execution ran a hit in read mode (found the lock held and joined the readers),
/// so that a model cannot pass without exercising the protocol it is about. A std atomic: loom
/// does not see it, and it outlives the executions.
fn saw_shared_hits(cache: &TestCache, seen: &AtomicBool) {
    if cache.stats().lock_contended > 0 {
        seen.store(true, Relaxed);
    }
}

/// Two readers touch one node (and one of them another node first): the node is logged once,
/// its stamp is the newer of the two, and the drain puts it first. `A` was last used after `B`
/// in every order of the calls (the second thread gets `B`, then `A`), so the order is exactly
/// `A, B, C`.
#[test]
fn two_readers_touch_one_node() {
    static SHARED: AtomicBool = AtomicBool::new(false);
    run_model("recency::two_readers_touch_one_node", || {
        let cache = Arc::new(builder(3, 1).build().unwrap());
        for key in [3, 2, 1] {
            cache.insert(key, key); // the order is 1, 2, 3
        }
        let first = spawn_on(&cache, |cache| cache.get(&3));
        let second = spawn_on(&cache, |cache| (cache.get(&2), cache.get(&3)));
        let peeker = spawn_on(&cache, |cache| cache.peek(&1));
        assert_eq!(first.join().unwrap(), Some(3));
        assert_eq!(second.join().unwrap(), (Some(2), Some(3)));
        assert_eq!(peeker.join().unwrap(), Some(1));

        saw_shared_hits(&cache, &SHARED);
        cache.validate();
        assert_eq!(order(&cache), [3, 2, 1], "a touch was lost or applied out of order");
    });
    assert!(SHARED.load(Relaxed), "no execution ran a hit in read mode");
}

/// A hit in read mode races an insert into the full cache, which drains the touches and then
/// evicts the least recent entry. The hit is ordered with the drain by the lock: it either
/// found its key before the insert (and the touch saved it: the other entry left) or found it
/// gone.
#[test]
fn reader_races_a_draining_eviction() {
    static SHARED: AtomicBool = AtomicBool::new(false);
    run_model("recency::reader_races_a_draining_eviction", || {
        let cache = Arc::new(builder(2, 1).build().unwrap());
        cache.insert(1, 1); // least recent
        cache.insert(2, 2);
        let reader = spawn_on(&cache, |cache| cache.get(&1));
        let inserter = spawn_on(&cache, |cache| cache.insert(3, 3));
        let peeker = spawn_on(&cache, |cache| cache.peek(&2));
        let seen = reader.join().unwrap();
        assert_eq!(inserter.join().unwrap(), None);
        peeker.join().unwrap();

        saw_shared_hits(&cache, &SHARED);
        cache.validate();
        let expected: &[u32] = match seen {
            // The touch came first: 2 became the least recent entry and left.
            Some(1) => &[3, 1],
            None => &[3, 2],
            Some(other) => panic!("get(&1) returned {other}"),
        };
        assert_eq!(order(&cache), expected, "the eviction ignored a touch (get saw {seen:?})");
    });
    assert!(SHARED.load(Relaxed), "no execution ran a hit in read mode");
}

/// A hit in read mode races the removal of another entry, which moves the touched node to the
/// removed one's place in the slab, and an insert that takes the place the move freed. The
/// touch follows its entry, not its old place: the entry it touched ends before the untouched
/// one, and the new entry is placed by when the hit ran.
#[test]
fn reader_races_the_move_of_its_node() {
    static SHARED: AtomicBool = AtomicBool::new(false);
    run_model("recency::reader_races_the_move_of_its_node", || {
        let cache = Arc::new(builder(3, 1).build().unwrap());
        for key in [1, 2, 3] {
            cache.insert(key, key); // the order is 3, 2, 1; 3 holds the slab's last node
        }
        let reader = spawn_on(&cache, |cache| cache.get(&3));
        let writer = spawn_on(&cache, |cache| {
            let removed = cache.remove(&2); // the last node (3's) moves into 2's place
            (removed, cache.insert(4, 4)) // and 4 takes the last node
        });
        let peeker = spawn_on(&cache, |cache| cache.peek(&1));
        assert_eq!(reader.join().unwrap(), Some(3));
        assert_eq!(writer.join().unwrap(), (Some(2), None));
        peeker.join().unwrap();

        saw_shared_hits(&cache, &SHARED);
        cache.validate();
        // The hit came before the insert, or after it.
        let order = order(&cache);
        assert!(
            order == [4, 3, 1] || order == [3, 4, 1],
            "a touch stayed with the node's old place: {order:?}"
        );
    });
    assert!(SHARED.load(Relaxed), "no execution ran a hit in read mode");
}
