//! A consumer's side on the network: a task that follows the catalog,
//! and one per accepted producer that keeps a subscription to it,
//! resuming where the last one stopped.

use super::error::{ConsumeError, MeshError};
use super::shared::{Shared, lock};
use crate::peer::{PeerId, PeerInfo};
use crate::stream::{Delivery, Inlet, Online, Received, Require, StreamId, unbatched};
use crate::wire::{End, MeshRequest};
use bytes::Bytes;
use statemesh_client::network::push::{self, Handled, Item};
use statemesh_client::network::{AuthError, ConnectionError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

/// An item (or what stands for items: a loss, a refusal) from a producer.
pub(super) type Out = (PeerId, Result<Bytes, ConsumeError>);

/// What a consumer's tasks share.
pub(super) struct Spec {
    stream: StreamId,
    require: Option<Require>,
    online_when: Online,
    filter: Vec<String>,
    ack_every: u32,
    tx: mpsc::Sender<Out>,
    online: watch::Sender<bool>,
    /// Producers subscribed to now.
    connected: Mutex<HashMap<PeerId, PeerInfo>>,
}

impl Spec {
    pub(super) fn new(
        stream: StreamId,
        require: Option<Require>,
        online_when: Online,
        filter: Vec<String>,
        tx: mpsc::Sender<Out>,
        online: watch::Sender<bool>,
    ) -> Self {
        Self {
            stream,
            require,
            online_when,
            filter,
            ack_every: 32,
            tx,
            online,
            connected: Mutex::new(HashMap::new()),
        }
    }

    fn set_connected(&self, producer: &PeerInfo, connected: bool) {
        let mut map = lock(&self.connected);
        if connected {
            map.insert(producer.id, producer.clone());
        } else {
            map.remove(&producer.id);
        }
        drop(map);
        self.recheck();
    }

    fn recheck(&self) {
        let online = self.online_when.holds(lock(&self.connected).values());
        self.online
            .send_if_modified(|was| std::mem::replace(was, online) != online);
    }
}

/// Watches the catalog and keeps one subscription task per accepted
/// producer of the stream.
pub(super) async fn follow(shared: Arc<Shared>, spec: Arc<Spec>) {
    let mut catalog = shared.catalog.subscribe();
    // One subscription task per producer, with the address it dials: a
    // producer that comes back elsewhere (restarted on another port) gets
    // a new task.
    let mut links = Links::default();
    // Kept across a producer's absence: it resumes where it stopped.
    let mut inlets: HashMap<PeerId, Arc<Mutex<Inlet>>> = HashMap::new();
    let mut refused: HashSet<PeerId> = HashSet::new();
    loop {
        let now = catalog.borrow_and_update().clone();
        let mut present = HashSet::new();
        for (entry, theirs) in now.producers_of(&spec.stream.name) {
            let producer = &entry.info;
            if spec.require.as_ref().is_some_and(|test| !test(producer))
                || refused.contains(&producer.id)
            {
                continue;
            }
            present.insert(producer.id);
            if let Err(mismatch) = theirs.accepts(&spec.stream) {
                refused.insert(producer.id);
                let refusal = ConsumeError::Refused {
                    producer: producer.id,
                    reason: End::TypeMismatch(mismatch),
                };
                let _ = spec.tx.send((producer.id, Err(refusal))).await;
                continue;
            }
            if let Some((address, task)) = links.0.get(&producer.id) {
                if *address == producer.address && !task.is_finished() {
                    continue;
                }
                task.abort();
            }
            let inlet = Arc::clone(
                inlets
                    .entry(producer.id)
                    .or_insert_with(|| Arc::new(Mutex::new(Inlet::new(spec.ack_every)))),
            );
            let task = tokio::spawn(link(
                Arc::clone(&shared),
                Arc::clone(&spec),
                producer.clone(),
                inlet,
            ));
            links
                .0
                .insert(producer.id, (producer.address.clone(), task));
        }
        // A producer gone from the catalog keeps a subscription that
        // still works (gossip may wrongly suspect a busy peer; the
        // connection knows better); its task ends when the subscription
        // does, rather than retry an address the mesh says is dead.
        links
            .0
            .retain(|id, (_, task)| present.contains(id) || !task.is_finished());
        if catalog.changed().await.is_err() {
            return;
        }
    }
}

/// The subscription task of each producer followed, with the address it
/// dials. Dropped with the consumer's task, it ends them all, so their
/// subscriptions are cancelled and producers stop counting this consumer.
#[derive(Default)]
struct Links(HashMap<PeerId, (String, JoinHandle<()>)>);

impl Drop for Links {
    fn drop(&mut self) {
        for (_, task) in self.0.values() {
            task.abort();
        }
    }
}

/// Backoff between subscriptions to one producer.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Keeps a subscription to one producer, resubscribing after it ends.
async fn link(shared: Arc<Shared>, spec: Arc<Spec>, producer: PeerInfo, inlet: Arc<Mutex<Inlet>>) {
    let mut retry = FIRST_RETRY;
    loop {
        let outcome = subscribe(&shared, &spec, &producer, &inlet).await;
        spec.set_connected(&producer, false);
        match outcome {
            Ok((end, delivered)) => {
                if !end.retryable() {
                    let refusal = ConsumeError::Refused {
                        producer: producer.id,
                        reason: end,
                    };
                    let _ = spec.tx.send((producer.id, Err(refusal))).await;
                    return;
                }
                tracing::debug!(producer = %producer.id, reason = %end, "subscription ended");
                if delivered {
                    retry = FIRST_RETRY;
                }
            }
            Err(MeshError::Connection(ConnectionError::Auth(AuthError::Expired(ago)))) => {
                // Nothing this consumer does will work again until the
                // process has a new pass: said once, not retried.
                let expired = ConsumeError::Expired { ago };
                let _ = spec.tx.send((producer.id, Err(expired))).await;
                return;
            }
            Err(e) => tracing::debug!(producer = %producer.id, error = %e, "subscription failed"),
        }
        if shared.catalog.borrow().get(producer.id).is_none() {
            // Gone from the mesh: followed again if it comes back.
            return;
        }
        let jitter = Duration::from_millis(fastrand_millis(retry));
        tokio::time::sleep(retry / 2 + jitter).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// Up to half of `d`, in whole milliseconds, drawn at random.
fn fastrand_millis(d: Duration) -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes) % (u64::try_from(d.as_millis()).unwrap_or(1).max(1) / 2 + 1)
}

/// Passes a push's items to the program, taking room in the channel for
/// as many at once as fit (one wait, not one per item).
async fn hand_over(tx: &mpsc::Sender<Out>, outs: Vec<Out>) -> Result<(), ()> {
    let mut outs = outs.into_iter();
    while outs.len() > 0 {
        let room = outs.len().min(tx.max_capacity());
        let permits = tx.reserve_many(room).await.map_err(|_| ())?;
        for (permit, out) in permits.zip(outs.by_ref()) {
            permit.send(out);
        }
    }
    Ok(())
}

/// How long a consumer that has gone quiet waits before acknowledging
/// the items it took since its last acknowledgement (plus up to half as
/// long again, drawn at random). A producer needs that acknowledgement
/// only to know that its consumers have caught up (`Producer::flushed`,
/// which can wait this long); windows reopen with the acknowledgements
/// sent every 32 items. Sooner, it cost latency: acknowledging each item
/// of a slow stream doubled the frames both sides handle, and at 20 ms
/// the hundred consumers of one item acknowledged together, a burst the
/// producer served instead of the next item, often enough to raise the
/// p99 (see docs/decisions.md).
const QUIET_ACK: Duration = Duration::from_millis(100);

/// One subscription's receiving side, shared by the connection's reader
/// (which hands pushes straight to the program while the program's
/// channel has room: one task fewer on every item's way) and the
/// subscription's task (which takes them when it has not, and waits).
struct Taker {
    spec: Arc<Spec>,
    producer: PeerInfo,
    inlet: Arc<Mutex<Inlet>>,
    /// Whether anything came of the subscription.
    delivered: AtomicBool,
    /// Items were taken and not acknowledged: the task acknowledges them
    /// if nothing more comes for a while.
    unacked: Notify,
}

impl Taker {
    /// A push's items for the program, with the connection state they
    /// imply; `Err` if the push does not decode.
    fn unpack(&self, push: &Bytes) -> Result<Vec<Out>, MeshError> {
        let deliveries = unbatched(push)
            .map_err(|e| MeshError::Config(format!("a push that does not decode: {e}")))?;
        Ok(self.receive(deliveries))
    }

    fn receive(&self, deliveries: Vec<Delivery>) -> Vec<Out> {
        let id = self.producer.id;
        let mut outs = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if matches!(delivery, Delivery::Opened { .. }) {
                self.spec.set_connected(&self.producer, true);
            }
            match lock(&self.inlet).receive(delivery) {
                None => {}
                Some(Received::Item(value)) => outs.push((id, Ok(value))),
                Some(Received::Lagged(missed)) => outs.push((
                    id,
                    Err(ConsumeError::Lagged {
                        producer: id,
                        missed,
                    }),
                )),
            }
        }
        if !outs.is_empty() {
            self.delivered.store(true, Ordering::Relaxed);
        }
        outs
    }

    /// The acknowledgement due after taking a push, if one is; otherwise
    /// the task is told to acknowledge when the stream goes quiet.
    fn ack(&self) -> Option<u64> {
        let due = lock(&self.inlet).ack();
        if due.is_none() {
            self.unacked.notify_one();
        }
        due
    }

    /// Takes a push on the connection's reader if the program's channel
    /// has room for all of it now; leaves it for the task otherwise (and
    /// a push that does not decode, which the task reports).
    fn take_now(&self, payload: &[u8]) -> Handled {
        let push = Bytes::copy_from_slice(payload);
        let Ok(deliveries) = unbatched(&push) else {
            return Handled::Later;
        };
        let Ok(permits) = self.spec.tx.try_reserve_many(deliveries.len()) else {
            return Handled::Later;
        };
        for (permit, out) in permits.zip(self.receive(deliveries)) {
            permit.send(out);
        }
        match self.ack() {
            Some(total) => Handled::Acknowledge(total),
            None => Handled::Taken,
        }
    }
}

