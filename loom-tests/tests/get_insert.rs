//! `get` and `insert` racing on one key: every value inserted either is returned as the old
//! value by the insert that replaced it or is the one left resident, exactly once; every value
//! any call sees is whole (each value carries a check word a torn write would break) and belongs
//! to the key asked for. Each call decides and acts under one hold of the shard lock; these
//! models fail if a lookup's answer were used after the lock was let go.
#![cfg(loom)]

use loom::thread;
use loom_tests::{Arc, builder, run_model};

/// The model's one key.
const KEY: u32 = 7;

/// A value and its check word: a value read half-written would not match.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Versioned {
    version: u32,
    check: u32,
}

impl Versioned {
    fn new(version: u32) -> Self {
        Self { version, check: !version }
    }

    fn assert_whole(self) -> u32 {
        assert_eq!(self.check, !self.version, "torn value {self:?}");
        self.version
    }
}

#[test]
fn get_and_insert_on_one_key() {
    run_model("get_insert::get_and_insert_on_one_key", || {
        let cache = Arc::new(builder(2, 1).build().unwrap());
        cache.insert(KEY, Versioned::new(0));

        let writer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.insert(KEY, Versioned::new(1)))
        };
        let reader_writer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let seen = cache.get(&KEY).expect("a key being replaced is never missing");
                (seen.assert_whole(), cache.insert(KEY, Versioned::new(2)))
            })
        };
        let replaced_first = writer.join().unwrap().expect("the key was present").assert_whole();
        let (seen, replaced_second) = reader_writer.join().unwrap();
        let replaced_second = replaced_second.expect("the key was present").assert_whole();
        let resident = cache.get(&KEY).expect("the key is resident").assert_whole();

        // Values 0, 1 and 2 each left exactly once: handed back by an insert, or resident.
        let mut left = [replaced_first, replaced_second, resident];
        left.sort_unstable();
        assert_eq!(left, [0, 1, 2], "a value was lost or handed back twice");
        // The get is ordered with the inserts: it saw 0 (before the first insert) or 1 (after
        // it, before its own thread's insert, which then replaced 1).
        match seen {
            0 => {}
            1 => assert_eq!(replaced_second, 1, "the get saw 1, but its insert replaced another"),
            _ => panic!("the get saw {seen}, which no insert had written before it"),
        }
        assert_eq!(cache.len(), 1);
    });
}

/// Two inserts of a key that is not there yet: exactly one installs it, the other replaces
/// that value and gets it back (the single-flight rule of seed 004).
#[test]
fn inserts_of_an_absent_key() {
    run_model("get_insert::inserts_of_an_absent_key", || {
        let cache = Arc::new(builder(2, 1).build().unwrap());
        let inserts: Vec<_> = [1, 2]
            .into_iter()
            .map(|version| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || cache.insert(KEY, Versioned::new(version)))
            })
            .collect();
        let replaced: Vec<_> = inserts
            .into_iter()
            .map(|thread| thread.join().unwrap().map(Versioned::assert_whole))
            .collect();
        let resident = cache.get(&KEY).expect("the key is resident").assert_whole();

        assert_eq!(cache.len(), 1, "the key is in the cache twice");
        // One insert found nothing; the other replaced its value, which is not the one left.
        match replaced[..] {
            [None, Some(first)] | [Some(first), None] => {
                assert_eq!(first + resident, 3, "replaced {first}, left {resident}")
            }
            _ => panic!("inserts of an absent key returned {replaced:?}"),
        }
    });
}

/// A `get` races an insert that evicts its key and recycles the key's slab node for another
/// key: the get returns the key's own value or nothing, never the other key's.
#[test]
fn get_races_an_evicting_insert() {
    /// The key that evicts [`KEY`].
    const OTHER: u32 = 8;
    run_model("get_insert::get_races_an_evicting_insert", || {
        let cache = Arc::new(builder(1, 1).build().unwrap());
        cache.insert(KEY, Versioned::new(KEY));

        let reader = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.get(&KEY).map(Versioned::assert_whole))
        };
        let evicter = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.insert(OTHER, Versioned::new(OTHER)))
        };
        let seen = reader.join().unwrap();
        assert_eq!(evicter.join().unwrap(), None);

        assert!(matches!(seen, None | Some(KEY)), "get(&{KEY}) returned the value of key {seen:?}");
        assert_eq!(cache.peek(&OTHER).map(Versioned::assert_whole), Some(OTHER));
        assert_eq!(cache.len(), 1);
    });
}
