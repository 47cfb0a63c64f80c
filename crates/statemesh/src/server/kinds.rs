//! The state machines a server can host, found by signature, and the
//! type-erased face of a hosted group.

use super::fanout::{Fanout, Followed};
use crate::error::{ExecuteError, GroupError, QueryError};
use crate::group::rpc::Stamped;
use crate::group::{
    Consistency, Group, GroupId, GroupStatus, History, HistoryLimits, Identity, Item, Recorder,
    Recording, Redirect, Since, When, merge_history,
};
use crate::node::{Node, Start};
use crate::types::NodeId;
use crate::types::Raft;
use statemesh_client::Refusal;
use statemesh_client::local::{LocalError, Publication, Publish, RegionWriter};
use statemesh_core::hooks::{HookError, Hooked, Hooks};
use statemesh_core::{Mirrored, Queryable, StateMachine};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a hosted collection's state machine must be: readable remotely,
/// followable by mirrors, and publishable to local readers.
pub trait Hostable: Queryable + Mirrored + Publish {}
impl<SM: Queryable + Mirrored + Publish> Hostable for SM {}

/// A group as the server sees it: bytes in, bytes out.
pub(crate) trait Hosted: Followed {
    fn signature(&self) -> &str;
    fn identity(&self) -> Identity;
    /// Publishes the collection to shared memory into `region`.
    fn publish_local(&self, region: RegionWriter) -> Result<Publication, LocalError>;
    fn raft(&self) -> &Raft;
    fn group_id(&self) -> GroupId;
    fn status(&self) -> GroupStatus;
    /// How many entries the state holds, if its kind counts them.
    fn entries(&self) -> Option<u64>;
    /// Marks the collection dropped: its subscriptions end.
    fn mark_dropped(&self);
    /// Becomes true when the collection is dropped.
    fn dropped(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Runs a client's command, answering by `deadline`; a node that
    /// cannot reach a quorum says so at once, so the client tries another.
    fn execute(
        &self,
        command: Stamped,
        deadline: Instant,
    ) -> LocalFuture<'_, Result<(Vec<u8>, u64), ExecuteError>>;
    fn query(
        &self,
        consistency: Consistency,
        query: Vec<u8>,
        deadline: Instant,
    ) -> LocalFuture<'_, Result<(Vec<u8>, u64), Refusal>>;
}

struct HostedGroup<SM: Hostable> {
    group: Group<SM>,
    signature: String,
    identity: Identity,
    history: Arc<History>,
    fanout: Fanout,
    dropped: tokio::sync::watch::Sender<bool>,
}

impl<SM: Hostable> Followed for HostedGroup<SM> {
    fn since(&self, from: u64) -> Since {
        self.history.since(from)
    }

    fn history_version(&self) -> u64 {
        self.history.version()
    }

    fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    fn merge(&self, items: &[Item]) -> Result<Vec<u8>, Refusal> {
        merge_history::<SM>(items)
            .map_err(|e| Refusal::BadRequest(format!("merging the history: {e}")))
    }

    fn full_state(&self) -> Result<(u64, Vec<u8>), Refusal> {
        // Taken under the state's lock, where the history's version is the
        // state's (the store publishes to it before unlocking); encoded
        // after, from the O(1) snapshot.
        let (state, version) = self
            .group
            .read_local(|sm| (sm.snapshot(), self.history.version()));
        let bytes = postcard::to_allocvec(&state)
            .map_err(|e| Refusal::BadRequest(format!("encoding the state: {e}")))?;
        Ok((version, bytes))
    }

    fn when(&self) -> When {
        self.group.when()
    }
}

impl<SM: Hostable> Hosted for HostedGroup<SM> {
    fn signature(&self) -> &str {
        &self.signature
    }

    fn identity(&self) -> Identity {
        self.identity
    }

    fn publish_local(&self, region: RegionWriter) -> Result<Publication, LocalError> {
        Publication::start_with(self.group.shared(), region)
    }

    fn raft(&self) -> &Raft {
        self.group.raft()
    }

    fn group_id(&self) -> GroupId {
        self.group.id()
    }

    fn status(&self) -> GroupStatus {
        self.group.status()
    }

    fn entries(&self) -> Option<u64> {
        self.group.read_local(StateMachine::entries)
    }

    fn mark_dropped(&self) {
        self.dropped.send_replace(true);
    }

    fn dropped(&self) -> tokio::sync::watch::Receiver<bool> {
        self.dropped.subscribe()
    }

    fn execute(
        &self,
        command: Stamped,
        deadline: Instant,
    ) -> LocalFuture<'_, Result<(Vec<u8>, u64), ExecuteError>> {
        Box::pin(self.group.execute_stamped(command, deadline, Redirect::Yes))
    }

