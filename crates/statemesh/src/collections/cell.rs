//! `Cell<T>`: one replicated value.

use super::handle::{Reader, View, Writer, mismatched};
use super::{Value, Written};
use crate::error::QueryError;
use crate::state_machine::{Changes, Mirrored, Queryable, StateMachine};
use serde::{Deserialize, Serialize};

/// The writer handle of a replicated value.
pub type Cell<T> = Writer<CellState<T>>;
/// The read-only handle of a replicated value.
pub type CellReader<T> = Reader<CellState<T>>;

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

impl<T> CellState<T> {
    /// The value (for reading a copy with [`View::read_with`]).
    #[must_use]
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

/// A change to a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What a change to a cell did.
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

    fn apply(&mut self, command: CellCommand<T>, version: u64) -> CellOutcome<T> {
        self.apply_recording(command, version, &mut Changes::off())
    }

    fn snapshot(&self) -> Option<T> {
        self.value.clone()
    }

    fn restore(&mut self, snapshot: Option<T>) {
        self.value = snapshot;
    }

    fn entries(&self) -> Option<u64> {
        Some(usize::from(self.value.is_some()) as u64)
    }
}

/// A cell's mirror applies its new value (`None`: emptied).
impl<T: Value> Mirrored for CellState<T> {
    type Change = Option<T>;

    fn apply_recording(
        &mut self,
        command: CellCommand<T>,
        _version: u64,
        changes: &mut Changes<Option<T>>,
    ) -> CellOutcome<T> {
        match command {
            CellCommand::Write(v) => {
                changes.record(|| Some(v.clone()));
                CellOutcome::Previous(self.value.replace(v))
            }
            CellCommand::Clear => {
                if self.value.is_some() {
                    changes.record(|| None);
                }
                CellOutcome::Previous(self.value.take())
            }
            CellCommand::CompareExchange { expected, new } => {
                CellOutcome::Exchanged(if self.value == expected {
                    changes.record(|| new.clone());
                    Ok(std::mem::replace(&mut self.value, new))
                } else {
                    Err(self.value.clone())
                })
            }
        }
    }

    fn apply_change(&mut self, change: Option<T>) {
        self.value = change;
    }

    fn merge(mut changes: Vec<Option<T>>) -> Vec<Option<T>> {
        changes.drain(..changes.len().saturating_sub(1));
        changes
    }
}

/// A remote read of a cell: its value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CellQuery;

impl<T: Value> Queryable for CellState<T> {
    type Query = CellQuery;
    type Answer = Option<T>;

    fn answer(&self, _query: CellQuery) -> Option<T> {
        self.value.clone()
    }
}

impl<T: Value> View<CellState<T>> {
    /// This replica's value (possibly behind the leader; see
    /// [`Reader::read_linearizable`] and [`Versions::reaches`](crate::Versions::reaches)).
    #[must_use]
    pub fn read(&self) -> Option<T> {
        self.local(|s| s.value.clone())
    }
}

impl<T: Value> Reader<CellState<T>> {
    /// The value as of now, cluster-wide.
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn read_linearizable(&self) -> Result<Option<T>, QueryError> {
        self.linearizable(|s| s.value.clone()).await
    }
}

impl<T: Value> Writer<CellState<T>> {
    /// Sets the value; returns the previous one.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn write(&self, value: T) -> Written<Option<T>> {
        previous(self.execute(CellCommand::Write(value)).await?)
    }

    /// Empties the cell; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<Option<T>> {
        previous(self.execute(CellCommand::Clear).await?)
    }

    /// Stores `new` if the cell holds `expected`: `Ok(previous)` if it did,
    /// `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn compare_exchange(
        &self,
        expected: Option<T>,
        new: Option<T>,
    ) -> Written<Result<Option<T>, Option<T>>> {
        match self
            .execute(CellCommand::CompareExchange { expected, new })
            .await?
        {
            (CellOutcome::Exchanged(r), v) => Ok((r, v)),
            _ => mismatched("compare_exchange"),
        }
    }
}

fn previous<T>(r: (CellOutcome<T>, u64)) -> Written<Option<T>> {
    match r {
        (CellOutcome::Previous(p), v) => Ok((p, v)),
        _ => mismatched("a write"),
    }
}
