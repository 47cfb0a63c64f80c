//! [`Mirror`], the handle a program holds: opening (the first
//! subscription, made here so its refusal is `open`'s error), reads, and
//! closing.

use super::error::MirrorError;
use super::file;
use super::follower::{FirstApplied, Follower, Stopped};
use super::options::MirrorOptions;
use super::persist::Persist;
use super::stats::{Counters, MirrorStats};
use super::subscribe::{Target, ended, subscribe};
use super::update::Update;
use crate::View;
use crate::client::Remote;
use crate::client::{Client, ClientError};
use crate::network::push::Item;
use crate::protocol::ClientRequest;
use crate::shared::Shared;
use crate::version::VersionSender;
use statemesh_core::Identity;
use statemesh_core::hooks::{HookError, Hooked, Hooks};
use statemesh_core::{Mirrored, Queryable};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

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
    /// [`MirrorError::Client`] with [`Refusal::Identity`](crate::Refusal::Identity) if the
    /// collection is another one (name, type or initial state differ),
    /// [`Refusal::Forbidden`](crate::Refusal::Forbidden) if the token may not read it,
    /// [`Refusal::NoSuchCollection`](crate::Refusal::NoSuchCollection), or [`ClientError::Unreachable`];
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
