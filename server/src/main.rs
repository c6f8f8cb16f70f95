//! `shardlru-server`: the command line, the tokio runtime, and ctrl-c (or SIGTERM) as the
//! shutdown signal.
//!
//! The flags are memcached's where it has one (`-p`, `-l`, `-m`, `-t`, `-c`, `-I`), plus the
//! store's (`--backend`, `--shards`, `--spill`). The store is built before the port is bound,
//! and the first line on stdout is `listening on <address>`, once the socket is bound: with
//! `-p 0` it says which port the system chose, for scripts and tests to read.

use clap::Parser;
use shardlru_server::{Backend, Config, Store};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// The largest `-I`: memcached's own bound (1 GiB).
const MAX_ITEM_SIZE_LIMIT: usize = 1024 * 1024 * 1024;

/// A memcached-protocol server on shardlru.
#[derive(Debug, Parser)]
#[command(name = "shardlru-server", version, args_override_self = true)]
struct Cli {
    /// TCP port to listen on (0: any free port; the first line on stdout says which)
    #[arg(short = 'p', long = "port", default_value_t = 11211)]
    port: u16,

    /// Interface to listen on
    #[arg(short = 'l', long = "listen", value_name = "ADDR", default_value = "127.0.0.1")]
    listen: String,

    /// Memory for items, in megabytes: keys, values and a fixed overhead per item
    #[arg(short = 'm', long = "memory-limit", value_name = "MB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    memory_limit: u64,

    /// Worker threads of the runtime [default: available cores]
    #[arg(short = 't', long = "threads", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Most simultaneous connections; more wait to be accepted
    #[arg(short = 'c', long = "conn-limit", value_name = "N",
          default_value_t = shardlru_server::DEFAULT_MAX_CONNECTIONS,
          value_parser = positive)]
    max_connections: usize,

    /// Largest value accepted: bytes, or with a k or m suffix
    #[arg(short = 'I', long = "max-item-size", value_name = "SIZE", default_value = "1m",
          value_parser = item_size)]
    max_item_size: usize,

    /// Store: shardlru, mutex-lru (Mutex<lru::LruCache>, bounded like shardlru) or dashmap
    /// (unbounded)
    #[arg(long, value_name = "NAME", default_value = "shardlru")]
    backend: Backend,

    /// Shard count of the store: a power of two [default: the store's own]
    #[arg(long, value_name = "N", value_parser = positive)]
    shards: Option<usize>,

    /// Write evicted items to an on-disk store in DIR (recreated empty at start) and read them
    /// back on a miss (shardlru only)
    #[arg(long, value_name = "DIR")]
    spill: Option<PathBuf>,
}

/// A count of at least 1.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

/// `1048576`, `1024k`, `1m`: bytes, from 1 to 1 GiB.
fn item_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.strip_suffix(['k', 'K']) {
        Some(digits) => (digits, 1024),
        None => match text.strip_suffix(['m', 'M']) {
            Some(digits) => (digits, 1024 * 1024),
            None => (text, 1),
        },
    };
    let size = digits.parse::<usize>().map_err(|error| error.to_string())?;
    match size.checked_mul(unit) {
        Some(size @ 1..=MAX_ITEM_SIZE_LIMIT) => Ok(size),
        _ => Err(format!("must be from 1 byte to {MAX_ITEM_SIZE_LIMIT} bytes")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = cli.threads.map_or_else(shardlru_server::default_threads, usize::from);
    let config = Config {
        backend: cli.backend,
        memory_limit: cli.memory_limit * 1024 * 1024,
        max_item_size: cli.max_item_size,
        max_connections: cli.max_connections,
        shards: cli.shards,
        spill: cli.spill,
        threads,
    };
    match serve(&cli.listen, cli.port, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shardlru-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the store and the runtime, binds, announces the address, and serves until ctrl-c.
fn serve(host: &str, port: u16, config: Config) -> Result<(), shardlru_server::Error> {
    let store = Store::open(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .thread_name("shardlru-worker")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind((host, port)).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", listener.local_addr()?)?;
        stdout.flush()?;
        drop(stdout);
        shardlru_server::serve(listener, store, config, shutdown_signal()).await
    })
}

/// Completes on ctrl-c, or on SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
