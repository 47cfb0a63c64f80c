//! `Cell<T>`: one replicated value.

use crate::error::{ExecuteError, GroupError, QueryError};
use crate::group::{Consistency, Group, When};
use crate::node::Node;
use crate::state_machine::StateMachine;
use crate::types::NodeId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// Bounds every replicated value meets.
pub trait Value: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static> Value for T {}

/// The state machine behind a [`Cell`].
#[derive(Debug, Clone, PartialEq)]
pub struct CellState<T> {
    value: Option<T>,
}

impl<T> Default for CellState<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

/// A change to a cell.
#[derive(Debug, Serialize, Deserialize)]
pub enum CellCommand<T> {
    /// Sets the value.
    Write(T),
    /// Sets the value to `new` if it is `expected`.
    CompareExchange {
        /// The value the cell must hold (`None`: empty).
        expected: Option<T>,
        /// The value to store (`None`: empty it).
        new: Option<T>,
    },
    /// Empties the cell.
    Clear,
}

/// What a change did.
#[derive(Debug, Serialize, Deserialize)]
pub enum CellOutcome<T> {
    /// The value before the change.
    Previous(Option<T>),
    /// A compare-exchange: `Ok(previous)` if it stored, else `Err(current)`.
    Exchanged(Result<Option<T>, Option<T>>),
}

impl<T: Value> StateMachine for CellState<T> {
    type Command = CellCommand<T>;
    type Response = CellOutcome<T>;
    type Snapshot = Option<T>;

    fn signature(&self) -> String {
        format!("statemesh::Cell<{}>", std::any::type_name::<T>())
    }

    fn apply(&mut self, command: CellCommand<T>, _version: u64) -> CellOutcome<T> {
        match command {
            CellCommand::Write(v) => CellOutcome::Previous(self.value.replace(v)),
            CellCommand::Clear => CellOutcome::Previous(self.value.take()),
            CellCommand::CompareExchange { expected, new } => {
                CellOutcome::Exchanged(if self.value == expected {
                    Ok(std::mem::replace(&mut self.value, new))
                } else {
                    Err(self.value.clone())
                })
            }
        }
    }

    fn snapshot(&self) -> Option<T> {
        self.value.clone()
    }

    fn restore(&mut self, snapshot: Option<T>) {
        self.value = snapshot;
    }
}

/// The writer handle of a replicated cell.
#[derive(Debug)]
pub struct Cell<T: Value> {
    group: Group<CellState<T>>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Value> Clone for Cell<T> {
    fn clone(&self) -> Self {
        Self {
            group: self.group.clone(),
            _t: PhantomData,
        }
    }
}

/// A write's outcome and the version it was applied at.
pub type Written<O> = Result<(O, u64), ExecuteError>;

impl<T: Value> Cell<T> {
    /// Opens cell `name` on `node`, one of `voters`.
    ///
    /// # Errors
    ///
    /// See [`Node::open_group`].
    pub async fn open(node: &Node, name: &str, voters: &[NodeId]) -> Result<Self, GroupError> {
        Ok(Self {
            group: node.open_group(name, CellState::default(), voters).await?,
            _t: PhantomData,
        })
    }

    /// This replica's value (possibly behind the leader; see
    /// [`Cell::read_linearizable`] and [`When::reaches`]).
    #[must_use]
    pub fn read(&self) -> Option<T> {
        read_local(&self.group)
    }

    /// The value as of now, cluster-wide.
    ///
    /// # Errors
    ///
    /// See [`Group::query`].
    pub async fn read_linearizable(&self) -> Result<Option<T>, QueryError> {
        self.group
            .query(Consistency::Linearizable, |s| s.value.clone())
            .await
    }

    /// Sets the value; returns the previous one.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`].
    pub async fn write(&self, value: T) -> Written<Option<T>> {
        previous(self.group.execute(CellCommand::Write(value)).await)
    }

    /// Empties the cell; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`].
    pub async fn clear(&self) -> Written<Option<T>> {
        previous(self.group.execute(CellCommand::Clear).await)
    }

    /// Stores `new` if the cell holds `expected`: `Ok(previous)` if it did,
    /// `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`].
    pub async fn compare_exchange(
        &self,
        expected: Option<T>,
        new: Option<T>,
    ) -> Written<Result<Option<T>, Option<T>>> {
        match self
            .group
            .execute(CellCommand::CompareExchange { expected, new })
            .await?
        {
            (CellOutcome::Exchanged(r), v) => Ok((r, v)),
            (CellOutcome::Previous(_), _) => Err(ExecuteError::Decode(
                "a compare-exchange answered like a write".into(),
            )),
        }
    }

    /// The version of this replica's value.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.group.version()
    }

    /// The group behind this handle.
    #[must_use]
    pub fn group(&self) -> &Group<CellState<T>> {
        &self.group
    }

    /// Futures for versions and leadership.
    #[must_use]
    pub fn when(&self) -> When {
        self.group.when()
    }
}

fn previous<T>(r: Result<(CellOutcome<T>, u64), ExecuteError>) -> Written<Option<T>> {
    match r? {
        (CellOutcome::Previous(p), v) => Ok((p, v)),
        (CellOutcome::Exchanged(_), _) => Err(ExecuteError::Decode(
            "a write answered like a compare-exchange".into(),
        )),
    }
}

fn read_local<T: Value>(group: &Group<CellState<T>>) -> Option<T> {
    group.read_local(|s| s.value.clone())
}

/// The read-only handle of a replicated cell, on a learner.
#[derive(Debug)]
pub struct CellReader<T: Value> {
    group: Group<CellState<T>>,
}

impl<T: Value> CellReader<T> {
    /// Follows cell `name` from `node`, which joins as a learner through
    /// `voters`.
    ///
    /// # Errors
    ///
    /// See [`Node::open_group`].
    pub async fn open(node: &Node, name: &str, voters: &[NodeId]) -> Result<Self, GroupError> {
        Ok(Self {
            group: node.open_group(name, CellState::default(), voters).await?,
        })
    }

    /// This replica's value.
    #[must_use]
    pub fn read(&self) -> Option<T> {
        read_local(&self.group)
    }

    /// The value as of now, cluster-wide (read index from the leader).
    ///
    /// # Errors
    ///
    /// See [`Group::query`].
    pub async fn read_linearizable(&self) -> Result<Option<T>, QueryError> {
        self.group
            .query(Consistency::Linearizable, |s| s.value.clone())
            .await
    }

    /// The version of this replica's value.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.group.version()
    }

    /// The group behind this handle.
    #[must_use]
    pub fn group(&self) -> &Group<CellState<T>> {
        &self.group
    }

    /// Futures for versions and leadership.
    #[must_use]
    pub fn when(&self) -> When {
        self.group.when()
    }
}
