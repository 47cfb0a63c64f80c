//! [`Mirror`]: a read-only copy of a collection, held by a process outside
//! its Raft group, kept up to date by changes the nodes push.
//!
//! A mirror subscribes from its version. A node answers with the changes
//! since (from its bounded history of recent versions), or with the whole
//! state if the mirror is older than that history, then pushes each
//! version's changes as it applies them. The mirror acknowledges what it
//! applied; a node keeps only a few pushes unacknowledged and sends a
//! lagging mirror everything since in one merged run, or the whole state
//! once it has fallen out of the history ([`Resync::TooSlow`]). On a lost
//! connection the mirror reconnects with backoff, to any node, and resumes
//! from its version. With a directory it keeps its copy there and resumes
//! from it after a restart.
//!
//! ```no_run
//! # async fn example(client: statemesh::Client) -> Result<(), statemesh::MirrorError> {
//! use statemesh::Mirror;
//! use statemesh::collections::MapState;
//!
//! let prices = Mirror::<MapState<String, u64>>::open(&client, "prices").await?;
//! let mut updates = prices.updates();
//! prices.when().reaches(42).await;
//! println!("{:?} at version {}", prices.get(&"apples".to_owned()), prices.version());
//! # let _ = updates.recv().await;
//! # Ok(())
//! # }
//! ```

pub(crate) mod file;

pub use file::MirrorFileError;

use crate::View;
use crate::client::Remote;
use crate::client::{Attempt, Client, ClientError, Refusal, Resync};
use crate::network::push::{self, Handled, Handler, Item, Subscription};
use crate::protocol::{ClientRequest, Push, Response};
use crate::shared::Shared;
use crate::version::VersionSender;
use statemesh_core::Identity;
use statemesh_core::hooks::{HookError, Hooked, Hooks};
use statemesh_core::{Mirrored, Queryable};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

/// How a mirror keeps its copy and reconnects.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Where to keep the copy across restarts (`None`: memory only).
    pub dir: Option<PathBuf>,
    /// How often, at most, the copy is written there (default 100 ms).
    pub persist_every: Duration,
    /// The first pause before reconnecting (default 50 ms); it doubles up
    /// to `reconnect_max` (default 2 s) while attempts fail.
    pub reconnect_min: Duration,
    /// The longest pause between attempts.
    pub reconnect_max: Duration,
    /// How many updates [`Mirror::updates`] receivers may fall behind
    /// before they miss some (default 1024).
    pub updates_capacity: usize,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            dir: None,
            persist_every: Duration::from_millis(100),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            updates_capacity: 1024,
        }
    }
}

impl MirrorOptions {
    /// Keeps the copy in `dir`.
    #[must_use]
    pub fn persist_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

/// Why a mirror could not be opened, or stopped following.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The cluster refused or could not be reached (an identity or type
    /// mismatch, a token that may not read the collection, no node up).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The copy on disk could not be used.
    #[error(transparent)]
    File(#[from] MirrorFileError),
    /// A push could not be applied (a node of another build?).
    #[error("could not apply what a node sent: {0}")]
    Decode(String),
}

/// One step of a mirror's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Update<C> {
    /// The whole state was replaced by a node's, at `version`.
    Reset {
        /// The version of the state received.
        version: u64,
        /// Why the whole state was sent.
        reason: Resync,
    },
    /// The changes that took the mirror from `from` to `to`, in order.
    Changes {
        /// The version before.
        from: u64,
        /// The version after.
        to: u64,
        /// What changed (empty: the version passed with no change).
        changes: Vec<C>,
    },
}

/// Counts of what a mirror received, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Whole states received.
    pub full_states: u64,
    /// Runs of changes received.
    pub diffs: u64,
    /// Subscriptions made after the first (reconnections).
    pub resubscriptions: u64,
}

#[derive(Default)]
struct Counters {
    full_states: AtomicU64,
    diffs: AtomicU64,
    resubscriptions: AtomicU64,
    /// [`Mirror::updates`] was called: changes are decoded a second time,
    /// for its receivers. Asking the channel instead (`receiver_count`)
    /// takes its lock, a cache miss for every push to every mirror in a
    /// process that holds many; this flag shares a line with `diffs`, which
    /// every push touches anyway. It stays set: a receiver dropped later
    /// costs only the second decoding.
    watched: AtomicBool,
    /// The copy's version, as the follower last set it. Checked against
    /// each push instead of the version the copy publishes: that one is
    /// watched from other threads, and reading it before setting it costs
    /// a transfer of its cache line more per push.
    applied: AtomicU64,
}

