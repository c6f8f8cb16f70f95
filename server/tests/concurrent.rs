//! Eight clients at once, each writing, overwriting and deleting its own keys and reading them
//! back: the final state matches what each wrote, on every backend and with a spill.

mod support;

use shardlru_server::{Backend, Config};
use std::collections::HashMap;
use support::{BACKENDS, Client, TestServer};

const CLIENTS: usize = 8;
const KEYS: usize = 50;
const ROUNDS: usize = 3;

/// Client `id`'s writes; returns its model of its keys (`None`: deleted).
async fn write_own_keys(mut client: Client, id: usize) -> HashMap<String, Option<Vec<u8>>> {
    let mut model = HashMap::new();
    for round in 0..ROUNDS {
        // Pipelined: a batch of sets (and deletes) in one write, then their replies.
        let mut request = Vec::new();
        let mut expected = Vec::new();
        for i in 0..KEYS {
            let key = format!("c{id}-k{i}");
            if (i + round) % 9 == 0 {
                let present = model.get(&key).is_some_and(Option::is_some);
                request.extend_from_slice(format!("delete {key}\r\n").as_bytes());
                expected.extend_from_slice(if present {
                    b"DELETED\r\n" as &[u8]
                } else {
                    b"NOT_FOUND\r\n"
                });
                model.insert(key, None);
            } else {
                let value = format!("client {id} key {i} round {round}").into_bytes();
                request
                    .extend_from_slice(format!("set {key} {id} 0 {}\r\n", value.len()).as_bytes());
                request.extend_from_slice(&value);
                request.extend_from_slice(b"\r\n");
                expected.extend_from_slice(b"STORED\r\n");
                model.insert(key, Some(value));
            }
        }
        client.expect(&request, &expected).await;
        // Read every key back: its own writes are visible to it at once.
        for (key, value) in &model {
            assert_eq!(client.get(key).await.as_ref(), value.as_ref(), "client {id}, {key}");
        }
    }
    model
}

async fn eight_clients(config: Config) {
    let label = format!("{:?}", (config.backend, config.spill.is_some()));
    let server = TestServer::start(config).await;
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let client = server.client().await;
        tasks.push(tokio::spawn(write_own_keys(client, id)));
    }
    let mut checker = server.client().await;
    for task in tasks {
        let model = task.await.expect("a client task panicked");
        for (key, value) in model {
            assert_eq!(checker.get(&key).await, value, "{label}: {key}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_on_every_backend() {
    for backend in BACKENDS {
        eight_clients(Config { backend, ..Config::default() }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_on_a_spilled_cache() {
    let dir = tempfile::tempdir().unwrap();
    // Room for about 100 of the 400 keys: most reads go to disk.
    let config = Config {
        backend: Backend::Shardlru,
        memory_limit: 100 * 240,
        spill: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    eight_clients(config).await;
}
