//! The follower: applies each push to the mirror's state, acknowledges
//! them, and subscribes again when a subscription ends.

use super::error::MirrorError;
use super::options::MirrorOptions;
use super::stats::Counters;
use super::subscribe::{Target, ended, lasting, subscribe};
use super::update::Update;
use crate::client::ClientError;
use crate::network::push::{self, Handled, Handler, Item, Subscription};
use crate::protocol::Push;
use crate::shared::Shared;
use statemesh_core::Mirrored;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, oneshot, watch};

/// Pushes a mirror applies per acknowledgement (less than the node's
/// window of unacknowledged pushes, `server::subscription::WINDOW`).
const ACK_EVERY: usize = 4;

/// Tells `open` how the first push went.
pub(super) type FirstApplied =
    Arc<std::sync::Mutex<Option<oneshot::Sender<Result<(), MirrorError>>>>>;

/// What stopped a mirror for good, if anything.
pub(super) type Stopped = watch::Sender<Option<Arc<MirrorError>>>;

/// Applies pushes to the mirror's state.
pub(super) struct Follower<SM: Mirrored> {
    pub(super) shared: Arc<Shared<SM>>,
    pub(super) updates: broadcast::Sender<Arc<Update<SM::Change>>>,
    pub(super) counters: Arc<Counters>,
}

impl<SM: Mirrored> Clone for Follower<SM> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            updates: self.updates.clone(),
            counters: Arc::clone(&self.counters),
        }
    }
}

impl<SM: Mirrored> Follower<SM> {
    /// Applies one push; returns the version it took the mirror to.
    /// With `wait` false, nothing is applied (`None`) if the state is held
    /// (a reader is reading it): the caller must not wait for it.
    pub(super) fn apply(&self, bytes: &[u8], wait: bool) -> Result<Option<u64>, MirrorError> {
        let push: Push = statemesh_core::decode::from_bytes(bytes)
            .map_err(|e| MirrorError::Decode(e.to_string()))?;
        let decode = |e: postcard::Error| MirrorError::Decode(e.to_string());
        match push {
            Push::Full {
                version,
                reason,
                state,
            } => {
                let state: SM::Snapshot =
                    statemesh_core::decode::from_bytes(state).map_err(decode)?;
                {
                    let Some(mut sm) = self.state(wait) else {
                        return Ok(None);
                    };
                    sm.restore(state);
                    self.set_version(version);
                }
                self.counters.full_states.fetch_add(1, Ordering::Relaxed);
                let _ = self
                    .updates
                    .send(Arc::new(Update::Reset { version, reason }));
                Ok(Some(version))
            }
            Push::Diff { from, to, parts } => {
                let at = self.counters.applied.load(Ordering::Acquire);
                if from != at {
                    return Err(MirrorError::Decode(format!(
                        "changes from version {from} for a copy at {at}"
                    )));
                }
                if from == to && parts.is_empty() {
                    // The node's word that the copy is current.
                    return Ok(Some(to));
                }
                // Decoded whole before any is applied: a bad push changes
                // nothing.
                let mut changes = Vec::new();
                for part in &parts {
                    changes.extend(
                        statemesh_core::decode::from_bytes::<Vec<SM::Change>>(part)
                            .map_err(decode)?,
                    );
                }
                let watched = self.counters.watched.load(Ordering::Acquire);
                let copy = if watched {
                    let mut again = Vec::with_capacity(changes.len());
                    for part in &parts {
                        again.extend(
                            statemesh_core::decode::from_bytes::<Vec<SM::Change>>(part)
                                .map_err(decode)?,
                        );
                    }
                    Some(again)
                } else {
                    None
                };
                {
                    let Some(mut sm) = self.state(wait) else {
                        return Ok(None);
                    };
                    for c in changes {
                        sm.apply_change(c);
                    }
                    self.set_version(to);
                }
                self.counters.diffs.fetch_add(1, Ordering::Relaxed);
                if let Some(changes) = copy {
                    let _ = self
                        .updates
                        .send(Arc::new(Update::Changes { from, to, changes }));
                }
                Ok(Some(to))
            }
        }
    }

    /// Sets the copy's version; called with the state held.
    fn set_version(&self, version: u64) {
        self.counters.applied.store(version, Ordering::Release);
        self.shared.version.set(version);
    }

