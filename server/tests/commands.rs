//! Every command, on every backend, with memcached's replies; pipelining, multi-get, noreply and
//! binary-safe values.

mod support;

use shardlru_server::{Backend, Config, ITEM_OVERHEAD};
use support::{BACKENDS, TestServer};

#[tokio::test]
async fn storage_commands() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        client.expect(b"set a 5 0 3\r\nabc\r\n", b"STORED\r\n").await;
        client.expect(b"get a\r\n", b"VALUE a 5 3\r\nabc\r\nEND\r\n").await;
        client.expect(b"set a 4294967295 0 0\r\n\r\n", b"STORED\r\n").await;
        client.expect(b"get a\r\n", b"VALUE a 4294967295 0\r\n\r\nEND\r\n").await;

        client.expect(b"add a 0 0 1\r\nx\r\n", b"NOT_STORED\r\n").await;
        client.expect(b"add b 1 0 2\r\nbb\r\n", b"STORED\r\n").await;
        client.expect(b"get b\r\n", b"VALUE b 1 2\r\nbb\r\nEND\r\n").await;

        client.expect(b"replace c 0 0 1\r\nc\r\n", b"NOT_STORED\r\n").await;
        client.expect(b"replace b 2 0 3\r\nBBB\r\n", b"STORED\r\n").await;
        client.expect(b"get b\r\n", b"VALUE b 2 3\r\nBBB\r\nEND\r\n").await;
        client.expect(b"get c\r\n", b"END\r\n").await;
        server.stop().await;
    }
}

#[tokio::test]
async fn gets_reports_a_cas_that_grows_with_each_store() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        client.set("k", b"one").await;
        client.send(b"gets k\r\n").await;
        let first = client.read_values().await;
        client.set("k", b"two").await;
        client.send(b"gets k\r\n").await;
        let second = client.read_values().await;
        let (Some(first), Some(second)) = (first[0].3, second[0].3) else {
            panic!("gets carries a cas: {first:?} {second:?}")
        };
        assert!(second > first, "{backend}");
        server.stop().await;
    }
}

#[tokio::test]
async fn delete_touch_flush_version() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        client.set("a", b"1").await;
        client.set("b", b"2").await;
        client.expect(b"delete a\r\n", b"DELETED\r\n").await;
        client.expect(b"delete a\r\n", b"NOT_FOUND\r\n").await;
        client.expect(b"delete b 0\r\n", b"DELETED\r\n").await;
        client.expect(b"get a b\r\n", b"END\r\n").await;

        client.set("t", b"x").await;
        client.expect(b"touch t 0\r\n", b"TOUCHED\r\n").await;
        client.expect(b"touch nope 0\r\n", b"NOT_FOUND\r\n").await;

        client.set("f", b"x").await;
        client.expect(b"flush_all\r\n", b"OK\r\n").await;
        client.expect(b"get f t\r\n", b"END\r\n").await;
        client.expect(b"flush_all 0\r\n", b"OK\r\n").await;

        let version = format!("VERSION 1.4.39-shardlru-server-{}\r\n", env!("CARGO_PKG_VERSION"));
        client.expect(b"version\r\n", version.as_bytes()).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn quit_answers_what_came_before_and_closes() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    client
        .expect(
            b"set q 0 0 1\r\nq\r\nget q\r\nquit\r\nget q\r\n",
            b"STORED\r\nVALUE q 0 1\r\nq\r\nEND\r\n",
        )
        .await;
    assert!(client.is_closed().await);
    server.stop().await;
}

#[tokio::test]
async fn exptime_other_than_zero_is_refused() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    let refused = b"CLIENT_ERROR exptime not supported: items never expire here, use 0\r\n";
    // The data block is swallowed, not read as a command.
    client.expect(b"set k 0 60 5\r\nget k\r\n", refused).await;
    client.expect(b"get k\r\n", b"END\r\n").await;
    client.expect(b"add k 0 -1 1\r\nx\r\n", refused).await;
    client.expect(b"touch k 10\r\n", refused).await;
    client
        .expect(b"flush_all 10\r\n", b"CLIENT_ERROR flush_all delay not supported, use 0\r\n")
        .await;
    server.stop().await;
}

