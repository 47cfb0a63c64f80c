//! Producing a stream: its builder, and the typed handle a program sends
//! through (the network side is in `serving`).

use super::error::MeshError;
use super::serving::ProducerCore;
use super::shared::{Running, Shared, lock};
use super::signal::{Rising, Signal};
use super::when::When;
use crate::peer::PeerInfo;
use crate::stream::{
    ACK_BYTES, Encoded, LagPolicy, Online, Outlet, Require, Ring, RingLimits, StreamId, Window,
};
use serde::Serialize;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::watch;

/// A ring in an epoch drawn at random: a producer that keeps nothing on
/// disk starts a new numbering each run.
fn random_ring(limits: RingLimits) -> Result<Ring, MeshError> {
    let mut epoch = [0u8; 8];
    getrandom::fill(&mut epoch).map_err(|e| MeshError::Config(format!("no randomness: {e}")))?;
    Ok(Ring::new(u64::from_le_bytes(epoch), limits))
}

/// Why an item was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The producer is offline (its online condition does not hold) and
    /// the item was offered without waiting.
    #[error("the producer is offline: its online condition does not hold")]
    Offline,
    /// The item did not encode.
    #[error("the item did not encode: {0}")]
    Encode(String),
    /// The durable producer's log refused the item.
    #[error("{0}")]
    Log(String),
    /// The item is larger than a frame may carry.
    #[error("an item of {len} bytes is over the {max}-byte frame cap")]
    TooLarge {
        /// Its encoded size.
        len: usize,
        /// The cap.
        max: usize,
    },
}

/// Settings of a producer; from [`Streams::produce`](super::Streams::produce).
pub struct ProducerBuilder<T> {
    shared: Arc<Shared>,
    running: Arc<Running>,
    name: String,
    require: Option<Require>,
    online: Online,
    ring: RingLimits,
    window: Window,
    max_consumers: usize,
    policy: LagPolicy,
    patience: std::time::Duration,
    key: Option<KeyFn<T>>,
    #[cfg(feature = "durable")]
    durable: Option<(std::path::PathBuf, statemesh_wal::SyncPolicy)>,
    _items: PhantomData<fn(T)>,
}

type KeyFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

/// How long a send waits for a slow consumer by default.
const DEFAULT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

