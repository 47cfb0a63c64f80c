//! Consuming a stream: finding its producers in the catalog, subscribing
//! to each accepted one, resuming where the last subscription stopped,
//! and handing the items to the program in each producer's order.

use super::error::MeshError;
use super::shared::{Running, Shared, lock};
use super::when::When;
use crate::peer::{PeerId, PeerInfo};
use crate::stream::{Delivery, Inlet, Missed, Online, Received, Require, StreamId, unbatched};
use crate::wire::{End, MeshRequest};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use statemesh_client::network::push::{self, Handled, Item};
use statemesh_client::network::{AuthError, ConnectionError};
use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What a consumer's stream yields besides items.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// Items of `producer` were lost before the next one from it: it
    /// dropped them from its buffer before this consumer got them (it fell
    /// behind, or was away too long), or it restarted without its buffer.
    #[error("lagged: missed {} from producer {producer}", crate::wire::describe(*missed))]
    Lagged {
        /// The producer.
        producer: PeerId,
        /// How many.
        missed: Missed,
    },
    /// A producer refused this consumer for a reason only this side can
    /// change (another item type, a pass without the stream): said once;
    /// that producer is not asked again.
    #[error("producer {producer} refused: {reason}")]
    Refused {
        /// The producer.
        producer: PeerId,
        /// Why.
        reason: End,
    },
    /// This process's mesh pass expired (this long ago): producers refuse
    /// it until it joins with a new one.
    #[error("this process's mesh pass expired {ago:?} ago: join with a new pass")]
    Expired {
        /// How long ago.
        ago: Duration,
    },
    /// An item did not decode as this consumer's type.
    #[error("an item from producer {producer} did not decode: {error}")]
    Decode {
        /// The producer.
        producer: PeerId,
        /// Why.
        error: String,
    },
}