/// One subscription, until it ends: how it ended, and whether anything
/// came of it.
async fn subscribe(
    shared: &Shared,
    spec: &Arc<Spec>,
    producer: &PeerInfo,
    inlet: &Arc<Mutex<Inlet>>,
) -> Result<(End, bool), MeshError> {
    let link = shared
        .stream_links
        .get(&shared.dialer, &producer.address)
        .await?;
    if link.grant.peer != producer.id {
        return Err(MeshError::Config(format!(
            "{} is now peer {}, not producer {}",
            producer.address, link.grant.peer, producer.id
        )));
    }
    let request = MeshRequest::Consume {
        stream: spec.stream.clone(),
        from: lock(inlet).position(),
        filter: spec.filter.clone(),
        consumer: shared.me(),
    };
    let taker = Arc::new(Taker {
        spec: Arc::clone(spec),
        producer: producer.clone(),
        inlet: Arc::clone(inlet),
        delivered: AtomicBool::new(false),
        unacked: Notify::new(),
    });
    let handler = {
        let taker = Arc::clone(&taker);
        push::handler(move |payload| taker.take_now(payload))
    };
    let payload = postcard::to_allocvec(&request).unwrap_or_default();
    let mut subscription = link
        .connection
        .subscribe(payload, handler)
        .await
        .map_err(|e| MeshError::Config(format!("{e:?}")))?;
    let delivered = || taker.delivered.load(Ordering::Relaxed);
    // When to acknowledge what was taken, if nothing comes meanwhile.
    let mut quiet_ack: Option<tokio::time::Instant> = None;
    loop {
        let item = tokio::select! {
            item = subscription.next() => match item {
                Some(item) => item,
                None => break,
            },
            () = taker.unacked.notified(), if quiet_ack.is_none() => {
                let wait = QUIET_ACK + Duration::from_millis(fastrand_millis(QUIET_ACK));
                quiet_ack = Some(tokio::time::Instant::now() + wait);
                continue;
            }
            () = sleep_until(quiet_ack) => {
                quiet_ack = None;
                if let Some(total) = lock(inlet).ack_all() {
                    subscription.acknowledge(total);
                }
                continue;
            }
        };
        let bytes = match item {
            Item::Push(bytes) => bytes,
            Item::End(bytes) => {
                let end = statemesh_core::decode::from_bytes(&bytes)
                    .map_err(|e| MeshError::Config(format!("an end that does not decode: {e}")))?;
                return Ok((end, delivered()));
            }
            Item::Refused => return Ok((End::Closed, delivered())),
        };
        // The program's channel was full when this push came: it waits
        // here for room, and so does every push after it until this task
        // has caught up and gives them back to the reader.
        let outs = taker.unpack(&Bytes::from(bytes))?;
        if hand_over(&spec.tx, outs).await.is_err() {
            return Ok((End::Closed, delivered()));
        }
        if let Some(total) = lock(inlet).ack() {
            subscription.acknowledge(total);
        }
        if subscription.caught_up()
            && let Some(total) = lock(inlet).ack_all()
        {
            subscription.acknowledge(total);
        }
    }
    Err(MeshError::Config(format!(
        "the connection to {} closed",
        producer.address
    )))
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
