//! Streams of pushes on a connection: a request of kind `Subscribe` opens
//! one; the server sends `Push` frames under its request id and ends it
//! with a `Reply`; the subscriber sends `Ack` frames with the version it
//! has applied (the server keeps only a few pushes unacknowledged), or
//! `Cancel` to end it early.

use super::connection::Outgoing;
use super::frame::Kind;
use tokio::sync::{mpsc, watch};

/// The server's side of one subscription: where it pushes, and what the
/// subscriber has acknowledged.
#[derive(Debug)]
pub struct Pushes {
    id: u64,
    outbox: mpsc::Sender<Outgoing>,
    acks: watch::Receiver<u64>,
}

impl Pushes {
    pub(crate) fn new(id: u64, outbox: mpsc::Sender<Outgoing>, acks: watch::Receiver<u64>) -> Self {
        Self { id, outbox, acks }
    }

    /// Sends one item; `false` once the connection is gone. Waits while
    /// the connection's queue is full (a slow subscriber slows only its
    /// own subscriptions).
    pub async fn push(&self, payload: Vec<u8>) -> bool {
        self.outbox
            .send(Outgoing {
                id: self.id,
                kind: Kind::Push,
                payload,
            })
            .await
            .is_ok()
    }

    /// The highest version the subscriber has acknowledged.
    #[must_use]
    pub fn acked(&self) -> u64 {
        *self.acks.borrow()
    }

    /// Waits for the next acknowledgement; `false` once the subscriber
    /// cannot send any more (cancelled, or the connection closed).
    pub async fn next_ack(&mut self) -> bool {
        self.acks.changed().await.is_ok()
    }

    /// Resolves once the connection is gone (without waking for
    /// acknowledgements, as [`Pushes::next_ack`] does).
    pub async fn closed(&self) {
        self.outbox.closed().await;
    }
}

/// One item of a subscription, on the subscriber's side.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A pushed payload.
    Push(Vec<u8>),
    /// The server ended the subscription with this reply.
    End(Vec<u8>),
}

/// The subscriber's side of one subscription. Dropping it cancels the
/// subscription.
pub(crate) struct Subscription {
    pub(crate) id: u64,
    pub(crate) items: mpsc::UnboundedReceiver<Item>,
    pub(crate) outbox: mpsc::Sender<Outgoing>,
    /// Removes the subscription from its connection's table.
    pub(crate) on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Subscription {
    /// The next item; `None` if the connection closed.
    pub(crate) async fn next(&mut self) -> Option<Item> {
        self.items.recv().await
    }

    /// The next item if one has arrived already.
    pub(crate) fn next_now(&mut self) -> Option<Item> {
        self.items.try_recv().ok()
    }

    /// Tells the server that everything up to `version` is applied;
    /// `false` if the connection is gone.
    pub(crate) async fn ack(&self, version: u64) -> bool {
        self.outbox
            .send(Outgoing {
                id: self.id,
                kind: Kind::Ack,
                payload: version.to_le_bytes().to_vec(),
            })
            .await
            .is_ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.outbox.try_send(Outgoing {
            id: self.id,
            kind: Kind::Cancel,
            payload: Vec::new(),
        });
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}
