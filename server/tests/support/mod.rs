//! What the integration tests share: a server started in-process on a free port, and a small
//! client that speaks the text protocol with a timeout on every read.

// Each test file uses a part of this module.
#![allow(dead_code)]

use shardlru_server::{Backend, Config};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for any one reply before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Every backend, for tests that hold for all of them.
pub const BACKENDS: [Backend; 3] = [Backend::Shardlru, Backend::MutexLru, Backend::DashMap];

/// A server running in this process until `stop`.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), shardlru_server::Error>>>,
}

impl TestServer {
    /// Starts a server with `config` on 127.0.0.1, port 0.
    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(shardlru_server::run(listener, config, stopped));
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    /// A server with the default configuration on `backend`.
    pub async fn with_backend(backend: Backend) -> Self {
        Self::start(Config { backend, ..Config::default() }).await
    }

    /// A new client connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        drop(self.stop.take());
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
            .expect("the server returns Ok");
    }
}

/// A protocol client: writes requests, reads replies line by line.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (reader, writer) = stream.into_split();
        Self { reader: BufReader::new(reader), writer }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Reads exactly `len` bytes.
    pub async fn read_exact(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        tokio::time::timeout(TIMEOUT, self.reader.read_exact(&mut buf))
            .await
            .expect("a reply in time")
            .expect("read");
        buf
    }

    /// Reads one line, `\r\n` included (empty at end of stream).
    pub async fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        tokio::time::timeout(TIMEOUT, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("a reply in time")
            .expect("read");
        line
    }

    /// Sends `request` and checks that the reply is exactly `expected`.
    pub async fn expect(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request).await;
        let reply = self.read_exact(expected.len()).await;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// Whether the server closed the connection: the next read finds the end of the stream.
    pub async fn is_closed(&mut self) -> bool {
        self.read_line().await.is_empty()
    }

    /// `set key 0 0 <len>` and its `STORED`.
    pub async fn set(&mut self, key: &str, value: &[u8]) {
        let mut request = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.expect(&request, b"STORED\r\n").await;
    }

    /// Reads the `VALUE` blocks of a `get`/`gets` up to `END`: (key, flags, value, cas).
    pub async fn read_values(&mut self) -> Vec<(String, u32, Vec<u8>, Option<u64>)> {
        let mut values = Vec::new();
        loop {
            let line = self.read_line().await;
            if line == b"END\r\n" {
                return values;
            }
            let text = String::from_utf8(line).expect("a VALUE line is text here");
            let fields: Vec<&str> = text.trim_end().split(' ').collect();
            assert!(matches!(fields.len(), 4 | 5) && fields[0] == "VALUE", "bad line {text:?}");
            let len: usize = fields[3].parse().expect("length");
            let mut data = self.read_exact(len + 2).await;
            assert_eq!(&data[len..], b"\r\n", "data block of {text:?}");
            data.truncate(len);
            let cas = fields.get(4).map(|cas| cas.parse().expect("cas"));
            values.push((fields[1].to_string(), fields[2].parse().expect("flags"), data, cas));
        }
    }

    /// `get key`: its value, if any.
    pub async fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes()).await;
        let mut values = self.read_values().await;
        assert!(values.len() <= 1);
        values.pop().map(|(_, _, value, _)| value)
    }

    /// `stats`, as a map.
    pub async fn stats(&mut self) -> HashMap<String, String> {
        self.send(b"stats\r\n").await;
        let mut stats = HashMap::new();
        loop {
            let line = String::from_utf8(self.read_line().await).expect("stats are text");
            if line == "END\r\n" {
                return stats;
            }
            let mut fields = line.trim_end().splitn(3, ' ');
            assert_eq!(fields.next(), Some("STAT"), "bad stats line {line:?}");
            let name = fields.next().expect("a name").to_string();
            stats.insert(name, fields.next().expect("a value").to_string());
        }
    }

    /// One statistic as a number.
    pub async fn stat(&mut self, name: &str) -> u64 {
        self.stats().await[name].parse().expect("a number")
    }
}

/// Polls `stat` on a fresh connection of `server` until it equals `expected` (counting the
/// polling connection itself where the statistic counts connections), or fails after the
/// timeout.
pub async fn wait_for_stat(client: &mut Client, name: &str, expected: u64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let value = client.stat(name).await;
        if value == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} stays {value}, not {expected}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
