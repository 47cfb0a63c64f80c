//! Streams of pushes on a connection: a request of kind `Subscribe` opens
//! one; the server sends `Push` frames under its request id and ends it
//! with a `Reply`; the subscriber sends `Ack` frames with the version it
//! has applied (the server keeps only a few pushes unacknowledged), or
//! `Cancel` to end it early.

use super::frame::{Kind, Outgoing};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc};

/// What a subscriber has acknowledged: written by the connection's reader,
/// read by whatever pushes to it. An atomic rather than a watch channel:
/// a node's fan-out reads it for every mirror at every version, and only a
/// subscription whose window is full waits on it.
#[derive(Debug, Default)]
pub struct Acks {
    version: AtomicU64,
    raised: Notify,
}

impl Acks {
    /// Notes an acknowledgement of `version` (an older one changes nothing).
    pub fn record(&self, version: u64) {
        if self.version.fetch_max(version, Ordering::AcqRel) < version {
            self.raised.notify_one();
        }
    }
}

/// The server's side of one subscription: where it pushes, and what the
/// subscriber has acknowledged.
#[derive(Debug)]
pub struct Pushes {
    id: u64,
    outbox: mpsc::Sender<Outgoing>,
    acks: Arc<Acks>,
}

impl Pushes {
    pub fn new(id: u64, outbox: mpsc::Sender<Outgoing>, acks: Arc<Acks>) -> Self {
        Self { id, outbox, acks }
    }

    /// Sends one item; `false` once the connection is gone. Waits while
    /// the connection's queue is full (a slow subscriber slows only its
    /// own subscriptions).
    pub async fn push(&self, payload: impl Into<Bytes>) -> bool {
        self.outbox.send(self.frame(payload.into())).await.is_ok()
    }

    /// Sends one item if the connection's queue has room for it now.
    pub fn try_push(&self, payload: Bytes) -> TryPush {
        match self.outbox.try_send(self.frame(payload)) {
            Ok(()) => TryPush::Sent,
            Err(TrySendError::Full(_)) => TryPush::Full,
            Err(TrySendError::Closed(_)) => TryPush::Closed,
        }
    }

    fn frame(&self, payload: Bytes) -> Outgoing {
        Outgoing {
            id: self.id,
            kind: Kind::Push,
            payload,
        }
    }

    /// The highest version the subscriber has acknowledged.
    #[must_use]
    pub fn acked(&self) -> u64 {
        self.acks.version.load(Ordering::Acquire)
    }

    /// Waits for the next acknowledgement (one that came since the last
    /// wait counts); `false` once the connection is gone. A cancelled
    /// subscription's task is ended by the connection.
    pub async fn next_ack(&mut self) -> bool {
        tokio::select! {
            () = self.acks.raised.notified() => true,
            () = self.outbox.closed() => false,
        }
    }

    /// Resolves once the connection is gone (without waking for
    /// acknowledgements, as [`Pushes::next_ack`] does). The future does not
    /// borrow `self`: it can be awaited while another task pushes.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let outbox = self.outbox.clone();
        async move { outbox.closed().await }
    }
}

/// What became of a [`Pushes::try_push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryPush {
    Sent,
    /// The connection's queue is full: nothing was sent.
    Full,
    /// The connection is gone.
    Closed,
}

/// What a subscriber made of one push. The connection's reader hands each
/// push to the subscription's [`Handler`] as it reads it (a task per
/// subscription, woken for every push, cost more than applying it) and
/// acts on the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Taken; nothing to send back.
    Taken,
    /// Taken; the server is told that everything up to this version is
    /// applied.
    Acknowledge(u64),
    /// Not taken, because taking it now would mean waiting: it and every
    /// push after it go to the [`Subscription`]'s owner, in order, until
    /// it is [caught up](Subscription::caught_up).
    Later,
    /// Could not be taken: the subscription is cancelled, and its owner
    /// hears [`Item::Refused`].
    Refused,
}

