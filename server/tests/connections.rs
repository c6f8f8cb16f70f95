//! The connection limit and graceful shutdown.

mod support;

use shardlru_server::{Backend, Config, SPILL_FILE};
use std::time::Duration;
use support::TestServer;

#[tokio::test]
async fn connections_past_the_limit_wait_for_a_slot() {
    let server = TestServer::start(Config { max_connections: 1, ..Config::default() }).await;
    let mut first = server.client().await;
    first.set("a", b"1").await;
    let mut second = server.client().await; // connected, not yet accepted
    second.send(b"get a\r\n").await;
    let waited = tokio::time::timeout(Duration::from_millis(100), second.read_line()).await;
    assert!(waited.is_err(), "the second connection is served only once the first closes");
    drop(first);
    let values = second.read_values().await;
    assert_eq!(values, [("a".to_string(), 0, b"1".to_vec(), None)]);
    assert_eq!(second.stat("total_connections").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_idle_connections_to_stop() {
    for backend in [Backend::Shardlru, Backend::MutexLru, Backend::DashMap] {
        let server = TestServer::with_backend(backend).await;
        let mut idle = server.client().await;
        idle.set("a", b"1").await;
        server.stop().await;
        assert!(idle.is_closed().await, "the handler stopped and closed its socket");
    }
}

#[tokio::test]
async fn shutdown_writes_the_backlog_to_the_spill() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        Config { memory_limit: 4096, spill: Some(dir.path().to_path_buf()), ..Config::default() };
    let server = TestServer::start(config).await;
    let mut client = server.client().await;
    for i in 0..200 {
        client.set(&format!("key{i}"), &[b'v'; 100]).await;
    }
    let evictions = client.stat("evictions").await;
    assert!(evictions > 150, "{evictions}");
    server.stop().await;
    // Every evicted item was written before `run` returned: one record each (distinct keys).
    let db = redb::Database::open(dir.path().join(SPILL_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(redb::TableDefinition::<&[u8], &[u8]>::new("items")).unwrap();
    assert_eq!(redb::ReadableTableMetadata::len(&table).unwrap(), evictions);
}
