//! The handles every collection has, and the view of its state they share
//! with a mirror.

use crate::error::{ExecuteError, GroupError, QueryError};
use crate::group::{Consistency, Group, When};
use crate::node::Node;
use crate::types::NodeId;
use statemesh_client::View;
use statemesh_client::local::{Collection, Publish};
use statemesh_core::StateMachine;
use statemesh_core::collections::{Executor, wrong_shape_message};

/// A write's outcome and the version (log index) it was applied at.
pub type Written<O> = Result<(O, u64), crate::error::ExecuteError>;

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

impl<SM: StateMachine> Executor<SM> for Writer<SM> {
    type Error = ExecuteError;

    fn run(
        &self,
        command: SM::Command,
    ) -> impl std::future::Future<Output = Result<(SM::Response, u64), ExecuteError>> + Send {
        self.execute(command)
    }

    fn wrong_shape(what: &str) -> ExecuteError {
        ExecuteError::Decode(wrong_shape_message(what))
    }
}

/// A writer reads, and a local reader opened as `Map<K, V>` reads, what a
/// `Map<K, V>` published.
impl<SM: Publish> Collection for Writer<SM> {
    type State = SM;
}

impl<SM: Publish> Collection for Reader<SM> {
    type State = SM;
}