/// A subscription as its connection's reader sees it, in one allocation
/// with its handler: the reader reaches it for every push, and with a
/// hundred mirrors on a connection each pointer followed is a cache miss.
pub struct Open<H: ?Sized = dyn FnMut(&[u8]) -> Handled + Send> {
    /// Pushes go to the owner, not to the handler.
    deferred: bool,
    /// Where the owner's items go; `None` once the subscription has ended
    /// (the owner's handle shares this allocation, so the reader drops the
    /// sender to tell it the connection is gone).
    items: Option<mpsc::UnboundedSender<Item>>,
    /// Takes the pushes, on the connection's reader. It must not wait:
    /// every subscription on the connection waits with it.
    handler: H,
}

/// A subscription's handler and state, shared by the connection's reader
/// and the subscription's owner.
pub type Handler = Arc<Mutex<Open>>;

/// A handler for a subscription, to be opened with
/// `Connection::subscribe`.
pub fn handler(handler: impl FnMut(&[u8]) -> Handled + Send + 'static) -> Handler {
    Arc::new(Mutex::new(Open {
        deferred: false,
        items: None,
        handler,
    }))
}

/// What reaches a subscription's owner.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A push its handler left for later.
    Push(Vec<u8>),
    /// The server ended the subscription with this reply.
    End(Vec<u8>),
    /// Its handler refused a push.
    Refused,
}

/// Where the owner of `handler` (made by [`handler`]) hears what its
/// handler leaves for it; set before the subscription is in its
/// connection's table, where a closing connection ends it.
pub fn items(handler: &Handler) -> mpsc::UnboundedReceiver<Item> {
    let (tx, rx) = mpsc::unbounded_channel();
    lock(handler).items = Some(tx);
    rx
}

/// Hands a push to the handler, or to the owner if pushes go there;
/// `false` if the subscription must end (the handler refused it).
pub fn take(open: &Mutex<Open>, id: u64, payload: &[u8], outbox: &mpsc::Sender<Outgoing>) -> bool {
    let mut open = lock(open);
    if open.deferred {
        open.send(Item::Push(payload.to_vec()));
        return true;
    }
    let handler = &mut open.handler;
    // A handler that panics refuses the push; the connection and its
    // other subscriptions go on.
    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(payload)))
        .unwrap_or(Handled::Refused);
    match handled {
        Handled::Taken => true,
        Handled::Acknowledge(version) => {
            acknowledge(outbox, id, version);
            true
        }
        Handled::Later => {
            open.deferred = true;
            open.send(Item::Push(payload.to_vec()));
            true
        }
        Handled::Refused => {
            open.end(Some(Item::Refused));
            false
        }
    }
}

/// Ends a subscription: its owner hears `last` (if any), then that the
/// subscription is over.
pub fn end(open: &Mutex<Open>, last: Option<Item>) {
    lock(open).end(last);
}

impl Open {
    fn send(&self, item: Item) {
        if let Some(items) = &self.items {
            let _ = items.send(item);
        }
    }

    /// See [`end`].
    fn end(&mut self, last: Option<Item>) {
        if let Some(item) = last {
            self.send(item);
        }
        self.items = None;
    }
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    // A handler that panics is caught inside the lock (`take`).
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// The subscriber's side of one subscription. Dropping it cancels the
/// subscription.
pub struct Subscription {
    pub id: u64,
    handler: Handler,
    items: mpsc::UnboundedReceiver<Item>,
    outbox: mpsc::Sender<Outgoing>,
    /// Removes the subscription from its connection's table.
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Subscription {
    /// The owner's side of subscription `id`, whose items come to `items`
    /// (see [`items`]); `on_drop` takes it out of its connection's table.
    pub fn new(
        id: u64,
        handler: Handler,
        items: mpsc::UnboundedReceiver<Item>,
        outbox: mpsc::Sender<Outgoing>,
        on_drop: Box<dyn FnOnce() + Send + Sync>,
    ) -> Self {
        Self {
            id,
            handler,
            items,
            outbox,
            on_drop: Some(on_drop),
        }
    }

    /// The next item; `None` if the connection closed.
    pub async fn next(&mut self) -> Option<Item> {
        self.items.recv().await
    }

    /// The next item if one has arrived already.
    pub fn next_now(&mut self) -> Option<Item> {
        self.items.try_recv().ok()
    }

    /// Gives pushes back to the handler once every one left for later is
    /// taken; `false` if more have arrived (take them first).
    pub fn caught_up(&self) -> bool {
        let mut open = lock(&self.handler);
        if !self.items.is_empty() {
            return false;
        }
        open.deferred = false;
        true
    }

    /// Tells the server that everything up to `version` is applied.
    pub fn acknowledge(&self, version: u64) {
        acknowledge(&self.outbox, self.id, version);
    }
}

/// Queues the acknowledgement of `version` on subscription `id`, without
/// waiting: the reader calls it, and a reader that waited for the writer
/// could wait for a peer that waits for it to read.
fn acknowledge(outbox: &mpsc::Sender<Outgoing>, id: u64, version: u64) {
    let frame = Outgoing {
        id,
        kind: Kind::Ack,
        payload: Bytes::copy_from_slice(&version.to_le_bytes()),
    };
    if let Err(TrySendError::Full(frame)) = outbox.try_send(frame) {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let _ = outbox.send(frame).await;
        });
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.outbox.try_send(Outgoing {
            id: self.id,
            kind: Kind::Cancel,
            payload: Bytes::new(),
        });
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscription with `handler`, as `Connection::subscribe` makes one
    /// (without a connection: its outbox is returned instead).
    fn subscription(handler: Handler) -> (Subscription, Handler, mpsc::Receiver<Outgoing>) {
        let (outbox, sent) = mpsc::channel(16);
        let items = items(&handler);
        let reader_side = Arc::clone(&handler);
        let s = Subscription::new(7, handler, items, outbox, Box::new(|| {}));
        (s, reader_side, sent)
    }

