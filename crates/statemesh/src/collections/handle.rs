//! The handles every collection has, and the view of its state they share
//! with a mirror.

use crate::error::{ExecuteError, GroupError, QueryError};
use crate::group::{Consistency, Group, Shared, Versions, When};
use crate::local::{LocalError, LocalOptions, Publication, Publish};
use crate::node::Node;
use crate::state_machine::StateMachine;
use crate::types::NodeId;
use std::sync::Arc;

/// A local copy of a collection's state, read without waiting on anyone:
/// what a [`Reader`] of a replica and a [`Mirror`](crate::Mirror) read
/// through (both dereference to one), so both have the same read methods.
pub struct View<SM> {
    shared: Arc<Shared<SM>>,
}

impl<SM> Clone for View<SM> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<SM> View<SM> {
    pub(crate) fn new(shared: Arc<Shared<SM>>) -> Self {
        Self { shared }
    }

    /// The version (log index of the last applied change) of this copy.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.shared.version.get()
    }

    /// Futures for this copy's versions. (A [`Reader`]'s `when` also has
    /// leadership futures.)
    #[must_use]
    pub fn when(&self) -> Versions {
        Versions::new(self.shared.version.subscribe())
    }

    /// Runs `read` on this copy's state now (for a custom state machine's
    /// reads; the collections have typed ones).
    pub fn read_with<R>(&self, read: impl FnOnce(&SM) -> R) -> R {
        read(&self.shared.sm.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `read` on this copy's state now, and returns the version of
    /// the state it read (exactly: both are read under one lock).
    pub fn read_versioned<R>(&self, read: impl FnOnce(&SM) -> R) -> (R, u64) {
        let sm = self.shared.sm.read().unwrap_or_else(|e| e.into_inner());
        (read(&sm), self.shared.version.get())
    }

    /// Publishes this copy to shared memory as region `name` (in
    /// `/dev/shm`), for [`local`](crate::local) readers on this host, until
    /// the returned [`Publication`] drops.
    ///
    /// # Errors
    ///
    /// [`LocalError::Open`] if the region cannot be made, or another
    /// publisher holds it.
    pub fn publish_local(&self, name: &str) -> Result<Publication, LocalError>
    where
        SM: Publish,
    {
        self.publish_local_with(name, &LocalOptions::new())
    }

    /// Like [`View::publish_local`], with options.
    ///
    /// # Errors
    ///
    /// As [`View::publish_local`].
    pub fn publish_local_with(
        &self,
        name: &str,
        options: &LocalOptions,
    ) -> Result<Publication, LocalError>
    where
        SM: Publish,
    {
        Publication::start(Arc::clone(&self.shared), name, options)
    }

    /// Reads this copy's state now.
    pub(crate) fn local<R>(&self, read: impl FnOnce(&SM) -> R) -> R {
        self.read_with(read)
    }
}

/// A read-only handle on a replicated collection (`SM` is its state). Opened
/// with [`Reader::open`] it follows the group as a learner: it receives
/// every change, never leads and never counts toward a quorum. It reads
/// its replica through the [`View`] it dereferences to.
pub struct Reader<SM: StateMachine> {
    group: Group<SM>,
    view: View<SM>,
}

/// The writer handle of a replicated collection, on a voter. It reads like
/// a [`Reader`] (it dereferences to one) and writes through the leader.
pub struct Writer<SM: StateMachine> {
    reader: Reader<SM>,
}

impl<SM: StateMachine> Clone for Reader<SM> {
    fn clone(&self) -> Self {
        Self {
            group: self.group.clone(),
            view: self.view.clone(),
        }
    }
}

impl<SM: StateMachine> Clone for Writer<SM> {
    fn clone(&self) -> Self {
        Self {
            reader: self.reader.clone(),
        }
    }
}

impl<SM: StateMachine> std::fmt::Debug for Reader<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("group", &self.group)
            .finish()
    }
}

impl<SM: StateMachine> std::fmt::Debug for Writer<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("group", &self.reader.group)
            .finish()
    }
}

impl<SM: StateMachine + Default> Reader<SM> {
    /// Follows collection `name` from `node`, which joins as a learner
    /// through `voters`.
    ///
    /// # Errors
    ///
    /// See [`Node::open_group`].
    pub async fn open(node: &Node, name: &str, voters: &[NodeId]) -> Result<Self, GroupError> {
        Self::open_with(node, name, voters, SM::default()).await
    }
}