/// Pushes a mirror applies per acknowledgement (less than the node's
/// window of unacknowledged pushes, `server::subscription::WINDOW`).
const ACK_EVERY: usize = 4;

/// Tells `open` how the first push went.
type FirstApplied = Arc<std::sync::Mutex<Option<oneshot::Sender<Result<(), MirrorError>>>>>;

/// What stopped a mirror for good, if anything.
type Stopped = watch::Sender<Option<Arc<MirrorError>>>;

/// A read-only copy of collection state `SM`, followed from a cluster. It
/// reads like the collection's `statemesh::Reader` (it dereferences
/// to the same [`View`]); dropping it ends the subscription.
pub struct Mirror<SM: Mirrored> {
    view: View<SM>,
    inner: Arc<Inner<SM>>,
}

struct Inner<SM: Mirrored> {
    /// What events are sent through, and to which collection.
    client: Client,
    name: String,
    signature: String,
    /// The version of the copy read from the directory, if any.
    resumed_from: Option<u64>,
    updates: broadcast::Sender<Arc<Update<SM::Change>>>,
    counters: Arc<Counters>,
    stopped: Stopped,
    tasks: Vec<JoinHandle<()>>,
    /// Writes the copy once more on close.
    persist: Option<Persist<SM>>,
}

impl<SM: Mirrored> Drop for Inner<SM> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl<SM: Mirrored> std::ops::Deref for Mirror<SM> {
    type Target = View<SM>;
    fn deref(&self) -> &View<SM> {
        &self.view
    }
}

impl<SM: Mirrored> std::fmt::Debug for Mirror<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("version", &self.view.version())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What a subscription needs to be made again.
struct Target {
    client: Client,
    request: Box<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
}

impl<SM: Mirrored + Default> Mirror<SM> {
    /// Mirrors collection `name` through `client`, in memory.
    ///
    /// # Errors
    ///
    /// As [`Mirror::open_with`].
    pub async fn open(client: &Client, name: &str) -> Result<Self, MirrorError> {
        Self::open_with(client, name, SM::default(), MirrorOptions::default()).await
    }
}