    /// The next item; fails rather than waits for ever if none comes.
    async fn next_or_wait(s: &mut Subscription) -> Option<Item> {
        tokio::time::timeout(std::time::Duration::from_secs(5), s.next())
            .await
            .expect("the subscription neither ended nor got an item")
    }

    #[tokio::test]
    async fn pushes_left_for_later_reach_the_owner_in_order_until_it_catches_up() {
        let mut busy = true;
        let taken = Arc::new(Mutex::new(Vec::new()));
        let handler = handler({
            let taken = Arc::clone(&taken);
            move |p: &[u8]| {
                if busy {
                    busy = false;
                    return Handled::Later;
                }
                taken.lock().unwrap().push(p.to_vec());
                Handled::Acknowledge(u64::from(p[0]))
            }
        });
        let (mut s, open, mut sent) = subscription(handler);
        let (outbox, _) = mpsc::channel(1);
        assert!(take(&open, 7, &[1], &outbox));
        // Deferred: the handler is not asked again until the owner has
        // caught up.
        assert!(take(&open, 7, &[2], &outbox));
        assert_eq!(s.next_now(), Some(Item::Push(vec![1])));
        assert!(!s.caught_up());
        assert_eq!(s.next_now(), Some(Item::Push(vec![2])));
        assert!(s.caught_up());
        assert!(take(&open, 7, &[3], &s.outbox));
        assert_eq!(*taken.lock().unwrap(), vec![vec![3]]);
        let ack = sent.recv().await.unwrap();
        assert_eq!((ack.id, ack.kind), (7, Kind::Ack));
        assert_eq!(&ack.payload[..], &3u64.to_le_bytes());
    }

    #[tokio::test]
    async fn the_owner_hears_the_end_though_it_shares_the_handler() {
        let (mut s, open, _sent) = subscription(handler(|_: &[u8]| Handled::Taken));
        end(&open, Some(Item::End(b"bye".to_vec())));
        assert_eq!(s.next().await, Some(Item::End(b"bye".to_vec())));
        // The reader dropped its sender: the channel is closed although
        // the owner still holds the allocation it was in.
        assert_eq!(next_or_wait(&mut s).await, None);
    }

    #[tokio::test]
    async fn a_refusing_or_panicking_handler_ends_the_subscription() {
        for handler in [
            handler(|_: &[u8]| Handled::Refused),
            handler(|_: &[u8]| panic!("a handler that panics")),
        ] {
            let (mut s, open, _sent) = subscription(handler);
            let (outbox, _) = mpsc::channel(1);
            assert!(!take(&open, 7, &[1], &outbox));
            assert_eq!(s.next().await, Some(Item::Refused));
            assert_eq!(next_or_wait(&mut s).await, None);
        }
    }
}