impl<SM: StateMachine + Default> Writer<SM> {
    /// Opens collection `name` on `node`, which should be one of `voters`.
    ///
    /// # Errors
    ///
    /// See [`Node::open_group`].
    pub async fn open(node: &Node, name: &str, voters: &[NodeId]) -> Result<Self, GroupError> {
        Self::open_with(node, name, voters, SM::default()).await
    }
}

impl<SM: StateMachine> Reader<SM> {
    /// Like [`Reader::open`], from the empty state `initial`: for a
    /// collection with parameters (a bounded queue's capacity, say), which
    /// are part of its signature.
    ///
    /// # Errors
    ///
    /// See [`Node::open_group`].
    pub async fn open_with(
        node: &Node,
        name: &str,
        voters: &[NodeId],
        initial: SM,
    ) -> Result<Self, GroupError> {
        let group = node.open_group(name, initial, voters).await?;
        Ok(Self {
            view: View::new(group.shared()),
            group,
        })
    }
}

impl<SM: StateMachine> Writer<SM> {
    /// Like [`Writer::open`], from the empty state `initial`: for a
    /// collection with parameters (a bounded queue's capacity, say), which
    /// are part of its signature.
    ///
    /// # Errors
    ///
    /// See [`Node::open_group`].
    pub async fn open_with(
        node: &Node,
        name: &str,
        voters: &[NodeId],
        initial: SM,
    ) -> Result<Self, GroupError> {
        Ok(Self {
            reader: Reader::open_with(node, name, voters, initial).await?,
        })
    }
}

impl<SM: StateMachine> Reader<SM> {
    /// The group behind this handle.
    #[must_use]
    pub fn group(&self) -> &Group<SM> {
        &self.group
    }

    /// Futures for versions and leadership.
    #[must_use]
    pub fn when(&self) -> When {
        self.group.when()
    }

    /// Reads the state as of now, cluster-wide (read index).
    pub(crate) async fn linearizable<R>(
        &self,
        read: impl FnOnce(&SM) -> R,
    ) -> Result<R, QueryError> {
        self.group.query(Consistency::Linearizable, read).await
    }
}

impl<SM: StateMachine> Writer<SM> {
    /// Applies `command` through the leader.
    pub(crate) async fn execute(
        &self,
        command: SM::Command,
    ) -> Result<(SM::Response, u64), ExecuteError> {
        self.reader.group.execute(command).await
    }
}

impl<SM: StateMachine> std::ops::Deref for Reader<SM> {
    type Target = View<SM>;
    fn deref(&self) -> &View<SM> {
        &self.view
    }
}

impl<SM: StateMachine> std::ops::Deref for Writer<SM> {
    type Target = Reader<SM>;
    fn deref(&self) -> &Reader<SM> {
        &self.reader
    }
}

/// Whatever runs a collection's commands: a [`Writer`] on a node, or a
/// [`Remote`](crate::Remote) handle of a client. A collection's write
/// operations that interpret outcomes are written once, over this.
pub(crate) trait Executor<SM: StateMachine>: Sync {
    /// What a failed command is.
    type Error: Send;

    /// Runs `command`; its response and version.
    fn run(
        &self,
        command: SM::Command,
    ) -> impl std::future::Future<Output = Result<(SM::Response, u64), Self::Error>> + Send;

    /// The error for a response of the wrong variant (`what`: the
    /// operation).
    fn wrong_shape(what: &str) -> Self::Error;
}

impl<SM: StateMachine> Executor<SM> for Writer<SM> {
    type Error = ExecuteError;

    fn run(
        &self,
        command: SM::Command,
    ) -> impl std::future::Future<Output = Result<(SM::Response, u64), ExecuteError>> + Send {
        self.execute(command)
    }

    fn wrong_shape(what: &str) -> ExecuteError {
        ExecuteError::Decode(format!("the answer to {what} has the wrong shape"))
    }
}

/// Turns a response of the wrong variant into an error. A replica of the
/// same build never answers so; one of another build could.
pub(crate) fn mismatched<T>(what: &str) -> Result<T, ExecuteError> {
    Err(ExecuteError::Decode(format!(
        "the answer to {what} has the wrong shape"
    )))
}
