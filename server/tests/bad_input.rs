//! Bad input gets memcached's replies, never a panic, and leaves the server serving others.

mod support;

use shardlru_server::protocol::{MAX_GET_LINE, MAX_LINE};
use shardlru_server::{Backend, Config};
use support::{TestServer, wait_for_stat};

#[tokio::test]
async fn unknown_commands_and_bad_lines() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    client.expect(b"bogus\r\n", b"ERROR\r\n").await;
    client.expect(b"\r\n", b"ERROR\r\n").await;
    client.expect(b"GET a\r\n", b"ERROR\r\n").await; // commands are lower case
    client.expect(b"get\r\n", b"ERROR\r\n").await;
    client.expect(b"set a 0 0\r\n", b"ERROR\r\n").await;
    client.expect(b"version now\r\n", b"ERROR\r\n").await;
    client.expect(b"delete a 5\r\n", b"CLIENT_ERROR bad command line format\r\n").await;
    client.expect(b"touch a soon\r\n", b"CLIENT_ERROR invalid exptime argument\r\n").await;
    let long_key = "k".repeat(251);
    client
        .expect(
            format!("get {long_key}\r\n").as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        )
        .await;
    // Still in step.
    client.set("a", b"ok").await;
    client.expect(b"get a\r\n", b"VALUE a 0 2\r\nok\r\nEND\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn non_numeric_or_negative_lengths() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    let bad = b"CLIENT_ERROR bad command line format\r\n";
    client.expect(b"set a 0 0 abc\r\n", bad).await;
    client.expect(b"set a 0 0 -1\r\n", bad).await;
    client.expect(b"set a 0 0 1x\r\n", bad).await;
    client.expect(b"set a 0 0 99999999999999999999\r\n", bad).await;
    // With the length unknown, a data block that follows is read as a command, as memcached
    // does.
    client
        .expect(b"set a 0 0 z\r\nhello\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n")
        .await;
    // Bad flags with a good length: the block is swallowed.
    client
        .expect(
            b"set a x 0 5\r\nhello\r\nget a\r\n",
            b"CLIENT_ERROR bad command line format\r\nEND\r\n",
        )
        .await;
    server.stop().await;
}

#[tokio::test]
async fn bad_data_chunk() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    // Longer than announced: the announced bytes and two more are consumed, the rest is read
    // as a command.
    client.expect(b"set a 0 0 3\r\nabcde\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n").await;
    // Shorter: the block runs into the next request.
    client
        .expect(b"set a 0 0 5\r\nab\r\nget a\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n")
        .await;
    client.expect(b"get a\r\n", b"END\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn too_large_values_are_swallowed_then_refused() {
    let config = Config { max_item_size: 1000, ..Config::default() };
    let server = TestServer::start(config).await;
    let mut client = server.client().await;
    let mut request = b"set big 0 0 100000\r\n".to_vec();
    // The value looks like commands: none of it is answered.
    request.extend(b"get x\r\n".iter().copied().cycle().take(100_000));
    request.extend_from_slice(b"\r\nget big\r\n");
    client.expect(&request, b"SERVER_ERROR object too large for cache\r\nEND\r\n").await;
    let mut exact = b"set ok 0 0 1000\r\n".to_vec();
    exact.extend_from_slice(&[b'x'; 1000]);
    exact.extend_from_slice(b"\r\n");
    client.expect(&exact, b"STORED\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn a_line_too_long_closes_the_connection() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut client = server.client().await;
    client.expect(&vec![b'x'; MAX_LINE + 10], b"CLIENT_ERROR line too long\r\n").await;
    assert!(client.is_closed().await);
    // A multi-get may be longer than MAX_LINE, up to MAX_GET_LINE.
    let mut other = server.client().await;
    let keys = vec!["key"; MAX_LINE].join(" ");
    other.expect(format!("get {keys}\r\n").as_bytes(), b"END\r\n").await;
    let mut get = b"get ".to_vec();
    get.resize(MAX_GET_LINE + 1, b'k');
    other.expect(&get, b"CLIENT_ERROR line too long\r\n").await;
    assert!(other.is_closed().await);
    let mut third = server.client().await;
    third.set("still", b"serving").await;
    server.stop().await;
}

#[tokio::test]
async fn binary_junk_never_panics() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for round in 0..20 {
        let mut client = server.client().await;
        let junk: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift: deterministic junk, with newlines, spaces and command words mixed in.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match state % 16 {
                    0 => b'\n',
                    1 => b' ',
                    2 => b'\r',
                    3 => b"sgda"[(state >> 8) as usize % 4],
                    _ => (state >> 24) as u8,
                }
            })
            .collect();
        client.send(&junk).await;
        // Whatever it answered, it answers this once the junk's requests are done (a junk
        // storage line may still wait for its data: the line below may complete it).
        client.send(b"\r\nversion\r\n").await;
        drop(client);
        let mut fresh = server.client().await;
        fresh.set("after", format!("round {round}").as_bytes()).await;
    }
    let mut client = server.client().await;
    assert_eq!(client.get("after").await, Some(b"round 19".to_vec()));
    server.stop().await;
}

#[tokio::test]
async fn a_client_gone_mid_value_leaves_others_served() {
    let server = TestServer::with_backend(Backend::Shardlru).await;
    let mut watcher = server.client().await;
    wait_for_stat(&mut watcher, "curr_connections", 1).await;
    let mut quitter = server.client().await;
    quitter.send(b"set half 0 0 100\r\nonly part of it").await;
    wait_for_stat(&mut watcher, "curr_connections", 2).await;
    drop(quitter);
    // The handler ends, and the count returns to what it was.
    wait_for_stat(&mut watcher, "curr_connections", 1).await;
    watcher.expect(b"get half\r\n", b"END\r\n").await;
    watcher.set("whole", b"value").await;
    server.stop().await;
}
