//! `--spill`: with a memory limit far below the data, every key stays readable with its newest
//! value, deleted keys stay deleted, and flush_all empties the disk too.

mod support;

use shardlru_server::{Config, ITEM_OVERHEAD};
use std::collections::HashMap;
use support::{Client, TestServer};
use tempfile::TempDir;

/// A server whose memory holds about `items` items of ~100 bytes, spilling to a temporary
/// directory (returned, to live as long as the server).
async fn spilled(items: u64) -> (TestServer, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        memory_limit: items * (110 + ITEM_OVERHEAD),
        spill: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    (TestServer::start(config).await, dir)
}

/// Checks every key of `model` (`None`: deleted) with one multi-get per 50 keys.
async fn check(client: &mut Client, model: &HashMap<String, Option<Vec<u8>>>) {
    let mut keys: Vec<&String> = model.keys().collect();
    keys.sort();
    for chunk in keys.chunks(50) {
        let line = chunk.iter().map(|key| key.as_str()).collect::<Vec<_>>().join(" ");
        client.send(format!("get {line}\r\n").as_bytes()).await;
        let got: HashMap<String, Vec<u8>> =
            client.read_values().await.into_iter().map(|(key, _, value, _)| (key, value)).collect();
        for key in chunk {
            assert_eq!(got.get(*key), model[*key].as_ref(), "key {key}");
        }
    }
}

#[tokio::test]
async fn every_key_keeps_its_newest_value() {
    let (server, _dir) = spilled(20).await;
    let mut client = server.client().await;
    let mut model = HashMap::new();
    for round in 0..3 {
        for i in 0..200 {
            let key = format!("key{i}");
            if round > 0 && i % 7 == round {
                let present = model.get(&key).is_some_and(Option::is_some);
                let reply: &[u8] = if present { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" };
                client.expect(format!("delete {key}\r\n").as_bytes(), reply).await;
                model.insert(key, None);
            } else if i % 5 != round {
                let value = format!("{key} round {round} {}", "x".repeat(80)).into_bytes();
                client.set(&key, &value).await;
                model.insert(key, Some(value));
            }
        }
    }
    check(&mut client, &model).await;
    // Twice: what the first pass read back was cached again, and evicted again.
    check(&mut client, &model).await;
    let stats = client.stats().await;
    let number = |name: &str| stats[name].parse::<u64>().unwrap();
    assert!(number("evictions") > 400, "{stats:?}");
    assert!(number("spill_writes") > 250 && number("spill_hits") > 250, "{stats:?}");
    assert!(number("spill_tombstones") > 0, "{stats:?}");
    assert_eq!(number("spill_errors"), 0);
    assert!(number("bytes") <= number("limit_maxbytes"));
    server.stop().await;
}

#[tokio::test]
async fn a_reloaded_item_keeps_its_flags_and_cas() {
    let (server, _dir) = spilled(10).await;
    let mut client = server.client().await;
    client.expect(b"set k 42 0 5\r\nvalue\r\n", b"STORED\r\n").await;
    client.send(b"gets k\r\n").await;
    let before = client.read_values().await;
    for i in 0..100 {
        client.set(&format!("filler{i}"), &[b'f'; 100]).await;
    }
    client.send(b"gets k\r\n").await;
    assert_eq!(client.read_values().await, before);
    assert!(client.stat("spill_hits").await >= 1);
    server.stop().await;
}

#[tokio::test]
async fn add_and_replace_see_spilled_items() {
    let (server, _dir) = spilled(10).await;
    let mut client = server.client().await;
    let evict = async |client: &mut Client| {
        for i in 0..50 {
            client.set(&format!("filler{i}"), &[b'f'; 100]).await;
        }
    };
    client.set("k", b"old").await;
    evict(&mut client).await;
    client.expect(b"add k 0 0 3\r\nnew\r\n", b"NOT_STORED\r\n").await;
    evict(&mut client).await;
    client.expect(b"replace k 0 0 3\r\nnew\r\n", b"STORED\r\n").await;
    evict(&mut client).await;
    assert_eq!(client.get("k").await, Some(b"new".to_vec()));
    evict(&mut client).await;
    client.expect(b"delete k\r\n", b"DELETED\r\n").await;
    evict(&mut client).await;
    client.expect(b"replace k 0 0 1\r\nr\r\n", b"NOT_STORED\r\n").await;
    client.expect(b"add k 0 0 3\r\nadd\r\n", b"STORED\r\n").await;
    evict(&mut client).await;
    assert_eq!(client.get("k").await, Some(b"add".to_vec()));
    server.stop().await;
}

#[tokio::test]
async fn items_heavier_than_the_memory_go_to_disk() {
    let (server, _dir) = spilled(2).await;
    let mut client = server.client().await;
    let heavy = vec![b'h'; 10_000];
    client.set("heavy", &heavy).await;
    assert_eq!(client.get("heavy").await, Some(heavy));
    server.stop().await;
}

#[tokio::test]
async fn flush_all_empties_the_disk_too() {
    let (server, _dir) = spilled(10).await;
    let mut client = server.client().await;
    for i in 0..100 {
        client.set(&format!("key{i}"), &[b'v'; 100]).await;
    }
    client.expect(b"flush_all\r\n", b"OK\r\n").await;
    let model = (0..100).map(|i| (format!("key{i}"), None)).collect();
    check(&mut client, &model).await;
    client.set("key1", b"after").await;
    assert_eq!(client.get("key1").await, Some(b"after".to_vec()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_of_one_key_leave_one_of_their_last_values() {
    let (server, _dir) = spilled(8).await;
    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut client = server.client().await;
        writers.push(tokio::spawn(async move {
            for n in 0..50 {
                client.set("hot", format!("writer {writer} value {n}").as_bytes()).await;
                // Other keys push "hot" out to disk now and then.
                client.set(&format!("w{writer}-{}", n % 10), &[b'f'; 100]).await;
                let seen = client.get("hot").await.expect("hot is never lost");
                assert!(seen.starts_with(b"writer "), "{seen:?}");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut client = server.client().await;
    let last = String::from_utf8(client.get("hot").await.unwrap()).unwrap();
    assert!((0..4).any(|writer| last == format!("writer {writer} value 49")), "{last}");
    server.stop().await;
}