impl<T> std::fmt::Debug for ProducerBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("name", &self.name)
            .field("online", &self.online)
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + Send + 'static> ProducerBuilder<T> {
    pub(super) fn new(shared: Arc<Shared>, running: Arc<Running>, name: String) -> Self {
        Self {
            shared,
            running,
            name,
            require: None,
            online: Online::default(),
            ring: RingLimits::default(),
            window: Window::default(),
            max_consumers: 1024,
            policy: LagPolicy::default(),
            patience: DEFAULT_PATIENCE,
            key: None,
            #[cfg(feature = "durable")]
            durable: None,
            _items: PhantomData,
        }
    }

    /// Keeps the replay buffer on disk in `dir` (feature `durable`): a
    /// producer that restarts with the same peer id and directory keeps its
    /// numbering and what it buffered, so its consumers resume with no gap.
    /// Items are sent once the log has them under `sync`: with
    /// `SyncPolicy::Never` or `Interval`, a killed process loses nothing
    /// sent; with `Always`, a power failure loses nothing either.
    #[cfg(feature = "durable")]
    #[must_use]
    pub fn durable(
        mut self,
        dir: impl Into<std::path::PathBuf>,
        sync: statemesh_wal::SyncPolicy,
    ) -> Self {
        self.durable = Some((dir.into(), sync));
        self
    }

    /// Accepts only consumers whose entry passes `test` (by their tags,
    /// say).
    #[must_use]
    pub fn require(mut self, test: impl Fn(&PeerInfo) -> bool + Send + Sync + 'static) -> Self {
        self.require = Some(Arc::new(test));
        self
    }

    /// When the producer is online (default: one consumer of any tags):
    /// `online_when(|c| c.minimum_of(2).with_tags(["role=validator"]))`.
    #[must_use]
    pub fn online_when(mut self, condition: impl FnOnce(Online) -> Online) -> Self {
        self.online = condition(Online::default());
        self
    }

    /// How many items, and bytes, the replay buffer keeps (default 1,024
    /// items, 16 MiB). A consumer that reconnects within it misses
    /// nothing; every consumer's memory on this side is bounded by it.
    #[must_use]
    pub fn buffer(mut self, items: usize, bytes: usize) -> Self {
        self.ring = RingLimits { items, bytes };
        self
    }

    /// How far ahead of a consumer's acknowledgements the producer sends:
    /// at most `items` items and `bytes` bytes (at least 128 KiB, since
    /// consumers acknowledge every 64 KiB; one item always goes, however
    /// large). Default 1,024 items or 2 MiB: enough to keep a
    /// stream of small items at full speed while acknowledgements travel,
    /// and what a consumer that stops reading can hold of the producer's
    /// memory beyond the shared buffer.
    #[must_use]
    pub fn window(mut self, items: u32, bytes: usize) -> Self {
        self.window = Window {
            items,
            bytes: bytes.max(2 * ACK_BYTES),
        };
        self
    }

    /// Consumers accepted at most (default 1,024).
    #[must_use]
    pub fn max_consumers(mut self, n: usize) -> Self {
        self.max_consumers = n;
        self
    }

    /// What happens to a consumer the buffer leaves behind (default:
    /// disconnect it).
    #[must_use]
    pub fn on_lag(mut self, policy: LagPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long [`Producer::send`] waits for a consumer that has not been
    /// sent the oldest buffered item, before pushing it out anyway
    /// (default 1 s). Within it, a producer faster than its consumers is
    /// slowed to their pace and nobody loses anything; past it, the
    /// consumer is handled by the lag policy, and the producer does not
    /// wait for it again until it has caught up. `Duration::ZERO`: never
    /// wait (the buffer alone decides).
    #[must_use]
    pub fn patience(mut self, patience: std::time::Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Gives each item a key that consumers' filters match (`eu/prices`
    /// matched by `eu/*`). Without one, a consumer with a filter gets
    /// nothing.
    #[must_use]
    pub fn key(mut self, key: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// Starts producing: the stream appears in this peer's catalog entry.
    ///
    /// # Errors
    ///
    /// [`MeshError::MayNotProduce`] if this process's pass does not allow
    /// producing the stream; [`MeshError::AlreadyProduced`] if this
    /// process produces it already; [`MeshError::TypeMismatch`] if
    /// another peer produces it as another type.
    pub fn start(self) -> Result<Producer<T>, MeshError> {
        let shared = &self.shared;
        if !shared.grant.may_produce(&self.name) {
            return Err(MeshError::MayNotProduce(self.name));
        }
        let stream = StreamId::of::<T>(self.name.clone());
        for (_, theirs) in shared.catalog.borrow().producers_of(&self.name) {
            theirs.accepts(&stream)?;
        }
        #[cfg(feature = "durable")]
        let (log, ring) = match &self.durable {
            Some((dir, sync)) => {
                let (log, ring) = super::durable::DurableLog::open(dir, self.ring, *sync)?;
                (Some(log), ring)
            }
            None => (None, random_ring(self.ring)?),
        };
        #[cfg(not(feature = "durable"))]
        let ring = random_ring(self.ring)?;
        #[cfg_attr(not(feature = "durable"), allow(unused_mut))]
        let mut outlet = Outlet::new(ring, self.window, self.max_consumers, self.policy);
        #[cfg(feature = "durable")]
        if log.is_some() {
            outlet = outlet.gated();
            // What the log held is written: it may be sent.
            let next = outlet.ring().next_seq();
            outlet.written(next);
        }
        let published = Arc::new(Rising::default());
        let online_now = self.online.holds(std::iter::empty());
        let core = Arc::new(ProducerCore {
            stream: stream.clone(),
            outlet: Mutex::new(outlet),
            published,
            written: Arc::new(AtomicU64::new(0)),
            require: self.require,
            online_when: self.online,
            online: watch::channel(online_now).0,
            closed: watch::channel(false).0,
            #[cfg(feature = "durable")]
            log,
            next_consumer: AtomicU64::new(1),
            room: Signal::default(),
            patience: self.patience,
            max_item: shared.dialer.limits.max_frame.saturating_sub(64),
        });
        {
            let mut producers = lock(&shared.producers);
            if producers.contains_key(&self.name) {
                return Err(MeshError::AlreadyProduced(self.name));
            }
            producers.insert(self.name.clone(), Arc::clone(&core));
        }
        shared.update_entry(|me| me.streams.push(stream));
        let online = core.online.subscribe();
        Ok(Producer {
            core,
            shared: self.shared,
            _running: self.running,
            key: self.key,
            last_len: AtomicUsize::new(0),
            online,
            ready: Mutex::new(None),
            _items: PhantomData,
        })
    }
}

type Waiting = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Sends items of type `T` to every accepted consumer of its stream.
///
/// Items are numbered and kept in a bounded replay buffer; each consumer
/// gets them in order. [`Producer::send`] (and the [`futures_sink::Sink`]
/// implementation) waits while the producer is offline; [`Producer::try_send`]
/// does not. Dropping the producer ends its consumers' subscriptions and
/// removes the stream from this peer's entry.
pub struct Producer<T> {
    core: Arc<ProducerCore>,
    shared: Arc<Shared>,
    /// Keeps the mesh running while the producer is.
    _running: Arc<Running>,
    key: Option<KeyFn<T>>,
    /// The last item's encoded length.
    last_len: AtomicUsize,
    online: watch::Receiver<bool>,
    /// `poll_ready`'s wait for the producer to come online and have room
    /// (in a mutex only so that the producer is `Sync`: `poll_ready` has
    /// it by `&mut`).
    ready: Mutex<Option<Waiting>>,
    _items: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.core.stream)
            .field("consumers", &self.consumers())
            .finish_non_exhaustive()
    }
}

