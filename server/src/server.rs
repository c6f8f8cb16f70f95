//! The listener and the per-connection handlers (mini-redis's `server.rs`, with pipelining).
//!
//! ```text
//!  Listener::run                                     Handler::run (one task per connection)
//!  ─────────────                                     ─────────────────────────────────────
//!  loop:                                             loop until the peer closes or shutdown:
//!    a permit of the connection Semaphore (waits       read every complete request (select
//!      while max_connections are live)                   with the shutdown signal)
//!    accept (on error: back off, retry)                apply each in order, queue its reply
//!    spawn a Handler holding the permit,               flush
//!      a shutdown receiver and a completion sender
//! ```
//!
//! # Shutdown
//!
//! [`serve`] runs the listener until its `shutdown` future completes. Then it drops the
//! listening socket (no more connections), drops the `broadcast` sender, which wakes every handler
//! waiting for a request, and drops its own `mpsc` sender; each handler holds a clone of that
//! sender, so `recv()` returns `None` once the last handler has finished the requests it had
//! read. Only then are the store's purge threads stopped ([`Store::shutdown`]), which writes
//! every evicted item still queued to the spill.

use crate::command::{self, Flow};
use crate::connection::Connection;
use crate::shutdown::Shutdown;
use crate::stats::ServerStats;
use crate::store::Store;
use crate::{Config, Error};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc};

/// The first pause after a failed accept; each failure in a row doubles it.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest pause between accepts that fail (running out of file descriptors, say): the
/// listener keeps trying, since connections that close free what it lacks.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<Store>,
    pub(crate) stats: ServerStats,
    pub(crate) config: Config,
}

/// The accept loop's state.
struct Listener {
    /// The listening socket; dropped at shutdown.
    listener: TcpListener,
    shared: Arc<Shared>,
    /// One permit per live connection, `config.max_connections` in all: the accept loop takes
    /// one before it accepts, the handler's task returns it when it ends.
    limit_connections: Arc<Semaphore>,
    /// Dropped at shutdown, which every handler's [`Shutdown`] sees.
    notify_shutdown: broadcast::Sender<()>,
    /// Cloned into each handler; `serve` waits until all clones are dropped.
    shutdown_complete_tx: mpsc::Sender<()>,
}

/// One connection's task.
struct Handler {
    shared: Arc<Shared>,
    connection: Connection,
    shutdown: Shutdown,
    /// Held, never used: its drop, when the handler ends, tells `serve` one less is running.
    /// Declared last, so it drops after the handler's other fields.
    _shutdown_complete: mpsc::Sender<()>,
}

/// Serves memcached clients on `listener` with a store built from `config` until `shutdown`
/// completes, then shuts down gracefully (module docs).
///
/// # Errors
///
/// If the store cannot be built ([`Store::open`]).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
) -> Result<(), Error> {
    let store = Store::open(&config)?;
    serve(listener, store, config, shutdown).await
}

/// [`run`] with a store already built: the binary opens it first, so that a bad spill directory
/// is reported before it announces its address.
///
/// # Errors
///
/// Only if the delivery of the spill's backlog at the end could not run.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    config: Config,
    shutdown: impl Future,
) -> Result<(), Error> {
    let max_connections = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let shared = Arc::new(Shared { store: Arc::new(store), stats: ServerStats::new(), config });
    let (notify_shutdown, _) = broadcast::channel(1);
    let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel(1);
    let mut server = Listener {
        listener,
        shared: Arc::clone(&shared),
        limit_connections: Arc::new(Semaphore::new(max_connections)),
        notify_shutdown,
        shutdown_complete_tx,
    };
    tokio::select! {
        () = server.run() => {}
        _ = shutdown => {}
    }
    let Listener { listener, notify_shutdown, shutdown_complete_tx, .. } = server;
    drop(listener);
    drop(notify_shutdown);
    drop(shutdown_complete_tx);
    let _ = shutdown_complete_rx.recv().await;
    let store = Arc::clone(&shared.store);
    tokio::task::spawn_blocking(move || store.shutdown()).await?;
    Ok(())
}

impl Listener {
    /// Accepts connections for ever, each served by a task of its own.
    async fn run(&mut self) {
        loop {
            // The semaphore is never closed.
            let Ok(permit) = Arc::clone(&self.limit_connections).acquire_owned().await else {
                return;
            };
            let socket = self.accept().await;
            // Replies are flushed once per batch: Nagle would only delay them.
            let _ = socket.set_nodelay(true);
            let mut handler = Handler {
                shared: Arc::clone(&self.shared),
                connection: Connection::new(socket, self.shared.config.max_item_size),
                shutdown: Shutdown::new(self.notify_shutdown.subscribe()),
                _shutdown_complete: self.shutdown_complete_tx.clone(),
            };
            tokio::spawn(async move {
                // A client's I/O error (a reset, a close mid-request) ends its connection only.
                let _ = handler.run().await;
                drop(permit);
            });
        }
    }

    /// The next connection, backing off while accepts fail.
    async fn accept(&mut self) -> TcpStream {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            match self.listener.accept().await {
                Ok((socket, _)) => return socket,
                Err(error) => {
                    eprintln!("shardlru-server: accept failed, retrying in {backoff:?}: {error}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

impl Handler {
    /// Serves the connection until the client closes it, asks to (`quit`), sends a line too
    /// long, or shutdown is signalled between requests.
    async fn run(&mut self) -> Result<(), Error> {
        let Handler { shared, connection, shutdown, .. } = self;
        let shared = &*shared;
        let _counted = shared.stats.connection();
        // One wait for shutdown for the connection's whole life, registered with the broadcast
        // channel once, not once per request.
        let mut stopped = std::pin::pin!(shutdown.recv());
        loop {
            let requests = tokio::select! {
                biased;
                requests = connection.read_requests() => requests?,
                () = &mut stopped => return Ok(()),
            };
            let Some(requests) = requests else { return Ok(()) };
            for request in requests {
                if command::apply(request, shared, connection).await? == Flow::Close {
                    // Shutdown cuts the linger short: it is only a courtesy.
                    tokio::select! {
                        closed = connection.close() => closed?,
                        () = &mut stopped => {}
                    }
                    return Ok(());
                }
            }
            connection.flush().await?;
        }
    }
}