    fn query(
        &self,
        consistency: Consistency,
        query: Vec<u8>,
        deadline: Instant,
    ) -> LocalFuture<'_, Result<(Vec<u8>, u64), Refusal>> {
        Box::pin(async move {
            let query: SM::Query = statemesh_core::decode::from_bytes(&query)
                .map_err(|e| Refusal::BadRequest(format!("query: {e}")))?;
            if consistency == Consistency::Linearizable {
                // Waits for the read index; the read itself is below.
                self.group
                    .query_until(Consistency::Linearizable, deadline, Redirect::Yes, |_| ())
                    .await
                    .map_err(|e| match e {
                        QueryError::NoQuorum { reachable, voters } => {
                            Refusal::NoQuorum { reachable, voters }
                        }
                        QueryError::Timeout(_) => Refusal::Timeout {
                            maybe_applied: false,
                        },
                        QueryError::Shutdown => {
                            Refusal::Unavailable("the node is shutting down".into())
                        }
                    })?;
            }
            let (answer, version) = self.group.read_versioned(|sm| sm.answer(query));
            let bytes = postcard::to_allocvec(&answer)
                .map_err(|e| Refusal::BadRequest(format!("answer: {e}")))?;
            Ok((bytes, version))
        })
    }
}

/// What an operator does about a group whose files are damaged on this
/// node. The WAL refuses to drop committed entries, and cutting a
/// replica's log could lose a write it helped acknowledge, so the node
/// never repairs in place: it leaves the cluster and joins again empty,
/// copying everything from the others.
pub(crate) fn damage_cure(node: NodeId) -> String {
    format!(
        ". This node's copy is damaged and the other members hold the data: remove the node \
         (`statemesh members remove {node}`), empty its --data-dir and start it again with \
         --join (a cluster of one has no other copy: restore its data directory from a backup)"
    )
}

/// Opens a group of one state machine type.
trait Kind: Send + Sync {
    fn open<'a>(
        &'a self,
        node: &'a Node,
        name: &'a str,
        id: GroupId,
        history: HistoryLimits,
    ) -> LocalFuture<'a, Result<Arc<dyn Hosted>, GroupError>>;
}

struct KindOf<F>(F);

impl<SM: Hostable, F: Fn() -> SM + Send + Sync> Kind for KindOf<F> {
    fn open<'a>(
        &'a self,
        node: &'a Node,
        name: &'a str,
        id: GroupId,
        history: HistoryLimits,
    ) -> LocalFuture<'a, Result<Arc<dyn Hosted>, GroupError>> {
        Box::pin(async move {
            let (_, hosted) = open_hosted(node, name, id, (self.0)(), history).await?;
            Ok(hosted)
        })
    }
}

/// Opens (or resumes) group `id`, collection `name`, from `sm`, recording
/// its changes for mirrors; returns it, typed and as the server sees it.
pub(crate) async fn open_hosted<SM: Hostable>(
    node: &Node,
    name: &str,
    id: GroupId,
    sm: SM,
    history: HistoryLimits,
) -> Result<(Group<SM>, Arc<dyn Hosted>), GroupError> {
    let signature = sm.signature();
    let identity = Identity::of(name, &sm);
    let history = Arc::new(History::new(0, history));
    let recorder: Arc<dyn Recorder<SM>> = Arc::new(Recording::<SM>::new(Arc::clone(&history)));
    let group = node
        .open_group_as(name, sm, Start::Resume(id), Some(recorder))
        .await?;
    let hosted = Arc::new(HostedGroup {
        group: group.clone(),
        signature,
        identity,
        history,
        fanout: Fanout::default(),
        dropped: tokio::sync::watch::Sender::new(false),
    });
    Ok((group, hosted))
}

/// The state machines a server can host, by signature. A client that opens
/// a collection names its state machine's signature; a node hosts it only
/// if its build registered that type here.
#[derive(Clone, Default)]
pub struct Kinds {
    by_signature: HashMap<String, Arc<dyn Kind>>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.by_signature.keys().collect();
        names.sort();
        f.debug_set().entries(names).finish()
    }
}

impl Kinds {
    /// None yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Hosts state machines made empty by `make` (its signature is the key).
    pub fn register<SM: Hostable>(&mut self, make: impl Fn() -> SM + Send + Sync + 'static) {
        let signature = make().signature();
        self.by_signature.insert(signature, Arc::new(KindOf(make)));
    }

    /// Hosts collections changed only by `hooks` (see [`crate::hooks`]).
    ///
    /// # Errors
    ///
    /// What [`Hooks::init`](statemesh_core::hooks::Hooks::init) refused: such a
    /// collection could never be created.
    pub fn register_hooks<H: Hooks>(&mut self, hooks: H) -> Result<(), HookError>
    where
        H::State: Queryable + Publish,
    {
        let initial = Hooked::new(hooks)?;
        self.register(move || initial.clone());
        Ok(())
    }

    /// Whether a state machine of this signature can be hosted.
    #[must_use]
    pub fn knows(&self, signature: &str) -> bool {
        self.by_signature.contains_key(signature)
    }

    pub(crate) async fn open(
        &self,
        signature: &str,
        node: &Node,
        name: &str,
        id: GroupId,
        history: HistoryLimits,
    ) -> Result<Arc<dyn Hosted>, Refusal> {
        let kind = self
            .by_signature
            .get(signature)
            .ok_or_else(|| Refusal::UnknownKind(signature.to_owned()))?;
        kind.open(node, name, id, history).await.map_err(|e| {
            let cure = if e.is_damage() {
                damage_cure(node.id())
            } else {
                String::new()
            };
            Refusal::Unavailable(format!("opening {name:?}: {e}{cure}"))
        })
    }
}
