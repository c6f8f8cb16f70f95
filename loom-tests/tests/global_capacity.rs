//! One capacity for the whole cache (shardlru's `cache.rs`: `reserve`, `release`,
//! `victim_shard`, `evict_from`): an insert claims its weight from the cache-wide total with a
//! compare-exchange before it stores anything, and an insert into a full cache evicts, one
//! shard lock at a time, the entry the eviction scope chooses from the shards' published tail
//! stamps, re-checked under the victim shard's lock. Every call ends within the capacity, no
//! claimed weight leaks, and each entry stays or reaches the callback exactly once.
#![cfg(loom)]

use loom_tests::{assert_settled, builder, keys_in_shard, ledger_cache, run_model, spawn_on};
use shardlru::EvictionScope;

/// Two inserts into different shards race for the last free place of the cache: one takes it,
/// the other evicts the least recent entry of the whole cache (`Global` scope), so exactly one
/// entry leaves and the total weight ends at the capacity, never above it.
#[test]
fn two_inserters_race_for_the_last_slot() {
    run_model("global_capacity::two_inserters_race_for_the_last_slot", || {
        let [old, a] = keys_in_shard::<2>(0, 2);
        let [young, b] = keys_in_shard::<2>(1, 2);
        let builder = builder(3, 2).eviction_scope(EvictionScope::Global);
        let (cache, ledger) = ledger_cache(builder, &[old, young, a, b]);
        cache.insert(old, 0);
        cache.insert(young, 0);

        let inserters = [a, b].map(|key| spawn_on(&cache, move |c| c.insert(key, 1)));
        for thread in inserters {
            assert_eq!(thread.join().unwrap(), None);
        }

        assert_settled(&cache);
        assert_eq!((cache.len(), cache.weight()), (3, 3), "a claimed place leaked");
        assert_eq!(ledger.count(old), 1, "the least recent entry of the cache did not leave");
        ledger.assert_each_key_once(&cache);
        assert_eq!(cache.stats().evictions, 1);
    });
}

/// An insert into a full cache chooses the shard whose published tail is the oldest while a hit
/// touches that tail. The choice is re-checked under the victim shard's lock, after its drain,
/// so an entry that a hit found is spared by an eviction that comes after the hit. Stamps order
/// the accesses of one thread across shards (and those chained through a shard), not accesses
/// of unrelated threads: the reader inserts the other candidate itself, before its hit, so that
/// the hit is the later access in every execution.
#[test]
fn victim_choice_races_a_touch_of_the_tail() {
    run_model("global_capacity::victim_choice_races_a_touch_of_the_tail", || {
        let [old] = keys_in_shard::<1>(0, 2);
        let [young, new] = keys_in_shard::<2>(1, 2);
        let builder = builder(2, 2).eviction_scope(EvictionScope::Global);
        let (cache, ledger) = ledger_cache(builder, &[old, young, new]);
        cache.insert(old, 0); // shard 0's published tail, stale once the hit touches it

        let reader = spawn_on(&cache, move |c| {
            c.insert(young, 0);
            c.get(&old)
        });
        let inserter = spawn_on(&cache, move |c| c.insert(new, 1));
        let seen = reader.join().unwrap();
        assert_eq!(inserter.join().unwrap(), None);

        assert_settled(&cache);
        if seen.is_some() {
            assert!(cache.contains_key(&old), "get(&old) found it, then an eviction took it");
        }
        ledger.assert_each_key_once(&cache);
        assert_eq!((cache.len(), ledger.total()), (2, 1));
    });
}

/// An insert into a full cache races the removal of the entry it would evict, under the `Global`
/// and the `TwoChoices` scopes: the removal frees the place (the insert then evicts nothing),
/// or the insert evicts the entry first (the removal then finds nothing), or the insert finds
/// its chosen shard empty and chooses again. Every entry leaves once, by one route.
#[test]
fn victim_choice_races_a_removal_of_the_tail() {
    for scope in [EvictionScope::Global, EvictionScope::TwoChoices] {
        run_model("global_capacity::victim_choice_races_a_removal_of_the_tail", move || {
            let [old] = keys_in_shard::<1>(0, 2);
            let [young, new] = keys_in_shard::<2>(1, 2);
            let (cache, ledger) =
                ledger_cache(builder(2, 2).eviction_scope(scope), &[old, young, new]);
            cache.insert(old, 0);
            cache.insert(young, 0);

            let remover = spawn_on(&cache, move |c| c.remove(&old));
            let inserter = spawn_on(&cache, move |c| c.insert(new, 1));
            let removed = remover.join().unwrap();
            assert_eq!(inserter.join().unwrap(), None);

            assert_settled(&cache);
            let delivered = ledger.count(old);
            assert_eq!(
                usize::from(removed.is_some()) + delivered,
                1,
                "{scope:?}: `old` removed {removed:?} and delivered {delivered} times"
            );
            assert!(cache.contains_key(&new), "{scope:?}: the insert's entry is missing");
            assert_eq!(ledger.count(young) + usize::from(cache.contains_key(&young)), 1);
        });
    }
}