#[tokio::test]
async fn noreply_silences_the_replies() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        client
            .send(
                b"set a 0 0 1 noreply\r\na\r\nadd a 0 0 1 noreply\r\nb\r\nadd b 0 0 1 noreply\r\nb\r\n\
                  replace b 0 0 1 noreply\r\nB\r\nreplace c 0 0 1 noreply\r\nc\r\n\
                  delete a noreply\r\ndelete a 0 noreply\r\ntouch b 0 noreply\r\n",
            )
            .await;
        // The only reply is the get's.
        client.expect(b"get a b c\r\n", b"VALUE b 0 1\r\nB\r\nEND\r\n").await;
        client.expect(b"flush_all noreply\r\nget b\r\n", b"END\r\n").await;
        // Errors are answered all the same.
        client
            .expect(
                b"set a 0 9 1 noreply\r\na\r\n",
                b"CLIENT_ERROR exptime not supported: items never expire here, use 0\r\n",
            )
            .await;
        server.stop().await;
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        let mut request = Vec::new();
        let mut expected = Vec::new();
        for i in 0..200 {
            request.extend_from_slice(
                format!("set key{i} {i} 0 {}\r\nvalue{i}\r\n", format!("value{i}").len())
                    .as_bytes(),
            );
            expected.extend_from_slice(b"STORED\r\n");
            request.extend_from_slice(format!("get key{i}\r\n").as_bytes());
            expected.extend_from_slice(
                format!("VALUE key{i} {i} {}\r\nvalue{i}\r\nEND\r\n", format!("value{i}").len())
                    .as_bytes(),
            );
            if i % 10 == 0 {
                request.extend_from_slice(
                    format!("delete key{i}\r\nget key{i}\r\nbogus\r\n").as_bytes(),
                );
                expected.extend_from_slice(b"DELETED\r\nEND\r\nERROR\r\n");
            }
        }
        // One write; the replies come back in request order.
        client.expect(&request, &expected).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn multi_get_returns_the_keys_found_in_order() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        for i in (0..100).step_by(2) {
            client.set(&format!("k{i}"), format!("v{i}").as_bytes()).await;
        }
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        client.send(format!("get {}\r\n", keys.join(" ")).as_bytes()).await;
        let values = client.read_values().await;
        let expected: Vec<_> =
            (0..100).step_by(2).map(|i| (format!("k{i}"), format!("v{i}").into_bytes())).collect();
        let got: Vec<_> = values.into_iter().map(|(key, _, value, _)| (key, value)).collect();
        assert_eq!(got, expected, "{backend}");
        // A repeated key is answered each time, as memcached does.
        client
            .expect(b"get k0 k0\r\n", b"VALUE k0 0 2\r\nv0\r\nVALUE k0 0 2\r\nv0\r\nEND\r\n")
            .await;
        server.stop().await;
    }
}

#[tokio::test]
async fn values_are_binary_safe() {
    for backend in BACKENDS {
        let server = TestServer::with_backend(backend).await;
        let mut client = server.client().await;
        let value: Vec<u8> =
            b"\r\n\0END\r\nVALUE x 0 1\r\n\xff\xfe".iter().copied().chain(0..=255).collect();
        client.set("bin", &value).await;
        assert_eq!(client.get("bin").await, Some(value.clone()), "{backend}");
        // A value of exactly the item size limit is accepted.
        let big = vec![b'\n'; shardlru_server::protocol::DEFAULT_MAX_ITEM_SIZE];
        client.set("big", &big).await;
        assert_eq!(client.get("big").await, Some(big));
        server.stop().await;
    }
}

#[tokio::test]
async fn stats_reports_memcached_and_shardlru_fields() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    client.set("a", b"12345").await;
    client.expect(b"get a b\r\n", b"VALUE a 0 5\r\n12345\r\nEND\r\n").await;
    let stats = client.stats().await;
    for name in [
        "pid",
        "uptime",
        "time",
        "version",
        "curr_connections",
        "total_connections",
        "cmd_get",
        "cmd_set",
        "get_hits",
        "get_misses",
        "curr_items",
        "bytes",
        "limit_maxbytes",
        "evictions",
        "threads",
        "queued",
        "queued_peak",
        "lock_contended",
        "lock_contention",
        "delivered",
    ] {
        assert!(stats.contains_key(name), "no {name} in {stats:?}");
    }
    let number = |name: &str| stats[name].parse::<u64>().unwrap();
    assert_eq!(number("pid"), u64::from(std::process::id()));
    assert_eq!((number("cmd_get"), number("get_hits"), number("get_misses")), (2, 1, 1));
    assert_eq!((number("cmd_set"), number("curr_items")), (1, 1));
    assert_eq!(number("bytes"), 1 + 5 + ITEM_OVERHEAD);
    assert_eq!(number("limit_maxbytes"), Config::default().memory_limit);
    assert_eq!(number("curr_connections"), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_memory_limit_evicts_the_least_recently_used() {
    for backend in [Backend::Shardlru, Backend::MutexLru] {
        let item = 100 + 2 + ITEM_OVERHEAD; // a 2-byte key and a 100-byte value
        let config = Config {
            backend,
            memory_limit: 10 * item,
            shards: (backend == Backend::Shardlru).then_some(1),
            ..Config::default()
        };
        let server = TestServer::start(config).await;
        let mut client = server.client().await;
        let value = [b'v'; 100];
        for i in 0..10 {
            client.set(&format!("k{i}"), &value).await;
        }
        assert!(client.get("k0").await.is_some()); // now the most recent
        client.set("kx", &value).await; // evicts k1
        assert_eq!(client.get("k1").await, None, "{backend}");
        assert!(client.get("k0").await.is_some(), "{backend}");
        let stats = client.stats().await;
        assert_eq!(stats["evictions"], "1", "{backend}");
        assert_eq!(stats["curr_items"], "10", "{backend}");
        // Heavier than the whole limit: not stored, and a set drops the old value.
        let too_heavy = vec![b'h'; (10 * item) as usize];
        let mut request = format!("set k0 0 0 {}\r\n", too_heavy.len()).into_bytes();
        request.extend_from_slice(&too_heavy);
        request.extend_from_slice(b"\r\n");
        client.expect(&request, b"SERVER_ERROR out of memory storing object\r\n").await;
        assert_eq!(client.get("k0").await, None, "{backend}");
        server.stop().await;
    }
}