    /// The state, to change; `None` without `wait` if it is held.
    fn state(&self, wait: bool) -> Option<std::sync::RwLockWriteGuard<'_, SM>> {
        if wait {
            return Some(self.shared.sm.write().unwrap_or_else(|e| e.into_inner()));
        }
        match self.shared.sm.try_write() {
            Ok(sm) => Some(sm),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The handler of one subscription: applies each push as the
    /// connection reads it, and acknowledges every few. The first push
    /// applied (or refused) is told to `first`.
    pub(super) fn handler(&self, first: Option<FirstApplied>) -> Handler {
        let follower = self.clone();
        let mut unacked = 0;
        let mut first = first;
        let mut tell_first = move |result: Result<(), MirrorError>| {
            if let Some(tx) = first
                .take()
                .and_then(|f| f.lock().unwrap_or_else(|e| e.into_inner()).take())
            {
                let _ = tx.send(result);
            }
        };
        push::handler(move |bytes| match follower.apply(bytes, false) {
            // The state is being read: the subscription's task applies
            // this push and the next ones, waiting for the reader.
            Ok(None) => Handled::Later,
            Ok(Some(applied)) => {
                tell_first(Ok(()));
                unacked += 1;
                // Every few pushes are enough to keep the node's window
                // open (it allows twice as many unacknowledged), and cut
                // the acknowledgements a node with many mirrors handles.
                if unacked >= ACK_EVERY {
                    unacked = 0;
                    Handled::Acknowledge(applied)
                } else {
                    Handled::Taken
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "mirror: a push could not be applied; subscribing again");
                tell_first(Err(e));
                Handled::Refused
            }
        })
    }

    /// Follows until a lasting refusal: the subscription's handler applies
    /// the pushes (and this task those it leaves for later, when the state
    /// was being read); when the subscription ends, this subscribes again
    /// (with backoff, to any node).
    pub(super) async fn run(
        self,
        target: Target,
        mut subscription: Subscription,
        stopped: Stopped,
        options: MirrorOptions,
    ) {
        let mut pause = options.reconnect_min;
        let received = || {
            let c = &self.counters;
            c.diffs.load(Ordering::Relaxed) + c.full_states.load(Ordering::Relaxed)
        };
        loop {
            let before = received();
            if let Some(e) = self.follow(&mut subscription).await {
                if lasting(&e) {
                    tracing::warn!(error = %e, "mirror: stopped");
                    stopped.send_replace(Some(Arc::new(e.into())));
                    return;
                }
                tracing::debug!(error = %e, "mirror: subscription ended");
            }
            drop(subscription);
            // A subscription that brought something worked: the pauses
            // start short again.
            if received() > before {
                pause = options.reconnect_min;
            }
            subscription = loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(options.reconnect_max);
                let version = self.shared.version.get();
                let deadline = std::time::Instant::now() + target.client.timeout();
                match subscribe(&target, version, &|| self.handler(None), deadline).await {
                    Ok(s) => break s,
                    Err(e) if lasting(&e) => {
                        stopped.send_replace(Some(Arc::new(e.into())));
                        return;
                    }
                    Err(e) => tracing::debug!(error = %e, "mirror: reconnecting"),
                }
            };
            self.counters
                .resubscriptions
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies the pushes the handler left for later until the
    /// subscription ends; returns the node's refusal, if it ended with one.
    async fn follow(&self, subscription: &mut Subscription) -> Option<ClientError> {
        loop {
            let mut next = subscription.next().await;
            let mut applied = None;
            loop {
                match next {
                    Some(Item::Push(bytes)) => match self.apply(&bytes, true) {
                        Ok(v) => applied = v.or(applied),
                        Err(e) => {
                            tracing::warn!(error = %e, "mirror: a push could not be applied; subscribing again");
                            return None;
                        }
                    },
                    Some(Item::End(reply)) => return Some(ended(&reply)),
                    Some(Item::Refused) | None => return None,
                }
                next = subscription.next_now();
                if next.is_none() {
                    // Everything that arrived is applied: one
                    // acknowledgement covers it, and the handler takes
                    // the next pushes again.
                    if let Some(v) = applied.take() {
                        subscription.acknowledge(v);
                    }
                    if subscription.caught_up() {
                        break;
                    }
                    next = subscription.next_now();
                }
            }
        }
    }
}
