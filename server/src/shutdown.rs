//! The shutdown signal as one handler sees it (mini-redis's `Shutdown`).
//!
//! The listener holds the `broadcast::Sender`; dropping it at shutdown wakes every receiver
//! (`recv` returns `Closed`). A handler makes one [`Shutdown::recv`] future for its
//! connection's life and selects on it only while it waits for a request, so requests it has
//! read are answered before it stops.

use tokio::sync::broadcast;

/// The receiver that signals shutdown.
#[derive(Debug)]
pub(crate) struct Shutdown {
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    pub(crate) fn new(notify: broadcast::Receiver<()>) -> Self {
        Self { notify }
    }

    /// Returns once shutdown is signalled.
    pub(crate) async fn recv(&mut self) {
        // Nothing is ever sent: only the sender's drop (`Closed`) arrives.
        let _ = self.notify.recv().await;
    }
}