/// Settings of a consumer; from [`Streams::consume`](super::Streams::consume).
pub struct ConsumerBuilder<T> {
    shared: Arc<Shared>,
    running: Arc<Running>,
    name: String,
    require: Option<Require>,
    online: Online,
    filter: Vec<String>,
    buffer: usize,
    _items: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ConsumerBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("name", &self.name)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> ConsumerBuilder<T> {
    pub(super) fn new(shared: Arc<Shared>, running: Arc<Running>, name: String) -> Self {
        Self {
            shared,
            running,
            name,
            require: None,
            online: Online::default(),
            filter: Vec::new(),
            buffer: 1024,
            _items: PhantomData,
        }
    }

    /// Subscribes only to producers whose entry passes `test`.
    #[must_use]
    pub fn require(mut self, test: impl Fn(&PeerInfo) -> bool + Send + Sync + 'static) -> Self {
        self.require = Some(Arc::new(test));
        self
    }

    /// When the consumer is online (default: subscribed to one producer).
    #[must_use]
    pub fn online_when(mut self, condition: impl FnOnce(Online) -> Online) -> Self {
        self.online = condition(Online::default());
        self
    }

    /// Wants only items whose key matches one of `patterns` (`eu/*`): the
    /// producer skips the others before they reach the network.
    #[must_use]
    pub fn filter<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.filter.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Items held for the program before producers are slowed (default
    /// 1,024).
    #[must_use]
    pub fn buffer(mut self, items: usize) -> Self {
        self.buffer = items.max(1);
        self
    }

    /// Starts following the stream's producers, now and as they appear.
    ///
    /// # Errors
    ///
    /// [`MeshError::MayNotConsume`] if this process's pass does not allow
    /// consuming the stream.
    pub fn start(self) -> Result<Consumer<T>, MeshError> {
        if !self.shared.grant.may_consume(&self.name) {
            return Err(MeshError::MayNotConsume(self.name));
        }
        let (tx, rx) = mpsc::channel(self.buffer);
        let (online, online_rx) = watch::channel(self.online.holds(std::iter::empty()));
        let spec = Arc::new(Spec {
            stream: StreamId::of::<T>(self.name),
            require: self.require,
            online_when: self.online,
            filter: self.filter,
            ack_every: 32,
            tx,
            online,
            connected: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(follow(Arc::clone(&self.shared), spec));
        Ok(Consumer {
            rx,
            taken: VecDeque::new(),
            scratch: Vec::new(),
            online: online_rx,
            task,
            _running: self.running,
            _items: PhantomData,
        })
    }
}

/// An item (or what stands for items: a loss, a refusal) from a producer.
type Out = (PeerId, Result<Bytes, ConsumeError>);

/// What a consumer's tasks share.
struct Spec {
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

/// Items of type `T` from every accepted producer of its stream, as a
/// [`futures_core::Stream`]: each producer's items in its order, producers
/// interleaved as they arrive, and a [`ConsumeError::Lagged`] before the
/// next item of a producer whenever items of it were lost.
pub struct Consumer<T> {
    rx: mpsc::Receiver<Out>,
    /// Taken from `rx` several at a time, handed out one at a time.
    taken: VecDeque<Out>,
    scratch: Vec<Out>,
    online: watch::Receiver<bool>,
    task: JoinHandle<()>,
    /// Keeps the mesh running while the consumer is.
    _running: Arc<Running>,
    _items: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: DeserializeOwned> Consumer<T> {
    /// The next item (or loss, or refusal); `None` never comes while the
    /// mesh runs: a stream with no producer waits for one.
    pub async fn next(&mut self) -> Option<Result<T, ConsumeError>> {
        std::future::poll_fn(|cx| self.poll_take(cx)).await
    }

    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, ConsumeError>>> {
        if self.taken.is_empty() {
            if std::task::ready!(self.rx.poll_recv_many(cx, &mut self.scratch, TAKE_AT_ONCE)) == 0 {
                return Poll::Ready(None);
            }
            self.taken.extend(self.scratch.drain(..));
        }
        Poll::Ready(
            self.taken
                .pop_front()
                .map(|(producer, item)| decode(producer, item)),
        )
    }

    /// Its online state, to test or wait on.
    #[must_use]
    pub fn when(&self) -> When {
        When::new(self.online.clone())
    }
}

/// Items taken from the channel at once, at most.
const TAKE_AT_ONCE: usize = 64;

fn decode<T: DeserializeOwned>(
    producer: PeerId,
    item: Result<Bytes, ConsumeError>,
) -> Result<T, ConsumeError> {
    let bytes = item?;
    statemesh_core::decode::from_bytes(&bytes).map_err(|e| ConsumeError::Decode {
        producer,
        error: e.to_string(),
    })
}

impl<T: DeserializeOwned> futures_core::Stream for Consumer<T> {
    type Item = Result<T, ConsumeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_take(cx)
    }
}

/// Watches the catalog and keeps one subscription task per accepted
/// producer of the stream.
async fn follow(shared: Arc<Shared>, spec: Arc<Spec>) {
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

/// Up to `d` in whole milliseconds, drawn at random.
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

/// One subscription, until it ends: how it ended, and whether anything
/// came of it.
async fn subscribe(
    shared: &Shared,
    spec: &Spec,
    producer: &PeerInfo,
    inlet: &Mutex<Inlet>,
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
    // Every push goes to this task, which can wait for the program.
    let handler = push::handler(|_| Handled::Later);
    let payload = postcard::to_allocvec(&request).unwrap_or_default();
    let mut subscription = link
        .connection
        .subscribe(payload, handler)
        .await
        .map_err(|e| MeshError::Config(format!("{e:?}")))?;
    let mut delivered = false;
    loop {
        let item = match subscription.next_now() {
            Some(item) => item,
            None => {
                // Nothing more has arrived: the producer hears that
                // everything was taken, so it knows this consumer caught
                // up (a producer that flushes waits for that).
                if let Some(total) = lock(inlet).ack_all() {
                    subscription.acknowledge(total);
                }
                match subscription.next().await {
                    Some(item) => item,
                    None => break,
                }
            }
        };
        let bytes = match item {
            Item::Push(bytes) => bytes,
            Item::End(bytes) => {
                let end = statemesh_core::decode::from_bytes(&bytes)
                    .map_err(|e| MeshError::Config(format!("an end that does not decode: {e}")))?;
                return Ok((end, delivered));
            }
            Item::Refused => return Ok((End::Closed, delivered)),
        };
        let deliveries = unbatched(&Bytes::from(bytes))
            .map_err(|e| MeshError::Config(format!("a push that does not decode: {e}")))?;
        let mut outs = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if matches!(delivery, Delivery::Opened { .. }) {
                spec.set_connected(producer, true);
            }
            let received = lock(inlet).receive(delivery);
            outs.push(match received {
                None => continue,
                Some(Received::Item(value)) => (producer.id, Ok(value)),
                Some(Received::Lagged(missed)) => (
                    producer.id,
                    Err(ConsumeError::Lagged {
                        producer: producer.id,
                        missed,
                    }),
                ),
            });
        }
        delivered |= !outs.is_empty();
        if hand_over(&spec.tx, outs).await.is_err() {
            return Ok((End::Closed, delivered));
        }
        if let Some(total) = lock(inlet).ack() {
            subscription.acknowledge(total);
        }
    }
    Err(MeshError::Config(format!(
        "the connection to {} closed",
        producer.address
    )))
}