impl<T> Producer<T> {
    /// The stream.
    #[must_use]
    pub fn stream(&self) -> &StreamId {
        &self.core.stream
    }

    /// How many consumers it sends to now.
    #[must_use]
    pub fn consumers(&self) -> usize {
        self.core.outlet().len()
    }

    /// Waits until every consumer it sends to has taken every item sent
    /// so far (a program that sends its last item and exits calls this
    /// first, so that nothing is left in flight), or until `timeout`
    /// passes; `true` if they have. Consumers that come or go meanwhile
    /// count from when they are there.
    pub async fn flushed(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.core.outlet().drained() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // Acknowledgements come without a signal the producer side
            // could wait on here; a short poll is cheap at the end of a
            // run.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Its online state, to test or wait on.
    #[must_use]
    pub fn when(&self) -> When {
        When::new(self.online.clone())
    }
}

impl<T: Serialize> Producer<T> {
    /// Sends `item` once the producer is online and its buffer has room
    /// (see [`ProducerBuilder::patience`]); returns its sequence number
    /// (for a durable producer, once its log has the item).
    ///
    /// # Errors
    ///
    /// [`ProduceError`]: the item did not encode or is too large.
    pub async fn send(&self, item: &T) -> Result<u64, ProduceError> {
        let (key, value) = self.encode(item)?;
        ready(&self.core, &self.when(), value.len()).await;
        let seq = self.publish(key, value)?;
        // A durable producer's item counts as sent once its log has it.
        #[cfg(feature = "durable")]
        if self.core.log.is_some() {
            self.core.published.past(seq).await;
        }
        Ok(seq)
    }

