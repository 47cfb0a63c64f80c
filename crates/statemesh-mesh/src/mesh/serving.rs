//! A producer's side on the network: its untyped core, shared with one
//! task per consumer that sends the consumer what it is owed.

use super::signal::{Rising, Signal};
use crate::pass::Grant;
use crate::peer::PeerInfo;
use crate::stream::{Lagging, Online, Outlet, Position, Refusal, Require, StreamId, batched};
use crate::wire::End;
use bytes::Bytes;
use statemesh_client::network::connection::Outgoing;
use statemesh_client::network::frame::Kind;
use statemesh_client::network::push::{Acks, Pushes};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The untyped part of a producer, shared with the tasks that serve its
/// consumers.
pub(crate) struct ProducerCore {
    pub(crate) stream: StreamId,
    pub(crate) outlet: Mutex<Outlet>,
    /// The next sequence number, raised at each item (for a durable
    /// producer, at each item written): wakes the consumer tasks and a
    /// durable producer's senders. Shared with the log's callbacks, which
    /// must not hold the core (its last reference could then drop the log
    /// on the log's own thread).
    pub(crate) published: Arc<Rising>,
    /// Items before this number are in the log (a durable producer): set
    /// by the log's callbacks, which must not take the outlet's lock (a
    /// callback may run at once, inside the append, under that lock).
    pub(crate) written: Arc<AtomicU64>,
    pub(crate) require: Option<Require>,
    pub(crate) online_when: Online,
    pub(crate) online: watch::Sender<bool>,
    /// Set when the producer is dropped: its consumers are told.
    pub(crate) closed: watch::Sender<bool>,
    /// The log behind the ring, for a durable producer.
    #[cfg(feature = "durable")]
    pub(crate) log: Option<super::durable::DurableLog>,
    pub(crate) next_consumer: AtomicU64,
    /// Wakes senders waiting for room (see `producer::ready`) when a
    /// consumer moves on or goes.
    pub(crate) room: Signal,
    pub(crate) patience: std::time::Duration,
    pub(crate) max_item: usize,
}

impl ProducerCore {
    pub(crate) fn outlet(&self) -> MutexGuard<'_, Outlet> {
        // Nothing panics while holding it.
        self.outlet.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A consumer moved on or went: a sender waiting for room may go.
    fn made_room(&self) {
        self.room.raise();
    }

    fn recheck_online(&self) {
        let online = self.online_when.holds(self.outlet().consumers());
        self.online
            .send_if_modified(|was| std::mem::replace(was, online) != online);
    }
}

/// Admits a consumer to the stream it asked for and starts the task that
/// sends it its items; or says why not.
/// What a consumer asked for.
pub(crate) struct Request {
    pub(crate) stream: StreamId,
    pub(crate) from: Option<Position>,
    pub(crate) filter: Vec<String>,
    pub(crate) consumer: PeerInfo,
}

/// Admits a consumer (whose pass grants `grant`) to `core`'s stream,
/// starting a task that sends it its items under subscription `id`; or
/// says why not.
pub(crate) fn serve_consumer(
    core: Arc<ProducerCore>,
    grant: &Grant,
    id: u64,
    request: Request,
    outbox: mpsc::Sender<Outgoing>,
    acks: Arc<Acks>,
) -> Result<JoinHandle<()>, End> {
    let Request {
        stream,
        from,
        filter,
        consumer,
    } = request;
    if !grant.may_consume(&stream.name) {
        return Err(End::NotPermitted(stream.name));
    }
    core.stream.accepts(&stream).map_err(End::TypeMismatch)?;
    if core.require.as_ref().is_some_and(|test| !test(&consumer)) {
        return Err(End::NotAccepted);
    }
    let key = core.next_consumer.fetch_add(1, Ordering::Relaxed);
    core.outlet()
        .admit(key, consumer, from, filter)
        .map_err(|r| match r {
            Refusal::Full(n) => End::Full(n),
            _ => End::NotAccepted,
        })?;
    core.recheck_online();
    let pushes = Pushes::new(id, outbox.clone(), acks);
    Ok(tokio::spawn(async move {
        let admitted = Admitted {
            core: Arc::clone(&core),
            key,
        };
        let end = feed(&core, key, pushes).await;
        drop(admitted);
        if let Some(end) = end {
            let reply = Outgoing {
                id,
                kind: Kind::Reply,
                payload: postcard::to_allocvec(&end).unwrap_or_default().into(),
            };
            let _ = outbox.send(reply).await;
        }
    }))
}

/// How many bytes of deliveries one push joins at most.
const BATCH_BYTES: usize = 64 * 1024;

/// Removes a consumer from its producer however its task ends.
struct Admitted {
    core: Arc<ProducerCore>,
    key: u64,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.core.outlet().remove(self.key);
        self.core.made_room();
        self.core.recheck_online();
    }
}

/// Sends one consumer what it is owed until it goes, lags out, or the
/// producer closes; the reason to tell it, if it is still there.
async fn feed(core: &ProducerCore, key: u64, mut pushes: Pushes) -> Option<End> {
    let mut closed = core.closed.subscribe();
    loop {
        // Read before looking for items: one published meanwhile wakes the
        // wait below.
        let seen = core.published.get();
        let batch: Result<Vec<Bytes>, Lagging> = {
            let mut outlet = core.outlet();
            outlet.written(core.written.load(Ordering::Acquire));
            outlet.acknowledge(key, pushes.acked());
            outlet.pump(key)
        };
        core.made_room();
        match batch {
            Err(Lagging { missed }) => return Some(End::Lagging { missed }),
            Ok(batch) if batch.is_empty() => {
                if *closed.borrow() {
                    return Some(End::Closed);
                }
                tokio::select! {
                    () = core.published.past(seen) => {}
                    acked = pushes.next_ack() => {
                        if !acked {
                            return None;
                        }
                    }
                    _ = closed.changed() => return Some(End::Closed),
                }
            }
            Ok(batch) => {
                for push in batched(batch, BATCH_BYTES) {
                    if !pushes.push(push).await {
                        return None;
                    }
                }
            }
        }
    }
}
