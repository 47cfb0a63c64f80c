//! Consuming a stream: its builder, and the typed stream the program
//! reads each producer's items from, in that producer's order (the
//! network side is in `following`).

use super::error::{ConsumeError, MeshError};
use super::following::{Out, Spec, follow};
use super::shared::{Running, Shared};
use super::when::When;
use crate::peer::{PeerId, PeerInfo};
use crate::stream::{Online, Require, StreamId};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

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
        let spec = Arc::new(Spec::new(
            StreamId::of::<T>(self.name),
            self.require,
            self.online,
            self.filter,
            tx,
            online,
        ));
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