impl<SM: Mirrored> Mirror<SM> {
    /// Mirrors collection `name`, whose initial state is `initial` (part of
    /// its identity), as `options` say. Returns once the mirror holds the
    /// collection's state as of some version at least as new as its copy
    /// on disk.
    ///
    /// # Errors
    ///
    /// [`MirrorError::Client`] with [`Refusal::Identity`] if the
    /// collection is another one (name, type or initial state differ),
    /// [`Refusal::Forbidden`] if the token may not read it,
    /// [`Refusal::NoSuchCollection`], or [`ClientError::Unreachable`];
    /// [`MirrorError::File`] if the copy on disk is damaged or of another
    /// collection.
    pub async fn open_with(
        client: &Client,
        name: &str,
        initial: SM,
        options: MirrorOptions,
    ) -> Result<Self, MirrorError> {
        let identity = Identity::of(name, &initial);
        let signature = initial.signature();
        let own_signature = signature.clone();
        let mut sm = initial;
        let mut resumed_from = None;
        if let Some(dir) = &options.dir
            && let Some((v, state)) = file::load::<SM::Snapshot>(dir, identity)?
        {
            sm.restore(state);
            resumed_from = Some(v);
        }
        let version = resumed_from.unwrap_or(0);
        let shared = Arc::new(Shared {
            sm: RwLock::new(sm),
            version: VersionSender::new(version),
        });
        let collection = name.to_owned();
        let target = Target {
            client: client.clone(),
            request: Box::new(move |from| {
                postcard::to_allocvec(&ClientRequest::Subscribe {
                    collection: collection.clone(),
                    signature: signature.clone(),
                    identity,
                    from,
                })
                .unwrap_or_default()
            }),
        };
        let (updates, _) = broadcast::channel(options.updates_capacity.max(1));
        let counters = Arc::new(Counters {
            applied: AtomicU64::new(version),
            ..Counters::default()
        });
        let follower = Follower {
            shared: Arc::clone(&shared),
            updates: updates.clone(),
            counters: Arc::clone(&counters),
        };
        // The first subscription is made here, so that a refusal is this
        // call's error and the mirror is current when it returns (the node
        // pushes at once, if only to say the copy is current).
        let deadline = tokio::time::Instant::now() + client.timeout();
        let (first, applied) = oneshot::channel();
        let first: FirstApplied = Arc::new(std::sync::Mutex::new(Some(first)));
        let mut subscription = subscribe(
            &target,
            version,
            &|| follower.handler(Some(Arc::clone(&first))),
            deadline.into_std(),
        )
        .await?;
        // Only the subscription's handler may hold it now.
        drop(first);
        let mut applied = std::pin::pin!(applied);
        let mut handler_gone = false;
        loop {
            tokio::select! {
                biased;
                first = &mut applied, if !handler_gone => match first {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => return Err(e),
                    // The handler is gone unused: the subscription ended,
                    // and says how below.
                    Err(_) => handler_gone = true,
                },
                item = subscription.next() => match item {
                    // Left for later by the handler (the state was held):
                    // applied here.
                    Some(Item::Push(bytes)) => {
                        follower.apply(&bytes, true)?;
                        if subscription.caught_up() {
                            break;
                        }
                    }
                    Some(Item::End(reply)) => return Err(ended(&reply).into()),
                    Some(Item::Refused) => {
                        return Err(MirrorError::Decode(
                            "the first push could not be applied".into(),
                        ));
                    }
                    None => {
                        return Err(ClientError::Unreachable {
                            timeout: client.timeout(),
                            last: "the connection closed as the mirror subscribed".into(),
                        }
                        .into());
                    }
                },
            }
        }
        let (stopped, _) = watch::channel(None);
        let mut tasks = vec![tokio::spawn(follower.run(
            target,
            subscription,
            stopped.clone(),
            options.clone(),
        ))];
        let persist = options.dir.clone().map(|dir| Persist {
            dir,
            identity,
            shared: Arc::clone(&shared),
            writing: Arc::default(),
        });
        if let Some(p) = &persist {
            tasks.push(tokio::spawn(p.clone().run(options.persist_every)));
        }
        Ok(Self {
            view: View::new(shared),
            inner: Arc::new(Inner {
                client: client.clone(),
                name: name.to_owned(),
                signature: own_signature,
                resumed_from,
                updates,
                counters,
                stopped,
                tasks,
                persist,
            }),
        })
    }

    /// A receiver of every update from now on: changes as they arrive,
    /// and resets when the whole state is replaced. A receiver more than
    /// [`MirrorOptions::updates_capacity`] updates behind misses the oldest
    /// (it is told how many). To start from a consistent point, take the
    /// receiver first, then read the state with
    /// [`View::read_versioned`], and skip updates up to that version.
    #[must_use]
    pub fn updates(&self) -> broadcast::Receiver<Arc<Update<SM::Change>>> {
        // Before subscribing: a push applied from now on is decoded for it.
        self.inner.counters.watched.store(true, Ordering::Release);
        self.inner.updates.subscribe()
    }

    /// The version of the copy it found in its directory, if it did.
    #[must_use]
    pub fn resumed_from(&self) -> Option<u64> {
        self.inner.resumed_from
    }

    /// What it received so far.
    #[must_use]
    pub fn stats(&self) -> MirrorStats {
        let c = &self.inner.counters;
        MirrorStats {
            full_states: c.full_states.load(Ordering::Relaxed),
            diffs: c.diffs.load(Ordering::Relaxed),
            resubscriptions: c.resubscriptions.load(Ordering::Relaxed),
        }
    }

    /// Why the mirror stopped following for good (the collection was
    /// dropped, or refused to it: its identity changed, the token expired
    /// or lost its access), if it did.
    #[must_use]
    pub fn stopped(&self) -> Option<Arc<MirrorError>> {
        self.inner.stopped.borrow().clone()
    }