    /// Sends `item` now, if the producer is online, without waiting for
    /// room: consumers that have not been sent the items it pushes out of
    /// the buffer are handled by the lag policy.
    ///
    /// # Errors
    ///
    /// [`ProduceError::Offline`], or the item did not encode or is too
    /// large.
    pub fn try_send(&self, item: &T) -> Result<u64, ProduceError> {
        if !*self.online.borrow() {
            return Err(ProduceError::Offline);
        }
        let (key, value) = self.encode(item)?;
        self.core.outlet().give_up_waiting(value.len());
        self.publish(key, value)
    }

    /// The item's key and encoded value.
    fn encode(&self, item: &T) -> Result<(Option<String>, Encoded), ProduceError> {
        // Sized like the last item: most streams' items are alike, and a
        // buffer that grows as it is written is reallocated several times.
        let hint = self.last_len.load(Ordering::Relaxed);
        let value = Encoded::new(item, hint).map_err(|e| ProduceError::Encode(e.to_string()))?;
        self.last_len.store(value.len(), Ordering::Relaxed);
        if value.len() > self.core.max_item {
            return Err(ProduceError::TooLarge {
                len: value.len(),
                max: self.core.max_item,
            });
        }
        Ok((self.key.as_ref().map(|k| k(item)), value))
    }

    fn publish(&self, key: Option<String>, value: Encoded) -> Result<u64, ProduceError> {
        let mut outlet = self.core.outlet();
        #[cfg(feature = "durable")]
        if let Some(log) = &self.core.log {
            // The log's order must be the ring's: appended under the lock.
            let seq = outlet.publish(key.clone(), value);
            let delivery = outlet
                .ring()
                .get(seq)
                .map(|i| i.payload.clone())
                .unwrap_or_default();
            log.purge_before(outlet.ring().first_seq());
            let (written, published) = (
                Arc::clone(&self.core.written),
                Arc::clone(&self.core.published),
            );
            log.append(seq, key, &delivery, move || {
                written.fetch_max(seq + 1, std::sync::atomic::Ordering::Release);
                published.raise(seq + 1);
            })
            .map_err(|e| ProduceError::Log(e.to_string()))?;
            return Ok(seq);
        }
        let seq = outlet.publish(key, value);
        drop(outlet);
        self.core.published.raise(seq + 1);
        Ok(seq)
    }
}

/// Waits until the producer is online and an item of `len` bytes fits in
/// its buffer without pushing out one a consumer has not been sent; after
/// the producer's patience, it stops waiting for those consumers.
async fn ready(core: &ProducerCore, when: &When, len: usize) {
    when.online().await;
    if core.outlet().room_for(len) {
        return;
    }
    let deadline = tokio::time::Instant::now() + core.patience;
    let room = || core.outlet().room_for(len);
    if !core.room.wait_until(room, Some(deadline)).await {
        core.outlet().give_up_waiting(len);
    }
}

impl<T: Serialize> futures_sink::Sink<T> for Producer<T> {
    type Error = ProduceError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if *self.online.borrow() && self.core.outlet().room_for(0) {
            *self.ready.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
            return Poll::Ready(Ok(()));
        }
        let (core, when) = (Arc::clone(&self.core), self.when());
        let ready_slot = self.ready.get_mut().unwrap_or_else(PoisonError::into_inner);
        let wait =
            ready_slot.get_or_insert_with(|| Box::pin(async move { ready(&core, &when, 0).await }));
        match wait.as_mut().poll(cx) {
            Poll::Ready(()) => {
                *ready_slot = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let (key, value) = self.encode(&item)?;
        self.publish(key, value).map(|_| ())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Items are in the replay buffer once sent: nothing is held back.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        lock(&self.shared.producers).remove(&self.core.stream.name);
        self.core.closed.send_replace(true);
        let stream = self.core.stream.clone();
        self.shared
            .update_entry(|me| me.streams.retain(|s| *s != stream));
    }
}
