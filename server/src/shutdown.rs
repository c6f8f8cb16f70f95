//! The shutdown signal as one handler sees it (mini-redis's `Shutdown`).
//!
//! The listener holds the `broadcast::Sender`; dropping it at shutdown wakes every receiver
//! (`recv` returns `Closed`). A handler selects on [`Shutdown::recv`] only while it waits for a
//! request, so requests it has read are answered before it stops.

use tokio::sync::broadcast;

/// Whether shutdown was signalled, and the receiver that signals it.
#[derive(Debug)]
pub(crate) struct Shutdown {
    /// Set once `recv` has returned: later calls return at once.
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    pub(crate) fn new(notify: broadcast::Receiver<()>) -> Self {
        Self { is_shutdown: false, notify }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.is_shutdown
    }

    /// Returns once shutdown is signalled.
    pub(crate) async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // Nothing is ever sent: only the sender's drop (`Closed`) arrives.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}