    /// Waits until the mirror stops following for good, and says why (see
    /// [`Mirror::stopped`]). A program that follows
    /// [`Mirror::updates`] selects on this too: the updates then simply
    /// stop coming.
    pub async fn until_stopped(&self) -> Arc<MirrorError> {
        let mut stopped = self.inner.stopped.subscribe();
        loop {
            if let Some(e) = stopped.borrow_and_update().clone() {
                return e;
            }
            if stopped.changed().await.is_err() {
                // The sender lives in `inner`, which `self` holds.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops following and, with a directory, writes the copy there once
    /// more.
    ///
    /// # Errors
    ///
    /// [`MirrorError::File`] if the copy could not be written.
    pub async fn close(self) -> Result<(), MirrorError> {
        for t in &self.inner.tasks {
            t.abort();
        }
        if let Some(p) = self.inner.persist.clone() {
            tokio::task::spawn_blocking(move || p.write())
                .await
                .map_err(|e| MirrorError::Decode(e.to_string()))??;
        }
        Ok(())
    }
}

impl<H: Hooks> Mirror<Hooked<H>>
where
    H::State: Queryable,
{
    /// Sends `event` to the collection (see
    /// [`Remote::send_event`](crate::Remote::send_event)); the mirror sees
    /// its changes once they are pushed.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn send_event(
        &self,
        event: H::Event,
    ) -> Result<(Result<H::Output, HookError>, u64), ClientError> {
        let i = &self.inner;
        Remote::<Hooked<H>>::new(i.client.clone(), i.name.clone(), i.signature.clone())
            .send_event(event)
            .await
    }
}

/// Opens a subscription from `version` whose pushes go to a handler made
/// by `handler`, trying the client's nodes until `deadline`.
async fn subscribe(
    target: &Target,
    version: u64,
    handler: &(dyn Fn() -> Handler + Sync),
    deadline: std::time::Instant,
) -> Result<Subscription, ClientError> {
    target
        .client
        .retrying(deadline, Duration::from_millis(500), |c| {
            let request = (target.request)(version);
            let handler = handler();
            async move {
                match c.subscribe(request, handler).await {
                    Ok(s) => Attempt::Done(Ok(s)),
                    Err(e) => Attempt::Retry(format!("{e:?}")),
                }
            }
        })
        .await
}

/// The refusal or error a subscription's closing reply carries.
fn ended(reply: &[u8]) -> ClientError {
    match statemesh_core::decode::from_bytes::<Response>(reply) {
        Ok(Err(refusal)) => ClientError::Refused(refusal),
        Ok(Ok(_)) => ClientError::Refused(Refusal::Unavailable(
            "the node ended the subscription".into(),
        )),
        Err(e) => ClientError::Decode(e.to_string()),
    }
}

/// Whether a refusal will stand however often the mirror asks again.
fn lasting(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Refused(
            Refusal::Identity { .. }
                | Refusal::Forbidden { .. }
                | Refusal::Mismatch { .. }
                | Refusal::NoSuchCollection(_)
                | Refusal::Dropped(_)
                | Refusal::UnknownKind(_)
        ) | ClientError::Connection { .. }
    )
}

/// Applies pushes to the mirror's state.
struct Follower<SM: Mirrored> {
    shared: Arc<Shared<SM>>,
    updates: broadcast::Sender<Arc<Update<SM::Change>>>,
    counters: Arc<Counters>,
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
    fn apply(&self, bytes: &[u8], wait: bool) -> Result<Option<u64>, MirrorError> {
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
    fn handler(&self, first: Option<FirstApplied>) -> Handler {
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
    async fn run(
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

/// Writes a mirror's copy to its directory.
struct Persist<SM: Mirrored> {
    dir: PathBuf,
    identity: Identity,
    shared: Arc<Shared<SM>>,
    /// One write at a time: a background write may still run when `close`
    /// writes (aborting its task does not stop a blocking write).
    writing: Arc<std::sync::Mutex<()>>,
}

impl<SM: Mirrored> Clone for Persist<SM> {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            identity: self.identity,
            shared: Arc::clone(&self.shared),
            writing: Arc::clone(&self.writing),
        }
    }
}

impl<SM: Mirrored> Persist<SM> {
    /// Writes the copy as it is now.
    fn write(&self) -> Result<(), MirrorError> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let (state, version) = {
            let sm = self.shared.sm.read().unwrap_or_else(|e| e.into_inner());
            (sm.snapshot(), self.shared.version.get())
        };
        file::store(&self.dir, self.identity, version, &state)?;
        Ok(())
    }

    /// Writes the copy after each change, at most once per `every`.
    async fn run(self, every: Duration) {
        let mut version = self.shared.version.subscribe();
        loop {
            if version.changed().await.is_err() {
                return;
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.write()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "mirror: writing the copy"),
                Err(_) => return,
            }
            tokio::time::sleep(every).await;
        }
    }
}
